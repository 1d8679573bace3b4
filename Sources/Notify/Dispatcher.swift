import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import TicketStore

/// Sends what is in the outbox: the node's one sender of e-mails and webhooks.
///
/// A loop reads the due deliveries (``TicketDatabase/dueDeliveries(now:limit:perDestination:)``),
/// sends up to ``concurrency`` at once, at most ``maxPerDestination`` of them to one destination (so
/// a receiver that hangs delays only its own deliveries), and marks each: sent once the receiver
/// confirmed it (the relay's `250` after DATA, a 2xx answer), else tried again after a ``Backoff``
/// wait, or dead after ``NotificationSettings/maxAttempts`` or at once when retrying cannot help. It
/// sleeps until the next delivery is due, or ``NotificationSettings/pollMillis`` at most, to notice
/// rows other processes write.
///
/// Delivery is at least once: a crash between the receiver's confirmation and the mark sends the
/// delivery again after the restart, with the same key (`Message-ID`, `webhook-id`), so the receiver
/// can drop the repeat. Two dispatchers on one store (serve and `tierline outbox send`) may both send
/// a due delivery, with the same effect.
///
/// ```swift
/// let secrets = try settings.loadSecrets()
/// let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: secrets, logger: logger)
/// try await ServiceGroup(services: [node, dispatcher], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// Routing by channel: `email` to ``NotificationSettings/smtp``, `webhook:NAME` to the settings'
/// webhook NAME, `integration:NAME` to the reply webhook registered for intake integration NAME.
/// On graceful shutdown the loop stops at once; deliveries cut short stay pending and are sent again.
public struct NotificationDispatcher: Service {
    public let store: TicketDatabase
    public let settings: NotificationSettings
    let secrets: NotificationSecrets
    let logger: Logger
    let now: @Sendable () -> UInt64
    let clock: any Clock<Duration>
    /// Most deliveries in flight at once.
    public var concurrency = 8
    /// Most deliveries in flight at once to one destination (channel and recipient): a receiver that
    /// hangs holds at most these slots, and the others keep flowing.
    public var maxPerDestination = 2

    /// - Parameters:
    ///   - secrets: what ``NotificationSettings/loadSecrets()`` read.
    ///   - now: the time, ms since 1970 (tests pass a fixed one).
    ///   - clock: what the loop sleeps on.
    public init(store: TicketDatabase, settings: NotificationSettings, secrets: NotificationSecrets, logger: Logger,
                now: @escaping @Sendable () -> UInt64 = { TicketDatabase.systemMillis() },
                clock: any Clock<Duration> = ContinuousClock()) {
        self.store = store
        self.settings = settings
        self.secrets = secrets
        self.logger = logger
        self.now = now
        self.clock = clock
    }

    /// What one pass of the loop did.
    public struct Report: Sendable, Codable, Equatable {
        public var sent = 0
        /// Failed attempts that will be tried again.
        public var retrying = 0
        /// Deliveries that went to the dead letters.
        public var dead = 0
        public init() {}
    }

    /// When ``drain(until:)`` returns.
    public enum Until: Sendable {
        /// Nothing is due now (a retry scheduled for later is left for later).
        case nothingDue
        /// Nothing is pending: every delivery is sent or dead (waits out retries).
        case nothingPending
    }

