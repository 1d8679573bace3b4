import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// Backup while writes go on, and a restore that never reuses a sequence number.
@Suite struct BackupTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tl-backup-\(UUID())").path
    var north: StoreDirectory { StoreDirectory(path: folder + "/north") }

    func cleanUp() { try? FileManager.default.removeItem(atPath: folder) }

    @Test func backupIsASnapshotTakenWhileAnotherConnectionWrites() async throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        for n in 1...50 { _ = try store.createTicket(TicketDraft(subject: "before \(n)")) }
        // A second connection to the same file writes while the backup copies pages.
        let writer = try north.open()
        let writes = Task.detached { for n in 1...200 { _ = try writer.createTicket(TicketDraft(subject: "during \(n)")) } }
        var reports: [BackupReport] = []
        for n in 1...3 {
            reports.append(try store.backup(to: folder + "/copy-\(n).sqlite"))
        }
        try await writes.value
        for report in reports {
            // Each copy is one consistent moment: its blocks and tickets agree, and its vector has no gaps.
            let copy = try TicketDatabase(DatabaseQueue(path: report.file), key: nil)
            let count = try copy.tickets().count
            #expect(count == report.tickets)
            #expect(report.blocks == Int(report.vector[try SiteID("north")]))
            #expect(count >= 50 && count <= 250)
            let integrity = try await copy.writer.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"])
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/copy-1.sqlite.partial"))
    }

    @Test func backupNeverOverwritesAFile() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        let file = folder + "/existing.sqlite"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: StoreError.self) { try store.backup(to: file) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "precious")
    }

    @Test func restoredStoreWaitsForAPeerBeforeWritingThenNeverReusesASequenceNumber() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        let me = try SiteID("north")
        _ = try store.createTicket(TicketDraft(subject: "one"))
        _ = try store.backup(to: folder + "/b.sqlite")
        _ = try store.createTicket(TicketDraft(subject: "two"))
        _ = try store.createTicket(TicketDraft(subject: "three"))
        // The hub holds all three of north's blocks; then north's disk dies.
        let hub = try TicketDatabase(DatabaseQueue(), key: .generate())
        try hub.initialize(site: try SiteID("hub"), role: .coordinator)
        try hub.editRoster { roster in roster.sites.append(.init(site: me, key: try store.identity().publicKey, role: .site)) }
        _ = try hub.apply(try store.blocks(after: VersionVector()))

        let restoredDir = StoreDirectory(path: folder + "/north-restored")
        let (restored, report) = try restoredDir.restore(from: folder + "/b.sqlite", keyFile: north.keyPath, now: 42)
        #expect(report.vector[me] == 1)
        #expect(try restored.restoredAt() == 42)
        #expect(storeErrorCode { _ = try restored.createTicket(TicketDraft(subject: "too early")) } == .awaitingSync)

        // The hub knows north's seq 3: the fence stays up until blocks 2 and 3 are here.
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator) == false)
        #expect(try restored.restoredAt() != nil)
        _ = try restored.apply(try hub.blocks(after: try restored.vector()))
        // A site that is not the coordinator may itself be behind: it does not lift the fence, nor
        // does a peer that never heard of north.
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .site) == false)
        #expect(try restored.confirmOwnSequence(peer: VersionVector(), peerRole: .coordinator) == false)
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator))
        #expect(try restored.restoredAt() == nil)

        let four = try restored.createTicket(TicketDraft(subject: "four"))
        #expect(four.displayNumber == "NORTH-4")
        #expect(try restored.vector()[me] == 4)
        // The hub takes seq 4 as new, not as an equivocation of an old number.
        let applied = try hub.apply(try restored.blocks(after: try hub.vector()))
        #expect(applied.applied == 1 && applied.refused.isEmpty)
        #expect(try hub.digest() == (try restored.digest()))
    }

    @Test func aRestoreCutShortLeavesNoDatabaseAndTheNextOneIsFenced() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        _ = try store.createTicket(TicketDraft(subject: "one"))
        _ = try store.backup(to: folder + "/b.sqlite")
        // A restore killed while copying leaves only its staging file, never tierline.sqlite, so the
        // folder cannot be opened as an unfenced store.
        let target = StoreDirectory(path: folder + "/again")
        try FileManager.default.createDirectory(atPath: target.path, withIntermediateDirectories: true)
        try Data("half a copy".utf8).write(to: URL(fileURLWithPath: target.databasePath + ".restoring"))
        #expect(storeErrorCode { _ = try target.open() } == .notInitialized)
        let (restored, _) = try target.restore(from: folder + "/b.sqlite", keyFile: north.keyPath, now: 7)
        #expect(try restored.restoredAt() == 7)
        #expect(!FileManager.default.fileExists(atPath: target.databasePath + ".restoring"))
        // Opened afresh, as the next command would: still fenced.
        #expect(storeErrorCode { _ = try target.open().createTicket(TicketDraft(subject: "x")) } == .awaitingSync)
    }

    @Test func restoreRefusesAWrongKeyACorruptFileAndAFolderWithADatabase() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        _ = try store.createTicket(TicketDraft(subject: "one"))
        let file = folder + "/b.sqlite"
        _ = try store.backup(to: file)
        _ = try StoreDirectory(path: folder + "/south").create(site: try SiteID("south"), role: .site)
        let code = storeErrorCode
        // South's key cannot restore north's backup.
        #expect(code { _ = try StoreDirectory(path: folder + "/r1").restore(from: file, keyFile: folder + "/south/site.key", now: 0) } == .keyMismatch)
        // No key at all: the message asks for --key.
        #expect(code { _ = try StoreDirectory(path: folder + "/r2").restore(from: file, now: 0) } == .notInitialized)
        // The live store's folder already has a database.
        #expect(code { _ = try north.restore(from: file, now: 0) } == .alreadyInitialized)
        // A damaged backup: bytes overwritten in the middle of the file.
        let damaged = folder + "/damaged.sqlite"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        for i in stride(from: 4096, to: min(bytes.count, 4096 * 8), by: 7) { bytes[i] = 0xA5 }
        try bytes.write(to: URL(fileURLWithPath: damaged))
        #expect(code { _ = try StoreDirectory(path: folder + "/r3").restore(from: damaged, keyFile: north.keyPath, now: 0) } == .corruptFile)
        #expect(!FileManager.default.fileExists(atPath: folder + "/r3/tierline.sqlite"))
        // Not a file at all.
        #expect(code { _ = try StoreDirectory(path: folder + "/r4").restore(from: folder + "/nope.sqlite", keyFile: north.keyPath, now: 0) } == .notInitialized)
    }
}

/// The code of the `StoreError` that `body` throws; `nil` when it throws nothing or something else.
func storeErrorCode(_ body: () throws -> Void) -> StoreError.Code? {
    do { try body(); return nil } catch let error as StoreError { return error.code } catch { return nil }
}

@Suite struct UpgradeTests {
    @Test func anOlderBinaryRefusesAStoreANewerOneMigrated() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tl-upgrade-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let directory = StoreDirectory(path: folder)
        let store = try directory.create(site: try SiteID("north"), role: .site)
        _ = try store.createTicket(TicketDraft(subject: "kept"))
        // What a newer Tierline leaves behind: a migration this binary does not know.
        try store.writer.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')") }
        #expect(storeErrorCode { _ = try directory.open() } == .refusedWrite)
        do { _ = try directory.open() } catch { #expect("\(error)".contains("v99-future")) }
    }
}
