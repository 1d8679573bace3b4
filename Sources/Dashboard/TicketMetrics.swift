import Escalation
import Foundation
import GRDB
import TicketModel
import TicketStore

/// What the dashboard keeps of one ticket: its dimensions and the moments and durations the metric
/// formulas read (README.md, "Dashboard"). A pure function of the merged ticket and its evaluation, so
/// every replica that holds the same blocks derives the same row.
///
/// Times are milliseconds since 1970 (the physical part of the HLC stamps, records' own `at`);
/// durations are milliseconds. "Business" durations come from the pinned policy's clocks (working
/// hours of its calendar, minus its pause statuses); tickets without a pinned policy have calendar
/// durations only.
///
/// A row of the dashboard's `metricTicket` table; its ``clocks`` and ``handoffs`` are rows of
/// `metricClock` and `metricHandoff`.
public struct TicketMetricRow: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public var id: String
    /// The owning site now (after handoffs).
    public var site: String
    public var origin: String
    /// The support tier the ticket is at: the escalation level of its current ladder cycle (0 = first line).
    public var tier: Int
    public var channel: String
    public var priority: String
    public var customerTier: String
    public var group: String
    public var category: String
    public var status: String
    /// Not solved, closed or merged.
    public var isOpen: Bool
    public var createdAt: Int64
    public var firstSolvedAt: Int64?
    /// The last solve, while the ticket is still resolved.
    public var lastSolvedAt: Int64?
    /// Times the ticket left a resolved status.
    public var reopens: Int
    /// Reopened within 30 days of its first solve.
    public var reopenedWithin30d: Bool
    public var publicReplies: Int
    public var firstResponseAt: Int64?
    public var frtCalendar: Int64?
    public var frtBusiness: Int64?
    public var ttoCalendar: Int64?
    public var ttoBusiness: Int64?
    /// Created to last solve (full resolution time), while resolved.
    public var resolutionCalendar: Int64?
    public var resolutionBusiness: Int64?
    /// The first hierarchical escalation: a ladder cycle starting, a level firing, or an agent's escalation.
    public var escalatedAt: Int64?
    /// What started the first hierarchical escalation: `sla_warning`, `sla_breach`, `rule` or `manual`.
    public var escalationTrigger: String?
    /// Moved sideways to another group (a `transferred` record).
    public var transferred: Bool
    /// A handoff to a site other than the origin was accepted.
    public var crossSite: Bool
    public var maxLevel: Int
    public var exhausted: Int
    /// Levels fired by a site other than the owner of the moment (the coordinator's backstop).
    public var backstopFirings: Int
    /// Customer satisfaction, 1 to 5, from the custom field `csat_score`, and when it was given.
    public var csatScore: Int?
    public var csatAt: Int64?

    public var clocks: [ClockRow] = []
    public var handoffs: [HandoffRow] = []

    public static let databaseTableName = "metricTicket"

    /// The columns of `metricTicket`: every property but the clocks and handoffs, which have tables
    /// of their own.
    public enum CodingKeys: String, CodingKey, ColumnExpression, CaseIterable {
        case id, site, origin, tier, channel, priority, customerTier, group = "grp", category, status, isOpen = "open"
        case createdAt, firstSolvedAt, lastSolvedAt, reopens, reopenedWithin30d, publicReplies, firstResponseAt
        case frtCalendar, frtBusiness, ttoCalendar, ttoBusiness, resolutionCalendar, resolutionBusiness
        case escalatedAt, escalationTrigger, transferred, crossSite, maxLevel, exhausted, backstopFirings, csatScore, csatAt
    }
    public typealias Columns = CodingKeys
}

