import Desk
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import SyncWire
import TicketModel
import TicketStore
import WirePipeline

/// A headless node: accepts sessions on its listen address, dials its peers (reconnecting with
/// backoff), pushes new blocks to every connected peer within a second, and relays blocks of every
/// origin, so sites that only reach a hub still converge.
///
/// It is a `Service`: run it in a `ServiceGroup`, and SIGTERM or SIGINT ends every session with `bye`
/// before the store closes.
public final class SyncNode: Service, Sendable {
    let configuration: NodeConfiguration
    let context: SessionContext
    let group: any EventLoopGroup
    /// TLS contexts: the sites' own keys by default, an organisation's certificates with `tls`.
    let tls: TLSContexts
    let state = NIOLockedValueBox(State())
    /// Slots for accepted connections: members' sessions and strangers' handshakes apart.
    let admission: Admission
    /// The dialers' state, reported to the store for `tierline status`.
    let links: LinkBoard
    /// Refusals of accepted connections, logged once per address per interval.
    let refusals: RefusalLog

    struct State {
        var shuttingDown = false
        var server: NIOAsyncChannel<AcceptedConnection, Never>?
        /// Raised by ``reconnectNow()``: a dialer sleeping through its backoff wakes when it changes.
        var wakeups: UInt64 = 0
    }

    /// - Parameters:
    ///   - store: the node's store; `key` must be the key of its site.
    ///   - clock: wall time in ms (tests fix it).
    public init(store: TicketDatabase, key: SiteKey, configuration: NodeConfiguration,
                logger: Logger = Logger(label: "tierline.node"),
                clock: @escaping @Sendable () -> UInt64 = TicketDatabase.systemMillis,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                metrics: SyncMetrics = SyncMetrics()) throws {
        self.configuration = configuration
        self.group = group
        let identity = try store.identity()
        guard identity.publicKey == key.publicKey else {
            throw ConfigurationError("the site key does not match the store's site \(identity.site); use the key made by `tierline init` for this store")
        }
        var tls = try configuration.tls?.makeContexts(listening: configuration.listen != nil)
            ?? SiteTLS.contexts(key: key, site: identity.site)
        tls.allowPlain = !configuration.allowPlainSessions.isEmpty
        self.tls = tls
        let shutdownFlag = state
        var context = SessionContext(identity: identity, key: key, store: StoreAccess(store), feed: ChangeFeed(),
                                     logger: logger, clock: clock, batchBlocks: configuration.batchBlocks,
                                     isShuttingDown: { shutdownFlag.withLockedValue { $0.shuttingDown } }, metrics: metrics)
        context.applyLimits(of: configuration)
        context.plainSites = Set(configuration.allowPlainSessions)
        context.protocolVersion = configuration.highestProtocol
        admission = Admission(limits: Admission.Limits(members: configuration.maxSessions))
        links = LinkBoard(addresses: configuration.peers.map(\.description))
        refusals = RefusalLog(logger: logger, clock: clock)
        context.refusals = refusals
        self.context = context
    }

    /// The site this node writes as.
    public var site: SiteID { context.identity.site }

    /// The sites a session is open with now (handshake done, not yet ended). A quiet session writes
    /// its peer's `lastSeen` to the store only at its start and end, so the workspace's hub banner
    /// asks here too.
    public var connectedSites: Set<SiteID> { context.presence.sites }

