import Foundation
import NIOPosix
@testable import SyncNode
import SyncWire
import TestSupport
import Testing
import TicketModel
import TicketStore

/// Nodes of protocol 5 (columnar change sets), 3 and 4 (compact ones) and nodes still on protocol 2 meet as
/// `Protocol/PROTOCOL.md` §2.5 says: on the lower version, whichever side is older.
@Suite struct ProtocolVersionTests {
    /// A one-shot sync from `laptop` to `address`, with the laptop's hello naming `highest`.
    func sync(_ laptop: TestSite, to address: Endpoint, highest: Int) async throws -> SessionSummary {
        let identity = try laptop.db.identity()
        return try await SyncClient.exchange(access: StoreAccess(laptop.db), identity: identity, key: laptop.key, with: address,
                                             logger: quietLogger(), batchBlocks: 1024,
                                             tls: SiteTLS.contexts(key: laptop.key, site: identity.site), plainSites: [],
                                             group: MultiThreadedEventLoopGroup.singleton, onProgress: nil, protocolVersion: highest)
    }

    @Test(.serialized, arguments: zip([2, 3, 3, 4, 5, 5], [3, 2, 3, 5, 4, 5]))
    func nodesOfEitherVersionConverge(nodeVersion: Int, laptopVersion: Int) async throws {
        let node = try TestSite("branch"), laptop = try TestSite("laptop", role: .laptop)
        try admit(node, laptop)
        try node.create(15, prefix: "branch")
        try laptop.create(15, prefix: "offline")
        let address = try #require(try await node.start { $0.highestProtocol = nodeVersion })
        defer { Task { await node.stop() } }
        let summary = try await sync(laptop, to: address, highest: laptopVersion)
        #expect(summary.completed, "\(summary)")
        #expect(summary.sentBlocks > 0 && summary.receivedBlocks > 0)
        try await eventually(60, "both stores hold the same tickets") { try node.db.digest() == laptop.db.digest() }
        await node.stop()
    }

    @Test func protocol3SendsTheCompactChangeSetAndProtocol2ThePlainOne() async throws {
        // The same blocks go to two empty nodes, one held at protocol 2: the compact change set is
        // the smaller one, so the laptop used each node's format.
        let laptop = try TestSite("laptop", role: .laptop)
        let old = try TestSite("old"), current = try TestSite("current")
        try admit(old, current, laptop)
        try laptop.create(40, prefix: "offline")
        let oldAddress = try #require(try await old.start { $0.highestProtocol = 2 })
        let currentAddress = try #require(try await current.start())
        defer { Task { await old.stop(); await current.stop() } }
        let toOld = try await sync(laptop, to: oldAddress, highest: 3)
        let toCurrent = try await sync(laptop, to: currentAddress, highest: 3)
        #expect(toOld.completed && toCurrent.completed)
        #expect(toOld.sentBlocks == toCurrent.sentBlocks)
        #expect(toCurrent.changeSetBytesOut < toOld.changeSetBytesOut, "compact \(toCurrent.changeSetBytesOut), plain \(toOld.changeSetBytesOut)")
        try await eventually(60, "both nodes hold the laptop's tickets") {
            try old.db.digest() == laptop.db.digest() && current.db.digest() == laptop.db.digest()
        }
        await old.stop()
        await current.stop()
    }

    /// Protocol 5 (§2.3.3) names a ticket both sides hold by one of its changes instead of its 16
    /// bytes; a node held at protocol 4 gets compact change sets. Changes made on both sides converge,
    /// and the laptop's columnar batches are the smaller.
    @Test func protocol5NamesHeldTicketsByAChangeAndConverges() async throws {
        let laptop = try TestSite("laptop", role: .laptop)
        let old = try TestSite("old"), current = try TestSite("current")
        try admit(old, current, laptop)
        try laptop.create(40, prefix: "offline")
        let oldAddress = try #require(try await old.start { $0.highestProtocol = 4 })
        let currentAddress = try #require(try await current.start())
        defer { Task { await old.stop(); await current.stop() } }
        #expect(try await sync(laptop, to: oldAddress, highest: 5).completed)
        #expect(try await sync(laptop, to: currentAddress, highest: 5).completed)
        // Everyone holds the 40 tickets; the laptop and the current node now change each of them.
        let ids = try laptop.db.tickets().map(\.id)
        try #require(ids.count == 40)
        for id in ids {
            _ = try laptop.db.update(id, [(.priority, .text("high"))])
            _ = try current.db.update(id, [(.status, .text("open"))])
        }
        let toOld = try await sync(laptop, to: oldAddress, highest: 5)
        let toCurrent = try await sync(laptop, to: currentAddress, highest: 5)
        #expect(toOld.completed && toCurrent.completed)
        #expect(toOld.sentBlocks == toCurrent.sentBlocks && toCurrent.receivedBlocks > 0, "\(toCurrent)")
        // 40 ids of 16 random bytes each, which zlib cannot shorten, are not sent; each held entry
        // costs a few bytes instead: the columnar batches are shorter by more than half the ids.
        #expect(toCurrent.changeSetBytesOut + 40 * 8 < toOld.changeSetBytesOut, "columnar \(toCurrent.changeSetBytesOut), compact \(toOld.changeSetBytesOut)")
        try await eventually(60, "the laptop and the current node converge") { try current.db.digest() == laptop.db.digest() }
        #expect(try old.db.tickets().allSatisfy { $0.priority == "high" })
        #expect(try laptop.db.tickets().allSatisfy { $0.status == "open" && $0.priority == "high" })
        await old.stop()
        await current.stop()
    }