/// One run of one SLA clock: a row of `metricClock`.
public struct ClockRow: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public var ticket: String
    /// The ticket's owning site (the row's `site`), so per-site clock counts need no join.
    public var site: String
    public var kind: String
    public var cycle: Int
    public var start: Int64
    /// From the pinned policy; `nil` when no policy is pinned (the run is then measured only).
    public var target: Int64?
    /// When the target is (or was) reached; `nil` while paused, or when the run stopped in time.
    public var deadline: Int64?
    public var warnAt: Int64?
    /// When the run stopped for good.
    public var stop: Int64?
    /// Stop minus start, once stopped.
    public var calendarMillis: Int64?
    /// Counted business time, once stopped (pinned policy only).
    public var businessMillis: Int64?

    public static let databaseTableName = "metricClock"

    public enum Columns {
        public static let ticket = Column(CodingKeys.ticket)
        public static let site = Column(CodingKeys.site)
        public static let target = Column(CodingKeys.target)
        public static let deadline = Column(CodingKeys.deadline)
        public static let stop = Column(CodingKeys.stop)
    }
}

/// One request to move a ticket to another site, and its answer: a row of `metricHandoff`.
public struct HandoffRow: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public var id: String
    public var ticket: String
    public var requestedAt: Int64
    public var toSite: String
    public var answeredAt: Int64?
    public var accepted: Bool?
    /// Unanswered when its ladder moved on to a later level.
    public var timedOut: Bool

    public static let databaseTableName = "metricHandoff"

    public enum Columns {
        public static let ticket = Column(CodingKeys.ticket)
    }
}

extension TicketMetricRow {
    static let thirtyDays: Int64 = 30 * 86_400_000

