import NIOConcurrencyHelpers
import TicketModel
import NIOCore

/// What the decoding pipeline hands on: a frame, or the protocol error a line caused.
///
/// Errors in a line are values, not channel errors, so the session can answer with an `error` frame
/// before it closes (or, for an unknown frame type, carry on).
public enum Inbound: Sendable, Equatable {
    case frame(Frame)
    /// A `blocks` frame with a checked header; the session decodes its payload only once the
    /// handshake is done, so an unauthenticated peer cannot make the node inflate anything, and
    /// inflating happens off the event loop.
    case batch(RawBatch)
    case invalid(WireError)
}

/// What the session writes: a frame, or a `blocks` line encoded ahead of time.
public enum Outbound: Sendable {
    case frame(Frame)
    case batch(EncodedBatch)
    /// A frame written the protocol-3 way: binary members in base64 (`Protocol/PROTOCOL.md` §2.5).
    case compactFrame(Frame)
}

/// Writes each ``Outbound`` as one line with its LF.
public final class FrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Outbound
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let line: [UInt8]
        switch unwrapOutboundIn(data) {
        case .frame(let frame): line = frame.encodeLine()
        case .batch(let batch): line = batch.line
        case .compactFrame(let frame): line = frame.encodeLine(binary: .base64)
        }
        var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}

/// Bytes read and written on one connection, as they cross the socket.
public final class WireCounter: ChannelDuplexHandler, Sendable {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let counts = NIOLockedValueBox((read: 0, written: 0))

    public init() {}

    /// Bytes received so far.
    public var bytesRead: Int { counts.withLockedValue { $0.read } }
    /// Bytes sent so far.
    public var bytesWritten: Int { counts.withLockedValue { $0.written } }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        counts.withLockedValue { $0.read += count }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let count = unwrapOutboundIn(data).readableBytes
        counts.withLockedValue { $0.written += count }
        context.write(data, promise: promise)
    }
}

/// Lifted once the session is open; until then ``PreludeLimit`` bounds the lines a peer may send.
public final class PreludeGate: Sendable {
    private let lifted = NIOLockedValueBox(false)
    public init() {}
    public func lift() { lifted.withLockedValue { $0 = true } }
    public var isLifted: Bool { lifted.withLockedValue { $0 } }
}

/// Until its ``PreludeGate`` is lifted (the peer has authenticated), a line may hold at most `limit`
/// bytes, whatever `maxLineBytes` allows an open session: a stranger cannot make the node buffer
/// megabytes. A longer line gets a `line-too-long` error and the connection is closed.
///
/// Until then it also does the buffering: it holds the line not yet ended itself and passes on only
/// whole lines, so the line decoder behind it never keeps a stranger's bytes. The decoder keeps them
/// in one `ByteBuffer`, whose storage grows by doubling to a power of two: a line of the limit
/// (2 MiB + 4 KiB) would take 4 MiB there. Here they fill buffers of ``chunkBytes`` in turn, never
/// copied as they grow, so their storage exceeds the limit by less than a chunk; it is let go when the
/// line ends or is refused.
public final class PreludeLimit: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// 2 MiB + 4 KiB: a `roster` frame whose document has the largest size a roster may have (1 MiB)
    /// with every byte of it escaped in the JSON string, and its signature.
    public static let standardLimit = 2 * RosterLimits.maxDocumentBytes + 4096

    let limit: Int
    let gate: PreludeGate
    /// The bytes received since the last line feed, while the gate is down, in buffers of
    /// ``chunkBytes`` filled in turn.
    var held: [ByteBuffer] = []
    var heldBytes = 0
    var tripped = false

    /// The storage a held line takes at a time.
    public static let chunkBytes = 1 << 16

    public init(limit: Int = PreludeLimit.standardLimit, gate: PreludeGate) {
        self.limit = limit
        self.gate = gate
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if tripped { return }
        var buffer = unwrapInboundIn(data)
        if gate.isLifted {
            // The session is open: the line decoder buffers, up to `maxLineBytes`, from the line held here on.
            for chunk in held { context.fireChannelRead(wrapInboundOut(chunk)) }
            release()
            return context.fireChannelRead(data)
        }
        let bytes = buffer.readableBytesView
        guard let first = bytes.firstIndex(of: UInt8(ascii: "\n")), let last = bytes.lastIndex(of: UInt8(ascii: "\n")) else {
            guard heldBytes + bytes.count <= limit else { return trip(context) }
            return hold(bytes, allocator: context.channel.allocator)
        }
        // The line that ends here began in earlier reads; lines wholly inside one read are shorter
        // than a read, far below the limit.
        let rest = bytes.endIndex - last - 1
        guard heldBytes + (first - bytes.startIndex) <= limit, rest <= limit else { return trip(context) }
        var lines = buffer.readSlice(length: last - bytes.startIndex + 1)!
        if !held.isEmpty {
            var joined = context.channel.allocator.buffer(capacity: heldBytes + lines.readableBytes)
            for var chunk in held { joined.writeBuffer(&chunk) }
            joined.writeBuffer(&lines)
            lines = joined
            release()
        }
        hold(buffer.readableBytesView, allocator: context.channel.allocator)
        context.fireChannelRead(wrapInboundOut(lines))
    }

    /// Keeps `bytes` after those held: in the last chunk while it has room, then in new ones.
    func hold(_ bytes: ByteBufferView, allocator: ByteBufferAllocator) {
        var rest = bytes
        while !rest.isEmpty {
            if held.last.map({ $0.writableBytes == 0 }) ?? true { held.append(allocator.buffer(capacity: Self.chunkBytes)) }
            let part = rest.prefix(held[held.count - 1].writableBytes)
            held[held.count - 1].writeBytes(part)
            rest = rest.dropFirst(part.count)
        }
        heldBytes += bytes.count
    }

    func release() {
        held = []
        heldBytes = 0
    }

    func trip(_ context: ChannelHandlerContext) {
        tripped = true
        release()
        let error = WireError(.lineTooLong, "a line grew past \(limit) bytes before the session opened; until a peer has authenticated, lines are limited to \(limit) bytes")
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeBytes(Frame.error(error).encodeLine())
        buffer.writeInteger(UInt8(ascii: "\n"))
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
