import Escalation
import Foundation
import GRDB
import TicketModel
import TicketStore

/// Which tickets a figure counts: every set member must match (exact text).
public struct MetricFilter: Sendable, Equatable, Encodable {
    public var site: String?
    /// Support tier: the current escalation level (0 = first line).
    public var tier: Int?
    public var channel: String?
    public var priority: String?
    public var customerTier: String?
    public var group: String?
    public var category: String?

    public init(site: String? = nil, tier: Int? = nil, channel: String? = nil, priority: String? = nil,
                customerTier: String? = nil, group: String? = nil, category: String? = nil) {
        self.site = site
        self.tier = tier
        self.channel = channel
        self.priority = priority
        self.customerTier = customerTier
        self.group = group
        self.category = category
    }

    /// `AND`-joined conditions on the `metricTicket` alias `t`, with their arguments.
    func sql() -> (String, StatementArguments) {
        var parts: [String] = []
        var arguments = StatementArguments()
        func add(_ column: String, _ value: (any DatabaseValueConvertible)?) {
            guard let value else { return }
            parts.append("t.\(column) = ?")
            _ = arguments.append(contentsOf: [value])
        }
        add("site", site)
        add("tier", tier)
        add("channel", channel)
        add("priority", priority)
        add("customerTier", customerTier)
        add("grp", group)
        add("category", category)
        return (parts.isEmpty ? "1" : parts.joined(separator: " AND "), arguments)
    }
}

/// A half-open interval of time [from, to), in milliseconds since 1970.
public struct Period: Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public init(from: Int64, to: Int64) {
        self.from = from
        self.to = to
    }
    /// The `days` days up to `now`.
    public static func last(days: Int, now: Int64) -> Period { Period(from: now - Int64(days) * 86_400_000, to: now) }
}

/// Median, 90th percentile and mean of a set of durations (ms), by the nearest-rank rule: the
/// p-quantile of n sorted samples is the ⌈p·n⌉-th (so the median of an even count is the lower middle).
public struct DurationStats: Sendable, Equatable, Encodable {
    public var count: Int
    public var medianMillis: Int64?
    public var p90Millis: Int64?
    public var meanMillis: Int64?

