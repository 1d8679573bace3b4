import Foundation
import GRDB
import InMemoryLogging
import Logging
import NIOCore
import NIOPosix
@testable import SyncNode
import SyncWire
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A store in a temporary folder and, when started, a node serving it on 127.0.0.1.
final class TestSite: @unchecked Sendable {
    let db: TicketDatabase
    let key = SiteKey.generate()
    let folder: String
    var node: SyncNode?
    var task: Task<Void, any Error>?

    /// - Parameters:
    ///   - clockAhead: how far this site's wall clock runs ahead, ms.
    ///   - applyGate: holds the apply of received batches where the test says (see ``ApplyGate``).
    init(_ site: String, role: SiteRole = .site, clockAhead: UInt64 = 0, applyGate: ApplyGate? = nil) throws {
        // The sessions the tests dial may take seconds to prove themselves on a loaded machine, as
        // the nodes' own (``start``); no test here waits for a handshake window.
        SessionContext.dialedHandshakeTimeout = .seconds(60)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-node-\(site)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var db = try TicketDatabase(TicketDatabase.openPool(path: folder + "/tierline.sqlite"), key: key,
                                    wallClock: { TicketDatabase.systemMillis() + clockAhead })
        if let applyGate {
            db.faultHook = { point in if point == "afterApplyBatch" { try applyGate.pass() } }
        }
        self.db = db
        try db.initialize(site: try SiteID(site), role: role)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// Starts a node; returns its port when it listens.
    /// - Parameters:
    ///   - configure: changes the test configuration (TLS, limits) before the node starts.
    ///   - logger: where the node logs; by default only critical messages, to nowhere useful.
    @discardableResult
    func start(listen: Bool = true, peers: [Endpoint] = [], batchBlocks: Int = 1024, escalationMillis: Int = 1000,
               logger: Logger? = nil, configure: (inout NodeConfiguration) -> Void = { _ in }) async throws -> Endpoint? {
        var quiet = Logger(label: "test.node")
        quiet.logLevel = .critical
        var config = NodeConfiguration {
            $0.listen = listen ? Endpoint(host: "127.0.0.1", port: 0) : nil
            $0.peers = peers
            ($0.pollMillis, $0.reconnectMinMillis, $0.reconnectMaxMillis) = (50, 50, 400)
            ($0.batchBlocks, $0.escalationMillis) = (batchBlocks, escalationMillis)
            // A peer's proof may take seconds on a loaded machine; no test here waits for the window.
            $0.handshakeMillis = 60_000
        }
        configure(&config)
        try config.validate()
        let node = try SyncNode(store: db, key: key, configuration: config, logger: logger ?? quiet)
        let address = try await node.bind()
        self.node = node
        task = Task { try await node.run() }
        return address.flatMap { $0.port }.map { Endpoint(host: "127.0.0.1", port: $0) }
    }

    func stop() async {
        node?.shutdown()
        _ = try? await task?.value
        node = nil
        task = nil
    }

    func create(_ count: Int, prefix: String) throws {
        for i in 0..<count {
            let t = try db.createTicket(TicketDraft(subject: "\(prefix) \(i)", firstMessage: "help \(i)"))
            if i % 3 == 0 { _ = try db.tag(t.id, add: ["\(prefix)-tag"], remove: []) }
        }
    }
}

/// Holds a store's apply of received batches at a point the test chooses, so a transfer is cut
/// mid-way whatever the machine's speed: the first `passing` batches apply; the next one waits inside
/// its apply transaction until the test calls `cut()` (it and every later batch then fail and roll
/// back) or `open()` (it and every later batch apply).
final class ApplyGate: @unchecked Sendable {
    private enum State { case counting(Int), cut, open }
    struct Cut: Error {}
    private let condition = NSCondition()
    private var state: State
    private var waiting = false

    init(passing: Int) { state = .counting(passing) }

    /// A batch waits at the gate.
    var isHolding: Bool {
        condition.lock()
        defer { condition.unlock() }
        return waiting
    }

    func cut() { settle(.cut) }
    func open() { settle(.open) }

    private func settle(_ new: State) {
        condition.lock()
        state = new
        condition.broadcast()
        condition.unlock()
    }

    /// The store's fault hook at "afterApplyBatch" (on the store's writer thread).
    func pass() throws {
        condition.lock()
        defer { condition.unlock() }
        if case .counting(let n) = state, n > 0 {
            state = .counting(n - 1)
            return
        }
        while case .counting = state {
            waiting = true
            condition.wait()
        }
        waiting = false
        if case .cut = state { throw Cut() }
    }
}

/// Makes `sites` one fleet (see ``TestSupport/admit(_:)``).
func admit(_ sites: TestSite...) throws {
    try TestSupport.admit(sites.map { ($0.db, $0.key) })
}

/// A logger that keeps what a node says, to check that a refusal is logged with its reason.
struct CapturedLog {
    let handler = InMemoryLogHandler()
    var logger: Logger { Logger(label: "test.node", factory: { _ in handler }) }

