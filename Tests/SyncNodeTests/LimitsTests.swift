import Foundation
import InMemoryLogging
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SyncNode
@testable import SyncWire
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A connection to a node that speaks frames by hand: whatever the test writes, it reads back every
/// frame until the node closes, or until `seconds` pass (then it closes and the test fails).
struct RawPeer {
    let channel: NIOAsyncChannel<Inbound, Outbound>

    /// Connects as peers do, in TLS proving `key` (a stranger's, by default).
    static func connect(to address: Endpoint, key: SiteKey = .generate()) async throws -> RawPeer {
        RawPeer(channel: try await connectRaw(to: address, key: key))
    }

    /// Writes `line` and its LF as they are, valid frame or not.
    static func raw(_ line: [UInt8]) -> Outbound {
        .batch(EncodedBatch(batch: 0, line: line, blockCount: 0, size: 0, through: VersionVector()))
    }

    /// Runs `body` with the connection open, then reads until the node closes it. Returns every item
    /// read (those `body` returns first) and whether the node closed within `seconds`.
    func exchange(within seconds: Double,
                  _ body: @escaping @Sendable (inout NIOAsyncChannelInboundStream<Inbound>.AsyncIterator,
                                               NIOAsyncChannelOutboundWriter<Outbound>) async throws -> [Inbound] = { _, _ in [] })
        async throws -> (items: [Inbound], closedByNode: Bool) {
        let raw = channel.channel
        let timedOut = NIOLockedValueBox(false)
        let deadline = raw.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            timedOut.withLockedValue { $0 = true }
            raw.close(promise: nil)
        }
        defer { deadline.cancel() }
        var items: [Inbound] = []
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            items = try await body(&iterator, outbound)
            do {
                while let item = try await iterator.next() { items.append(item) }
            } catch {
                // A reset instead of a close still ends the connection.
            }
        }
        return (items, !timedOut.withLockedValue { $0 })
    }
}

func errors(in items: [Inbound]) -> [(code: String, message: String, fatal: Bool)] {
    items.compactMap { item in
        if case .frame(.error(let code, let message, let fatal)) = item { return (code, message, fatal) }
        return nil
    }
}

@Suite(.serialized) struct LimitsTests {
    /// Opens a session with the node at `address` as `site` (a roster member), answering nothing after.
    func handshake(_ peer: RawPeer, as site: TestSite, then: [Outbound], within seconds: Double = 20) async throws -> (items: [Inbound], closedByNode: Bool) {
        let me = try site.db.identity()
        let key = site.key
        let hello = Hello(site: me.site, role: me.role, publicKey: key.publicKey,
                          nonce: (0..<32).map { _ in UInt8.random(in: 0...255) }, time: TicketDatabase.systemMillis())
        return try await peer.exchange(within: seconds) { inbound, outbound in
            try await outbound.write(.frame(.hello(hello)))
            var seen: [Inbound] = []
            while let item = try await inbound.next() {
                seen.append(item)
                if case .frame(.hello(let theirs)) = item {
                    if !keyProvedByTLS(hello, theirs) {
                        try await outbound.write(.frame(.auth(signature: try SessionAuth.prove(key: key, own: hello, peer: theirs))))
                    }
                    try await outbound.write(.frame(.vector(VersionVector())))
                }
                if case .frame(.error) = item { break }
                if case .frame(.vector) = item {
                    for item in then { try await outbound.write(item) }
                    break
                }
            }
            return seen
        }
    }

    /// A member's error text reaches the node's log and its peer record: a terminal escape in it must
    /// not (a member could otherwise write to an operator's terminal through `serve`'s log or `sync`).
    @Test func aMembersErrorTextReachesTheLogWithoutControlCharacters() async throws {
        let node = try TestSite("north"), laptop = try TestSite("laptop", role: .laptop)
        try admit(node, laptop)
        let log = CapturedLog()
        let address = try #require(try await node.start(logger: log.logger))
        defer { Task { await node.stop() } }
        let hostile = "closing \u{1B}]0;pwned\u{07}\u{1B}[2J now"
        _ = try await handshake(try await RawPeer.connect(to: address, key: laptop.key), as: laptop,
                                then: [.frame(.error(code: "internal", message: hostile, fatal: true))])
        try await eventually(60, "the node logs the session's end") { log.contains(.warning, "session ended") }
        let ended = log.handler.entries.filter { "\($0.message)".contains("session ended") }.map { "\($0.message)" }
        #expect(ended.allSatisfy { !$0.unicodeScalars.contains { $0.value < 0x20 } }, "\(ended)")
        #expect(ended.contains { $0.contains("closing") && $0.contains("now") }, "the rest of the text is kept: \(ended)")
        try await eventually(60, "the peer record holds the error") { try node.db.peers().first?.lastError != nil }
        let stored = try #require(try node.db.peers().first?.lastError)
        #expect(!stored.unicodeScalars.contains { $0.value < 0x20 }, "\(stored)")
    }

