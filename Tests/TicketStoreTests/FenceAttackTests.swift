import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// Attacks on the restore fence found in review (issue 18): each once let a restored store reuse a
/// seq that a surviving replica held.
@Suite struct FenceAttackTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tl-review-\(UUID())").path
    func cleanUp() { try? FileManager.default.removeItem(atPath: folder) }

    /// Makes `hub` the coordinator of north (a store in `folder`) and a laptop.
    func fleet(under hub: TicketDatabase) throws -> (StoreDirectory, TicketDatabase, TicketDatabase) {
        try hub.initialize(site: try SiteID("hub"), role: .coordinator)
        let northDir = StoreDirectory(path: folder + "/north")
        let north = try northDir.create(site: try SiteID("north"), role: .site)
        let lap = try memoryStore("lap", role: .laptop)
        try admitAll(hub, [(north, .site), (lap, .laptop)])
        return (northDir, north, lap)
    }

    func admitAll(_ hub: TicketDatabase, _ members: [(TicketDatabase, SiteRole)]) throws {
        var last: SignedRoster?
        for (store, role) in members {
            let id = try store.identity()
            last = try hub.admit(site: id.site, key: id.publicKey, role: role)
        }
        for (store, _) in members {
            try store.pinCoordinator(key: try hub.identity().publicKey)
            try store.adopt(document: last!.document, signature: last!.signature)
        }
    }

    /// R1: the laptop's copy of north:2 is only *held* (quarantined) at the hub when the laptop's
    /// `synced` makes it a witness; the hub's vector does not count it, so north's fence lifts and
    /// north re-issues seq 2.
    @Test func witnessWhoseBlocksAreHeldAtTheCoordinatorLiftsTheFenceTooEarly() throws {
        defer { cleanUp() }
        let offset = Mutex<Int64>(0)
        let hub = try TicketDatabase(DatabaseQueue(), key: .generate(),
                                     wallClock: { UInt64(Int64(TicketDatabase.systemMillis()) + offset.withLock { $0 }) })
        let (northDir, north, lap) = try fleet(under: hub)
        let me = try SiteID("north"), lapSite = try SiteID("lap")

        _ = try north.createTicket(TicketDraft(subject: "one"))
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        _ = try north.backup(to: folder + "/b.sqlite")
        _ = try north.createTicket(TicketDraft(subject: "two: the laptop applied it"))
        _ = try lap.apply(try north.blocks(after: VersionVector()))
        #expect(try lap.vector()[me] == 2)

        // North's disk dies; it is restored and dials the hub, which starts watching.
        let (restored, _) = try StoreDirectory(path: folder + "/north-r").restore(from: folder + "/b.sqlite", keyFile: northDir.keyPath, now: 1)
        try hub.watchRestore(of: me, restore: 1)
        // The laptop syncs with the hub while the hub's clock is 10 minutes behind: north:2 is held.
        offset.withLock { $0 = -600_000 }
        let report = try hub.apply(try lap.blocks(after: try hub.vector()))
        #expect(report.held == 1)
        try hub.witness(member: lapSite)                 // the laptop's `synced`
        // The hub holds north:2 back, so the laptop proves nothing about north yet.
        let awaiting = try hub.awaitingWitnesses(for: me)
        #expect(awaiting == [lapSite])
        #expect(try hub.vector()[me] == 1)
        // The hub's `synced` to north: awaiting [] and a vector with north = 1.
        _ = try restored.apply(try hub.blocks(after: try restored.vector()))
        try restored.witness(member: try SiteID("hub"))
        let lifted = try restored.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: awaiting)
        // The claim: a restored store never authors a seq a surviving replica holds.
        #expect(lifted == false, "fence lifted although the laptop (and the hub, held) have north:2")
        if lifted {
            let reused = try restored.createTicket(TicketDraft(subject: "two again: a different north:2"))
            _ = reused
            let back = try lap.apply(try restored.blocks(after: VersionVector()))
            #expect(back.refused.isEmpty, "laptop refuses the re-issued north:2: \(back.refused.map(\.code))")
        }
    }

    /// R2: the hub's watch of north (and its witnesses) outlives north's first fence; a second restore
    /// of north finds the laptop already counted as a witness, though the laptop got north:2 after it.
    @Test func aSecondRestoreReusesTheWitnessesOfTheFirst() throws {
        defer { cleanUp() }
        let hub = try TicketDatabase(DatabaseQueue(), key: .generate())
        let (northDir, north, lap) = try fleet(under: hub)
        let me = try SiteID("north"), lapSite = try SiteID("lap"), hubSite = try SiteID("hub")

        _ = try north.createTicket(TicketDraft(subject: "one"))
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        _ = try lap.apply(try north.blocks(after: VersionVector()))
        _ = try north.backup(to: folder + "/b.sqlite")

        // First loss and restore: done by the book.
        let (r1, _) = try StoreDirectory(path: folder + "/r1").restore(from: folder + "/b.sqlite", keyFile: northDir.keyPath, now: 1)
        try hub.watchRestore(of: me, restore: 1)
        try hub.witness(member: lapSite)
        try r1.witness(member: hubSite)
        #expect(try r1.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: try hub.awaitingWitnesses(for: me)))
        // r1 writes north:2 and syncs it to the laptop only (the hub is unreachable), then dies too.
        _ = try r1.createTicket(TicketDraft(subject: "two: only the laptop has it"))
        _ = try lap.apply(try r1.blocks(after: try lap.vector()))
        #expect(try lap.vector()[me] == 2)

        // Second restore, from the same backup. Its hello names another restore: the first one's
        // witnesses do not count.
        let (r2, _) = try StoreDirectory(path: folder + "/r2").restore(from: folder + "/b.sqlite", keyFile: northDir.keyPath, now: 2)
        #expect(try hub.watchRestore(of: me, restore: 2))
        let awaiting = try hub.awaitingWitnesses(for: me)
        #expect(awaiting == [lapSite])
        try r2.witness(member: hubSite)
        let lifted = try r2.confirmOwnSequence(peer: try hub.vector(), peerRole: .coordinator, awaiting: awaiting)
        #expect(lifted == false, "second restore lifted at once: awaiting was \(String(describing: awaiting))")
        if lifted {
            _ = try r2.createTicket(TicketDraft(subject: "a different north:2"))
            let back = try lap.apply(try r2.blocks(after: VersionVector()))
            #expect(back.refused.isEmpty, "laptop refuses the re-issued north:2: \(back.refused.map(\.code))")
        }
    }
}
