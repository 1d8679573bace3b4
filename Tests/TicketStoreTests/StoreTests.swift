import Foundation
import GRDB
import Synchronization
import PropertyBased
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

func makeStore(_ site: String, clock: TestClock = TestClock(1_700_000_000_000), key: SiteKey = .generate()) throws -> TicketDatabase {
    try memoryStore(site, clock: clock, key: key)
}

/// Makes `store` know the keys of `sites` (the roster's job in a later issue).
func trust(_ store: TicketDatabase, _ sites: [SimSite]) throws {
    try store.learn(keys: Dictionary(uniqueKeysWithValues: sites.map { ($0.site, $0.key.publicKey) }))
}

struct Fault: Error {}

@Suite struct LocalWriteTests {
    @Test func createAssignsDisplayNumbersAndWritesOneBlock() throws {
        let store = try makeStore("north")
        let a = try store.createTicket(TicketDraft(subject: "Printer offline", priority: .high, tags: ["printer", "floor-2"]))
        let b = try store.createTicket(TicketDraft(subject: "VPN down"))
        #expect(a.displayNumber == "NORTH-1")
        #expect(b.displayNumber == "NORTH-2")
        #expect(a.tags == ["floor-2", "printer"])
        #expect(a.priority == "high")
        #expect(a.owningSite == "north" && a.owningEpoch == 0)
        #expect(try store.vector()[try SiteID("north")] == 2)
        #expect(try store.ticket("north-1").id == a.id)
    }

    @Test(arguments: ["afterBlockInsert", "beforeCommit"])
    func aFailureInsideTheTransactionLeavesNothingHalfWritten(point: String) throws {
        var store = try makeStore("north")
        let first = try store.createTicket(TicketDraft(subject: "Kept"))
        let digest = try store.digest()
        store.faultHook = { if $0 == point { throw Fault() } }
        #expect(throws: Fault.self) { try store.createTicket(TicketDraft(subject: "Lost")) }
        #expect(throws: Fault.self) { try store.update(first.id, [(.assignee, .text("anna"))]) }
        #expect(try store.digest() == digest)
        #expect(try store.vector()[try SiteID("north")] == 1)
        #expect(try store.tickets().count == 1)
        let counts = try store.writer.read { db in
            [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block"), try Int.fetchOne(db, sql: "SELECT nextNumber FROM localSite")]
        }
        #expect(counts == [1, 2])
        // The next write takes the seq and number the failed one did not use.
        store.faultHook = nil
        let next = try store.createTicket(TicketDraft(subject: "Next"))
        #expect(next.displayNumber == "NORTH-2")
        #expect(try store.vector()[try SiteID("north")] == 2)
    }

    @Test func closedLeavesOnlyThroughReopen() throws {
        let store = try makeStore("north")
        let t = try store.createTicket(TicketDraft(subject: "Done"))
        try store.update(t.id, [(.status, .text("closed"))])
        #expect(throws: StoreError.self) { try store.update(t.id, [(.status, .text("open"))]) }
        #expect(try store.reopen(t.id).status == "open")
    }

    @Test func unknownTicketAndBadValuesAreRefused() throws {
        let store = try makeStore("north")
        let t = try store.createTicket(TicketDraft(subject: "x"))
        let digest = try store.digest()
        #expect(throws: StoreError.self) { try store.ticket("NORTH-99") }
        #expect(throws: StoreError.self) { try store.update(t.id, [(.status, .text("merged"))]) }
        #expect(throws: StoreError.self) { try store.update(t.id, [(.priority, .text("apocalyptic"))]) }
        #expect(throws: StoreError.self) { try store.comment(t.id, body: "  ", kind: .agentReply, visibility: .public, actor: "a") }
        #expect(try store.digest() == digest)
    }

    @Test func bulkWriteBecomesConsecutiveBoundedBlocks() throws {
        let store = try makeStore("north")
        let t = try store.createTicket(TicketDraft(subject: "Tag storm"))
        let tags = (0..<600).map { "t\($0)" }
        let record = try store.tag(t.id, add: tags, remove: [])
        #expect(record.tags.count == 600)
        #expect(try store.vector()[try SiteID("north")] == 4, "600 adds in blocks of at most 256 changes")
        let blocks = try store.blocks(after: VersionVector())
        #expect(blocks.allSatisfy { $0.changes.count <= BlockLimits.maxChanges })
        #expect(zip(blocks, blocks.dropFirst()).allSatisfy { $1.deps[$0.origin] == $0.seq })
    }

    @Test func fileStoreUsesWALWithFullSync() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tl-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StoreDirectory(path: dir).create(site: try SiteID("north"), role: .site)
        let pragmas = try store.writer.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"))
        }
        #expect(pragmas.0 == "wal")
        #expect(pragmas.1 == 2)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/site.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        _ = try store.createTicket(TicketDraft(subject: "Persisted"))
        // A second open of the same folder (another process would do the same) sees the write.
        #expect(try StoreDirectory(path: dir).open().tickets().map(\.subject) == ["Persisted"])
    }
}

