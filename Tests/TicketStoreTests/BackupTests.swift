import Foundation
import GRDB
import TestSupport
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
        #expect(try leftovers(beside: folder + "/copy-1.sqlite").isEmpty)
        // The copy holds every ticket and the agents' credential hashes: its owner alone reads it.
        #expect((try FileManager.default.attributesOfItem(atPath: folder + "/copy-1.sqlite")[.posixPermissions] as? Int) == 0o600)
    }

    /// A file named like the backup's own working file is someone else's, and stays.
    @Test func aFileNamedLikeTheBackupsPartialIsLeftAlone() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        let file = folder + "/copy.sqlite"
        try Data("notes".utf8).write(to: URL(fileURLWithPath: file + ".partial"))
        _ = try store.backup(to: file)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file + ".partial")) == Data("notes".utf8))
        #expect(try leftovers(beside: file) == [file + ".partial"])
    }

    @Test func backupNeverOverwritesAFile() throws {
        defer { cleanUp() }
        let store = try north.create(site: try SiteID("north"), role: .site)
        let file = folder + "/existing.sqlite"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: StoreError.self) { try store.backup(to: file) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "precious")
    }

    /// A coordinator, north (made in `north`) and a laptop, one fleet under the coordinator's roster.
    func fleetWithALaptop() throws -> (hub: TicketDatabase, north: TicketDatabase, lap: TicketDatabase) {
        let hub = try memoryStore("hub", role: .coordinator)
        let store = try north.create(site: try SiteID("north"), role: .site)
        let lap = try memoryStore("lap", role: .laptop)
        try hub.admit(site: try SiteID("north"), key: try store.identity().publicKey, role: .site)
        let roster = try hub.admit(site: try SiteID("lap"), key: try lap.identity().publicKey, role: .laptop)
        for replica in [store, lap] {
            try replica.pinCoordinator(key: try hub.identity().publicKey)
            try replica.adopt(document: roster.document, signature: roster.signature)
        }
        return (hub, store, lap)
    }

    /// Restore while a laptop holds the site's later blocks (issue 18): the fence lifts only on proof
    /// that north's history is whole, so no seq is reused, nothing is lost and the fleet converges.
    @Test func aRestoredStoreWaitsUntilEveryMemberHasBeenHeardThenNeverReusesASequenceNumber() throws {
        defer { cleanUp() }
        let (hub, store, lap) = try fleetWithALaptop()
        let me = try SiteID("north"), lapSite = try SiteID("lap")
        _ = try store.createTicket(TicketDraft(subject: "one"))
        _ = try store.backup(to: folder + "/b.sqlite")
        _ = try store.createTicket(TicketDraft(subject: "two"))
        _ = try hub.apply(try store.blocks(after: VersionVector()))
        let three = try store.createTicket(TicketDraft(subject: "three: only the laptop has it"))
        _ = try lap.apply(try store.blocks(after: VersionVector()))
        #expect(try hub.vector()[me] == 2 && lap.vector()[me] == 3)

        // North's disk dies; its backup holds block 1.
        let restoredDir = StoreDirectory(path: folder + "/north-restored")
        let (restored, report) = try restoredDir.restore(from: folder + "/b.sqlite", keyFile: north.keyPath, now: 42)
        #expect(report.vector[me] == 1)
        #expect(try restored.restoredAt() == 42)
        #expect(try restored.restoreAwaiting() == [try SiteID("hub")])
        #expect(storeErrorCode { _ = try restored.createTicket(TicketDraft(subject: "too early")) } == .awaitingSync)

        // A session with the hub: north says it is restored, the hub has not heard from the laptop
        // since, so north gets block 2 but the fence stays up.
        try hub.watchRestore(of: me, restore: 42)
        #expect(try hub.awaitingWitnesses(for: me) == [lapSite])
        _ = try restored.apply(try hub.blocks(after: try restored.vector()))
        try restored.witness(member: try SiteID("hub"))
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: [lapSite]) == false)
        #expect(try restored.restoreAwaiting() == [lapSite])
        // A site that is not the coordinator cannot vouch for the fleet, nor can an empty claim.
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .site, awaiting: []) == false)
        #expect(storeErrorCode { _ = try restored.createTicket(TicketDraft(subject: "would reuse seq 3")) } == .awaitingSync)

        // The laptop syncs with the hub: now the hub holds block 3 and has heard from everyone.
        _ = try hub.apply(try lap.blocks(after: try hub.vector()))
        try hub.witness(member: lapSite)
        #expect(try hub.awaitingWitnesses(for: me) == [])
        // A list of nobody does not lift the fence while the hub holds a block north lacks.
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: []) == false)
        _ = try restored.apply(try hub.blocks(after: try restored.vector()))
        try restored.witness(member: try SiteID("hub"))
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: []))
        #expect(try restored.restoredAt() == nil && restored.restoreAwaiting() == nil)
        #expect(try restored.ticket(three.id).subject == "three: only the laptop has it")

        let four = try restored.createTicket(TicketDraft(subject: "four"))
        #expect(four.displayNumber == "NORTH-4")
        #expect(try restored.vector()[me] == 4)
        // Every replica takes seq 4 as new, not as an equivocation of an old number; nothing is lost.
        for replica in [hub, lap] {
            let applied = try replica.apply(try restored.blocks(after: try replica.vector()))
            #expect(applied.applied == 1 && applied.refused.isEmpty)
            #expect(try replica.digest() == (try restored.digest()))
        }
    }

    /// The laptop that holds the later blocks may instead sync with the restored store itself.
    @Test func aMemberThatSyncsWithTheRestoredStoreDirectlyCountsAsHeard() throws {
        defer { cleanUp() }
        let (hub, store, lap) = try fleetWithALaptop()
        let me = try SiteID("north"), lapSite = try SiteID("lap")
        _ = try store.backup(to: folder + "/b.sqlite")
        _ = try store.createTicket(TicketDraft(subject: "only the laptop has it"))
        _ = try lap.apply(try store.blocks(after: VersionVector()))
        let (restored, _) = try StoreDirectory(path: folder + "/north-restored").restore(from: folder + "/b.sqlite", keyFile: north.keyPath, now: 42)
        try hub.watchRestore(of: me, restore: 42)
        try restored.witness(member: try SiteID("hub"))
        #expect(try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: try hub.awaitingWitnesses(for: me)) == false)
        // The laptop sends north its block 1 back, then its `synced`.
        _ = try restored.apply(try lap.blocks(after: try restored.vector()))
        try restored.witness(member: lapSite)
        #expect(try restored.confirmOwnSequence(peer: try lap.vector(), peerRole: .laptop))
        #expect(try restored.createTicket(TicketDraft(subject: "next")).displayNumber == "NORTH-2")
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
