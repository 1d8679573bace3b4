import Foundation
import Logging
import Synchronization
import Notify
import TestSupport
import Testing
import TicketStore

@Suite struct DispatcherTests {
    func draft(_ key: String, channel: String, recipient: String = "x") -> OutboxDraft {
        OutboxDraft(key: key, channel: channel, recipient: recipient, kind: "test", ticket: nil, subject: "s", body: "{}", notBefore: 0)
    }

    func dispatcher(_ store: TicketDatabase, _ configure: (inout NotificationSettings) -> Void = { _ in }) -> NotificationDispatcher {
        NotificationDispatcher(store: store, settings: NotificationSettings(configure), secrets: NotificationSecrets(),
                               logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    @Test func deliveriesThatCannotBeRoutedAreDeadAtOnceWithWhatToDo() async throws {
        let store = try memoryStore("north")
        try store.enqueue([draft("a", channel: "webhook:oncall"), draft("b", channel: "integration:chat"), draft("c", channel: "pigeon"),
                           draft("d", channel: "email", recipient: "anna@example.org")])
        let report = try await dispatcher(store).drain(until: .nothingDue)
        #expect(report.dead == 4 && report.sent == 0)
        let dead = Dictionary(uniqueKeysWithValues: try store.outbox(state: .dead).map { ($0.key, $0.lastError ?? "") })
        #expect(dead["a"]?.contains("notifications.webhooks") == true)
        #expect(dead["b"]?.contains("tierline intake token reply-url chat URL") == true)
        #expect(dead["c"]?.contains("unknown channel") == true)
        #expect(dead["d"]?.contains("notifications.smtp") == true)
        #expect(try store.retryDeliveries() == 4)
        #expect(try await store.outboxSummary().pending == 4)
    }

    /// The dispatcher's time, set by the test: a retry is due when the test says, however slow the machine.
    final class FixedTime: Sendable {
        let millis = Atomic<UInt64>(1_800_000_000_000)
        var now: UInt64 { millis.load(ordering: .relaxed) }
    }

    @Test func aRefusedConnectionIsRetriedLaterThenDead() async throws {
        let store = try memoryStore("north")
        // A Slack-style URL: the token is the path's last part.
        let hook = WebhookSettings(name: "closed", url: "http://127.0.0.1:9/services/T0/B0/SECRETPATH?token=q", secretFile: "/unused")
        try store.enqueue([draft("k", channel: "webhook:closed")])
        var secrets = NotificationSecrets()
        secrets.webhookKeys["closed"] = Array(repeating: 7, count: 32)
        let settings = NotificationSettings { $0.webhooks = [hook]; $0.maxAttempts = 2; $0.backoffMinMillis = 50; $0.backoffMaxMillis = 100; $0.webhookTimeoutMillis = 500 }
        let time = FixedTime()
        let sender = NotificationDispatcher(store: store, settings: settings, secrets: secrets,
                                            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, now: { time.now })
        let first = try await sender.drain(until: .nothingDue)
        #expect(first.retrying == 1 && first.dead == 0)
        let entry = try #require(try store.outbox().first)
        #expect(entry.state == .pending && entry.attempts == 1)
        #expect((Int64(time.now) + 50...Int64(time.now) + 100).contains(entry.nextAttempt), "the first retry waits backoffMinMillis…2×")
        #expect(entry.lastError?.contains("POST http://127.0.0.1:9 (webhook closed)") == true, "\(entry.lastError ?? "")")
        #expect(entry.lastError?.contains("SECRETPATH") == false && entry.lastError?.contains("services") == false, "the URL's path stays out of lastError")
        #expect(try await sender.drain(until: .nothingDue) == NotificationDispatcher.Report(), "nothing is due before the retry")
        time.millis.add(100, ordering: .relaxed)
        let second = try await sender.drain(until: .nothingDue)
        #expect(second.dead == 1, "the second of maxAttempts 2 failed: dead")
        #expect(try await store.outboxSummary().dead == 1)
    }
}

@Suite struct PruneTests {
    func draft(_ key: String) -> OutboxDraft {
        OutboxDraft(key: key, channel: "webhook:gone", recipient: "gone", kind: "test", ticket: nil, subject: "s", body: "customer text", notBefore: 0)
    }

    /// Sent rows older than keepSentDays are deleted by the dispatcher; newer sent rows, dead rows and
    /// pending rows stay; `pruneDeliveries(includingDead:)` deletes old dead rows too.
    @Test func theDispatcherDeletesOldSentDeliveriesOnly() async throws {
        let day: UInt64 = 86_400_000
        let clock = TestClock()
        let store = try memoryStore("north", clock: clock)
        try store.enqueue([draft("old"), draft("dead"), draft("new"), draft("later")])
        let ids = Dictionary(uniqueKeysWithValues: try store.outbox().map { ($0.key, $0.id!) })
        try await store.markSent(ids["old"]!)
        try await store.markFailed(ids["dead"]!, error: "x", retryAt: nil)
        clock.advance(5 * day)
        try await store.markSent(ids["new"]!)
        // "later" stays pending, not due for a long time.
        try await store.markFailed(ids["later"]!, error: "x", retryAt: clock.now + 3650 * day)
        let start = clock.now
        let dispatcher = NotificationDispatcher(store: store, settings: NotificationSettings { $0.keepSentDays = 30 }, secrets: NotificationSecrets(),
                                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, now: { start + 24 * day })
        _ = try await dispatcher.drain(until: .nothingDue)
        #expect(Set(try store.outbox().map(\.key)) == ["old", "dead", "new", "later"], "30 days have not passed since any was sent")
        let after = NotificationDispatcher(store: store, settings: NotificationSettings { $0.keepSentDays = 30 }, secrets: NotificationSecrets(),
                                           logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, now: { start + 28 * day })
        _ = try await after.drain(until: .nothingDue)
        #expect(Set(try store.outbox().map(\.key)) == ["dead", "new", "later"], "the row sent 33 days ago is deleted, the dead and pending ones stay")
        #expect(try await store.pruneDeliveries(before: start + 28 * day, includingDead: true) == 2)
        #expect(Set(try store.outbox().map(\.key)) == ["later"], "pending rows are never pruned")
    }

    @Test func keepSentDaysIsBounded() throws {
        #expect(NotificationSettings().keepSentDays == 30)
        #expect(throws: NotifyError.self) { try NotificationSettings { $0.keepSentDays = 0 }.validate() }
        let decoded = try JSONDecoder().decode(NotificationSettings.self, from: Data(#"{"keepSentDays": 7}"#.utf8))
        #expect(decoded.keepSentDays == 7)
    }
}

@Suite struct SettingsTests {
    func decode(_ json: String) throws -> NotificationSettings {
        try JSONDecoder().decode(NotificationSettings.self, from: Data(json.utf8))
    }

    @Test func leftOutSettingsKeepTheirDefaults() throws {
        let settings = try decode(#"{"smtp": {"host": "relay.example.org", "from": "help@example.org"}, "maxAttempts": 3}"#)
        #expect(settings.maxAttempts == 3 && settings.pollMillis == 1000 && settings.webhooks.isEmpty)
        #expect(settings.smtp?.port == 587 && settings.smtp?.security == .starttls && settings.smtp?.timeoutMillis == 30_000)
        #expect(try decode(#"{"smtp": {"host": "h", "from": "a@b", "security": "tls"}}"#).smtp?.port == 465)
        try settings.validate()
    }

    @Test func aPasswordIsNeverSentInPlainText() throws {
        let settings = try decode(#"{"smtp": {"host": "h", "from": "a@b", "security": "none", "username": "u", "passwordFile": "p"}}"#)
        #expect(throws: NotifyError.self) { try settings.validate() }
    }

    @Test func aMissingSecretFileIsAClearError() throws {
        let settings = NotificationSettings { $0.webhooks = [WebhookSettings(name: "oncall", url: "https://x.example/h", secretFile: "/nonexistent/oncall.whsec")] }
        do {
            _ = try settings.loadSecrets()
            Issue.record("a missing secret file was accepted")
        } catch {
            #expect(error.detail.contains("notifications.webhooks[0].secretFile") && error.detail.contains("/nonexistent/oncall.whsec"))
        }
    }
}