    /// Binds the listen address (if any) and returns it; port 0 picks a free port. Idempotent.
    @discardableResult
    public func bind() async throws -> SocketAddress? {
        if let server = state.withLockedValue({ $0.server }) { return server.channel.localAddress }
        guard let listen = configuration.listen else { return nil }
        let limits = context.limits
        let readTimeout = context.readTimeout
        let tls = tls
        let flags = state
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: listen.host, port: listen.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A connection accepted while the node stops is closed, not wrapped: nobody would
                    // consume its async channel, and NIO traps on an async writer dropped unfinished.
                    if flags.withLockedValue({ $0.shuttingDown }) { throw ChannelError.ioOnClosedChannel }
                    let counter = WireCounter()
                    let prelude = PreludeGate()
                    try SyncPipeline.install(on: channel.pipeline.syncOperations, limits: limits, counter: counter, readTimeout: readTimeout,
                                             prelude: prelude)
                    let gate = try SyncTransport.install(on: channel.pipeline.syncOperations, after: counter, tls: tls, side: .accepting,
                                                         eventLoop: channel.eventLoop)
                    let wrapped = try NIOAsyncChannel<Inbound, Outbound>(wrappingChannelSynchronously: channel, configuration: .init(
                        backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16)))
                    return AcceptedConnection(channel: wrapped, counter: counter, gate: gate, prelude: prelude)
                }
            }
        state.withLockedValue { $0.server = server }
        context.logger.info("listening", metadata: ["address": "\(server.channel.localAddress.map(Self.describe) ?? "?")", "site": "\(site)",
                                                    "tls": "\(tls == nil ? "off" : "on")"])
        return server.channel.localAddress
    }

    public func run() async throws {
        try await bind()
        // A cancelled task (the service group cancels every service when one fails, such as an HTTP
        // server that cannot bind) stops the node as a graceful shutdown would: its loops sleep in
        // slices that cancellation cuts short, and would otherwise spin.
        await withTaskCancellationHandler {
            await runUntilShutdown()
        } onCancel: {
            self.shutdown()
        }
        refusals.flush(all: true)
        // The last report says nothing is connected; its age then tells `status` the node stopped.
        await links.report(to: context.store, at: context.clock(), connected: [], force: true)
        context.logger.info("stopped", metadata: ["site": "\(site)"])
    }

    private func runUntilShutdown() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let server = state.withLockedValue({ $0.server }) {
                    group.addTask { await self.serve(server) }
                }
                for peer in configuration.peers {
                    group.addTask { await self.dial(peer) }
                }
                group.addTask { await self.watchStore() }
                if configuration.escalationMillis > 0 {
                    group.addTask { await self.escalationTicker() }
                }
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Starts a graceful shutdown: sessions end with `bye`, the listener closes, dialers stop.
    public func shutdown() {
        let server = state.withLockedValue { state -> NIOAsyncChannel<AcceptedConnection, Never>? in
            state.shuttingDown = true
            return state.server
        }
        context.feed.signal()
        server?.channel.close(promise: nil)
    }

    var isShuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    func serve(_ server: NIOAsyncChannel<AcceptedConnection, Never>) async {
        do {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        let connection = accepted.channel
                        let raw = connection.channel
                        let host = raw.remoteAddress?.ipAddress ?? "unknown"
                        // Every connection starts as a stranger; a full pool makes room by closing the
                        // oldest stranger of the address that holds the most of it.
                        let (ticket, evicted) = admission.enter(host: host) {
                            let error = WireError(.internal, "too many connections are waiting to authenticate; the oldest was closed; retry later")
                            raw.writeAndFlush(Outbound.frame(.error(error))).whenComplete { _ in raw.close(promise: nil) }
                            // A peer that does not read cannot hold the connection open.
                            raw.eventLoop.scheduleTask(in: .seconds(2)) { raw.close(promise: nil) }
                        }
                        for stranger in evicted { stranger.evict() }
                        group.addTask {
                            let member = NIOLockedValueBox(false)
                            defer { self.admission.leave(ticket, member: member.withLockedValue { $0 }) }
                            let address = connection.channel.remoteAddress.map(Self.describe) ?? "unknown"
                            // A connection that closed before it could be served ends here, never the listener;
                            // if TLS refused it (a plain peer, an untrusted certificate), that is logged. (The
                            // lookup runs on the channel's loop, after the channel became active.)
                            guard (try? await connection.channel.pipeline.handler(type: WireCounter.self).get()) != nil else {
                                if let refusal = accepted.gate.refusal { self.refusals.note(host: host, "\(refusal)") }
                                connection.channel.close(promise: nil)
                                return
                            }
                            // With TLS, the session starts once the handshake is done.
                            do { try await accepted.gate.ready() } catch {
                                self.refusals.note(host: host, "\(error)")
                                try? await connection.executeThenClose { _, _ in }
                                return
                            }
                            let admission = self.admission
                            let hooks = AcceptedHooks(host: host, prelude: accepted.prelude, memberSlots: admission.limits.members,
                                                      sessionsPerSite: admission.limits.sessionsPerSite) { site in
                                let refusal = admission.authenticated(ticket, site: site.rawValue)
                                member.withLockedValue { $0 = refusal == nil }
                                return refusal
                            }
                            _ = await SyncSession(context: self.context, mode: .live, address: address, counter: accepted.counter,
                                                  accepted: hooks, transport: accepted.gate).run(connection)
                        }
                    }
                }
            }
        } catch {
            if !isShuttingDown { context.logger.error("the listener failed: \(error)") }
        }
    }

    /// Keeps a session with `peer` up, reconnecting with capped exponential backoff and jitter.
    /// Whether a session ended because its connection failed rather than by a protocol decision.
    static func endedInTransport(_ summary: SessionSummary) -> Bool {
        summary.errorCode == WireError.Code.connectionLost.rawValue || summary.errorCode == WireError.Code.internal.rawValue
    }

    func dial(_ peer: Endpoint) async {
        var backoff = ReconnectBackoff(minMillis: configuration.reconnectMinMillis, maxMillis: configuration.reconnectMaxMillis)
        while !isShuttingDown {
            // Taken before the attempt: a reconnectNow() while it runs ends the wait that follows.
            let wakeups = state.withLockedValue { $0.wakeups }
            let started = context.clock()
            var outcome = ReconnectBackoff.Outcome.answered
            var failure: String?
            var (site, opened): (SiteID?, Bool) = (nil, false)
            links.attempting(peer.description)
            do {
                let (channel, counter, gate) = try await Self.connectSecured(to: peer, group: group, limits: context.limits,
                                                                             readTimeout: context.readTimeout, tls: tls, logger: context.logger)
                links.connected(peer.description)
                let summary = await SyncSession(context: context, mode: .live, address: peer.description, counter: counter,
                                                transport: gate).run(channel)
                if Self.endedInTransport(summary), let refusal = gate.refusal {
                    context.logger.warning("the session with \(peer) ended because TLS failed: \(refusal)")
                }
                // A session that opened shows the link works: a reset while idle (a NAT timeout, a
                // cut) must not stretch the next reconnect toward the cap.
                let transport = summary.errorCode == nil || Self.endedInTransport(summary)
                if summary.errorCode == nil || (summary.opened && transport) || summary.receivedBlocks + summary.sentBlocks > 0 {
                    outcome = .progressed
                }
                failure = summary.error
                (site, opened) = (summary.peerSite.flatMap { try? SiteID($0) }, summary.opened)
            } catch {
                // A refusal (TLS, a peer that is not a node) or a refused TCP connection is an answer.
                outcome = error is WireError || SocketFailure.isAnswer(error) ? .answered : .silent
                failure = error is WireError ? "cannot reach \(peer): \(error)" : SocketFailure.connecting(to: peer.description, error)
            }
            if isShuttingDown { break }
            let now = context.clock()
            if now >= started && now - started > 10_000 { outcome = .progressed }
            let wait = backoff.delay(after: outcome) { Int.random(in: $0) }
            if let failure { context.logger.warning("\(failure); retrying in \(wait) ms") }
            links.waiting(peer.description, site: site, opened: opened, error: outcome == .progressed ? nil : failure, until: now + UInt64(wait))
            if await sleep(millis: wait, wakeableSince: wakeups) {
                // SIGHUP or a new roster: dial now, and back off from the minimum again.
                backoff.reset()
            }
        }
    }

    /// Dials every configured peer now, starting each backoff again from `reconnectMinMillis`: what
    /// `serve` does on SIGHUP, and what a change of this node's roster does. Sessions already open
    /// are not touched.
    public func reconnectNow() {
        state.withLockedValue { $0.wakeups &+= 1 }
    }

    /// Sleeps in short slices so a shutdown is noticed quickly; with `wakeableSince` (a count of
    /// ``reconnectNow()`` calls), it also ends as soon as the count differs.
    /// - Returns: whether ``reconnectNow()`` ended it.
    @discardableResult
    func sleep(millis: Int, wakeableSince wakeups: UInt64? = nil) async -> Bool {
        var left = millis
        while left > 0 && !isShuttingDown {
            if let wakeups, state.withLockedValue({ $0.wakeups }) != wakeups { return true }
            let slice = min(left, 100)
            try? await Task.sleep(for: .milliseconds(slice))
            left -= slice
        }
        return false
    }

    /// Notices blocks written into the store by other processes (the CLI) and wakes the sessions.
    func watchStore() async {
        var last = try? await context.store.run { try $0.vector() }
        var roster = try? await context.store.run { try $0.rosterVersion() }
        // Said at start and whenever the roster changes: the store writes nothing more.
        func warnIfRemoved() async {
            if let removed = try? await context.store.run({ try $0.removedSiteRefusal() }) { context.logger.warning("\(removed)") }
        }
        await warnIfRemoved()
        while !isShuttingDown {
            await sleep(millis: configuration.pollMillis)
            // A new roster (`roster add` here, or one a peer brought) may admit a peer that refused
            // this node until now: dial it at once rather than after the backoff.
            if let version = try? await context.store.run({ try $0.rosterVersion() }), version != roster {
                if roster != nil {
                    context.logger.info("the roster changed (version \(version)): dialing every peer now")
                    reconnectNow()
                }
                await warnIfRemoved()
                roster = version
            }
            await links.report(to: context.store, at: context.clock(), connected: context.presence.sites)
            // A block held for clock drift applies once this node's clock catches up with it.
            if let applied = try? await context.store.run({ try $0.retryQuarantined() }), applied > 0 {
                context.logger.notice("applied \(applied) blocks held back for clock drift: this node's clock caught up with their stamps")
            }
            refusals.flush()
            admission.releaseMemoryIfCalm()
            guard let now = try? await context.store.run({ try $0.vector() }) else { continue }
            if now != last {
                last = now
                context.feed.signal()
            }
        }
    }

    /// Writes due SLA and ladder records for the tickets this site owns; a coordinator also fires,
    /// as a backstop, for sites it has not heard from past the matrix's grace period. The records'
    /// ids and times are the same whoever fires them, so a double firing is one event.
    func escalationTicker() async {
        let isCoordinator = context.identity.role == .coordinator
        let presence = context.presence
        let clock = context.clock
        let schedule = TickSchedule()
        while !isShuttingDown {
            await sleep(millis: configuration.escalationMillis)
            guard !isShuttingDown else { break }
            do {
                let written = try await context.store.run { db -> Int in
                    // A store that may not write now (a restore that waits, a copy, a removed site:
                    // `tierline status` says why) skips the round rather than warn every tick.
                    guard try db.localWriteRefusal() == nil else { return 0 }
                    let now = Int64(clock())
                    let heard = isCoordinator ? try db.lastHeard() : [:]
                    let live = presence.sites
                    let written = try EscalationDesk(store: db).tick(now: now, schedule: schedule) { site, grace in
                        isCoordinator && !live.contains(site) && now - Int64(heard[site] ?? 0) > grace
                    }
                    return written.values.reduce(0) { $0 + $1.count }
                }
                if written > 0 {
                    context.logger.info("escalation records written", metadata: ["count": "\(written)"])
                    context.feed.signal()
                }
            } catch {
                context.logger.warning("escalation ticker: \(error)")
            }
        }
    }

    /// `HOST:PORT` of a socket address.
    static func describe(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "\(address)"
        return host.contains(":") ? "[\(host)]:\(address.port ?? 0)" : "\(host):\(address.port ?? 0)"
    }

    /// Opens a connection with the sync pipeline, in TLS when `tls` is given.
    static func connect(to peer: Endpoint, group: any EventLoopGroup, limits: WireLimits, readTimeout: TimeAmount?,
                        tls: TLSContexts? = nil) async throws -> (NIOAsyncChannel<Inbound, Outbound>, WireCounter) {
        let (channel, counter, _) = try await connectGated(to: peer, group: group, limits: limits, readTimeout: readTimeout, tls: tls)
        return (channel, counter)
    }

    /// Opens a connection in TLS; when `tls.allowPlain` is set and the peer answers in plain text (a
    /// protocol-1 node), opens it again without TLS, and logs that the link is unprotected.
    static func connectSecured(to peer: Endpoint, group: any EventLoopGroup, limits: WireLimits, readTimeout: TimeAmount?,
                               tls: TLSContexts, logger: Logger) async throws -> (NIOAsyncChannel<Inbound, Outbound>, WireCounter, TransportGate) {
        do {
            return try await connectGated(to: peer, group: group, limits: limits, readTimeout: readTimeout, tls: tls)
        } catch let error as WireError where tls.allowPlain && error.code == .tlsFailed && error.detail.contains("plain text") {
            logger.warning("\(peer) answered in plain text (a protocol-1 node): dialing it again without TLS, as allowPlainSessions admits; this link is unprotected")
            return try await connectGated(to: peer, group: group, limits: limits, readTimeout: readTimeout, tls: nil)
        }
    }

    /// Opens a connection and, with TLS, waits for the handshake: a refused handshake throws its
    /// ``WireError`` (`tls-failed`, `tls-required`). The gate keeps a TLS failure that comes later.
    static func connectGated(to peer: Endpoint, group: any EventLoopGroup, limits: WireLimits, readTimeout: TimeAmount?,
                             tls: TLSContexts?) async throws -> (NIOAsyncChannel<Inbound, Outbound>, WireCounter, TransportGate) {
        let counter = WireCounter()
        let (channel, gate) = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: peer.host, port: peer.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try SyncPipeline.install(on: channel.pipeline.syncOperations, limits: limits, counter: counter, readTimeout: readTimeout)
                    let gate = try SyncTransport.install(on: channel.pipeline.syncOperations, after: counter, tls: tls,
                                                         side: .dialing(host: peer.host), eventLoop: channel.eventLoop)
                    let wrapped = try NIOAsyncChannel<Inbound, Outbound>(wrappingChannelSynchronously: channel, configuration: .init(
                        backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16)))
                    return (wrapped, gate)
                }
            }
        do { try await gate.ready() } catch {
            try? await channel.executeThenClose { _, _ in }
            throw error
        }
        return (channel, counter, gate)
    }
}

