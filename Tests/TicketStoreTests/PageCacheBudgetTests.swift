import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// A batch that rewrites many stored tickets grows its connection's page cache for its transaction
/// only: the setting is the connection's own again once the batch commits or rolls back.
@Suite struct PageCacheBudgetTests {
    /// Enough stored tickets that their pages outgrow the store's 16 MiB cache.
    static let many = TicketDatabase.pageCacheKiB / PageCacheBudget.kibPerStoredTicket + 200

    private func cacheSize(_ store: TicketDatabase) throws -> Int {
        try store.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0 }
    }

    @Test func aBatchRewritingManyStoredTicketsHoldsTheirPagesAndThenGivesTheCacheBack() throws {
        let store = try makeStore("north")
        let original = try cacheSize(store)
        var ids: [UUID] = []
        try store.batch { batch in
            for n in 0..<Self.many { ids.append(try batch.create(TicketDraft(subject: "ticket \(n)"))) }
        }
        #expect(try cacheSize(store) == original, "creates alone never grow the cache")

        var during: [Int] = []
        let summary = try store.batch { batch in
            for (n, id) in ids.enumerated() {
                try batch.set(id, .assignee, .text("agent-\(n % 7)"))
                if n == 100 || n == ids.count - 1 {
                    during.append(try Int.fetchOne(batch.db, sql: "PRAGMA cache_size") ?? 0)
                }
            }
        }
        #expect(summary.tickets == Self.many)
        #expect(during.first == original, "a hundred stored tickets fit the cache the connection has")
        let grown = try #require(during.last)
        #expect(grown < 0 && -grown >= Self.many * PageCacheBudget.kibPerStoredTicket && -grown <= PageCacheBudget.maxKiB,
                "grown to hold the rewritten tickets, in KiB: \(grown)")
        #expect(try cacheSize(store) == original, "set back after the commit")
        #expect(try store.tickets().filter { $0.assignee == "agent-3" }.count == ids.indices.filter { $0 % 7 == 3 }.count)

        // A batch that throws after growing the cache rolls back and gives the cache back as well.
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try store.batch { batch in
                for id in ids { try batch.set(id, .priority, .text("high")) }
                throw Stop()
            }
        }
        #expect(try cacheSize(store) == original, "set back after the rollback")
        #expect(try store.tickets().allSatisfy { $0.priority != "high" }, "nothing of the thrown batch is stored")
    }

    @Test func theBudgetGrowsByDoublingUpToItsBoundAndRestoresTheSettingItFound() throws {
        let queue = try DatabaseQueue()
        try queue.inDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = 500")  // in pages: whatever the connection had
            let budget = PageCacheBudget(db)
            try budget.hold(storedTickets: 10)
            #expect(try Int.fetchOne(db, sql: "PRAGMA cache_size") == 500, "below the store's 16 MiB nothing changes")
            try budget.hold(storedTickets: TicketDatabase.pageCacheKiB / PageCacheBudget.kibPerStoredTicket + 1)
            #expect(try Int.fetchOne(db, sql: "PRAGMA cache_size") == -2 * TicketDatabase.pageCacheKiB, "doubled at least")
            try budget.hold(storedTickets: 10_000_000)
            #expect(try Int.fetchOne(db, sql: "PRAGMA cache_size") == -PageCacheBudget.maxKiB, "never past its bound")
            budget.restore()
            #expect(try Int.fetchOne(db, sql: "PRAGMA cache_size") == 500)
        }
    }
}

/// Every connection of a store file has the store's settings: the writer and each reader.
@Suite struct StoreConnectionSettingsTests {
    @Test func theWriterAndReadersOfAStoreFileHaveTheStoresSettings() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pool = try TicketDatabase.openPool(path: folder + "/tierline.sqlite")
        let settings = { (db: Database) throws -> [String] in
            try ["synchronous", "cache_size", "wal_autocheckpoint", "journal_mode"].map { try String.fetchOne(db, sql: "PRAGMA \($0)") ?? "-" }
        }
        let expected = ["2", "\(-TicketDatabase.pageCacheKiB)", "\(TicketDatabase.checkpointPages)", "wal"]
        let writer = try pool.writeWithoutTransaction(settings)
        #expect(writer == expected, "the writer: synchronous FULL, the cache, the checkpoint interval, WAL: \(writer)")
        #expect(try pool.read(settings) == expected, "a reader")
    }
}
