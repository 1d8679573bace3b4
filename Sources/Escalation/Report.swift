import Foundation
import TicketModel

/// A ticket's SLA clocks and escalation state, as `ticket show`, `sla` and the dashboard present them.
public struct SLAReport: Encodable, Sendable {
    public struct Clock: Encodable, Sendable {
        public var clock: String
        public var cycle: Int
        public var state: String
        public var target: String
        public var targetMillis: Int64
        public var businessHours: Bool
        public var startedAt: String
        public var deadline: String?
        public var warnAt: String?
        /// Counted time so far (business, unpaused).
        public var elapsedMillis: Int64
        /// Wall time until the deadline; negative once breached; `nil` while paused or met.
        public var remainingMillis: Int64?
        /// Not breached yet, but past the warning threshold or in the last quarter of the target.
        public var atRisk: Bool
    }

    public struct Cycle: Encodable, Sendable {
        public var cycle: Int
        public var ladder: String
        public var reason: String?
        public var startedAt: String
        public var level: Int?
        public var loop: Int?
        public var nextLevel: Int?
        public var nextAt: String?
        public var ended: String?
    }

    public struct Entry: Encodable, Sendable {
        public var id: String
        public var type: String
        public var at: String
        /// The site that wrote it (for a derived record: the site that fired it).
        public var site: String?
        public var text: String
        /// The agent who wrote it (an escalate, a transfer, an answer to a handoff); absent for a
        /// record automation derived.
        public var actor: String?
        /// ``text`` in lines for a terminal: a handoff note's parts each on a line of its own (a
        /// part may contain `|` itself). Not encoded: JSON readers have ``text`` and the record.
        public var lines: [String]
        public init(id: String, type: String, at: String, site: String?, text: String, actor: String? = nil, lines: [String]? = nil) {
            self.actor = actor
            self.id = id
            self.type = type
            self.at = at
            self.site = site
            self.text = text
            self.lines = lines ?? [text]
        }

        private enum CodingKeys: String, CodingKey { case id, type, at, site, text, actor }
    }

    public var policy: String?
    public var calendar: String?
    public var ladder: String?
    public var clocks: [Clock]
    public var cycles: [Cycle]
    public var escalationCycle: Int
    public var escalationLevel: Int
    public var pendingHandoffs: [Entry]
    public var history: [Entry]

    public init(_ state: TicketState, _ evaluation: Evaluation, now: Int64) {
        let facts = TicketFacts(state)
        policy = evaluation.pin?.policy?.description
        calendar = evaluation.pin?.calendar?.description
        ladder = evaluation.pin?.ladder?.description
        clocks = evaluation.clocks.map { c in
            Clock(clock: c.kind.rawValue, cycle: c.cycle, state: c.state.rawValue, target: DurationText.render(c.target),
                  targetMillis: c.target, businessHours: c.businessHours, startedAt: SLAReport.iso(c.start),
                  deadline: c.deadline.map(SLAReport.iso), warnAt: c.warnAt.map(SLAReport.iso), elapsedMillis: c.elapsed,
                  remainingMillis: c.state == .met ? nil : c.deadline.map { $0 - now },
                  atRisk: (c.state == .running || c.state == .paused)
                      && ((c.warnAt.map { $0 <= now } ?? false) || c.elapsed * 4 >= c.target * 3))
        }
        cycles = evaluation.cycles.map { c in
            Cycle(cycle: c.ordinal, ladder: c.ladder.description, reason: c.start.record.reason, startedAt: SLAReport.iso(c.start.record.at),
                  level: c.fired?.level, loop: c.fired?.loop, nextLevel: c.next?.level, nextAt: c.next.map { SLAReport.iso($0.at) }, ended: c.ended)
        }
        escalationCycle = Int(state.escalation.cycle)
        escalationLevel = Int(state.escalation.level)
        pendingHandoffs = evaluation.pendingHandoffs.map(SLAReport.entry)
        history = facts.records.sorted(by: SLAReport.readingOrder).map(SLAReport.entry)
    }

