import Foundation
import GRDB
import NIOCore
import NIOPosix
@testable import SyncNode
import SyncWire
import Testing
import TestSupport
import TicketModel
import TicketStore

/// What a hand-driven peer saw from the node.
struct RawOutcome {
    var frames: [Frame] = []
    var acks: [Ack] { frames.compactMap { if case .ack(let a) = $0 { a } else { nil } } }
    var errors: [(code: String, message: String)] {
        frames.compactMap { if case .error(let code, let message, _) = $0 { (code, message) } else { nil } }
    }
    /// The node answered our proof with its vector: the session opened.
    var opened: Bool { frames.contains { if case .vector = $0 { true } else { false } } }
}

/// A connection to a node as its peers make one (TLS with the sites' keys, protocol 2), proving `key`
/// in TLS, with the sync pipeline and nothing else: the test writes and reads the frames itself.
func connectRaw(to address: Endpoint, key: SiteKey = .generate(), readTimeout: TimeAmount? = nil) async throws -> NIOAsyncChannel<Inbound, Outbound> {
    let tls = try SiteTLS.contexts(key: key, site: try SiteID("raw"))
    let (channel, _, _) = try await SyncNode.connectGated(to: address, group: MultiThreadedEventLoopGroup.singleton,
                                                        limits: .standard, readTimeout: readTimeout, tls: tls)
    return channel
}

/// Whether a raw peer (TLS on the sites' keys, ``connectRaw(to:key:readTimeout:)``) and the node skip
/// `auth`: both hellos name protocol 4 or later, so TLS proved the keys (§2.5).
func keyProvedByTLS(_ own: Hello, _ theirs: Hello) -> Bool { min(own.protocolVersion, theirs.protocolVersion) >= 4 }

/// A peer driven by hand over a real socket: it introduces itself as `site`, proves with `proofKey`
/// (by default its own key), opens the session and sends each batch as crafted, then a ping; the
/// node handles frames in order, so every ack and error for the batches comes before the pong.
/// With a `proofKey`, it speaks protocol 3, where `auth` frames are exchanged and checked.
func rawSession(_ address: Endpoint, as site: SiteID, key: SiteKey, proofKey: SiteKey? = nil,
                batches: [[Block]]) async throws -> RawOutcome {
    let channel = try await connectRaw(to: address, key: key, readTimeout: .seconds(60))
    var outcome = RawOutcome()
    try await channel.executeThenClose { inbound, outbound in
        var frames = inbound.makeAsyncIterator()
        // The node may close as soon as it refuses us: a write can then fail and a read can see a reset.
        // Neither is the test's business; the frames read before are.
        func next() async -> Frame? {
            while let item = try? await frames.next() {
                if case .frame(let frame) = item {
                    outcome.frames.append(frame)
                    return frame
                }
            }
            return nil
        }
        func send(_ item: Outbound) async { try? await outbound.write(item) }
        guard case .hello(let nodeHello)? = await next() else { return }
        // Claim the node's roster version, so neither side sends a roster.
        let hello = Hello(protocolVersion: proofKey == nil ? WireVersion.protocolVersion : 3,
                          site: site, role: .site, publicKey: key.publicKey, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) },
                          time: TicketDatabase.systemMillis(), roster: nodeHello.roster)
        // One step at a time, so that when the node refuses, nothing of ours is left unread on its side
        // (closing with unread data sends a reset, which could overtake its error frame).
        await send(.frame(.hello(hello)))
        if !keyProvedByTLS(hello, nodeHello) {
            while let frame = await next() {
                if case .auth = frame { break }
                if case .error(_, _, true) = frame { return }
            }
            await send(.frame(.auth(signature: try SessionAuth.prove(key: proofKey ?? key, own: hello, peer: nodeHello))))
        }
        while let frame = await next() {
            if case .vector = frame { break }
            if case .error(_, _, true) = frame { return }
        }
        await send(.frame(.vector(VersionVector())))
        for (index, blocks) in batches.enumerated() {
            // The layout of the version both hellos agree on (§2.5): compact from protocol 3.
            let format = ChangeSet.Format(protocolVersion: min(hello.protocolVersion, nodeHello.protocolVersion))
            await send(.batch(try ChangeSet.encode(blocks, batch: UInt64(index + 1), keys: [:], limits: .standard, format: format)))
        }
        await send(.frame(.ping(id: 4242, time: 0)))
        while let frame = await next() {
            if case .pong(4242, _) = frame { break }
            if case .error(_, _, true) = frame { return }
        }
        await send(.frame(.bye(reason: "test done")))
    }
    return outcome
}