@Suite struct RemoteApplyTests {
    @Test func heldBackBlocksApplyOnceTheGapFills() throws {
        var north = SimSite("north")
        let id = UUID()
        let b1 = north.write([Change(.ticket(id), .create(number: 1)), Change(.ticket(id), .set(.subject, .text("Outage")))])
        let b2 = north.write([Change(.ticket(id), .set(.assignee, .text("anna")))])
        let b3 = north.write([Change(.ticket(id), .set(.priority, .text("urgent")))])
        let store = try makeStore("south")
        try trust(store, [north])
        var report = try store.apply([b3, b2])
        #expect(report.applied == 0 && report.held == 2)
        #expect(try store.vector()[north.site] == 0)
        #expect(try store.tickets().isEmpty)
        report = try store.apply([b1])
        #expect(report.applied == 3 && report.held == 0)
        #expect(try store.digest() == north.replica.digest)
        // Applying again is a no-op.
        report = try store.apply([b1, b2, b3])
        #expect(report.duplicates == 3 && report.applied == 0)
        #expect(try store.digest() == north.replica.digest)
    }

    @Test func blocksAfterVectorAreExactlyWhatThePeerLacks() throws {
        let store = try makeStore("north")
        var south = SimSite("south")
        try trust(store, [south])
        let t = try store.createTicket(TicketDraft(subject: "a"))
        try store.update(t.id, [(.assignee, .text("x"))])
        _ = try store.apply([south.write(create(ticketID(7), number: 1))])
        try store.update(t.id, [(.group, .text("l2"))])
        let all = try store.blocks(after: VersionVector())
        #expect(all.count == 4)
        for cut in 0...3 {
            var peer = VersionVector()
            peer[try SiteID("north")] = UInt64(cut)
            let lacking = try store.blocks(after: peer)
            #expect(Set(lacking.map { "\($0.origin):\($0.seq)" }) == Set(all.filter { $0.origin.rawValue == "south" || $0.seq > UInt64(cut) }.map { "\($0.origin):\($0.seq)" }))
        }
        // Causal order: each block comes after everything in its deps.
        var seen = VersionVector()
        for block in all {
            #expect(block.isApplicable(after: seen))
            seen[block.origin] = block.seq
        }
    }

    @Test func storedBlocksArePagesOfWhatThePeerLacksAsStoredBytes() throws {
        let store = try makeStore("north")
        var south = SimSite("south")
        try trust(store, [south])
        for i in 0..<5 {
            let t = try store.createTicket(TicketDraft(subject: "t\(i)"))
            _ = try store.apply([south.write(create(ticketID(UInt8(100 + i)), number: UInt64(i + 1)))])
            try store.update(t.id, [(.assignee, .text("a\(i)"))])
        }
        for cut: UInt64 in [0, 3] {
            var peer = VersionVector()
            peer[try SiteID("north")] = cut
            let lacking = try store.blocks(after: peer)
            var paged: [(origin: SiteID, seq: UInt64, bytes: [UInt8])] = []
            var has = peer
            // Pages of at most 4 blocks, or of one block when bytes run out, walk the same order.
            for maxBytes in [1 << 20, 1] {
                paged = []
                has = peer
                while true {
                    let page = try store.storedBlocks(after: has, limit: 4, maxBytes: maxBytes)
                    if page.isEmpty { break }
                    #expect(page.count <= (maxBytes == 1 ? 1 : 4))
                    for block in page { has[block.origin] = max(has[block.origin], block.seq) }
                    paged += page
                }
                #expect(paged.map { "\($0.origin):\($0.seq)" } == lacking.map { "\($0.origin):\($0.seq)" })
                #expect(paged.map(\.bytes) == lacking.map(\.bytes))
            }
        }
        #expect(try store.storedBlocks(after: store.vector(), limit: 10, maxBytes: 1 << 20).isEmpty)
    }