    /// Derives the row of `state`, whose records `facts` holds already read, with the pinned
    /// policy's clock runs (``EscalationEngine/clocks(_:library:now:)``).
    public init(_ state: TicketState, facts: TicketFacts, clocks reports: [ClockReport]) {
        let none = "none"
        id = state.id.lowercaseText
        origin = state.originSite?.rawValue ?? none
        site = state.owner.site?.rawValue ?? origin
        tier = Int(state.escalation.level)
        channel = state.text(.channel) ?? none
        priority = state.priority.rawValue
        customerTier = state.customFields["customer_tier"] ?? none
        group = state.text(.group) ?? none
        category = state.text(.category) ?? none
        status = state.baseStatus.rawValue
        isOpen = !state.baseStatus.isResolved
        createdAt = facts.created

        // Solves and reopenings from the status timeline.
        var solves: [Int64] = []
        var reopenTimes: [Int64] = []
        var wasResolved = false
        for entry in facts.statuses {
            if entry.status.isResolved, !wasResolved { solves.append(entry.at) }
            if !entry.status.isResolved, wasResolved { reopenTimes.append(entry.at) }
            wasResolved = entry.status.isResolved
        }
        firstSolvedAt = solves.first
        lastSolvedAt = state.baseStatus.isResolved ? solves.last : nil
        reopens = reopenTimes.count
        reopenedWithin30d = firstSolvedAt.map { first in reopenTimes.contains { $0 > first && $0 - first <= Self.thirtyDays } } ?? false
        publicReplies = facts.publicReplies.count

        // Clocks: calendar runs for every ticket, business figures where the policy's clock ran.
        let ticket = id, owner = site
        var clocks: [ClockRow] = []
        for kind in ClockKind.allCases {
            for run in EscalationEngine.runs(kind, facts) {
                let report = reports.first { $0.kind == kind && $0.cycle == run.cycle }
                var row = ClockRow(ticket: ticket, site: owner, kind: kind.rawValue, cycle: run.cycle, start: report?.start ?? run.start, target: report?.target,
                                   deadline: report?.deadline, warnAt: report?.warnAt, stop: run.stop)
                if let stop = run.stop {
                    row.calendarMillis = max(0, stop - run.start)
                    row.businessMillis = report?.elapsed
                }
                clocks.append(row)
            }
        }
        self.clocks = clocks
        func stoppedBy(_ kind: ClockKind, at moment: Int64?) -> ClockRow? {
            guard let moment else { return nil }
            return clocks.first { $0.kind == kind.rawValue && $0.cycle == 1 && $0.stop == moment }
        }

        // First response: the first public reply, unless an agent wrote to the customer first
        // (an agent-started conversation is not a response).
        let firstReply = facts.publicReplies.first
        if let firstReply, facts.customerMessages.first.map({ $0 <= firstReply }) ?? true {
            firstResponseAt = firstReply
            frtCalendar = max(0, firstReply - facts.created)
            frtBusiness = stoppedBy(.firstResponse, at: firstReply)?.businessMillis
        }
        if let owned = facts.ownedAt {
            ttoCalendar = max(0, owned - facts.created)
            ttoBusiness = stoppedBy(.timeToOwn, at: owned)?.businessMillis
        }
        if let last = lastSolvedAt {
            resolutionCalendar = max(0, last - facts.created)
            // The resolution run stops at the latest resolved status (a close after the solve), and
            // counts no time while resolved: its business time is the resolution's.
            resolutionBusiness = clocks.first { $0.kind == ClockKind.resolution.rawValue && $0.cycle == 1 && $0.stop != nil }?.businessMillis
        }

        // Escalation history from the records in the log.
        let records = facts.records
        let hierarchical = records.filter { [.escalationStarted, .levelFired, .escalated].contains($0.record.type) }
        if let earliest = hierarchical.first {
            escalatedAt = earliest.record.at
            // A ladder's first level can fire at the instant its cycle starts (delay 0); records of one
            // instant sort by id, so the cause is the start (or the agent's escalation), not the level.
            let first = hierarchical.first { $0.record.at == earliest.record.at && $0.record.type != .levelFired } ?? earliest
            switch first.record.type {
            case .escalated: escalationTrigger = "manual"
            case .escalationStarted where first.record.clock != nil:
                escalationTrigger = first.record.reason?.hasSuffix("warning") == true ? "sla_warning" : "sla_breach"
            default: escalationTrigger = "rule"
            }
        }
        transferred = records.contains { $0.record.type == .transferred }
        maxLevel = records.filter { $0.record.type == .levelFired }.compactMap(\.record.level).max() ?? 0
        exhausted = records.filter { $0.record.type == .escalationExhausted }.count
        backstopFirings = records.filter { record in
            record.record.type == .levelFired && record.site != nil && record.site != facts.owner(at: record.record.at)
        }.count

        var handoffs: [HandoffRow] = []
        // An escalation to a group of the site that owns the ticket moves it at once: no request.
        for request in records where request.record.isHandoffRequest && request.record.toSite != facts.owner(at: request.record.at)?.rawValue {
            let answer = records.first { ($0.record.type == .handoffAccepted || $0.record.type == .handoffRejected) && $0.record.refersTo == request.id }
            let answeredAt = answer?.record.at ?? .max
            let movedOn = request.record.type == .levelFired && records.contains {
                $0.record.type == .levelFired && $0.record.cycle == request.record.cycle && $0.record.at > request.record.at
                    && $0.record.at < answeredAt
            }
            handoffs.append(HandoffRow(id: request.id.lowercaseText, ticket: ticket, requestedAt: request.record.at, toSite: request.record.toSite ?? none,
                                       answeredAt: answer?.record.at, accepted: answer.map { $0.record.type == .handoffAccepted },
                                       timedOut: movedOn))
        }
        self.handoffs = handoffs
        let originSite = origin
        crossSite = handoffs.contains { $0.accepted == true && $0.toSite != originSite }

        if let write = state.registers[.custom("csat_score")], let text = write.value.text, let score = Int(text), (1...5).contains(score) {
            csatScore = score
            csatAt = Int64(write.stamp.hlc.millis)
        }
    }
}

// MARK: - Writing the rows

extension TicketMetricRow {
    /// Inserts this row, its clocks and its handoffs through prepared statements.
    ///
    /// The same as GRDB's `insert(db)` of each (a test checks that they read back equal), without
    /// its Codable encoding, which took a quarter of every first-time derivation.
    func insertWithClocksAndHandoffs(_ db: Database) throws {
        try db.cachedStatement(sql: Self.insertSQL).execute(values: CodingKeys.allCases.map(value))
        let clockInsert = try db.cachedStatement(sql: ClockRow.insertSQL)
        for clock in clocks { try clockInsert.execute(values: ClockRow.CodingKeys.allCases.map(clock.value)) }
        let handoffInsert = try db.cachedStatement(sql: HandoffRow.insertSQL)
        for handoff in handoffs { try handoffInsert.execute(values: HandoffRow.CodingKeys.allCases.map(handoff.value)) }
    }

