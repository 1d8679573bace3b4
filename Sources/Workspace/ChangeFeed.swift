import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TicketModel
import TicketStore

/// How far the node is from its hub, as the workspace's banner tells agents.
///
/// `stale` once nothing came from the hub for ``ChangeFeed/Settings/hubQuietMillis``; the `message`
/// is what the banner shows then.
public struct HubHealth: Sendable, Equatable, Encodable {
    /// The coordinator site.
    public var hubSite: String
    /// Milliseconds since the last news from the hub (0 while a sync session with it is open);
    /// `nil` when nothing came from it yet.
    public var lastHeardMillisAgo: Int64?
    public var stale: Bool
    public var message: String

    public init(hubSite: String, lastHeardMillisAgo: Int64?, stale: Bool, message: String) {
        self.hubSite = hubSite
        self.lastHeardMillisAgo = lastHeardMillisAgo
        self.stale = stale
        self.message = message
    }

    /// The health of a node whose store says `contact`: `nil` when there is no hub to hear from (the
    /// coordinator itself, or a store that knows none yet).
    /// - Parameters:
    ///   - connected: whether a sync session with the hub is open now (it counts as hearing from it).
    ///   - now: milliseconds since 1970.
    ///   - quietMillis: how long without news before the health is stale.
    public static func assess(_ contact: HubContact?, connected: Bool, now: Int64, quietMillis: Int64) -> HubHealth? {
        guard let contact else { return nil }
        let hub = contact.hub.rawValue
        let ago: Int64? = connected ? 0 : contact.lastHeard.map { max(0, now - Int64(clamping: $0)) }
        let keepWorking = "you can keep working here: changes sync when it is back."
        guard let ago else {
            return HubHealth(hubSite: hub, lastHeardMillisAgo: nil, stale: true, message: "Not heard from the hub (\(hub)) yet; \(keepWorking)")
        }
        guard ago >= quietMillis else {
            return HubHealth(hubSite: hub, lastHeardMillisAgo: ago, stale: false, message: "In touch with the hub (\(hub)).")
        }
        return HubHealth(hubSite: hub, lastHeardMillisAgo: ago, stale: true,
                         message: "Not heard from the hub (\(hub)) for \(Self.ageText(millis: ago)); \(keepWorking)")
    }

    /// `45 s`, `3 min`, `5 h`, `2 days`: a wait as people say it, rounded down.
    public static func ageText(millis: Int64) -> String {
        let seconds = millis / 1000
        switch seconds {
        case ..<60: return "\(seconds) s"
        case ..<5400: return "\(seconds / 60) min"
        case ..<172_800: return "\(seconds / 3600) h"
        default: return "\(seconds / 86_400) days"
        }
    }

    /// Every key, `lastHeardMillisAgo` `null` when the hub was never heard.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hubSite, forKey: .hubSite)
        try c.encode(lastHeardMillisAgo, forKey: .lastHeardMillisAgo)
        try c.encode(stale, forKey: .stale)
        try c.encode(message, forKey: .message)
    }

    enum CodingKeys: String, CodingKey { case hubSite, lastHeardMillisAgo, stale, message }

    /// What an agent would see change: the hub, whether the banner shows, and its words.
    var gist: String { "\(hubSite)|\(stale)|\(message)" }
}

/// One change of the store, as the feed tells its subscribers.
public struct FeedChange: Sendable, Equatable {
    /// The log's mark after the change (``TicketStore/StoreVersion/block``): grows with every change.
    public var version: Int64
    /// The tickets changed, as lowercase UUIDs; `nil` for "many" (too many to list, or unknown).
    public var tickets: [String]?

    public init(version: Int64, tickets: [String]?) {
        self.version = version
        self.tickets = tickets
    }

    /// Both changes as one: the later version, and the tickets of either (`nil` past `limit`).
    func merged(with other: FeedChange, limit: Int) -> FeedChange {
        guard let mine = tickets, let theirs = other.tickets else { return FeedChange(version: max(version, other.version), tickets: nil) }
        let union = Set(mine).union(theirs)
        return FeedChange(version: max(version, other.version), tickets: union.count > limit ? nil : union.sorted())
    }
}

