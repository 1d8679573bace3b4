import NIOCore
import NIOEmbedded
@testable import SyncWire
import Testing
import WirePipeline

/// Counts the bytes that pass it with no line feed after them: what the line decoder behind it must
/// keep until their line ends.
final class UnendedBytes: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    var open = 0
    var most = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytesView
        if let last = bytes.lastIndex(of: UInt8(ascii: "\n")) { open = bytes.endIndex - last - 1 } else { open += bytes.count }
        most = max(most, open)
        context.fireChannelRead(data)
    }
}

@Suite struct PreludeTests {
    /// The sync pipeline with a prelude gate, and a counter of what reaches its line decoder.
    func gated() throws -> (channel: EmbeddedChannel, gate: PreludeGate, limiter: PreludeLimit, spy: UnendedBytes) {
        let channel = EmbeddedChannel()
        let gate = PreludeGate()
        try SyncPipeline.install(on: channel.pipeline.syncOperations, prelude: gate)
        let limiter = try channel.pipeline.syncOperations.handler(type: PreludeLimit.self)
        let spy = UnendedBytes()
        try channel.pipeline.syncOperations.addHandler(spy, position: .after(limiter))
        return (channel, gate, limiter, spy)
    }

    func frames(_ channel: EmbeddedChannel) throws -> [Inbound] {
        var out: [Inbound] = []
        while let item = try channel.readInbound(as: Inbound.self) { out.append(item) }
        return out
    }

    @Test func aStrangersUnendedLineNeverReachesTheLineDecoderAndIsRefusedPastTheLimit() throws {
        let (channel, _, limiter, spy) = try gated()
        let limit = PreludeLimit.standardLimit
        var written = 0
        while written < limit {
            let count = min(16_384, limit - written)
            try channel.writeInbound(ByteBuffer(repeating: UInt8(ascii: "x"), count: count))
            written += count
        }
        #expect(spy.most == 0, "until the peer authenticates, only whole lines go on to the line decoder")
        // In the line decoder's ByteBuffer these bytes took 4 MiB (a power of two); held here, their
        // storage exceeds the limit by less than one chunk.
        #expect(limiter.held.reduce(0) { $0 + $1.readableBytes } == limit)
        let storage = limiter.held.reduce(0) { $0 + $1.capacity }
        #expect(storage < limit + PreludeLimit.chunkBytes, "\(storage) bytes of storage for a line of \(limit)")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "a line of exactly the limit is not refused")
        try channel.writeInbound(ByteBuffer(bytes: [UInt8(ascii: "x")]))
        let answer = try #require(try channel.readOutbound(as: ByteBuffer.self))
        guard case .error(let code, _, let fatal) = try Frame.decode(line: answer.readableBytesView.dropLast()) else {
            Issue.record("not an error frame")
            return
        }
        #expect(code == "line-too-long" && fatal)
        #expect(!channel.isActive, "the connection is closed once the error is written")
        #expect(limiter.held.isEmpty, "the refused line's bytes are let go at once")
    }

    @Test func wholeLinesGoOnInOrderAndOnceTheGateLiftsTheLineDecoderBuffers() throws {
        let (channel, gate, limiter, spy) = try gated()
        let ping = Frame.ping(id: 1, time: 2).encodeLine() + [UInt8(ascii: "\n")]
        let pong = Frame.pong(id: 1, time: 3).encodeLine() + [UInt8(ascii: "\n")]
        // A ping over three reads, the last with a whole pong and the start of another ping.
        try channel.writeInbound(ByteBuffer(bytes: ping[0..<5]))
        try channel.writeInbound(ByteBuffer(bytes: ping[5..<10]))
        #expect(try frames(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(bytes: ping[10...] + pong + ping[0..<7]))
        #expect(try frames(channel) == [.frame(.ping(id: 1, time: 2)), .frame(.pong(id: 1, time: 3))])
        #expect(spy.most == 0)
        #expect(limiter.held.map { Array($0.readableBytesView) } == [Array(ping[0..<7])])

        // The peer authenticated: the line held is passed on before what comes next, and from then on
        // the line decoder buffers unended lines itself, up to maxLineBytes.
        gate.lift()
        try channel.writeInbound(ByteBuffer(bytes: ping[7...] + ping[0..<4]))
        #expect(try frames(channel) == [.frame(.ping(id: 1, time: 2))])
        #expect(limiter.held.isEmpty)
        #expect(spy.open == 4)
        try channel.writeInbound(ByteBuffer(bytes: ping[4...]))
        #expect(try frames(channel) == [.frame(.ping(id: 1, time: 2))])
        _ = try channel.finish()
    }

    @Test func aLongLineHeldInSeveralChunksComesThroughWhole() throws {
        let (channel, _, limiter, spy) = try gated()
        let long = Frame.error(code: "internal", message: String(repeating: "m", count: 3 * PreludeLimit.chunkBytes), fatal: false)
        let line = long.encodeLine() + [UInt8(ascii: "\n")]
        // In reads of 10 000 bytes, which do not fit the chunks evenly.
        for start in stride(from: 0, to: line.count, by: 10_000) {
            try channel.writeInbound(ByteBuffer(bytes: line[start..<min(start + 10_000, line.count)]))
            if start + 10_000 < line.count { #expect(try frames(channel).isEmpty) }
        }
        #expect(limiter.held.isEmpty && limiter.heldBytes == 0)
        #expect(try frames(channel) == [.frame(long)])
        #expect(spy.most == 0)
        _ = try channel.finish()
    }
}
