import GRDB
import TicketStore

/// The dashboard's own tables in a store: per-ticket facts, per-day sums, the dirty list and the
/// triggers that fill it. Migration names never change.
///
/// The migrations run when the dashboard attaches to a store (``FleetQueries/init(_:)``,
/// ``MetricIndex/init(_:)``), named `dashboard/…` so they cannot clash with the store's own. A store
/// no dashboard ever attached to (a laptop's) has none of this and lists no tickets on its writes:
/// the first attachment lists every ticket there is, so nothing written before is missed, and from
/// then on the triggers live in the store file, so every writer (the CLI as much as a node) lists
/// the tickets it changes in its own transaction.
enum FactSchema {
    static let namespace = "dashboard"

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("dashboard/v1-facts") { db in
            // A store made before the dashboard kept its own migrations got these tables, as they are
            // here, from the store's `v4-metrics`: its facts are current and stay.
            guard try !db.tableExists(TicketMetricRow.databaseTableName) else { return }
            try createFactTables(db)
        }
        migrator.registerMigration("dashboard/v2-ticket-removal") { db in
            // The store deletes a ticket row when it takes back a removed site's blocks and nothing else
            // touched the ticket: listing it makes the dashboard drop its facts too.
            try db.execute(sql: """
                CREATE TRIGGER metricDirty_delete AFTER DELETE ON ticket BEGIN
                  INSERT OR IGNORE INTO metricDirty (id) VALUES (OLD.id);
                END;
                """)
        }
        migrator.registerMigration("dashboard/v3-agents-apart") { db in
            // An agent document changes no clock, deadline or level: publishing one (`tierline agent
            // add`) re-derived every ticket's facts, 104 s at 100,000 tickets. Only the documents the
            // facts read (calendars, policies, ladders, the matrix, rules) mark them stale.
            try db.execute(sql: """
                DROP TRIGGER IF EXISTS metricConfig_insert;
                CREATE TRIGGER metricConfig_insert AFTER INSERT ON configVersion WHEN json_type(NEW.body, '$.agent') IS NULL BEGIN
                  INSERT OR REPLACE INTO metricState (key, value) VALUES ('configChanged', 1);
                END;
                """)
        }
        migrator.registerMigration("dashboard/v4-waiting-handoffs") { db in
            // The workspace's handoff queue reads the handoffs still waiting for a site's answer; without
            // an index it walked every handoff ever requested. Partial: answered ones are left out.
            try db.execute(sql: """
                CREATE INDEX metricHandoff_waiting ON metricHandoff (toSite, ticket, requestedAt) WHERE answeredAt IS NULL AND NOT timedOut
                """)
        }
        migrator.registerMigration("dashboard/v5-fact-feed") { db in
            // What changed in the facts, in order, for readers that copy them elsewhere (the PostgreSQL
            // mirror): each derivation or removal of a ticket's facts gives it the next number.
            try db.execute(sql: """
                CREATE TABLE metricFeed (ticket TEXT PRIMARY KEY, seq INTEGER NOT NULL);
                CREATE UNIQUE INDEX metricFeed_on_seq ON metricFeed (seq);
                INSERT INTO metricFeed (ticket, seq) SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM metricTicket;
                """)
        }
        migrator.registerMigration("dashboard/v6-dirty-versions") { db in
            // ``MetricIndex/refresh(now:batch:progress:shouldContinue:)`` derives a batch from a read
            // snapshot while it writes the one before. It writes what it derived only if the ticket was
            // not written since: every write lists the ticket again under a new number, never used
            // before (AUTOINCREMENT), so an unchanged number means an unchanged ticket. The triggers
            // delete, then insert: an `INSERT OR REPLACE` would take the conflict clause of a statement
            // that has one (`UPDATE OR IGNORE ticket` would keep the old number).
            try db.execute(sql: """
                DROP TRIGGER IF EXISTS metricDirty_insert;
                DROP TRIGGER IF EXISTS metricDirty_update;
                DROP TRIGGER IF EXISTS metricDirty_delete;
                CREATE TABLE metricDirty_new (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE);
                INSERT INTO metricDirty_new (id) SELECT id FROM metricDirty ORDER BY rowid;
                DROP TABLE metricDirty;
                ALTER TABLE metricDirty_new RENAME TO metricDirty;
                CREATE TRIGGER metricDirty_insert AFTER INSERT ON ticket BEGIN
                  DELETE FROM metricDirty WHERE id = NEW.id;
                  INSERT INTO metricDirty (id) VALUES (NEW.id);
                END;
                CREATE TRIGGER metricDirty_update AFTER UPDATE ON ticket BEGIN
                  DELETE FROM metricDirty WHERE id = NEW.id;
                  INSERT INTO metricDirty (id) VALUES (NEW.id);
                END;
                CREATE TRIGGER metricDirty_delete AFTER DELETE ON ticket BEGIN
                  DELETE FROM metricDirty WHERE id = OLD.id;
                  INSERT INTO metricDirty (id) VALUES (OLD.id);
                END;
                """)
        }
        migrator.registerMigration("dashboard/v7-no-redundant-indexes") { db in
            // Both tables' primary keys begin with the ticket, so their index on it alone only cost a
            // write per clock and handoff row (three clocks a ticket) and about 50 bytes each.
            try db.execute(sql: """
                DROP INDEX IF EXISTS metricClock_on_ticket;
                DROP INDEX IF EXISTS metricHandoff_on_ticket;
                """)
        }
        return migrator
    }

    /// Applies the dashboard's migrations to `store`, waiting without blocking a thread.
    /// - Throws: a `StoreError` if a newer Tierline's dashboard migrated the store; SQLite errors.
    static func attach(_ store: TicketDatabase) async throws {
        try await store.migrate(migrator, namespace: namespace)
    }

    /// Per-ticket facts derived from the materialized tickets by ``MetricIndex``, kept current through
    /// a dirty list that triggers fill in the same transaction as every ticket write (so a crash can
    /// never leave a changed ticket unlisted).
    static func createFactTables(_ db: Database) throws {
        try db.create(table: TicketMetricRow.databaseTableName) { t in
            t.primaryKey("id", .text)
            t.column("site", .text).notNull()
            t.column("origin", .text).notNull()
            t.column("tier", .integer).notNull()
            t.column("channel", .text).notNull()
            t.column("priority", .text).notNull()
            t.column("customerTier", .text).notNull()
            t.column("grp", .text).notNull()
            t.column("category", .text).notNull()
            t.column("status", .text).notNull()
            t.column("open", .boolean).notNull()
            t.column("createdAt", .integer).notNull()
            t.column("firstSolvedAt", .integer)
            t.column("lastSolvedAt", .integer)
            t.column("reopens", .integer).notNull()
            t.column("reopenedWithin30d", .boolean).notNull()
            t.column("publicReplies", .integer).notNull()
            t.column("firstResponseAt", .integer)
            t.column("frtCalendar", .integer)
            t.column("frtBusiness", .integer)
            t.column("ttoCalendar", .integer)
            t.column("ttoBusiness", .integer)
            t.column("resolutionCalendar", .integer)
            t.column("resolutionBusiness", .integer)
            t.column("escalatedAt", .integer)
            t.column("escalationTrigger", .text)
            t.column("transferred", .boolean).notNull()
            t.column("crossSite", .boolean).notNull()
            t.column("maxLevel", .integer).notNull()
            t.column("exhausted", .integer).notNull()
            t.column("backstopFirings", .integer).notNull()
            t.column("csatScore", .integer)
            t.column("csatAt", .integer)
        }
        try db.create(index: "metricTicket_on_createdAt", on: "metricTicket", columns: ["createdAt"])
        try db.create(index: "metricTicket_on_firstSolvedAt", on: "metricTicket", columns: ["firstSolvedAt"])
        try db.create(index: "metricTicket_on_open", on: "metricTicket", columns: ["open", "site", "status", "createdAt"])
        try db.create(index: "metricTicket_on_site", on: "metricTicket", columns: ["site", "createdAt"])
        try db.create(index: "metricTicket_on_firstResponseAt", on: "metricTicket", columns: ["firstResponseAt"])
        try db.create(index: "metricTicket_on_lastSolvedAt", on: "metricTicket", columns: ["lastSolvedAt"])
        try db.create(index: "metricTicket_on_csatAt", on: "metricTicket", columns: ["csatAt"])
        // One row per run of an SLA clock (next response has one per customer message).
        try db.create(table: ClockRow.databaseTableName) { t in
            t.column("ticket", .text).notNull()
            t.column("site", .text).notNull()
            t.column("kind", .text).notNull()
            t.column("cycle", .integer).notNull()
            t.column("start", .integer).notNull()
            t.column("target", .integer)
            t.column("deadline", .integer)
            t.column("warnAt", .integer)
            t.column("stop", .integer)
            t.column("calendarMillis", .integer)
            t.column("businessMillis", .integer)
            t.primaryKey(["ticket", "kind", "cycle"])
        }
        try db.create(index: "metricClock_on_ticket", on: "metricClock", columns: ["ticket"])
        try db.create(index: "metricClock_on_stop", on: "metricClock", columns: ["stop"])
        try db.create(index: "metricClock_on_deadline", on: "metricClock", columns: ["deadline"])
        // Running runs with a target: the few with a deadline ahead or none (paused) decide "at risk now".
        try db.execute(sql: "CREATE INDEX metricClock_running ON metricClock (deadline, warnAt, site) WHERE stop IS NULL AND target IS NOT NULL")
        // One row per handoff request (an agent's escalation or a ladder's site transfer).
        try db.create(table: HandoffRow.databaseTableName) { t in
            t.column("id", .text).notNull()
            t.column("ticket", .text).notNull().indexed()
            t.column("requestedAt", .integer).notNull()
            t.column("toSite", .text).notNull()
            t.column("answeredAt", .integer)
            t.column("accepted", .boolean)
            t.column("timedOut", .boolean).notNull()
            t.primaryKey(["ticket", "id"])
        }
        try db.create(index: "metricHandoff_on_requestedAt", on: "metricHandoff", columns: ["requestedAt"])
        // Per UTC day and owning site, kept exact by the dashboard as facts change, so the summary adds
        // up a few hundred rows instead of scanning every ticket: tickets created that day, tickets whose
        // last solve fell that day (and are still solved), tickets first solved that day, tickets created
        // that day that were escalated; SLA runs (with a target) achieved that day (by stop), with a
        // deadline that day (breached, or breaching if still running), and still running with a deadline that day.
        try db.create(table: "metricDay") { t in
            t.column("day", .integer).notNull()
            t.column("site", .text).notNull()
            t.column("created", .integer).notNull().defaults(to: 0)
            t.column("solved", .integer).notNull().defaults(to: 0)
            t.column("firstSolved", .integer).notNull().defaults(to: 0)
            t.column("escalated", .integer).notNull().defaults(to: 0)
            t.column("achieved", .integer).notNull().defaults(to: 0)
            t.column("breached", .integer).notNull().defaults(to: 0)
            t.column("running", .integer).notNull().defaults(to: 0)
            t.primaryKey(["day", "site"])
        }
        // Tickets whose facts are stale; the triggers fill it, the dashboard drains it.
        try db.create(table: "metricDirty") { t in
            t.primaryKey("id", .text)
        }
        try db.create(table: "metricState") { t in
            t.primaryKey("key", .text)
            t.column("value", .integer).notNull()
        }
        // Every ticket the store holds when the dashboard first attaches is listed here.
        try db.execute(sql: """
            CREATE TRIGGER metricDirty_insert AFTER INSERT ON ticket BEGIN
              INSERT OR IGNORE INTO metricDirty (id) VALUES (NEW.id);
            END;
            CREATE TRIGGER metricDirty_update AFTER UPDATE ON ticket BEGIN
              INSERT OR IGNORE INTO metricDirty (id) VALUES (NEW.id);
            END;
            CREATE TRIGGER metricConfig_insert AFTER INSERT ON configVersion BEGIN
              INSERT OR REPLACE INTO metricState (key, value) VALUES ('configChanged', 1);
            END;
            INSERT INTO metricDirty (id) SELECT id FROM ticket;
            INSERT INTO metricState (key, value) VALUES ('configChanged', 0);
            """)
    }
}
