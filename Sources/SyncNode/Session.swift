import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SyncProtocol
import SyncWire
import TicketModel
import TicketStore

/// What one session did, for the `sync` summary, the node's log and `tierline status`.
public struct SessionSummary: Sendable, Codable, Equatable {
    public var address: String
    public var peerSite: String?
    public var peerRole: String?
    public var sentBlocks = 0
    public var sentBatches = 0
    public var receivedBlocks = 0
    public var applied = 0
    public var held = 0
    public var duplicates = 0
    public var refused = 0
    /// The protocol's bytes, both ways: the lines, inside TLS when the session runs in it.
    public var bytesIn = 0
    public var bytesOut = 0
    /// Bytes on the TCP socket, both ways: the lines, and in a TLS session also the TLS handshake
    /// and each record's framing (0 where no transport was counted).
    public var socketBytesIn = 0
    public var socketBytesOut = 0
    /// Inflated change-set bytes, both ways.
    public var changeSetBytesIn = 0
    public var changeSetBytesOut = 0
    public var durationMillis = 0
    public var skewMillis: Int64?
    /// The error that ended the session, if one did.
    public var error: String?
    public var errorCode: String?
    /// Both sides caught up (a one-shot `sync` finished its exchange).
    public var completed = false
    /// The handshake finished: both sides proved their keys and exchanged vectors.
    public var opened = false
    /// Conflicts that appeared in this store during the session (one-shot `sync` only).
    public var newConflicts = 0

    public init(address: String) { self.address = address }
}

/// Progress of a session, reported as it goes.
public struct SyncProgress: Sendable, Equatable {
    public var toSend = 0
    public var sent = 0
    public var toReceive = 0
    public var received = 0
    public var bytesIn = 0
    public var bytesOut = 0
}

extension SessionContext {
    /// The handshake window of the sessions this process dials (``SyncClient``): 5 s, as
    /// `Protocol/PROTOCOL.md` §2.4 says. Not a setting: tests on a loaded machine lengthen it, as they
    /// do a node's own window (``NodeConfiguration/handshakeMillis``).
    static var dialedHandshakeTimeout: TimeAmount {
        get { dialedHandshakeWindow.withLockedValue { $0 } }
        set { dialedHandshakeWindow.withLockedValue { $0 = newValue } }
    }
    private static let dialedHandshakeWindow = NIOLockedValueBox(TimeAmount.seconds(5))
}

/// Settings every session of a node shares.
struct SessionContext: Sendable {
    var identity: LocalIdentity
    var key: SiteKey
    var store: StoreAccess
    var feed: ChangeFeed
    var limits = WireLimits.standard
    var logger: Logger
    var clock: @Sendable () -> UInt64 = TicketDatabase.systemMillis
    /// Sender batch bounds: many small blocks go in one frame, a backlog in bounded frames.
    var batchBlocks = 1024
    var batchBytes = 1 << 20
    var pingIntervalMillis: UInt64 = 15_000
    /// A peer has this long from its connection to an open session (§2.9): a stranger's slot is short-lived.
    var handshakeTimeout = TimeAmount.seconds(5)
    /// Half the idle timeout: see `applyLimits(of:)`.
    var readTimeout = TimeAmount.milliseconds(22_500)
    var isShuttingDown: @Sendable () -> Bool = { false }
    /// The sites with an open session, for the coordinator's backstop.
    var presence = Presence()
    /// Counts the restores the coordinator began to watch: a session opened before the latest one
    /// proves nothing about it (§2.2.6).
    var restoreEpoch = RestoreEpoch()
    /// Where accepted connections that end before they authenticate are logged (once per address per
    /// interval); `nil` logs each as a warning.
    var refusals: RefusalLog?
    var metrics = SyncMetrics()
    /// The sites a plain (protocol-1) session may be with (`allowPlainSessions`); `nil`: any site,
    /// only for ``SyncClient/exchangePlain(store:key:with:logger:group:)``, which dials plain on purpose.
    var plainSites: Set<SiteID>? = []
    /// The highest protocol version this node's hellos name (tests hold a node at an older one).
    var protocolVersion = WireVersion.protocolVersion
}