/// A block of `origin` at `seq` over `changes`, signed by `key`.
func block(_ origin: SiteID, _ seq: UInt64, _ changes: [Change], key: SiteKey, aheadMillis: UInt64 = 0) throws -> Block {
    var deps = VersionVector()
    if seq > 1 { deps[origin] = seq - 1 }
    return try Block.make(origin: origin, seq: seq, hlc: HLC(millis: TicketDatabase.systemMillis() + aheadMillis, counter: UInt16(seq)),
                          deps: deps, changes: changes, key: key)
}

/// Every refusal of the trust issue, driven over a real socket against a running coordinator node.
@Suite(.serialized) struct TrustTests {
    let hub: TestSite
    let north = try! SiteID("north"), south = try! SiteID("south"), lap = try! SiteID("lap"), ghost = try! SiteID("ghost")
    let northKey = SiteKey.generate(), southKey = SiteKey.generate(), lapKey = SiteKey.generate()

    init() throws {
        hub = try TestSite("hub", role: .coordinator)
        try hub.db.editRoster { [north, south, lap, northKey, southKey, lapKey] roster in
            roster.sites += [Roster.Member(site: north, key: northKey.publicKey, role: .site),
                             Roster.Member(site: south, key: southKey.publicKey, role: .site),
                             Roster.Member(site: lap, key: lapKey.publicKey, role: .laptop)]
        }
    }

    /// A new site the hub admits, synced once with it (the session brings the roster).
    func newReplicaSynced(_ name: String, with address: Endpoint) async throws -> TestSite {
        let site = try TestSite(name)
        try site.db.pinCoordinator(key: hub.key.publicKey)
        try hub.db.editRoster { roster in
            roster.sites.append(Roster.Member(site: try SiteID(name), key: site.key.publicKey, role: .site))
        }
        let summary = try await SyncClient.exchange(store: site.db, key: site.key, with: address, logger: quietLogger())
        #expect(summary.completed)
        return site
    }

    func refusals(_ code: String) throws -> [RefusalRecord] { try hub.db.refusals().filter { $0.code == code } }

    @Test func forgedAlteredAndUnknownBlocksAreRefusedAndNothingOfThemIsStored() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let forged = try block(north, 1, create(ticketID(1), number: 1, subject: "forged"), key: SiteKey.generate())
        let southOriginal = try block(south, 1, create(ticketID(2), number: 1, subject: "refund 20 EUR"), key: southKey)
        let southOther = try block(south, 1, create(ticketID(2), number: 1, subject: "refund 2000 EUR"), key: southKey)
        // A relay swaps the body and keeps the origin's signature.
        let altered = try Block(decoding: southOther.body + southOriginal.signature)
        let unknown = try block(ghost, 1, create(ticketID(3), number: 1, subject: "from nowhere"), key: SiteKey.generate())

