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
    /// Whether its notices page at any hour; otherwise a notice outside a recipient's working hours
    /// (the agent's calendar) waits for the next opening.
    public var pageAnytime: Bool?
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
    /// How long a handoff request may wait for an answer before a `handoff_timed_out` record tells
    /// the people concerned (absent: requests wait without one).
    public var handoffTimeout: String?

    public var name: String { "matrix" }

    private enum CodingKeys: String, CodingKey { case version, grace, entries, handoffTimeout }
}

/// A proactive rule: a ladder that starts at creation for the tickets it matches.
public struct RuleDocument: VersionedDocument {
    public var name: String
    public var version: Int
    public var match: MatchDocument
    public var ladder: String
}

/// An agent's position in the organisation: what `tierline agent add --role` takes.
public enum AgentRole: String, Codable, Sendable, CaseIterable {
    case agent, lead, manager

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let role = AgentRole(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "\(text.debugDescription) is not a role; use agent, lead or manager"))
        }
        self = role
    }
}

/// One agent of the directory: who `--actor`, an assignee, a watcher and a ladder's targets name.
///
/// Published by the coordinator like the escalation configuration and replicated to every site; the
/// newest version of each agent is the one that counts (``AgentDirectory``). An agent is never
/// deleted: a new version with `active` false retires it, and the history keeps its name.
///
/// ```swift
/// let alice = AgentDocument(name: "alice", version: 1, displayName: "Alice Martin", email: "alice@example.com",
///                           site: "north", groups: ["billing-L1"], role: .lead, roles: ["team_lead"])
/// ```
public struct AgentDocument: VersionedDocument {
    /// The agent's id: 1-64 of a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit.
    public var name: String
    public var version: Int
    /// How the agent is shown to people (`Alice Martin`).
    public var displayName: String
    public var email: String?
    /// The agent's home site.
    public var site: String
    /// The groups the agent works in at the home site (`billing-L1`): what `group@site` targets name.
    public var groups: [String]
    public var role: AgentRole
    /// Free-form roles (`team_lead`, `site_manager`, `duty_manager`…): what `role:` targets name.
    public var roles: [String]
    /// A retired agent is kept with `active` false: it receives nothing and is refused as an assignee.
    public var active: Bool
    /// A published calendar's name giving the agent's working hours; notices outside it wait.
    public var calendar: String?

    public init(name: String, version: Int, displayName: String, email: String? = nil, site: String, groups: [String] = [],
                role: AgentRole = .agent, roles: [String] = [], active: Bool = true, calendar: String? = nil) {
        self.name = name
        self.version = version
        self.displayName = displayName
        self.email = email
        self.site = site
        self.groups = groups
        self.role = role
        self.roles = roles
        self.active = active
        self.calendar = calendar
    }

    private enum CodingKeys: String, CodingKey { case name, version, displayName, email, site, groups, role, roles, active, calendar }

    /// `groups`, `roles` (empty) and `active` (true) may be left out of a file.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        version = try c.decode(Int.self, forKey: .version)
        displayName = try c.decode(String.self, forKey: .displayName)
        email = try c.decodeIfPresent(String.self, forKey: .email)
        site = try c.decode(String.self, forKey: .site)
        groups = try c.decodeIfPresent([String].self, forKey: .groups) ?? []
        role = try c.decodeIfPresent(AgentRole.self, forKey: .role) ?? .agent
        roles = try c.decodeIfPresent([String].self, forKey: .roles) ?? []
        active = try c.decodeIfPresent(Bool.self, forKey: .active) ?? true
        calendar = try c.decodeIfPresent(String.self, forKey: .calendar)
    }
}

/// A file given to `tierline config publish`: any of the document lists.
public struct ConfigBundle: Codable, Sendable, Hashable {
    public var calendars: [CalendarDocument]?
    public var policies: [PolicyDocument]?
    public var ladders: [LadderDocument]?
    public var matrix: MatrixDocument?
    public var rules: [RuleDocument]?
    public var agents: [AgentDocument]?

    public init(calendars: [CalendarDocument]? = nil, policies: [PolicyDocument]? = nil, ladders: [LadderDocument]? = nil,
                matrix: MatrixDocument? = nil, rules: [RuleDocument]? = nil, agents: [AgentDocument]? = nil) {
        self.calendars = calendars
        self.policies = policies
        self.ladders = ladders
        self.matrix = matrix
        self.rules = rules
        self.agents = agents
    }

    /// Every document of the bundle, in a stable order.
    public var documents: [ConfigDocument] {
        (calendars ?? []).map(ConfigDocument.calendar) + (ladders ?? []).map(ConfigDocument.ladder)
            + (policies ?? []).map(ConfigDocument.policy) + (matrix.map { [ConfigDocument.matrix($0)] } ?? [])
            + (rules ?? []).map(ConfigDocument.rule) + (agents ?? []).map(ConfigDocument.agent)
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
    /// An agent of the directory (``AgentDirectory``).
    case agent(AgentDocument)

    public enum Kind: String, Sendable, Codable, CaseIterable {
        case calendar, policy, ladder, matrix, rule, agent
    }

    public var kind: Kind {
        switch self {
        case .calendar: .calendar
        case .policy: .policy
        case .ladder: .ladder
        case .matrix: .matrix
        case .rule: .rule
        case .agent: .agent
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
        case .agent(let d): d
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
                                                    debugDescription: "a configuration version holds exactly one of calendar, policy, ladder, matrix, rule, agent"))
        }
        switch kind {
        case .calendar: self = .calendar(try c.decode(CalendarDocument.self, forKey: key))
        case .policy: self = .policy(try c.decode(PolicyDocument.self, forKey: key))
        case .ladder: self = .ladder(try c.decode(LadderDocument.self, forKey: key))
        case .matrix: self = .matrix(try c.decode(MatrixDocument.self, forKey: key))
        case .rule: self = .rule(try c.decode(RuleDocument.self, forKey: key))
        case .agent: self = .agent(try c.decode(AgentDocument.self, forKey: key))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(document, forKey: Key(stringValue: kind.rawValue))
    }

    /// The canonical body of the version's event.
    public func encoded() -> String { CanonicalJSON.string(self) }
}
