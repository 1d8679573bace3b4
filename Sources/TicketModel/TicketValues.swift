import struct Foundation.UUID

/// Where a ticket stands. `merged` is never written directly: it is derived from an accepted merge.
public enum Status: String, CaseIterable, Sendable, Codable {
    case new, open
    case pendingCustomer = "pending_customer"
    case pendingThirdParty = "pending_third_party"
    case onHold = "on_hold"
    case solved, closed, merged

    /// Statuses an agent may set with an update (`merged` comes from a merge, `closed` is left through reopen).
    public static let writable: [Status] = [.new, .open, .pendingCustomer, .pendingThirdParty, .onHold, .solved, .closed]

    /// Whether the ticket counts as resolved.
    public var isResolved: Bool { self == .solved || self == .closed || self == .merged }
}

/// The channels tickets arrive through.
public enum IntakeChannel {
    public static let all = ["email", "chat", "phone", "social", "portal", "bot", "api"]
}

/// How urgent a ticket is.
public enum Priority: String, CaseIterable, Sendable, Codable, Comparable {
    case low, normal, high, urgent
    private var rank: Int { Priority.allCases.firstIndex(of: self)! }
    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rank < rhs.rank }
}

/// The kinds of entries in a ticket's grow-only event log.
public enum EventKind: String, CaseIterable, Sendable, Codable {
    case customerMessage = "customer_message"
    case agentReply = "agent_reply"
    case internalNote = "internal_note"
    case handoffNote = "handoff_note"
    /// A reply sent by automation: public, but not a response for the SLA clocks (schema 2).
    case autoReply = "auto_reply"
    /// An SLA or escalation record (applied policy, warning, breach, ladder level, handoff…): the body
    /// is its canonical JSON, the `Escalation` module reads it (schema 2).
    case escalation
    /// One published version of a configuration document; the body is its canonical JSON (schema 2).
    case configVersion = "config_version"
    /// The metadata of a file a customer sent (name, type, size, link, digest), as canonical JSON;
    /// the file itself stays where the channel keeps it (schema 3).
    case attachment
    /// Who made the other changes of its block (field sets, tag adds and removes): the actor, with
    /// an empty body. It carries no text of its own; histories show its actor on those changes
    /// instead of listing it (schema 4).
    case attribution

    var code: UInt8 { UInt8(EventKind.allCases.firstIndex(of: self)! + 1) }
}

/// Who may read an event.
public enum Visibility: String, CaseIterable, Sendable, Codable {
    case `public`, `internal`
    var code: UInt8 { self == .public ? 1 : 2 }
}

/// One entry of a ticket's event log: a customer message, a reply, a note, a handoff note.
///
/// Events are kept forever (a grow-only set keyed by ``id``); their clock stamp and site are those
/// of the block that carries them.
public struct TicketEvent: Hashable, Sendable {
    public var id: UUID
    public var kind: EventKind
    public var actor: String
    public var visibility: Visibility
    public var body: String

    public init(id: UUID, kind: EventKind, actor: String, visibility: Visibility, body: String) {
        self.id = id
        self.kind = kind
        self.actor = actor
        self.visibility = visibility
        self.body = body
    }
}

/// The named sets of a ticket, merged as add-wins observed-remove sets.
public enum ElementSet: UInt8, CaseIterable, Sendable, Hashable, Comparable {
    case tags = 1, watchers = 2, links = 3
    public var name: String {
        switch self {
        case .tags: "tags"
        case .watchers: "watchers"
        case .links: "links"
        }
    }
    public static func < (lhs: ElementSet, rhs: ElementSet) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A register of a ticket: the unit of a `set` change.
public enum Field: Hashable, Sendable, Comparable, CustomStringConvertible {
    case subject, status, priority, assignee, group, category, customer, channel, pendingUntil
    /// Escalation state `(cycle, level)`: a max-register.
    case escalation
    /// Owning site `(epoch, site)`: a max-register.
    case owner
    /// The ticket this one was merged into: first writer wins.
    case mergedInto
    /// Remove-wins deletion flag.
    case deleted
    case custom(String)

