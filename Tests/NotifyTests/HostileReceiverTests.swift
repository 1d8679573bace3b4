import Foundation
import Logging
import NIOCore
import NIOPosix
import Notify
import Synchronization
import TestSupport
import Testing
import TicketStore

/// A webhook receiver that answers `200` with a chunked body it drips, one byte every 50 ms, forever.
final class DrippingReceiver: Sendable {
    let channel: any Channel

    final class Dripper: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var drip: RepeatedTask?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard drip == nil else { return }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")), promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            drip = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { _ in
                bound.value.writeAndFlush(NIOAny(ByteBuffer(string: "1\r\nx\r\n")), promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            drip?.cancel()
            context.fireChannelInactive()
        }
    }

    init() async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Dripper()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }
}

/// Runs `body`, or gives up after `seconds`: `nil` then.
func within<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: .seconds(seconds)); return nil }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

@Suite struct HostileReceiverTests {
    @Test(.timeLimit(.minutes(1))) func aReceiverDrippingItsBodyHoldsADeliveryOnlyAboutTheTimeout() async throws {
        let receiver = try await DrippingReceiver()
        let store = try memoryStore("north")
        try store.enqueue([OutboxDraft(key: "drip", channel: "webhook:drip", recipient: "x", kind: "test", ticket: nil,
                                       subject: "s", body: "{}", notBefore: 0)])
        var secrets = NotificationSecrets()
        secrets.webhookKeys["drip"] = Array(repeating: 7, count: 32)
        let settings = NotificationSettings {
            $0.webhooks = [WebhookSettings(name: "drip", url: "http://127.0.0.1:\(receiver.port)/hook", secretFile: "/unused")]
            $0.webhookTimeoutMillis = 300
        }
        let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: secrets,
                                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        // Well over the 300 ms timeout, with room for a machine busy with the whole suite.
        let report = try await within(30) { try await dispatcher.drain(until: .nothingDue) }
        #expect(report != nil, "the dripped body held the delivery past 30 s")
        #expect(report?.sent == 1, "the 200 in the answer's head is the receiver's answer: \(String(describing: report))")
        try await receiver.channel.close()
    }
}