    @Test func equivocationBadSignatureAndUnknownSiteAreRefusedAndNothingIsStored() throws {
        var north = SimSite("north")
        let stranger = SimSite("stranger")
        let id = ticketID(1)
        let honest = north.write(create(id, number: 1))
        let forged = try Block.make(origin: north.site, seq: 1, hlc: honest.hlc, deps: VersionVector(),
                                    changes: create(id, number: 1, subject: "Forged"), key: north.key)
        let impostor = try Block.make(origin: north.site, seq: 2, hlc: honest.hlc, deps: honest.deps.merging(VersionVector([north.site: 1])),
                                      changes: [set(id, .assignee, .text("mallory"))], key: stranger.key)
        var strangers = stranger
        let unknown = strangers.write(create(ticketID(2), number: 1))
        let store = try makeStore("south")
        try trust(store, [north])
        _ = try store.apply([honest])
        let digest = try store.digest()
        let report = try store.apply([forged, impostor, unknown])
        #expect(report.refused.map(\.code) == ["equivocation", "badSignature", "unknownSite"])
        #expect(report.applied == 0 && report.held == 0)
        #expect(try store.digest() == digest)
        #expect(try store.tickets().map(\.subject) == ["Printer offline"])
    }

    @Test func aBlockStampedFarAheadWaitsUntilTimeCatchesUp() throws {
        let clock = TestClock()
        var north = SimSite("north")
        north.wall = clock.now + 3_600_000
        let ahead = north.write(create(ticketID(1), number: 1))
        let store = try makeStore("south", clock: clock)
        try trust(store, [north])
        var report = try store.apply([ahead])
        #expect(report.applied == 0 && report.held == 1)
        let reason = try store.writer.read { db in try String.fetchOne(db, sql: "SELECT reason FROM pendingBlock") }
        #expect(reason?.contains("too far ahead") == true)
        clock.advance(3_600_000)
        report = try store.apply([])
        #expect(report.applied == 1 && report.held == 0)
        // Local stamps now sort after the remote one.
        try store.createTicket(TicketDraft(subject: "after"))
        let blocks = try store.blocks(after: VersionVector())
        #expect(blocks.last?.hlc ?? .zero > ahead.hlc)
    }

    @Test func aFailedApplyLeavesTheStoreAsItWas() throws {
        var north = SimSite("north")
        let blocks = [north.write(create(ticketID(1), number: 1)), north.write([set(ticketID(1), .assignee, .text("a"))])]
        var store = try makeStore("south")
        try trust(store, [north])
        store.faultHook = { if $0 == "beforeCommit" { throw Fault() } }
        #expect(throws: Fault.self) { try store.apply(blocks) }
        #expect(try store.vector() == VersionVector())
        #expect(try store.pendingCount() == 0)
        store.faultHook = nil
        #expect(try store.apply(blocks).applied == 2)
    }
}

@Suite struct StoreConvergenceTests {
    /// The store and the in-memory reference replica agree on every random history, in any order and
    /// in any batching of the blocks.
    @Test func storeMatchesTheReferenceReplica() async throws {
        await propertyCheck(count: 25, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            let (history, keys) = randomHistoryWithKeys(seed: UInt64(seed))
            var reference = Replica()
            for block in history { _ = try! reference.receive(block) }
            var rng = SplitMix(state: UInt64(seed))
            for _ in 0..<2 {
                let store = try! makeStore("observer")
                try! store.learn(keys: keys)
                var shuffled = history.shuffled(using: &rng)
                shuffled += shuffled.prefix(3)
                var index = 0
                while index < shuffled.count {
                    let size = Int.random(in: 1...5, using: &rng)
                    let batch = Array(shuffled[index..<min(index + size, shuffled.count)])
                    index += size
                    _ = try! store.apply(batch)
                }
                #expect(try! store.pendingCount() == 0)
                #expect(try! store.digest() == reference.digest)
                let views = reference.tickets
                for record in try! store.tickets() {
                    let view = views[UUID(uuidString: record.id)!]!
                    #expect(record.status == view.status.rawValue)
                    #expect(record.tags == view.state.tags)
                    #expect(record.assignee == view.state.text(.assignee))
                    #expect(record.conflictCount == view.state.conflicts.count)
                }
            }
        }
    }
}

