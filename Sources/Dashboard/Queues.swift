import Foundation
import GRDB
import TicketStore

/// Where a ticket stands against its SLA now, from the dashboard's facts.
public enum SLAState: String, Sendable, Codable, CaseIterable {
    case ok
    case atRisk = "at_risk"
    case breached
}

/// A ticket's nearest running SLA deadline, as the facts hold it.
///
/// It names no clock kind: the deadline and the warning are each the earliest of the ticket's
/// running clocks, and may be two different clocks'. (A bare `kind` beside the two `MIN()`s was
/// taken from either row, so it could name the clock of neither.)
public struct SLADue: Sendable, Equatable {
    public var ticket: String
    /// The earliest deadline of the ticket's running clocks (`nil`: paused or none).
    public var deadline: Int64?
    /// The earliest warning point of the ticket's running clocks.
    public var warnAt: Int64?

    /// The state at `now`: breached past the deadline, at risk past the warning point.
    public func state(now: Int64) -> SLAState {
        if let deadline, deadline <= now { return .breached }
        if let warnAt, warnAt <= now { return .atRisk }
        return .ok
    }
}

/// The workspace's queues that read the dashboard's facts: the tickets breached or at risk now (the
/// same runs the dashboard counts as "breached now" and "at risk now", so a count links to its list),
/// and the handoffs still waiting for a site's answer.
extension FleetQueries {
    /// Tickets with a running clock in `state` at `now`, owned by `site` when given: at most `limit`,
    /// the most urgent first.
    public func tickets(in state: SLAState, now: Int64, site: String? = nil, limit: Int = 1_000) async throws -> [SLADue] {
        try await database.writer.read { db in
            try Row.fetchAll(db, Self.ticketsRequest(in: state, now: now, site: site, limit: limit))
                .map { SLADue(ticket: $0["ticket"], deadline: $0["deadline"], warnAt: $0["warnAt"]) }
        }
    }

    /// The statement behind ``tickets(in:now:site:limit:)``: the running clocks through
    /// `metricClock_running`; only the tickets found are sorted, by their nearest deadline.
    static func ticketsRequest(in state: SLAState, now: Int64, site: String?, limit: Int) -> SQLRequest<Row> {
        let condition: SQL = switch state {
        case .breached: "deadline <= \(now)"
        case .atRisk: "(deadline > \(now) OR deadline IS NULL) AND warnAt <= \(now)"
        case .ok: "(deadline > \(now) OR deadline IS NULL) AND (warnAt > \(now) OR warnAt IS NULL)"
        }
        let siteCondition: SQL = site.map { "AND site = \($0)" } ?? ""
        return SQLRequest<Row>("""
            SELECT ticket, MIN(deadline) AS deadline, MIN(warnAt) AS warnAt FROM metricClock INDEXED BY metricClock_running
            WHERE stop IS NULL AND target IS NOT NULL AND \(condition) \(siteCondition)
            GROUP BY ticket ORDER BY MIN(deadline), ticket LIMIT \(limit)
            """)
    }

    /// The nearest running deadline of each of `tickets` that has one.
    public func due(_ tickets: [String]) async throws -> [String: SLADue] {
        guard !tickets.isEmpty else { return [:] }
        return try await database.writer.read { db in
            var out: [String: SLADue] = [:]
            for row in try Row.fetchAll(db, SQLRequest<Row>("""
                SELECT ticket, MIN(deadline) AS deadline, MIN(warnAt) AS warnAt FROM metricClock
                WHERE ticket IN \(tickets) AND stop IS NULL AND target IS NOT NULL GROUP BY ticket
                """)) {
                let due = SLADue(ticket: row["ticket"], deadline: row["deadline"], warnAt: row["warnAt"])
                out[due.ticket] = due
            }
            return out
        }
    }

    /// Tickets with a handoff to `site` not yet answered (nor timed out), oldest request first.
    public func ticketsAwaitingHandoff(to site: String, limit: Int = 1_000) async throws -> [String] {
        try await database.writer.read { db in try String.fetchAll(db, sql: Self.awaitingHandoffSQL, arguments: [site, limit]) }
    }

    /// The statement behind ``ticketsAwaitingHandoff(to:limit:)``: the waiting handoffs to one site
    /// through `metricHandoff_waiting`; only their tickets are sorted, oldest request first.
    static let awaitingHandoffSQL = """
        SELECT ticket FROM metricHandoff WHERE toSite = ? AND answeredAt IS NULL AND NOT timedOut
        GROUP BY ticket ORDER BY MIN(requestedAt), ticket LIMIT ?
        """
}