/// What a subscriber of the ``ChangeFeed`` receives.
public enum FeedEvent: Sendable, Equatable {
    /// The store changed.
    case change(FeedChange)
    /// The hub's health changed, or is repeated (every ``ChangeFeed/Settings/healthMillis``).
    case health(HubHealth)
    /// Nothing happened for a while: a stream writes something so that proxies keep it open.
    case heartbeat
}

/// The node's change feed: one poller per HTTP server that watches the store and tells every open
/// page (through ``FeedSubscription``s) which tickets changed and how far the hub is.
///
/// Every ``Settings/pollMillis`` it reads the store's ``TicketStore/StoreVersion`` on
/// `NIOThreadPool` (never on an event loop); when the version moved it lists the tickets the new
/// blocks touch (``TicketStore/TicketDatabase/changes(since:limit:)``) and posts one
/// ``FeedEvent/change(_:)``. A write by this process, a block applied by a sync session and a write by
/// the CLI into the same store file are all seen, since each adds a block.
///
/// A subscriber that does not keep up loses nothing and grows no queue: what it has not taken yet
/// is merged into one pending change (tickets past ``Settings/maxListedTickets`` become "many"), one
/// pending health and one heartbeat. At most ``Settings/maxStreams`` subscriptions are open at once.
///
/// It is a `Service`: ``run()`` polls until graceful shutdown or cancellation, then ends every
/// subscription. ``poll()`` does one round, for tests and for a first answer before the loop.
///
/// ```swift
/// let feed = ChangeFeed(store: store, connectedSites: { node.connectedSites })
/// guard let subscription = feed.subscribe() else { return }   // full
/// defer { subscription.cancel() }
/// for await events in subscription { for event in events { send(event) } }
/// ```
///
/// ## Topics
/// - ``subscribe()``, ``FeedSubscription``, ``FeedEvent``
/// - ``poll()``, ``run()``, ``finish()``, ``snapshot()``
/// - ``HubHealth``
public final class ChangeFeed: Service, Sendable {
    /// How the feed polls and what it keeps.
    public struct Settings: Sendable, Equatable {
        /// Milliseconds between two reads of the store's version.
        public var pollMillis: Int
        /// How long without news from the hub before the banner shows (node.json `workspace.hubQuietMillis`).
        public var hubQuietMillis: Int
        /// The most subscriptions (open event streams) at once.
        public var maxStreams: Int
        /// The most ticket ids one change lists; past it the change says "many".
        public var maxListedTickets: Int
        /// Milliseconds between heartbeats.
        public var heartbeatMillis: Int
        /// Milliseconds between two health events when nothing changed.
        public var healthMillis: Int

        public init(pollMillis: Int = 500, hubQuietMillis: Int = 60_000, maxStreams: Int = 256, maxListedTickets: Int = 200,
                    heartbeatMillis: Int = 15_000, healthMillis: Int = 30_000) {
            self.pollMillis = pollMillis
            self.hubQuietMillis = hubQuietMillis
            self.maxStreams = maxStreams
            self.maxListedTickets = maxListedTickets
            self.heartbeatMillis = heartbeatMillis
            self.healthMillis = healthMillis
        }
    }

    public let store: TicketDatabase
    public let settings: Settings
    let connectedSites: @Sendable () -> Set<SiteID>
    let now: @Sendable () -> Int64
    let clock: any Clock<Duration>
    let logger: Logger