    @Test func aLineOverTheConfiguredMaximumIsRefusedWithLineTooLong() async throws {
        let limited = try TestSite("limited"), standard = try TestSite("standard"), laptop = try TestSite("laptop", role: .laptop)
        try admit(limited, standard, laptop)
        let limitedAddress = try #require(try await limited.start { $0.maxLineBytes = NodeConfiguration.minimumLineBytes })
        let standardAddress = try #require(try await standard.start())
        defer { Task { await limited.stop(); await standard.stop() } }
        // Not JSON, and one byte longer than the configured limit, well under the protocol's 8 MiB.
        let line = [UInt8](repeating: UInt8(ascii: "x"), count: NodeConfiguration.minimumLineBytes + 1)

        // A member's open session: the configured limit counts.
        let (items, closed) = try await handshake(try await RawPeer.connect(to: limitedAddress, key: laptop.key), as: laptop, then: [RawPeer.raw(line)])
        #expect(closed, "the node closes the connection after a fatal error")
        let refused = errors(in: items)
        #expect(refused.count == 1)
        #expect(refused.first?.code == "line-too-long")
        #expect(refused.first?.fatal == true)
        #expect(refused.first?.message.contains("\(NodeConfiguration.minimumLineBytes)") == true, "\(refused)")

        // The same line in a session at a node with the standard limit is read whole, and is merely not JSON.
        let (otherItems, _) = try await handshake(try await RawPeer.connect(to: standardAddress, key: laptop.key), as: laptop, then: [RawPeer.raw(line)])
        #expect(errors(in: otherItems).map(\.code) == ["bad-json"])

        // Before it has authenticated, a peer's lines are held to 2 MiB + 4 KiB, whatever maxLineBytes says.
        let stranger = try await RawPeer.connect(to: standardAddress)
        let (strangerItems, strangerClosed) = try await stranger.exchange(within: 20) { _, outbound in
            try await outbound.write(RawPeer.raw([UInt8](repeating: UInt8(ascii: "x"), count: PreludeLimit.standardLimit + 1)))
            return []
        }
        #expect(strangerClosed)
        #expect(errors(in: strangerItems).map(\.code) == ["line-too-long"])
        #expect(errors(in: strangerItems).first?.message.contains("before the session opened") == true, "\(strangerItems)")

        // The limited node still serves well-behaved peers.
        try laptop.create(3, prefix: "laptop")
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: limitedAddress, logger: quietLogger()).completed)
        await limited.stop()
        await standard.stop()
    }

    @Test func connectionsBeyondMaxSessionsAreRefusedWhileTheOpenOnesWork() async throws {
        let hub = try TestSite("hub"), north = try TestSite("north"), south = try TestSite("south")
        let laptop = try TestSite("laptop", role: .laptop)
        try admit(hub, north, south, laptop)
        let address = try #require(try await hub.start { $0.maxSessions = 2 })
        try await north.start(listen: false, peers: [address])
        try await south.start(listen: false, peers: [address])
        defer { Task { await north.stop(); await south.stop(); await hub.stop() } }
        try await eventually(60, "both sessions are open at the hub") { try hub.db.peers().count == 2 }

        // A third member proves its key, then gets the error frame and is closed: it never sees a vector.
        let (items, closed) = try await handshake(try await RawPeer.connect(to: address, key: laptop.key), as: laptop, then: [])
        #expect(closed)
        #expect(errors(in: items).map(\.code) == ["internal"])
        #expect(errors(in: items).first?.message.contains("already serves 2 sessions") == true, "\(items)")
        #expect(!items.contains { if case .frame(.vector) = $0 { true } else { false } })

        // The two open sessions carry on: a ticket written at north reaches south through the hub.
        _ = try north.db.createTicket(TicketDraft(subject: "while the hub is full"))
        try await eventually(60, "the ticket reaches south") { try south.db.tickets().contains { $0.subject == "while the hub is full" } }

        // When a session ends its place is free again.
        await south.stop()
        try await eventually(60, "a session is admitted once one of the two has ended") { () async throws -> Bool in
            (try? await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger()))?.completed ?? false
        }
        await north.stop()
        await hub.stop()
    }

    @Test func strangersMakeRoomForEachOtherAndNeverForMembers() async throws {
        // The pool: 4 in all, 2 per address. A third stranger of one address closes that address's
        // oldest; a stranger of a new address, with the pool full, closes the oldest of the address
        // holding the most.
        let admission = Admission(limits: Admission.Limits(members: 1, strangers: 4, strangersPerHost: 2))
        let closed = NIOLockedValueBox<[String]>([])
        func enter(_ host: String, _ name: String) -> UInt64 {
            let (ticket, evicted) = admission.enter(host: host) { closed.withLockedValue { $0.append(name) } }
            for stranger in evicted { stranger.evict() }
            return ticket
        }
        let a1 = enter("10.0.0.1", "a1"), a2 = enter("10.0.0.1", "a2")
        let a3 = enter("10.0.0.1", "a3")
        #expect(closed.withLockedValue { $0 } == ["a1"])
        #expect(!admission.holds(a1) && admission.holds(a2) && admission.holds(a3))
        let b1 = enter("10.0.0.2", "b1")
        _ = enter("10.0.0.3", "c1")
        #expect(admission.counts.strangers == 4)
        _ = enter("10.0.0.4", "d1")
        #expect(closed.withLockedValue { $0 } == ["a1", "a2"], "the pool was full: the oldest of 10.0.0.1, which held two")
        // A stranger that authenticates takes the member slot and leaves the pool; a second is refused.
        #expect(admission.authenticated(b1, site: "north") == nil)
        #expect(admission.counts == (members: 1, strangers: 3))
        #expect(admission.authenticated(a3, site: "south") == .full)
        admission.leave(b1, member: true)
        admission.leave(a3, member: false)
        #expect(admission.counts == (members: 0, strangers: 2))

        // Every address holds one: the oldest stranger of the pool makes room, whatever the addresses'
        // order as text (an attacker could pick addresses that sort after a member's).
        let tied = Admission(limits: Admission.Limits(members: 1, strangers: 3, strangersPerHost: 2))
        let tiedClosed = NIOLockedValueBox<[String]>([])
        for (host, name) in [("10.0.0.9", "member"), ("10.0.0.10", "x"), ("10.0.0.11", "y"), ("10.0.0.12", "z")] {
            let (_, evicted) = tied.enter(host: host) { tiedClosed.withLockedValue { $0.append(name) } }
            for stranger in evicted { stranger.evict() }
        }
        #expect(tiedClosed.withLockedValue { $0 } == ["member"], "the oldest of the pool, not the lowest address")
    }

    /// One member cannot take every session slot (attack review F7): a site holds at most
    /// `sessionsPerSite` at once, and others still get in.
    @Test func oneSiteCannotHoldEverySessionSlot() {
        let admission = Admission(limits: Admission.Limits(members: 10, sessionsPerSite: 2))
        let tickets = (0..<4).map { _ in admission.enter(host: "10.0.0.1") {}.ticket }
        #expect(admission.authenticated(tickets[0], site: "north") == nil)
        #expect(admission.authenticated(tickets[1], site: "north") == nil)
        #expect(admission.authenticated(tickets[2], site: "north") == .siteFull)
        #expect(admission.authenticated(tickets[3], site: "south") == nil)
        admission.leave(tickets[0], member: true)
        let again = admission.enter(host: "10.0.0.1") {}.ticket
        #expect(admission.authenticated(again, site: "north") == nil, "a slot freed by north's own session is north's again")
        #expect(admission.counts.members == 3)
    }

    @Test func aConnectionClosedToMakeRoomIsToldWhyEvenBeforeItHasWrittenAnything() async throws {
        let hub = try TestSite("hub"), laptop = try TestSite("laptop", role: .laptop)
        try admit(hub, laptop)
        let address = try #require(try await hub.start())
        defer { Task { await hub.stop() } }
        // The laptop's connection: TLS is done, and its session has not written its hello yet (a slow
        // machine, a busy event loop).
        let tls = try SiteTLS.contexts(key: laptop.key, site: try laptop.db.identity().site)
        let (channel, counter, gate) = try await SyncNode.connectGated(to: address, group: MultiThreadedEventLoopGroup.singleton,
                                                                     limits: .standard, readTimeout: nil, tls: tls)
        // 16 more connections from its address that never start TLS: the last of them makes room by
        // closing the oldest stranger of the address, the laptop's.
        var strangers: [any Channel] = []
        for _ in 0..<16 {
            strangers.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: address.host, port: address.port).get())
        }
        try await eventually(30, "the node closes the laptop's connection") { !channel.channel.isActive }

        // The session `tierline sync` runs: its hello cannot be written on the closed connection, and it
        // reports the reason the node wrote before it closed, not a lost connection.
        let access = StoreAccess(laptop.db)
        let context = SessionContext(identity: try laptop.db.identity(), key: laptop.key, store: access, feed: ChangeFeed(), logger: quietLogger())
        let summary = await SyncSession(context: context, mode: .oneShot, address: address.description, counter: counter,
                                        transport: gate).run(channel)
        #expect(summary.errorCode == "internal", "\(summary.error ?? "")")
        #expect(summary.error?.hasPrefix("peer reported internal: too many connections are waiting to authenticate") == true, "\(summary.error ?? "")")
        #expect(!summary.opened)
        for stranger in strangers { try? await stranger.close() }
        await hub.stop()
    }

    @Test func refusalsAreLoggedOncePerAddressPerIntervalWithACount() {
        let log = CapturedLog()
        let now = NIOLockedValueBox<UInt64>(1_000_000)
        let refusals = RefusalLog(logger: log.logger, intervalMillis: 60_000, clock: { now.withLockedValue { $0 } })
        func lines() -> [String] { log.handler.entries.map { "\($0.message)" } }
        for _ in 0..<500 { refusals.note(host: "203.0.113.9", "closed before it authenticated: timeout") }
        refusals.note(host: "198.51.100.7", "line-too-long")
        #expect(lines().count == 2, "the first refusal of each address, at once: \(lines())")
        refusals.flush()
        #expect(lines().count == 2, "nothing more within the interval")
        now.withLockedValue { $0 += 60_000 }
        refusals.flush()
        #expect(lines().count == 3, "\(lines())")
        #expect(lines().last?.contains("refused 499 more connection(s) from 203.0.113.9 in the last 60 s") == true, "\(lines())")
        // An address quiet for an interval is forgotten; its next refusal is logged at once again.
        now.withLockedValue { $0 += 60_000 }
        refusals.flush()
        refusals.note(host: "198.51.100.7", "line-too-long")
        #expect(lines().count == 4 && lines().last?.hasPrefix("refused a connection from 198.51.100.7") == true, "\(lines())")
        // As the node stops, every count still open is logged.
        refusals.note(host: "198.51.100.7", "line-too-long")
        refusals.flush(all: true)
        #expect(lines().last?.contains("refused 1 more connection(s) from 198.51.100.7") == true, "\(lines())")
    }

    @Test func aPeerThatFallsSilentIsDisconnectedAfterTheIdleTimeout() async throws {
        let node = try TestSite("north"), idler = try TestSite("idler")
        try admit(node, idler)
        let address = try #require(try await node.start { $0.idleTimeoutMillis = 3000 })
        defer { Task { await node.stop() } }
        // The idler completes the handshake, then answers nothing: not even the node's pings.
        let started = Date()
        let (items, closed) = try await handshake(try await RawPeer.connect(to: address, key: idler.key), as: idler, then: [], within: 40)
        let elapsed = Date().timeIntervalSince(started)
        #expect(closed, "the node closed the silent connection")
        #expect(items.contains { if case .frame(.vector) = $0 { true } else { false } }, "the session opened: \(items)")
        #expect(items.contains { if case .frame(.ping) = $0 { true } else { false } }, "the node pinged before giving up")
        let timeouts = errors(in: items).filter { $0.code == "timeout" }
        #expect(timeouts.count == 1, "\(errors(in: items))")
        #expect(timeouts.first?.message.contains("handshake") == false, "the idle timeout, not the handshake timeout")
        // The read guard pings after 1.5 s of silence and closes after another 1.5 s: never before 3 s.
        // (Only this lower bound is checked: a loaded machine can make any upper bound false.)
        #expect(elapsed >= 3, "not disconnected before the 3 s idle timeout (took \(elapsed) s)")
        // The node records the reason just after it closes.
        try await eventually(60, "the idler's last error is the timeout") { try node.db.peers().first?.lastError?.hasPrefix("timeout") == true }
        await node.stop()
    }

    @Test func twoNodesWithAShortIdleTimeoutKeepAQuietLinkUp() async throws {
        let hub = try TestSite("hub"), north = try TestSite("north")
        try admit(hub, north)
        let hubLog = CapturedLog(), northLog = CapturedLog()
        // 6 s, not the 3 s minimum: a link is cut only by silence of the whole timeout, and on a
        // loaded machine a process can stall for seconds; the test is about pings, not about that.
        let address = try #require(try await hub.start(logger: hubLog.logger) { $0.idleTimeoutMillis = 6000 })
        try await north.start(listen: false, peers: [address], logger: northLog.logger) { $0.idleTimeoutMillis = 6000 }
        defer { Task { await north.stop(); await hub.stop() } }
        try await eventually(60, "the session opens") { try hub.db.peers().count == 1 }
        // Nothing to send for two idle timeouts: pings (after a third of it) keep both sides hearing.
        try await Task.sleep(for: .seconds(13))
        #expect(!hubLog.contains(.warning, "session ended"), "\(hubLog.warnings)")
        #expect(!northLog.contains(.warning, "session ended"), "\(northLog.warnings)")
        #expect(try hub.db.peers().first?.lastError == nil)
        await north.stop()
        await hub.stop()
    }
}
