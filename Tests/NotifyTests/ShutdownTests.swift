import Logging
import NIOCore
import NIOPosix
import Notify
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing
import TicketStore

@Suite struct ShutdownTests {
    final class Accepted: Sendable {
        let count = Atomic<Int>(0)
    }

    /// A relay that accepts connections and never says a word: a delivery to it waits on its greeting.
    @Test func gracefulShutdownStopsAtOnceAndLeavesTheDeliveryInFlightPending() async throws {
        let accepted = Accepted()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.count.add(1, ordering: .relaxed)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let store = try memoryStore("north")
        try store.enqueue([OutboxDraft(key: "slow", channel: "email", recipient: "anna@example.org", kind: "test", ticket: nil,
                                       subject: "s", body: "b", notBefore: 0)])
        let settings = NotificationSettings {
            $0.smtp = SMTPSettings(host: "127.0.0.1", port: port, security: .none, from: "help@example.org", timeoutMillis: 60_000)
        }
        let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: NotificationSecrets(),
                                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await dispatcher.run() }
                try await eventually(10, "the dispatcher connects to the relay") { accepted.count.load(ordering: .relaxed) == 1 }
                let asked = ContinuousClock.now
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(ContinuousClock.now - asked < .seconds(5), "the dispatcher waited for the relay's 60 s timeout")
            }
        }
        let entry = try #require(try store.outbox().first)
        #expect(entry.state == .pending && entry.attempts == 0 && entry.lastError == nil)
        try await server.close()
    }
}