    struct State {
        var mark: StoreVersion?
        var health: HubHealth?
        var healthSentAt: Int64?
        var heartbeatAt: Int64?
        var subscribers: [Int: FeedSubscription] = [:]
        var nextID = 0
        var finished = false
        var failing = false
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - connectedSites: the sites a sync session is open with now (the node's `SyncNode.connectedSites`):
    ///     the store records a quiet session's frames only at its start and end.
    ///   - now: milliseconds since 1970 (injected so tests decide how long ago the hub spoke).
    ///   - clock: what ``run()`` sleeps on between polls.
    public init(store: TicketDatabase, settings: Settings = Settings(), connectedSites: @escaping @Sendable () -> Set<SiteID> = { [] },
                now: @escaping @Sendable () -> Int64 = { Int64(TicketDatabase.systemMillis()) },
                clock: any Clock<Duration> = ContinuousClock(), logger: Logger = Logger(label: "tierline.live")) {
        self.store = store
        self.settings = settings
        self.connectedSites = connectedSites
        self.now = now
        self.clock = clock
        self.logger = logger
    }

    /// The version last read (``FeedChange/version``), `nil` before the first poll.
    public var version: Int64? { state.withLock { $0.mark?.block } }

    /// The hub's health as last assessed; `nil` before the first poll or when there is no hub.
    public var health: HubHealth? { state.withLock { $0.health } }

    /// How many subscriptions are open.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Whether another subscription would be refused.
    public var isFull: Bool { state.withLock { $0.finished || $0.subscribers.count >= settings.maxStreams } }

    /// A new subscription to every event from now on, or `nil` when ``Settings/maxStreams`` are
    /// open or the feed has finished. End it with ``FeedSubscription/cancel()``.
    public func subscribe() -> FeedSubscription? {
        state.withLock { state -> FeedSubscription? in
            guard !state.finished, state.subscribers.count < settings.maxStreams else { return nil }
            state.nextID += 1
            let id = state.nextID
            let subscription = FeedSubscription(limit: settings.maxListedTickets) { [weak self] in self?.remove(id) }
            state.subscribers[id] = subscription
            return subscription
        }
    }

    private func remove(_ id: Int) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
    }

    /// The current version and health, polling first if the feed has not polled yet.
    public func snapshot() async throws -> (version: Int64, health: HubHealth?) {
        if version == nil { try await poll() }
        return state.withLock { ($0.mark?.block ?? 0, $0.health) }
    }

    /// One round: reads the store's version and the hub's contact (one read, on `NIOThreadPool`), and
    /// posts a change when the version moved, a health event when the health changed or is due again,
    /// and a heartbeat when one is due. The first round only takes the version.
    /// - Throws: what the store throws; nothing is posted then.
    public func poll() async throws {
        let store = store, limit = settings.maxListedTickets
        let since = state.withLock { $0.mark }
        let (scan, contact) = try await offload { (try store.changes(since: since, limit: limit), try store.hubContact()) }
        let now = now()
        let connected = contact.map { connectedSites().contains($0.hub) } ?? false
        let health = HubHealth.assess(contact, connected: connected, now: now, quietMillis: Int64(settings.hubQuietMillis))
        let (events, subscribers) = state.withLock { state -> ([FeedEvent], [FeedSubscription]) in
            // Two rounds at once (the loop and a first snapshot): the later one to finish has nothing new.
            guard state.mark == since else { return ([], []) }
            var events: [FeedEvent] = []
            if let since, scan.version != since {
                events.append(.change(FeedChange(version: scan.version.block, tickets: scan.tickets)))
            }
            state.mark = scan.version
            if let health, health.gist != state.health?.gist || Self.isDue(state.healthSentAt, every: settings.healthMillis, now: now) {
                events.append(.health(health))
                state.healthSentAt = now
            }
            state.health = health
            if Self.isDue(state.heartbeatAt, every: settings.heartbeatMillis, now: now) {
                events.append(.heartbeat)
                state.heartbeatAt = now
            }
            return (events, Array(state.subscribers.values))
        }
        guard !events.isEmpty else { return }
        for subscriber in subscribers { subscriber.post(events) }
    }