/// The node's sync counters (swift-metrics): `serve --http` exports them at `/metrics`.
public struct SyncMetrics: Sendable {
    let blocksIn: Counter
    let blocksApplied: Counter
    let blocksOut: Counter
    let changeSetBytesIn: Counter
    let changeSetBytesOut: Counter
    let socketBytesIn: Counter
    let socketBytesOut: Counter
    let sessions: Counter
    let sessionErrors: Counter
    /// Origins found with two histories (a peer's head differs from the block held at its seq).
    let divergences: Counter
    let openSessions: Meter

    /// What each of these families counts: the `# HELP` line of `/metrics`, which Prometheus tools
    /// (`promtool check metrics`) require of every family. swift-metrics has no place for it, so the
    /// factory that exports them looks the text up here by label.
    public static let help: [String: String] = [
        "tierline_sync_blocks_received_total": "Blocks received from peers in sync sessions",
        "tierline_sync_blocks_applied_total": "Received blocks this replica applied (new to it)",
        "tierline_sync_blocks_sent_total": "Blocks sent to peers in sync sessions",
        "tierline_sync_changeset_bytes_received_total": "Change-set bytes received from peers, inflated",
        "tierline_sync_changeset_bytes_sent_total": "Change-set bytes sent to peers, inflated",
        "tierline_sync_socket_bytes_received_total": "Bytes read from sync connections' sockets, TLS included, counted when a session ends",
        "tierline_sync_socket_bytes_sent_total": "Bytes written to sync connections' sockets, TLS included, counted when a session ends",
        "tierline_sync_sessions_total": "Sync sessions started, dialed or accepted",
        "tierline_sync_session_errors_total": "Sync sessions that ended with an error",
        "tierline_sync_divergences_total": "Times a peer showed another block at a seq this replica holds (two histories of a site)",
        "tierline_sync_sessions_open": "Sync sessions open now",
    ]

    /// Counters made by `factory` (by default the process-wide one, which does nothing unless bootstrapped).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        blocksIn = Counter(label: "tierline_sync_blocks_received_total", factory: factory)
        blocksApplied = Counter(label: "tierline_sync_blocks_applied_total", factory: factory)
        blocksOut = Counter(label: "tierline_sync_blocks_sent_total", factory: factory)
        changeSetBytesIn = Counter(label: "tierline_sync_changeset_bytes_received_total", factory: factory)
        changeSetBytesOut = Counter(label: "tierline_sync_changeset_bytes_sent_total", factory: factory)
        socketBytesIn = Counter(label: "tierline_sync_socket_bytes_received_total", factory: factory)
        socketBytesOut = Counter(label: "tierline_sync_socket_bytes_sent_total", factory: factory)
        sessions = Counter(label: "tierline_sync_sessions_total", factory: factory)
        sessionErrors = Counter(label: "tierline_sync_session_errors_total", factory: factory)
        divergences = Counter(label: "tierline_sync_divergences_total", factory: factory)
        openSessions = Meter(label: "tierline_sync_sessions_open", factory: factory)
    }
}

/// The coordinator's count of restores it began to watch, shared by its sessions.
final class RestoreEpoch: Sendable {
    private let value = NIOLockedValueBox(0)
    var current: Int { value.withLockedValue { $0 } }
    func advance() { value.withLockedValue { $0 += 1 } }
}

/// Which peer sites have a session open right now.
final class Presence: Sendable {
    private let open = NIOLockedValueBox<[SiteID: Int]>([:])
    func enter(_ site: SiteID) { open.withLockedValue { $0[site, default: 0] += 1 } }
    func leave(_ site: SiteID) {
        open.withLockedValue { open in
            open[site, default: 0] -= 1
            if open[site, default: 0] <= 0 { open[site] = nil }
        }
    }
    var sites: Set<SiteID> { open.withLockedValue { Set($0.keys) } }
}

/// What an accepted connection's session tells the node's ``Admission``.
struct AcceptedHooks: Sendable {
    /// The remote address without its port: the unit of the strangers' budget and of the refusal log.
    var host: String
    /// Lifted once the peer has authenticated: lines may then grow to `maxLineBytes`.
    var prelude: PreludeGate
    /// The member slots (`maxSessions`) and one site's share of them, for the refusal.
    var memberSlots: Int
    var sessionsPerSite: Int
    /// Called once the peer has proved its roster key as a site; why it cannot be admitted, or `nil`.
    var authenticated: @Sendable (SiteID) -> Admission.Refusal?
}