    /// Runs until graceful shutdown (or cancellation). A failing store read is logged and retried
    /// after ``NotificationSettings/pollMillis``.
    public func run() async throws {
        logger.info("outbox: sending", metadata: [
            "smtp": "\(settings.smtp.map { "\($0.host):\($0.port) \($0.security.rawValue)" } ?? "none")",
            "webhooks": "\(settings.webhooks.map(\.name).joined(separator: ","))",
        ])
        try await HTTPClient.withHTTPClient(configuration: WebhookSender.configuration) { client in
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do { _ = try await loop(client: client, until: nil) } catch is CancellationError { return } catch {
                        logger.error("outbox: cannot read the deliveries: \(error)")
                        try await clock.sleep(for: .milliseconds(settings.pollMillis))
                    }
                }
            }
        }
    }

    /// Sends in the foreground until `until` holds (for `tierline outbox send` and for tests).
    public func drain(until: Until) async throws -> Report {
        try await HTTPClient.withHTTPClient(configuration: WebhookSender.configuration) { client in
            try await loop(client: client, until: until)
        }
    }

    enum Finished: Sendable {
        case delivery(Int64, Outcome)
        case timer
    }

    enum Outcome: Sendable {
        case sent, retrying, dead, interrupted
    }

    func loop(client: HTTPClient, until: Until?) async throws -> Report {
        let sender = WebhookSender(client: client, timeoutMillis: settings.webhookTimeoutMillis)
        return try await withThrowingTaskGroup(of: Finished.self) { group in
            var report = Report()
            // The deliveries in flight, by id, with their destinations; how many each destination has.
            var inFlight: [Int64: String] = [:]
            var busy: [String: Int] = [:]
            var timerRunning = false
            var lastPrune: UInt64?
            defer { group.cancelAll() }
            while !Task.isCancelled {
                let now = now()
                if lastPrune.map({ now >= $0 + 60_000 }) ?? true {
                    lastPrune = now
                    await pruneSent(now: now)
                }
                if inFlight.count < concurrency {
                    let due = try await store.dueDeliveries(now: now, limit: concurrency * 2 + inFlight.count, perDestination: maxPerDestination)
                    for entry in due where inFlight.count < concurrency {
                        guard let id = entry.id, inFlight[id] == nil else { continue }
                        let destination = entry.channel + "\u{0}" + entry.recipient
                        guard busy[destination, default: 0] < maxPerDestination else { continue }
                        inFlight[id] = destination
                        busy[destination, default: 0] += 1
                        group.addTask { .delivery(id, await deliver(entry, sender: sender)) }
                    }
                }
                let next = inFlight.isEmpty ? try await store.nextDeliveryDue() : nil
                if inFlight.isEmpty {
                    switch until {
                    case .nothingDue?: if next.map({ $0 > Int64(now) }) ?? true { return report }
                    case .nothingPending?: if next == nil { return report }
                    case nil: break
                    }
                }
                if !timerRunning && inFlight.count < concurrency {
                    // Wake for the next due delivery, or to look again for rows other processes wrote.
                    let wait = next.map { Int(($0 - Int64(now)).clamped(to: 1...Int64(settings.pollMillis))) } ?? settings.pollMillis
                    timerRunning = true
                    group.addTask { [clock] in
                        try await clock.sleep(for: .milliseconds(wait))
                        return .timer
                    }
                }
                switch try await group.next() {
                case .delivery(let id, let outcome)?:
                    if let destination = inFlight.removeValue(forKey: id) {
                        busy[destination, default: 1] -= 1
                        if busy[destination] == 0 { busy[destination] = nil }
                    }
                    switch outcome {
                    case .sent: report.sent += 1
                    case .retrying: report.retrying += 1
                    case .dead: report.dead += 1
                    case .interrupted: break
                    }
                case .timer?: timerRunning = false
                case nil: break
                }
            }
            throw CancellationError()
        }
    }

    /// Deletes the sent deliveries older than ``NotificationSettings/keepSentDays``, in batches of 500
    /// (each its own short transaction, so a write waits for one batch at most), 20 batches at most
    /// per call. A failure is logged; the next call tries again.
    func pruneSent(now: UInt64) async {
        let before = now - min(now, UInt64(settings.keepSentDays) * 86_400_000)
        var deleted = 0
        do {
            for _ in 0..<20 {
                let batch = try await store.pruneDeliveries(before: before, limit: 500)
                deleted += batch
                if batch < 500 { break }
            }
        } catch {
            logger.error("outbox: cannot delete old sent deliveries: \(error)")
        }
        if deleted > 0 { logger.info("outbox: deleted sent deliveries older than keepSentDays", metadata: ["outbox.deleted": "\(deleted)", "outbox.keepSentDays": "\(settings.keepSentDays)"]) }
    }

    /// Sends one delivery and records how it went. Never throws: a failure is the delivery's state.
    func deliver(_ entry: OutboxEntry, sender: WebhookSender) async -> Outcome {
        guard let id = entry.id else { return .interrupted }
        var meta: Logger.Metadata = ["outbox.id": "\(id)", "outbox.channel": "\(entry.channel)", "outbox.kind": "\(entry.kind)"]
        do {
            try await send(entry, sender: sender)
            do { try await store.markSent(id) } catch {
                // Sent but not marked: it will be sent again, with the same key.
                logger.error("outbox: delivery \(id) was sent but could not be marked: \(error)", metadata: meta)
                return .interrupted
            }
            logger.debug("outbox: sent", metadata: meta)
            return .sent
        } catch {
            if Task.isCancelled { return .interrupted }
            let attempt = entry.attempts + 1
            let retry = error.isTransient && attempt < settings.maxAttempts
            var random = SystemRandomNumberGenerator()
            let retryAt = retry ? now() + UInt64(Backoff(minMillis: settings.backoffMinMillis, maxMillis: settings.backoffMaxMillis)
                .delay(afterAttempt: attempt, using: &random)) : nil
            meta["outbox.attempt"] = "\(attempt)"
            // Servers' words are in the detail: no control character reaches the logs or `outbox list`.
            let detail = SMTPReply.printable(error.detail)
            meta["error"] = "\(detail)"
            do { try await store.markFailed(id, error: detail, retryAt: retryAt) } catch {
                logger.error("outbox: delivery \(id) failed and could not be marked: \(error)", metadata: meta)
                return .interrupted
            }
            if retry {
                logger.debug("outbox: attempt failed, will retry", metadata: meta)
                return .retrying
            }
            logger.info("outbox: delivery is dead (`tierline outbox retry` sends it again)", metadata: meta)
            return .dead
        }
    }

    /// Sends one delivery by its channel.
    func send(_ entry: OutboxEntry, sender: WebhookSender) async throws(NotifyError) {
        if entry.channel == "email" {
            guard let smtp = settings.smtp else {
                throw NotifyError(.settings, "no mail relay: add notifications.smtp (host, from, …) to node.json", transient: false)
            }
            let message = MailMessage(from: smtp.from, to: entry.recipient, subject: entry.subject, body: entry.body, key: entry.key,
                                      date: Date(timeIntervalSince1970: Double(now()) / 1000))
            try await SMTPClient(settings: smtp, password: secrets.smtpPassword).send(message)
        } else if entry.channel.hasPrefix("webhook:") {
            let name = String(entry.channel.dropFirst("webhook:".count))
            guard let hook = settings.webhooks.first(where: { $0.name == name }), let key = secrets.webhookKeys[name] else {
                throw NotifyError(.unknownChannel, "no webhook named \(name): add {\"name\": \"\(name)\", \"url\": …, \"secretFile\": …} to notifications.webhooks in node.json, then `tierline outbox retry`", transient: false)
            }
            try await sender.send(id: entry.key, body: entry.body, to: WebhookTarget(url: hook.url, key: key, name: "webhook \(name)"), now: now())
        } else if entry.channel.hasPrefix("integration:") {
            let name = String(entry.channel.dropFirst("integration:".count))
            let registered: ReplyWebhook?
            do { registered = try await store.replyWebhook(integration: name) } catch {
                throw NotifyError(.connection, "cannot read the reply webhook of integration \(name): \(error)", transient: true)
            }
            guard let hook = registered, let key = WebhookSignature.key(fromSecret: hook.secret) else {
                throw NotifyError(.unknownChannel, "integration \(name) has no reply webhook (or its token is revoked): `tierline intake token reply-url \(name) URL` registers one, then `tierline outbox retry`", transient: false)
            }
            try await sender.send(id: entry.key, body: entry.body, to: WebhookTarget(url: hook.url, key: key, name: "integration \(name)"), now: now())
        } else {
            throw NotifyError(.unknownChannel, "unknown channel \(entry.channel.debugDescription): channels are email, webhook:NAME and integration:NAME", transient: false)
        }
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}

/// The dispatcher prints what it sends to (relay host, webhook names), never its secrets, its store
/// (with the site key) or webhook URLs (whose paths may hold tokens): ServiceLifecycle logs each
/// service with `String(describing:)`.
extension NotificationDispatcher: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        let smtp = settings.smtp.map { "\($0.host):\($0.port)" } ?? "none"
        return "NotificationDispatcher(smtp \(smtp), webhooks [\(settings.webhooks.map(\.name).joined(separator: ","))], concurrency \(concurrency), secrets redacted)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["dispatcher": description], displayStyle: .struct) }
}