/// What the listener hands on for each accepted connection.
struct AcceptedConnection: Sendable {
    var channel: NIOAsyncChannel<Inbound, Outbound>
    var counter: WireCounter
    /// Opens when the transport is ready (after the TLS handshake); says why it refused the peer.
    var gate: TransportGate
    /// Bounds lines until the peer has authenticated.
    var prelude: PreludeGate
}

/// One two-way exchange with a node, then disconnect: `tierline sync HOST:PORT`.
public enum SyncClient {
    /// Connects to `peer`, sends what it lacks, receives what this store lacks, and returns when both
    /// sides have caught up (or throws ``SyncFailure`` saying why not).
    /// - Parameter tls: TLS settings for the connection (`--tls-ca`, `--tls-cert`, `--tls-key`); `nil`
    ///   for plain TCP. Bad settings throw ``ConfigurationError`` before anything is sent.
    public static func exchange(store: TicketDatabase, key: SiteKey, with peer: Endpoint,
                                logger: Logger = Logger(label: "tierline.sync"), batchBlocks: Int = 1024,
                                tls: TLSSettings? = nil, allowPlain: [SiteID] = [],
                                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                                onProgress: (@Sendable (SyncProgress) -> Void)? = nil) async throws -> SessionSummary {
        let identity = try store.identity()
        guard identity.publicKey == key.publicKey else {
            throw ConfigurationError("the site key does not match the store's site \(identity.site)")
        }
        var contexts = try tls?.makeContexts(listening: false) ?? SiteTLS.contexts(key: key, site: identity.site)
        contexts.allowPlain = !allowPlain.isEmpty
        return try await exchange(access: StoreAccess(store), identity: identity, key: key, with: peer, logger: logger,
                                  batchBlocks: batchBlocks, tls: contexts, plainSites: Set(allowPlain), group: group,
                                  onProgress: onProgress)
    }

