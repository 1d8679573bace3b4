import Escalation
import Foundation
import GRDB
import TicketModel
import TicketStore

/// One site as this replica sees it: its help-desk figures and the health of its replication.
///
/// Sync health (helpdesk-anchors §7, multi-site operations):
/// - `lastSeen` = the newest of: the last frame heard from the site in a session, and the newest block
///   stamp from it (this replica's own site: now).
/// - `lagMillis` = now − the physical time of the newest block received from the site.
/// - `blocksPendingIn` = blocks from the site held back here, waiting for earlier blocks;
///   `quarantined` = its blocks held back because they are stamped too far ahead of this clock.
/// - `blocksPendingOut` = blocks this replica holds that the site lacked when last heard
///   (from its last acknowledged version vector); `nil` if this replica never had a session with it.
/// - `skewMillis` = the site's clock minus this one's, from ping round trips.
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
    public var conflicts: [String: Int]
    // Help-desk figures of the site's tickets (owned now): backlog and SLA state now, flow over the period.
    public var backlog: Int
    public var atRiskNow: Int
    public var breachedNow: Int
    public var created: Int
    public var solved: Int
    public var escalationRate: Double?
    public var slaAttainment: Double?
    public var firstResponseMedianMillis: Int64?
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

public enum FleetQueries {
    static let dayMillis: Int64 = 86_400_000

    /// Site lines and totals for the period; `site` narrows to one site.
    public static func summary(_ database: TicketDatabase, period: Period, now: Int64, site: String? = nil) throws -> FleetSummary {
        let identity = try database.identity()
        let vector = try database.vector()
        let peers = Dictionary(try database.peers().map { ($0.site.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        let heard = try database.lastHeard()
        let held = try database.pendingBlocks()
        return try database.writer.read { db in
            var figures: [String: SiteHealth] = [:]
            func line(_ name: String) -> SiteHealth {
                figures[name] ?? SiteHealth(site: name, role: nil, isLocal: name == identity.site.rawValue, blocksPendingIn: 0, quarantined: 0,
                                            conflicts: [:], backlog: 0, atRiskNow: 0, breachedNow: 0, created: 0, solved: 0)
            }
            let p: StatementArguments = [period.from, period.to]
            for row in try Row.fetchAll(db, sql: """
                SELECT site, COALESCE(SUM(open), 0) AS backlog, COALESCE(SUM(createdAt >= ? AND createdAt < ?), 0) AS created,
                       COALESCE(SUM(firstSolvedAt >= ? AND firstSolvedAt < ?), 0) AS solved,
                       COALESCE(SUM(createdAt >= ? AND createdAt < ? AND escalatedAt IS NOT NULL), 0) AS escalated
                FROM metricTicket GROUP BY site
                """, arguments: p + p + p) {
                var s = line(row["site"])
                s.backlog = row["backlog"]
                s.created = row["created"]
                s.solved = row["solved"]
                s.escalationRate = ratio(row["escalated"], s.created)
                figures[s.site] = s
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT t.site, COALESCE(SUM(c.warnAt <= ? AND (c.deadline IS NULL OR c.deadline > ?)), 0) AS atRisk, COALESCE(SUM(c.deadline <= ?), 0) AS breached
                FROM metricClock c JOIN metricTicket t ON t.id = c.ticket
                WHERE c.stop IS NULL AND c.target IS NOT NULL GROUP BY t.site
                """, arguments: [now, now, now]) {
                var s = line(row["site"])
                s.atRiskNow = row["atRisk"] ?? 0
                s.breachedNow = row["breached"] ?? 0
                figures[s.site] = s
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT t.site, COALESCE(SUM(c.deadline IS NULL AND c.stop >= ? AND c.stop < ?), 0) AS achieved,
                       COALESCE(SUM(c.deadline >= ? AND c.deadline < ? AND c.deadline <= ?), 0) AS breached
                FROM metricClock c JOIN metricTicket t ON t.id = c.ticket WHERE c.target IS NOT NULL GROUP BY t.site
                """, arguments: p + p + [now]) {
                var s = line(row["site"])
                s.slaAttainment = ratio(row["achieved"] ?? 0, (row["achieved"] ?? 0) + (row["breached"] ?? 0))
                figures[s.site] = s
            }
            for name in Array(figures.keys) {
                var s = figures[name]!
                s.firstResponseMedianMillis = DurationStats(try Int64.fetchAll(db, sql: """
                    SELECT frtCalendar FROM metricTicket WHERE site = ? AND firstResponseAt >= ? AND firstResponseAt < ? AND frtCalendar IS NOT NULL
                    """, arguments: [name, period.from, period.to])).medianMillis
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
                    s.lastSeenMillis = siteID.flatMap { heard[$0] }.map { Int64($0) }
                    if let newest = try Int64.fetchOne(db, sql: "SELECT MAX(hlc) FROM block WHERE origin = ?", arguments: [name]) {
                        s.lagMillis = max(0, now - Int64(HLC(rawValue: UInt64(bitPattern: newest)).millis))
                    }
                    if let peer {
                        s.blocksPendingOut = vector.entries.reduce(0) { $0 + Int($1.value > peer.vector[$1.key] ? $1.value - peer.vector[$1.key] : 0) }
                    }
                }
                s.lastSeen = s.lastSeenMillis.map(SLAReport.iso)
                s.quarantined = held.filter { $0.origin.rawValue == name && $0.reason.hasPrefix("stamped too far ahead") }.count
                s.blocksPendingIn = held.filter { $0.origin.rawValue == name }.count - s.quarantined
                figures[name] = s
            }
            var sites = figures.values.sorted { $0.site < $1.site }
            if let site { sites = sites.filter { $0.site == site } }
            let achieved = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM metricClock c JOIN metricTicket t ON t.id = c.ticket
                WHERE c.target IS NOT NULL AND c.deadline IS NULL AND c.stop >= ? AND c.stop < ? AND (? IS NULL OR t.site = ?)
                """, arguments: p + [site, site]) ?? 0
            let breached = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM metricClock c JOIN metricTicket t ON t.id = c.ticket
                WHERE c.target IS NOT NULL AND c.deadline >= ? AND c.deadline < ? AND c.deadline <= ? AND (? IS NULL OR t.site = ?)
                """, arguments: p + [now, site, site]) ?? 0
            let created = sites.reduce(0) { $0 + $1.created }
            let escalated = sites.reduce(0) { $0 + Int((($1.escalationRate ?? 0) * Double($1.created)).rounded()) }
            let totals = FleetSummary.Totals(
                created: created, solved: sites.reduce(0) { $0 + $1.solved }, backlog: sites.reduce(0) { $0 + $1.backlog },
                atRiskNow: sites.reduce(0) { $0 + $1.atRiskNow }, breachedNow: sites.reduce(0) { $0 + $1.breachedNow },
                escalationRate: ratio(escalated, created), slaAttainment: ratio(achieved, achieved + breached))
            let pendingFacts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricDirty") ?? 0
            return FleetSummary(generatedAt: SLAReport.iso(now), asOf: sites.compactMap(\.lastSeenMillis).min().map(SLAReport.iso),
                                from: SLAReport.iso(period.from), to: SLAReport.iso(period.to), site: site ?? "all",
                                pendingFacts: pendingFacts, totals: totals, sites: sites)
        }
    }

    /// Open tickets at the end of each day of the period: created up to then minus those solved
    /// (for the last time, and still solved) up to then.
    public static func backlogSeries(_ db: Database, period: Period, site: String?) throws -> [SeriesPoint] {
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
    public static func escalationTrend(_ db: Database, period: Period, site: String?) throws -> [SeriesPoint] {
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
