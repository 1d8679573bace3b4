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
///
/// Every method waits for SQLite through GRDB's async API: it blocks neither an event loop nor a
/// cooperative thread.
///
/// ```swift
/// let index = try await MetricIndex(store)
/// let report = try await index.refresh(now: now)
/// ```
public struct MetricIndex: Sendable {
    public let database: TicketDatabase

    /// Attaches to `database`, applying the dashboard's migrations (the first time, every ticket the
    /// store holds is listed).
    /// - Throws: a `StoreError` if a newer Tierline's dashboard migrated the store; SQLite errors.
    public init(_ database: TicketDatabase) async throws {
        try await FactSchema.attach(database)
        self.database = database
    }

    /// Tickets whose facts wait to be derived again.
    public func pending() async throws -> Int {
        try await database.writer.read { db in try Self.pending(db) }
    }

    static func pending(_ db: Database) throws -> Int {
        let configChanged = try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") ?? 0
        return configChanged != 0 ? try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket") ?? 0 : try dirtyCount(db)
    }

    static func dirtyCount(_ db: Database) throws -> Int { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0 }

    /// The ids of the tickets listed for deriving, in order (for tests).
    package func listed() async throws -> [String] {
        try await database.writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM metricDirty ORDER BY id") }
    }

    /// What one ``refresh(now:batch:progress:shouldContinue:)`` did.
    public struct RefreshReport: Sendable, Equatable {
        public var derived = 0
        /// Tickets whose facts could not be derived (their rows are removed, not left stale), with why.
        public var failed: [(id: String, error: String)] = []
        /// Tickets still listed when `shouldContinue` said stop.
        public var remaining = 0
        /// The tickets derived (lowercase ids), up to ``listedLimit``; `nil` past it.
        public var tickets: [String]? = []
        public static let listedLimit = 200

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
                        shouldContinue: () -> Bool = { true }) async throws -> RefreshReport {
        var report = RefreshReport()
        let (library, total) = try await database.writer.write { db in
            // The configuration is read in the transaction that clears its flag: a version arriving
            // after this sets the flag again.
            if try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") != 0 {
                try db.execute(sql: "INSERT OR IGNORE INTO metricDirty (id) SELECT id FROM ticket")
                try db.execute(sql: "UPDATE metricState SET value = 0 WHERE key = 'configChanged'")
            }
            return (ConfigLibrary(bodies: try String.fetchAll(db, sql: "SELECT body FROM configVersion ORDER BY id")), try Self.dirtyCount(db))
        }
        while shouldContinue() {
            let (ids, failed) = try await database.writer.write { db in
                let ids = try String.fetchAll(db, sql: "SELECT id FROM metricDirty LIMIT ?", arguments: [batch])
                var failed: [(id: String, error: String)] = []
                for id in ids {
                    do {
                        try db.inSavepoint {
                            try Self.derive(db, id, library: library, now: now)
                            return .commit
                        }
                    } catch {
                        // One bad ticket must not hold back the others: drop its facts and go on.
                        try Self.removeFacts(db, id)
                        failed.append((id, "\(error)"))
                    }
                }
                return (ids, failed)
            }
            let count = ids.count
            if let listed = report.tickets {
                report.tickets = listed.count + count > RefreshReport.listedLimit ? nil : listed + ids
            }
            guard count > 0 else { break }
            report.derived += count
            report.failed += failed
            progress?(min(report.derived, total), max(total, report.derived))
        }
        report.derived -= report.failed.count
        report.remaining = try await database.writer.read { db in try Self.dirtyCount(db) }
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
        try row.insert(db)
        for clock in row.clocks { try clock.insert(db) }
        for handoff in row.handoffs { try handoff.insert(db) }
        try addToDays(db, try contributions(db, id), sign: 1)
    }

    /// Unlists a ticket and takes its facts, and their share of the per-day sums, away.
    static func removeFacts(_ db: Database, _ id: String) throws {
        try db.execute(sql: "DELETE FROM metricDirty WHERE id = ?", arguments: [id])
        try addToDays(db, try contributions(db, id), sign: -1)
        try TicketMetricRow.deleteOne(db, key: id)
        try ClockRow.filter(ClockRow.Columns.ticket == id).deleteAll(db)
        try HandoffRow.filter(HandoffRow.Columns.ticket == id).deleteAll(db)
    }

    /// What one ticket's stored facts add to `metricDay`: (day, site, column) once each.
    static func contributions(_ db: Database, _ id: String) throws -> [(day: Int64, site: String, column: String)] {
        typealias Columns = TicketMetricRow.Columns
        guard let ticket = try TicketMetricRow.select(Columns.site, Columns.createdAt, Columns.lastSolvedAt, Columns.firstSolvedAt,
                                                      Columns.escalatedAt)
            .filter(key: id).asRequest(of: Row.self).fetchOne(db) else { return [] }
        let site: String = ticket[Columns.site]
        let createdAt: Int64 = ticket[Columns.createdAt]
        var out: [(Int64, String, String)] = [(day(createdAt), site, "created")]
        if let t: Int64 = ticket[Columns.lastSolvedAt] { out.append((day(t), site, "solved")) }
        if let t: Int64 = ticket[Columns.firstSolvedAt] { out.append((day(t), site, "firstSolved")) }
        if ticket[Columns.escalatedAt] as Int64? != nil { out.append((day(createdAt), site, "escalated")) }
        let clocks = ClockRow.select(ClockRow.Columns.deadline, ClockRow.Columns.stop)
            .filter(ClockRow.Columns.ticket == id && ClockRow.Columns.target != nil).asRequest(of: Row.self)
        for clock in try clocks.fetchAll(db) {
            let deadline: Int64? = clock[ClockRow.Columns.deadline], stop: Int64? = clock[ClockRow.Columns.stop]
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
}