@Suite struct DisplayNumberTests {
    /// A reused display number (a site restored from an old backup) must not hide either ticket.
    @Test func aReusedDisplayNumberKeepsBothTicketsAndAsksForTheID() throws {
        var north = SimSite("north")
        let first = north.write(create(ticketID(1), number: 1, subject: "First"))
        let second = north.write(create(ticketID(2), number: 1, subject: "Second"))
        let store = try makeStore("south")
        try trust(store, [north])
        _ = try store.apply([first, second])
        #expect(Set(try store.tickets().map(\.subject)) == ["First", "Second"])
        #expect(throws: StoreError.self) { try store.ticket("NORTH-1") }
        #expect(try store.ticket(ticketID(2).uuidString).subject == "Second")
        #expect(try store.digest() == north.replica.digest)
    }
}

@Suite struct ReviewedStoreTests {
    /// Two sites deriving the same event id: the stored row is the fold's copy whatever the order.
    @Test func eventRowsDoNotDependOnArrivalOrder() throws {
        var north = SimSite("north")
        var south = SimSite("south")
        let id = ticketID(1)
        let created = north.write(create(id, number: 1))
        south.receive([created])
        let a = north.write([message(id, eventID(9), .internalNote, body: "from north")])
        let b = south.write([message(id, eventID(9), .internalNote, body: "from south")])
        var bodies: [[String]] = []
        for order in [[a, b], [b, a]] {
            let store = try makeStore("observer")
            try trust(store, [north, south])
            _ = try store.apply([created])
            for block in order { _ = try store.apply([block]) }
            bodies.append(try store.writer.read { db in try String.fetchAll(db, sql: "SELECT body FROM ticketEvent ORDER BY id") })
        }
        #expect(bodies[0] == bodies[1])
        #expect(bodies[0].count == 1)
    }

    @Test func aLongCrossOriginChainDrainsInOneApply() throws {
        var alpha = SimSite("alpha")
        var zulu = SimSite("zulu")
        let id = ticketID(1)
        var blocks = [zulu.write(create(id, number: 1))]
        alpha.receive(blocks)
        for i in 0..<100 {
            let a = alpha.write([set(id, .assignee, .text("a\(i)"))])
            zulu.receive([a])
            let z = zulu.write([set(id, .group, .text("z\(i)"))])
            alpha.receive([z])
            blocks += [a, z]
        }
        let store = try makeStore("observer")
        try trust(store, [alpha, zulu])
        let report = try store.apply(blocks.reversed())
        #expect(report.applied == blocks.count && report.held == 0)
        #expect(try store.digest() == zulu.replica.digest)
    }

    @Test func aStoreHoldingItsOwnLaterBlockRefusesToWriteUntilTheGapIsFilled() throws {
        let key = SiteKey.generate()
        let original = try makeStore("north", key: key)
        try original.createTicket(TicketDraft(subject: "one"))
        try original.createTicket(TicketDraft(subject: "two"))
        let blocks = try original.blocks(after: VersionVector())
        // A fresh store with the same identity (a restore) receives only block 2.
        let restored = try makeStore("north", key: key)
        _ = try restored.apply([blocks[1]])
        #expect(throws: StoreError.self) { try restored.createTicket(TicketDraft(subject: "would reuse seq 1")) }
        _ = try restored.apply([blocks[0]])
        // Its counter moves past the numbers it had used before the restore.
        #expect(try restored.createTicket(TicketDraft(subject: "three")).displayNumber == "NORTH-3")
    }
}
