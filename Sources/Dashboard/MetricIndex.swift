import Escalation
import Foundation
import GRDB
import Synchronization
import TicketModel
import TicketStore

/// Keeps the dashboard's per-ticket facts (`metricTicket`, `metricClock`, `metricHandoff`) and the
/// per-day sums (`metricDay`) current.
///
/// Every write to a ticket row lists the ticket in `metricDirty` (a trigger, in the writer's own
/// transaction); a new configuration version lists every ticket.
/// ``refresh(now:batch:progress:shouldContinue:)`` re-derives listed tickets in bounded transactions,
/// each of which also clears what it derived, so a crash at any point leaves the facts either current
/// or still listed, never silently stale.
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
        /// Tickets still listed when the refresh ended: those left when `shouldContinue` said stop or
        /// a configuration arrived, written since, or held by another refresh of the store.
        public var remaining = 0
        /// The tickets derived (lowercase ids), up to ``listedLimit``; `nil` past it.
        public var tickets: [String]? = []
        /// Fact-table indexes still set aside when the refresh ended (a large backlog is left, or
        /// building them failed): the dashboard's queries scan until they are built.
        public var indexesAside = 0
        /// Why building a set-aside index failed; the next refresh tries again.
        public var indexError: String?
        public static let listedLimit = 200

        public static func == (a: RefreshReport, b: RefreshReport) -> Bool {
            a.derived == b.derived && a.remaining == b.remaining && a.failed.map(\.id) == b.failed.map(\.id)
        }
    }

    /// Derives the facts of every listed ticket, `batch` tickets per transaction, on two threads: a
    /// read snapshot folds and evaluates the next batch while the writer stores the one before. A
    /// ticket written after its snapshot is derived again in the writer's transaction, and tickets
    /// another refresh of this store in this process is deriving are left to it.
    ///
    /// `shouldContinue` is asked before the first batch and before each store; once it says stop,
    /// the batch already derived is stored and no other is started (a stopping server does not wait
    /// for a long backlog).
    ///
    /// With a large backlog (a first derivation, or one after a configuration change) the fact
    /// tables' secondary indexes are set aside while facts are derived, and built again by the
    /// refresh that ends with a small one (``FactIndexes``); meanwhile the dashboard's queries scan.
    /// - Parameters:
    ///   - now: the evaluation time (ms): it decides nothing stored except which clock deadlines are known.
    ///   - progress: called after each batch with (done, total): the tickets this refresh derived, and
    ///     those listed when it began (another refresh of the store may derive some of them).
    @discardableResult
    public func refresh(now: Int64, batch: Int = 200, progress: ((Int, Int) -> Void)? = nil,
                        shouldContinue: () -> Bool = { true }) async throws -> RefreshReport {
        try await refresh(now: now, batch: batch, progress: progress, shouldContinue: shouldContinue, afterPreparing: nil)
    }

    /// ``refresh(now:batch:progress:shouldContinue:)``, calling `afterPreparing` with the tickets of
    /// each batch once their facts are derived from the read snapshot and before they are stored
    /// (tests write there, as another writer could).
    @discardableResult
    package func refresh(now: Int64, batch: Int = 200, progress: ((Int, Int) -> Void)? = nil, shouldContinue: () -> Bool = { true },
                         setAsideAt: Int = FactIndexes.minimum,
                         afterPreparing: (@Sendable ([String]) async throws -> Void)?) async throws -> RefreshReport {
        let (library, generation, total, aside) = try await database.writer.write { db in
            // The configuration is read in the transaction that clears its flag: a version arriving
            // after this sets the flag again. Clearing it starts a new generation, which ends every
            // other refresh still deriving with the configuration before.
            if try Int.fetchOne(db, sql: "SELECT value FROM metricState WHERE key = 'configChanged'") != 0 {
                try db.execute(sql: "INSERT OR IGNORE INTO metricDirty (id) SELECT id FROM ticket")
                try db.execute(sql: "UPDATE metricState SET value = 0 WHERE key = 'configChanged'")
                try db.execute(sql: """
                    INSERT INTO metricState (key, value) VALUES ('configGeneration', 1)
                    ON CONFLICT(key) DO UPDATE SET value = value + 1
                    """)
            }
            let listed = try Self.dirtyCount(db)
            if try FactIndexes.worthSettingAside(listed: listed, minimum: setAsideAt, db) { try FactIndexes.setAside(db) }
            return (ConfigLibrary(bodies: try String.fetchAll(db, sql: "SELECT body FROM configVersion ORDER BY id")),
                    try Self.configGeneration(db), listed, try !FactIndexes.aside(db).isEmpty)
        }
        // Indexes set aside, by this refresh or another (one that crashed too), are built again by
        // the refresh that ends with a small backlog, however it ends. A refresh that found none
        // aside takes no transaction for them: `tierline serve` refreshes every second.
        let derived: Result<RefreshReport, any Error>
        do {
            derived = .success(try await deriveListed(now: now, batch: batch, progress: progress, shouldContinue: shouldContinue,
                                                      afterPreparing: afterPreparing, library: library, generation: generation, total: total))
        } catch {
            derived = .failure(error)
        }
        let settled = aside ? await FactIndexes.settle(database.writer, minimum: setAsideAt) : FactIndexes.Settled()
        var report = try derived.get()
        report.indexesAside = settled.aside.count
        report.indexError = settled.error
        return report
    }

    /// The derivation of ``refresh(now:batch:progress:shouldContinue:setAsideAt:afterPreparing:)``,
    /// once it has read the configuration and what is listed.
    private func deriveListed(now: Int64, batch: Int, progress: ((Int, Int) -> Void)?, shouldContinue: () -> Bool,
                              afterPreparing: (@Sendable ([String]) async throws -> Void)?,
                              library: ConfigLibrary, generation: Int64, total: Int) async throws -> RefreshReport {
        var report = RefreshReport()
        // Two stages, so that a store's two cores both work: a read snapshot folds and evaluates the
        // next batch (most of the work) while the writer stores the batch before it.
        let database = database
        let claims = Claims(database)
        // The snapshot's stage folds and evaluates a batch in two halves at once, each from a read
        // snapshot of its own, so that it keeps pace with the writer: alone it took about half as
        // long again as the writer's stage (`perf` over `tierline-bench --dashboard`).
        let split = ProcessInfo.processInfo.activeProcessorCount > 1
        @Sendable func prepare(after: Int64?) async throws -> PreparedBatch {
            var after = after
            while true {
                let from = after
                let listed = try await database.writer.read { db in try Self.claimListed(db, after: from, limit: batch, claims: claims) }
                guard let last = listed.last?.seq else { return PreparedBatch(prepared: [], last: nil) }
                do {
                    let prepared: [Prepared]
                    if split, listed.count >= 2 * Self.partMinimum {
                        let half = listed.count / 2
                        async let first = database.writer.read { db in
                            try Self.prepare(db, Array(listed[..<half]), library: library, now: now, claims: claims)
                        }
                        async let second = database.writer.read { db in
                            try Self.prepare(db, Array(listed[half...]), library: library, now: now, claims: claims)
                        }
                        prepared = try await first + second
                    } else {
                        prepared = try await database.writer.read { db in try Self.prepare(db, listed, library: library, now: now, claims: claims) }
                    }
                    try await afterPreparing?(prepared.map(\.id))
                    // Every ticket claimed was derived since by another process: look further.
                    if prepared.isEmpty {
                        after = last
                        continue
                    }
                    return PreparedBatch(prepared: prepared, last: last)
                } catch {
                    claims.release(ids: listed.map(\.id))
                    throw error
                }
            }
        }
        guard shouldContinue() else {
            report.remaining = try await database.writer.read { db in try Self.dirtyCount(db) }
            return report
        }
        var batched = try await prepare(after: nil)
        var next = batched.prepared
        // The batch prepared and not stored when the loop ends (a stop, an error) is left to the next refresh.
        defer { claims.release(next) }
        while !next.isEmpty {
            let prepared = next
            // Asked before the store, so that no batch is prepared only to be dropped.
            let more = shouldContinue()
            let last = batched.last
            async let following = more ? prepare(after: last) : PreparedBatch(prepared: [], last: nil)
            let stored: (ids: [String], failed: [(id: String, error: String)])?
            do {
                stored = try await database.writer.write { db in
                    try Self.store(db, prepared, library: library, generation: generation, now: now)
                }
                claims.release(prepared)
            } catch {
                claims.release(prepared)
                next = (try? await following)?.prepared ?? []
                // A cancelled refresh's interrupted transaction fails as a database error.
                if Task.isCancelled { throw CancellationError() }
                throw error
            }
            batched = try await following
            next = batched.prepared
            // A newer configuration came into force: its refresh derives every ticket again.
            guard let stored else { break }
            // Listing numbers only grow, so what follows the last one holds every ticket listed since;
            // the last round looks from the start, for a ticket this refresh found listed and left so.
            if more, next.isEmpty {
                batched = try await prepare(after: nil)
                next = batched.prepared
            }
            let (ids, failed) = stored
            let count = ids.count
            if let listed = report.tickets {
                report.tickets = listed.count + count > RefreshReport.listedLimit ? nil : listed + ids
            }
            report.derived += count
            report.failed += failed
            progress?(min(report.derived, total), max(total, report.derived))
            if !more { break }
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
        var days = DayMoves()
        try derive(db, id, library: library, now: now, reader: TicketDatabase.StateReader(db), days: &days)
        try days.write(db)
    }

    /// Replaces the facts of one ticket, adding the moves of its per-day sums to `days`.
    static func derive(_ db: Database, _ id: String, library: ConfigLibrary, now: Int64,
                       reader: TicketDatabase.StateReader, days: inout DayMoves) throws {
        try replaceFacts(db, id, with: try facts(db, id, library: library, now: now, reader: reader), days: &days)
    }

    /// Unlists a ticket and replaces its facts with `row` (none: it has no facts), adding the moves
    /// of its per-day sums to `days`.
    static func replaceFacts(_ db: Database, _ id: String, with row: TicketMetricRow?, days: inout DayMoves) throws {
        try removeFacts(db, id, days: &days)
        if let row { try insert(db, row, days: &days) }
    }

    /// The facts of one ticket as `db` sees it, written nowhere: `nil` for a ticket with none (deleted,
    /// gone, or not created yet).
    static func facts(_ db: Database, _ id: String, library: ConfigLibrary, now: Int64,
                      reader: TicketDatabase.StateReader) throws -> TicketMetricRow? {
        // (One value, not a row: a GRDB row builds an index of its column names, a tenth of this stage.)
        guard let status = try String.fetchOne(db.cachedStatement(sql: "SELECT status FROM ticket WHERE id = ? AND NOT deleted"), arguments: [id]),
              let uuid = UUID(uuidString: id) else { return nil }
        let state = try reader.state(db, id: uuid)
        guard state.isCreated else { return nil }  // changes arrived before the ticket's creation
        let facts = TicketFacts(state)
        var row = TicketMetricRow(state, facts: facts, clocks: EscalationEngine.clocks(facts, library: library, now: now))
        if status == Status.merged.rawValue {
            row.status = Status.merged.rawValue
            row.isOpen = false
            // Leaves the backlog series at its last change (the merge), as it leaves the backlog; a
            // merged ticket's clocks that still run are void (its target carries on).
            row.lastSolvedAt = row.lastSolvedAt ?? state.updated.map { Int64($0.hlc.millis) } ?? row.createdAt
            row.clocks.removeAll { $0.stop == nil }
        }
        return row
    }

    private static func insert(_ db: Database, _ row: TicketMetricRow, days: inout DayMoves) throws {
        try row.insertWithClocksAndHandoffs(db)
        days.add(Self.contributions(row), sign: 1)
    }

    /// One listed ticket's facts, derived from a read snapshot, with the number its listing had there.
    struct Prepared: Sendable {
        let id: String
        /// The listing's `seq`: a write to the ticket after the snapshot lists it under a larger one.
        let version: Int64
        let snapshot: Snapshot
    }

    /// What the read snapshot made of a ticket.
    enum Snapshot: Sendable {
        /// Its facts (`nil`: it has none: deleted, gone, or not created yet).
        case facts(TicketMetricRow?)
        /// Its facts could not be derived there; the writer derives it again, and records the error
        /// it meets then.
        case failed
    }

    /// The number a ticket is listed under (no row: it is not listed).
    static let listedUnderSQL = "SELECT seq FROM metricDirty WHERE id = ?"

    /// A batch is prepared in two parts at once when each would hold at least this many tickets.
    static let partMinimum = 32

    /// A batch prepared, and the listing number to look after for the next.
    struct PreparedBatch: Sendable {
        let prepared: [Prepared]
        let last: Int64?
    }

    /// A listed ticket this refresh claimed, with the number it was listed under when claimed.
    struct Listed: Sendable {
        let id: String
        let seq: Int64
    }

    /// Claims up to `limit` listed tickets after the listing number `after`, in the order listed,
    /// leaving out those another refresh of this process is deriving.
    static func claimListed(_ db: Database, after: Int64?, limit: Int, claims: Claims) throws -> [Listed] {
        // In the order listed (a first derivation lists tickets in the store's order): tickets
        // written together share blocks, which the reader then decodes once.
        let listing = try Row.fetchCursor(db.cachedStatement(sql: "SELECT id, seq FROM metricDirty WHERE seq > ? ORDER BY seq"),
                                          arguments: [after ?? 0])
        var listed: [Listed] = []
        do {
            while listed.count < limit, let entry = try listing.next() {
                let id: String = entry[0]
                guard claims.take(id) else { continue }
                listed.append(Listed(id: id, seq: entry[1]))
            }
        } catch {
            claims.release(ids: listed.map(\.id))
            throw error
        }
        return listed
    }

    /// Derives, without writing, the facts of the claimed tickets `listed` as `db` sees them, each with
    /// the number it is listed under there (which a write since the claim may have raised). A ticket
    /// `db` no longer lists (another process derived it) is left out and its claim given up.
    static func prepare(_ db: Database, _ listed: [Listed], library: ConfigLibrary, now: Int64, claims: Claims) throws -> [Prepared] {
        var prepared: [Prepared] = []
        do {
            let reader = try TicketDatabase.StateReader(db)
            let version = try db.cachedStatement(sql: listedUnderSQL)
            for entry in listed {
                guard let seq = try Int64.fetchOne(version, arguments: [entry.id]) else {
                    claims.release(ids: [entry.id])
                    continue
                }
                // (`try?` would flatten "no facts" into a failure.)
                let snapshot: Snapshot
                do { snapshot = .facts(try Self.facts(db, entry.id, library: library, now: now, reader: reader)) } catch { snapshot = .failed }
                prepared.append(Prepared(id: entry.id, version: seq, snapshot: snapshot))
            }
        } catch {
            claims.release(ids: listed.map(\.id))
            throw error
        }
        return prepared
    }

    /// The configuration generation: a refresh that reads a changed configuration starts the next.
    static func configGeneration(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM metricState WHERE key = 'configGeneration'")) ?? 0
    }

    /// Stores the prepared facts of a batch in the caller's write transaction: each as prepared when
    /// its ticket is listed under the same number, derived again here when the ticket was written
    /// since the snapshot, skipped when its facts were stored since (it is no longer listed).
    /// - Returns: the tickets derived, and those whose facts could not be (their rows removed);
    ///   `nil`, storing nothing, when `library` is no longer the configuration in force (a refresh
    ///   started since read a newer one, `generation` is past).
    /// - Parameter together: `false` stores every ticket under a savepoint of its own (tests compare both ways).
    static func store(_ db: Database, _ prepared: [Prepared], library: ConfigLibrary, generation: Int64, now: Int64,
                      together: Bool = true) throws -> (ids: [String], failed: [(id: String, error: String)])? {
        guard try configGeneration(db) == generation else { return nil }
        // Each ticket still listed, with the number it is listed under now.
        var listed: [(entry: Prepared, version: Int64)] = []
        for entry in prepared {
            guard let version = try Int64.fetchOne(db.cachedStatement(sql: listedUnderSQL), arguments: [entry.id]) else { continue }
            listed.append((entry, version))
        }
        // The batch's moves of the per-day sums, written once at its end.
        var days = DayMoves()
        var rest = listed
        // The tickets unchanged since their snapshot (in a first derivation, all of them) take their
        // prepared facts under one savepoint for the whole batch: a savepoint per ticket took a fifth
        // of the writer's time. If storing one of them fails (its facts break a constraint), the
        // savepoint takes them all back, and the whole batch goes ticket by ticket below, where the
        // failure stays that ticket's own.
        if together {
            var moved = DayMoves()
            var left: [(entry: Prepared, version: Int64)] = []
            do {
                try db.inSavepoint {
                    for (entry, version) in listed {
                        guard version == entry.version, case .facts(let row) = entry.snapshot else {
                            left.append((entry, version))
                            continue
                        }
                        try replaceFacts(db, entry.id, with: row, days: &moved)
                    }
                    return .commit
                }
                days = moved
                rest = left
            } catch {}
        }
        let failed = try oneByOne(db, rest, days: &days, library: library, now: now)
        try days.write(db)
        return (listed.map(\.entry.id), failed)
    }

    /// Stores the facts of each of `listed`, ticket by ticket: each as prepared when its listing is
    /// unchanged, derived again here when it was written since its snapshot (or failed there). A
    /// ticket whose facts cannot be stored has them removed and is reported; the others go on.
    private static func oneByOne(_ db: Database, _ listed: [(entry: Prepared, version: Int64)], days: inout DayMoves,
                                 library: ConfigLibrary, now: Int64) throws -> [(id: String, error: String)] {
        var failed: [(id: String, error: String)] = []
        var reader: TicketDatabase.StateReader?
        for (entry, version) in listed {
            do {
                var moved = DayMoves()
                try db.inSavepoint {
                    if version == entry.version, case .facts(let row) = entry.snapshot {
                        try replaceFacts(db, entry.id, with: row, days: &moved)
                    } else {
                        // Written since the snapshot, or its derivation failed there: derived here, as
                        // the transaction sees it (a failure then is the ticket's own).
                        if reader == nil { reader = try TicketDatabase.StateReader(db) }
                        try derive(db, entry.id, library: library, now: now, reader: reader!, days: &moved)
                    }
                    return .commit
                }
                days.add(moved)
            } catch {
                // One bad ticket must not hold back the others: drop its facts and go on.
                try removeFacts(db, entry.id, days: &days)
                failed.append((entry.id, "\(error)"))
            }
        }
        return failed
    }

    /// Unlists a ticket and takes its facts, and their share of the per-day sums, away.
    static func removeFacts(_ db: Database, _ id: String) throws {
        var days = DayMoves()
        try removeFacts(db, id, days: &days)
        try days.write(db)
    }

    /// Unlists a ticket and takes its facts away, adding the moves of its per-day sums to `days`.
    static func removeFacts(_ db: Database, _ id: String, days: inout DayMoves) throws {
        try db.cachedStatement(sql: "DELETE FROM metricDirty WHERE id = ?").execute(arguments: [id])
        // Every derivation starts here, and so does every removal: the ticket's facts take the next
        // number of the feed (its writes serialize, so numbers grow in commit order).
        try db.cachedStatement(sql: """
            INSERT INTO metricFeed (ticket, seq) VALUES (?, COALESCE((SELECT MAX(seq) FROM metricFeed), 0) + 1)
            ON CONFLICT(ticket) DO UPDATE SET seq = excluded.seq
            """).execute(arguments: [id])
        let held = try contributions(db, id)
        // A ticket without a facts row has no clocks or handoffs either: they are written and
        // removed together. Most tickets of a first derivation have none.
        guard let held else { return }
        days.add(held, sign: -1)
        try db.cachedStatement(sql: "DELETE FROM metricTicket WHERE id = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "DELETE FROM metricClock WHERE ticket = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "DELETE FROM metricHandoff WHERE ticket = ?").execute(arguments: [id])
    }

    /// What one ticket's stored facts add to `metricDay`, or `nil` if the ticket has no facts row.
    static func contributions(_ db: Database, _ id: String) throws -> [DayMoves.Key]? {
        guard let ticket = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT site, createdAt, lastSolvedAt, firstSolvedAt, escalatedAt FROM metricTicket WHERE id = ?
            """), arguments: [id]) else { return nil }
        let clocks = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT deadline, stop FROM metricClock WHERE ticket = ? AND target IS NOT NULL
            """), arguments: [id])
        return contributions(site: ticket["site"], createdAt: ticket["createdAt"], lastSolvedAt: ticket["lastSolvedAt"],
                             firstSolvedAt: ticket["firstSolvedAt"], escalatedAt: ticket["escalatedAt"],
                             clocks: clocks.map { ($0["deadline"], $0["stop"]) })
    }

    /// What a derived row adds to `metricDay` (the same as ``contributions(_:_:)`` reads back once it
    /// is stored).
    static func contributions(_ row: TicketMetricRow) -> [DayMoves.Key] {
        contributions(site: row.site, createdAt: row.createdAt, lastSolvedAt: row.lastSolvedAt, firstSolvedAt: row.firstSolvedAt,
                      escalatedAt: row.escalatedAt, clocks: row.clocks.filter { $0.target != nil }.map { ($0.deadline, $0.stop) })
    }

    /// (day, site, column) once for each per-day sum a ticket counts in.
    static func contributions(site: String, createdAt: Int64, lastSolvedAt: Int64?, firstSolvedAt: Int64?, escalatedAt: Int64?,
                              clocks: [(deadline: Int64?, stop: Int64?)]) -> [DayMoves.Key] {
        var out = [DayMoves.Key(day: day(createdAt), site: site, column: .created)]
        if let t = lastSolvedAt { out.append(.init(day: day(t), site: site, column: .solved)) }
        if let t = firstSolvedAt { out.append(.init(day: day(t), site: site, column: .firstSolved)) }
        if escalatedAt != nil { out.append(.init(day: day(createdAt), site: site, column: .escalated)) }
        for clock in clocks {
            if let deadline = clock.deadline {
                out.append(.init(day: day(deadline), site: site, column: .breached))
                if clock.stop == nil { out.append(.init(day: day(deadline), site: site, column: .running)) }
            } else if let stop = clock.stop {
                out.append(.init(day: day(stop), site: site, column: .achieved))
            }
        }
        return out
    }
}

