@testable import Dashboard
import Escalation
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// What makes a first derivation fast leaves the facts a slower one would.
///
/// A refresh that derives most facts afresh sets the fact tables' secondary indexes aside, and the
/// refresh that ends with a small backlog builds them again (``FactIndexes``): the facts and sums are
/// those of a refresh that kept them, the indexes come back exactly as they were however that
/// refresh ends, and a crash in between leaves them listed for the next refresh to build. The writer stores a batch's prepared facts under one
/// savepoint: the same facts as a savepoint per ticket, and a ticket whose facts cannot be stored
/// still fails alone.
@Suite struct FirstDerivationTests {
    static let now: Int64 = 1_790_000_000_000

    /// The secondary indexes of the fact tables, by name, with their SQL.
    func indexes(_ store: TicketDatabase) async throws -> [String: String] {
        try await store.writer.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: """
                SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
                AND tbl_name IN ('metricTicket', 'metricClock', 'metricHandoff')
                """).map { ($0[0], $0[1]) })
        }
    }

    func aside(_ store: TicketDatabase) async throws -> [String] {
        try await store.writer.read { db in try FactIndexes.aside(db) }
    }

    /// Every fact row and sum, as text, in a fixed order.
    func everything(_ store: TicketDatabase) async throws -> [String] {
        try await store.writer.read { db in try everything(db) }
    }

    func everything(_ db: Database) throws -> [String] {
            var out: [String] = []
            for table in ["metricTicket ORDER BY id", "metricClock ORDER BY ticket, kind, cycle", "metricHandoff ORDER BY ticket, id",
                          "metricDay WHERE created + solved + firstSolved + escalated + achieved + breached + running != 0 ORDER BY day, site"] {
                out += try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map { "\($0)" }
            }
            return out
    }

    /// A store of `count` tickets, some solved, some urgent, over a few days.
    func store(_ count: Int) throws -> TicketDatabase {
        let clock = Mutex<Int64>(Self.now - 10 * 86_400_000)
        let store = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: { UInt64(clock.withLock { $0 }) })
        try store.initialize(site: try SiteID("north"), role: .site)
        for n in 0..<count {
            clock.withLock { $0 += 3_600_000 }
            let ticket = try store.createTicket(TicketDraft(subject: "Ticket \(n)"))
            if n % 3 == 0 { _ = try store.update(ticket.id, [(.status, .text("solved"))]) }
            if n % 4 == 1 { _ = try store.update(ticket.id, [(.priority, .text("urgent"))]) }
        }
        return store
    }

    @Test func aFirstDerivationSetsTheIndexesAsideAndLeavesWhatARefreshKeepingThemLeaves() async throws {
        let store = try store(30)
        let index = try await MetricIndex(store)
        let before = try await indexes(store)
        #expect(before.count >= 10, "the fact tables' indexes: \(before.keys.sorted())")
        let during = Mutex<[String: String]?>(nil)
        let report = try await index.refresh(now: Self.now, batch: 7, setAsideAt: 10, afterPreparing: { _ in
            let seen = try await indexes(store)
            during.withLock { $0 = $0 ?? seen }
            #expect(Set(try await aside(store)) == Set(before.keys).subtracting(FactIndexes.kept), "every other index is listed aside while the refresh runs")
        })
        #expect(report.derived == 30)
        #expect(during.withLock { $0?.keys.sorted() } == FactIndexes.kept, "no other secondary index while the refresh inserts")
        #expect(try await indexes(store) == before, "the same indexes, with the same definitions, once it ends")
        #expect(try await aside(store).isEmpty)
        let bulk = try await everything(store)

        // A new configuration lists every ticket again; this refresh keeps the indexes.
        try await store.writer.write { db in try db.execute(sql: "UPDATE metricState SET value = 1 WHERE key = 'configChanged'") }
        let kept = Mutex(true)
        #expect(try await index.refresh(now: Self.now, batch: 7, setAsideAt: .max, afterPreparing: { _ in
            let seen = try await indexes(store)
            kept.withLock { $0 = $0 && seen == before }
        }).derived == 30)
        #expect(kept.withLock { $0 }, "a refresh below the threshold keeps the indexes")
        #expect(try await everything(store) == bulk, "the facts and sums do not depend on the indexes")
    }

    @Test func aRefreshOfAFewTicketsAmongManyKeepsTheIndexes() async throws {
        let store = try store(12)
        let index = try await MetricIndex(store)
        #expect(try await index.refresh(now: Self.now, setAsideAt: 1, afterPreparing: nil).derived == 12)
        let before = try await indexes(store)
        for id in try await store.writer.read({ db in try String.fetchAll(db, sql: "SELECT id FROM ticket LIMIT 3") }) {
            _ = try store.update(id, [(.priority, .text("high"))])
        }
        let kept = Mutex(true)
        #expect(try await index.refresh(now: Self.now, setAsideAt: 1, afterPreparing: { _ in
            let seen = try await indexes(store)
            kept.withLock { $0 = $0 && seen == before }
        }).derived == 3)
        #expect(kept.withLock { $0 }, "3 tickets listed among 12 with facts: inserting into the indexes is cheaper")
    }

    /// A refresh stopped or failed with a large backlog leaves the indexes aside for the refresh that
    /// carries on (the mirror derives in slices); the one that ends with a small backlog builds them.
    @Test func aRefreshLeftWithALargeBacklogKeepsTheIndexesAsideForTheNext() async throws {
        let store = try store(20)
        let index = try await MetricIndex(store)
        let before = try await indexes(store)
        let setAside = before.count - FactIndexes.kept.count
        // Told to stop after its first batch: 15 left, above the threshold of 10.
        let calls = Mutex(0)
        let stopped = try await index.refresh(now: Self.now, batch: 5, shouldContinue: { calls.withLock { n in defer { n += 1 }; return n == 0 } },
                                              setAsideAt: 10, afterPreparing: nil)
        #expect(stopped.derived == 5 && stopped.remaining == 15)
        #expect(stopped.indexesAside == setAside && stopped.indexError == nil)
        #expect(try await aside(store).count == setAside)

        // Failing in its first batch.
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await index.refresh(now: Self.now, batch: 5, setAsideAt: 10, afterPreparing: { _ in throw Refused() })
        }
        #expect(try await aside(store).count == setAside, "15 still wait: the indexes stay aside")

        let drained = try await index.refresh(now: Self.now, batch: 5, setAsideAt: 10, afterPreparing: nil)
        #expect(drained.derived == 15 && drained.remaining == 0 && drained.indexesAside == 0)
        #expect(try await indexes(store) == before)
        #expect(try await aside(store).isEmpty)
    }

    /// A cancelled refresh still builds the indexes (GRDB refuses a cancelled task's transactions).
    @Test func theIndexesAreBuiltFromACancelledTask() async throws {
        let store = try store(8)
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        let before = try await indexes(store)
        try await store.writer.write { db in _ = try FactIndexes.setAside(db) }
        let settled = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            #expect(Task.isCancelled)
            return await FactIndexes.settle(store.writer, minimum: 10)
        }.value
        #expect(settled == FactIndexes.Settled())
        #expect(try await indexes(store) == before)
    }

    /// Building an index can fail (a full disk): the refresh still reports what it derived, builds
    /// the others, and leaves that one listed for the next refresh.
    @Test func anIndexThatCannotBeBuiltFailsNoRefresh() async throws {
        let store = try store(8)
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        let before = try await indexes(store)
        try await store.writer.write { db in
            _ = try FactIndexes.setAside(db)
            try db.execute(sql: "INSERT INTO metricIndexAside (name, sql) VALUES ('broken', 'CREATE INDEX broken ON noSuchTable (x)')")
        }
        let id = try await store.writer.read { db in try String.fetchOne(db, sql: "SELECT id FROM ticket LIMIT 1") }
        _ = try store.update(try #require(id), [(.priority, .text("urgent"))])
        let report = try await index.refresh(now: Self.now)
        #expect(report.derived == 1)
        #expect(report.indexesAside == 1)
        #expect(report.indexError?.contains("noSuchTable") == true, "\(report.indexError ?? "-")")
        #expect(try await indexes(store) == before, "the others are built")
        #expect(try await aside(store) == ["broken"])
    }

    /// A process that dies between setting the indexes aside and building them again: the queries answer
    /// as before (scanning), and the next refresh builds them, even one with nothing to derive.
    @Test func indexesLeftAsideByACrashAreBuiltByTheNextRefresh() async throws {
        let store = try store(15)
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        let queries = try await FleetQueries(store)
        let period = Period.last(days: 30, now: Self.now)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func answers() async throws -> Data {
            try encoder.encode(try await queries.summary(period: period, now: Self.now)) + encoder.encode(try await queries.metrics(period: period, now: Self.now))
        }
        let answered = try await answers()
        let before = try await indexes(store)

        let setAside = try await store.writer.write { db in try FactIndexes.setAside(db) }
        #expect(setAside == before.count - FactIndexes.kept.count)
        #expect(try await indexes(store).keys.sorted() == FactIndexes.kept)
        #expect(try await answers() == answered, "the summary and metrics do not depend on the indexes")

        let report = try await index.refresh(now: Self.now)
        #expect(report.derived == 0)
        #expect(try await indexes(store) == before)
        #expect(try await aside(store).isEmpty)
    }

    /// The prepared facts of every listed ticket, with the configuration generation they were read at.
    func prepared(_ store: TicketDatabase) async throws -> (prepared: [MetricIndex.Prepared], generation: Int64) {
        try await store.writer.read { db in
            let claims = Claims(store)
            let listed = try MetricIndex.claimListed(db, after: nil, limit: 1_000, claims: claims)
            let prepared = try MetricIndex.prepare(db, listed, library: ConfigLibrary(), now: Self.now, claims: claims)
            claims.release(prepared)
            return (prepared, try MetricIndex.configGeneration(db))
        }
    }

    @Test func aBatchStoredTogetherLeavesWhatOneSavepointPerTicketLeaves() async throws {
        let store = try store(25)
        _ = try await MetricIndex(store)
        let (prepared, generation) = try await prepared(store)
        #expect(prepared.count == 25)
        let copy = try DatabaseQueue()
        try store.writer.backup(to: copy)
        let together = try await store.writer.write { db in
            try MetricIndex.store(db, prepared, library: ConfigLibrary(), generation: generation, now: Self.now)
        }
        let apart = try await copy.write { db in
            try MetricIndex.store(db, prepared, library: ConfigLibrary(), generation: generation, now: Self.now, together: false)
        }
        #expect(together?.ids == apart?.ids && together?.ids.count == 25)
        #expect(together?.failed.isEmpty == true && apart?.failed.isEmpty == true)
        let stored = try await everything(store)
        #expect(stored.count > 25, "facts rows, clock rows and sums")
        #expect(try await copy.read { db in try everything(db) } == stored)
    }

    /// Two clock runs of one kind and cycle break `metricClock`'s primary key: the batch's savepoint
    /// takes everything back, and the batch is stored again ticket by ticket, so only that ticket fails.
    @Test func aTicketWhoseFactsBreakAConstraintFailsAloneInABatchStoredTogether() async throws {
        let store = try store(6)
        _ = try await MetricIndex(store)
        let (fromSnapshot, generation) = try await prepared(store)
        var prepared = fromSnapshot
        let bad = prepared[2].id
        guard case .facts(var row?) = prepared[2].snapshot else { Issue.record("no facts for \(bad)"); return }
        let run = ClockRow(ticket: bad, site: row.site, kind: "first_response", cycle: 0, start: row.createdAt)
        row.clocks = [run, run]
        prepared[2] = MetricIndex.Prepared(id: bad, version: prepared[2].version, snapshot: .facts(row))
        let batch = prepared
        let report = try await store.writer.write { db in
            try MetricIndex.store(db, batch, library: ConfigLibrary(), generation: generation, now: Self.now)
        }
        #expect(report?.ids.count == 6)
        #expect(report?.failed.map(\.id) == [bad])
        let (facts, listed, created) = try await store.writer.read { db in
            (try String.fetchSet(db, sql: "SELECT id FROM metricTicket"), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty"),
             try Int.fetchOne(db, sql: "SELECT SUM(created) FROM metricDay"))
        }
        #expect(facts == Set(prepared.map(\.id)).subtracting([bad]), "the other five keep their facts; the bad one has none")
        #expect(listed == 0, "none is left listed")
        #expect(created == 5, "the sums count the five stored, once each")
    }
}
