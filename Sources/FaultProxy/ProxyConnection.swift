import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One relayed connection: the accepted client channel, the channel to the upstream, and a delay
/// line each way.
///
/// Everything runs on the proxy's one event loop (both channels live there), so no state is locked.
/// Bytes move only through ``Lane``s: a chunk read from one side is queued with its due time from
/// ``FaultSchedule`` and written to the other side when due, in read order. A lane holds at most
/// `maxQueuedBytes` plus one read: past it, or while the other side's channel is not writable, the
/// proxy stops reading the source (it holds back `read()`), so a slow reader slows the writer
/// through TCP flow control instead of filling memory.
final class ProxyConnection {
    enum Side: CustomStringConvertible {
        case client, upstream
        var other: Side { self == .client ? .upstream : .client }
        var description: String { self == .client ? "client" : "upstream" }
    }

    enum Phase { case connecting, open, closed }

    /// Chunks read from one side, waiting for their due time to be written to the other.
    struct Lane {
        var schedule: FaultSchedule
        var queue = CircularBuffer<(due: NIODeadline, chunk: ByteBuffer)>()
        var queuedBytes = 0
        var timer: Scheduled<Void>?
        /// The source's pipeline asked to read while the lane was full or the sink not writable.
        var readDeferred = false
        /// The source closed: deliver what is queued, then close the connection.
        var sourceClosed = false
        /// The sink closed: what the source still sends is dropped.
        var sinkClosed = false

        mutating func drop() {
            timer?.cancel()
            timer = nil
            queue.removeAll()
            queuedBytes = 0
        }
    }

    let number: Int
    let core: ProxyCore
    let client: any Channel
    var upstream: (any Channel)?
    var phase = Phase.connecting
    /// Read from the client, written to the upstream.
    var toUpstream: Lane
    /// Read from the upstream, written to the client.
    var toClient: Lane
    var cutTimer: Scheduled<Void>?
    var logger: Logger

    init(number: Int, core: ProxyCore, client: any Channel) {
        self.number = number
        self.core = core
        self.client = client
        let faults = core.configuration.faults
        toUpstream = Lane(schedule: FaultSchedule(profile: faults, random: SeededGenerator(seed: faults.seed, connection: number, stream: 1)))
        toClient = Lane(schedule: FaultSchedule(profile: faults, random: SeededGenerator(seed: faults.seed, connection: number, stream: 2)))
        logger = core.logger
        logger[metadataKey: "proxy.connection"] = "\(number)"
    }

    var loop: any EventLoop { client.eventLoop }

    func channel(_ side: Side) -> (any Channel)? { side == .client ? client : upstream }

    /// Runs `body` on the lane that carries what `side` sends.
    func withLane<R>(from side: Side, _ body: (inout Lane) -> R) -> R {
        switch side {
        case .client: body(&toUpstream)
        case .upstream: body(&toClient)
        }
    }

    // MARK: Setting up

