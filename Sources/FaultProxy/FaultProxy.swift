import Logging
import NIOCore
import NIOPosix

/// A TCP proxy that injects network faults: latency, jitter, loss (as TCP sees it), random resets
/// and partitions. It stands in for `tc netem` and firewall rules on machines that have neither.
///
/// Every connection accepted on the listen address is relayed to the upstream address, bytes both
/// ways, in order. What the proxy does to them:
///
/// - **Latency and jitter.** Each chunk read from one side (one `read(2)`, up to 64 KiB) is written to
///   the other side `latencyMillis` plus a uniform `0...jitterMillis` later. Jitter never reorders:
///   a chunk is never due before the one read ahead of it.
/// - **Loss.** TCP does not lose bytes; it retransmits them, late. So a lost chunk is not dropped:
///   each transmission of it is lost with probability `loss`, and each loss adds the current
///   retransmission timeout (`retransmitMillis`, doubling for each further loss of the same chunk, as
///   TCP's RTO backs off) to its delay, up to `maxRetransmissions`. Chunks behind it wait for it
///   (head-of-line blocking). This models loss per *chunk*, not per packet: a 64 KiB chunk counts as
///   one segment. It models neither congestion-window shrinking nor fast retransmit (which would
///   recover sooner than an RTO). For a protocol of small request/response frames a chunk is
///   about one message, which is what a test of it needs: at 10 % loss one chunk in ten arrives
///   200 ms (or 600 ms, 1.4 s…) late, and everything behind it on that connection with it.
/// - **Cuts.** With `cutEveryMillis > 0` each relayed connection is reset after a random lifetime,
///   exponential with that mean (cuts arrive as a Poisson process per connection). Both sides get
///   an RST (SO_LINGER 0); bytes the proxy still holds are lost with the connection, as with a real
///   reset.
/// - **Partition.** ``partition()`` resets every open connection, and while partitioned every new
///   connection is accepted and reset at once (the peer sees "connection reset", quickly — not a
///   blackhole, which would only test read timeouts). ``heal()`` ends it.
///
/// Both directions have a bounded queue (`maxQueuedBytes`); when it is full, or the other side's
/// socket does not take writes, the proxy stops reading the sending side, so TCP flow control
/// slows the sender. One exception: when a side closes, NIO reads everything its socket still
/// holds at once (it drains to the EOF it was told of), so the queue may then exceed its bound by
/// that socket's receive buffer (``FaultProxyConfiguration/socketBufferBytes`` bounds it). What
/// was queued is still delivered, with its delays, before the other side gets FIN. The number of
/// connections is bounded too.
///
/// All of a proxy's channels live on one event loop (taken from `group` at `init`); its state is
/// confined there, so no locks. Random choices come from ``FaultProfile/seed``: a connection's
/// decisions (per chunk, per direction, its cut) follow from the seed and the connection's
/// number, so a run repeats as far as TCP chunks the same bytes the same way.
///
/// ```swift
/// var faults = FaultProfile()
/// faults.latencyMillis = 50
/// faults.loss = 0.1
/// let proxy = try FaultProxy(configuration: FaultProxyConfiguration(
///     listen: ProxyAddress(host: "127.0.0.1", port: 0),
///     upstream: ProxyAddress(host: "127.0.0.1", port: 7400), faults: faults))
/// let address = try await proxy.start()
/// await proxy.partition()
/// await proxy.heal()
/// print(await proxy.counters())
/// await proxy.stop()
/// ```
///
/// ## Topics
/// - ``start()``
/// - ``partition()``
/// - ``heal()``
/// - ``counters()``
/// - ``stop()``
public final class FaultProxy: Sendable {
    public let configuration: FaultProxyConfiguration
    let loop: any EventLoop
    let core: NIOLoopBoundBox<ProxyCore>

