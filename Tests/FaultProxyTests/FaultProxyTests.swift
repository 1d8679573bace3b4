@testable import FaultProxy
import Glibc
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// The proxy over real loopback sockets, between a NIO client and an echo or sink server. Every wait
/// is bounded (a timeout closes the channel it waits on); no test asserts how long anything took.
@Suite(.serialized) struct FaultProxyTests {
    // MARK: Fixtures

    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// Runs `body`, closing `channel` (which ends any read or write on it) if it takes over `seconds`.
    static func bounded<T: Sendable>(_ seconds: Int64, _ what: String, closing channel: any Channel,
                                     _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let fired = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: channel.eventLoop)
        let timer = channel.eventLoop.scheduleTask(in: .seconds(seconds)) {
            fired.value = true
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            let value = try await body()
            if try await channel.eventLoop.submit({ fired.value }).get() { throw TimedOut(what: what) }
            return value
        } catch {
            if try await channel.eventLoop.submit({ fired.value }).get() { throw TimedOut(what: what) }
            throw error
        }
    }

    /// Waits for `future`, failing after `seconds`.
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ seconds: Int64, _ what: String) async throws -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: promise)
        let timer = future.eventLoop.scheduleTask(in: .seconds(seconds)) { promise.fail(TimedOut(what: what)) }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }
        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    /// Collects what a connection sends until it closes.
    final class Sink: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = ByteBuffer()
        let done: EventLoopPromise<ByteBuffer>
        init(done: EventLoopPromise<ByteBuffer>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            received.writeBuffer(&chunk)
        }
        func channelInactive(context: ChannelHandlerContext) { done.succeed(received) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    struct Accepted: Sendable {
        var channel: any Channel
        /// Everything the connection sent, once it closed.
        var received: EventLoopFuture<ByteBuffer>
    }

    static func echoServer(_ group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// A server that collects bytes; with `reading: false` it reads nothing until told
    /// (`setOption(.autoRead, true)` on the accepted channel).
    static func sinkServer(_ group: any EventLoopGroup, reading: Bool = true,
                           bufferBytes: Int = 256 * 1024) async throws -> (any Channel, AsyncStream<Accepted>) {
        let (accepted, continuation) = AsyncStream<Accepted>.makeStream()
        // Nobody waits on the stream for ever.
        group.next().scheduleTask(in: .seconds(60)) { continuation.finish() }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(.so_rcvbuf), value: bufferBytes)
            .childChannelOption(.socketOption(.so_rcvbuf), value: bufferBytes)
            .childChannelOption(.autoRead, value: reading)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let done = channel.eventLoop.makePromise(of: ByteBuffer.self)
                    try channel.pipeline.syncOperations.addHandler(Sink(done: done))
                    continuation.yield(Accepted(channel: channel, received: done.futureResult))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (server, accepted)
    }

    static func connect(_ group: any EventLoopGroup, to address: SocketAddress) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .connect(host: "127.0.0.1", port: address.port ?? 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    static func proxy(_ group: any EventLoopGroup, to upstream: any Channel, faults: FaultProfile = FaultProfile(),
                      maxQueuedBytes: Int = 256 * 1024) throws -> FaultProxy {
        var configuration = FaultProxyConfiguration(listen: ProxyAddress(host: "127.0.0.1", port: 0),
                                                    upstream: ProxyAddress(host: "127.0.0.1", port: upstream.localAddress?.port ?? 0),
                                                    faults: faults)
        configuration.maxQueuedBytes = maxQueuedBytes
        return try FaultProxy(configuration: configuration, group: group)
    }

    /// `count` bytes of a pattern that shows reordering, loss and duplication.
    static func pattern(_ count: Int, seed: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        var x = UInt32(truncatingIfNeeded: seed &* 2_654_435_761 | 1)
        for _ in 0..<count {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            buffer.writeInteger(UInt8(truncatingIfNeeded: x))
        }
        return buffer
    }

    /// Sends `messages` one at a time, each after the previous came back, then `bulk` bytes written
    /// while reading; returns what came back and what was sent.
    static func echoThrough(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, messages: Int, bulk: Int) async throws -> (ByteBuffer, ByteBuffer) {
        try await client.executeThenClose { inbound, outbound in
            var sent = ByteBuffer()
            var got = ByteBuffer()
            var iterator = inbound.makeAsyncIterator()
            for round in 0..<messages {
                let message = pattern(1 + (round * 97) % 3000, seed: round)
                sent.writeImmutableBuffer(message)
                try await outbound.write(message)
                while got.readableBytes < sent.readableBytes {
                    guard var chunk = try await iterator.next() else { return (got, sent) }
                    got.writeBuffer(&chunk)
                }
            }
            let bulkData = pattern(bulk, seed: -1)
            sent.writeImmutableBuffer(bulkData)
            let total = sent.readableBytes
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var rest = bulkData
                    while rest.readableBytes > 0, let piece = rest.readSlice(length: min(rest.readableBytes, 48 * 1024)) {
                        try await outbound.write(piece)
                    }
                }
                while got.readableBytes < total {
                    guard var chunk = try await iterator.next() else { break }
                    got.writeBuffer(&chunk)
                }
                try await group.waitForAll()
            }
            return (got, sent)
        }
    }

    // MARK: Tests

    @Test func bytesPassIntactAndInOrderUnderLossLatencyAndJitter() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let echo = try await Self.echoServer(group)
        var faults = FaultProfile()
        faults.latencyMillis = 3
        faults.jitterMillis = 5
        faults.loss = 0.5
        faults.retransmitMillis = 2
        faults.seed = 11
        let proxy = try Self.proxy(group, to: echo, faults: faults, maxQueuedBytes: 32 * 1024)
        do {
            let address = try await proxy.start()
            let client = try await Self.connect(group, to: address)
            let (got, sent) = try await Self.bounded(60, "the echo through the proxy", closing: client.channel) {
                try await Self.echoThrough(client, messages: 60, bulk: 2 << 20)
            }
            #expect(got.readableBytes == sent.readableBytes)
            #expect(got == sent, "the echo differs from what was sent")
            let counters = await proxy.counters()
            #expect(counters.bytesToUpstream == sent.readableBytes)
            #expect(counters.bytesToClient == sent.readableBytes)
            #expect(counters.connections == 1)
            // 60 round trips alone are 120 chunks: at p = 0.5 some are certainly lost.
            #expect(counters.chunksDelayedAsLost > 0 && counters.retransmissions >= counters.chunksDelayedAsLost)
            // A lane holds its bound plus at most one read (64 KiB).
            #expect(counters.peakQueuedBytes <= 32 * 1024 + 65_536, "peak \(counters.peakQueuedBytes)")
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    /// A receiver that does not read: the proxy stops reading the sender instead of buffering, so
    /// the sender cannot finish; once the receiver reads, everything arrives intact, and the
    /// sender's close after its last write still delivers every byte (FIN follows the data).
    ///
    /// All socket buffers are small, so 2 MiB (about four times what every buffer on the way holds)
    /// cannot hide in them: "the writer has not finished while the sink stalls" follows from the
    /// bounds, not from timing. Only the moment of looking is picked by watching the counters stop.
    @Test func slowReaderIsBackpressuredAndCloseDeliversEverything() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (sink, accepted) = try await Self.sinkServer(group, reading: false, bufferBytes: 32 * 1024)
        var faults = FaultProfile()
        faults.latencyMillis = 5
        let queueBound = 16 * 1024
        var configuration = FaultProxyConfiguration(listen: ProxyAddress(host: "127.0.0.1", port: 0),
                                                    upstream: ProxyAddress(host: "127.0.0.1", port: sink.localAddress?.port ?? 0),
                                                    faults: faults)
        configuration.maxQueuedBytes = queueBound
        configuration.socketBufferBytes = 32 * 1024
        let proxy = try FaultProxy(configuration: configuration, group: group)
        do {
            let address = try await proxy.start()
            // A plain channel: each write completes once the kernel took it, so the writer feels
            // backpressure (an async writer off the loop would queue everything in NIO at once).
            let client = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.so_sndbuf), value: 32 * 1024)
                .connect(host: "127.0.0.1", port: address.port ?? 0).get()
            let data = Self.pattern(2 << 20, seed: 5)
            var acceptedConnections = accepted.makeAsyncIterator()
            guard let upstream = await acceptedConnections.next() else {
                Issue.record("the sink accepted nothing")
                return
            }
            let received = try await Self.bounded(90, "2 MiB through the proxy", closing: client) {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        var rest = data
                        while rest.readableBytes > 0, let piece = rest.readSlice(length: min(rest.readableBytes, 64 * 1024)) {
                            try await client.writeAndFlush(piece).get()
                        }
                        // Half-close after the last byte: the proxy sees EOF only after reading it all.
                        try await client.close(mode: .output).get()
                        return true
                    }
                    group.addTask {
                        // Wait until the proxy stops moving bytes (the sink does not read).
                        var last = FaultCounters()
                        var still = 0
                        for _ in 0..<400 where still < 6 {
                            try await Task.sleep(for: .milliseconds(50))
                            let now = await proxy.counters()
                            still = now.chunks > 0 && now == last ? still + 1 : 0
                            last = now
                        }
                        #expect(still >= 6, "the proxy never stalled: \(last)")
                        #expect(last.peakQueuedBytes <= queueBound + 65_536, "peak \(last.peakQueuedBytes) while stalled")
                        #expect(last.bytesToUpstream < data.readableBytes)
                        try await upstream.channel.setOption(ChannelOptions.autoRead, value: true).get()
                        return false
                    }
                    // The stall watcher finishes first: the writer cannot, with the sink not reading.
                    let first = try await group.next()
                    #expect(first == false, "the writer finished while the sink did not read: something buffered 2 MiB")
                    try await group.waitForAll()
                }
                return try await Self.wait(upstream.received, 60, "the sink to see the end of the stream")
            }
            try? await client.close()
            #expect(received.readableBytes == data.readableBytes)
            #expect(received == data, "the sink got other bytes than were sent")
            let counters = await proxy.counters()
            #expect(counters.bytesToUpstream == data.readableBytes)
            // At the EOF the proxy may read what its 32 KiB (doubled by the kernel) socket buffer held.
            #expect(counters.peakQueuedBytes <= queueBound + 65_536 + 4 * 32 * 1024, "peak \(counters.peakQueuedBytes)")
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await sink.close()
        try await group.shutdownGracefully()
    }

    @Test func partitionResetsAndRefusesThenHealRestores() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let echo = try await Self.echoServer(group)
        var faults = FaultProfile()
        faults.latencyMillis = 2
        let proxy = try Self.proxy(group, to: echo, faults: faults)
        do {
            let address = try await proxy.start()
            let before = try await Self.connect(group, to: address)
            let ended: Bool = try await Self.bounded(10, "the open connection to end in a partition", closing: before.channel) {
                try await before.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "hello"))
                    _ = try await iterator.next()
                    await proxy.partition()
                    do {
                        while try await iterator.next() != nil {}
                    } catch {}  // reset by peer
                    return true
                }
            }
            #expect(ended)
            #expect(await proxy.isPartitioned)

            // A new connection is accepted, then reset at once.
            let during = try? await Self.connect(group, to: address)
            if let during {
                let closed: Bool = try await Self.bounded(10, "a connection made in a partition to be reset", closing: during.channel) {
                    try await during.executeThenClose { inbound, outbound in
                        try? await outbound.write(ByteBuffer(string: "anyone?"))
                        var iterator = inbound.makeAsyncIterator()
                        do {
                            while try await iterator.next() != nil {}
                        } catch {}
                        return true
                    }
                }
                #expect(closed)
            }
            var counters = await proxy.counters()
            #expect(counters.partitionResets == 1)
            #expect(counters.refused >= 1)
            #expect(counters.partitions == 1)

            await proxy.heal()
            let after = try await Self.connect(group, to: address)
            let (got, sent) = try await Self.bounded(20, "an echo after the heal", closing: after.channel) {
                try await Self.echoThrough(after, messages: 5, bulk: 10_000)
            }
            #expect(got == sent)
            counters = await proxy.counters()
            #expect(counters.heals == 1 && counters.connections == 2)
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    @Test func cutsResetConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let echo = try await Self.echoServer(group)
        var faults = FaultProfile()
        faults.cutEveryMillis = 30
        faults.seed = 3
        let proxy = try Self.proxy(group, to: echo, faults: faults)
        do {
            let address = try await proxy.start()
            for round in 0..<3 {
                let client = try await Self.connect(group, to: address)
                let echoed: Int = try await Self.bounded(20, "connection \(round) to be cut", closing: client.channel) {
                    try await client.executeThenClose { inbound, outbound in
                        var echoed = 0
                        var iterator = inbound.makeAsyncIterator()
                        do {
                            // Keeps talking until the cut ends the conversation.
                            while true {
                                try await outbound.write(ByteBuffer(string: "ping"))
                                guard let chunk = try await iterator.next() else { break }
                                echoed += chunk.readableBytes
                            }
                        } catch {}
                        return echoed
                    }
                }
                _ = echoed
            }
            let counters = await proxy.counters()
            #expect(counters.cuts == 3, "\(counters)")
            #expect(counters.open == 0)
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    @Test func unreachableUpstreamResetsTheClient() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        // A port that was just free: nothing listens there.
        let gone = try await Self.echoServer(group)
        let proxy = try Self.proxy(group, to: gone)
        try await gone.close()
        do {
            let address = try await proxy.start()
            // The reset can beat the client's own connect completion (the kernel then reports
            // ECONNRESET to connect); either way the client must end up reset, not left hanging.
            let ended: Bool
            do {
                let client = try await Self.connect(group, to: address)
                ended = try await Self.bounded(10, "the client to be reset", closing: client.channel) {
                    try await client.executeThenClose { inbound, _ in
                        var iterator = inbound.makeAsyncIterator()
                        do {
                            while try await iterator.next() != nil {}
                        } catch {}
                        return true
                    }
                }
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                ended = true
            } catch let error as NIOConnectionError where error.connectionErrors.contains(where: {
                ($0.error as? IOError)?.errnoCode == ECONNRESET
            }) {
                ended = true
            }
            #expect(ended)
            // The proxy counts the failure and closes the pair a moment after the reset.
            try await eventually(60, "the proxy counts one upstream failure and holds no connection") {
                let counters = await proxy.counters()
                return counters.upstreamFailures == 1 && counters.open == 0
            }
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await group.shutdownGracefully()
    }

    @Test func stopClosesOpenConnectionsAndTheListener() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let echo = try await Self.echoServer(group)
        let proxy = try Self.proxy(group, to: echo)
        do {
            let address = try await proxy.start()
            await #expect(throws: FaultProxyError.self) { _ = try await proxy.start() }
            let client = try await Self.connect(group, to: address)
            let ended: Bool = try await Self.bounded(10, "stop to close the connection", closing: client.channel) {
                try await client.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "x"))
                    _ = try await iterator.next()
                    await proxy.stop()
                    do {
                        while try await iterator.next() != nil {}
                    } catch {}
                    return true
                }
            }
            #expect(ended)
            #expect(await proxy.counters().open == 0)
            await #expect(throws: (any Error).self) { _ = try await Self.connect(group, to: address) }
        } catch {
            Issue.record(error)
        }
        await proxy.stop()
        try await echo.close()
        try await group.shutdownGracefully()
    }
}
