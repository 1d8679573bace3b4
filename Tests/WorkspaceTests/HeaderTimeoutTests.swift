import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing
import Workspace

/// The HTTP/1 pipeline of the node's server around ``HeaderTimeoutHandler``: NIO's decoder, the
/// codec to HTTP types, then the handler, on an embedded loop whose time the test moves.
func headerTimeoutChannel(_ timeout: TimeAmount = .seconds(1)) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
    try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
    try channel.pipeline.syncOperations.addHandler(HeaderTimeoutHandler(timeout: timeout))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    return channel
}

func send(_ channel: EmbeddedChannel, _ text: String) throws {
    try channel.writeInbound(ByteBuffer(string: text))
}

func answer(_ channel: EmbeddedChannel) throws {
    try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
    try channel.writeOutbound(HTTPResponsePart.end(nil))
}

/// Moves the loop's time to 1 ms before `deadline` (counted from now), expects the connection still
/// open, then to the deadline, and expects it closed.
func expectClosed(_ channel: EmbeddedChannel, after deadline: TimeAmount, sourceLocation: SourceLocation = #_sourceLocation) {
    channel.embeddedEventLoop.advanceTime(by: deadline - .milliseconds(1))
    #expect(channel.isActive, "closed before its deadline", sourceLocation: sourceLocation)
    channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
    #expect(!channel.isActive, "still open at its deadline", sourceLocation: sourceLocation)
}

@Suite struct HeaderTimeoutTests {
    @Test func halfAHeaderIsClosedWhenTheTimeoutEnds() throws {
        let channel = try headerTimeoutChannel()
        // Slowloris: the request line and one field, then a byte now and then, never the blank line.
        try send(channel, "GET /api/intake/tickets HTTP/1.1\r\nHost: node\r\n")
        for byte in "X-Slow: 1".map(String.init) {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
            try send(channel, byte)
        }
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        // Bytes trickling in do not move the deadline: it counts from the connection's opening.
        expectClosed(channel, after: .milliseconds(100))
    }

    @Test func aTrickledBodyIsClosedWhenTheTimeoutEnds() throws {
        let channel = try headerTimeoutChannel()
        // A whole head, then a body a byte now and then: it held the connection for ever.
        try send(channel, "POST /login HTTP/1.1\r\nHost: node\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 65536\r\n\r\n")
        for _ in 0..<9 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
            try send(channel, "n")
        }
        // The body's deadline counts from its head.
        expectClosed(channel, after: .milliseconds(100))
    }

    @Test func aBodyThatArrivesInTimeStopsTheTimer() throws {
        let channel = try headerTimeoutChannel()
        try send(channel, "POST /login HTTP/1.1\r\nHost: node\r\nContent-Length: 4\r\n\r\nna")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
        try send(channel, "me")
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        try answer(channel)
        expectClosed(channel, after: .seconds(1))
    }

    @Test func aSilentConnectionIsClosed() throws {
        let channel = try headerTimeoutChannel(.milliseconds(500))
        expectClosed(channel, after: .milliseconds(500))
    }

    @Test func aWholeHeadStopsTheTimerUntilTheResponseEnds() throws {
        let channel = try headerTimeoutChannel()
        try send(channel, "GET /api/summary HTTP/1.1\r\nHost: node\r\n\r\n")
        guard case .head(let head)? = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("no request head")
            return
        }
        #expect(head.path == "/api/summary")
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        // A slow answer (the dashboard's) is not the client's fault: no timer while it is computed.
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        try answer(channel)
        // After the response, the next head has the timeout again.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        try send(channel, "GET /static/app.css HTTP/1.1\r\nHost: node\r\n\r\n")
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(channel.isActive)
        try answer(channel)
        expectClosed(channel, after: .seconds(1))
    }

    @Test func pipelinedRequestsKeepTheTimerOffUntilTheLastAnswer() throws {
        let channel = try headerTimeoutChannel()
        try send(channel, "GET /a HTTP/1.1\r\nHost: node\r\n\r\nGET /b HTTP/1.1\r\nHost: node\r\n\r\n")
        try answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
        try answer(channel)
        expectClosed(channel, after: .seconds(1))
    }

    @Test func aClientThatKeepsUpIsNeverClosed() throws {
        let channel = try headerTimeoutChannel()
        for _ in 0..<20 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
            try send(channel, "GET /api/summary HTTP/1.1\r\nHost: node\r\n\r\n")
            channel.embeddedEventLoop.advanceTime(by: .seconds(3))
            try answer(channel)
        }
        #expect(channel.isActive)
        while try channel.readInbound(as: HTTPRequestPart.self) != nil {}
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        #expect(try channel.finish().isClean)
    }
}