    /// A plain protocol-1 exchange, without TLS, with a node that admits plain sessions
    /// (`allowPlainSessions`): what a node of Tierline 0.6 dials, its hello naming protocol 1 (the
    /// transport does not choose the version, `Protocol/PROTOCOL.md` §2.12). For the benchmark's
    /// baseline and tests; a sync that should fall back to plain only when the peer is old uses
    /// `exchange(…allowPlain: true)`.
    public static func exchangePlain(store: TicketDatabase, key: SiteKey, with peer: Endpoint,
                                     logger: Logger = Logger(label: "tierline.sync"),
                                     group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> SessionSummary {
        let access = StoreAccess(store)
        return try await exchange(access: access, identity: try store.identity(), key: key, with: peer, logger: logger,
                                  batchBlocks: 1024, tls: nil, plainSites: nil, group: group, onProgress: nil,
                                  protocolVersion: 1)
    }

    /// With `tls` `nil`, a plain session; its version comes from the hellos as in TLS, the highest being
    /// `protocolVersion` (``exchangePlain(store:key:with:logger:group:)`` names 1, as Tierline 0.6 did).
    static func exchange(access: StoreAccess, identity: LocalIdentity, key: SiteKey, with peer: Endpoint, logger: Logger,
                         batchBlocks: Int, tls: TLSContexts?, plainSites: Set<SiteID>?, group: any EventLoopGroup,
                         onProgress: (@Sendable (SyncProgress) -> Void)?,
                         protocolVersion: Int = WireVersion.protocolVersion) async throws -> SessionSummary {
        var context = SessionContext(identity: identity, key: key, store: access, feed: ChangeFeed(), logger: logger,
                                     batchBlocks: batchBlocks)
        context.handshakeTimeout = SessionContext.dialedHandshakeTimeout
        context.plainSites = plainSites
        context.protocolVersion = protocolVersion
        let conflictsBefore = try await access.run { try $0.conflictCount() }
        let (channel, counter, gate): (NIOAsyncChannel<Inbound, Outbound>, WireCounter, TransportGate)
        do {
            if let tls {
                (channel, counter, gate) = try await SyncNode.connectSecured(to: peer, group: group, limits: context.limits,
                                                                             readTimeout: context.readTimeout, tls: tls, logger: logger)
            } else {
                (channel, counter, gate) = try await SyncNode.connectGated(to: peer, group: group, limits: context.limits,
                                                                           readTimeout: context.readTimeout, tls: nil)
            }
        } catch let error as WireError {
            var summary = SessionSummary(address: peer.description)
            summary.error = error.description
            summary.errorCode = error.code.rawValue
            throw SyncFailure(summary: summary, message: "sync with \(peer) did not finish: \(error)", sessionStarted: false)
        } catch {
            throw SyncFailure(summary: SessionSummary(address: peer.description),
                              message: SocketFailure.connecting(to: peer.description, error), sessionStarted: false)
        }
        var summary = await SyncSession(context: context, mode: .oneShot, address: peer.description, counter: counter,
                                        transport: gate, onProgress: onProgress).run(channel)
        // TLS that fails after its handshake (TLS 1.3 checks this side's certificate then) can close the
        // connection under a write; report the TLS reason, not the closed channel.
        if SyncNode.endedInTransport(summary), let refusal = gate.refusal {
            summary.error = refusal.description
            summary.errorCode = refusal.code.rawValue
        }
        let conflictsAfter = try await access.run { try $0.conflictCount() }
        summary.newConflicts = max(0, conflictsAfter - conflictsBefore)
        guard summary.completed, summary.error == nil else {
            throw SyncFailure(summary: summary, message: "sync with \(peer) did not finish: \(summary.error ?? "the session ended early")")
        }
        return summary
    }
}

/// A one-shot sync that did not finish, with what it did before it stopped.
public struct SyncFailure: Error, CustomStringConvertible {
    public var summary: SessionSummary
    public var message: String
    /// `false` when no session started (the connection or its TLS handshake failed): nothing was
    /// exchanged, so `tierline sync` prints no summary, only ``message``.
    public var sessionStarted = true
    public var description: String { message }
}

extension SessionContext {
    /// Takes the node's configured limits: what it reads (`maxLineBytes`, `maxBatchBytes`,
    /// `maxBatchCompressedBytes`) and how long a silent peer may stay (`idleTimeoutMillis`, with a ping
    /// after a third of it, so that two nodes with the same setting keep an idle link up). The read
    /// guard fires at half of it: the first time it sends a ping; once about another half has passed
    /// since that ping with nothing heard, the next ends the session (§2.4).
    mutating func applyLimits(of configuration: NodeConfiguration) {
        limits = configuration.wireLimits
        readTimeout = .milliseconds(Int64(configuration.idleTimeoutMillis / 2))
        pingIntervalMillis = min(pingIntervalMillis, UInt64(configuration.idleTimeoutMillis / 3))
        handshakeTimeout = .milliseconds(Int64(configuration.handshakeMillis))
    }
}

/// A node prints its site and listen address, never its context (the site key, the store) or TLS
/// keys: ServiceLifecycle logs each service with `String(describing:)`.
extension SyncNode: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "SyncNode(site \(site), listen \(configuration.listen.map { "\($0)" } ?? "none"), \(configuration.peers.count) peers, keys redacted)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["node": description], displayStyle: .class) }
}
