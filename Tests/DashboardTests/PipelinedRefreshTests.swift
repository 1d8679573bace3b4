@testable import Dashboard
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// ``MetricIndex/refresh(now:batch:progress:shouldContinue:)`` derives a batch from a read snapshot
/// while the writer stores the one before: a ticket written in between must not keep the facts of its
/// older state, and none may be left listed or derived twice over.
@Suite struct PipelinedRefreshTests {
    static let now: Int64 = 1_790_000_000_000

    func listing(_ store: TicketDatabase) async throws -> [String: Int64] {
        try await store.writer.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT id, seq FROM metricDirty").map { ($0["id"], $0["seq"]) })
        }
    }

    /// A store file with its own reader and writer connections, and the folder to remove after.
    func fileStore() throws -> (TicketDatabase, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let store = try TicketDatabase(TicketDatabase.openPool(path: folder + "/tierline.sqlite"), key: .generate())
        try store.initialize(site: try SiteID("north"), role: .site)
        return (store, folder)
    }

    func facts(_ store: TicketDatabase) async throws -> [String: TicketMetricRow] {
        try await store.writer.read { db in
            var out = Dictionary(uniqueKeysWithValues: try TicketMetricRow.fetchAll(db).map { ($0.id, $0) })
            for clock in try ClockRow.order(ClockRow.Columns.ticket, Column("kind"), Column("cycle")).fetchAll(db) { out[clock.ticket]?.clocks.append(clock) }
            return out
        }
    }

    @Test func everyWriteListsItsTicketUnderANumberNeverUsedBefore() async throws {
        let store = try memoryStore("north")
        let index = try await MetricIndex(store)
        let ticket = try store.createTicket(TicketDraft(subject: "Printer offline"))
        let id = ticket.id.lowercased()
        let created = try #require(try await listing(store)[id])
        _ = try store.update(ticket.id, [(.priority, .text("high"))])
        let updated = try #require(try await listing(store)[id])
        #expect(updated > created, "a write to a listed ticket lists it again under a larger number")
        try await index.refresh(now: Self.now)
        #expect(try await listing(store).isEmpty)
        // The list is empty: a table without AUTOINCREMENT would start its numbers again at 1.
        _ = try store.update(ticket.id, [(.priority, .text("urgent"))])
        let again = try #require(try await listing(store)[id])
        #expect(again > updated, "numbers are never used twice, even after the list was drained")
    }

    /// SQLite gives a trigger's statements the conflict clause of the statement that fired them, if it
    /// has one: the listing must be renewed whatever clause a later writer of `ticket` uses.
    @Test func aWriteWithItsOwnConflictClauseListsTheTicketAgainToo() async throws {
        let store = try memoryStore("north")
        _ = try await MetricIndex(store)
        let id = try store.createTicket(TicketDraft(subject: "Printer offline")).id.lowercased()
        var last = try #require(try await listing(store)[id])
        for clause in ["OR IGNORE", "OR ROLLBACK", "OR FAIL", "OR ABORT", "OR REPLACE"] {
            try await store.writer.write { db in try db.execute(sql: "UPDATE \(clause) ticket SET priority = priority WHERE id = ?", arguments: [id]) }
            let now = try #require(try await listing(store)[id])
            #expect(now > last, "UPDATE \(clause): listed under \(now), was \(last)")
            last = now
        }
    }

    @Test func aRefreshToldToStopFirstDerivesNothing() async throws {
        let store = try memoryStore("north")
        for n in 0..<5 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        let index = try await MetricIndex(store)
        let prepared = Mutex(0)
        let report = try await index.refresh(now: Self.now, shouldContinue: { false }, afterPreparing: { ids in prepared.withLock { $0 += ids.count } })
        #expect(report.derived == 0 && report.remaining == 5)
        #expect(prepared.withLock { $0 } == 0, "no batch is prepared only to be dropped")
        // Told to stop after one batch: the batch is stored, and the next is not prepared.
        let calls = Mutex(0)
        let one = try await index.refresh(now: Self.now, batch: 2, shouldContinue: { calls.withLock { n in defer { n += 1 }; return n == 0 } },
                                          afterPreparing: { ids in prepared.withLock { $0 += ids.count } })
        #expect(one.derived == 2 && one.remaining == 3)
        #expect(prepared.withLock { $0 } == 2)
    }

    /// The dashboard's refresher and a mirror's can refresh one store at once: each ticket is folded
    /// and evaluated by one of them, and the sums come out as one refresh would leave them.
    /// (A batch of 70 is prepared in two halves at once, each from its own snapshot.)
    @Test(arguments: [20, 70]) func twoRefreshesOfOneStoreShareTheTickets(batch: Int) async throws {
        let (store, folder) = try fileStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for n in 0..<300 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        let index = try await MetricIndex(store)
        let seen = Mutex<[String: Int]>([:])
        let count: @Sendable ([String]) async throws -> Void = { ids in seen.withLock { for id in ids { $0[id, default: 0] += 1 } } }
        async let first = index.refresh(now: Self.now, batch: batch, afterPreparing: count)
        async let second = index.refresh(now: Self.now, batch: batch, afterPreparing: count)
        let (a, b) = try await (first, second)
        #expect(a.derived + b.derived == 300, "\(a.derived) + \(b.derived)")
        let twice = seen.withLock { $0.values.filter { $0 > 1 }.count }
        #expect(twice == 0, "tickets prepared by both refreshes")
        #expect(try await index.pending() == 0)
        let sums = try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT SUM(created) FROM metricDay") }
        #expect(sums == 300)
    }

    /// A refresh that gives up a claim twice (a failure after its store) must not take the claim
    /// another refresh holds on the same ticket since.
    @Test func aRefreshReleasesOnlyItsOwnClaims() throws {
        let store = try memoryStore("north")
        let first = Claims(store), second = Claims(store), third = Claims(store)
        let ticket = MetricIndex.Prepared(id: "t", version: 1, snapshot: .facts(nil))
        #expect(first.take("t"))
        first.release([ticket])
        #expect(second.take("t"), "released, so another refresh may claim it")
        first.release([ticket])
        #expect(!third.take("t"), "the second refresh still holds it")
        second.release([ticket])
        #expect(third.take("t"))
        third.release([ticket])
    }

    /// A refresh that reads a changed configuration starts a new generation: a refresh still holding
    /// facts derived with the configuration before stores none of them, and leaves its tickets listed.
    @Test func factsOfAnOlderConfigurationAreNotStoredOnceANewerOneIsInForce() async throws {
        let store = try memoryStore("north")
        for n in 0..<6 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        let index = try await MetricIndex(store)
        let once = Mutex(false)
        let newer = Mutex<MetricIndex.RefreshReport?>(nil)
        let older = try await index.refresh(now: Self.now, batch: 2, afterPreparing: { _ in
            guard once.withLock({ done in defer { done = true }; return !done }) else { return }
            // A configuration version arrives, and another refresh reads it and runs to the end.
            try await store.writer.write { db in try db.execute(sql: "UPDATE metricState SET value = 1 WHERE key = 'configChanged'") }
            let report = try await index.refresh(now: Self.now)
            newer.withLock { $0 = report }
        })
        #expect(older.derived == 0, "nothing derived with the older configuration is stored: \(older.derived)")
        #expect(newer.withLock { $0?.derived } == 4, "the newer refresh left the two tickets the older one held")
        #expect(try await index.pending() == 2, "those two stay listed")
        #expect(try await index.refresh(now: Self.now).derived == 2)
        #expect(try await index.pending() == 0)
    }

    /// A ticket whose history no longer decodes fails in the snapshot and again in the writer: it is
    /// reported with the writer's error, its facts are dropped, and the others are derived.
    @Test func aTicketThatCannotBeDerivedIsReportedAndHoldsNoOtherBack() async throws {
        let store = try memoryStore("north")
        let damaged = try store.createTicket(TicketDraft(subject: "Printer offline")).id.lowercased()
        let sound = try store.createTicket(TicketDraft(subject: "VPN drops")).id.lowercased()
        let index = try await MetricIndex(store)
        try await store.writer.write { db in
            try db.execute(sql: """
                UPDATE block SET bytes = x'00' WHERE (origin, seq) IN (SELECT origin, seq FROM entityBlock WHERE entity = ?)
                """, arguments: [UUID(uuidString: damaged)!.keyBytes])
        }
        let report = try await index.refresh(now: Self.now)
        #expect(report.failed.map(\.id) == [damaged])
        #expect(report.failed.first?.error.contains("damaged") == true, "\(report.failed)")
        #expect(report.derived == 1)
        #expect(try await index.pending() == 0, "dropped, not left listed")
        #expect(Set(try await facts(store).keys) == [sound])
    }

    @Test func aTicketWrittenAfterItsFactsWerePreparedGetsTheFactsOfItsNewState() async throws {
        let store = try memoryStore("north")
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline"))
        _ = try store.createTicket(TicketDraft(subject: "VPN drops"))
        let index = try await MetricIndex(store)
        let once = Mutex(false)
        let report = try await index.refresh(now: Self.now, afterPreparing: { _ in
            guard once.withLock({ done in defer { done = true }; return !done }) else { return }
            _ = try store.update(printer.id, [(.status, .text("solved"))])
        })
        #expect(report.derived == 2, "each ticket counted once: \(report.derived)")
        #expect(try await index.pending() == 0)
        let row = try #require(try await facts(store)[printer.id.lowercased()])
        #expect(row.status == "solved" && !row.isOpen, "the facts of the state after the write, not of the snapshot: \(row.status)")
    }

    /// Writes land between every preparation and its store, on tickets of the batch being stored, of
    /// the next and of batches already stored, through a store file's own reader and writer
    /// connections. The facts then equal those derived again from scratch with no write in between.
    /// (A batch of 70 is prepared in two halves at once, each from its own snapshot.)
    @Test(arguments: [3, 70]) func factsEqualADerivationFromScratchWhateverLandsBetweenTheStages(batch: Int) async throws {
        let (store, folder) = try fileStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var ids: [String] = []
        for n in 0..<(batch < 64 ? 40 : 250) { ids.append(try store.createTicket(TicketDraft(subject: "Ticket \(n)")).id) }
        let index = try await MetricIndex(store)
        let statuses = ["open", "pending_customer", "solved", "open"]
        let round = Mutex(0)
        let ticketIDs = ids
        let report = try await index.refresh(now: Self.now, batch: batch, afterPreparing: { prepared in
            let n = round.withLock { n in defer { n += 1 }; return n }
            guard n < 60 else { return }
            // A ticket of this batch, one stored before it and one listed after it.
            let targets: [String?] = [prepared.first, ticketIDs[(n * 7) % ticketIDs.count], ticketIDs[(n * 3 + 11) % ticketIDs.count]]
            for (k, target) in targets.enumerated() {
                guard let target else { continue }
                _ = try store.update(target, [(.status, .text(statuses[(n + k) % statuses.count])), (.priority, .text(n % 2 == 0 ? "high" : "low"))])
            }
        })
        #expect(try await index.pending() == 0, "nothing is left listed")
        #expect(report.failed.isEmpty)
        let pipelined = try await facts(store)
        #expect(pipelined.count == ticketIDs.count)

        try await store.writer.write { db in try db.execute(sql: "UPDATE metricState SET value = 1 WHERE key = 'configChanged'") }
        #expect(try await index.refresh(now: Self.now).derived == ticketIDs.count)
        let fromScratch = try await facts(store)
        for (id, row) in fromScratch {
            let same = pipelined[id] == row
            #expect(same, "ticket \(id): status \(pipelined[id]?.status ?? "-"), priority \(pipelined[id]?.priority ?? "-"); from scratch \(row.status), \(row.priority)")
        }
    }
}
