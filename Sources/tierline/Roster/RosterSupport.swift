import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

/// A 32-byte public key given as 64 hex digits.
struct PublicKeyArgument: ExpressibleByArgument {
    var bytes: [UInt8]
    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        guard text.utf8.count == 64, let bytes = [UInt8](hex: text) else { return nil }
        self.bytes = bytes
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// The file form of a signed roster: the exact signed text and the signature.
struct RosterFile: Codable {
    var document: String
    var signature: String
}

/// "4 min 10 s", "3 h 2 min", "2 d 1 h": a duration for tables.
func durationText(millis: Int64) -> String {
    let seconds = abs(millis) / 1000
    let sign = millis < 0 ? "-" : ""
    if seconds < 60 { return "\(sign)\(seconds) s" }
    if seconds < 3600 { return "\(sign)\(seconds / 60) min \(seconds % 60) s" }
    if seconds < 86_400 { return "\(sign)\(seconds / 3600) h \(seconds % 3600 / 60) min" }
    return "\(sign)\(seconds / 86_400) d \(seconds % 86_400 / 3600) h"
}
