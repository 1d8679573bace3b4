import Dashboard
import Desk
import Escalation
import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The dashboard's own migrations: what a store holds before and after the dashboard attaches, stores
/// made when the store's migrations created the fact tables, and tickets the store takes back.
@Suite struct FactSchemaTests {
    static let now: Int64 = 1_790_000_000_000
    /// The stores' wall clock: a minute before `now`.
    static let clock: @Sendable () -> UInt64 = { UInt64(now) - 60_000 }

    func tables(_ store: TicketDatabase) async throws -> Set<String> {
        try await store.writer.read { db in
            try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE 'metric%'")
        }
    }

    func migrations(_ store: TicketDatabase) async throws -> Set<String> {
        try await store.writer.read { db in try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations") }
    }

    @Test func aStoreNoDashboardAttachedToHoldsNoFactsAndTheFirstAttachmentListsEveryTicket() async throws {
        let store = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: Self.clock)
        try store.initialize(site: try SiteID("lap"), role: .laptop)
        _ = try store.createTicket(TicketDraft(subject: "Printer offline"))
        _ = try store.createTicket(TicketDraft(subject: "VPN drops"))
        #expect(try await tables(store).isEmpty, "writes go on without the dashboard's tables or triggers")

        let index = try await MetricIndex(store)
        #expect(try await tables(store).isSuperset(of: ["metricTicket", "metricClock", "metricHandoff", "metricDay", "metricDirty",
                                                        "metricDirty_insert", "metricDirty_update", "metricDirty_delete"]))
        #expect(try await migrations(store).isSuperset(of: ["dashboard/v1-facts", "dashboard/v2-ticket-removal"]))
        #expect(try await index.pending() == 2)
        #expect(try await index.refresh(now: Self.now).derived == 2)
        // Attaching again (the dashboard's queries, another process) changes nothing.
        let queries = try await FleetQueries(store)
        #expect(try await queries.pendingFacts() == 0)
        #expect(try await queries.summary(period: .last(days: 30, now: Self.now), now: Self.now).totals.backlog == 2)
        // The store still opens: the store leaves the dashboard's migrations to the dashboard.
        _ = try TicketDatabase(store.writer, key: nil)
    }

    /// Until the dashboard kept its own migrations, the store's `v4-metrics` created the fact tables and
    /// their triggers in every store. Such a store is rebuilt here: the same tables (the dashboard's
    /// first migration creates exactly what `v4-metrics` did), facts derived, and the migrations the
    /// older Tierline had not yet recorded taken off, with the trigger only they add.
    @Test func aStoreMadeWhenTheStoreCreatedTheFactTablesKeepsItsFacts() async throws {
        let queue = try DatabaseQueue()
        let key = SiteKey.generate()
        let old = try TicketDatabase(queue, key: key, wallClock: Self.clock)
        try old.initialize(site: try SiteID("north"), role: .site)
        let printer = try old.createTicket(TicketDraft(subject: "Printer offline"))
        _ = try old.update(printer.id, [(.status, .text("solved"))])
        _ = try old.createTicket(TicketDraft(subject: "VPN drops"))
        try await MetricIndex(old).refresh(now: Self.now)
        try await queue.write { db in
            try db.execute(sql: """
                DELETE FROM grdb_migrations WHERE identifier IN ('v13-facts-apart', 'dashboard/v1-facts', 'dashboard/v2-ticket-removal',
                  'dashboard/v6-dirty-versions', 'dashboard/v7-no-redundant-indexes');
                DROP TRIGGER metricDirty_delete;
                DROP TRIGGER metricDirty_insert;
                DROP TRIGGER metricDirty_update;
                DROP TABLE metricDirty;
                CREATE TABLE metricDirty (id TEXT PRIMARY KEY);
                CREATE TRIGGER metricDirty_insert AFTER INSERT ON ticket BEGIN
                  INSERT OR IGNORE INTO metricDirty (id) VALUES (NEW.id);
                END;
                CREATE TRIGGER metricDirty_update AFTER UPDATE ON ticket BEGIN
                  INSERT OR IGNORE INTO metricDirty (id) VALUES (NEW.id);
                END;
                CREATE INDEX metricClock_on_ticket ON metricClock (ticket);
                CREATE INDEX metricHandoff_on_ticket ON metricHandoff (ticket);
                """)
        }
        #expect(try await migrations(old).contains("v4-metrics"))

        let store = try TicketDatabase(queue, key: key, wallClock: Self.clock)
        #expect(try await migrations(store).contains("v13-facts-apart"))
        let index = try await MetricIndex(store)
        #expect(try await index.pending() == 0, "the facts it holds are kept, not derived again")
        let queries = try await FleetQueries(store)
        let period = Period.last(days: 30, now: Self.now)
        let summary = try await queries.summary(period: period, now: Self.now)
        #expect(summary.totals.backlog == 1 && summary.totals.solved == 1)
        // Its triggers go on listing written tickets, and the new one lists deleted rows.
        _ = try store.update(printer.id, [(.status, .text("open"))])
        #expect(try await index.listed() == [printer.id.lowercased()])
        #expect(try await tables(store).contains("metricDirty_delete"))
        let triggers = try await store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'metricDirty_%'")
        }
        #expect(triggers.count == 3 && triggers.allSatisfy { $0.contains("DELETE FROM metricDirty") }, "each write lists its ticket anew: \(triggers)")
        #expect(try await index.refresh(now: Self.now).derived == 1)
        #expect(try await queries.summary(period: period, now: Self.now).totals.backlog == 2)
    }

    @Test func aTicketTheStoreTakesBackLeavesTheFacts() async throws {
        let hub = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: Self.clock)
        try hub.initialize(site: try SiteID("hub"), role: .coordinator)
        let south = try SiteID("south"), southKey = SiteKey.generate()
        try hub.editRoster { roster in roster.sites.append(Roster.Member(site: south, key: southKey.publicKey, role: .site)) }
        let index = try await MetricIndex(hub)
        let queries = try await FleetQueries(hub)
        let block = try Block.make(origin: south, seq: 1, hlc: HLC(millis: UInt64(Self.now) - 60_000, counter: 0), deps: VersionVector(),
                                   changes: create(ticketID(1), number: 1), key: southKey)
        #expect(try hub.apply([block]).applied == 1)
        #expect(try await index.refresh(now: Self.now).derived == 1)
        let period = Period.last(days: 1, now: Self.now)
        #expect(try await queries.metrics(period: period, now: Self.now).created == 1)

        // South is removed before its first block: the hub takes the block back, and the ticket with it.
        try hub.editRoster { roster in
            if let i = roster.sites.firstIndex(where: { $0.site == south.rawValue }) { roster.sites[i].revokedAfter = 0 }
        }
        #expect(try hub.vector()[south] == 0)
        #expect(try await index.listed() == [ticketID(1).uuidString.lowercased()])
        _ = try await index.refresh(now: Self.now)
        #expect(try await queries.metrics(period: period, now: Self.now).created == 0)
        #expect(try await queries.summary(period: period, now: Self.now).totals.created == 0)
    }

    @Test func aStoreANewerDashboardMigratedIsRefusedByTheDashboardOnly() async throws {
        let store = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: Self.clock)
        try store.initialize(site: try SiteID("north"), role: .site)
        _ = try await FleetQueries(store)
        try await store.writer.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('dashboard/v99-future')") }
        _ = try TicketDatabase(store.writer, key: nil)
        do {
            _ = try await FleetQueries(store)
            Issue.record("a dashboard migration this binary does not know is refused")
        } catch let error as StoreError {
            #expect(error.code == .refusedWrite && "\(error)".contains("dashboard/v99-future"))
        }
    }

    /// An agent document changes no fact: publishing one leaves the facts current, while a calendar
    /// (which the clocks read) has every ticket derived again.
    @Test func publishingAnAgentLeavesTheFactsCurrent() async throws {
        let store = try memoryStore("hq", role: .coordinator)
        _ = try store.createTicket(TicketDraft(subject: "Printer offline"))
        _ = try store.createTicket(TicketDraft(subject: "VPN drops"))
        let index = try await MetricIndex(store)
        try await index.refresh(now: Self.now)
        #expect(try await index.pending() == 0)
        _ = try AgentDesk(store: store).add(AgentDocument(name: "nina", version: 1, displayName: "Nina", site: "hq"), actor: "root")
        #expect(try await index.pending() == 0, "an agent changes no clock")
        let calendar = #"{"calendars": [{"name": "office", "version": 1, "timezone": "UTC", "weekly": {"mon": ["08:00-12:00"]}}]}"#
        _ = try EscalationDesk(store: store).publish(Data(calendar.utf8), file: "calendar.json", actor: "root")
        #expect(try await index.pending() == 2, "a calendar has every ticket's facts derived again")
    }
}