    public init(_ samples: [Int64]) {
        let sorted = samples.sorted()
        count = sorted.count
        guard !sorted.isEmpty else { return }
        func rank(_ p: Double) -> Int64 { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        medianMillis = rank(0.5)
        p90Millis = rank(0.9)
        meanMillis = sorted.reduce(0, +) / Int64(sorted.count)
    }
}

/// A duration measured both ways.
public struct SpeedFigure: Sendable, Equatable, Encodable {
    public var calendar: DurationStats
    /// Business time of the pinned policy's calendar, for tickets with a pinned policy.
    public var business: DurationStats
}

/// `attainment = achieved / (achieved + breached)` for one clock kind; `breachRate = breached / (achieved + breached)`.
public struct Attainment: Sendable, Equatable, Encodable {
    public var achieved: Int
    public var breached: Int
    public var attainment: Double?
    public var breachRate: Double?
    public init(achieved: Int, breached: Int) {
        self.achieved = achieved
        self.breached = breached
        attainment = ratio(achieved, achieved + breached)
        breachRate = ratio(breached, achieved + breached)
    }
}

/// A share: `part / whole`, `nil` when nothing was counted.
public struct Share: Sendable, Equatable, Encodable {
    public var part: Int
    public var whole: Int
    public var rate: Double?
    public init(_ part: Int, of whole: Int) {
        self.part = part
        self.whole = whole
        rate = ratio(part, whole)
    }
}

func ratio(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }

/// Every help-desk figure of README.md's "Dashboard" table that Tierline's data supports, for one filter and period.
///
/// Formulas (P = the period, "cohort" = tickets created in P, all times in ms):
/// - `created` = |{t : createdAt ∈ P}|; `solved` = |{t : firstSolvedAt ∈ P}|; `netFlow` = created − solved.
/// - `backlog` = open tickets now (not solved, closed or merged), by status and by age (now − createdAt)
///   in buckets <1d, 1–3d, 3–7d, 7–30d, >30d; `oldestOpenAgeMillis` = max age.
/// - Speed (median, p90, mean by nearest rank; calendar time for all tickets, business time for
///   tickets with a pinned policy):
///   `firstResponse` = firstResponseAt − createdAt for firstResponseAt ∈ P, leaving out tickets where
///   an agent wrote to the customer before the customer did; `nextResponse` = per customer message that
///   starts a next-response run, run stop − message time, for stops in P; `timeToOwn` = first assignee
///   set − createdAt over the cohort; `resolution` = last solve − createdAt for tickets solved (still) with
///   the last solve in P.
/// - SLA per clock kind: achieved = runs with a target that stopped in P before any deadline; breached =
///   runs whose deadline fell in P (and before now), whether they stopped late or still run.
///   `attainment` = achieved / (achieved + breached). `breachRate` = tickets with a breach in P / tickets
///   with a run achieved or breached in P.
/// - `atRiskNow` = running runs past their warning point and not past their deadline; `breachedNow` =
///   running (not stopped) runs past their deadline.
/// - Escalation over the cohort: `rate` = tickets with a hierarchical escalation (ladder start, level
///   fired or agent escalation) / cohort; split by what started the first one; `transferRate` = tickets
///   with a `transferred` record / cohort; `crossSiteRate` = tickets with an accepted handoff to a site
///   other than their origin / cohort; `maxLevel` = distribution of the highest level fired;
///   `timeToEscalate` = first escalation − createdAt; `exhausted` and `backstopFirings` are sums over
///   the cohort.
/// - Handoffs requested in P: acceptance time = answer − request for accepted ones; `timeoutRate` =
///   requests whose ladder fired a later level before any answer / requests.
/// - Quality over tickets first solved in P: `firstContactResolution` = ≤ 1 public agent reply, never
///   reopened, never escalated or transferred; `firstContactResolutionZendesk` = < 2 public agent
///   replies and resolved now; `reopenRate` = reopened within 30 days of the first solve.
/// - `csat` over answers given in P (custom field `csat_score`, 1–5, written by the intake API's
///   survey answer): good = score ≥ 4, rate = good / answers.
/// - Knowledge: `articles` held, `written` in P; `linkRate` = cohort tickets with a `kb:` link /
///   cohort; `firstLineWithArticle` = tickets first solved in P with a link and never escalated or
///   transferred / tickets first solved in P with a link; `top` = the 5 most linked articles.
/// - `resolutionGoal30d` over the cohort: met = last solve − createdAt ≤ 30 days; `openOver30d` = still
///   open and older than 30 days; `final` once now ≥ end of P + 30 days.
public struct MetricSet: Sendable, Encodable {
    public struct Backlog: Sendable, Encodable {
        public var total: Int
        public var byStatus: [String: Int]
        public var byAge: [String: Int]
        public var oldestOpenAgeMillis: Int64?
    }
    public struct Speed: Sendable, Encodable {
        public var firstResponse: SpeedFigure
        public var nextResponse: SpeedFigure
        public var timeToOwn: SpeedFigure
        public var resolution: SpeedFigure
    }
    public struct SLA: Sendable, Encodable {
        public var clocks: [String: Attainment]
        public var overall: Attainment
        public var breachRate: Share
        public var atRiskNow: Int
        public var breachedNow: Int
    }
    public struct Handoffs: Sendable, Encodable {
        public var requested: Int
        public var accepted: Int
        public var rejected: Int
        public var timedOut: Int
        public var timeoutRate: Double?
        public var acceptance: DurationStats
    }
    public struct Escalation: Sendable, Encodable {
        public var rate: Share
        public var byTrigger: [String: Int]
        public var transferRate: Share
        public var crossSiteRate: Share
        public var maxLevel: [String: Int]
        public var timeToEscalate: DurationStats
        public var handoffs: Handoffs
        public var exhausted: Int
        public var backstopFirings: Int
    }
    public struct Goal: Sendable, Encodable {
        public var cohort: Int
        public var met: Int
        public var openOver30d: Int
        public var attainment: Double?
        public var final: Bool
    }
    public struct Quality: Sendable, Encodable {
        public var firstContactResolution: Share
        public var firstContactResolutionZendesk: Share
        public var reopenRate: Share
        public var csat: Share
        public var resolutionGoal30d: Goal
    }

    public var filter: MetricFilter
    public var from: String
    public var to: String
    public var created: Int
    public var solved: Int
    public var netFlow: Int
    public var backlog: Backlog
    public var speed: Speed
    public var sla: SLA
    public var escalation: Escalation
    public var quality: Quality
    public var knowledge: Knowledge

