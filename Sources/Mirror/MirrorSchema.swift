/// The PostgreSQL schema of the mirror: the tables it copies from the store, column by column, and
/// its migrations (numbered, applied by the mirror itself, recorded in `mirror_schema`).
///
/// Column names are the store's, in snake_case; HLC stamps stay 64-bit stamps (milliseconds since
/// 1970 in the high 48 bits: `to_timestamp((hlc >> 16) / 1000.0)`), as the store keeps them.
enum MirrorSchema {
    /// A column's PostgreSQL type, which also says how a SQLite value is bound.
    enum ColumnType: String {
        case text, bigint, boolean, bytea
    }

    struct Column {
        var name: String
        var source: String
        var type: ColumnType
        var notNull = false
    }

    /// A mirrored table: its rows are the store's rows of `source`, keyed by `key`.
    struct Table {
        var name: String
        var source: String
        var columns: [Column]
        var key: [String]
        /// The column holding the ticket a child row belongs to (`nil`: a top-level entity's table).
        var parent: String?

        var selectList: String { columns.map { "\"\($0.source)\"" }.joined(separator: ", ") }
    }

    static func col(_ name: String, _ source: String? = nil, _ type: ColumnType = .text, notNull: Bool = false) -> Column {
        Column(name: name, source: source ?? name, type: type, notNull: notNull)
    }

    static let ticket = Table(name: "ticket", source: "ticket", columns: [
        col("id", notNull: true), col("display_number", "displayNumber"), col("number", nil, .bigint),
        col("origin_site", "originSite"), col("owning_site", "owningSite"), col("owning_epoch", "owningEpoch", .bigint, notNull: true),
        col("subject", notNull: true), col("status", notNull: true), col("base_status", "baseStatus", notNull: true),
        col("priority", notNull: true), col("assignee"), col("group"), col("category"), col("customer"), col("channel"),
        col("pending_until", "pendingUntil", .bigint), col("escalation_cycle", "escalationCycle", .bigint, notNull: true),
        col("escalation_level", "escalationLevel", .bigint, notNull: true), col("merge_candidate", "mergeCandidate"),
        col("merged_into", "mergedInto"), col("merge_rejected", "mergeRejected", .boolean, notNull: true),
        col("deleted", nil, .boolean, notNull: true), col("created_hlc", "createdHLC", .bigint), col("updated_hlc", "updatedHLC", .bigint),
        col("conflict_count", "conflictCount", .bigint, notNull: true), col("state_hash", "stateHash", .bytea, notNull: true),
    ], key: ["id"], parent: nil)

    static let element = Table(name: "ticket_element", source: "ticketElement", columns: [
        col("ticket", notNull: true), col("set_name", "setName", notNull: true), col("element", notNull: true),
    ], key: ["ticket", "set_name", "element"], parent: "ticket")

    static let event = Table(name: "ticket_event", source: "ticketEvent", columns: [
        col("ticket", notNull: true), col("id", notNull: true), col("hlc", nil, .bigint, notNull: true), col("site", notNull: true),
        col("kind", notNull: true), col("actor", notNull: true), col("visibility", notNull: true), col("body", notNull: true),
    ], key: ["ticket", "id"], parent: "ticket")

    static let conflict = Table(name: "ticket_conflict", source: "ticketConflict", columns: [
        col("id", notNull: true), col("ticket", notNull: true), col("field", notNull: true), col("first_value", "firstValue", notNull: true),
        col("first_site", "firstSite", notNull: true), col("second_value", "secondValue", notNull: true),
        col("second_site", "secondSite", notNull: true),
    ], key: ["id"], parent: "ticket")

    static let customer = Table(name: "customer", source: "customer", columns: [
        col("id", notNull: true), col("key", notNull: true), col("name"), col("email"), col("phone"), col("organization"),
        col("tier"), col("value"), col("updated_hlc", "updatedHLC", .bigint),
    ], key: ["id"], parent: nil)

    static let article = Table(name: "article", source: "article", columns: [
        col("id", notNull: true), col("title", notNull: true), col("summary", notNull: true), col("root_cause", "rootCause", notNull: true),
        col("steps", notNull: true), col("source_ticket", "sourceTicket"), col("author"), col("site"),
        col("created_hlc", "createdHLC", .bigint), col("updated_hlc", "updatedHLC", .bigint),
    ], key: ["id"], parent: nil)

    /// Every site the store knows (roster, peers, log), with what this store last learned of it.
    static let site = Table(name: "site", source: "", columns: [
        col("site", notNull: true), col("role"), col("revoked_after", nil, .bigint), col("applied_seq", nil, .bigint),
        col("address"), col("transport"), col("last_seen_ms", nil, .bigint), col("skew_ms", nil, .bigint), col("last_error"),
        col("blocks_in", nil, .bigint), col("blocks_out", nil, .bigint),
    ], key: ["site"], parent: nil)

    /// The store's rows of every site, in ``site``'s columns.
    static let siteQuery = """
        WITH s AS (SELECT site FROM siteKey UNION SELECT site FROM peer UNION SELECT site FROM versionEntry)
        SELECT s.site, COALESCE(k.role, p.role) AS role, k.revokedAfter AS revoked_after, v.seq AS applied_seq,
               p.address, p.transport, p.lastSeen AS last_seen_ms, p.skewMillis AS skew_ms, p.lastError AS last_error,
               p.blocksIn AS blocks_in, p.blocksOut AS blocks_out
        FROM s LEFT JOIN siteKey k ON k.site = s.site LEFT JOIN peer p ON p.site = s.site LEFT JOIN versionEntry v ON v.site = s.site
        ORDER BY s.site
        """