    /// The field's code in the canonical encoding.
    public var code: UInt8 {
        switch self {
        case .subject: 1
        case .status: 2
        case .priority: 3
        case .assignee: 4
        case .group: 5
        case .category: 6
        case .customer: 7
        case .channel: 8
        case .pendingUntil: 9
        case .escalation: 10
        case .owner: 11
        case .mergedInto: 12
        case .deleted: 13
        case .custom: 255
        }
    }

    public static let builtIn: [Field] = [.subject, .status, .priority, .assignee, .group, .category, .customer,
                                         .channel, .pendingUntil, .escalation, .owner, .mergedInto, .deleted]

    static func fromCode(_ code: UInt8) -> Field? { builtIn.first { $0.code == code } }

    public var description: String {
        switch self {
        case .subject: "subject"
        case .status: "status"
        case .priority: "priority"
        case .assignee: "assignee"
        case .group: "group"
        case .category: "category"
        case .customer: "customer"
        case .channel: "channel"
        case .pendingUntil: "pending_until"
        case .escalation: "escalation"
        case .owner: "owning_site"
        case .mergedInto: "merged_into"
        case .deleted: "deleted"
        case .custom(let name): "custom.\(name)"
        }
    }

    public static func < (lhs: Field, rhs: Field) -> Bool {
        if lhs.code != rhs.code { return lhs.code < rhs.code }
        if case .custom(let a) = lhs, case .custom(let b) = rhs { return a.utf8.lexicographicallyPrecedes(b.utf8) }
        return false
    }

    /// Checks that `value` has the shape this field takes on an entity of `kind`: a customer's or an
    /// article's fields are all custom text registers.
    public func validate(_ value: FieldValue, on kind: EntityKind) throws(ModelError) {
        guard kind.isRecord else { return try validate(value) }
        guard case .custom = self, value == .null || value.text != nil else {
            throw ModelError(.invalidValue, "a customer or knowledge article holds only custom text fields, not \(self) = \(value.kindName)")
        }
    }

    /// Checks that `value` has the shape this field takes.
    public func validate(_ value: FieldValue) throws(ModelError) {
        let ok: Bool
        switch (self, value) {
        case (.subject, .text): ok = true
        case (.status, .text(let s)): ok = Status(rawValue: s).map { Status.writable.contains($0) } ?? false
        case (.priority, .text(let p)): ok = Priority(rawValue: p) != nil
        case (.assignee, .text), (.assignee, .null), (.group, .text), (.group, .null), (.category, .text),
             (.category, .null), (.customer, .text), (.customer, .null), (.channel, .text), (.channel, .null),
             (.custom, .text), (.custom, .null):
            ok = true
        case (.pendingUntil, .integer), (.pendingUntil, .null): ok = true
        case (.escalation, .level): ok = true
        case (.owner, .owner): ok = true
        case (.mergedInto, .ticket), (.mergedInto, .null): ok = true
        case (.deleted, .flag): ok = true
        default: ok = false
        }
        if !ok { throw ModelError(.invalidValue, "field \(self) does not take a value of kind \(value.kindName)") }
    }
}

/// The value of a `set` change.
public enum FieldValue: Hashable, Sendable, CustomStringConvertible {
    case null
    case text(String)
    case integer(Int64)
    case flag(Bool)
    case ticket(UUID)
    case level(cycle: UInt64, level: UInt64)
    case owner(epoch: UInt64, site: SiteID)

    var tag: UInt8 {
        switch self {
        case .null: 0
        case .text: 1
        case .integer: 2
        case .flag: 3
        case .ticket: 4
        case .level: 5
        case .owner: 6
        }
    }

    var kindName: String {
        switch self {
        case .null: "null"
        case .text: "text"
        case .integer: "integer"
        case .flag: "flag"
        case .ticket: "ticket"
        case .level: "level"
        case .owner: "owner"
        }
    }

    /// The text of a `.text` value, else `nil`.
    public var text: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case .null: "—"
        case .text(let s): s
        case .integer(let i): String(i)
        case .flag(let b): b ? "true" : "false"
        case .ticket(let id): id.lowercaseText
        case .level(let c, let l): "cycle \(c) level \(l)"
        case .owner(let e, let s): "\(s) (epoch \(e))"
        }
    }
}