    public struct Knowledge: Sendable, Encodable {
        public struct Top: Sendable, Encodable {
            public var ref: String
            public var title: String
            public var uses: Int
        }
        /// Articles this replica holds, from every site.
        public var articles: Int
        /// Articles written in P.
        public var written: Int
        /// Tickets of the cohort (created in P) that first line linked to an article.
        public var linkRate: Share
        /// Of the tickets first solved in P that used an article, those never escalated or transferred.
        public var firstLineWithArticle: Share
        /// The most used articles (all time), at most 5.
        public var top: [Top]
    }
}

/// The SQL behind ``MetricSet``; every query reads the derived facts under one read transaction.
/// Prepared raw SQL on purpose: these aggregations are the dashboard's measured hot path (the
/// benchmark's `metrics_*` figures). ``FleetQueries`` is the way in.
enum MetricQueries {
    static let day = MetricIndex.dayMillis
    static let ageBuckets: [(String, Int64)] = [("<1d", day), ("1-3d", 3 * day), ("3-7d", 7 * day), ("7-30d", 30 * day), (">30d", .max)]

    static func metrics(_ db: Database, filter: MetricFilter, period: Period, now: Int64) throws -> MetricSet {
        let (condition, filterArguments) = filter.sql()
        func args(_ more: [(any DatabaseValueConvertible)?]) -> StatementArguments {
            var all = filterArguments
            _ = all.append(contentsOf: StatementArguments(more))
            return all
        }
        func count(_ extra: String, _ more: [(any DatabaseValueConvertible)?] = []) throws -> Int {
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricTicket t WHERE \(condition) AND \(extra)", arguments: args(more)) ?? 0
        }
        func values(_ column: String, _ extra: String, _ more: [(any DatabaseValueConvertible)?] = []) throws -> [Int64] {
            try Int64.fetchAll(db, sql: "SELECT \(column) FROM metricTicket t WHERE \(condition) AND \(extra) AND \(column) IS NOT NULL",
                               arguments: args(more))
        }
        let p: [(any DatabaseValueConvertible)?] = [period.from, period.to]
        let inCohort = "t.createdAt >= ? AND t.createdAt < ?"

        let created = try count(inCohort, p)
        let solved = try count("t.firstSolvedAt >= ? AND t.firstSolvedAt < ?", p)

        // Backlog now.
        var byStatus: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT t.status, COUNT(*) AS n FROM metricTicket t WHERE t.open = 1 AND \(condition) GROUP BY t.status",
                                    arguments: filterArguments) {
            byStatus[row["status"]] = row["n"]
        }
        // Age buckets by creation time: one pass over the open tickets (a ticket stamped slightly ahead
        // of this clock is younger than a day).
        var byAge = Dictionary(uniqueKeysWithValues: ageBuckets.map { ($0.0, 0) })
        let bucket = "CASE " + ageBuckets.dropLast().enumerated().map { "WHEN t.createdAt > ? - \(ageBuckets[$0.offset].1) THEN \($0.offset)" }
            .joined(separator: " ") + " ELSE \(ageBuckets.count - 1) END"
        var bucketArguments = StatementArguments(Array(repeating: now, count: ageBuckets.count - 1))
        _ = bucketArguments.append(contentsOf: filterArguments)
        for row in try Row.fetchAll(db, sql: "SELECT \(bucket) AS b, COUNT(*) AS n FROM metricTicket t WHERE t.open = 1 AND \(condition) GROUP BY b",
                                    arguments: bucketArguments) {
            byAge[ageBuckets[row["b"] as Int].0] = row["n"]
        }
        let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(t.createdAt) FROM metricTicket t WHERE t.open = 1 AND \(condition)", arguments: filterArguments)
        let backlog = MetricSet.Backlog(total: byStatus.values.reduce(0, +), byStatus: byStatus, byAge: byAge,
                                        oldestOpenAgeMillis: oldest.map { max(0, now - $0) })

        // Speed.
        func figure(_ calendar: String, _ business: String, _ extra: String) throws -> SpeedFigure {
            SpeedFigure(calendar: DurationStats(try values(calendar, extra, p)), business: DurationStats(try values(business, extra, p)))
        }
        func clockValues(_ column: String, kind: String) throws -> [Int64] {
            try Int64.fetchAll(db, sql: """
                SELECT c.\(column) FROM metricClock c JOIN metricTicket t ON t.id = c.ticket
                WHERE \(condition) AND c.kind = ? AND c.stop >= ? AND c.stop < ? AND c.\(column) IS NOT NULL
                """, arguments: args([kind, period.from, period.to]))
        }
        let speed = MetricSet.Speed(
            firstResponse: try figure("t.frtCalendar", "t.frtBusiness", "t.firstResponseAt >= ? AND t.firstResponseAt < ?"),
            nextResponse: SpeedFigure(calendar: DurationStats(try clockValues("calendarMillis", kind: "nextResponse")),
                                      business: DurationStats(try clockValues("businessMillis", kind: "nextResponse"))),
            timeToOwn: try figure("t.ttoCalendar", "t.ttoBusiness", inCohort),
            resolution: try figure("t.resolutionCalendar", "t.resolutionBusiness", "t.lastSolvedAt >= ? AND t.lastSolvedAt < ?"))