/// Moves of the per-day sums (`metricDay`) gathered in memory and written once: a batch of tickets
/// touches a few days and sites, so each (day, site, column) is one upsert, not one per ticket.
struct DayMoves {
    enum Column: String, CaseIterable {
        case created, solved, firstSolved, escalated, achieved, breached, running
    }

    struct Key: Hashable {
        var day: Int64
        var site: String
        var column: Column
    }

    private(set) var moves: [Key: Int] = [:]

    mutating func add(_ keys: [Key], sign: Int) {
        for key in keys { moves[key, default: 0] += sign }
    }

    mutating func add(_ other: DayMoves) {
        moves.merge(other.moves, uniquingKeysWith: +)
    }

    /// Adds the moves to `metricDay` (zero moves are skipped).
    func write(_ db: Database) throws {
        for (key, amount) in moves where amount != 0 {
            let column = key.column.rawValue
            try db.cachedStatement(sql: """
                INSERT INTO metricDay (day, site, \(column)) VALUES (?, ?, ?)
                ON CONFLICT(day, site) DO UPDATE SET \(column) = \(column) + excluded.\(column)
                """).execute(arguments: [key.day, key.site, amount])
        }
    }
}

/// The tickets one refresh is deriving, in a table of every refresh in this process by store: the
/// dashboard's refresher and a mirror's can refresh one store (one `TicketDatabase`) at once, and
/// each leaves the other's tickets to it instead of folding and evaluating them twice. (Refreshes in
/// two processes, or through two `TicketDatabase`s of one file, still may.)
final class Claims: Sendable {
    private static let held = Mutex<[ObjectIdentifier: Set<String>]>([:])
    private let store: ObjectIdentifier
    /// This refresh's own claims: a release never takes another refresh's.
    private let mine = Mutex<Set<String>>([])

    init(_ database: TicketDatabase) { store = ObjectIdentifier(database.writer) }

    /// Claims ticket `id` for this refresh; `false` if another refresh of the store holds it.
    func take(_ id: String) -> Bool {
        let taken = Self.held.withLock { held in held[store, default: []].insert(id).inserted }
        if taken { mine.withLock { _ = $0.insert(id) } }
        return taken
    }

    /// Gives up this refresh's claims on `prepared` (claims it no longer holds are left alone).
    func release(_ prepared: [MetricIndex.Prepared]) { release(ids: prepared.map(\.id)) }

    /// Gives up this refresh's claims on the tickets `ids` (claims it no longer holds are left alone).
    func release(ids: [String]) {
        guard !ids.isEmpty else { return }
        let own = mine.withLock { mine in ids.compactMap { mine.remove($0) } }
        guard !own.isEmpty else { return }
        Self.held.withLock { held in
            held[store]?.subtract(own)
            if held[store]?.isEmpty == true { held[store] = nil }
        }
    }
}
