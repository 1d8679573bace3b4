import Foundation
import StrictJSON
import TicketModel


/// Who this store writes as.
public struct LocalIdentity: Sendable, Equatable {
    public var site: SiteID
    public var role: SiteRole
    public var publicKey: [UInt8]
}

/// A ticket as the CLI and scripts see it. Every key is always present in JSON (`null` when unset).
public struct TicketRecord: Sendable, Equatable, Encodable {
    public var id: String
    public var displayNumber: String
    public var subject: String
    public var status: String
    public var priority: String
    @NullEncoded public var assignee: String?
    @NullEncoded public var group: String?
    @NullEncoded public var category: String?
    @NullEncoded public var customer: String?
    @NullEncoded public var channel: String?
    public var tags: [String]
    public var watchers: [String]
    public var originSite: String
    public var owningSite: String
    public var owningEpoch: UInt64
    public var escalationCycle: UInt64
    public var escalationLevel: UInt64
    @NullEncoded public var mergedInto: String?
    public var deleted: Bool
    /// Creation and last change, as ISO-8601 from the clock stamps' milliseconds.
    @NullEncoded public var createdAt: String?
    @NullEncoded public var updatedAt: String?
    public var conflictCount: Int
}

/// One line of a ticket's history: an event, a field change, a conflict.
public struct HistoryItem: Sendable, Encodable {
    public enum Kind: String, Sendable, Encodable {
        case created, customerMessage = "customer_message", agentReply = "agent_reply", internalNote = "internal_note",
             handoffNote = "handoff_note", autoReply = "auto_reply", escalation, attachment, fieldChange = "field_change", conflict
    }
    public var id: String
    public var kind: Kind
    public var site: String
    @NullEncoded public var actor: String?
    public var at: String
    @NullEncoded public var visibility: String?
    @NullEncoded public var field: String?
    @NullEncoded public var value: String?
    public var body: String
    /// An escalation event's record as structured JSON beside its text in `body` (`null` for other
    /// kinds), so a script reads the handoff note's parts without parsing a string.
    @NullEncoded public var record: StrictJSON.Node?
    /// Ordering key: clock stamp, then site, then a tiebreak (the change id).
    let order: (UInt64, String, String)

    init(id: String, kind: Kind, stamp: Stamp, tiebreak: String, body: String, actor: String? = nil,
         visibility: String? = nil, field: String? = nil, value: String? = nil) {
        self.id = id
        self.kind = kind
        self.site = stamp.site.rawValue
        self.at = stamp.hlc.iso8601
        self.body = body
        self.actor = actor
        self.visibility = visibility
        self.field = field
        self.value = value
        order = (stamp.hlc.rawValue, stamp.site.rawValue, tiebreak)
    }

    // `order` is for sorting only, never encoded.
    enum CodingKeys: String, CodingKey { case id, kind, site, actor, at, visibility, field, value, body, record }
}

/// A ticket with its whole history, as `ticket show` prints it.
public struct TicketDetail: Sendable, Encodable {
    public var ticket: TicketRecord
    public var customFields: [String: String]
    public var events: [HistoryItem]
    /// Why the status differs from the last status write, when a merge rule decided it.
    public var statusNote: String?
    /// The routing rule that matched at intake, explained (`nil` for tickets not routed).
    public var routing: String?
    /// The ticket's customer with their tier and tickets (`nil` when it names none).
    public var customer: CustomerHistory?
    /// Knowledge articles linked to the ticket (first line used them).
    public var articles: [ArticleRecord] = []
    /// The customer's survey answer, if given: score 1–5 and comment.
    public var csat: Satisfaction?

    public struct Satisfaction: Sendable, Encodable {
        public var score: Int
        @NullEncoded public var comment: String?
    }

    enum CodingKeys: String, CodingKey { case ticket, customFields, events, statusNote, routing, customer, articles, csat }

    public func encode(to encoder: any Encoder) throws {
        // The ticket's keys sit at the top level, beside `events`, so `show --json` is a ticket plus its history.
        try ticket.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(customFields, forKey: .customFields)
        try c.encode(events, forKey: .events)
        try c.encode(statusNote, forKey: .statusNote)
        try c.encode(routing, forKey: .routing)
        try c.encode(customer, forKey: .customer)
        try c.encode(articles, forKey: .articles)
        try c.encode(csat, forKey: .csat)
    }
}

/// What an `apply` or an import did.
public struct ApplyReport: Sendable, Equatable, Encodable {
    public struct Refusal: Sendable, Equatable, Encodable {
        public var origin: String
        public var seq: UInt64
        public var code: String
        public var reason: String
    }
    public var received = 0
    public var applied = 0
    public var duplicates = 0
    /// Blocks held back (waiting for a predecessor or deps, or stamped too far ahead), in total after this apply.
    public var held = 0
    public var refused: [Refusal] = []
    public init() {}
}

extension HLC {
    /// The stamp's wall time as ISO-8601 with milliseconds.
    public var iso8601: String {
        let date = Date(timeIntervalSince1970: Double(millis) / 1000)
        return Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}
