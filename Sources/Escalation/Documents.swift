import Foundation
import TicketModel

/// The four SLA clocks.
public enum ClockKind: String, Codable, Sendable, CaseIterable, Comparable {
    case firstResponse, nextResponse, resolution, timeToOwn
    public static func < (a: ClockKind, b: ClockKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// What a ladder level does with the ticket.
public enum Assignment: String, Codable, Sendable {
    /// Tell the targets; the ticket stays where it is.
    case notify
    /// Give the ticket to the target group at the owning site.
    case reassign
    /// Ask the target site to take the ticket; the origin keeps it until the receiver accepts.
    case transferSite = "transfer_site"
}

/// Which tickets a policy or rule applies to: every listed member must match; an absent member
/// matches anything.
public struct MatchDocument: Codable, Sendable, Hashable {
    public var priority: [String]?
    public var customerTier: [String]?
    public var channel: [String]?
    public var site: [String]?
    public var category: [String]?
}

/// One clock of an SLA policy.
public struct ClockDocument: Codable, Sendable, Hashable {
    /// Per priority (`urgent`, `high`, `normal`, `low`): a duration. A priority left out has no target.
    public var targets: [String: String]
    /// Business hours of the policy's calendar (default) or 24×7.
    public var businessHours: Bool?
    /// Statuses during which the clock does not run, e.g. `pending_customer`.
    public var pauseWhen: [String]?
    /// Percent of the target at which to warn (1–99).
    public var warnAt: Int?
    /// Actions on warning and on breach: `notify`, `escalate` (start the policy's ladder), `raise_priority`.
    public var onWarn: [String]?
    public var onBreach: [String]?
}

public struct ClocksDocument: Codable, Sendable, Hashable {
    public var firstResponse: ClockDocument?
    public var nextResponse: ClockDocument?
    public var resolution: ClockDocument?
    public var timeToOwn: ClockDocument?

    public subscript(kind: ClockKind) -> ClockDocument? {
        switch kind {
        case .firstResponse: firstResponse
        case .nextResponse: nextResponse
        case .resolution: resolution
        case .timeToOwn: timeToOwn
        }
    }
}

/// An SLA policy, matched by position (lowest first).
public struct PolicyDocument: VersionedDocument {
    public var name: String
    public var version: Int
    public var position: Int
    public var match: MatchDocument?
    /// A calendar's name, or `24x7`.
    public var calendar: String
    /// The ladder the `escalate` action starts.
    public var ladder: String?
    public var clocks: ClocksDocument
}

/// One level of an escalation ladder.
public struct LevelDocument: Codable, Sendable, Hashable {
    /// Wait after the previous level (the first level: after the cycle started).
    public var delay: String
    /// `group@site`, `tier:N` (looked up in the matrix), `role:NAME` or `coordinator`.
    public var targets: [String]
    public var assignment: Assignment
    /// `notify`, `raise_priority`, `watch:NAME`, `tag:NAME`.
    public var actions: [String]?
}

/// A hierarchical escalation ladder.
public struct LadderDocument: VersionedDocument {
    public var name: String
    public var version: Int
    /// Times the ladder runs again from level 1 after its last level (0–9).
    public var loops: Int
    /// How long an acknowledgement (or an accepted handoff) holds the ladder.
    public var ackTimeout: String?
    /// A calendar's name for the delays, or `24x7` (default).
    public var calendar: String?
    /// Statuses during which the ladder's timers freeze.
    public var pauseWhen: [String]?
    public var levels: [LevelDocument]
}

/// One row of the escalation matrix.
public struct MatrixEntry: Codable, Sendable, Hashable {
    /// The owning site, or `*`.
    public var site: String
    /// The ticket's category, or `*`.
    public var category: String
    public var tier: Int
    /// `group@site`.
    public var target: String
}

/// The coordinator's escalation matrix: (site, category, tier) → target group and site.
public struct MatrixDocument: VersionedDocument {
    public var version: Int
    /// How long the owning site may be silent before the coordinator fires its levels.
    public var grace: String
    public var entries: [MatrixEntry]

    public var name: String { "matrix" }

    private enum CodingKeys: String, CodingKey { case version, grace, entries }
}

/// A proactive rule: a ladder that starts at creation for the tickets it matches.
public struct RuleDocument: VersionedDocument {
    public var name: String
    public var version: Int
    public var match: MatchDocument
    public var ladder: String
}

/// A file given to `tierline config publish`: any of the document lists.
public struct ConfigBundle: Codable, Sendable, Hashable {
    public var calendars: [CalendarDocument]?
    public var policies: [PolicyDocument]?
    public var ladders: [LadderDocument]?
    public var matrix: MatrixDocument?
    public var rules: [RuleDocument]?

    /// Every document of the bundle, in a stable order.
    public var documents: [ConfigDocument] {
        (calendars ?? []).map(ConfigDocument.calendar) + (ladders ?? []).map(ConfigDocument.ladder)
            + (policies ?? []).map(ConfigDocument.policy) + (matrix.map { [ConfigDocument.matrix($0)] } ?? [])
            + (rules ?? []).map(ConfigDocument.rule)
    }
}

/// What every kind of configuration document has: a name, and a version that only grows.
public protocol VersionedDocument: Codable, Sendable, Hashable {
    /// The document's name, unique within its kind (the matrix is always `matrix`).
    var name: String { get }
    var version: Int { get }
}

/// One versioned configuration document, as it replicates.
public enum ConfigDocument: Sendable, Hashable, Codable {
    case calendar(CalendarDocument)
    case policy(PolicyDocument)
    case ladder(LadderDocument)
    case matrix(MatrixDocument)
    case rule(RuleDocument)

    public enum Kind: String, Sendable, Codable, CaseIterable {
        case calendar, policy, ladder, matrix, rule
    }

    public var kind: Kind {
        switch self {
        case .calendar: .calendar
        case .policy: .policy
        case .ladder: .ladder
        case .matrix: .matrix
        case .rule: .rule
        }
    }

    /// The document itself, whatever its kind.
    public var document: any VersionedDocument {
        switch self {
        case .calendar(let d): d
        case .policy(let d): d
        case .ladder(let d): d
        case .matrix(let d): d
        case .rule(let d): d
        }
    }

    public var name: String { document.name }

    public var version: Int { document.version }

    public var pin: Pin { Pin(name: name, version: version) }

    /// `kind/name`: the document's identity across versions.
    public var key: String { "\(kind.rawValue)/\(name)" }

    /// The id of the document's replicated entity.
    public static func entityID(key: String) -> UUID { DerivedID.make(["config", key]) }
    /// The id of this version's event.
    public var versionID: UUID { DerivedID.make(["config", key, String(version)]) }

    private struct Key: CodingKey {
        var stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first, let kind = Kind(rawValue: key.stringValue) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "a configuration version holds exactly one of calendar, policy, ladder, matrix, rule"))
        }
        switch kind {
        case .calendar: self = .calendar(try c.decode(CalendarDocument.self, forKey: key))
        case .policy: self = .policy(try c.decode(PolicyDocument.self, forKey: key))
        case .ladder: self = .ladder(try c.decode(LadderDocument.self, forKey: key))
        case .matrix: self = .matrix(try c.decode(MatrixDocument.self, forKey: key))
        case .rule: self = .rule(try c.decode(RuleDocument.self, forKey: key))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(document, forKey: Key(stringValue: kind.rawValue))
    }

    /// The canonical body of the version's event.
    public func encoded() -> String { CanonicalJSON.string(self) }
}
