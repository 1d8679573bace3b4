import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

/// `--at TIME`: evaluate at another moment than now (ISO 8601, e.g. 2026-11-24T17:00:00Z).
struct AtOption: ParsableArguments {
    @Option(help: "Evaluate at this moment instead of now (ISO 8601 with a zone, e.g. 2026-11-24T17:00:00Z).")
    var at: String?

    func validate() throws {
        if let at, Self.parse(at) == nil {
            throw ValidationError("--at takes an ISO 8601 time with a zone, e.g. 2026-11-24T17:00:00Z; got \(at.debugDescription)")
        }
    }

    /// Whole seconds or fractions (`2026-11-24T12:45:43.125Z`, as `ticket show` prints them).
    static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions.insert(.withFractionalSeconds)
        return plain.date(from: text) ?? fractional.date(from: text)
    }

    var millis: Int64 {
        let date = at.flatMap(Self.parse) ?? Date()
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}

func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// Runs one of the Desk's checks in `validate()`, so a bad flag is a usage error (exit 2) before the
/// store is opened.
func validating(_ check: () throws(DeskError) -> Void) throws {
    do { try check() } catch { throw ValidationError(Tierline.render(error)) }
}

struct PendingHandoff: Encodable {
    var ticket: String
    var id: String
    var fromSite: String
    var toSite: String
    var toGroup: String
    var requestedAt: String
    var incoming: Bool
}
