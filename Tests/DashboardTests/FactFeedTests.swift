import Dashboard
import Desk
import Escalation
import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The facts feed a copier reads (the PostgreSQL mirror): every derivation or removal of a ticket's
/// facts gives it the next number; a reader that asks after its last number misses nothing.
@Suite struct FactFeedTests {
    static let now: Int64 = 1_790_000_000_000
    static let clock: @Sendable () -> UInt64 = { UInt64(now) - 60_000 }

    func store() throws -> TicketDatabase {
        let store = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: Self.clock)
        try store.initialize(site: try SiteID("north"), role: .site)
        return store
    }

    /// Reads the whole feed after `cursor`, a page of `limit` at a time, as a copier does.
    func drain(_ index: MetricIndex, after cursor: Int64, limit: Int = 2) async throws -> (changes: [FactPage.Change], cursor: Int64) {
        var cursor = cursor
        var all: [FactPage.Change] = []
        for _ in 0..<100 {
            let page = try await index.facts(after: cursor, limit: limit)
            #expect(page.changes.count <= limit)
            guard !page.changes.isEmpty else { return (all, cursor) }
            #expect(page.changes.map(\.seq) == page.changes.map(\.seq).sorted())
            #expect(page.changes.allSatisfy { $0.seq > cursor && $0.seq <= page.head })
            all += page.changes
            cursor = page.cursor
        }
        Issue.record("the feed did not end")
        return (all, cursor)
    }

    @Test func everyDerivedTicketIsInTheFeedWithItsFactsClocksAndHandoffs() async throws {
        let store = try store()
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline", priority: .high))
        _ = try store.update(printer.id, [(.status, .text("solved"))])
        let vpn = try store.createTicket(TicketDraft(subject: "VPN drops"))
        let mail = try store.createTicket(TicketDraft(subject: "Mail bounces"))
        let index = try await MetricIndex(store)
        let before = try await index.facts(after: 0, limit: 10)
        #expect(before.changes.isEmpty && before.head == 0 && before.pending == 3, "listed, not derived: nothing in the feed yet")

        try await index.refresh(now: Self.now)
        let (changes, cursor) = try await drain(index, after: 0)
        #expect(Set(changes.map(\.ticket)) == Set([printer.id, vpn.id, mail.id].map { $0.lowercased() }))
        #expect(changes.count == 3 && cursor == changes.last?.seq)
        // The facts are the dashboard's own rows, with their clocks.
        let stored = try await store.writer.read { db in try TicketMetricRow.fetchAll(db, sql: "SELECT * FROM metricTicket") }
        for change in changes {
            let facts = try #require(change.facts)
            var row = try #require(stored.first { $0.id == change.ticket })
            row.clocks = try await store.writer.read { db in
                try ClockRow.fetchAll(db, sql: "SELECT * FROM metricClock WHERE ticket = ? ORDER BY ticket, kind, cycle", arguments: [change.ticket])
            }
            #expect(facts == row)
            #expect(!facts.clocks.isEmpty, "every ticket runs at least its resolution clock")
        }
        #expect(changes.first { $0.ticket == printer.id.lowercased() }?.facts?.status == "solved")
        let caughtUp = try await index.facts(after: cursor, limit: 10)
        #expect(caughtUp.changes.isEmpty && caughtUp.cursor == cursor && caughtUp.head == cursor && caughtUp.pending == 0)
    }

    @Test func aTicketDerivedAgainMovesToTheEndAndARemovedOneComesWithoutFacts() async throws {
        let store = try store()
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline"))
        let vpn = try store.createTicket(TicketDraft(subject: "VPN drops"))
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        let (_, cursor) = try await drain(index, after: 0)

        _ = try store.update(printer.id, [(.status, .text("solved"))])
        #expect(try await index.facts(after: cursor, limit: 10).changes.isEmpty, "changed but not derived: not in the feed yet")
        try await index.refresh(now: Self.now)
        let (moved, next) = try await drain(index, after: cursor)
        #expect(moved.map(\.ticket) == [printer.id.lowercased()])
        #expect(moved.first?.facts?.status == "solved")
        // The store takes a ticket's row away (a removed site's blocks taken back): its facts go, and
        // the feed says so with no facts.
        try await store.writer.write { db in try db.execute(sql: "DELETE FROM ticket WHERE id = ?", arguments: [vpn.id.lowercased()]) }
        try await index.refresh(now: Self.now)
        let (removed, last) = try await drain(index, after: next)
        #expect(removed.map(\.ticket) == [vpn.id.lowercased()])
        #expect(removed.first?.facts == nil)
        // From the start, each ticket appears once, at its latest number.
        let (all, _) = try await drain(index, after: 0, limit: 1)
        #expect(all.map(\.ticket) == [printer.id, vpn.id].map { $0.lowercased() })
        #expect(all.last?.seq == last)
    }

    @Test func aConfigurationChangeFeedsEveryTicketAgain() async throws {
        let store = try store()
        for n in 0..<5 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        let (_, cursor) = try await drain(index, after: 0)
        try await store.writer.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO metricState (key, value) VALUES ('configChanged', 1)")
        }
        #expect(try await index.facts(after: cursor, limit: 10).pending == 5)
        try await index.refresh(now: Self.now)
        let (again, _) = try await drain(index, after: cursor)
        #expect(again.count == 5)
    }

    /// A store whose dashboard derived facts before the feed existed: the migration numbers the
    /// tickets it holds facts for, so a copier starting at 0 gets them all.
    @Test func factsDerivedBeforeTheFeedAreNumberedByItsMigration() async throws {
        let store = try store()
        for n in 0..<3 { _ = try store.createTicket(TicketDraft(subject: "Ticket \(n)")) }
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        try await store.writer.write { db in
            try db.execute(sql: "DROP TABLE metricFeed; DELETE FROM grdb_migrations WHERE identifier = 'dashboard/v5-fact-feed'")
        }
        let again = try await MetricIndex(store)
        let page = try await again.facts(after: 0, limit: 10)
        #expect(page.changes.map(\.seq) == [1, 2, 3] && page.changes.allSatisfy { $0.facts != nil } && page.pending == 0)
    }

    /// The dashboard's refresher tells the workspace which tickets' facts changed from the feed, so
    /// a derivation by another deriver on the store (a mirror) is told as well as its own.
    @Test func changedTicketsListsWhatAnyDeriverDerivedSinceACursor() async throws {
        let store = try store()
        _ = try store.createTicket(TicketDraft(subject: "Before"))
        let dashboard = try await MetricIndex(store)
        try await dashboard.refresh(now: Self.now)
        let start = try await dashboard.feedHead()
        #expect(start == 1)
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline"))
        let vpn = try store.createTicket(TicketDraft(subject: "VPN drops"))
        // Another deriver (a mirror's index on the same store) derives them first.
        try await MetricIndex(store).refresh(now: Self.now)
        #expect(try await dashboard.refresh(now: Self.now).derived == 0)
        let changed = try await dashboard.changedTickets(after: start, limit: 10)
        let expected: Set<String> = [printer.id.lowercased(), vpn.id.lowercased()]
        #expect(changed.tickets.map(Set.init) == expected && changed.tickets?.count == 2)
        #expect(changed.cursor == start + 2)
        let none = try await dashboard.changedTickets(after: changed.cursor, limit: 10)
        #expect(none.tickets == [] && none.cursor == changed.cursor)
        let tooMany = try await dashboard.changedTickets(after: start, limit: 1)
        #expect(tooMany.tickets == nil && tooMany.cursor == start + 2)
        // A cursor past the head (the facts made again from nothing): everything may have changed.
        let rebuilt = try await dashboard.changedTickets(after: start + 100, limit: 10)
        #expect(rebuilt.tickets == nil && rebuilt.cursor == start + 2)
    }

    /// What waits after a cursor counts tickets, not feed numbers: a ticket derived five times is one.
    @Test func whatWaitsCountsTicketsNotDerivations() async throws {
        let store = try store()
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline"))
        let vpn = try store.createTicket(TicketDraft(subject: "VPN drops"))
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        for status in ["solved", "open", "solved", "open", "solved"] {
            _ = try store.update(printer.id, [(.status, .text(status))])
            try await index.refresh(now: Self.now)
        }
        #expect(try await index.feedHead() == 7)
        let first = try await index.facts(after: 0, limit: 1)
        #expect(first.changes.map(\.ticket) == [vpn.id.lowercased()])
        #expect(first.after == 1, "one ticket waits after it, though five numbers do")
        let last = try await index.facts(after: first.cursor, limit: 10)
        #expect(last.changes.map(\.ticket) == [printer.id.lowercased()] && last.after == 0)
    }
}
