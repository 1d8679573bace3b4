import NIOCore
import NIOExtras
import SyncWire

/// Decodes each line from `LineBasedFrameDecoder` into an ``Inbound``.
public final class FrameDecoder: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = Inbound

    let limits: WireLimits

    public init(limits: WireLimits = .standard) { self.limits = limits }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let inbound: Inbound
        do { inbound = try Frame.decodeDeferringBatches(line: line.readableBytesView, limits: limits) } catch {
            inbound = .invalid(error)
        }
        context.fireChannelRead(wrapInboundOut(inbound))
    }

    /// A read-idle event from `IdleStateHandler` becomes a `timeout`.
    ///
    /// The event comes outside a read cycle, so a read-complete follows it: `NIOAsyncChannel` hands on
    /// reads only at read-complete, and a silent peer would otherwise never let the timeout through.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireChannelRead(wrapInboundOut(.invalid(WireError(.timeout, "nothing was heard from the peer for too long, not even an answer to a ping"))))
            context.fireChannelReadComplete()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is ByteToMessageDecoderError.PayloadTooLargeError:
            let invalid = WireError(.lineTooLong, "a line grew past \(limits.maxLineBytes) bytes without a line feed")
            context.fireChannelRead(wrapInboundOut(.invalid(invalid)))
        case is NIOExtrasErrors.LeftOverBytesError:
            // The peer closed in the middle of a line; the partial line is dropped with the connection.
            break
        default:
            context.fireErrorCaught(error)
        }
    }
}

/// The sync protocol's pipeline.
public enum SyncPipeline {
    /// Adds, in order: a byte counter, `LineBasedFrameDecoder` bounded by the line limit (plus room
    /// for the LF; a CR before the LF counts toward the limit), an idle guard when `readTimeout` is set, the frame decoder and the frame encoder.
    /// Call on the channel's event loop.
    /// With `prelude`, a ``PreludeLimit`` bounds lines until the gate is lifted.
    public static func install(on pipeline: ChannelPipeline.SynchronousOperations, limits: WireLimits = .standard,
                               counter: WireCounter = WireCounter(), readTimeout: TimeAmount? = nil, prelude: PreludeGate? = nil) throws {
        try pipeline.addHandler(counter)
        if let readTimeout { try pipeline.addHandler(IdleStateHandler(readTimeout: readTimeout)) }
        if let prelude { try pipeline.addHandler(PreludeLimit(limit: min(PreludeLimit.standardLimit, limits.maxLineBytes), gate: prelude)) }
        try pipeline.addHandler(ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: limits.maxLineBytes + 1))
        try pipeline.addHandler(FrameDecoder(limits: limits))
        try pipeline.addHandler(FrameEncoder())
    }
}
