import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore
import Workspace

/// The change feed: what it sees of a store's writes, what its subscribers receive, and the hub's
/// health. Each test polls by hand (``ChangeFeed/poll()``); none runs the timed loop.
@Suite struct ChangeFeedTests {
    static let start: UInt64 = 1_790_000_000_000

    /// The events a subscription has waiting (``ChangeFeed/poll()`` posts before it returns).
    func waiting(_ subscription: FeedSubscription) -> [FeedEvent] { subscription.drain() }

    /// A feed over `store` that has taken the store's mark, and a subscription to it.
    func watching(_ store: TicketDatabase, _ settings: ChangeFeed.Settings = ChangeFeed.Settings()) async throws -> (ChangeFeed, FeedSubscription) {
        let feed = ChangeFeed(store: store, settings: settings, now: { Int64(Self.start) })
        try await feed.poll()
        return (feed, try #require(feed.subscribe()))
    }

    func changes(_ events: [FeedEvent]) -> [FeedChange] {
        events.compactMap { if case .change(let change) = $0 { change } else { nil } }
    }

    func healths(_ events: [FeedEvent]) -> [HubHealth] {
        events.compactMap { if case .health(let health) = $0 { health } else { nil } }
    }

    @Test func seesALocalWriteAndListsItsTicket() async throws {
        let store = try memoryStore("north")
        let (feed, subscription) = try await watching(store)
        let first = try #require(feed.version)
        defer { subscription.cancel() }

        let ticket = try store.createTicket(TicketDraft(subject: "Printer offline"))
        try await feed.poll()

        let events = waiting(subscription)
        let change = try #require(changes(events).first)
        #expect(change.tickets == [ticket.id.lowercased()])
        #expect(change.version > first)
        #expect(feed.version == change.version)
        // Nothing new: the next round posts no change.
        let again = try #require(feed.subscribe())
        defer { again.cancel() }
        try await feed.poll()
        #expect(changes(waiting(again)).isEmpty)
    }

    @Test func seesABlockAppliedFromAnotherReplica() async throws {
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", role: .laptop, key: southKey)
        try admit([(north, northKey), (south, southKey)])
        let (feed, subscription) = try await watching(north)
        defer { subscription.cancel() }

        let ticket = try south.createTicket(TicketDraft(subject: "VPN down"))
        _ = try south.update(ticket.displayNumber, [(.assignee, .text("sam"))])
        let report = try north.apply(try south.blocks(after: try north.vector()))
        #expect(report.applied >= 2 && report.held == 0 && report.refused.isEmpty)
        try await feed.poll()

        let change = try #require(changes(waiting(subscription)).first)
        #expect(change.tickets == [ticket.id.lowercased()])
    }

    /// The CLI writes into the node's store file through its own connection: the feed sees it.
    @Test func seesAWriteThroughAnotherConnection() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("feed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("store.sqlite").path
        let key = SiteKey.generate()
        let node = try TicketDatabase(try TicketDatabase.openPool(path: path), key: key)
        try node.initialize(site: SiteID("north"), role: .site)
        let cli = try TicketDatabase(try TicketDatabase.openPool(path: path), key: key)

        let (feed, subscription) = try await watching(node)
        defer { subscription.cancel() }
        let ticket = try cli.createTicket(TicketDraft(subject: "Badge reader stuck"))
        try await feed.poll()

        #expect(changes(waiting(subscription)).first?.tickets == [ticket.id.lowercased()])
    }

    @Test func saysManyPastTheLimit() async throws {
        let store = try memoryStore("north")
        let (feed, subscription) = try await watching(store, ChangeFeed.Settings(maxListedTickets: 2))
        defer { subscription.cancel() }
        for n in 1...3 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        try await feed.poll()

        let change = try #require(changes(waiting(subscription)).first)
        #expect(change.tickets == nil)
    }

    /// A subscriber that does not take its events gets one change with every ticket, not a queue.
    @Test func mergesWhatASlowSubscriberHasNotTaken() async throws {
        let store = try memoryStore("north")
        let (feed, subscription) = try await watching(store)
        defer { subscription.cancel() }
        let a = try store.createTicket(TicketDraft(subject: "First"))
        try await feed.poll()
        let b = try store.createTicket(TicketDraft(subject: "Second"))
        try await feed.poll()

        let events = waiting(subscription)
        #expect(changes(events).count == 1)
        #expect(changes(events).first?.tickets == [a.id.lowercased(), b.id.lowercased()].sorted())
        #expect(changes(events).first?.version == feed.version)
    }

    @Test func refusesSubscribersPastTheCapAndEndsThemOnFinish() async throws {
        let store = try memoryStore("north")
        let feed = ChangeFeed(store: store, settings: ChangeFeed.Settings(maxStreams: 2), now: { Int64(Self.start) })
        let one = try #require(feed.subscribe()), two = try #require(feed.subscribe())
        #expect(feed.subscribe() == nil)
        #expect(feed.isFull)
        one.cancel()
        #expect(feed.subscriberCount == 1)
        let three = try #require(feed.subscribe())

        feed.finish()
        #expect(feed.subscriberCount == 0)
        #expect(feed.subscribe() == nil)
        for subscription in [two, three] {
            var iterator = subscription.makeAsyncIterator()
            #expect(await iterator.next() == nil)
        }
    }

    // MARK: Hub health

    /// A site in hq's fleet, its store's clock and a feed over it whose `now` the test moves.
    func fleet(quietMillis: Int = 60_000, connected: Set<SiteID> = []) throws -> (site: TicketDatabase, feed: ChangeFeed, clock: TestClock) {
        let clock = TestClock(Self.start)
        let hqKey = SiteKey.generate(), northKey = SiteKey.generate()
        let hq = try memoryStore("hq", role: .coordinator, clock: clock, key: hqKey)
        let north = try memoryStore("north", clock: clock, key: northKey)
        try admit([(hq, hqKey), (north, northKey)])
        // Health events only when the health changes: none repeated within a test.
        let feed = ChangeFeed(store: north, settings: ChangeFeed.Settings(hubQuietMillis: quietMillis, healthMillis: 86_400_000),
                              connectedSites: { connected }, now: { Int64(clock.now) })
        return (north, feed, clock)
    }

    @Test func theHubNeverHeardIsStale() async throws {
        let (_, feed, _) = try fleet()
        try await feed.poll()
        let health = try #require(feed.health)
        #expect(health.hubSite == "hq" && health.stale && health.lastHeardMillisAgo == nil)
        #expect(health.message == "Not heard from the hub (hq) yet; you can keep working here: changes sync when it is back.")
    }

    @Test func goesStaleAfterTheThresholdAndSaysForHowLong() async throws {
        let (north, feed, clock) = try fleet()
        try north.recordPeer(PeerRecord(site: SiteID("hq"), role: .coordinator, address: "127.0.0.1:7400", lastSeen: clock.now, vector: VersionVector()))
        try await feed.poll()
        let subscription = try #require(feed.subscribe())
        defer { subscription.cancel() }
        #expect(feed.health?.stale == false)

        clock.advance(59_000)
        try await feed.poll()
        #expect(feed.health?.stale == false && feed.health?.lastHeardMillisAgo == 59_000)
        #expect(healths(waiting(subscription)).isEmpty)

        clock.advance(3 * 60_000)
        try await feed.poll()
        let health = try #require(healths(waiting(subscription)).first)
        #expect(health.stale && health.lastHeardMillisAgo == 239_000)
        #expect(health.message == "Not heard from the hub (hq) for 3 min; you can keep working here: changes sync when it is back.")

        // News from the hub lifts it at once.
        try north.recordPeer(PeerRecord(site: SiteID("hq"), role: .coordinator, address: "127.0.0.1:7400", lastSeen: clock.now, vector: VersionVector()))
        try await feed.poll()
        let back = try #require(healths(waiting(subscription)).first)
        #expect(!back.stale && back.message == "In touch with the hub (hq).")
    }

    /// A quiet session with the hub records nothing in the store: the node's word that it is open counts.
    @Test func anOpenSessionWithTheHubIsNotStale() async throws {
        let (_, feed, clock) = try fleet(connected: [try SiteID("hq")])
        clock.advance(3_600_000)
        try await feed.poll()
        #expect(feed.health?.stale == false && feed.health?.lastHeardMillisAgo == 0)
    }

    @Test func theCoordinatorHasNoHubToReport() async throws {
        let hq = try memoryStore("hq", role: .coordinator)
        let feed = ChangeFeed(store: hq, now: { Int64(Self.start) })
        try await feed.poll()
        #expect(feed.health == nil)
        #expect(try hq.hubContact() == nil)
    }

    @Test func ageTextRoundsDown() {
        #expect(HubHealth.ageText(millis: 59_999) == "59 s")
        #expect(HubHealth.ageText(millis: 180_000) == "3 min")
        #expect(HubHealth.ageText(millis: 2 * 3_600_000) == "2 h")
        #expect(HubHealth.ageText(millis: 3 * 86_400_000) == "3 days")
    }
}