        let outcome = try await rawSession(address, as: north, key: northKey, batches: [[forged], [altered], [unknown]])
        #expect(outcome.opened)
        #expect(outcome.acks.map(\.refused) == [1, 1, 1])
        #expect(outcome.errors.map(\.code) == ["block-refused", "block-refused", "block-refused"])
        #expect(outcome.errors.contains { $0.message.contains("badSignature") })
        #expect(outcome.errors.contains { $0.message.contains("unknownSite") })
        #expect(try hub.db.vector()[north] == 0 && hub.db.vector()[south] == 0 && hub.db.vector()[ghost] == 0)
        #expect(try hub.db.tickets().isEmpty)
        #expect(try hub.db.pendingCount() == 0)
        #expect(try refusals("badSignature").map(\.origin).sorted() == ["north", "south"])
        #expect(try refusals("unknownSite").map(\.origin) == ["ghost"])
        // The node still syncs with honest peers afterwards: south's real block arrives relayed by north.
        let honest = try await rawSession(address, as: north, key: northKey, batches: [[southOriginal]])
        #expect(honest.acks.map(\.applied) == [1] && honest.errors.isEmpty)
        #expect(try hub.db.tickets().map(\.subject) == ["refund 20 EUR"])
    }

    @Test func aReplayedBlockIsADuplicateAndAnEquivocatingBlockIsRefused() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let first = try block(north, 1, create(ticketID(4), number: 1, subject: "first"), key: northKey)
        let other = try block(north, 1, create(ticketID(5), number: 1, subject: "another history"), key: northKey)
        let applied = try await rawSession(address, as: north, key: northKey, batches: [[first]])
        #expect(applied.acks.map(\.applied) == [1])
        let replayed = try await rawSession(address, as: north, key: northKey, batches: [[first]])
        #expect(replayed.acks.map(\.refused) == [0] && replayed.acks.map(\.applied) == [0])
        #expect(replayed.errors.isEmpty)
        let equivocation = try await rawSession(address, as: north, key: northKey, batches: [[other]])
        #expect(equivocation.acks.map(\.refused) == [1])
        #expect(equivocation.errors.map(\.code) == ["block-refused"])
        #expect(equivocation.errors.first?.message.contains("equivocation") == true)
        #expect(try hub.db.tickets().map(\.subject) == ["first"])
        #expect(try refusals("equivocation").count == 1)
    }

    @Test func batchesBeyondTheWindowAreAppliedAckedAndRefusedInOrder() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        // Six batches without waiting for acks (more than the window): each is checked while the ones
        // before it apply, and the forged third is refused between the acks of the second and fourth.
        var batches: [[Block]] = []
        for seq: UInt64 in 1...5 {
            batches.append([try block(north, seq, create(ticketID(UInt8(40 + seq)), number: seq), key: northKey)])
        }
        batches.insert([try block(south, 1, create(ticketID(50), number: 1, subject: "forged"), key: SiteKey.generate())], at: 2)
        let outcome = try await rawSession(address, as: north, key: northKey, batches: batches)
        let replies = outcome.frames.compactMap { frame -> String? in
            switch frame {
            case .ack(let ack): "ack \(ack.batch): \(ack.applied) applied, \(ack.refused) refused"
            case .error(let code, _, _): code
            case .pong: "pong"
            default: nil
            }
        }
        #expect(replies == ["ack 1: 1 applied, 0 refused", "ack 2: 1 applied, 0 refused", "ack 3: 0 applied, 1 refused", "block-refused",
                            "ack 4: 1 applied, 0 refused", "ack 5: 1 applied, 0 refused", "ack 6: 1 applied, 0 refused", "pong"])
        #expect(try hub.db.vector()[north] == 5 && hub.db.vector()[south] == 0)
        #expect(try refusals("badSignature").map(\.origin) == ["south"])
    }

    @Test func aBatchThatDoesNotDecodeEndsTheSessionAfterTheAcksBeforeIt() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let blocks = try (1...4 as ClosedRange<UInt64>).map { try block(north, $0, create(ticketID(UInt8(60 + $0)), number: $0), key: northKey) }
        // The second batch is out of stamp order: fatal, and the batch after it never applies.
        let outcome = try await rawSession(address, as: north, key: northKey, batches: [[blocks[0]], [blocks[2], blocks[1]], [blocks[3]]])
        #expect(outcome.acks.map(\.batch) == [1])
        #expect(outcome.errors.map(\.code) == ["bad-batch"])
        #expect(try hub.db.vector()[north] == 1 && hub.db.pendingCount() == 0)
        try await eventually(60, "the hub records why the session ended") {
            try hub.db.peers().first { $0.site == north }?.lastError?.hasPrefix("bad-batch") == true
        }
    }

    @Test func aPeerThatCannotProveItsKeyOrIsNotInTheRosterIsRefusedBeforeAnyBlock() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let payload = try block(north, 1, create(ticketID(6), number: 1), key: northKey)
        // Claims north's key but cannot sign with it.
        let impostor = try await rawSession(address, as: north, key: northKey, proofKey: SiteKey.generate(), batches: [[payload]])
        #expect(!impostor.opened)
        #expect(impostor.errors.map(\.code) == ["auth-failed"])
        // Proves a key of its own, which the roster does not list for north.
        let otherKey = SiteKey.generate()
        let wrongKey = try await rawSession(address, as: north, key: otherKey, batches: [[payload]])
        #expect(!wrongKey.opened && wrongKey.errors.map(\.code) == ["auth-failed"])
        #expect(wrongKey.errors.first?.message.contains("not the one the roster lists") == true)
        // A site the roster does not know.
        let stranger = try await rawSession(address, as: ghost, key: SiteKey.generate(), batches: [])
        #expect(!stranger.opened && stranger.errors.first?.message.contains("not in the roster") == true)
        #expect(try hub.db.vector()[north] == 0)
        // A removed site is refused too, and its later blocks with it.
        try hub.db.editRoster { [south] roster in
            if let i = roster.sites.firstIndex(where: { $0.site == south.rawValue }) { roster.sites[i].revokedAfter = 0 }
        }
        let removed = try await rawSession(address, as: south, key: southKey, batches: [])
        #expect(!removed.opened && removed.errors.first?.message.contains("removed") == true)
        let late = try block(south, 1, create(ticketID(7), number: 1), key: southKey)
        let relayed = try await rawSession(address, as: north, key: northKey, batches: [[late]])
        #expect(relayed.errors.first?.message.contains("revoked") == true)
        #expect(try hub.db.vector()[south] == 0)
    }

    @Test func aLaptopsCoordinatorOnlyChangesAreSkippedEverywhereAndTheRestOfItsBlockApplies() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let id = ticketID(8)
        let matrix = Change(EntityRef(kind: .config, id: ticketID(9)),
                            .event(TicketEvent(id: eventID(9), kind: .configVersion, actor: "lap", visibility: .internal, body: #"{"kind":"matrix"}"#)))
        let changes = create(id, number: 1, subject: "field visit") + [set(id, .owner, .owner(epoch: 1, site: lap)), matrix]
        let mixed = try block(lap, 1, changes, key: lapKey)
        let outcome = try await rawSession(address, as: lap, key: lapKey, batches: [[mixed]])
        // The block applies (the origin does not stall); the changes its role may not make do not.
        #expect(outcome.acks.map(\.applied) == [1] && outcome.errors.isEmpty)
        #expect(try hub.db.vector()[lap] == 1)
        let ticket = try hub.db.ticket(id.uuidString)
        #expect(ticket.subject == "field visit")
        #expect(ticket.owningSite == "lap" && ticket.owningEpoch == 0)
        #expect(try hub.db.configBodies().isEmpty)
        let refused = try refusals("unauthorized")
        #expect(refused.count == 1 && refused.first?.reason.contains("laptop") == true)

        // Every replica decides the same: a site that receives the block from the hub skips the same changes.
        let site = try await newReplicaSynced("north-replica", with: address)
        #expect(try site.db.digest() == hub.db.digest())
        #expect(try site.db.ticket(id.uuidString).owningEpoch == 0 && site.db.configBodies().isEmpty)
    }

    @Test func aBlockStampedFarAheadIsQuarantinedUntilTheCoordinatorReleasesIt() async throws {
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        let id = ticketID(10)
        let future = try block(north, 1, create(id, number: 1, subject: "from a clock 10 minutes fast"), key: northKey, aheadMillis: 600_000)
        let outcome = try await rawSession(address, as: north, key: northKey, batches: [[future]])
        #expect(outcome.acks.map(\.held) == [1] && outcome.acks.map(\.applied) == [0])
        let held = try hub.db.quarantined()
        #expect(held.map(\.origin) == ["north"] && held.map(\.seq) == [1])
        #expect((held.first?.aheadMillis ?? 0) > 590_000)
        #expect(try hub.db.vector()[north] == 0)

        // The release travels in the roster: the hub applies the block without moving its clock ahead,
        // and a replica that gets both from the hub applies it too.
        let hlcBefore = try await hub.db.writer.read { try Int64.fetchOne($0, sql: "SELECT hlc FROM localSite") }
        #expect(throws: StoreError.self) { try hub.db.releaseQuarantined(site: north, seq: 2) }
        let released = try hub.db.releaseQuarantined(site: north, seq: 1)
        #expect(released.roster.roster.released.map(\.hash) == [future.hash.hexString])
        #expect(try hub.db.vector()[north] == 1 && hub.db.quarantined().isEmpty)
        #expect(try hub.db.ticket(id.uuidString).subject == "from a clock 10 minutes fast")
        let hlcAfter = try await hub.db.writer.read { try Int64.fetchOne($0, sql: "SELECT hlc FROM localSite") }
        #expect(hlcAfter == hlcBefore)
        let replica = try await newReplicaSynced("south-replica", with: address)
        #expect(try replica.db.vector()[north] == 1 && replica.db.digest() == hub.db.digest())
    }

    @Test func aRosterEditReachesAnOpenSessionAndARemovedSiteIsCutOff() async throws {
        let branch = try TestSite("branch")
        let me = try SiteID("branch")
        try hub.db.editRoster { roster in roster.sites.append(Roster.Member(site: me, key: branch.key.publicKey, role: .site)) }
        try branch.db.pinCoordinator(key: hub.key.publicKey)
        let address = try #require(try await hub.start())
        try await branch.start(listen: false, peers: [address])
        defer { Task { await branch.stop(); await hub.stop() } }
        try await eventually(60, "the branch holds the hub's roster") { try branch.db.rosterVersion() == hub.db.rosterVersion() }

        // An edit made while the session is open reaches the branch over that session.
        try hub.db.editRoster { [south] roster in
            if let i = roster.sites.firstIndex(where: { $0.site == south.rawValue }) { roster.sites[i].role = .laptop }
        }
        try await eventually(60, "the edit reaches the branch") { try branch.db.rosterVersion() == hub.db.rosterVersion() }
        _ = try branch.db.createTicket(TicketDraft(subject: "before removal"))
        try await eventually(60, "the branch's ticket reaches the hub") { try hub.db.tickets().count == 1 }

        // Removed, the branch loses its session, and what it writes afterwards never reaches the hub.
        try hub.db.editRoster { roster in
            if let i = roster.sites.firstIndex(where: { $0.site == me.rawValue }) { roster.sites[i].revokedAfter = try hub.db.vector()[me] }
        }
        try await eventually(60, "the hub ends the branch's session") {
            try hub.db.peers().first { $0.site == me }?.lastError?.contains("removed from the roster") == true
        }
        // The roster that removes the branch may reach it over that session before the session ends:
        // then the branch writes nothing more. Either way nothing it writes reaches the hub.
        do {
            _ = try branch.db.createTicket(TicketDraft(subject: "after removal"))
        } catch let error as StoreError {
            #expect(error.code == .refusedWrite && error.detail.contains("removed this store's site branch"))
        }
        try await Task.sleep(for: .seconds(1))
        #expect(try hub.db.tickets().map(\.subject) == ["before removal"])
        #expect(try hub.db.vector()[me] == 1)
    }
}
