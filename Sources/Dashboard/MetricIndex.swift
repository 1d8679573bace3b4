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

    /// What one ``refresh(now:batch:progress:shouldContinue:)`` did.
    public struct RefreshReport: Sendable, Equatable {
        public var derived = 0
        /// Tickets whose facts could not be derived (their rows are removed, not left stale), with why.
        public var failed: [(id: String, error: String)] = []
        /// Tickets still listed when `shouldContinue` said stop.
        public var remaining = 0

        public static func == (a: RefreshReport, b: RefreshReport) -> Bool {
            a.derived == b.derived && a.remaining == b.remaining && a.failed.map(\.id) == b.failed.map(\.id)
        }
    }

    /// Derives the facts of every listed ticket, `batch` tickets per transaction, checking
    /// `shouldContinue` between transactions (a stopping server does not wait for a long backlog).
    /// - Parameters:
    ///   - now: the evaluation time (ms): it decides nothing stored except which clock deadlines are known.
    ///   - progress: called after each batch with (done, total).
    @discardableResult
    public func refresh(now: Int64, batch: Int = 200, progress: ((Int, Int) -> Void)? = nil,
                        shouldContinue: () -> Bool = { true }) throws -> RefreshReport {
        var report = RefreshReport()
        var total = 0
        var library = ConfigLibrary()
        try database.writer.write { db in
            // The configuration is read in the transaction that clears its flag: a version arriving
            // after this sets the flag again.
            if try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") != 0 {
                try db.execute(sql: "INSERT OR IGNORE INTO metricDirty (id) SELECT id FROM ticket")
                try db.execute(sql: "UPDATE metricState SET value = 0 WHERE key = 'configChanged'")
            }
            library = ConfigLibrary(bodies: try String.fetchAll(db, sql: "SELECT body FROM configVersion ORDER BY id"))
            total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0
        }
        while shouldContinue() {
            let count = try database.writer.write { [library] db -> Int in
                let ids = try String.fetchAll(db, sql: "SELECT id FROM metricDirty LIMIT ?", arguments: [batch])
                for id in ids {
                    do {
                        try db.inSavepoint {
                            try Self.derive(db, id, library: library, now: now)
                            return .commit
                        }
                    } catch {
                        // One bad ticket must not hold back the others: drop its facts and go on.
                        try Self.removeFacts(db, id)
                        report.failed.append((id, "\(error)"))
                    }
                }
                return ids.count
            }
            guard count > 0 else { break }
            report.derived += count
            progress?(min(report.derived, total), max(total, report.derived))
        }
        report.derived -= report.failed.count
        report.remaining = try database.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0 }
        return report
    }

    /// One UTC day, ms.
    static let dayMillis: Int64 = 86_400_000

    /// The UTC day number of a time (days since 1970, rounding down before it).
    static func day(_ ms: Int64) -> Int64 { ms >= 0 ? ms / dayMillis : (ms - dayMillis + 1) / dayMillis }

    /// Replaces the facts of one ticket and moves its contribution to the per-day sums.
    static func derive(_ db: Database, _ id: String, library: ConfigLibrary, now: Int64) throws {
        try removeFacts(db, id)
        guard let stored = try Row.fetchOne(db, sql: "SELECT status, deleted FROM ticket WHERE id = ?", arguments: [id]),
              !(stored["deleted"] as Bool), let uuid = UUID(uuidString: id) else { return }
        let state = try TicketDatabase.ticketState(db, id: uuid)
        guard state.isCreated else { return }  // changes arrived before the ticket's creation
        var row = TicketMetricRow(state, evaluation: EscalationEngine.evaluate(state, library: library, now: now))
        if stored["status"] as String == Status.merged.rawValue {
            row.status = Status.merged.rawValue
            row.isOpen = false
            // Leaves the backlog series at its last change (the merge), as it leaves the backlog; a
            // merged ticket's clocks that still run are void (its target carries on).
            row.lastSolvedAt = row.lastSolvedAt ?? state.updated.map { Int64($0.hlc.millis) } ?? row.createdAt
            row.clocks.removeAll { $0.stop == nil }
        }
        try insert(db, row)
        try addToDays(db, try contributions(db, id), sign: 1)
    }

    /// Unlists a ticket and takes its facts, and their share of the per-day sums, away.
    static func removeFacts(_ db: Database, _ id: String) throws {
        try db.execute(sql: "DELETE FROM metricDirty WHERE id = ?", arguments: [id])
        try addToDays(db, try contributions(db, id), sign: -1)
        try db.execute(sql: "DELETE FROM metricTicket WHERE id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM metricClock WHERE ticket = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM metricHandoff WHERE ticket = ?", arguments: [id])
    }

    /// What one ticket's stored facts add to `metricDay`: (day, site, column) once each.
    static func contributions(_ db: Database, _ id: String) throws -> [(day: Int64, site: String, column: String)] {
        guard let ticket = try Row.fetchOne(db, sql: """
            SELECT site, createdAt, lastSolvedAt, firstSolvedAt, escalatedAt FROM metricTicket WHERE id = ?
            """, arguments: [id]) else { return [] }
        let site: String = ticket["site"]
        var out: [(Int64, String, String)] = [(day(ticket["createdAt"]), site, "created")]
        if let t: Int64 = ticket["lastSolvedAt"] { out.append((day(t), site, "solved")) }
        if let t: Int64 = ticket["firstSolvedAt"] { out.append((day(t), site, "firstSolved")) }
        if ticket["escalatedAt"] as Int64? != nil { out.append((day(ticket["createdAt"]), site, "escalated")) }
        for clock in try Row.fetchAll(db, sql: "SELECT deadline, stop FROM metricClock WHERE ticket = ? AND target IS NOT NULL", arguments: [id]) {
            let deadline: Int64? = clock["deadline"], stop: Int64? = clock["stop"]
            if let deadline {
                out.append((day(deadline), site, "breached"))
                if stop == nil { out.append((day(deadline), site, "running")) }
            } else if let stop {
                out.append((day(stop), site, "achieved"))
            }
        }
        return out
    }

    static let dayColumns: Set = ["created", "solved", "firstSolved", "escalated", "achieved", "breached", "running"]

    static func addToDays(_ db: Database, _ entries: [(day: Int64, site: String, column: String)], sign: Int) throws {
        for entry in entries {
            precondition(dayColumns.contains(entry.column))
            try db.execute(sql: """
                INSERT INTO metricDay (day, site, \(entry.column)) VALUES (?, ?, ?)
                ON CONFLICT(day, site) DO UPDATE SET \(entry.column) = \(entry.column) + excluded.\(entry.column)
                """, arguments: [entry.day, entry.site, sign])
        }
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
                INSERT INTO metricClock (ticket, site, kind, cycle, start, target, deadline, warnAt, stop, calendarMillis, businessMillis)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [row.id, row.site, clock.kind, clock.cycle, clock.start, clock.target, clock.deadline, clock.warnAt,
                                 clock.stop, clock.calendarMillis, clock.businessMillis])
        }
        for handoff in row.handoffs {
            try db.execute(sql: """
                INSERT INTO metricHandoff (id, ticket, requestedAt, toSite, answeredAt, accepted, timedOut) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [handoff.id, row.id, handoff.requestedAt, handoff.toSite, handoff.answeredAt, handoff.accepted, handoff.timedOut])
        }
    }
}