    static let insertSQL = insertStatement(databaseTableName, CodingKeys.allCases.map(\.stringValue))

    /// The value of one column (every column is named here: the switch is exhaustive).
    private func value(_ column: CodingKeys) -> DatabaseValue {
        switch column {
        case .id: dv(id)
        case .site: dv(site)
        case .origin: dv(origin)
        case .tier: dv(tier)
        case .channel: dv(channel)
        case .priority: dv(priority)
        case .customerTier: dv(customerTier)
        case .group: dv(group)
        case .category: dv(category)
        case .status: dv(status)
        case .isOpen: dv(isOpen)
        case .createdAt: dv(createdAt)
        case .firstSolvedAt: dv(firstSolvedAt)
        case .lastSolvedAt: dv(lastSolvedAt)
        case .reopens: dv(reopens)
        case .reopenedWithin30d: dv(reopenedWithin30d)
        case .publicReplies: dv(publicReplies)
        case .firstResponseAt: dv(firstResponseAt)
        case .frtCalendar: dv(frtCalendar)
        case .frtBusiness: dv(frtBusiness)
        case .ttoCalendar: dv(ttoCalendar)
        case .ttoBusiness: dv(ttoBusiness)
        case .resolutionCalendar: dv(resolutionCalendar)
        case .resolutionBusiness: dv(resolutionBusiness)
        case .escalatedAt: dv(escalatedAt)
        case .escalationTrigger: dv(escalationTrigger)
        case .transferred: dv(transferred)
        case .crossSite: dv(crossSite)
        case .maxLevel: dv(maxLevel)
        case .exhausted: dv(exhausted)
        case .backstopFirings: dv(backstopFirings)
        case .csatScore: dv(csatScore)
        case .csatAt: dv(csatAt)
        }
    }
}

extension ClockRow {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case ticket, site, kind, cycle, start, target, deadline, warnAt, stop, calendarMillis, businessMillis
    }

    static let insertSQL = insertStatement(databaseTableName, CodingKeys.allCases.map(\.stringValue))

    fileprivate func value(_ column: CodingKeys) -> DatabaseValue {
        switch column {
        case .ticket: dv(ticket)
        case .site: dv(site)
        case .kind: dv(kind)
        case .cycle: dv(cycle)
        case .start: dv(start)
        case .target: dv(target)
        case .deadline: dv(deadline)
        case .warnAt: dv(warnAt)
        case .stop: dv(stop)
        case .calendarMillis: dv(calendarMillis)
        case .businessMillis: dv(businessMillis)
        }
    }
}

extension HandoffRow {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, ticket, requestedAt, toSite, answeredAt, accepted, timedOut
    }

    static let insertSQL = insertStatement(databaseTableName, CodingKeys.allCases.map(\.stringValue))

    fileprivate func value(_ column: CodingKeys) -> DatabaseValue {
        switch column {
        case .id: dv(id)
        case .ticket: dv(ticket)
        case .requestedAt: dv(requestedAt)
        case .toSite: dv(toSite)
        case .answeredAt: dv(answeredAt)
        case .accepted: dv(accepted)
        case .timedOut: dv(timedOut)
        }
    }
}

/// A value as GRDB binds it; NULL for `nil`.
private func dv<T: DatabaseValueConvertible>(_ value: T?) -> DatabaseValue { value?.databaseValue ?? .null }

/// `INSERT INTO "table" ("a", "b", …) VALUES (?, ?, …)`.
private func insertStatement(_ table: String, _ columns: [String]) -> String {
    "INSERT INTO \(table.quotedDatabaseIdentifier) (\(columns.map(\.quotedDatabaseIdentifier).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
}