    /// Makes a proxy; nothing is bound until ``start()``.
    /// - Throws: ``FaultProxyError`` (`badSetting`) if the configuration is out of range.
    public init(configuration: FaultProxyConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "tierline.faultproxy")) throws(FaultProxyError) {
        try configuration.validate()
        self.configuration = configuration
        let loop = group.next()
        self.loop = loop
        core = .makeBoxSendingValue(ProxyCore(configuration: configuration, logger: logger, loop: loop), eventLoop: loop)
    }

    /// Binds the listen address and starts accepting; returns the bound address (the real port if
    /// the configuration asked for port 0).
    /// - Throws: ``FaultProxyError`` (`alreadyStarted`) on a second call; NIO's error if the bind fails.
    public func start() async throws -> SocketAddress {
        let core = core
        let claimed = try await loop.submit { () -> Bool in
            guard !core.value.started else { return false }
            core.value.started = true
            return true
        }.get()
        guard claimed else { throw FaultProxyError(.alreadyStarted, "this proxy was started already; make another one") }
        var bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
        if let size = configuration.socketBufferBytes {
            // On the listener too: an accepted socket's window scale is fixed before accept returns.
            bootstrap = bootstrap
                .serverChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_rcvbuf), value: size)
                .childChannelOption(.socketOption(.so_sndbuf), value: size)
        }
        let server = try await bootstrap
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try core.value.accept(channel) }
            }
            .bind(host: configuration.listen.host, port: configuration.listen.port)
            .get()
        let stopped = try await loop.submit { () -> Bool in
            core.value.server = server
            return core.value.stopping
        }.get()
        if stopped { try? await server.close() }
        guard let address = server.localAddress else {
            throw FaultProxyError(.notStarted, "the listening socket has no address")
        }
        let logger = try await loop.submit { core.value.logger }.get()
        let shown = ProxyAddress(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? configuration.listen.port)
        logger.info("listening", metadata: ["proxy.listen": "\(shown)", "proxy.upstream": "\(configuration.upstream)"])
        return address
    }

    /// Resets every open connection and, until ``heal()``, resets every new one as soon as it is
    /// accepted. Calling it while partitioned does nothing.
    public func partition() async {
        let core = core
        try? await loop.submit { core.value.setPartitioned(true) }.get()
    }

    /// Ends a partition: new connections are relayed again. Calling it while healed does nothing.
    public func heal() async {
        let core = core
        try? await loop.submit { core.value.setPartitioned(false) }.get()
    }

    /// Whether a partition is on.
    public var isPartitioned: Bool {
        get async {
            let core = core
            return (try? await loop.submit { core.value.partitioned }.get()) ?? false
        }
    }

    /// A snapshot of the counters.
    public func counters() async -> FaultCounters {
        let core = core
        return (try? await loop.submit { core.value.counters }.get()) ?? FaultCounters()
    }

    /// Stops accepting, resets every open connection and returns once all their channels closed.
    /// Safe to call more than once, and before ``start()``.
    public func stop() async {
        let core = core
        try? await loop.flatSubmit { core.value.stop() }.get()
    }
}

/// The proxy's state, confined to its event loop.
final class ProxyCore {
    let configuration: FaultProxyConfiguration
    let logger: Logger
    let loop: any EventLoop
    var counters = FaultCounters()
    var connections: [Int: ProxyConnection] = [:]
    var numbered = 0
    var started = false
    var partitioned = false
    var stopping = false
    var server: (any Channel)?

    init(configuration: FaultProxyConfiguration, logger: Logger, loop: any EventLoop) {
        self.configuration = configuration
        self.logger = logger
        self.loop = loop
    }

    /// Sets up an accepted channel (in the server's child initializer): relay it, or reset it.
    func accept(_ channel: any Channel) throws {
        guard !partitioned, !stopping, connections.count < configuration.maxConnections else {
            counters.refused += 1
            logger.debug("refusing a connection", metadata: ["proxy.partitioned": "\(partitioned)", "proxy.open": "\(connections.count)"])
            try channel.pipeline.syncOperations.addHandler(RefuseHandler())
            return
        }
        numbered += 1
        let connection = ProxyConnection(number: numbered, core: self, client: channel)
        try channel.pipeline.syncOperations.addHandler(SideHandler(side: .client, connection: connection))
        connections[numbered] = connection
        counters.connections += 1
        counters.open = connections.count
        connection.start()
    }

    func forget(_ connection: ProxyConnection) {
        connections[connection.number] = nil
        counters.open = connections.count
    }

    func setPartitioned(_ on: Bool) {
        guard on != partitioned else { return }
        partitioned = on
        if on {
            counters.partitions += 1
            let open = Array(connections.values)
            counters.partitionResets += open.count
            for connection in open { connection.close(abruptly: true) }
            logger.info("partition: connections reset, new ones refused", metadata: ["proxy.reset": "\(open.count)"])
        } else {
            counters.heals += 1
            logger.info("healed: relaying new connections")
        }
    }

    /// Closes the listener and resets every connection; the future completes when all closed.
    func stop() -> EventLoopFuture<Void> {
        stopping = true
        var closing: [EventLoopFuture<Void>] = []
        if let server {
            closing.append(server.closeFuture)
            server.close(promise: nil)
        }
        for connection in Array(connections.values) {
            closing.append(connection.client.closeFuture)
            if let upstream = connection.upstream { closing.append(upstream.closeFuture) }
            connection.close(abruptly: true)
        }
        return EventLoopFuture.andAllComplete(closing, on: loop)
    }
}