        // SLA attainment per clock kind: achieved runs by their stop, breached ones by their deadline,
        // each through its own index (`+` keeps the planner off the deadline index for achieved runs).
        let achievedWhere = "c.stop >= ? AND c.stop < ? AND +c.deadline IS NULL AND c.target IS NOT NULL"
        let breachedWhere = "c.deadline >= ? AND c.deadline < ? AND c.deadline <= ? AND c.target IS NOT NULL"
        let achievedArguments: [(any DatabaseValueConvertible)?] = [period.from, period.to]
        let breachedArguments: [(any DatabaseValueConvertible)?] = [period.from, period.to, now]
        func perKind(_ clause: String, _ more: [(any DatabaseValueConvertible)?]) throws -> [String: Int] {
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT c.kind, COUNT(*) AS n FROM metricClock c JOIN metricTicket t ON t.id = c.ticket WHERE \(clause) AND \(condition) GROUP BY c.kind
                """, arguments: StatementArguments(more) + filterArguments) {
                out[row["kind"]] = row["n"]
            }
            return out
        }
        let achievedByKind = try perKind(achievedWhere, achievedArguments)
        let breachedByKind = try perKind(breachedWhere, breachedArguments)
        var clocks: [String: Attainment] = [:]
        for kind in Set(achievedByKind.keys).union(breachedByKind.keys) {
            clocks[kind] = Attainment(achieved: achievedByKind[kind] ?? 0, breached: breachedByKind[kind] ?? 0)
        }
        let totals = (achievedByKind.values.reduce(0, +), breachedByKind.values.reduce(0, +))
        func tickets(_ clause: String) -> String {
            "SELECT c.ticket FROM metricClock c JOIN metricTicket t ON t.id = c.ticket WHERE \(clause) AND \(condition)"
        }
        let breachedTickets = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT ticket) FROM (\(tickets(breachedWhere)))",
                                               arguments: StatementArguments(breachedArguments) + filterArguments) ?? 0
        let completedTickets = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(tickets(achievedWhere)) UNION \(tickets(breachedWhere)))",
                                                arguments: StatementArguments(achievedArguments) + filterArguments
                                                    + StatementArguments(breachedArguments) + filterArguments) ?? 0
        let active = "c.stop IS NULL AND c.target IS NOT NULL"
        let clockCount = { (clause: String, more: [(any DatabaseValueConvertible)?]) throws -> Int in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricClock c JOIN metricTicket t ON t.id = c.ticket WHERE \(condition) AND \(clause)",
                             arguments: args(more)) ?? 0
        }
        let sla = MetricSet.SLA(
            clocks: clocks, overall: Attainment(achieved: totals.0, breached: totals.1),
            breachRate: Share(breachedTickets, of: completedTickets),
            atRiskNow: try clockCount("\(active) AND c.warnAt <= ? AND (c.deadline IS NULL OR c.deadline > ?)", [now, now]),
            breachedNow: try clockCount("\(active) AND c.deadline <= ?", [now]))

        // Escalation over the cohort.
        var byTrigger: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT t.escalationTrigger AS trigger, COUNT(*) AS n FROM metricTicket t
            WHERE \(condition) AND \(inCohort) AND t.escalationTrigger IS NOT NULL GROUP BY t.escalationTrigger
            """, arguments: args(p)) {
            byTrigger[row["trigger"]] = row["n"]
        }
        var maxLevel: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT t.maxLevel AS level, COUNT(*) AS n FROM metricTicket t WHERE \(condition) AND \(inCohort) GROUP BY t.maxLevel",
                                    arguments: args(p)) {
            maxLevel[String(row["level"] as Int)] = row["n"]
        }
        let sums = try Row.fetchOne(db, sql: """
            SELECT COALESCE(SUM(t.exhausted), 0) AS exhausted, COALESCE(SUM(t.backstopFirings), 0) AS backstop
            FROM metricTicket t WHERE \(condition) AND \(inCohort)
            """, arguments: args(p))
        let handoffRows = try Row.fetchAll(db, sql: """
            SELECT h.requestedAt, h.answeredAt, h.accepted, h.timedOut FROM metricHandoff h JOIN metricTicket t ON t.id = h.ticket
            WHERE \(condition) AND h.requestedAt >= ? AND h.requestedAt < ?
            """, arguments: args(p))
        let accepted = handoffRows.filter { ($0["accepted"] as Bool?) == true }
        let timedOut = handoffRows.filter { $0["timedOut"] as Bool }.count
        let handoffs = MetricSet.Handoffs(
            requested: handoffRows.count, accepted: accepted.count,
            rejected: handoffRows.filter { ($0["accepted"] as Bool?) == false }.count, timedOut: timedOut,
            timeoutRate: ratio(timedOut, handoffRows.count),
            acceptance: DurationStats(accepted.map { ($0["answeredAt"] as Int64) - ($0["requestedAt"] as Int64) }))
        let escalation = MetricSet.Escalation(
            rate: Share(try count("\(inCohort) AND t.escalatedAt IS NOT NULL", p), of: created),
            byTrigger: byTrigger,
            transferRate: Share(try count("\(inCohort) AND t.transferred", p), of: created),
            crossSiteRate: Share(try count("\(inCohort) AND t.crossSite", p), of: created),
            maxLevel: maxLevel,
            timeToEscalate: DurationStats(try values("t.escalatedAt - t.createdAt", "\(inCohort) AND t.escalatedAt IS NOT NULL", p)),
            handoffs: handoffs, exhausted: sums?["exhausted"] ?? 0, backstopFirings: sums?["backstop"] ?? 0)