    @Test func thePlainDialerSpeaksProtocol1AsTierline06Did() async throws {
        // exchangePlain stands for a 0.6 node (the benchmark's baseline): its hello names protocol 1,
        // so a node that admits it sends the plain change set, not protocol 3's compact one (§2.12).
        let laptop = try TestSite("laptop", role: .laptop)
        let lenient = try TestSite("lenient"), current = try TestSite("current")
        try admit(lenient, current, laptop)
        try laptop.create(40, prefix: "offline")
        let laptopSite = try SiteID("laptop")
        let lenientAddress = try #require(try await lenient.start { $0.allowPlainSessions = [laptopSite] })
        let currentAddress = try #require(try await current.start())
        defer { Task { await lenient.stop(); await current.stop() } }
        let plain = try await SyncClient.exchangePlain(store: laptop.db, key: laptop.key, with: lenientAddress, logger: quietLogger())
        let compact = try await sync(laptop, to: currentAddress, highest: 3)
        #expect(plain.completed && compact.completed)
        #expect(plain.sentBlocks == compact.sentBlocks)
        #expect(plain.changeSetBytesOut > compact.changeSetBytesOut, "plain \(plain.changeSetBytesOut), compact \(compact.changeSetBytesOut)")
        // A plain session's socket carries its lines and nothing else; TLS adds to the compact one's.
        #expect(plain.socketBytesIn == plain.bytesIn && plain.socketBytesOut == plain.bytesOut, "\(plain)")
        #expect(compact.socketBytesIn > compact.bytesIn && compact.socketBytesOut > compact.bytesOut, "\(compact)")
        await lenient.stop()
        await current.stop()
    }

    /// Two stores already in sync exchange only the handshake, whose bytes each version cut:
    /// - protocol 3 writes the auth signature and the heads' hashes in base64 (§2.5): 40 bytes less for
    ///   each of the two signatures and 20 for each side's one head;
    /// - protocol 4, over TLS on the sites' keys, leaves out both `auth` frames (§2.5): the TLS handshake
    ///   proved each key on this connection. Each is 119 bytes in protocol 3 (an 88-character base64
    ///   signature in `{"signature":…,"type":"auth"}` and its line feed).
    /// - protocol 5 changes only the `blocks` frames' change sets: a session in sync costs what it
    ///   did in protocol 4.
    /// Every other frame is the same in both versions, so the difference is exact.
    @Test(arguments: [(2, 3, 2 * 40 + 2 * 20), (3, 4, 2 * 119), (4, 5, 0)])
    func aSessionInSyncCostsLessInEachVersion(older: Int, newer: Int, saved: Int) async throws {
        let node = try TestSite("branch"), laptop = try TestSite("laptop", role: .laptop)
        try admit(node, laptop)
        try laptop.create(3, prefix: "offline")
        let address = try #require(try await node.start())
        defer { Task { await node.stop() } }
        _ = try await sync(laptop, to: address, highest: newer)
        try await eventually(60, "the node has the laptop's tickets") { try node.db.digest() == laptop.db.digest() }
        let old = try await sync(laptop, to: address, highest: older)
        let new = try await sync(laptop, to: address, highest: newer)
        #expect(old.completed && new.completed)
        #expect(old.sentBlocks == 0 && new.sentBlocks == 0 && new.receivedBlocks == 0)
        let (oldBytes, newBytes) = (old.bytesIn + old.bytesOut, new.bytesIn + new.bytesOut)
        print("in-sync session inside TLS: protocol \(older) \(oldBytes) bytes, protocol \(newer) \(newBytes) bytes")
        #expect(oldBytes - newBytes == saved, "protocol \(older): \(oldBytes) bytes, protocol \(newer): \(newBytes)")
        // On the socket, TLS adds its handshake (both certificates, at least) and each record's framing.
        #expect(new.socketBytesIn > new.bytesIn && new.socketBytesOut > new.bytesOut, "\(new)")
        await node.stop()
    }
}
