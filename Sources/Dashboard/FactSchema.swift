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
        migrator.registerMigration("dashboard/v8-indexes-aside") { db in
            // A refresh that derives most facts afresh builds the fact tables' secondary indexes once at
            // its end instead of inserting into each of them row by row (``FactIndexes``); what it set
            // aside is kept here until then, in the store, so a crash in between loses no index.
            try db.execute(sql: "CREATE TABLE metricIndexAside (name TEXT PRIMARY KEY, sql TEXT NOT NULL)")
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

/// The fact tables' secondary indexes, set aside while a refresh derives most facts afresh.
///
/// A first derivation (or one after a new configuration) writes every ticket's facts: one row in
/// `metricTicket` and its seven indexes, about three in `metricClock` and its three, and the
/// ticket's handoffs in `metricHandoff` and its two. Inserting row by row into those b-trees, keyed
/// in no particular order, was most of the writer's time (a profile of `tierline-bench
/// --dashboard`); SQLite builds an index over rows already stored by sorting them, far faster.
///
/// So a refresh with a large backlog drops eleven of the twelve in the transaction that starts it,
/// keeping their SQL in `metricIndexAside`, and a refresh that ends with a small backlog again
/// builds each, one transaction apiece (``settle(_:minimum:)``). A refresh stopped, cancelled or
/// failed with much left keeps them aside for the refresh that carries on (the mirror derives in
/// half-second slices); a crash leaves them listed too. Nothing depends on them but speed: the
/// dashboard's queries give the same answers meanwhile, scanning instead.
///
/// The tables' primary keys and `metricFeed`'s index stay: the derivation itself reads through them.
/// So does `metricClock_running`: the at-risk queries name it (`INDEXED BY`), and would fail without
/// it. A migration that changes a fact-table index must also change or drop its row here, or a
/// refresh may build the old definition again.
enum FactIndexes {
    static let tables = ["metricTicket", "metricClock", "metricHandoff"]
    static let kept = ["metricClock_running"]

    /// A refresh sets the indexes aside when it has at least this many tickets to derive, and at
    /// least as many as hold facts already (below that, rebuilding the indexes costs more than
    /// inserting into them); they are built again once fewer than this many are left.
    static let minimum = 2_000

    static func worthSettingAside(listed: Int, minimum: Int, _ db: Database) throws -> Bool {
        guard listed >= minimum else { return false }
        return listed >= (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricTicket") ?? 0)
    }

    /// Drops the secondary indexes of the fact tables, keeping their SQL for ``settle(_:minimum:)``.
    /// - Returns: how many were set aside (none when another refresh holds them aside already).
    @discardableResult
    static func setAside(_ db: Database) throws -> Int {
        func placeholders(_ names: [String]) -> String { names.map { _ in "?" }.joined(separator: ", ") }
        // Automatic indexes (primary keys, UNIQUE) have no SQL and cannot be dropped.
        let indexes = try Row.fetchAll(db, sql: """
            SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
            AND tbl_name IN (\(placeholders(tables))) AND name NOT IN (\(placeholders(kept)))
            """, arguments: StatementArguments(tables + kept))
        for index in indexes {
            let name: String = index[0]
            try db.execute(sql: "INSERT OR REPLACE INTO metricIndexAside (name, sql) VALUES (?, ?)", arguments: [name, index[1] as String])
            try db.execute(sql: "DROP INDEX \(name.quotedDatabaseIdentifier)")
        }
        return indexes.count
    }

    /// The names of the indexes set aside and not built again yet.
    static func aside(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT name FROM metricIndexAside ORDER BY name")
    }

    /// Builds the index set aside as `name`, in the caller's transaction, and unlists it.
    static func restore(_ db: Database, name: String) throws {
        guard let sql = try String.fetchOne(db, sql: "SELECT sql FROM metricIndexAside WHERE name = ?", arguments: [name]) else { return }
        // (A migration may have made it again meanwhile.)
        let exists = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?)",
                                       arguments: [name]) ?? false
        if !exists { try db.execute(sql: sql) }
        try db.execute(sql: "DELETE FROM metricIndexAside WHERE name = ?", arguments: [name])
    }

    /// What ``settle(_:minimum:)`` left.
    struct Settled: Sendable, Equatable {
        /// Indexes still set aside.
        var aside: [String] = []
        /// Why building one failed (it stays listed, for the next refresh to try).
        var error: String?
    }

    /// Builds every index set aside once fewer than `minimum` tickets wait for their facts, each in a
    /// transaction of its own so that writers of the store wait for one index at a time. Never
    /// throws: the indexes only speed queries up, and a refresh's facts are stored whatever becomes
    /// of them. It runs in a task of its own, so that a cancelled refresh still builds them.
    static func settle(_ writer: some DatabaseWriter, minimum: Int) async -> Settled {
        await Task {
            var settled = Settled()
            do {
                let (listed, names) = try await writer.read { db in (try MetricIndex.dirtyCount(db), try aside(db)) }
                settled.aside = names
                guard listed < minimum else { return settled }
                for name in names {
                    do {
                        try await writer.write { db in try restore(db, name: name) }
                        settled.aside.removeAll { $0 == name }
                    } catch {
                        settled.error = settled.error ?? "index \(name): \(error)"
                    }
                }
            } catch {
                settled.error = "\(error)"
            }
            return settled
        }.value
    }
}