    static let ticketChildren = [element, event, conflict]

    static func createTable(_ table: Table, in schema: String) -> String {
        let columns = table.columns.map { "\"\($0.name)\" \($0.type.rawValue)\($0.notNull ? " NOT NULL" : "")" }
        return "CREATE TABLE \(schema).\(table.name) (\(columns.joined(separator: ", ")), PRIMARY KEY (\(table.key.map { "\"\($0)\"" }.joined(separator: ", "))))"
    }

    /// The migrations, in order: version N is `migrations[N - 1]`. Never edit one that shipped; append.
    static func migrations(schema s: String) -> [[String]] {
        [
            // 1: the mirrored tables and the cursor.
            [
                createTable(ticket, in: s),
                "CREATE INDEX ticket_on_status ON \(s).ticket (status)",
                "CREATE INDEX ticket_on_customer ON \(s).ticket (customer)",
                createTable(element, in: s),
                createTable(event, in: s),
                "CREATE INDEX ticket_event_on_kind ON \(s).ticket_event (kind, hlc)",
                createTable(conflict, in: s),
                "CREATE INDEX ticket_conflict_on_ticket ON \(s).ticket_conflict (ticket)",
                createTable(customer, in: s),
                createTable(article, in: s),
                createTable(site, in: s),
                // Per origin site, the highest seq of its blocks whose rows are mirrored: every block up
                // to it is covered. Written in the transaction of the rows it covers.
                """
                CREATE TABLE \(s).cursor (origin text PRIMARY KEY, seq bigint NOT NULL,
                  newest_hlc bigint, mirrored_at timestamptz NOT NULL DEFAULT now())
                """,
                // The store this schema mirrors: one row. A mirror of another store refuses to write here.
                "CREATE TABLE \(s).source (id int PRIMARY KEY CHECK (id = 1), site text NOT NULL, roster_version bigint NOT NULL DEFAULT 0)",
                // Handy columns for reports: stamps as times.
                """
                CREATE FUNCTION \(s).hlc_time(hlc bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
                  AS $$ SELECT to_timestamp((hlc >> 16) / 1000.0) $$
                """,
            ],
            // 2: views for reports (Docs/postgres-mirror.md, Deploy/grafana-tierline.json).
            [
                // Tickets with their stamps as times and the dashboard's notion of open: not deleted,
                // not solved, closed or merged.
                """
                CREATE VIEW \(s).ticket_report AS
                SELECT t.*, \(s).hlc_time(t.created_hlc) AS created_at, \(s).hlc_time(t.updated_hlc) AS updated_at,
                       (NOT t.deleted AND t.base_status NOT IN ('solved', 'closed', 'merged') AND t.status <> 'merged') AS is_open
                FROM \(s).ticket t WHERE NOT t.deleted
                """,
                """
                CREATE VIEW \(s).event_report AS
                SELECT e.*, \(s).hlc_time(e.hlc) AS at FROM \(s).ticket_event e
                """,
                // The open tickets by status and by owning site.
                """
                CREATE VIEW \(s).backlog AS
                SELECT owning_site AS site, status, priority, count(*) AS tickets
                FROM \(s).ticket_report WHERE is_open GROUP BY owning_site, status, priority
                """,
                // Tickets created per day, and how many of them are still open.
                """
                CREATE VIEW \(s).created_per_day AS
                SELECT date_trunc('day', created_at) AS day, origin_site AS site, count(*) AS created,
                       count(*) FILTER (WHERE is_open) AS still_open
                FROM \(s).ticket_report WHERE created_at IS NOT NULL GROUP BY 1, 2
                """,
                // Per origin site: what the mirror holds and when it last moved, and how far behind the
                // store's log it was at its last batch.
                """
                CREATE VIEW \(s).mirror_lag AS
                SELECT c.origin, c.seq AS mirrored_seq, st.applied_seq AS store_seq,
                       GREATEST(COALESCE(st.applied_seq, 0) - c.seq, 0) AS behind_blocks,
                       c.mirrored_at, \(s).hlc_time(c.newest_hlc) AS newest_block_at
                FROM \(s).cursor c LEFT JOIN \(s).site st ON st.site = c.origin
                """,
            ],
            // 3: the dashboard's rules exactly. Days are UTC days whatever the session's TimeZone; open
            // is the dashboard's (a created ticket, not deleted, whose base status is not solved, closed
            // or merged, and not merged into another); the backlog groups by base status, as the
            // dashboard does. CREATE OR REPLACE keeps the views' names, columns and grants.
            [
                """
                CREATE OR REPLACE VIEW \(s).ticket_report AS
                SELECT t.*, \(s).hlc_time(t.created_hlc) AS created_at, \(s).hlc_time(t.updated_hlc) AS updated_at,
                       (NOT t.deleted AND t.number IS NOT NULL AND t.base_status NOT IN ('solved', 'closed', 'merged')
                        AND t.status <> 'merged') AS is_open
                FROM \(s).ticket t WHERE NOT t.deleted
                """,
                """
                CREATE OR REPLACE VIEW \(s).backlog AS
                SELECT owning_site AS site, base_status AS status, priority, count(*) AS tickets
                FROM \(s).ticket_report WHERE is_open GROUP BY owning_site, base_status, priority
                """,
                """
                CREATE OR REPLACE VIEW \(s).created_per_day AS
                SELECT date_trunc('day', created_at, 'UTC') AS day, origin_site AS site, count(*) AS created,
                       count(*) FILTER (WHERE is_open) AS still_open
                FROM \(s).ticket_report WHERE created_at IS NOT NULL GROUP BY 1, 2
                """,
            ],
        ]
    }
}
