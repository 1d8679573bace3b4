import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
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
    /// Bytes on the socket, both ways.
    public var bytesIn = 0
    public var bytesOut = 0
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

/// Why a session ended early.
struct SessionEnded: Error {
    var error: WireError
    /// The peer sent the error (we did not).
    var fromPeer: Bool
}

/// One sync session over one connection, either side: handshake, then exchange and live push until
/// `bye`, an error, or (for a one-shot `sync`) both sides caught up.
final class SyncSession: Sendable {
    enum Mode: Sendable { case live, oneShot }

    struct Link {
        var peer: Hello?
        var open = false
        /// Announced, acknowledged or received: what the peer certainly holds.
        var peerVector = VersionVector()
        /// `peerVector` plus every block sent in this session: never send these again.
        var has = VersionVector()
        var inFlight = 0
        /// The last batch the peer acknowledged.
        var acked: UInt64 = 0
        var peerSynced = false
        var syncedSent = false
        /// The `awaiting` list of the last `synced` sent (coordinator to a restored site only).
        var awaitingSent: [SiteID]?
        /// The coordinator's ``RestoreEpoch`` when this session opened.
        var openEpoch = 0
        /// The highest seq per origin sent in this session.
        var sentThrough = VersionVector()
        /// Set when the handshake timer closed the connection.
        var timedOut: WireError?
        /// The peer site counted in ``Presence`` while this session is open.
        var present: SiteID?
        var lastSentMillis: UInt64 = 0
        var pings: [UInt64: UInt64] = [:]
        var progress = SyncProgress()
        /// Counts so far; the socket counts and duration are filled in at the end.
        var summary: SessionSummary
        /// The peer's vector changed since it was last saved.
        var dirty = false
        /// Blocks in and out already added to the peer's record.
        var recordedIn = 0
        var recordedOut = 0
        /// The roster version this side announced in its hello.
        var ownRoster: UInt64 = 0
        /// The newest roster version the peer is known to hold (announced, sent to it, or received from it).
        var peerRoster: UInt64 = 0
        /// The site keys this store held when it last read them (at open, after each batch applied): what
        /// received batches are verified with before they reach the store, which checks again any
        /// block whose origin's key has changed since.
        var keys: [SiteID: [UInt8]] = [:]
        /// When this side wrote its hello (own clock), to estimate the peer's clock from its hello.
        var helloSentMillis: UInt64 = 0
        /// A write failed because the peer closed; reading goes on, to report the reason it gave.
        var writeFailed = false
        /// Origins whose history differs between the two ends (their heads compared, §2.2.3); none
        /// of their blocks is sent in this session.
        var diverged: [Divergence] = []
        /// Origins left out of this session: their heads differed (proven or not), or this store is a
        /// copy and its own site's blocks go nowhere.
        var excluded: Set<SiteID> = []
        /// Origins this side has sent its `fork` evidence for, and those the peer has: a one-shot sync
        /// is not done while the peer still owes its answer to this side's evidence.
        var forkSent: Set<SiteID> = []
        var forkReceived: Set<SiteID> = []
        /// The peer proved the key the roster lists for its site (§2.6). Until then nothing it says
        /// (its address, clock, error text) is recorded.
        var authenticated = false
    }