/// One sync session over one connection, either side: handshake, then exchange and live push until
/// `bye`, an error, or (for a one-shot `sync`) both sides caught up.
///
/// The session's rules are a ``SessionMachine`` (module `SyncProtocol`); this class is the I/O around
/// it. It reads frames and feeds them in, answers the machine's questions from the store, writes what
/// it says, runs the batch pipeline (``BatchIntake``), the handshake timer, the sender's wake-ups and
/// the peer record, and turns the ending into a ``SessionSummary``.
final class SyncSession: Sendable {
    enum Mode: Sendable { case live, oneShot }

    let context: SessionContext
    let mode: Mode
    let address: String
    let counter: WireCounter
    let machine: NIOLockedValueBox<SessionMachine>
    let onProgress: (@Sendable (SyncProgress) -> Void)?
    /// Set for a connection this node accepted; `nil` for one it dialed.
    let accepted: AcceptedHooks?
    /// How the connection is protected, and the key the peer proved in TLS (`nil`: plain, in tests).
    let transport: TransportGate?

    init(context: SessionContext, mode: Mode, address: String, counter: WireCounter, accepted: AcceptedHooks? = nil,
         transport: TransportGate? = nil, onProgress: (@Sendable (SyncProgress) -> Void)? = nil) {
        self.context = context
        self.accepted = accepted
        self.transport = transport
        self.mode = mode
        self.address = address
        self.counter = counter
        self.onProgress = onProgress
        var nonce = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = UInt8.random(in: .min ... .max, using: &rng) }
        let hello = Hello(protocolVersion: context.protocolVersion, site: context.identity.site, role: context.identity.role, publicKey: context.identity.publicKey,
                          nonce: nonce, time: context.clock(), software: "tierline \(TierlineVersion.current)")
        machine = NIOLockedValueBox(SessionMachine(SessionMachine.Configuration(
            hello: hello, key: context.key, mode: mode == .oneShot ? .oneShot : .live,
            slots: accepted.map { SessionMachine.Slots(members: $0.memberSlots, perSite: $0.sessionsPerSite) },
            plainSites: context.plainSites, window: context.limits.window, pingIntervalMillis: context.pingIntervalMillis,
            readGuardMillis: UInt64(max(0, context.readTimeout.nanoseconds / 1_000_000)))))
    }

    var logger: Logger {
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(address)"
        if let site = machine.withLockedValue({ $0.peer?.site }) { logger[metadataKey: "site"] = "\(site)" }
        return logger
    }

    /// What the machine is told the node knows now.
    var moment: SessionMachine.Moment {
        SessionMachine.Moment(now: context.clock(), restoreEpoch: context.restoreEpoch.current, isShuttingDown: context.isShuttingDown(),
                              uptimeMillis: NIODeadline.now().uptimeNanoseconds / 1_000_000)
    }

    /// Runs the session to its end and closes the connection.
    func run(_ channel: NIOAsyncChannel<Inbound, Outbound>) async -> SessionSummary {
        let started = context.clock()
        context.metrics.sessions.increment()
        context.metrics.openSessions.increment()
        defer { context.metrics.openSessions.decrement() }
        let (token, wakes) = context.feed.subscribe()
        var ending: SessionEnded?
        var completed = false
        do {
            try await channel.executeThenClose { inbound, _ in
                let raw = channel.channel
                let timer = raw.eventLoop.scheduleTask(in: context.handshakeTimeout) { [self] in
                    let error = WireError(.timeout, "the handshake did not finish within \(context.handshakeTimeout.nanoseconds / 1_000_000_000) s")
                    if let frame = machine.withLockedValue({ $0.expireHandshake(error) }) {
                        raw.writeAndFlush(Outbound.frame(frame)).whenComplete { _ in raw.close(promise: nil) }
                        // A peer that does not read cannot hold the connection open.
                        raw.eventLoop.scheduleTask(in: .seconds(2)) { raw.close(promise: nil) }
                    }
                }
                defer { timer.cancel() }
                let (roster, restored) = try await context.store.run { try ($0.rosterVersion(), $0.restoredAt().map { UInt64(max(1, $0)) }) }
                let hello = machine.withLockedValue { $0.start(roster: roster, restored: restored, at: context.clock()) }
                try await write(raw, .frame(.hello(hello)))
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask { try await self.readLoop(inbound, raw, token: token) }
                    group.addTask { try await self.sendLoop(raw, token: token, wakes: wakes) }
                    group.addTask {
                        // A tick a second keeps pings going and wakes a one-shot sender to check it is done.
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(1))
                            self.context.feed.signal(token)
                            if self.machine.withLockedValue({ $0.isDirty }) { await self.recordPeer(error: nil) }
                        }
                        return false
                    }
                    defer {
                        group.cancelAll()
                        // Unblocks a task waiting on a write to a peer that stopped reading.
                        raw.close(promise: nil)
                    }
                    if let first = try await group.next() { completed = first }
                }
            }
        } catch let error as SessionEnded {
            ending = error
        } catch let error as WireError {
            ending = SessionEnded(error: error, fromPeer: false)
        } catch let error as IOError {
            // A reset or a broken pipe: the transport ended, nothing on either node failed.
            ending = SessionEnded(error: WireError(.connectionLost, "\(error)"), fromPeer: false)
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed || error == .eof {
            ending = SessionEnded(error: WireError(.connectionLost, "the connection closed (\(error))"), fromPeer: false)
        } catch {
            ending = SessionEnded(error: WireError(.internal, "\(error)"), fromPeer: false)
        }
        context.feed.unsubscribe(token)
        let final = machine.withLockedValue { $0 }
        if let site = final.present { context.presence.leave(site) }
        if ending == nil, let timeout = final.timedOut { ending = SessionEnded(error: timeout, fromPeer: false) }
        // The peer wrote why it closed (a node that closes a stranger to make room, §2.9.2), but a write
        // of this side failed on the closed connection before the frame was read: its reason counts.
        if ending?.error.code == .connectionLost, let reason = transport?.peerError { ending = SessionEnded(error: reason, fromPeer: true) }
        var summary = makeSummary(final, started: started)
        var copiedRefusal: String?
        if final.needsCopiedRefusal(ending) { copiedRefusal = try? await context.store.run { try $0.copiedStoreRefusal() } }
        (ending, summary.completed) = final.conclude(ending, completed: completed, copiedRefusal: copiedRefusal)
        if let ending {
            // A peer's own words reach the log, `sync`'s output and `status`: control characters
            // (terminal escapes) never pass, whoever the peer is.
            summary.error = SessionMachine.printable((ending.fromPeer ? "peer reported " : "") + ending.error.description)
            summary.errorCode = ending.error.code.rawValue
            if let accepted, let refusals = context.refusals, !final.isAuthenticated {
                // A stranger: counted per address, not a line per connection.
                refusals.note(host: accepted.host, "closed before it authenticated: \(summary.error ?? "")")
            } else {
                logger.warning("session ended: \(summary.error ?? "")")
            }
        } else {
            logger.info("session ended", metadata: ["sent": "\(summary.sentBlocks)", "received": "\(summary.receivedBlocks)"])
        }
        context.metrics.socketBytesIn.increment(by: summary.socketBytesIn)
        context.metrics.socketBytesOut.increment(by: summary.socketBytesOut)
        if summary.error != nil { context.metrics.sessionErrors.increment() }
        await recordPeer(error: summary.error)
        return summary
    }

    func makeSummary(_ machine: SessionMachine, started: UInt64) -> SessionSummary {
        var summary = SessionSummary(address: address)
        let tally = machine.tally
        summary.peerSite = machine.peer?.site.rawValue
        summary.peerRole = machine.peer?.role.rawValue
        summary.opened = machine.isOpen
        let counts: [(WritableKeyPath<SessionSummary, Int>, KeyPath<SessionMachine.Tally, Int>)] = [
            (\.sentBlocks, \.sentBlocks), (\.sentBatches, \.sentBatches), (\.receivedBlocks, \.receivedBlocks), (\.applied, \.applied),
            (\.held, \.held), (\.duplicates, \.duplicates), (\.refused, \.refused),
            (\.changeSetBytesIn, \.changeSetBytesIn), (\.changeSetBytesOut, \.changeSetBytesOut)]
        for (field, count) in counts { summary[keyPath: field] = tally[keyPath: count] }
        summary.skewMillis = tally.skewMillis
        summary.bytesIn = counter.bytesRead
        summary.bytesOut = counter.bytesWritten
        summary.socketBytesIn = transport?.socket.bytesRead ?? 0
        summary.socketBytesOut = transport?.socket.bytesWritten ?? 0
        let now = context.clock()
        // Zero if the wall clock stepped back.
        summary.durationMillis = Int(clamping: now >= started ? now - started : 0)
        return summary
    }

    // MARK: Performing the machine's actions

    /// Where one side stopped performing the machine's actions.
    enum Pause: Equatable {
        /// Nothing more to do until the next frame or wake-up.
        case idle
        /// The side is done; `completed`: both sides caught up.
        case finished(Bool)
        /// The blocks frame just read is to be decoded and queued.
        case prepareBatch
        /// The batches queued are to be applied before the machine goes on.
        case drainBatches
    }

    enum Side { case reading, sending }

    /// Performs `actions` in order for one side, answering the machine's questions from the store
    /// and feeding the answers back, until the side pauses.
    func perform(_ actions: [SessionMachine.Action], _ side: Side, _ channel: any Channel, token: Int) async throws -> Pause {
        for action in actions {
            switch action {
            case .send(let frame):
                // From protocol 3, binary members after the hello go in base64 (§2.5).
                let compact = machine.withLockedValue { ($0.negotiatedProtocol ?? 1) >= 3 }
                try await write(channel, compact ? .compactFrame(frame) : .frame(frame))
            case .sendBatch(let batch):
                try await write(channel, .batch(batch.encoded))
                context.metrics.blocksOut.increment(by: batch.encoded.blockCount)
                context.metrics.changeSetBytesOut.increment(by: batch.encoded.size)
            case .fail(let error): try await fail(channel, error)
            case .end(let ending): throw ending
            case .ask(let request):
                let answer = try await answer(request)
                let next = machine.withLockedValue { [moment] machine in
                    side == .reading ? machine.receive(.answer(answer), at: moment) : machine.send(.answer(answer), at: moment)
                }
                return try await perform(next, side, channel, token: token)
            case .prepareBatch: return .prepareBatch
            case .drainBatches: return .drainBatches
            case .applyBatch: break
            case .liftPrelude: accepted?.prelude.lift()
            case .enterPresence(let site): context.presence.enter(site)
            case .advanceRestoreEpoch: context.restoreEpoch.advance()
            case .signalAll: context.feed.signal()
            case .wakeSender: context.feed.signal(token)
            case .recordPeer: await recordPeer(error: nil)
            case .reportProgress: report()
            case .log(let level, let message, let metadata):
                logger.log(level: level, "\(message)", metadata: metadata.isEmpty ? nil : metadata.mapValues { .string($0) })
            case .finishReading(let completed): return .finished(completed)
            case .stopSending(let bye, let completed):
                if completed {
                    try await write(channel, .frame(.bye(reason: bye)))
                } else {
                    try? await write(channel, .frame(.bye(reason: bye)), deadline: .seconds(2))
                }
                return .finished(completed)
            case .idle: return .idle
            }
        }
        return .idle
    }

    /// Answers one of the machine's questions from the store (or the node).
    func answer(_ request: SessionMachine.Request) async throws -> SessionMachine.Answer {
        let store = context.store
        switch request {
        case .membership:
            let (pinned, roster) = try await store.run { try ($0.pinnedCoordinatorKey() != nil, $0.roster()) }
            return .membership(SessionMachine.Membership(pinnedCoordinator: pinned, roster: roster, transport: transportFacts))
        case .adoptRoster(let document, let signature):
            do {
                // The store reads the document strictly (§2.6.1) before it trusts anything of it.
                let (adopted, version, roster) = try await store.run { db in
                    (try db.adopt(document: document, signature: signature), try db.rosterVersion(), try db.roster())
                }
                return .rosterAdopted(adopted: adopted, version: version, roster: roster)
            } catch let error as StoreError {
                return .rosterRefused(error.detail)
            }
        case .admission(let site):
            switch accepted?.authenticated(site) {
            case .full?: return .admission(.full)
            case .siteFull?: return .admission(.siteFull)
            case nil: return .admission(nil)
            }
        case .watchRestore(let site, let restore):
            return .restoreWatched(try await store.run { try $0.watchRestore(of: site, restore: restore) })
        case .vectorAndHeads:
            let (vector, heads) = try await store.run { try $0.vectorAndHeads() }
            return .vectorAndHeads(vector, heads)
        case .opening(let heads):
            var (evidence, matched): ([Block], Set<SiteID>) = ([], [])
            if let heads { (evidence, matched) = try await store.run { try $0.comparedHeads(heads) } }
            let isCopy = try await store.run { try $0.copiedStoreRefusal() } != nil
            let (vector, keys) = try await store.run { try ($0.vector(), $0.siteKeys()) }
            return .opening(SessionMachine.Opening(evidence: evidence, isCopy: isCopy, vector: vector, keys: keys, matchedHeads: matched))
        case .recordFork(let block, let peer, let now):
            let address = address
            switch try await store.run({ try $0.recordFork(block, peer: peer, address: address, now: now) }) {
            case .recorded(let d):
                context.metrics.divergences.increment()
                return .fork(.recorded(HistoryFork(origin: d.origin, seq: d.seq, ourHash: d.ourHash, theirHash: d.theirHash)))
            case .notSigned: return .fork(.notSigned)
            case .nothingHeld, .sameBlock: return .fork(.nothingHeld)
            }
        case .storedBlock(let origin, let seq):
            return .storedBlock(try await store.run { try $0.storedBlock(origin: origin, seq: seq) })
        case .witness(let site):
            return .witnessed(try await store.run { try $0.witness(member: site) })
        case .confirmOwnSequence(let vector, let role, let awaiting):
            return .ownSequenceConfirmed(try await store.run { try $0.confirmOwnSequence(peer: vector, peerRole: role, awaiting: awaiting) })
        case .rosterVersion:
            return .rosterVersion(try await store.run { try $0.rosterVersion() })
        case .page(let has, let snapshot, let restoredPeer):
            let (batchBlocks, batchBytes) = (context.batchBlocks, context.batchBytes)
            let (synced, page) = try await store.run { db in
                let synced = snapshot ? SessionMachine.SyncedSnapshot(awaiting: try restoredPeer.flatMap { try db.awaitingWitnesses(for: $0) },
                                                                      vector: try db.vector()) : nil
                return (synced, try db.storedBlocks(after: has, limit: batchBlocks, maxBytes: batchBytes))
            }
            return .page(synced, page.map { PageBlock(origin: $0.origin, seq: $0.seq, bytes: $0.bytes) })
        case .encode(let page, let batch):
            do {
                let (format, peerHolds) = machine.withLockedValue { ($0.changeSetFormat, $0.peerHolds) }
                let stored = page.map { ($0.origin, $0.seq, $0.bytes) }
                guard format == .columnar else {
                    return .encoded(OutgoingBatch(try ChangeSet.encode(stored: stored, batch: batch, keys: [:], limits: context.limits, format: format)))
                }
                // Entities the peer already holds go by one of their changes (§2.3.3).
                let blocks = try ChangeSet.decodeStored(stored)
                let ids = ColumnarChangeSet.entitiesToLookUp(blocks)
                let held = try await store.run { try $0.heldChanges(for: ids, within: peerHolds) }
                return .encoded(OutgoingBatch(try ChangeSet.encode(blocks, batch: batch, keys: [:], limits: context.limits, format: format, held: held)))
            } catch let error as WireError {
                return .encodeFailed(error)
            } catch {
                return .encodeFailed(WireError(.internal, "the store could not find the batch's held entities: \(error)"))
            }
        }
    }

    /// How the connection is protected, as the machine judges it.
    var transportFacts: SessionMachine.Transport? {
        guard let transport else { return nil }
        let kind: SessionMachine.Transport.Kind = switch transport.mode {
        case .siteKeys: .siteKeys
        case .certificates: .certificates
        case .plain: .plain
        }
        return SessionMachine.Transport(kind: kind, peerKey: transport.peerKey)
    }

    // MARK: Writing

    /// Writes one line and waits until it is handed to the socket: a slow reader slows the writer.
    /// A peer that reads nothing for `deadline` loses the connection, so no task waits forever.
    func write(_ channel: any Channel, _ item: Outbound, deadline: TimeAmount = .seconds(30)) async throws {
        let guardTimer = channel.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
        defer { guardTimer.cancel() }
        try await channel.writeAndFlush(item).get()
        let now = context.clock()
        machine.withLockedValue { $0.noteWrite(at: now) }
    }

    /// Sends an error frame; a fatal one ends the session.
    func fail(_ channel: any Channel, _ error: WireError) async throws {
        try? await write(channel, .frame(.error(error)))
        if error.code.isFatal { throw SessionEnded(error: error, fromPeer: false) }
    }

    // MARK: Reading

    /// Handles every inbound frame in order. Returns when the peer says `bye` or closes.
    ///
    /// Batches go through a ``BatchIntake``: each is decoded and its signatures checked as it arrives,
    /// while the batches before it apply; the machine holds every other frame until they are applied
    /// and acked.
    func readLoop(_ inbound: NIOAsyncChannelInboundStream<Inbound>, _ channel: any Channel, token: Int) async throws -> Bool {
        var intake = BatchIntake<Result<PreparedBatch, WireError>>(depth: context.limits.window)
        do {
            return try await readFrames(inbound, channel, token: token, intake: &intake)
        } catch {
            // A batch that failed closed the connection to stop the reading; its error is the reason.
            if let failure = await intake.cancel() { throw failure }
            throw error
        }
    }

    func readFrames(_ inbound: NIOAsyncChannelInboundStream<Inbound>, _ channel: any Channel, token: Int,
                    intake: inout BatchIntake<Result<PreparedBatch, WireError>>) async throws -> Bool {
        for try await item in inbound {
            // A write can fail because the peer closed right after sending an error frame; the
            // frames it sent are still buffered, so reading goes on to report its reason.
            do {
                let event: SessionMachine.Event = switch item {
                case .frame(let frame): .frame(frame)
                case .batch(let raw): .batchArrived(raw.batch)
                case .invalid(let error): .invalid(error)
                }
                var pause = try await feed(event, channel, token: token)
                while pause == .drainBatches {
                    try await intake.drain()
                    pause = try await feed(.drained, channel, token: token)
                }
                switch pause {
                case .prepareBatch:
                    guard case .batch(let raw) = item else { break }
                    // The payload is decoded only here, after the handshake, and off the event loop.
                    let limits = context.limits
                    try await intake.enqueue(prepare: { ahead in await self.prepare(raw, limits: limits, ahead: ahead) }) { prepared in
                        try await self.receive(prepared, channel, token: token)
                    }
                case .finished(let completed): return completed
                case .idle, .drainBatches: break
                }
            } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
                machine.withLockedValue { $0.noteWriteFailed() }
            }
        }
        // The peer closed without bye.
        var pause = try await feed(.peerClosed, channel, token: token)
        while pause == .drainBatches {
            try await intake.drain()
            pause = try await feed(.drained, channel, token: token)
        }
        return pause == .finished(true)
    }

    /// Hands one event to the machine's reading side and performs what it says.
    func feed(_ event: SessionMachine.Event, _ channel: any Channel, token: Int) async throws -> Pause {
        let actions = machine.withLockedValue { [moment] in $0.receive(event, at: moment) }
        return try await perform(actions, .reading, channel, token: token)
    }

    /// Decodes a batch and checks its signatures with the keys last read from the store; runs while
    /// earlier batches apply. With batches `ahead` of it, one core is left to the store's apply, which
    /// the session waits for; with none, it takes every core.
    func prepare(_ raw: RawBatch, limits: WireLimits, ahead: Int) async -> Result<PreparedBatch, WireError> {
        let batch: BlockBatch
        let format = machine.withLockedValue { $0.changeSetFormat }
        do {
            if format == .columnar {
                // The held entities are looked up in the store between reading and putting together.
                let parsed = try raw.parseColumnar(limits: limits)
                let dots = parsed.heldChanges
                let ids = dots.isEmpty ? [] : try await context.store.run { try $0.entityIDs(at: dots) }
                batch = try raw.batch(of: try parsed.blocks(resolved: ids))
            } else {
                batch = try raw.decode(limits: limits, format: format)
            }
        } catch let error as WireError {
            return .failure(error)
        } catch {
            return .failure(WireError(.internal, "the store could not look up the batch's held entities: \(error)"))
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // Keys come from the roster only (§2.6.1); a batch's `keys` member is ignored.
        let verified = await SignatureCheck.verifiedKeys(batch.blocks, keys: machine.withLockedValue { $0.keys },
                                                         width: ahead == 0 ? cores : cores - 1)
        return .success(PreparedBatch(batch: batch, verified: verified))
    }

    /// Applies one prepared batch atomically and acknowledges it, or reports why it could not be
    /// decoded. A fatal error closes the connection, which ends the read loop (and so the session)
    /// with that error.
    func receive(_ prepared: Result<PreparedBatch, WireError>, _ channel: any Channel, token: Int) async throws {
        do {
            switch prepared {
            case .success(let prepared):
                let ready = machine.withLockedValue { [moment] in $0.receive(.batchReady(prepared.batch), at: moment) }
                guard ready.contains(.applyBatch) else { return }
                _ = try await feed(try await apply(prepared), channel, token: token)
            case .failure(let error):
                _ = try await feed(.batchUnreadable(error), channel, token: token)
            }
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
            machine.withLockedValue { $0.noteWriteFailed() }
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Applies one received batch in one transaction: what the store made of it, for the machine.
    func apply(_ prepared: PreparedBatch) async throws -> SessionMachine.Event {
        let batch = prepared.batch
        let result: (report: ApplyReport, vector: VersionVector, keys: [SiteID: [UInt8]])
        do {
            result = try await context.store.run { db in
                // The store checks again every block whose origin's key is not the one it was verified with.
                let report = try db.apply(batch.blocks, verified: prepared.verified)
                return (report, try db.vector(), try db.siteKeys())
            }
        } catch {
            return .batchNotStored("\(error)")
        }
        context.metrics.blocksIn.increment(by: batch.blocks.count)
        context.metrics.blocksApplied.increment(by: result.report.applied)
        context.metrics.changeSetBytesIn.increment(by: batch.size)
        let report = result.report
        return .batchApplied(batch, SessionMachine.Applied(
            applied: report.applied, held: report.held, duplicates: report.duplicates,
            refused: report.refused.map { "\($0.origin) seq \($0.seq): \($0.code)" }, vector: result.vector, keys: result.keys))
    }

    // MARK: Sending

    /// Sends what the peer lacks, oldest first, within the window; then live-pushes new blocks.
    func sendLoop(_ channel: any Channel, token: Int, wakes: AsyncStream<Void>) async throws -> Bool {
        do {
            var wakeups = wakes.makeAsyncIterator()
            while true {
                let actions = machine.withLockedValue { [moment] in $0.send(.wake, at: moment) }
                if case .finished(let completed) = try await perform(actions, .sending, channel, token: token) { return completed }
                guard await wakeups.next() != nil else { return false }
            }
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
            // The peer closed. What it wrote before (an error frame, fork evidence) is still to be read,
            // and the read loop reports it; this loop waits to be cancelled rather than end the session first.
            machine.withLockedValue { $0.noteWriteFailed() }
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
            return false
        }
    }

    /// The peer's clock minus ours, as ``SessionMachine/skew(peerTime:sent:received:)`` estimates it.
    static func skew(peerTime: UInt64, sent: UInt64, received: UInt64) -> Int64 {
        SessionMachine.skew(peerTime: peerTime, sent: sent, received: received)
    }

    func report() {
        guard let onProgress else { return }
        let tally = machine.withLockedValue { $0.tally }
        onProgress(SyncProgress(toSend: tally.toSend, sent: tally.sentBlocks, toReceive: tally.toReceive, received: tally.receivedBlocks,
                                bytesIn: counter.bytesRead, bytesOut: counter.bytesWritten))
    }

    // MARK: Peer records

    func recordPeer(error: String?) async {
        guard let snapshot = machine.withLockedValue({ $0.peerRecord(error: error) }) else { return }
        let address = address
        let now = context.clock()
        let lastError = error.map(SessionMachine.printable)
        let transportName: String? = switch transport?.mode {
        case .siteKeys: "tls"
        case .certificates: "tls-ca"
        case .plain: "plain"
        case nil: nil
        }
        _ = try? await context.store.run { db in
            try db.recordPeer(PeerRecord(site: snapshot.site, role: snapshot.role, address: address, lastSeen: now,
                                         vector: snapshot.vector, skewMillis: snapshot.skewMillis, lastError: lastError,
                                         blocksIn: UInt64(snapshot.blocksIn), blocksOut: UInt64(snapshot.blocksOut), transport: transportName))
        }
    }
}

/// The version string in `hello` and `--version`.
public enum TierlineVersion {
    public static let current = "0.6.0"
}
