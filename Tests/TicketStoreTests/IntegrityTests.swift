import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// A damaged store is refused at open, saying how to restore it (issue 22: it used to be served and
/// synced, and a damaged record broke every later pull from the node).
@Suite struct IntegrityTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tl-integrity-\(UUID())").path
    var north: StoreDirectory { StoreDirectory(path: folder + "/north") }

    func cleanUp() { try? FileManager.default.removeItem(atPath: folder) }

    /// A store of `tickets` tickets, closed, with every page in the database file (no WAL left).
    func closedStore(tickets: Int) throws {
        let store = try north.create(site: try SiteID("north"), role: .site)
        for n in 1...tickets {
            _ = try store.createTicket(TicketDraft(subject: "Printer \(n) offline", firstMessage: String(repeating: "The queue stalls. ", count: 40)))
        }
        try #require(store.writer as? DatabasePool).close()
        // A pool's last connection to close is a reader, which leaves the write-ahead log as it is: one
        // connection of its own moves every page into the database file.
        let queue = try DatabaseQueue(path: north.databasePath)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try queue.close()
        let wal = (try? FileManager.default.attributesOfItem(atPath: north.databasePath + "-wal")[.size] as? Int) ?? -1
        #expect(wal <= 0, "WAL \(wal) bytes")
    }

    @Test func aStoreWithAnOverwrittenPageIsRefusedAtOpen() throws {
        defer { cleanUp() }
        try closedStore(tickets: 40)
        let (page, size) = try DatabaseQueue(path: north.databasePath).read { db in
            (try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name = 'block' AND pagetype = 'leaf' ORDER BY pageno"),
             try Int.fetchOne(db, sql: "PRAGMA page_size")!)
        }
        try #require(page.count >= 3)
        let file = try #require(FileHandle(forUpdatingAtPath: north.databasePath))
        try file.seek(toOffset: UInt64((page[page.count / 2] - 1) * size + 8))
        try file.write(contentsOf: Data(repeating: 0xA5, count: size - 8))
        try file.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: north.databasePath))
        do {
            _ = try north.open()
            Issue.record("a damaged store opened")
        } catch let error as StoreError {
            #expect(error.code == .corruptFile)
            #expect(error.detail.contains("is damaged") && error.detail.contains("quick_check"))
            #expect(error.detail.contains("tierline restore"))
        }
        // Refusing changed nothing: no migration or checkpoint ran on the damaged file.
        #expect(try Data(contentsOf: URL(fileURLWithPath: north.databasePath)) == before)
    }

    @Test func anIndexThatDisagreesWithItsTablePassesQuickCheckNotIntegrityCheck() throws {
        defer { cleanUp() }
        try closedStore(tickets: 3)
        let queue = try DatabaseQueue(path: north.databasePath)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(sql: "UPDATE sqlite_master SET sql = 'CREATE INDEX ticket_on_customer ON ticket (subject)' WHERE name = 'ticket_on_customer'")
        }
        try queue.close()
        // What every command runs at open passes: the pages are whole.
        let store = try north.open()
        do {
            try store.checkIntegrity()
            Issue.record("integrity_check passed an index that disagrees with its table")
        } catch let error as StoreError {
            #expect(error.code == .corruptFile)
            #expect(error.detail.contains("integrity_check") && error.detail.contains("ticket_on_customer"))
        }
    }

    @Test func aHealthyStorePassesBothChecks() throws {
        defer { cleanUp() }
        try closedStore(tickets: 3)
        let store = try north.open()
        try store.checkIntegrity()
        try TicketDatabase.checkIntegrity(store.writer)
    }
}