    func contains(_ level: Logger.Level, _ text: String) -> Bool {
        handler.entries.contains { $0.level >= level && "\($0.message)".contains(text) }
    }

    var warnings: String { handler.entries.filter { $0.level >= .warning }.map { "\($0.message)" }.joined(separator: " | ") }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test.sync")
    logger.logLevel = .critical
    return logger
}

@Suite(.serialized) struct NodeTests {
    @Test func aChainOfThreeConvergesThroughTheHub() async throws {
        let north = try TestSite("north"), hub = try TestSite("hub"), south = try TestSite("south")
        try admit(north, hub, south)
        try north.create(5, prefix: "north")
        try hub.create(3, prefix: "hub")
        try south.create(4, prefix: "south")
        let hubAddress = try #require(try await hub.start())
        try await north.start(listen: false, peers: [hubAddress])
        try await south.start(listen: false, peers: [hubAddress])
        defer { Task { await north.stop(); await south.stop(); await hub.stop() } }
        try await eventually(60, "all three digests are equal") {
            let digests = try [north, hub, south].map { try $0.db.digest() }
            let all = try north.db.tickets().count
            return Set(digests).count == 1 && all == 12
        }
        #expect(try north.db.vector() == south.db.vector())

        // Live push across the hub: a write at north reaches south.
        _ = try north.db.createTicket(TicketDraft(subject: "late news"))
        try await eventually(60, "the new ticket reaches south") { try south.db.tickets().contains { $0.subject == "late news" } }
        await north.stop(); await south.stop(); await hub.stop()
        // Each node knows its peers.
        #expect(try hub.db.peers().map(\.site.rawValue).sorted() == ["north", "south"])
        #expect(try north.db.peers().first?.vector == (try hub.db.vector()))
    }

    @Test func nodesThatDialEachOtherAndThemselvesStillConverge() async throws {
        // Both sides list the other as a peer (two sessions between them at once), and north also
        // lists its own address: that session is refused as duplicate-site and retried with backoff.
        let north = try TestSite("north"), south = try TestSite("south")
        try admit(north, south)
        try north.create(4, prefix: "north")
        try south.create(4, prefix: "south")
        let southAddress = try #require(try await south.start())
        let northListener = try TestSite("north-probe")  // only to learn a free port for north
        let probe = try #require(try await northListener.start())
        await northListener.stop()
        let northAddress = Endpoint(host: "127.0.0.1", port: probe.port)
        var logger = Logger(label: "test.node")
        logger.logLevel = .critical
        let node = try SyncNode(store: north.db, key: north.key,
                                configuration: NodeConfiguration {
                                    ($0.listen, $0.peers) = (northAddress, [southAddress, northAddress])
                                    ($0.pollMillis, $0.reconnectMinMillis, $0.reconnectMaxMillis) = (50, 50, 400)
                                },
                                logger: logger)
        try await node.bind()
        let task = Task { try await node.run() }
        await south.stop()
        _ = try await south.start(peers: [northAddress])
        try await eventually(60, "north and south converge") {
            let ticketCount = try south.db.tickets().count
            return try north.db.digest() == south.db.digest() && ticketCount == 8
        }
        // Blocks that came over both sessions are stored once.
        let count = try await north.db.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM block") }
        #expect(count == Int(try north.db.vector().entries.values.reduce(0, +)))
        #expect(try north.db.peers().contains { $0.site.rawValue == "north" } == false, "a session with itself is never recorded as a peer")
        node.shutdown()
        _ = try? await task.value
        await south.stop()
    }