    /// Tells subscribers that what the dashboard's facts say of `tickets` (`nil`: many) changed: the
    /// SLA and handoff queues read the facts, which are derived a moment after the change that caused
    /// them, so a page refreshed on the change alone could miss it.
    public func factsDerived(_ tickets: [String]?) {
        let (event, subscribers) = state.withLock { state -> (FeedEvent?, [FeedSubscription]) in
            guard let mark = state.mark else { return (nil, []) }
            return (.change(FeedChange(version: mark.block, tickets: tickets)), Array(state.subscribers.values))
        }
        guard let event else { return }
        for subscriber in subscribers { subscriber.post([event]) }
    }

    static func isDue(_ last: Int64?, every millis: Int, now: Int64) -> Bool {
        guard let last else { return true }
        return now - last >= Int64(millis)
    }

    /// Polls every ``Settings/pollMillis`` until graceful shutdown or cancellation, then ends every
    /// subscription (``finish()``). A failed round is logged (once until one succeeds) and retried.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !state.withLock({ $0.finished }) {
                do {
                    try await poll()
                    if state.withLock({ state in defer { state.failing = false }; return state.failing }) {
                        logger.info("live updates resumed")
                    }
                } catch {
                    if !state.withLock({ state in defer { state.failing = true }; return state.failing }) {
                        logger.warning("live updates cannot read the store; retrying", metadata: ["error": "\(error)"])
                    }
                }
                try? await clock.sleep(for: .milliseconds(settings.pollMillis))
            }
        } onGracefulShutdown: {
            self.finish()
        }
        finish()
    }

    /// Ends every subscription (their event streams close) and refuses new ones.
    public func finish() {
        let subscribers = state.withLock { state in
            state.finished = true
            return Array(state.subscribers.values)
        }
        // Outside the lock: a subscription leaving the feed takes it.
        for subscriber in subscribers { subscriber.cancel() }
    }
}

/// One subscriber's events: an `AsyncSequence` of batches, each what came since the subscriber last
/// took one (at most one change, one health, one heartbeat, in that order).
///
/// Nothing queues up: events not taken yet are merged (``FeedChange`` lists past the feed's limit
/// become "many"). The sequence ends after ``cancel()`` or the feed's ``ChangeFeed/finish()``; a
/// task iterating it that is cancelled ends it too.
public final class FeedSubscription: AsyncSequence, Sendable {
    public typealias Element = [FeedEvent]

    struct Pending {
        var change: FeedChange?
        var health: HubHealth?
        var heartbeat = false
    }

    private let pending = Mutex(Pending())
    private let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let limit: Int

    init(limit: Int, onEnd: @escaping @Sendable () -> Void) {
        self.limit = limit
        // One wake-up is enough however many posts come before the subscriber looks.
        (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { _ in onEnd() }
    }

    func post(_ events: [FeedEvent]) {
        let limit = limit
        pending.withLock { pending in
            for event in events {
                switch event {
                case .change(let change): pending.change = pending.change.map { $0.merged(with: change, limit: limit) } ?? change
                case .health(let health): pending.health = health
                case .heartbeat: pending.heartbeat = true
                }
            }
        }
        continuation.yield(())
    }

    /// The events waiting now, without waiting for any: what came since the last batch taken.
    public func drain() -> [FeedEvent] {
        pending.withLock { pending in
            var out: [FeedEvent] = []
            if let change = pending.change { out.append(.change(change)) }
            if let health = pending.health { out.append(.health(health)) }
            if pending.heartbeat { out.append(.heartbeat) }
            pending = Pending()
            return out
        }
    }

    /// Ends the sequence and leaves the feed. Idempotent.
    public func cancel() { continuation.finish() }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(signals: signals.makeAsyncIterator(), subscription: self) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var signals: AsyncStream<Void>.AsyncIterator
        let subscription: FeedSubscription

        /// The next batch; `nil` once the subscription ended.
        public mutating func next() async -> [FeedEvent]? {
            while await signals.next() != nil {
                let events = subscription.drain()
                if !events.isEmpty { return events }
            }
            return nil
        }
    }
}