        // Quality over tickets first solved in P.
        let solvedInP = "t.firstSolvedAt >= ? AND t.firstSolvedAt < ?"
        let csatAnswers = try count("t.csatAt >= ? AND t.csatAt < ?", p)
        let goalMet = try count("\(inCohort) AND t.lastSolvedAt IS NOT NULL AND t.status != 'merged' AND t.lastSolvedAt - t.createdAt <= ?", p + [30 * day])
        let quality = MetricSet.Quality(
            firstContactResolution: Share(try count("\(solvedInP) AND t.publicReplies <= 1 AND t.reopens = 0 AND t.escalatedAt IS NULL AND NOT t.transferred", p), of: solved),
            firstContactResolutionZendesk: Share(try count("\(solvedInP) AND t.publicReplies < 2 AND t.open = 0", p), of: solved),
            reopenRate: Share(try count("\(solvedInP) AND t.reopenedWithin30d", p), of: solved),
            csat: Share(try count("t.csatAt >= ? AND t.csatAt < ? AND t.csatScore >= 4", p), of: csatAnswers),
            resolutionGoal30d: MetricSet.Goal(
                cohort: created, met: goalMet,
                openOver30d: try count("\(inCohort) AND t.open = 1 AND ? - t.createdAt > ?", p + [now, 30 * day]),
                attainment: ratio(goalMet, created), final: now >= period.to + 30 * day))

        // Knowledge: articles replicated from every site, and the `kb:` links first line records.
        let linked = "EXISTS (SELECT 1 FROM ticketElement e WHERE e.ticket = t.id AND e.setName = 'links' AND e.element LIKE 'kb:%')"
        let linkedSolved = try count("\(solvedInP) AND \(linked)", p)
        let hlc: [(any DatabaseValueConvertible)?] = [period.from << 16, period.to << 16]
        let knowledge = MetricSet.Knowledge(
            articles: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM article") ?? 0,
            written: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM article WHERE createdHLC >= ? AND createdHLC < ?", arguments: StatementArguments(hlc)) ?? 0,
            linkRate: Share(try count("\(inCohort) AND \(linked)", p), of: created),
            firstLineWithArticle: Share(try count("\(solvedInP) AND \(linked) AND t.escalatedAt IS NULL AND NOT t.transferred", p), of: linkedSolved),
            top: try Row.fetchAll(db, sql: """
                SELECT a.id, a.title, COUNT(*) AS uses FROM ticketElement e JOIN article a ON e.element = 'kb:' || a.id
                WHERE e.setName = 'links' GROUP BY a.id ORDER BY uses DESC, a.id LIMIT 5
                """).map { MetricSet.Knowledge.Top(ref: "KB-" + String(($0["id"] as String).suffix(8)), title: $0["title"], uses: $0["uses"]) })

        return MetricSet(filter: filter, from: SLAReport.iso(period.from), to: SLAReport.iso(period.to), created: created, solved: solved,
                         netFlow: created - solved, backlog: backlog, speed: speed, sla: sla, escalation: escalation, quality: quality,
                         knowledge: knowledge)
    }
}
