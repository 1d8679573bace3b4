import Foundation
import TicketModel

/// Every published version of every configuration document, as this replica holds them.
///
/// Built from the bodies of `config_version` events. Decisions look up the versions a ticket
/// pinned, so every replica derives the same facts from the same versions.
public struct ConfigLibrary: Sendable {
    private var versions: [String: [Int: ConfigDocument]] = [:]
    /// Calendars parsed once (time-zone lookup and checks), by `name@vVERSION`.
    private var calendars: [String: WorkingCalendar] = [:]

    public init() {}

    /// A library of `documents` (later duplicates of one version are ignored).
    public init(_ documents: [ConfigDocument]) {
        for doc in documents where versions[doc.key]?[doc.version] == nil && doc.isUsable {
            versions[doc.key, default: [:]][doc.version] = doc
            if case .calendar(let d) = doc, let calendar = try? WorkingCalendar(document: d) { calendars[doc.pin.description] = calendar }
        }
    }

    /// Reads version bodies; those that do not decode (written by a newer release) are skipped.
    public init(bodies: [String]) {
        self.init(bodies.compactMap { try? JSONDecoder().decode(ConfigDocument.self, from: Data($0.utf8)) })
    }

    public var isEmpty: Bool { versions.isEmpty }

    public func document(_ kind: ConfigDocument.Kind, _ name: String, version: Int) -> ConfigDocument? {
        versions["\(kind.rawValue)/\(name)"]?[version]
    }

    public func latest(_ kind: ConfigDocument.Kind, _ name: String) -> ConfigDocument? {
        versions["\(kind.rawValue)/\(name)"].flatMap { $0.max { $0.key < $1.key }?.value }
    }

    /// The newest version of every document, by kind then name.
    public var current: [ConfigDocument] {
        versions.values.compactMap { $0.max { $0.key < $1.key }?.value }
            .sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }

    public var matrix: MatrixDocument? {
        if case .matrix(let m)? = latest(.matrix, "matrix") { return m }
        return nil
    }

    public func calendar(_ pin: Pin) -> WorkingCalendar? {
        pin.name == WorkingCalendar.always.name ? .always : calendars[pin.description]
    }

    public func policy(_ pin: Pin) -> PolicyDocument? {
        if case .policy(let p)? = document(.policy, pin.name, version: pin.version) { return p }
        return nil
    }

    public func ladder(_ pin: Pin) -> LadderDocument? {
        if case .ladder(let l)? = document(.ladder, pin.name, version: pin.version) { return l }
        return nil
    }

    public func matrix(_ pin: Pin) -> MatrixDocument? {
        if case .matrix(let m)? = document(.matrix, pin.name, version: pin.version) { return m }
        return nil
    }

    /// The pin of the newest version of a calendar (`24x7` is always version 1).
    public func currentPin(calendar name: String) -> Pin? {
        name == WorkingCalendar.always.name ? Pin(name: name, version: 1) : latest(.calendar, name)?.pin
    }

    /// The `sla_applied` record for a ticket with `facts`, from the current versions: the first
    /// matching policy by position, and the versions of what it names. `nil` if none matches.
    public func apply(to facts: MatchFacts, at: Int64) -> EscalationRecord? {
        let policies = current.compactMap { doc -> PolicyDocument? in if case .policy(let p) = doc { return p } else { return nil } }
            .sorted { ($0.position, $0.name) < ($1.position, $1.name) }
        // A policy named by routing at intake wins over matching, when this replica has it.
        let named = facts.slaPolicy.flatMap { name in policies.first { $0.name == name } }
        guard let policy = named ?? policies.first(where: { facts.matches($0.match) }),
              let calendar = currentPin(calendar: policy.calendar) else { return nil }
        var record = EscalationRecord(type: .slaApplied, at: at)
        record.policy = Pin(name: policy.name, version: policy.version)
        record.calendar = calendar
        if let name = policy.ladder {
            guard case .ladder(let ladder)? = latest(.ladder, name),
                  let ladderCalendar = currentPin(calendar: ladder.calendar ?? WorkingCalendar.always.name) else { return nil }
            record.ladder = Pin(name: ladder.name, version: ladder.version)
            record.ladderCalendar = ladderCalendar
        }
        record.matrix = matrix.map { Pin(name: "matrix", version: $0.version) }
        return record
    }

    /// The newest version of every agent document, by name.
    public var agents: [AgentDocument] {
        current.compactMap { doc -> AgentDocument? in if case .agent(let a) = doc { return a } else { return nil } }
    }

    /// The proactive rules (newest versions) that match `facts`, by name.
    public func rules(matching facts: MatchFacts) -> [RuleDocument] {
        current.compactMap { doc -> RuleDocument? in if case .rule(let r) = doc, facts.matches(r.match) { return r } else { return nil } }
    }
}

/// What policies and rules match on.
public struct MatchFacts: Sendable, Hashable {
    public var priority: Priority
    public var customerTier: String?
    public var channel: String?
    public var site: SiteID?
    public var category: String?
    /// The SLA policy routing chose at intake (``RoutedEscalation/policyField``), if any.
    public var slaPolicy: String?

    public init(priority: Priority, customerTier: String? = nil, channel: String? = nil, site: SiteID? = nil, category: String? = nil,
                slaPolicy: String? = nil) {
        self.slaPolicy = slaPolicy
        self.priority = priority
        self.customerTier = customerTier
        self.channel = channel
        self.site = site
        self.category = category
    }

    func matches(_ match: MatchDocument?) -> Bool {
        guard let match else { return true }
        func ok(_ list: [String]?, _ value: String?) -> Bool { list.map { l in value.map(l.contains) ?? false } ?? true }
        return ok(match.priority, priority.rawValue) && ok(match.customerTier, customerTier) && ok(match.channel, channel)
            && ok(match.site, site?.rawValue) && ok(match.category, category)
    }
}

extension ConfigDocument {
    /// The bounds the engine relies on, checked again on every replica: a version that arrived from
    /// elsewhere (another release, a damaged publisher) is left out rather than trusted.
    var isUsable: Bool {
        func durations(_ texts: [String?]) -> Bool { texts.allSatisfy { $0.map { DurationText.millis($0) != nil } ?? true } }
        switch self {
        case .calendar: return true
        case .policy(let p):
            return ClockKind.allCases.compactMap { p.clocks[$0] }.allSatisfy { clock in
                durations(clock.targets.values.map { $0 }) && (clock.warnAt.map { (1...99).contains($0) } ?? true)
            }
        case .ladder(let l):
            return (0...9).contains(l.loops) && (1...16).contains(l.levels.count) && durations([l.ackTimeout] + l.levels.map(\.delay))
        case .matrix(let m):
            return durations([m.grace, m.handoffTimeout])
        case .rule, .agent:
            return true
        }
    }
}

/// The custom fields by which routing at intake hands its choices to escalation.
public enum RoutedEscalation {
    /// The SLA policy to apply instead of the first matching one.
    public static let policyField = "sla_policy"
    /// A ladder to start when the policy is applied: a proactive escalation at the door.
    public static let ladderField = "routing_ladder"
}
