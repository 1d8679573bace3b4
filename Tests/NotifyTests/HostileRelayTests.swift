import Foundation
import NIOCore
import NIOPosix
import Notify
import Testing

/// An SMTP server that plays a script: on connecting it sends `greeting`; to each command line it
/// sends the next of `answers` (each in one write, so in one packet), then reads and ignores the rest.
/// With `dripMillis` it sends the greeting one byte at a time, one every `dripMillis`, without end.
final class ScriptedRelay: Sendable {
    let channel: any Channel

    final class Script: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let greeting: String
        var answers: [String]
        let dripMillis: Int?
        var pending: [UInt8] = []
        var drip: RepeatedTask?

        init(greeting: String, answers: [String], dripMillis: Int?) {
            (self.greeting, self.answers, self.dripMillis) = (greeting, answers, dripMillis)
        }

        func channelActive(context: ChannelHandlerContext) {
            if let dripMillis {
                let bytes = Array(greeting.utf8)
                var next = 0
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                drip = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(Int64(dripMillis))) { _ in
                    bound.value.writeAndFlush(NIOAny(ByteBuffer(bytes: [bytes[next % bytes.count]])), promise: nil)
                    next += 1
                }
            } else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += unwrapInboundIn(data).readableBytesView
            while !answers.isEmpty, let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                pending.removeSubrange(...end)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answers.removeFirst())), promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            drip?.cancel()
            context.fireChannelInactive()
        }
    }

    init(greeting: String, answers: [String] = [], dripMillis: Int? = nil) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Script(greeting: greeting, answers: answers, dripMillis: dripMillis))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }
}

@Suite struct HostileRelayTests {
    let message = MailMessage(from: "help@example.org", to: "anna@example.org", subject: "s", body: "b", key: "k", date: .now)

    /// Sends the message with `settings`: `"sent"`, else `"CODE TRANSIENT DETAIL"`; `nil` if it took over 30 s.
    func attempt(_ settings: SMTPSettings) async throws -> String? {
        try await within(30) { [message] in
            do {
                try await SMTPClient(settings: settings, password: nil).send(message)
                return "sent"
            } catch let error as NotifyError {
                return "\(error.code) \(error.isTransient) \(error.detail)"
            } catch {
                return "\(error)"
            }
        }
    }

    /// RFC 3207 §5, CVE-2021-33515: replies sent in plain text after `220` to STARTTLS, which a
    /// man in the middle can add, are never read as the replies of the protected session.
    @Test(.timeLimit(.minutes(1))) func repliesInjectedAfterTheSTARTTLSReplyEndTheSession() async throws {
        let injected = "220 go ahead\r\n250 injected ehlo\r\n250 injected mail\r\n250 injected rcpt\r\n354 injected data\r\n250 injected queued\r\n221 bye\r\n"
        let relay = try await ScriptedRelay(greeting: "220 hostile ESMTP\r\n", answers: ["250-hostile\r\n250 STARTTLS\r\n", injected])
        let settings = SMTPSettings(host: "127.0.0.1", port: relay.port, security: .starttls, from: "help@example.org", timeoutMillis: 2000)
        let outcome = try await attempt(settings)
        let text = try #require(outcome, "the session did not end within 30 s")
        #expect(text != "sent", "replies injected in plain text were taken as the relay's: the message was marked sent")
        #expect(text.hasPrefix("smtpProtocol true") && text.contains("STARTTLS"), "\(text)")
        try await relay.channel.close()
    }

    /// The reply timeout is a deadline, not an idle timer: a greeting dripped one byte every 50 ms
    /// (never ending) fails after about `timeoutMillis`.
    @Test(.timeLimit(.minutes(1))) func aDrippedGreetingTimesOut() async throws {
        let relay = try await ScriptedRelay(greeting: "220-" + String(repeating: "a", count: 30) + "\r\n", dripMillis: 50)
        let settings = SMTPSettings(host: "127.0.0.1", port: relay.port, security: .none, from: "help@example.org", timeoutMillis: 400)
        let outcome = try await attempt(settings)
        let text = try #require(outcome, "a dripping relay held the delivery past 30 s (its timeoutMillis is 400)")
        #expect(text.hasPrefix("timeout true") && text.contains("the greeting"), "\(text)")
        try await relay.channel.close()
    }
}
