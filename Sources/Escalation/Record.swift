import Foundation

/// What an SLA or escalation record says happened.
public enum RecordType: String, Codable, Sendable, CaseIterable {
    /// An SLA policy was applied: the ticket pins its version and the versions it refers to.
    case slaApplied = "sla_applied"
    case slaWarning = "sla_warning"
    case slaBreach = "sla_breach"
    /// A ladder cycle started (by a breach or warning, or a proactive rule at creation).
    case escalationStarted = "escalation_started"
    /// One level of a ladder fired in one loop of one cycle.
    case levelFired = "level_fired"
    /// The ladder ran out of levels and loops.
    case escalationExhausted = "escalation_exhausted"
    /// A target acknowledged: the ladder pauses until the ack timeout.
    case acknowledged
    /// An agent stopped the ladder.
    case escalationStopped = "escalation_stopped"
    /// Functional escalation: sideways to another group, same tier.
    case transferred
    /// Hierarchical escalation by an agent, with a handoff note.
    case escalated
    case handoffAccepted = "handoff_accepted"
    case handoffRejected = "handoff_rejected"
    /// The site that asked for a handoff takes the request back before it is answered.
    case handoffWithdrawn = "handoff_withdrawn"
    /// A handoff request has waited the matrix's `handoffTimeout` with no answer: it stays open (the
    /// receiver may still answer), and the people concerned are told.
    case handoffTimedOut = "handoff_timed_out"

    /// Records that nodes derive from events and configuration, the same on every replica.
    public var isDerived: Bool {
        switch self {
        case .slaWarning, .slaBreach, .escalationStarted, .levelFired, .escalationExhausted, .handoffTimedOut: true
        default: false
        }
    }
}

/// A configuration document pinned at a version.
public struct Pin: Codable, Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var version: Int
    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }
    public var description: String { "\(name)@v\(version)" }
}

/// What the next tier needs so it never re-asks the customer.
public struct HandoffNote: Codable, Sendable, Hashable {
    public var summary: String
    public var verifiedFacts: String
    public var stepsTried: String
    public var requestedAction: String
    public init(summary: String, verifiedFacts: String, stepsTried: String, requestedAction: String) {
        self.summary = summary
        self.verifiedFacts = verifiedFacts
        self.stepsTried = stepsTried
        self.requestedAction = requestedAction
    }
}

/// The body of an `escalation` event: one SLA or escalation fact.
///
/// Encoded as JSON with sorted keys and absent members left out (``encoded()``), so a derived record
/// is byte-identical wherever it is derived. `at` is when it happened: for a derived record the
/// scheduled time (a deadline, a level's fire time), never the moment a node noticed.
public struct EscalationRecord: Codable, Sendable, Hashable {
    public var type: RecordType
    /// Milliseconds since 1970.
    public var at: Int64
    public var clock: ClockKind?
    /// The clock's cycle (next response restarts per customer message).
    public var clockCycle: Int?
    public var policy: Pin?
    public var calendar: Pin?
    public var ladder: Pin?
    /// The calendar of the ladder's delays.
    public var ladderCalendar: Pin?
    public var matrix: Pin?
    /// The id of the `escalation_started` record this belongs to.
    public var cycle: UUID?
    public var level: Int?
    public var loop: Int?
    public var targets: [String]?
    public var assignment: Assignment?
    public var fromGroup: String?
    public var toGroup: String?
    public var toSite: String?
    /// The record a handoff answer or an acknowledgement refers to.
    public var refersTo: UUID?
    public var reason: String?
    public var note: HandoffNote?

    public init(type: RecordType, at: Int64) {
        self.type = type
        self.at = at
    }

    /// The canonical body.
    public func encoded() -> String { CanonicalJSON.string(self) }

    /// Reads a record body; `nil` if it is not one (a future record type, or damage).
    public static func decode(_ body: String) -> EscalationRecord? {
        decodeCanonical(body) ?? (try? JSONDecoder().decode(EscalationRecord.self, from: Data(body.utf8)))
    }

    /// Whether this record is a request to move the ticket to another site.
    public var isHandoffRequest: Bool {
        toSite != nil && (type == .escalated || (type == .levelFired && assignment == .transferSite))
    }
}
