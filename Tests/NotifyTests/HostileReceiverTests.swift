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

/// A webhook receiver that answers every request `200` at once, calling `onRequest` first.
final class HealthyReceiver: Sendable {
    let channel: any Channel

    final class Answer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let onRequest: @Sendable () -> Void
        var answered = false
        init(onRequest: @escaping @Sendable () -> Void) { self.onRequest = onRequest }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            onRequest()
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")), promise: nil)
        }
    }

    init(onRequest: @escaping @Sendable () -> Void) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Answer(onRequest: onRequest)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }
}

@Suite struct FairnessTests {
    /// 20 deliveries to a receiver that never answers, queued before 1 to a healthy receiver: the
    /// healthy one does not wait for the slots the hanging receiver holds. Ordering, not wall time:
    /// when the healthy receiver is asked, the hanging one has had at most its 2 slots' connections.
    @Test(.timeLimit(.minutes(2))) func aHangingReceiverDoesNotStarveAHealthyOne() async throws {
        let hanging = try await SilentRelay()
        final class Seen: Sendable { let connections = Atomic<Int>(-1) }
        let seenAtArrival = Seen()
        let healthy = try await HealthyReceiver { seenAtArrival.connections.store(hanging.connections, ordering: .relaxed) }
        let store = try memoryStore("north")
        func draft(_ key: String, _ hook: String) -> OutboxDraft {
            OutboxDraft(key: key, channel: "webhook:\(hook)", recipient: hook, kind: "test", ticket: nil, subject: "s", body: "{}", notBefore: 0)
        }
        try store.enqueue((1...20).map { draft("hang.\($0)", "hang") })
        try store.enqueue([draft("ok", "ok")])
        var secrets = NotificationSecrets()
        secrets.webhookKeys["hang"] = Array(repeating: 7, count: 32)
        secrets.webhookKeys["ok"] = Array(repeating: 8, count: 32)
        let settings = NotificationSettings {
            $0.webhooks = [WebhookSettings(name: "hang", url: "http://127.0.0.1:\(hanging.port)/hook", secretFile: "/unused"),
                           WebhookSettings(name: "ok", url: "http://127.0.0.1:\(healthy.port)/hook", secretFile: "/unused")]
            $0.webhookTimeoutMillis = 300
            $0.maxAttempts = 1
        }
        let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: secrets,
                                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let report = try await dispatcher.drain(until: .nothingDue)
        #expect(report.sent == 1 && report.dead == 20, "\(report)")
        let seen = seenAtArrival.connections.load(ordering: .relaxed)
        #expect((0...2).contains(seen), "the healthy receiver was asked only after \(seen) connections to the hanging one")
        try await hanging.channel.close()
        try await healthy.channel.close()
    }
}
