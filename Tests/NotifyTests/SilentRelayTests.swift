import Foundation
import Logging
import NIOCore
import NIOPosix
import Notify
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing
import TicketStore

/// A relay that accepts connections and never says a word: a delivery to it waits on its greeting.
final class SilentRelay: Sendable {
    let channel: any Channel
    let counter: Counter
    final class Counter: Sendable { let count = Atomic<Int>(0) }

    init() async throws {
        let box = Counter()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                box.count.add(1, ordering: .relaxed)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        counter = box
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var connections: Int { counter.count.load(ordering: .relaxed) }

    func smtp(timeoutMillis: Int) -> SMTPSettings {
        SMTPSettings(host: "127.0.0.1", port: port, security: .none, from: "help@example.org", timeoutMillis: timeoutMillis)
    }
}

@Suite struct SilentRelayTests {
    @Test(.timeLimit(.minutes(1))) func gracefulShutdownStopsAtOnceAndLeavesTheDeliveryInFlightPending() async throws {
        let relay = try await SilentRelay()
        let store = try memoryStore("north")
        try store.enqueue([OutboxDraft(key: "slow", channel: "email", recipient: "anna@example.org", kind: "test", ticket: nil,
                                       subject: "s", body: "b", notBefore: 0)])
        let dispatcher = NotificationDispatcher(store: store, settings: NotificationSettings { $0.smtp = relay.smtp(timeoutMillis: 60_000) },
                                                secrets: NotificationSecrets(), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await dispatcher.run() }
                try await eventually(10, "the dispatcher connects to the relay") { relay.connections == 1 }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // Had the dispatcher waited out the relay's 60 s timeout, the attempt and its error would be recorded.
        let entry = try #require(try store.outbox().first)
        #expect(entry.state == .pending && entry.attempts == 0 && entry.lastError == nil)
        try await relay.channel.close()
    }

    @Test(.timeLimit(.minutes(1))) func aRelayThatNeverGreetsTimesOutNamingTheStep() async throws {
        let relay = try await SilentRelay()
        let message = MailMessage(from: "help@example.org", to: "anna@example.org", subject: "s", body: "b", key: "k", date: .now)
        do {
            try await SMTPClient(settings: relay.smtp(timeoutMillis: 300), password: nil).send(message)
            Issue.record("a silent relay took the message")
        } catch {
            #expect(error.code == .timeout && error.isTransient)
            #expect(error.detail.contains("the greeting timed out"), "\(error.detail)")
        }
        try await relay.channel.close()
    }
}