    @Test func aLaptopSyncsBothWays() async throws {
        let node = try TestSite("branch"), laptop = try TestSite("laptop-anna", role: .laptop)
        try admit(node, laptop)
        try node.create(6, prefix: "branch")
        try laptop.create(4, prefix: "offline")
        let address = try #require(try await node.start())
        defer { Task { await node.stop() } }
        let first = try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger())
        #expect(first.completed)
        #expect(first.receivedBlocks == (try node.db.vector()[try SiteID("branch")]).toInt)
        #expect(first.sentBlocks == (try laptop.db.vector()[try SiteID("laptop-anna")]).toInt)
        try await eventually(60, "the node has the laptop's work") { try node.db.digest() == laptop.db.digest() }
        // Already in sync: nothing moves but the handshake.
        let second = try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger())
        #expect(second.sentBlocks == 0 && second.receivedBlocks == 0)
        #expect(second.bytesIn + second.bytesOut < 4096)
        let peers = try laptop.db.peers()
        #expect(peers.map(\.site.rawValue) == ["branch"])
        #expect(peers.first?.vector == (try node.db.vector()))
        await node.stop()
    }

    @Test func aTransferCutMidwayResumesWithoutLossOrDuplication() async throws {
        // east applies the first batch of the transfer, then holds the second inside its apply
        // transaction until the test has begun to stop the node; that batch and any after it then fail
        // and roll back. So the cut lands mid-way on any machine, however fast or busy.
        let gate = ApplyGate(passing: 1)
        let big = try TestSite("big"), east = try TestSite("east", applyGate: gate)
        try admit(big, east)
        try big.create(600, prefix: "backlog")
        let total = Int(try big.db.vector()[try SiteID("big")])
        let address = try #require(try await east.start())
        // Small batches (of 20 blocks): the transfer has dozens.
        let transfer = Task {
            try await SyncClient.exchange(store: big.db, key: big.key, with: address, logger: quietLogger(), batchBlocks: 20)
        }
        try await eventually(60, "east has applied part of the backlog and holds the next batch") {
            try east.db.vector()[try SiteID("big")] > 0 && gate.isHolding
        }
        east.node?.shutdown()
        gate.cut()
        await east.stop()
        let cut = await transfer.result
        let partial = Int(try east.db.vector()[try SiteID("big")])
        if case .success = cut { Issue.record("the transfer finished although the node stopped mid-way (\(partial) of \(total))") }
        #expect(partial > 0 && partial < total)

        // The node comes back on a new port; the next exchange sends only the rest.
        gate.open()
        let again = try #require(try await east.start())
        let resumed = try await SyncClient.exchange(store: big.db, key: big.key, with: again, logger: quietLogger(), batchBlocks: 20)
        await east.stop()
        #expect(resumed.completed)
        #expect(Int(try east.db.vector()[try SiteID("big")]) == total)
        #expect(try east.db.digest() == big.db.digest())
        #expect(resumed.sentBlocks <= total - partial + 20 * 4, "at most the unacknowledged window is sent twice")
        #expect(try east.db.pendingCount() == 0)
        let count = try await east.db.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM block WHERE origin = 'big'") }
        #expect(count == total, "each block is stored exactly once")
    }

    @Test func aSyncWhoseBlocksTheNodeHoldsBackDoesNotReportSuccess() async throws {
        // The laptop's clock runs 10 minutes ahead: the node quarantines its blocks (DESIGN: never
        // merge a stamp more than 5 minutes ahead), and `sync` must say so instead of "completed".
        let node = try TestSite("branch"), laptop = try TestSite("laptop-fast", role: .laptop, clockAhead: 600_000)
        try admit(node, laptop)
        try laptop.create(3, prefix: "ahead")
        let address = try #require(try await node.start())
        defer { Task { await node.stop() } }
        do {
            _ = try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger())
            Issue.record("the sync reported success although the node held every block back")
        } catch let failure as SyncFailure {
            #expect(failure.summary.errorCode == "block-refused")
            #expect(failure.summary.sentBlocks > 0)
            #expect(failure.message.contains("clock"))
        }
        #expect(try node.db.pendingCount() > 0)
        await node.stop()
    }

    @Test func anUnknownProtocolVersionIsRefused() async throws {
        let node = try TestSite("north")
        try admit(node)
        let address = try #require(try await node.start())
        defer { Task { await node.stop() } }
        for (version, schema, expected) in [(99, 1, WireError.Code.unsupportedProtocol), (1, 99, .unsupportedSchema)] {
            let stranger = SiteKey.generate()
            let channel = try await connectRaw(to: address, key: stranger)
            let hello = Hello(protocolVersion: version, minProtocol: version, schema: schema, site: try SiteID("stranger"),
                              role: .site, publicKey: stranger.publicKey, nonce: Array(repeating: 1, count: 32), time: 0)
            var received: [Inbound] = []
            try await channel.executeThenClose { inbound, _ in
                try await channel.channel.writeAndFlush(Outbound.frame(.hello(hello))).get()
                for try await item in inbound { received.append(item) }
            }
            guard received.count == 2, case .frame(.hello) = received[0],
                  case .frame(.error(let code, let message, let fatal)) = received[1] else {
                Issue.record("expected hello then error, got \(received)")
                continue
            }
            #expect(code == expected.rawValue)
            #expect(fatal)
            #expect(message.contains("upgrade"))
        }
        // The node still serves others.
        let laptop = try TestSite("laptop", role: .laptop)
        try admit(node, laptop)
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger()).completed)
        await node.stop()
    }
}

extension UInt64 {
    var toInt: Int { Int(self) }
}
