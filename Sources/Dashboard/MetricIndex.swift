import Escalation
import Foundation
import GRDB
import TicketModel
import TicketStore

/// Keeps the dashboard's per-ticket facts (`metricTicket`, `metricClock`, `metricHandoff`) and the
/// per-day sums (`metricDay`) current.
///
/// Every write to a ticket row lists the ticket in `metricDirty` (a trigger, in the writer's own
/// transaction); a new configuration version lists every ticket. ``refresh(now:batch:progress:)``
/// re-derives listed tickets in bounded transactions, each of which also clears what it derived, so a
/// crash at any point leaves the facts either current or still listed, never silently stale.
public struct MetricIndex: Sendable {
    public let database: TicketDatabase

    public init(_ database: TicketDatabase) { self.database = database }

    /// Tickets whose facts wait to be derived again.
    public func pending() throws -> Int {
        try database.writer.read { db in
            let configChanged = try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") ?? 0
            return configChanged != 0 ? try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket") ?? 0
                : try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0
        }
    }

    /// Derives the facts of every listed ticket, `batch` tickets per transaction.
    /// - Parameters:
    ///   - now: the evaluation time (ms): it decides nothing stored except which clock deadlines are known.
    ///   - progress: called after each batch with (done, total).
    /// - Returns: how many tickets were derived.
    @discardableResult
    public func refresh(now: Int64, batch: Int = 400, progress: ((Int, Int) -> Void)? = nil) throws -> Int {
        let library = ConfigLibrary(bodies: try database.configBodies())
        try database.writer.write { db in
            if try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") != 0 {
                try db.execute(sql: "INSERT OR IGNORE INTO metricDirty (id) SELECT id FROM ticket")
                try db.execute(sql: "UPDATE metricState SET value = 0 WHERE key = 'configChanged'")
            }
        }
        let total = try database.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0 }
        var done = 0
        while true {
            let count = try database.writer.write { db -> Int in
                let ids = try String.fetchAll(db, sql: "SELECT id FROM metricDirty LIMIT ?", arguments: [batch])
                for id in ids { try Self.derive(db, id, library: library, now: now) }
                return ids.count
            }
            guard count > 0 else { break }
            done += count
            progress?(min(done, total), max(total, done))
        }
        return done
    }

    static func day(_ ms: Int64) -> Int64 { ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000 }

    /// Replaces the facts of one ticket and moves its contribution to the per-day sums.
    static func derive(_ db: Database, _ id: String, library: ConfigLibrary, now: Int64) throws {
        try db.execute(sql: "DELETE FROM metricDirty WHERE id = ?", arguments: [id])
        if let old = try Row.fetchOne(db, sql: "SELECT site, createdAt, lastSolvedAt, escalatedAt FROM metricTicket WHERE id = ?", arguments: [id]) {
            try addToDays(db, site: old["site"], created: old["createdAt"], lastSolved: old["lastSolvedAt"], escalated: old["escalatedAt"] != nil, sign: -1)
        }
        try db.execute(sql: "DELETE FROM metricTicket WHERE id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM metricClock WHERE ticket = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM metricHandoff WHERE ticket = ?", arguments: [id])
        guard let stored = try Row.fetchOne(db, sql: "SELECT status, deleted FROM ticket WHERE id = ?", arguments: [id]),
              !(stored["deleted"] as Bool), let uuid = UUID(uuidString: id) else { return }
        let state = try TicketDatabase.ticketState(db, id: uuid)
        guard state.isCreated else { return }  // changes arrived before the ticket's creation
        var row = TicketMetricRow(state, evaluation: EscalationEngine.evaluate(state, library: library, now: now))
        if stored["status"] as String == Status.merged.rawValue {
            row.status = Status.merged.rawValue
            row.isOpen = false
            // Leaves the backlog series at its last change (the merge), as it leaves the backlog.
            row.lastSolvedAt = row.lastSolvedAt ?? state.updated.map { Int64($0.hlc.millis) } ?? row.createdAt
        }
        try insert(db, row)
        try addToDays(db, site: row.site, created: row.createdAt, lastSolved: row.lastSolvedAt, escalated: row.escalatedAt != nil, sign: 1)
    }

    static func addToDays(_ db: Database, site: String, created: Int64, lastSolved: Int64?, escalated: Bool, sign: Int) throws {
        let add = """
            INSERT INTO metricDay (day, site, created, solved, escalated) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(day, site) DO UPDATE SET created = created + excluded.created, solved = solved + excluded.solved,
              escalated = escalated + excluded.escalated
            """
        try db.execute(sql: add, arguments: [day(created), site, sign, 0, escalated ? sign : 0])
        if let lastSolved { try db.execute(sql: add, arguments: [day(lastSolved), site, 0, sign, 0]) }
    }

    static func insert(_ db: Database, _ row: TicketMetricRow) throws {
        try db.execute(sql: """
            INSERT INTO metricTicket (id, site, origin, tier, channel, priority, customerTier, grp, category, status, open,
              createdAt, firstSolvedAt, lastSolvedAt, reopens, reopenedWithin30d, publicReplies, firstResponseAt,
              frtCalendar, frtBusiness, ttoCalendar, ttoBusiness, resolutionCalendar, resolutionBusiness, escalatedAt,
              escalationTrigger, transferred, crossSite, maxLevel, exhausted, backstopFirings, csatScore, csatAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [
                row.id, row.site, row.origin, row.tier, row.channel, row.priority, row.customerTier, row.group, row.category,
                row.status, row.isOpen, row.createdAt, row.firstSolvedAt, row.lastSolvedAt, row.reopens, row.reopenedWithin30d,
                row.publicReplies, row.firstResponseAt, row.frtCalendar, row.frtBusiness, row.ttoCalendar, row.ttoBusiness,
                row.resolutionCalendar, row.resolutionBusiness, row.escalatedAt, row.escalationTrigger, row.transferred,
                row.crossSite, row.maxLevel, row.exhausted, row.backstopFirings, row.csatScore, row.csatAt,
            ])
        for clock in row.clocks {
            try db.execute(sql: """
                INSERT INTO metricClock (ticket, kind, cycle, start, target, deadline, warnAt, stop, calendarMillis, businessMillis)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [row.id, clock.kind, clock.cycle, clock.start, clock.target, clock.deadline, clock.warnAt,
                                 clock.stop, clock.calendarMillis, clock.businessMillis])
        }
        for handoff in row.handoffs {
            try db.execute(sql: """
                INSERT INTO metricHandoff (id, ticket, requestedAt, toSite, answeredAt, accepted, timedOut) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [handoff.id, row.id, handoff.requestedAt, handoff.toSite, handoff.answeredAt, handoff.accepted, handoff.timedOut])
        }
    }
}