    let context: SessionContext
    let mode: Mode
    let address: String
    let ownHello: Hello
    let counter: WireCounter
    let link: NIOLockedValueBox<Link>
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
        link = NIOLockedValueBox(Link(summary: SessionSummary(address: address)))
        var nonce = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = UInt8.random(in: .min ... .max, using: &rng) }
        ownHello = Hello(site: context.identity.site, role: context.identity.role, publicKey: context.identity.publicKey,
                         nonce: nonce, time: context.clock(), software: "tierline \(TierlineVersion.current)")
    }

    var logger: Logger {
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(address)"
        if let site = link.withLockedValue({ $0.peer?.site }) { logger[metadataKey: "site"] = "\(site)" }
        return logger
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
                    if !link.withLockedValue({ $0.open }) {
                        let error = WireError(.timeout, "the handshake did not finish within \(context.handshakeTimeout.nanoseconds / 1_000_000_000) s")
                        link.withLockedValue { $0.timedOut = error }
                        raw.writeAndFlush(Outbound.frame(.error(error))).whenComplete { _ in raw.close(promise: nil) }
                        // A peer that does not read cannot hold the connection open.
                        raw.eventLoop.scheduleTask(in: .seconds(2)) { raw.close(promise: nil) }
                    }
                }
                defer { timer.cancel() }
                var hello = ownHello
                (hello.roster, hello.restored) = try await context.store.run { try ($0.rosterVersion(), $0.restoredAt().map { UInt64(max(1, $0)) }) }
                link.withLockedValue { $0.ownRoster = hello.roster }
                hello.time = context.clock()
                link.withLockedValue { $0.helloSentMillis = hello.time }
                try await write(raw, .frame(.hello(hello)))
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask { try await self.readLoop(inbound, raw, token: token) }
                    group.addTask { try await self.sendLoop(raw, wakes: wakes) }
                    group.addTask {
                        // A tick a second keeps pings going and wakes a one-shot sender to check it is done.
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(1))
                            self.context.feed.signal(token)
                            if self.link.withLockedValue({ $0.dirty }) { await self.recordPeer(error: nil) }
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
        if let site = link.withLockedValue({ $0.present }) { context.presence.leave(site) }
        if ending == nil, let timeout = link.withLockedValue({ $0.timedOut }) { ending = SessionEnded(error: timeout, fromPeer: false) }
        // The peer wrote why it closed (a node that closes a stranger to make room, §2.9.2), but a write
        // of this side failed on the closed connection before the frame was read: its reason counts.
        if ending?.error.code == .connectionLost, let reason = transport?.peerError { ending = SessionEnded(error: reason, fromPeer: true) }
        var summary = makeSummary(started: started)
        summary.completed = completed
        // A one-shot sync is complete only if the peer applied everything it was sent: blocks it
        // holds back (stamped too far ahead, say) or refuses would otherwise pass unnoticed.
        let unapplied = link.withLockedValue { $0.peerVector.lacking(from: $0.sentThrough) }
        let (diverged, excluded) = link.withLockedValue { ($0.diverged, $0.excluded) }
        if mode == .oneShot && ending == nil && !excluded.isEmpty {
            summary.completed = false
            let own = context.identity.site
            if !diverged.isEmpty {
                let list = diverged.map { "\($0.origin) at seq \($0.seq)" }.joined(separator: ", ")
                ending = SessionEnded(error: WireError(.diverged, "the peer holds other blocks of \(list) than this store: two histories of those sites, which were not exchanged; `tierline status` lists them. An operator removes the site that was copied (`tierline roster remove`) and its stores rejoin under new site ids"), fromPeer: false)
            } else if excluded == [own], let refusal = try? await context.store.run({ try $0.copiedStoreRefusal() }) {
                ending = SessionEnded(error: WireError(.diverged, "nothing of \(own) was sent: \(refusal)"), fromPeer: false)
            } else {
                let list = excluded.sorted().map(\.rawValue).joined(separator: ", ")
                ending = SessionEnded(error: WireError(.diverged, "the peer's newest blocks of \(list) are not the ones this store holds at those seqs, and it proved no second history: those sites were not exchanged; sync again, and if it persists compare `tierline status` on both sides"), fromPeer: false)
            }
        }
        if mode == .oneShot && completed && unapplied > 0 && ending == nil {
            summary.completed = false
            ending = SessionEnded(error: WireError(.blockRefused, "the peer did not apply \(unapplied) of the blocks sent to it (held back or refused); `tierline status` on the node says why, often a clock more than 5 minutes ahead"), fromPeer: true)
        }
        if let ending {
            summary.error = (ending.fromPeer ? "peer reported " : "") + ending.error.description
            summary.errorCode = ending.error.code.rawValue
            if let accepted, let refusals = context.refusals, !link.withLockedValue({ $0.authenticated }) {
                // A stranger: counted per address, not a line per connection.
                refusals.note(host: accepted.host, "closed before it authenticated: \(Self.printable(summary.error ?? ""))")
            } else {
                logger.warning("session ended: \(summary.error ?? "")")
            }
        } else {
            logger.info("session ended", metadata: ["sent": "\(summary.sentBlocks)", "received": "\(summary.receivedBlocks)"])
        }
        context.metrics.socketBytesIn.increment(by: summary.bytesIn)
        context.metrics.socketBytesOut.increment(by: summary.bytesOut)
        if summary.error != nil { context.metrics.sessionErrors.increment() }
        await recordPeer(error: summary.error)
        return summary
    }

    func makeSummary(started: UInt64) -> SessionSummary {
        var summary = link.withLockedValue { link in
            var summary = link.summary
            summary.peerSite = link.peer?.site.rawValue
            summary.peerRole = link.peer?.role.rawValue
            summary.opened = link.open
            return summary
        }
        summary.bytesIn = counter.bytesRead
        summary.bytesOut = counter.bytesWritten
        summary.durationMillis = Int(clamping: elapsed(since: started))
        return summary
    }

    /// Milliseconds since `start`; zero if the wall clock stepped back.
    func elapsed(since start: UInt64) -> UInt64 {
        let now = context.clock()
        return now >= start ? now - start : 0
    }

    // MARK: Writing

    /// Writes one line and waits until it is handed to the socket: a slow reader slows the writer.
    /// A peer that reads nothing for `deadline` loses the connection, so no task waits forever.
    func write(_ channel: any Channel, _ item: Outbound, deadline: TimeAmount = .seconds(30)) async throws {
        let guardTimer = channel.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
        defer { guardTimer.cancel() }
        try await channel.writeAndFlush(item).get()
        link.withLockedValue { $0.lastSentMillis = context.clock() }
    }

    /// Sends an error frame; a fatal one ends the session.
    func fail(_ channel: any Channel, _ error: WireError) async throws {
        try? await write(channel, .frame(.error(error)))
        if error.code.isFatal { throw SessionEnded(error: error, fromPeer: false) }
    }

    // MARK: Reading

    enum Phase { case awaitHello, awaitRoster, awaitAuth, awaitVector, open }

    /// Handles every inbound frame in order. Returns when the peer says `bye` or closes.
    ///
    /// Batches go through a ``BatchIntake``: each is decoded and its signatures checked as it arrives,
    /// while the batches before it apply; every other frame waits until they are applied and acked.
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
        var phase = Phase.awaitHello
        var nextBatch: UInt64 = 1
        // Set when the read guard fired once and a ping went out; anything heard clears it.
        var probing = false
        for try await item in inbound {
            // A write can fail because the peer closed right after sending an error frame; the
            // frames it sent are still buffered, so reading goes on to report its reason.
            do {
                let frame: Frame
                if case .invalid(let error) = item, error.code == .timeout {
                    // The read guard fires after half the idle timeout of silence. The first time, the
                    // peer gets a ping to answer; only a second silent half ends the session. So a
                    // session never ends idle without a ping, however late the scheduler runs the
                    // keep-alive pings of the send loop.
                    if !probing {
                        probing = true
                        try await sendPing(channel)
                        continue
                    }
                } else {
                    probing = false
                }
                switch item {
                case .invalid(let error):
                    try await intake.drain()
                    try await fail(channel, error)
                    continue
                case .batch(let raw):
                    // The payload is decoded only here, after the handshake, and off the event loop.
                    guard phase == .open, raw.batch == nextBatch else {
                        try await intake.drain()
                        try await fail(channel, phase != .open
                            ? WireError(.unexpectedFrame, "a blocks frame is not allowed \(Self.describe(phase))")
                            : WireError(.badBatch, "batch \(raw.batch) arrived where batch \(nextBatch) was due"))
                        continue
                    }
                    nextBatch += 1
                    let limits = context.limits
                    try await intake.enqueue(prepare: { ahead in await self.prepare(raw, limits: limits, ahead: ahead) }) { prepared in
                        try await self.receive(prepared, channel)
                    }
                    continue
                case .frame(let f): frame = f
                }
                try await intake.drain()
                switch (phase, frame) {
                case (_, .ping(let id, _)):
                    try await write(channel, .frame(.pong(id: id, time: context.clock())))
                case (_, .pong(let id, let time)):
                    notePong(id: id, peerTime: time)
                case (_, .error(let code, let message, let fatal)):
                    // A stranger's words are not logged (a log line per error frame would let anyone
                    // flood the journal, or forge lines in it); a member's are, made printable.
                    if link.withLockedValue({ $0.authenticated }) || accepted == nil {
                        logger.warning("peer reported \(Self.printable(String(code.prefix(64)))): \(Self.printable(message))")
                    }
                    if fatal { throw SessionEnded(error: WireError(reported: code, message), fromPeer: true) }
                case (_, .bye(let reason)):
                    logger.debug("peer said bye: \(reason ?? "")")
                    return link.withLockedValue { $0.syncedSent && $0.peerSynced && $0.inFlight == 0 }
                case (.awaitHello, .hello(let hello)):
                    try await accept(hello, channel)
                    let now = context.clock()
                    let ownRoster = link.withLockedValue { link in
                        link.peer = hello
                        link.peerRoster = hello.roster
                        link.summary.skewMillis = Self.skew(peerTime: hello.time, sent: link.helloSentMillis, received: now)
                        return link.ownRoster
                    }
                    // The side with the newer roster sends it before its proof, so the other side can
                    // judge this session by it (§2.6). A proof goes only to a peer the roster admits with
                    // the key of its hello: after the newer roster the peer announced, if it did.
                    if hello.roster > ownRoster {
                        phase = .awaitRoster
                    } else {
                        // The roster goes only to a peer it admits, like the proof.
                        try await checkMember(channel)
                        if ownRoster > hello.roster { try await sendRoster(channel) }
                        try await write(channel, .frame(.auth(signature: try SessionAuth.prove(key: context.key, own: ownHello, peer: hello))))
                        phase = .awaitAuth
                    }
                case (.awaitRoster, .roster(let document, let signature)):
                    try await adoptRoster(document: document, signature: signature, channel)
                    try await checkMember(channel)
                    if let peer = link.withLockedValue({ $0.peer }) {
                        try await write(channel, .frame(.auth(signature: try SessionAuth.prove(key: context.key, own: ownHello, peer: peer))))
                    }
                    phase = .awaitAuth
                case (.awaitAuth, .roster(let document, let signature)), (.awaitVector, .roster(let document, let signature)),
                     (.open, .roster(let document, let signature)):
                    // A roster edited while the session runs.
                    try await adoptRoster(document: document, signature: signature, channel)
                case (.awaitAuth, .auth(let signature)):
                    try await verify(signature, channel)
                    if let accepted {
                        // A proof verified only after a hello, so the peer's site is known here.
                        let site = link.withLockedValue { $0.peer?.site }
                        switch site.map(accepted.authenticated) ?? .full {
                        case .full?:
                            try await fail(channel, WireError(.internal, "this node already serves \(accepted.memberSlots) sessions (maxSessions); retry later"))
                            continue
                        case .siteFull?:
                            try await fail(channel, WireError(.internal, "this node already serves \(accepted.sessionsPerSite) sessions of site \(site.map(\.rawValue) ?? "?"), the most one site may hold; close one (another `tierline serve` or `sync` with the same store?) and retry"))
                            continue
                        case nil:
                            accepted.prelude.lift()
                        }
                    }
                    // The coordinator watches a restored site's fence: from now on, every member that
                    // sends it everything it holds is a witness that nothing of that site is missing.
                    if context.identity.role == .coordinator, let peer = link.withLockedValue({ $0.peer }) {
                        if try await context.store.run({ try $0.watchRestore(of: peer.site, restore: peer.restored) }) {
                            // Members whose sessions are already open sent their `synced` before the
                            // watch began: they end those sessions and sync afresh (§2.2.6).
                            context.restoreEpoch.advance()
                            context.feed.signal()
                        }
                    }
                    let (vector, heads) = try await context.store.run { try $0.vectorAndHeads() }
                    try await write(channel, .frame(.vector(vector, heads: heads)))
                    phase = .awaitVector
                case (.awaitVector, .vector(let peerVector, let peerHeads)):
                    // Equal counts may hide different blocks: the heads are compared before anything is
                    // sent. A differing head leaves its origin out of the session, and this side sends its
                    // own block there as evidence; only the peer's evidence, signed, is recorded (§2.2.3).
                    if !peerHeads.isEmpty {
                        let evidence = try await context.store.run { try $0.mismatchedHeads(peerHeads) }
                        for block in evidence { try await sendFork(block, channel) }
                    }
                    // A store that is a copy sends nothing of its own site: the fleet holds another history of it.
                    if try await context.store.run({ try $0.copiedStoreRefusal() }) != nil {
                        let own = context.identity.site
                        link.withLockedValue { _ = $0.excluded.insert(own) }
                    }
                    let (ours, keys) = try await context.store.run { try ($0.vector(), $0.siteKeys()) }
                    let epoch = context.restoreEpoch.current
                    link.withLockedValue { link in
                        link.keys = keys
                        link.open = true
                        link.openEpoch = epoch
                        link.peerVector = peerVector
                        // A left-out origin is never sent: the peer "has" all of it.
                        link.has = peerVector.merging(VersionVector(Dictionary(uniqueKeysWithValues: link.excluded.map { ($0, Self.excluded) })))
                        link.progress.toSend = peerVector.lacking(from: ours)
                        link.progress.toReceive = ours.lacking(from: peerVector)
                    }
                    phase = .open
                    if let site = link.withLockedValue({ $0.peer?.site }) {
                        context.presence.enter(site)
                        link.withLockedValue { $0.present = site }
                    }
                    logger.info("session open", metadata: ["role": "\(link.withLockedValue { $0.peer?.role.rawValue ?? "" })"])
                    await recordPeer(error: nil)
                    context.feed.signal(token)
                    // No ping yet: the hellos gave the clock skew, and a session that stays open pings
                    // once it has been quiet (a one-shot sync in step with the peer is over by then).
                case (.open, .fork(let block)):
                    try await receiveFork(block, channel)
                case (.open, .ack(let ack)):
                    let due = link.withLockedValue { $0.acked + 1 }
                    guard ack.batch == due, ack.batch <= UInt64(link.withLockedValue { $0.summary.sentBatches }) else {
                        try await fail(channel, WireError(.unexpectedFrame, "ack of batch \(ack.batch) where batch \(due) was the oldest unacknowledged"))
                        continue
                    }
                    link.withLockedValue { link in
                        link.acked = ack.batch
                        link.inFlight = max(0, link.inFlight - 1)
                        link.peerVector = link.peerVector.merging(ack.vector)
                        link.has = link.has.merging(ack.vector)
                        link.dirty = true
                    }
                    context.feed.signal(token)
                case (.open, .synced(let vector, let awaiting)):
                    link.withLockedValue { link in
                        link.peerSynced = true
                        link.peerVector = link.peerVector.merging(vector)
                        link.has = link.has.merging(vector)
                    }
                    // Every batch the peer sent before `synced` is applied (frames are handled in order),
                    // so this store now holds everything of every site this peer held: the peer is a
                    // witness for each restore this store watches, its own included (§2.2.6).
                    let own = context.identity.site
                    let (peerSite, peerRole, complete) = link.withLockedValue {
                        // A witness's session left out no origin, refused no block, and opened after
                        // the coordinator began its latest watch.
                        ($0.peer?.site, $0.peer?.role ?? .site,
                         $0.excluded.isEmpty && $0.summary.refused == 0 && $0.openEpoch == context.restoreEpoch.current)
                    }
                    if let peerSite, complete {
                        // A new witness may shorten what the coordinator's other sessions tell restored sites.
                        if try await context.store.run({ try $0.witness(member: peerSite) }) { context.feed.signal() }
                    }
                    if try await context.store.run({ try $0.confirmOwnSequence(peer: vector, peerRole: peerRole, awaiting: awaiting) }) {
                        logger.notice("restored store learned its own highest block from the peer; local writes resume",
                                      metadata: ["seq": "\(vector[own])"])
                    }
                    context.feed.signal(token)
                default:
                    try await fail(channel, WireError(.unexpectedFrame, "a \(frame.type) frame is not allowed \(Self.describe(phase))"))
                }
            } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
                link.withLockedValue { $0.writeFailed = true }
            }
        }
        try await intake.drain()
        // The peer closed without bye.
        let (done, timedOut, writeFailed) = link.withLockedValue {
            ($0.syncedSent && $0.peerSynced && $0.inFlight == 0, $0.timedOut, $0.writeFailed)
        }
        if let timedOut { throw SessionEnded(error: timedOut, fromPeer: false) }
        if writeFailed && !done {
            throw SessionEnded(error: WireError(.connectionLost, "the peer closed the connection without saying why; its log or `tierline status` there may"), fromPeer: false)
        }
        if mode == .oneShot && !done {
            throw SessionEnded(error: WireError(.connectionLost, "the peer closed the connection before the exchange finished"), fromPeer: false)
        }
        return done
    }

    static func describe(_ phase: Phase) -> String {
        switch phase {
        case .awaitHello: "before hello"
        case .awaitRoster: "while waiting for the roster the peer's hello announced"
        case .awaitAuth: "while waiting for auth"
        case .awaitVector: "while waiting for the vector"
        case .open: "after the handshake"
        }
    }

    /// Version, schema and identity checks on the peer's hello.
    func accept(_ hello: Hello, _ channel: any Channel) async throws {
        let negotiated = min(hello.protocolVersion, ownHello.protocolVersion)
        if negotiated < max(hello.minProtocol, ownHello.minProtocol) {
            try await fail(channel, WireError(.unsupportedProtocol, "the peer speaks protocol \(hello.minProtocol)…\(hello.protocolVersion); this node speaks \(ownHello.minProtocol)…\(ownHello.protocolVersion); upgrade the older node"))
        }
        if hello.schema > ownHello.schema {
            try await fail(channel, WireError(.unsupportedSchema, "the peer writes block schema \(hello.schema); this node reads up to \(ownHello.schema); upgrade this node"))
        }
        if hello.site == ownHello.site {
            try await fail(channel, WireError(.duplicateSite, "the peer claims this node's own site id \(hello.site); each store needs its own site (was a store copied?)"))
        }
        // With TLS on the sites' keys, the hello must name the key the peer proved on this very
        // connection: a hello (or a proof) relayed from another connection names another key.
        if let transport, transport.mode == .siteKeys, transport.peerKey != hello.publicKey {
            try await fail(channel, WireError(.authFailed, "the key in the peer's hello is not the key its TLS certificate proved on this connection (a handshake relayed from elsewhere?); refusing the session"))
        }
        if try await context.store.run({ try $0.pinnedCoordinatorKey() }) == nil {
            try await fail(channel, WireError(.authFailed, "\(ownHello.site) has not pinned its coordinator's key, so it can judge no roster and syncs with nobody; its operator runs `tierline roster pin KEY` with the coordinator's public key"))
        }
    }

    /// Sends this store's roster and notes that the peer now holds it.
    func sendRoster(_ channel: any Channel) async throws {
        guard let signed = try await context.store.run({ try $0.roster() }) else { return }
        try await write(channel, .frame(.roster(document: signed.document, signature: signed.signature)))
        link.withLockedValue { $0.peerRoster = max($0.peerRoster, signed.roster.version) }
    }

    /// Adopts a roster the peer sent if it is newer; one that is not the coordinator's ends the session.
    func adoptRoster(document: String, signature: [UInt8], _ channel: any Channel) async throws {
        do {
            // The store reads the document strictly (§2.6.1) before it trusts anything of it.
            let (adopted, version) = try await context.store.run { db in
                (try db.adopt(document: document, signature: signature), try db.rosterVersion())
            }
            link.withLockedValue { $0.peerRoster = max($0.peerRoster, version) }
            if adopted {
                logger.notice("adopted roster version \(version) from the peer")
                context.feed.signal()
                // The roster the peer brought may remove the peer itself: it ends this session too.
                if link.withLockedValue({ $0.authenticated }), let peer = link.withLockedValue({ $0.peer }),
                   let roster = try await context.store.run({ try $0.roster()?.roster }), !roster.admits(peer.site, key: peer.publicKey) {
                    try await fail(channel, WireError(.authFailed, "site \(peer.site) is not admitted by the roster it sent (version \(roster.version)); ending the session"))
                }
            }
        } catch let error as StoreError {
            try await fail(channel, WireError(.authFailed, "the peer's roster was refused: \(error.detail)"))
        }
    }

    /// Checks the peer's proof of its key, and that the key is the one this store knows for that site.
    func verify(_ signature: [UInt8], _ channel: any Channel) async throws {
        guard let peer = link.withLockedValue({ $0.peer }) else { return }
        guard SessionAuth.verify(signature: signature, own: ownHello, peer: peer) else {
            try await fail(channel, WireError(.authFailed, "the peer's auth signature does not verify under the key in its hello"))
            return
        }
        try await checkMember(channel)
        link.withLockedValue { $0.authenticated = true }
    }

    /// Checks that the roster admits the peer's site with the key of its hello (and takes the role the
    /// roster gives it); any other peer is refused before this node proves anything to it.
    func checkMember(_ channel: any Channel) async throws {
        guard let peer = link.withLockedValue({ $0.peer }) else { return }
        guard let roster = try await context.store.run({ try $0.roster()?.roster }) else {
            try await fail(channel, WireError(.authFailed, "\(ownHello.site) holds no roster yet and neither side sent one; sync with the coordinator (or a site that has its roster) first"))
            return
        }
        guard let member = roster.member(peer.site), member.revokedAfter == nil else {
            let removed = roster.member(peer.site)?.revokedAfter != nil
            try await fail(channel, WireError(.authFailed, removed
                ? "site \(peer.site) was removed from the roster (version \(roster.version)); it may not sync"
                : "site \(peer.site) is not in the roster (version \(roster.version)); the coordinator adds it with `tierline roster add \(peer.site) --key \(peer.publicKey.hexString) --role \(peer.role == .coordinator ? "site" : peer.role.rawValue)`"))
            return
        }
        guard member.key == peer.publicKey.hexString else {
            try await fail(channel, WireError(.authFailed, "site \(peer.site) comes with a key that is not the one the roster lists for it (\(member.key.prefix(16))…); refusing the session"))
            return
        }
        // Nothing binds a plain session's proof to its connection, so it can be relayed: a plain
        // session is held only with a site named as still on protocol 1, never before this side's
        // own proof is made (§2.12).
        if let transport, transport.mode == .plain, let allowed = context.plainSites, !allowed.contains(peer.site) {
            try await fail(channel, WireError(.tlsRequired, "\(peer.site) reached this node in plain text, and plain protocol-1 sessions are admitted only with the sites named in allowPlainSessions (\(allowed.isEmpty ? "none" : allowed.map(\.rawValue).sorted().joined(separator: ", "))); upgrade \(peer.site) to Tierline 0.7 or later, or, for an upgrade window, add it: \"allowPlainSessions\": [\"\(peer.site)\"] in node.json (serve --allow-plain \(peer.site))"))
            return
        }
        if let transport, transport.mode == .plain {
            // Logged once the site is known to be a listed member, so strangers cannot flood the log.
            logger.warning("a plain protocol-1 session with \(peer.site), unprotected (allowPlainSessions): anyone on the path reads and can change it")
        }
        if member.role != peer.role {
            logger.warning("the peer announces role \(peer.role.rawValue) but the roster lists \(member.role.rawValue); the roster's role counts")
        }
        // Every later decision (the restore fence, presence, status) uses the role the roster gives.
        link.withLockedValue { $0.peer?.role = member.role }
    }

    /// A seq no origin reaches: what a diverged origin counts as in ``Link/has``.
    static let excluded = UInt64(Int64.max)

    /// Sends this side's block at an (origin, seq) whose head differed, once per origin, and leaves the
    /// origin out of the session.
    func sendFork(_ block: Block, _ channel: any Channel) async throws {
        let first = link.withLockedValue { link -> Bool in
            link.excluded.insert(block.origin)
            link.has[block.origin] = Self.excluded
            return link.forkSent.insert(block.origin).inserted
        }
        if first { try await write(channel, .frame(.fork(block))) }
    }

    /// The peer's evidence of another history: recorded only if its origin's key signed it and this
    /// store holds another block at that seq; then this side answers with its own evidence, so both
    /// ends know, and the divergence is reported.
    func receiveFork(_ block: Block, _ channel: any Channel) async throws {
        guard let peer = link.withLockedValue({ $0.peer?.site }) else { return }
        link.withLockedValue { _ = $0.forkReceived.insert(block.origin) }
        let now = context.clock(), address = address
        let result = try await context.store.run { try $0.recordFork(block, peer: peer, address: address, now: now) }
        switch result {
        case .recorded(let divergence):
            if let ours = try await context.store.run({ try $0.storedBlock(origin: block.origin, seq: block.seq) }) {
                try await sendFork(ours, channel)
            }
            try await diverged([divergence], peer: peer, channel)
        case .notSigned:
            try await fail(channel, WireError(.authFailed, "the fork evidence for \(block.origin) seq \(block.seq) is not signed by the key the roster lists for \(block.origin); refusing the session"))
        case .nothingHeld, .sameBlock:
            logger.debug("fork evidence for \(block.origin) seq \(block.seq) shows nothing this store holds otherwise")
        }
    }

    /// Reports origins the peer holds another history of, proven by a signed block. When the origin is
    /// this node's own site or the peer's, one of the two stores is a copy: the session ends (and this
    /// store, if it is the copy, writes no more: ``TicketDatabase/recordFork`` recorded it). For a third
    /// origin, only that origin stops between these two nodes; the rest of the session goes on.
    func diverged(_ found: [Divergence], peer: SiteID, _ channel: any Channel) async throws {
        context.metrics.divergences.increment(by: found.count)
        link.withLockedValue { $0.diverged += found }
        let me = context.identity.site
        func short(_ hash: [UInt8]) -> String { String(hash.hexString.prefix(16)) }
        for d in found {
            logger.error("diverged: origin \(d.origin) seq \(d.seq): this node holds block \(short(d.ourHash))…, the peer \(short(d.theirHash))…")
        }
        let message: String
        if let d = found.first(where: { $0.origin == me }) {
            message = "\(peer) holds another block at seq \(d.seq) of \(me) (\(short(d.theirHash))…; this store holds \(short(d.ourHash))…): this store of \(me) is a copy of another that the fleet heard from first, and it writes nothing more as \(me); `tierline status` there says what to do"
        } else if let d = found.first(where: { $0.origin == peer }) {
            message = "\(peer) wrote two different blocks at seq \(d.seq): this node holds \(short(d.ourHash))…, which the fleet heard first; the peer sent \(short(d.theirHash))…. The peer's store is a copy of another store of \(peer) (a copied or reimaged store, an old backup) and must not write as \(peer) any more; `tierline status` there says what to do"
        } else {
            let list = found.map { "\($0.origin) at seq \($0.seq) (here \(short($0.ourHash))…, there \(short($0.theirHash))…)" }.joined(separator: "; ")
            try await write(channel, .frame(.error(code: WireError.Code.diverged.rawValue,
                                                   message: "two histories of \(list): those origins are not exchanged between these nodes until an operator removes the site that was copied (`tierline roster remove`) and its stores rejoin under new site ids", fatal: false)))
            return
        }
        let error = WireError(.diverged, message)
        try? await write(channel, .frame(.error(error)))
        throw SessionEnded(error: error, fromPeer: false)
    }

    /// On an open session: sends a roster edited since, and ends the session if the peer was removed.
    func checkRoster(_ channel: any Channel) async throws {
        let version = try await context.store.run { try $0.rosterVersion() }
        guard version > link.withLockedValue({ $0.peerRoster }), let peer = link.withLockedValue({ $0.peer }) else { return }
        try await sendRoster(channel)
        if let roster = try await context.store.run({ try $0.roster()?.roster }), !roster.admits(peer.site, key: peer.publicKey) {
            try await fail(channel, WireError(.authFailed, "site \(peer.site) was removed from the roster (version \(roster.version)); ending the session"))
        }
    }

    /// Decodes a batch and checks its signatures with the keys last read from the store; runs while
    /// earlier batches apply. With batches `ahead` of it, one core is left to the store's apply, which
    /// the session waits for; with none, it takes every core.
    func prepare(_ raw: RawBatch, limits: WireLimits, ahead: Int) async -> Result<PreparedBatch, WireError> {
        let batch: BlockBatch
        do { batch = try raw.decode(limits: limits) } catch { return .failure(error) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // Keys come from the roster only (§2.6.1); a batch's `keys` member is ignored.
        let verified = await SignatureCheck.verifiedKeys(batch.blocks, keys: link.withLockedValue { $0.keys },
                                                         width: ahead == 0 ? cores : cores - 1)
        return .success(PreparedBatch(batch: batch, verified: verified))
    }

    /// Applies one prepared batch atomically and acknowledges it, or reports why it could not be
    /// decoded. A fatal error closes the connection, which ends the read loop (and so the session)
    /// with that error.
    func receive(_ prepared: Result<PreparedBatch, WireError>, _ channel: any Channel) async throws {
        do {
            switch prepared {
            case .success(let batch): try await receive(batch, channel)
            case .failure(let error): try await fail(channel, error)
            }
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
            link.withLockedValue { $0.writeFailed = true }
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Applies one received batch atomically, then acknowledges it.
    func receive(_ prepared: PreparedBatch, _ channel: any Channel) async throws {
        let batch = prepared.batch
        var through = VersionVector()
        for block in batch.blocks { through[block.origin] = max(through[block.origin], block.seq) }
        // The peer holds what it sent, applied here or not. Noted before the store applies the blocks:
        // noted after, the send loop could find them in the store in between and send them back (§2.7).
        link.withLockedValue { $0.has = $0.has.merging(through) }
        let result: (report: ApplyReport, vector: VersionVector, keys: [SiteID: [UInt8]])
        do {
            result = try await context.store.run { db in
                // The store checks again every block whose origin's key is not the one it was verified with.
                let report = try db.apply(batch.blocks, verified: prepared.verified)
                return (report, try db.vector(), try db.siteKeys())
            }
        } catch {
            try await fail(channel, WireError(.internal, "this node could not store the batch (\(error)); retry later"))
            return
        }
        let progress = link.withLockedValue { link in
            link.keys = result.keys
            link.peerVector = link.peerVector.merging(through)
            link.dirty = true
            link.summary.receivedBlocks += batch.blocks.count
            link.summary.applied += result.report.applied
            link.summary.held += result.report.held
            link.summary.duplicates += result.report.duplicates
            link.summary.refused += result.report.refused.count
            link.summary.changeSetBytesIn += batch.size
            link.progress.received += batch.blocks.count
            return link.progress
        }
        report(progress)
        context.metrics.blocksIn.increment(by: batch.blocks.count)
        context.metrics.blocksApplied.increment(by: result.report.applied)
        context.metrics.changeSetBytesIn.increment(by: batch.size)
        try await write(channel, .frame(.ack(Ack(batch: batch.batch, vector: result.vector, applied: UInt64(result.report.applied),
                                                 held: UInt64(result.report.held), refused: UInt64(result.report.refused.count)))))
        if !result.report.refused.isEmpty {
            let list = result.report.refused.prefix(5).map { "\($0.origin) seq \($0.seq): \($0.code)" }.joined(separator: "; ")
            logger.warning("refused \(result.report.refused.count) blocks: \(list)")
            try await fail(channel, WireError(.blockRefused, "\(result.report.refused.count) blocks refused: \(list)"))
        }
        if result.report.applied > 0 { context.feed.signal() }
    }

    // MARK: Sending

    /// Sends what the peer lacks, oldest first, within the window; then live-pushes new blocks.
    func sendLoop(_ channel: any Channel, wakes: AsyncStream<Void>) async throws -> Bool {
        do {
            return try await sendFrames(channel, wakes: wakes)
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
            // The peer closed. What it wrote before (an error frame, fork evidence) is still to be read,
            // and the read loop reports it; this loop waits to be cancelled rather than end the session first.
            link.withLockedValue { $0.writeFailed = true }
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
            return false
        }
    }

    func sendFrames(_ channel: any Channel, wakes: AsyncStream<Void>) async throws -> Bool {
        var batchNumber: UInt64 = 0
        var wakeups = wakes.makeAsyncIterator()
        while true {
            if context.isShuttingDown() {
                try? await write(channel, .frame(.bye(reason: "node shutting down")), deadline: .seconds(2))
                return false
            }
            let (open, inFlight, openEpoch, live) = link.withLockedValue { ($0.open, $0.inFlight, $0.openEpoch, $0.syncedSent && $0.peerSynced) }
            if open && live && openEpoch < context.restoreEpoch.current {
                // The coordinator began to watch a restore after this session opened: the peer syncs
                // afresh in a new session, whose `synced` then makes it a witness (§2.2.6).
                try? await write(channel, .frame(.bye(reason: "a restored site needs a fresh sync from every member")), deadline: .seconds(2))
                return false
            }
            if open {
                try await checkRoster(channel)
                var room = context.limits.window - inFlight
                while room > 0 {
                    // To a restored site, the coordinator names the members it has not heard from
                    // since the restore, and says `synced` again whenever that list shrinks while the
                    // session runs (§2.2.6). The list is read before the vector, and the vector before
                    // the page: an empty page then means every block the vector counts was sent.
                    let restoredPeer = context.identity.role == .coordinator
                        ? link.withLockedValue({ $0.peer.flatMap { $0.restored != nil ? $0.site : nil } }) : nil
                    let (sent, lastAwaiting, has) = link.withLockedValue { ($0.syncedSent, $0.awaitingSent, $0.has) }
                    let due = !sent || (restoredPeer != nil && lastAwaiting?.isEmpty == false)
                    let (snapshot, page) = try await context.store.run { [context] db in
                        let snapshot = due ? (awaiting: try restoredPeer.flatMap { try db.awaitingWitnesses(for: $0) }, vector: try db.vector()) : nil
                        return (snapshot, try db.storedBlocks(after: has, limit: context.batchBlocks, maxBytes: context.batchBytes))
                    }
                    if page.isEmpty {
                        if let snapshot, !sent || snapshot.awaiting != lastAwaiting {
                            try await write(channel, .frame(.synced(snapshot.vector, awaiting: snapshot.awaiting)))
                            link.withLockedValue { link in
                                link.syncedSent = true
                                link.awaitingSent = snapshot.awaiting
                            }
                        }
                        break
                    }
                    batchNumber += 1
                    let encoded = try ChangeSet.encode(stored: page, batch: batchNumber, keys: [:], limits: context.limits)
                    let progress = link.withLockedValue { link in
                        link.has = link.has.merging(encoded.through)
                        link.sentThrough = link.sentThrough.merging(encoded.through)
                        link.inFlight += 1
                        link.summary.sentBatches += 1
                        link.summary.sentBlocks += encoded.blockCount
                        link.summary.changeSetBytesOut += encoded.size
                        link.progress.sent += encoded.blockCount
                        return link.progress
                    }
                    try await write(channel, .batch(encoded))
                    context.metrics.blocksOut.increment(by: encoded.blockCount)
                    context.metrics.changeSetBytesOut.increment(by: encoded.size)
                    report(progress)
                    room -= 1
                }
                let (done, quiet) = link.withLockedValue {
                    ($0.syncedSent && $0.peerSynced && $0.inFlight == 0 && $0.forkSent.isSubset(of: $0.forkReceived),
                     elapsed(since: $0.lastSentMillis))
                }
                if mode == .oneShot && done {
                    try await write(channel, .frame(.bye(reason: "sync complete")))
                    return true
                }
                if quiet >= context.pingIntervalMillis { try await sendPing(channel) }
            }
            guard await wakeups.next() != nil else { return false }
        }
    }

    func sendPing(_ channel: any Channel) async throws {
        let now = context.clock()
        let id = link.withLockedValue { link in
            let id = UInt64(link.pings.count + 1) + (link.pings.keys.max() ?? 0)
            link.pings[id] = now
            if link.pings.count > 16, let oldest = link.pings.keys.min() { link.pings.removeValue(forKey: oldest) }
            return id
        }
        try await write(channel, .frame(.ping(id: id, time: now)))
    }

    /// Skew = the peer's clock at the pong minus the midpoint of our round trip.
    func notePong(id: UInt64, peerTime: UInt64) {
        let now = context.clock()
        link.withLockedValue { link in
            guard let sent = link.pings.removeValue(forKey: id) else { return }
            link.summary.skewMillis = Self.skew(peerTime: peerTime, sent: sent, received: now)
        }
    }

    /// The peer's clock minus ours: `peerTime` is its clock when it wrote a frame that we read at
    /// `received`, in a round trip that began when we wrote at `sent`; the frame is taken to be
    /// written at the midpoint. A pong answers our ping; the peer's hello is written, like ours, as the
    /// connection opens, so the two hellos make the first round trip (§2.2.1: `time` lets the peer
    /// show a clock offset) and later pongs refine it.
    static func skew(peerTime: UInt64, sent: UInt64, received: UInt64) -> Int64 {
        let midpoint = Int64(sent) + (Int64(received) - Int64(sent)) / 2
        return Int64(peerTime) - midpoint
    }

    func report(_ progress: SyncProgress) {
        guard let onProgress else { return }
        var progress = progress
        progress.bytesIn = counter.bytesRead
        progress.bytesOut = counter.bytesWritten
        onProgress(progress)
    }

    // MARK: Peer records

    func recordPeer(error: String?) async {
        let snapshot = link.withLockedValue { link in
            let delta = (link.summary.receivedBlocks - link.recordedIn, link.summary.sentBlocks - link.recordedOut)
            (link.recordedIn, link.recordedOut) = (link.summary.receivedBlocks, link.summary.sentBlocks)
            link.dirty = false
            return (link.peer, link.peerVector, link.summary, link.open, delta)
        }
        guard let peer = snapshot.0, snapshot.3 || error != nil else { return }
        // What an accepted peer says is recorded only once it has proved its roster key: a stranger
        // must not rewrite a member's address, clock skew or last error. The outcome of a connection
        // this node dialed (to a configured peer) is shown either way, without the unproven clock.
        let authenticated = link.withLockedValue { $0.authenticated }
        guard authenticated || accepted == nil else { return }
        let address = address
        let now = context.clock()
        let lastError = error.map(Self.printable)
        let transportName: String? = switch transport?.mode {
        case .siteKeys: "tls"
        case .certificates: "tls-ca"
        case .plain: "plain"
        case nil: nil
        }
        _ = try? await context.store.run { db in
            try db.recordPeer(PeerRecord(site: peer.site, role: peer.role, address: address, lastSeen: now,
                                         vector: snapshot.1, skewMillis: authenticated ? snapshot.2.skewMillis : nil, lastError: lastError,
                                         blocksIn: UInt64(snapshot.4.0), blocksOut: UInt64(snapshot.4.1), transport: transportName))
        }
    }
}

extension SyncSession {
    /// `text` with control characters (terminal escapes among them) replaced by U+FFFD and cut to
    /// 1000 characters: a peer's error text is stored and shown by `status` and the dashboard.
    static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars.prefix(1000) {
            out.append(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) ? "\u{FFFD}" : scalar)
        }
        return String(out)
    }
}

/// The version string in `hello` and `--version`.
public enum TierlineVersion {
    public static let current = "0.6.0"
}