    /// How the history reads: by time, then, at one instant, cause before effect (a policy before the
    /// ladder it starts, a warning before its breach, a start before its levels, the levels in order,
    /// the ladder's end last, a request before its answer), then by the stamp of the event that
    /// carries it (hybrid clock: the order the writes happened in; a record not written yet last),
    /// then by id. Record ids at one instant are random (name-based), so without the middle keys a
    /// ladder could print as exhausted before its last level fired, and two transfers in one
    /// millisecond in either order.
    static func readingOrder(_ a: StoredRecord, _ b: StoredRecord) -> Bool {
        func position(_ r: EscalationRecord) -> (Int, Int, Int) {
            let rank = switch r.type {
            case .slaApplied: 0
            case .slaWarning: 1
            case .slaBreach: 2
            case .escalationStarted: 3
            case .levelFired: 4
            case .escalationExhausted: 5
            case .transferred, .escalated: 6
            case .handoffAccepted, .handoffRejected, .handoffWithdrawn, .handoffTimedOut: 7
            case .acknowledged, .escalationStopped: 8
            }
            return (rank, r.loop ?? 0, r.level ?? 0)
        }
        let (left, right) = (position(a.record), position(b.record))
        if (a.record.at, left.0, left.1, left.2) != (b.record.at, right.0, right.1, right.2) {
            return (a.record.at, left.0, left.1, left.2) < (b.record.at, right.0, right.1, right.2)
        }
        switch (a.stamp, b.stamp) {
        case let (x?, y?) where x != y: return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a.id.textPrecedes(b.id)
        }
    }

    static func entry(_ stored: StoredRecord) -> Entry {
        Entry(id: stored.id.lowercaseText, type: stored.record.type.rawValue, at: iso(stored.record.at),
              site: stored.site?.rawValue, text: describe(stored.record), actor: stored.actor, lines: describeLines(stored.record))
    }

    /// What a record means, its handoff note (if any) a part a line: `describe` joins them with ` | `.
    public static func describeLines(_ r: EscalationRecord) -> [String] {
        guard r.type == .escalated, let note = r.note else { return [describe(r)] }
        return ["escalated \(r.fromGroup ?? "—") → \(r.toGroup ?? "?")@\(r.toSite ?? "?")", "summary: \(note.summary)", "verified: \(note.verifiedFacts)",
                "tried: \(note.stepsTried)", "requested: \(note.requestedAction)"]
    }

    /// One line saying what a record means.
    public static func describe(_ r: EscalationRecord) -> String {
        switch r.type {
        case .slaApplied: return "SLA policy \(r.policy?.description ?? "?") on calendar \(r.calendar?.description ?? "?")" + (r.ladder.map { ", ladder \($0)" } ?? "")
        case .slaWarning: return "\(r.clock?.rawValue ?? "?") warning (cycle \(r.clockCycle ?? 1))"
        case .slaBreach: return "\(r.clock?.rawValue ?? "?") breached (cycle \(r.clockCycle ?? 1))"
        case .escalationStarted: return "ladder \(r.ladder?.description ?? "?") started: \(r.reason ?? "")"
        case .levelFired:
            let move = r.toSite.map { " → handoff requested to \(r.toGroup ?? "?")@\($0)" } ?? ""
            return "level \(r.level ?? 0) (loop \(r.loop ?? 0)) fired: \((r.targets ?? []).joined(separator: ", ")) [\(r.assignment?.rawValue ?? "")]\(move)"
        case .escalationExhausted: return "ladder exhausted: every level and loop fired"
        case .acknowledged: return "acknowledged: the ladder holds until the ack timeout"
        case .escalationStopped: return "ladder stopped" + (r.reason.map { ": \($0)" } ?? "")
        case .transferred: return "transferred \(r.fromGroup ?? "—") → \(r.toGroup ?? "?")" + (r.reason.map { ": \($0)" } ?? "")
        case .escalated:
            return describeLines(r).joined(separator: " | ")
        case .handoffAccepted: return "handoff accepted by \(r.toGroup ?? "?")@\(r.toSite ?? "?")"
        case .handoffRejected: return "handoff rejected by \(r.toSite ?? "?"): \(r.reason ?? "")"
        case .handoffTimedOut: return "handoff to \(r.toGroup ?? "?")@\(r.toSite ?? "?") still unanswered"
        case .handoffWithdrawn: return "handoff to \(r.toGroup ?? "?")@\(r.toSite ?? "?") withdrawn" + (r.reason.map { ": \($0)" } ?? "")
        }
    }

    /// `ms` as ISO 8601 in UTC, whole seconds.
    public static func iso(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