    /// Dials the upstream; the client is not read until it answers.
    func start() {
        let configuration = core.configuration
        let bound = NIOLoopBound(self, eventLoop: loop)
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeoutMillis)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 1)
        if let size = configuration.socketBufferBytes {
            bootstrap = bootstrap
                .channelOption(.socketOption(.so_rcvbuf), value: size)
                .channelOption(.socketOption(.so_sndbuf), value: size)
        }
        bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SideHandler(side: .upstream, connection: bound.value))
                }
            }
            .connect(host: configuration.upstream.host, port: configuration.upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.connected(channel)
                case .failure(let error): self.connectFailed(error)
                }
            }
    }

    func connected(_ channel: any Channel) {
        guard phase == .connecting else {
            // The client went away (or a partition reset it) while we dialled.
            Self.reset(channel)
            return
        }
        upstream = channel
        phase = .open
        logger.debug("relaying", metadata: ["proxy.upstream": "\(core.configuration.upstream)"])
        let faults = core.configuration.faults
        if faults.cutEveryMillis > 0 {
            var random = SeededGenerator(seed: faults.seed, connection: number, stream: 3)
            let after = FaultSchedule.cutAfter(meanMillis: faults.cutEveryMillis, random: &random)
            cutTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(after))) {
                guard self.phase != .closed else { return }
                self.core.counters.cuts += 1
                self.logger.debug("cut")
                self.close(abruptly: true)
            }
        }
        resumeReads(from: .client)
        resumeReads(from: .upstream)
    }

    func connectFailed(_ error: any Error) {
        guard phase == .connecting else { return }
        core.counters.upstreamFailures += 1
        logger.info("the upstream is unreachable; resetting the client",
                    metadata: ["proxy.upstream": "\(core.configuration.upstream)", "error": "\(error)"])
        close(abruptly: true)
    }

    // MARK: Moving bytes

    /// Whether `side` may be read now: the lane it feeds has room and its sink takes writes.
    func mayRead(from side: Side) -> Bool {
        guard phase == .open, let sink = channel(side.other) else { return false }
        return withLane(from: side) { lane in
            lane.sinkClosed || (lane.queuedBytes < core.configuration.maxQueuedBytes && sink.isWritable)
        }
    }

    func deferRead(from side: Side) {
        withLane(from: side) { $0.readDeferred = true }
    }

    /// Issues the read the source's pipeline asked for earlier, if it may read now.
    func resumeReads(from side: Side) {
        guard withLane(from: side, { $0.readDeferred }), mayRead(from: side), let source = channel(side) else { return }
        withLane(from: side) { $0.readDeferred = false }
        source.read()
    }

    /// Queues a chunk read from `side` with its due time.
    func received(_ chunk: ByteBuffer, from side: Side) {
        guard phase == .open else { return }
        let now = NIODeadline.now()
        let (plan, dropped, queued) = withLane(from: side) { lane -> (FaultSchedule.Plan?, Bool, Int) in
            if lane.sinkClosed { return (nil, true, 0) }
            let plan = lane.schedule.plan(readAt: now.uptimeNanoseconds)
            lane.queue.append((NIODeadline.uptimeNanoseconds(plan.due), chunk))
            lane.queuedBytes += chunk.readableBytes
            return (plan, false, lane.queuedBytes)
        }
        guard !dropped, let plan else { return }
        core.counters.chunks += 1
        if plan.retransmissions > 0 {
            core.counters.chunksDelayedAsLost += 1
            core.counters.retransmissions += plan.retransmissions
        }
        core.counters.peakQueuedBytes = max(core.counters.peakQueuedBytes, queued)
        arm(from: side)
    }

    /// Schedules the delivery of the lane's head, unless one is scheduled.
    func arm(from side: Side) {
        let head: NIODeadline? = withLane(from: side) { lane in lane.timer == nil ? lane.queue.first?.due : nil }
        guard let head else { return }
        let timer = loop.assumeIsolated().scheduleTask(deadline: head) {
            self.withLane(from: side) { $0.timer = nil }
            self.deliver(from: side)
        }
        withLane(from: side) { $0.timer = timer }
    }

    /// Writes every due chunk of the lane fed by `side`, in order, then re-arms.
    func deliver(from side: Side) {
        guard phase == .open, let sink = channel(side.other) else { return }
        let now = NIODeadline.now()
        var written = 0
        while let head = withLane(from: side, { $0.queue.first }), head.due <= now {
            withLane(from: side) { lane in
                lane.queue.removeFirst()
                lane.queuedBytes -= head.chunk.readableBytes
            }
            written += head.chunk.readableBytes
            sink.write(head.chunk, promise: nil)
        }
        if written > 0 {
            sink.flush()
            if side == .client { core.counters.bytesToUpstream += written } else { core.counters.bytesToClient += written }
        }
        if withLane(from: side, { $0.sourceClosed && $0.queue.isEmpty }) {
            close(abruptly: false)
            return
        }
        arm(from: side)
        resumeReads(from: side)
    }

    // MARK: Events

    func writabilityChanged(_ side: Side) {
        if channel(side)?.isWritable == true { resumeReads(from: side.other) }
    }

    /// `side` closed (EOF or reset): what it sent still goes out, then the other side closes;
    /// nothing more can reach it.
    func inactive(_ side: Side) {
        switch phase {
        case .closed:
            return
        case .connecting:
            close(abruptly: false)
        case .open:
            withLane(from: side.other) { lane in
                lane.sinkClosed = true
                lane.drop()
            }
            let drained = withLane(from: side) { lane -> Bool in
                lane.sourceClosed = true
                return lane.queue.isEmpty
            }
            if drained { close(abruptly: false) }
        }
    }

    func failed(_ side: Side, _ error: any Error) {
        guard phase != .closed else { return }
        logger.debug("error; resetting both sides", metadata: ["proxy.side": "\(side)", "error": "\(error)"])
        close(abruptly: true)
    }

    // MARK: Closing

    /// Closes both sides. Abruptly: queued bytes are dropped and both sockets send RST (SO_LINGER 0).
    /// Gracefully: each side gets what was already written to it, then FIN; a side that reads
    /// nothing for 10 s is closed anyway.
    func close(abruptly: Bool) {
        guard phase != .closed else { return }
        phase = .closed
        cutTimer?.cancel()
        toUpstream.drop()
        toClient.drop()
        for channel in [client, upstream].compactMap({ $0 }) {
            if abruptly {
                Self.reset(channel)
            } else {
                let guardTimer = channel.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { Self.reset(channel) }
                // An empty write completes after every write before it: then close.
                channel.writeAndFlush(ByteBuffer()).assumeIsolated().whenComplete { _ in
                    guardTimer.cancel()
                    channel.close(promise: nil)
                }
            }
        }
        core.forget(self)
    }

    /// Closes `channel` with RST instead of FIN.
    static func reset(_ channel: any Channel) {
        if let provider = channel as? any SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        channel.close(promise: nil)
    }
}

/// Feeds one channel's events to its ``ProxyConnection`` and holds back its reads when the
/// connection says so.
final class SideHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let side: ProxyConnection.Side
    let connection: ProxyConnection

    init(side: ProxyConnection.Side, connection: ProxyConnection) {
        self.side = side
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data), from: side)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged(side)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inactive(side)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.failed(side, error)
    }

    func read(context: ChannelHandlerContext) {
        if connection.mayRead(from: side) {
            context.read()
        } else {
            connection.deferRead(from: side)
        }
    }
}

/// Resets a connection the proxy does not relay (partitioned, stopping, or too many).
final class RefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        ProxyConnection.reset(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
