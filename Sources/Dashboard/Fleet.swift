import Escalation
import Foundation
import GRDB
import TicketModel
import TicketStore

/// One site as this replica sees it: its help-desk figures and the health of its replication.
///
/// Sync health (README.md, "Dashboard": multi-site operations):
/// - `lastSeen` = the newest of: the last frame heard from the site in a session, and the newest block
///   stamp from it (this replica's own site: now).
/// - `lagMillis` = now − the physical time of the newest block received from the site.
/// - `blocksPendingIn` = blocks from the site held back here, waiting for earlier blocks;
///   `quarantined` = its blocks held back because they are stamped too far ahead of this clock.
/// - `blocksPendingOut` = blocks this replica holds that the site lacked when last heard
///   (from its last acknowledged version vector); `nil` if this replica never had a session with it.
/// - `skewMillis` = the site's clock minus this one's, from the hellos, refined by ping round trips.
/// - `conflicts` = concurrent writes of one field with different values that involve the site, by field.
public struct SiteHealth: Sendable, Encodable {
    public var site: String
    public var role: String?
    public var isLocal: Bool
    public var lastSeen: String?
    public var lastSeenMillis: Int64?
    public var lagMillis: Int64?
    public var blocksPendingIn: Int
    public var blocksPendingOut: Int?
    public var quarantined: Int
    public var skewMillis: Int64?
    public var lastError: String?
    /// The lowest seq at which a peer showed this replica another block of the site (two histories
    /// of one site: a copied store); `nil` when none was seen.
    public var divergedAtSeq: UInt64?
    /// How the last session with the site was protected: `tls`, `tls-ca`, or `plain` (unprotected).
    public var transport: String?
    public var conflicts: [String: Int]
    // Help-desk figures of the site's tickets (owned now): backlog and SLA state now, flow over the period.
    public var backlog: Int
    public var atRiskNow: Int
    public var breachedNow: Int
    public var created: Int
    public var solved: Int
    public var escalationRate: Double?
    public var slaAttainment: Double?
}

/// The fleet overview: totals and one line per site.
public struct FleetSummary: Sendable, Encodable {
    public var generatedAt: String
    /// The oldest `lastSeen` over the sites: every figure is at least this fresh.
    public var asOf: String?
    public var from: String
    public var to: String
    public var site: String
    public var pendingFacts: Int
    public var totals: Totals
    public var sites: [SiteHealth]

    public struct Totals: Sendable, Encodable {
        public var created: Int
        public var solved: Int
        public var backlog: Int
        public var atRiskNow: Int
        public var breachedNow: Int
        public var escalationRate: Double?
        public var slaAttainment: Double?
    }
}

/// One point of a daily or weekly series.
public struct SeriesPoint: Sendable, Encodable, Equatable {
    public var day: String
    public var value: Double?
}

/// Counts from `metricDay` over any interval: whole UTC days from the sums, the partial days at the
/// edges counted exactly from the facts (by the column's own time, through its index).
struct DaySums {
    let db: Database
    init(_ db: Database) { self.db = db }

