import Logging
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request head has not fully arrived in time: `timeout` after the
/// connection opened, or after the previous response was written; and one whose request body has
/// not fully arrived `timeout` after its head. A client that trickles a header or a body byte by
/// byte (slowloris), or opens a connection and says nothing, holds it no longer than that.
///
/// Sits after the HTTP/1 decoder (HTTP1Channel's `additionalChannelHandlers`), so it sees a
/// request's head only once the decoder has it whole; once a request has arrived whole, while it is answered, no timer
/// runs (a slow handler, such as the dashboard's, is not the client's fault). Pipelined requests are
/// counted: the timer starts again when the last one has been answered.
///
/// Runs on the channel's event loop; the timer is the loop's own (`scheduleTask`), so
/// `EmbeddedEventLoop.advanceTime(by:)` drives it in tests.
///
/// ```swift
/// .http1(configuration: .init(additionalChannelHandlers: [HeaderTimeoutHandler(timeout: .seconds(10))]))
/// ```
public final class HeaderTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    let logger: Logger?
    /// Request heads received whose response has not ended yet.
    private var unanswered = 0
    private var timer: Scheduled<Void>?

    public init(timeout: TimeAmount, logger: Logger? = nil) {
        self.timeout = timeout
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
    }

    public func channelActive(context: ChannelHandlerContext) {
        if timer == nil && unanswered == 0 { startTimer(context) }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            // The body has the same time again to arrive whole: a client that trickles it (every
            // body here is at most 1 MiB) must not hold the connection for ever.
            startTimer(context)
        case .end:
            // While a request is answered no timer runs; once every response has ended, the timer
            // started then (for the next head) keeps running.
            if unanswered > 0 { stopTimer() }
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        unanswered = max(0, unanswered - 1)
        if unanswered == 0 { startTimer(context) }
        context.write(data, promise: promise)
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        stopTimer()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let logger = logger, timeout = timeout
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let context = loopBound.value
            logger?.debug("http connection closed: no complete request head in time",
                          metadata: ["http.remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "http.timeout_ms": "\(timeout.nanoseconds / 1_000_000)"])
            context.close(promise: nil)
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
    }
}
