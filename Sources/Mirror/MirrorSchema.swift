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

    /// The dashboard's per-ticket facts (its `metricTicket`), read through ``Dashboard/MetricIndex``'s
    /// feed: `source` names the fact's stored column. Times end in `_ms` (ms since 1970), as stored.
    static let factTicket = Table(name: "fact_ticket", source: "metricTicket", columns: [
        col("id", notNull: true), col("site", notNull: true), col("origin", notNull: true), col("tier", nil, .bigint, notNull: true),
        col("channel", notNull: true), col("priority", notNull: true), col("customer_tier", "customerTier", notNull: true),
        col("group", "grp", notNull: true), col("category", notNull: true), col("status", notNull: true), col("open", nil, .boolean, notNull: true),
        col("created_ms", "createdAt", .bigint, notNull: true), col("first_solved_ms", "firstSolvedAt", .bigint),
        col("last_solved_ms", "lastSolvedAt", .bigint), col("reopens", nil, .bigint, notNull: true),
        col("reopened_within_30d", "reopenedWithin30d", .boolean, notNull: true), col("public_replies", "publicReplies", .bigint, notNull: true),
        col("first_response_ms", "firstResponseAt", .bigint), col("frt_calendar_ms", "frtCalendar", .bigint),
        col("frt_business_ms", "frtBusiness", .bigint), col("tto_calendar_ms", "ttoCalendar", .bigint), col("tto_business_ms", "ttoBusiness", .bigint),
        col("resolution_calendar_ms", "resolutionCalendar", .bigint), col("resolution_business_ms", "resolutionBusiness", .bigint),
        col("escalated_ms", "escalatedAt", .bigint), col("escalation_trigger", "escalationTrigger"),
        col("transferred", nil, .boolean, notNull: true), col("cross_site", "crossSite", .boolean, notNull: true),
        col("max_level", "maxLevel", .bigint, notNull: true), col("exhausted", nil, .bigint, notNull: true),
        col("backstop_firings", "backstopFirings", .bigint, notNull: true), col("csat_score", "csatScore", .bigint), col("csat_ms", "csatAt", .bigint),
    ], key: ["id"], parent: nil)

    /// One run of one SLA clock (the dashboard's `metricClock`).
    static let factClock = Table(name: "fact_clock", source: "metricClock", columns: [
        col("ticket", notNull: true), col("site", notNull: true), col("kind", notNull: true), col("cycle", nil, .bigint, notNull: true),
        col("start_ms", "start", .bigint, notNull: true), col("target_ms", "target", .bigint), col("deadline_ms", "deadline", .bigint),
        col("warn_ms", "warnAt", .bigint), col("stop_ms", "stop", .bigint), col("calendar_ms", "calendarMillis", .bigint),
        col("business_ms", "businessMillis", .bigint),
    ], key: ["ticket", "kind", "cycle"], parent: "ticket")

    /// One request to move a ticket to another site, and its answer (the dashboard's `metricHandoff`).
    static let factHandoff = Table(name: "fact_handoff", source: "metricHandoff", columns: [
        col("ticket", notNull: true), col("id", notNull: true), col("requested_ms", "requestedAt", .bigint, notNull: true),
        col("to_site", "toSite", notNull: true), col("answered_ms", "answeredAt", .bigint), col("accepted", nil, .boolean),
        col("timed_out", "timedOut", .boolean, notNull: true),
    ], key: ["ticket", "id"], parent: "ticket")

    static let factChildren = [factClock, factHandoff]

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
            factsMigration(schema: s),
        ]
    }

    /// Every function of the schema runs with this search path, whoever calls it: a function's body
    /// is resolved when it runs, and a caller's `public` could otherwise hold a closer match for a
    /// built-in (a reader's `jsonb_object_agg(text, bigint)` would run as whoever calls `metrics`).
    static let pinned = "SET search_path = pg_catalog, pg_temp"

    /// A time from ms since 1970, written inline in views (bound when the view is made, under the
    /// migration's pinned search path).
    static func msTime(_ ms: String) -> String { "to_timestamp((\(ms)) / 1000.0)" }

    /// A time from an HLC stamp, inline as ``msTime(_:)``.
    static func hlcTime(_ hlc: String) -> String { "to_timestamp(((\(hlc)) >> 16) / 1000.0)" }

    /// 4: the dashboard's per-ticket facts, views over them, and `metrics(…)`, the whole of
    /// `/api/metrics` in SQL (Docs/postgres-mirror.md gives the formulas).
    static func factsMigration(schema s: String) -> [String] {
        [
            createTable(factTicket, in: s),
            "CREATE INDEX fact_ticket_on_created ON \(s).fact_ticket (created_ms)",
            "CREATE INDEX fact_ticket_on_first_solved ON \(s).fact_ticket (first_solved_ms)",
            "CREATE INDEX fact_ticket_on_open ON \(s).fact_ticket (site, status) WHERE open",
            createTable(factClock, in: s),
            "CREATE INDEX fact_clock_on_stop ON \(s).fact_clock (stop_ms)",
            "CREATE INDEX fact_clock_on_deadline ON \(s).fact_clock (deadline_ms)",
            createTable(factHandoff, in: s),
            "CREATE INDEX fact_handoff_on_requested ON \(s).fact_handoff (requested_ms)",
            // The last feed number whose facts are here, written with the rows it covers.
            "CREATE TABLE \(s).fact_cursor (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, mirrored_at timestamptz NOT NULL DEFAULT now())",
            """
            CREATE FUNCTION \(s).ms_time(ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned)
              AS $$ SELECT to_timestamp(ms / 1000.0) $$
            """,
            """
            CREATE FUNCTION \(s).time_ms(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned)
              AS $$ SELECT floor(extract(epoch FROM t) * 1000)::bigint $$
            """,
            // v1's function again, pinned the same way; the views of versions 2 and 3 again, with
            // their times computed inline (bound when the view is made) instead of through it.
            """
            CREATE OR REPLACE FUNCTION \(s).hlc_time(hlc bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned)
              AS $$ SELECT to_timestamp((hlc >> 16) / 1000.0) $$
            """,
            """
            CREATE OR REPLACE VIEW \(s).ticket_report AS
            SELECT t.*, \(hlcTime("t.created_hlc")) AS created_at, \(hlcTime("t.updated_hlc")) AS updated_at,
                   (NOT t.deleted AND t.number IS NOT NULL AND t.base_status NOT IN ('solved', 'closed', 'merged')
                    AND t.status <> 'merged') AS is_open
            FROM \(s).ticket t WHERE NOT t.deleted
            """,
            """
            CREATE OR REPLACE VIEW \(s).event_report AS
            SELECT e.*, \(hlcTime("e.hlc")) AS at FROM \(s).ticket_event e
            """,
            """
            CREATE OR REPLACE VIEW \(s).mirror_lag AS
            SELECT c.origin, c.seq AS mirrored_seq, st.applied_seq AS store_seq,
                   GREATEST(COALESCE(st.applied_seq, 0) - c.seq, 0) AS behind_blocks,
                   c.mirrored_at, \(hlcTime("c.newest_hlc")) AS newest_block_at
            FROM \(s).cursor c LEFT JOIN \(s).site st ON st.site = c.origin
            """,
            // The facts with their moments as times, for reports.
            """
            CREATE VIEW \(s).ticket_facts AS
            SELECT f.*, \(msTime("f.created_ms")) AS created_at, \(msTime("f.first_solved_ms")) AS first_solved_at,
                   \(msTime("f.last_solved_ms")) AS last_solved_at, \(msTime("f.first_response_ms")) AS first_response_at,
                   \(msTime("f.escalated_ms")) AS escalated_at, \(msTime("f.csat_ms")) AS csat_at
            FROM \(s).fact_ticket f
            """,
            // SLA runs with their ticket's dimensions: achieved (stopped before any deadline) by their
            // stop, breached by their deadline once it has passed.
            """
            CREATE VIEW \(s).sla_run AS
            SELECT c.*, f.tier, f.channel, f.priority, f.customer_tier, f."group", f.category,
                   \(msTime("c.start_ms")) AS started_at, \(msTime("c.stop_ms")) AS stopped_at, \(msTime("c.deadline_ms")) AS deadline_at,
                   (c.target_ms IS NOT NULL AND c.stop_ms IS NOT NULL AND c.deadline_ms IS NULL) AS achieved,
                   (c.target_ms IS NOT NULL AND c.deadline_ms <= floor(extract(epoch FROM now()) * 1000)::bigint) AS breached
            FROM \(s).fact_clock c JOIN \(s).fact_ticket f ON f.id = c.ticket
            """,
            """
            CREATE VIEW \(s).handoff_report AS
            SELECT h.*, f.site AS owning_site, f.origin, \(msTime("h.requested_ms")) AS requested_at, \(msTime("h.answered_ms")) AS answered_at
            FROM \(s).fact_handoff h JOIN \(s).fact_ticket f ON f.id = h.ticket
            """,
            // Median and 90th percentile by nearest rank (the ⌈p·n⌉-th of n sorted samples, which is
            // percentile_disc), mean truncated to whole ms: the dashboard's DurationStats.
            """
            CREATE FUNCTION \(s).duration_stats(samples bigint[]) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned) AS $$
              SELECT jsonb_build_object('count', count(x),
                'medianMillis', percentile_disc(0.5) WITHIN GROUP (ORDER BY x),
                'p90Millis', percentile_disc(0.9) WITHIN GROUP (ORDER BY x),
                'meanMillis', trunc(sum(x) / NULLIF(count(x), 0))::bigint)
              FROM unnest(samples) AS x WHERE x IS NOT NULL
            $$
            """,
            """
            CREATE FUNCTION \(s).share(part bigint, whole bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned) AS $$
              SELECT jsonb_build_object('part', part, 'whole', whole, 'rate', part::float8 / NULLIF(whole, 0)::float8)
            $$
            """,
            """
            CREATE FUNCTION \(s).attainment(achieved bigint, breached bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE \(pinned) AS $$
              SELECT jsonb_build_object('achieved', achieved, 'breached', breached,
                'attainment', achieved::float8 / NULLIF(achieved + breached, 0)::float8,
                'breachRate', breached::float8 / NULLIF(achieved + breached, 0)::float8)
            $$
            """,
            metricsFunction(schema: s),
        ]
    }

    /// `metrics(from, to, now, site, tier, channel, priority, customer_tier, group, category)`: the
    /// document `/api/metrics` answers as `metrics`, over the mirrored facts, by the same formulas
    /// (Sources/Dashboard/Metrics.swift) — a period [from, to), `now` for what is open, at risk or
    /// breached now, and the same filter. Absent values are left out, as the API leaves them out.
    static func metricsFunction(schema s: String) -> String {
        """
        CREATE FUNCTION \(s).metrics(p_from timestamptz, p_to timestamptz, p_now timestamptz DEFAULT now(),
            p_site text DEFAULT NULL, p_tier int DEFAULT NULL, p_channel text DEFAULT NULL, p_priority text DEFAULT NULL,
            p_customer_tier text DEFAULT NULL, p_group text DEFAULT NULL, p_category text DEFAULT NULL)
        RETURNS jsonb LANGUAGE sql STABLE \(pinned) AS $fn$
        WITH p AS (
          SELECT \(s).time_ms(p_from) AS f, \(s).time_ms(p_to) AS t, \(s).time_ms(p_now) AS n, 86400000::bigint AS d
        ), linked AS (
          -- SQLite's LIKE ignores ASCII case, as the dashboard's query does: 'KB:' links count too.
          SELECT DISTINCT e.ticket FROM \(s).ticket_element e WHERE e.set_name = 'links' AND e.element ~ '^[kK][bB]:'
        ), tk AS MATERIALIZED (
          SELECT x.id, x.status, x.open, x.created_ms, x.first_solved_ms, x.last_solved_ms, x.first_response_ms, x.frt_calendar_ms,
                 x.frt_business_ms, x.tto_calendar_ms, x.tto_business_ms, x.resolution_calendar_ms, x.resolution_business_ms,
                 x.escalated_ms, x.escalation_trigger, x.transferred, x.cross_site, x.max_level, x.exhausted, x.backstop_firings,
                 x.public_replies, x.reopens, x.reopened_within_30d, x.csat_score, x.csat_ms,
                 (x.created_ms >= p.f AND x.created_ms < p.t) AS cohort,
                 (x.first_solved_ms >= p.f AND x.first_solved_ms < p.t) IS TRUE AS solved_in,
                 (l.ticket IS NOT NULL) AS linked
          FROM \(s).fact_ticket x CROSS JOIN p LEFT JOIN linked l ON l.ticket = x.id
          WHERE (p_site IS NULL OR x.site = p_site) AND (p_tier IS NULL OR x.tier = p_tier) AND (p_channel IS NULL OR x.channel = p_channel)
            AND (p_priority IS NULL OR x.priority = p_priority) AND (p_customer_tier IS NULL OR x.customer_tier = p_customer_tier)
            AND (p_group IS NULL OR x."group" = p_group) AND (p_category IS NULL OR x.category = p_category)
        ), c AS (
          -- One pass over the tickets for every count, sum and sample of a ticket's own facts.
          SELECT count(*) FILTER (WHERE cohort) AS created, count(*) FILTER (WHERE solved_in) AS solved,
                 count(*) FILTER (WHERE open) AS open,
                 count(*) FILTER (WHERE open AND created_ms > p.n - p.d) AS age0,
                 count(*) FILTER (WHERE open AND created_ms <= p.n - p.d AND created_ms > p.n - 3 * p.d) AS age1,
                 count(*) FILTER (WHERE open AND created_ms <= p.n - 3 * p.d AND created_ms > p.n - 7 * p.d) AS age2,
                 count(*) FILTER (WHERE open AND created_ms <= p.n - 7 * p.d AND created_ms > p.n - 30 * p.d) AS age3,
                 count(*) FILTER (WHERE open AND created_ms <= p.n - 30 * p.d) AS age4,
                 min(created_ms) FILTER (WHERE open) AS oldest_open,
                 array_agg(frt_calendar_ms) FILTER (WHERE first_response_ms >= p.f AND first_response_ms < p.t) AS frt_calendar,
                 array_agg(frt_business_ms) FILTER (WHERE first_response_ms >= p.f AND first_response_ms < p.t) AS frt_business,
                 array_agg(tto_calendar_ms) FILTER (WHERE cohort) AS tto_calendar,
                 array_agg(tto_business_ms) FILTER (WHERE cohort) AS tto_business,
                 array_agg(resolution_calendar_ms) FILTER (WHERE last_solved_ms >= p.f AND last_solved_ms < p.t) AS resolution_calendar,
                 array_agg(resolution_business_ms) FILTER (WHERE last_solved_ms >= p.f AND last_solved_ms < p.t) AS resolution_business,
                 count(*) FILTER (WHERE cohort AND escalated_ms IS NOT NULL) AS escalated,
                 count(*) FILTER (WHERE cohort AND transferred) AS transferred,
                 count(*) FILTER (WHERE cohort AND cross_site) AS cross_site,
                 array_agg(escalated_ms - created_ms) FILTER (WHERE cohort AND escalated_ms IS NOT NULL) AS to_escalate,
                 COALESCE(sum(exhausted) FILTER (WHERE cohort), 0) AS exhausted,
                 COALESCE(sum(backstop_firings) FILTER (WHERE cohort), 0) AS backstop,
                 count(*) FILTER (WHERE solved_in AND public_replies <= 1 AND reopens = 0 AND escalated_ms IS NULL AND NOT transferred) AS fcr,
                 count(*) FILTER (WHERE solved_in AND public_replies < 2 AND NOT open) AS fcr_zendesk,
                 count(*) FILTER (WHERE solved_in AND reopened_within_30d) AS reopened,
                 count(*) FILTER (WHERE csat_ms >= p.f AND csat_ms < p.t) AS csat,
                 count(*) FILTER (WHERE csat_ms >= p.f AND csat_ms < p.t AND csat_score >= 4) AS csat_good,
                 count(*) FILTER (WHERE cohort AND last_solved_ms IS NOT NULL AND status <> 'merged' AND last_solved_ms - created_ms <= 30 * p.d) AS goal_met,
                 count(*) FILTER (WHERE cohort AND open AND p.n - created_ms > 30 * p.d) AS open_over_30d,
                 count(*) FILTER (WHERE cohort AND linked) AS linked,
                 count(*) FILTER (WHERE solved_in AND linked) AS linked_solved,
                 count(*) FILTER (WHERE solved_in AND linked AND escalated_ms IS NULL AND NOT transferred) AS linked_first_line
          FROM tk CROSS JOIN p
        ), runs AS MATERIALIZED (
          SELECT c.kind, c.ticket, c.stop_ms, c.calendar_ms, c.business_ms,
                 (c.stop_ms >= p.f AND c.stop_ms < p.t AND c.deadline_ms IS NULL AND c.target_ms IS NOT NULL) IS TRUE AS achieved,
                 (c.deadline_ms >= p.f AND c.deadline_ms < p.t AND c.deadline_ms <= p.n AND c.target_ms IS NOT NULL) IS TRUE AS breached,
                 (c.stop_ms IS NULL AND c.target_ms IS NOT NULL AND c.warn_ms <= p.n AND (c.deadline_ms IS NULL OR c.deadline_ms > p.n)) IS TRUE AS at_risk,
                 (c.stop_ms IS NULL AND c.target_ms IS NOT NULL AND c.deadline_ms <= p.n) IS TRUE AS breached_now
          FROM \(s).fact_clock c JOIN tk ON tk.id = c.ticket CROSS JOIN p
        ), kinds AS (
          SELECT kind, count(*) FILTER (WHERE achieved) AS a, count(*) FILTER (WHERE breached) AS b
          FROM runs GROUP BY kind HAVING count(*) FILTER (WHERE achieved OR breached) > 0
        ), r AS (
          -- One pass over the runs for the figures that are not per kind.
          SELECT count(DISTINCT ticket) FILTER (WHERE breached) AS breached_tickets,
                 count(DISTINCT ticket) FILTER (WHERE achieved OR breached) AS completed_tickets,
                 count(*) FILTER (WHERE at_risk) AS at_risk, count(*) FILTER (WHERE breached_now) AS breached_now,
                 array_agg(calendar_ms) FILTER (WHERE kind = 'nextResponse' AND stop_ms >= p.f AND stop_ms < p.t) AS next_calendar,
                 array_agg(business_ms) FILTER (WHERE kind = 'nextResponse' AND stop_ms >= p.f AND stop_ms < p.t) AS next_business
          FROM runs CROSS JOIN p
        ), hand AS (
          SELECT h.* FROM \(s).fact_handoff h JOIN tk ON tk.id = h.ticket, p WHERE h.requested_ms >= p.f AND h.requested_ms < p.t
        ), a AS (
          SELECT (SELECT COALESCE(SUM(a), 0) FROM kinds) AS achieved, (SELECT COALESCE(SUM(b), 0) FROM kinds) AS breached
        )
        SELECT jsonb_strip_nulls(jsonb_build_object(
          'filter', jsonb_build_object('site', p_site, 'tier', p_tier, 'channel', p_channel, 'priority', p_priority,
                                       'customerTier', p_customer_tier, 'group', p_group, 'category', p_category),
          'from', to_char(p_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
          'to', to_char(p_to AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
          'created', c.created, 'solved', c.solved, 'netFlow', c.created - c.solved,
          'backlog', jsonb_build_object(
            'total', c.open,
            'byStatus', COALESCE((SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM tk WHERE open GROUP BY status) b), '{}'),
            'byAge', jsonb_build_object('<1d', c.age0, '1-3d', c.age1, '3-7d', c.age2, '7-30d', c.age3, '>30d', c.age4),
            'oldestOpenAgeMillis', CASE WHEN c.oldest_open IS NOT NULL THEN GREATEST(0, p.n - c.oldest_open) END),
          'speed', jsonb_build_object(
            'firstResponse', jsonb_build_object('calendar', \(s).duration_stats(c.frt_calendar), 'business', \(s).duration_stats(c.frt_business)),
            'nextResponse', jsonb_build_object('calendar', \(s).duration_stats(r.next_calendar), 'business', \(s).duration_stats(r.next_business)),
            'timeToOwn', jsonb_build_object('calendar', \(s).duration_stats(c.tto_calendar), 'business', \(s).duration_stats(c.tto_business)),
            'resolution', jsonb_build_object('calendar', \(s).duration_stats(c.resolution_calendar), 'business', \(s).duration_stats(c.resolution_business))),
          'sla', jsonb_build_object(
            'clocks', COALESCE((SELECT jsonb_object_agg(kind, \(s).attainment(kinds.a, kinds.b)) FROM kinds), '{}'),
            'overall', \(s).attainment(a.achieved::bigint, a.breached::bigint),
            'breachRate', \(s).share(r.breached_tickets, r.completed_tickets),
            'atRiskNow', r.at_risk,
            'breachedNow', r.breached_now),
          'escalation', jsonb_build_object(
            'rate', \(s).share(c.escalated, c.created),
            'byTrigger', COALESCE((SELECT jsonb_object_agg(escalation_trigger, n) FROM (SELECT escalation_trigger, count(*) AS n FROM tk
                                   WHERE cohort AND escalation_trigger IS NOT NULL GROUP BY escalation_trigger) b), '{}'),
            'transferRate', \(s).share(c.transferred, c.created),
            'crossSiteRate', \(s).share(c.cross_site, c.created),
            'maxLevel', COALESCE((SELECT jsonb_object_agg(max_level::text, n) FROM (SELECT max_level, count(*) AS n FROM tk WHERE cohort GROUP BY max_level) b), '{}'),
            'timeToEscalate', \(s).duration_stats(c.to_escalate),
            'handoffs', (SELECT jsonb_build_object('requested', count(*), 'accepted', count(*) FILTER (WHERE accepted),
                           'rejected', count(*) FILTER (WHERE NOT accepted), 'timedOut', count(*) FILTER (WHERE timed_out),
                           'timeoutRate', (count(*) FILTER (WHERE timed_out))::float8 / NULLIF(count(*), 0)::float8,
                           'acceptance', \(s).duration_stats(array_agg(answered_ms - requested_ms) FILTER (WHERE accepted)))
                         FROM hand),
            'exhausted', c.exhausted,
            'backstopFirings', c.backstop),
          'quality', jsonb_build_object(
            'firstContactResolution', \(s).share(c.fcr, c.solved),
            'firstContactResolutionZendesk', \(s).share(c.fcr_zendesk, c.solved),
            'reopenRate', \(s).share(c.reopened, c.solved),
            'csat', \(s).share(c.csat_good, c.csat),
            'resolutionGoal30d', jsonb_build_object('cohort', c.created, 'met', c.goal_met, 'openOver30d', c.open_over_30d,
              'attainment', c.goal_met::float8 / NULLIF(c.created, 0)::float8, 'final', p.n >= p.t + 30 * p.d)),
          'knowledge', jsonb_build_object(
            'articles', (SELECT count(*) FROM \(s).article),
            'written', (SELECT count(*) FROM \(s).article WHERE created_hlc >= (p.f << 16) AND created_hlc < (p.t << 16)),
            'linkRate', \(s).share(c.linked, c.created),
            'firstLineWithArticle', \(s).share(c.linked_first_line, c.linked_solved),
            'top', COALESCE((SELECT jsonb_agg(jsonb_build_object('ref', 'KB-' || right(id, 8), 'title', title, 'uses', uses) ORDER BY uses DESC, id COLLATE "C")
                             FROM (SELECT a.id, a.title, count(*) AS uses FROM \(s).ticket_element e JOIN \(s).article a ON e.element = 'kb:' || a.id
                                   WHERE e.set_name = 'links' GROUP BY a.id, a.title ORDER BY uses DESC, a.id COLLATE "C" LIMIT 5) top), '[]'))))
        FROM p, c, r, a
        $fn$
        """
    }
}