    /// The exact count of `column` for times in [from, to), by site, from the facts.
    func exact(_ column: String, _ from: Int64, _ to: Int64) throws -> [String: Int] {
        let sql: String
        switch column {
        case "created": sql = "SELECT site, COUNT(*) AS n FROM metricTicket WHERE createdAt >= ? AND createdAt < ? GROUP BY site"
        case "firstSolved": sql = "SELECT site, COUNT(*) AS n FROM metricTicket WHERE firstSolvedAt >= ? AND firstSolvedAt < ? GROUP BY site"
        case "escalated":
            sql = "SELECT site, COUNT(*) AS n FROM metricTicket WHERE createdAt >= ? AND createdAt < ? AND escalatedAt IS NOT NULL GROUP BY site"
        case "achieved":
            sql = "SELECT site, COUNT(*) AS n FROM metricClock WHERE stop >= ? AND stop < ? AND +deadline IS NULL AND target IS NOT NULL GROUP BY site"
        case "breached":
            sql = "SELECT site, COUNT(*) AS n FROM metricClock WHERE deadline >= ? AND deadline < ? AND target IS NOT NULL GROUP BY site"
        case "running":
            sql = "SELECT site, COUNT(*) AS n FROM metricClock WHERE deadline >= ? AND deadline < ? AND stop IS NULL AND target IS NOT NULL GROUP BY site"
        default: preconditionFailure("no exact count for \(column)")
        }
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: sql, arguments: [from, to]) { out[row["site"]] = row["n"] }
        return out
    }

    /// Whole days [firstDay, endDay) from the sums, by site.
    func days(_ column: String, _ firstDay: Int64?, _ endDay: Int64) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT site, COALESCE(SUM(\(column)), 0) AS n FROM metricDay WHERE (? IS NULL OR day >= ?) AND day < ? GROUP BY site
            """, arguments: [firstDay, firstDay, endDay]) {
            out[row["site"]] = row["n"]
        }
        return out
    }

    /// `column` for times in [from, to), by site.
    func count(_ column: String, _ from: Int64, _ to: Int64) throws -> [String: Int] {
        guard from < to else { return [:] }
        let firstFull = MetricIndex.day(from + MetricIndex.dayMillis - 1)  // the first day starting at or after `from`
        let endFull = MetricIndex.day(to)                     // days before this one end by `to`
        guard firstFull < endFull else { return try exact(column, from, to) }
        var out = try days(column, firstFull, endFull)
        out.merge(try exact(column, from, firstFull * MetricIndex.dayMillis), uniquingKeysWith: +)
        out.merge(try exact(column, endFull * MetricIndex.dayMillis, to), uniquingKeysWith: +)
        return out
    }

    /// `column` for all times before `through` (all times when `nil`), by site.
    func total(_ column: String, through: Int64?) throws -> [String: Int] {
        guard let through else { return try days(column, nil, .max) }
        let endFull = MetricIndex.day(through)
        var out = try days(column, nil, endFull)
        out.merge(try exact(column, endFull * MetricIndex.dayMillis, through + 1), uniquingKeysWith: +)
        return out
    }
}

/// The one way to read the dashboard's figures from a store: the fleet summary, the metric set and
/// the charts' series, for the HTTP routes, the CLI and any other mirror of the dashboard.
///
/// Attaching applies the dashboard's migrations (``MetricIndex`` keeps the facts current). Every
/// query is one read transaction, awaited through GRDB's async API: it blocks neither an event
/// loop nor a cooperative thread, and it sees one consistent snapshot of the store.
///
/// ```swift
/// let queries = try await FleetQueries(store)
/// let week = Period.last(days: 7, now: now)
/// let summary = try await queries.summary(period: week, now: now)
/// let urgent = try await queries.metrics(MetricFilter(priority: "urgent"), period: week, now: now)
/// ```
///
/// ## Topics
/// - ``summary(period:now:site:)``, ``metrics(_:period:now:)``, ``series(period:site:)``, ``pendingFacts()``
public struct FleetQueries: Sendable {
    static let dayMillis = MetricIndex.dayMillis
    let database: TicketDatabase

    /// Attaches to `database`, applying the dashboard's migrations.
    /// - Throws: a `StoreError` if a newer Tierline's dashboard migrated the store; SQLite errors.
    public init(_ database: TicketDatabase) async throws {
        try await FactSchema.attach(database)
        self.database = database
    }

    /// Site lines (help-desk figures and replication health) and totals for `period`; `site` narrows
    /// to one site. `now` decides what runs late and how old the news from each site is.
    public func summary(period: Period, now: Int64, site: String? = nil) async throws -> FleetSummary {
        try await database.writer.read { db in try Self.summary(db, period: period, now: now, site: site) }
    }

    /// Every site ``summary(period:now:site:)`` has a line for, sorted: the sites a `site` filter may name.
    public func sites(now: Int64) async throws -> [String] {
        try await database.writer.read { db in
            try Self.summary(db, period: Period(from: now - Self.dayMillis, to: now), now: now, site: nil).sites.map(\.site).sorted()
        }
    }

    /// Every help-desk figure of ``MetricSet`` over the tickets `filter` matches, for `period`.
    public func metrics(_ filter: MetricFilter = MetricFilter(), period: Period, now: Int64) async throws -> MetricSet {
        try await database.writer.read { db in try MetricQueries.metrics(db, filter: filter, period: period, now: now) }
    }

    /// The charts' data: the backlog at the end of each day of `period` and the escalation rate of
    /// each weekly creation cohort, of one site or all (`nil`).
    public func series(period: Period, site: String? = nil) async throws -> (backlog: [SeriesPoint], escalationRate: [SeriesPoint]) {
        try await database.writer.read { db in
            (try Self.backlogSeries(db, period: period, site: site), try Self.escalationTrend(db, period: period, site: site))
        }
    }

    /// What the dashboard's page shows, read in one transaction: the summary, the metric set and,
    /// unless `series` is false, the series.
    func overview(_ filter: MetricFilter, period: Period, now: Int64, series: Bool = true) async throws -> Overview {
        try await database.writer.read { db in
            Overview(summary: try Self.summary(db, period: period, now: now, site: filter.site),
                     metrics: try MetricQueries.metrics(db, filter: filter, period: period, now: now),
                     backlog: series ? try Self.backlogSeries(db, period: period, site: filter.site) : [],
                     escalationRate: series ? try Self.escalationTrend(db, period: period, site: filter.site) : [])
        }
    }

    struct Overview: Sendable {
        var summary: FleetSummary
        var metrics: MetricSet
        var backlog: [SeriesPoint]
        var escalationRate: [SeriesPoint]
    }

    /// Tickets whose facts wait to be derived (every figure leaves them out until then).
    public func pendingFacts() async throws -> Int {
        try await database.writer.read { db in try MetricIndex.pending(db) }
    }

    static func summary(_ db: Database, period: Period, now: Int64, site: String?) throws -> FleetSummary {
        let identity = try TicketDatabase.identity(db)
        let vector = try TicketDatabase.vector(db)
        let peers = Dictionary(try TicketDatabase.peers(db).map { ($0.site.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        let heard = try TicketDatabase.lastHeard(db)
        let held = try TicketDatabase.pendingBlocks(db)
        var diverged: [String: UInt64] = [:]
        for d in try TicketDatabase.divergences(db) { diverged[d.origin.rawValue] = min(diverged[d.origin.rawValue] ?? d.seq, d.seq) }
        var figures: [String: SiteHealth] = [:]
        func line(_ name: String) -> SiteHealth {
            figures[name] ?? SiteHealth(site: name, role: nil, isLocal: name == identity.site.rawValue, blocksPendingIn: 0, quarantined: 0,
                                        conflicts: [:], backlog: 0, atRiskNow: 0, breachedNow: 0, created: 0, solved: 0)
        }
        // Help-desk figures from the per-day sums, plus exact counts for the partial days at the
        // period's edges: a few hundred rows and two short index ranges, however many tickets.
        let sums = DaySums(db)
        let untilNow = min(period.to, now)
        let backlog = try sums.total("created", through: nil).merging(try sums.total("solved", through: nil).mapValues { -$0 }, uniquingKeysWith: +)
        let created = try sums.count("created", period.from, period.to)
        let solved = try sums.count("firstSolved", period.from, period.to)
        let escalated = try sums.count("escalated", period.from, period.to)
        let achieved = try sums.count("achieved", period.from, untilNow)
        let breached = try sums.count("breached", period.from, untilNow)
        let breachedNow = try sums.total("running", through: now)
        var atRisk: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT site, COUNT(*) AS n FROM metricClock INDEXED BY metricClock_running
            WHERE stop IS NULL AND target IS NOT NULL AND (deadline > ? OR deadline IS NULL) AND warnAt <= ? GROUP BY site
            """, arguments: [now, now]) {
            atRisk[row["site"]] = row["n"]
        }
        for name in Set(backlog.keys).union(created.keys).union(breachedNow.keys).union(atRisk.keys) {
            var s = line(name)
            s.backlog = backlog[name] ?? 0
            s.created = created[name] ?? 0
            s.solved = solved[name] ?? 0
            s.escalationRate = ratio(escalated[name] ?? 0, s.created)
            s.slaAttainment = ratio(achieved[name] ?? 0, (achieved[name] ?? 0) + (breached[name] ?? 0))
            s.breachedNow = breachedNow[name] ?? 0
            s.atRiskNow = atRisk[name] ?? 0
            figures[name] = s
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT site, field, COUNT(*) AS n FROM (
              SELECT firstSite AS site, field FROM ticketConflict UNION ALL
              SELECT secondSite AS site, field FROM ticketConflict WHERE secondSite != firstSite)
            GROUP BY site, field
            """) {
            var s = line(row["site"])
            s.conflicts[row["field"]] = row["n"]
            figures[s.site] = s
        }

        // Sync health for every site known: from the vector, the peers and the held blocks.
        for name in Set(vector.entries.keys.map(\.rawValue)).union(peers.keys).union([identity.site.rawValue]) {
            var s = line(name)
            let siteID = try? SiteID(name)
            if s.isLocal {
                s.role = identity.role.rawValue
                s.lastSeenMillis = now
                s.lagMillis = 0
            } else {
                let peer = peers[name]
                s.role = peer?.role.rawValue
                s.skewMillis = peer?.skewMillis
                s.lastError = peer?.lastError
                s.transport = peer?.transport
                s.lastSeenMillis = siteID.flatMap { heard[$0] }.map { Int64($0) }
                // A site's stamps grow with its seq: its newest block is its last.
                if let newest = try Int64.fetchOne(db, sql: "SELECT hlc FROM block WHERE origin = ? ORDER BY seq DESC LIMIT 1", arguments: [name]) {
                    s.lagMillis = max(0, now - Int64(HLC(rawValue: UInt64(bitPattern: newest)).millis))
                }
                if let peer {
                    s.blocksPendingOut = vector.entries.reduce(0) { $0 + Int($1.value > peer.vector[$1.key] ? $1.value - peer.vector[$1.key] : 0) }
                }
            }
            s.lastSeen = s.lastSeenMillis.map(SLAReport.iso)
            s.quarantined = held.filter { $0.origin.rawValue == name && $0.reason.hasPrefix("stamped too far ahead") }.count
            s.divergedAtSeq = diverged[name]
            s.blocksPendingIn = held.filter { $0.origin.rawValue == name }.count - s.quarantined
            figures[name] = s
        }
        var sites = figures.values.sorted { $0.site < $1.site }
        if let site { sites = sites.filter { $0.site == site } }
        let chosen = Set(sites.map(\.site))
        func sum(_ counts: [String: Int]) -> Int { counts.filter { chosen.contains($0.key) }.values.reduce(0, +) }
        let totals = FleetSummary.Totals(
            created: sum(created), solved: sum(solved), backlog: sum(backlog), atRiskNow: sum(atRisk), breachedNow: sum(breachedNow),
            escalationRate: ratio(sum(escalated), sum(created)), slaAttainment: ratio(sum(achieved), sum(achieved) + sum(breached)))
        let pendingFacts = try MetricIndex.dirtyCount(db)
        return FleetSummary(generatedAt: SLAReport.iso(now), asOf: sites.compactMap(\.lastSeenMillis).min().map(SLAReport.iso),
                            from: SLAReport.iso(period.from), to: SLAReport.iso(period.to), site: site ?? "all",
                            pendingFacts: pendingFacts, totals: totals, sites: sites)
    }

    /// Open tickets at the end of each day of the period: created up to then minus those solved
    /// (for the last time, and still solved) up to then.
    static func backlogSeries(_ db: Database, period: Period, site: String?) throws -> [SeriesPoint] {
        let first = MetricIndex.day(period.from), last = MetricIndex.day(period.to - 1)
        let before = try Row.fetchOne(db, sql: """
            SELECT COALESCE(SUM(created), 0) AS c, COALESCE(SUM(solved), 0) AS s FROM metricDay WHERE day < ? AND (? IS NULL OR site = ?)
            """, arguments: [first, site, site])
        var open = Int((before?["c"] as Int64? ?? 0) - (before?["s"] as Int64? ?? 0))
        var byDay: [Int64: Int] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT day, COALESCE(SUM(created), 0) - COALESCE(SUM(solved), 0) AS delta FROM metricDay WHERE day >= ? AND day <= ? AND (? IS NULL OR site = ?) GROUP BY day
            """, arguments: [first, last, site, site]) {
            byDay[row["day"]] = row["delta"]
        }
        var points: [SeriesPoint] = []
        for day in first...max(first, last) {
            open += byDay[day] ?? 0
            points.append(SeriesPoint(day: String(SLAReport.iso(day * dayMillis).prefix(10)), value: Double(open)))
        }
        return points
    }

    /// Escalation rate of each weekly creation cohort (weeks end at the period's end).
    static func escalationTrend(_ db: Database, period: Period, site: String?) throws -> [SeriesPoint] {
        let lastDay = MetricIndex.day(period.to - 1)
        let firstDay = MetricIndex.day(period.from)
        var points: [SeriesPoint] = []
        var end = lastDay
        while end >= firstDay {
            let start = max(firstDay, end - 6)
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(created), 0) AS c, COALESCE(SUM(escalated), 0) AS e FROM metricDay
                WHERE day >= ? AND day <= ? AND (? IS NULL OR site = ?)
                """, arguments: [start, end, site, site])
            let created = Int(row?["c"] as Int64? ?? 0)
            points.append(SeriesPoint(day: String(SLAReport.iso(start * dayMillis).prefix(10)),
                                      value: ratio(Int(row?["e"] as Int64? ?? 0), created)))
            end = start - 1
        }
        return points.reversed()
    }
}
