import Foundation
import GRDB
import TicketModel

/// What an agent gives to open a ticket.
public struct TicketDraft: Sendable {
    public var subject: String
    public var priority: Priority
    public var customer: String?
    public var channel: String?
    public var group: String?
    public var assignee: String?
    public var tags: [String]
    /// The customer's first message, if the ticket starts from one.
    public var firstMessage: String?
    public var actor: String
    public var category: String?
    /// The customer's tier (e.g. platinum), kept as the custom field `customer_tier`.
    public var customerTier: String?

    public init(subject: String, priority: Priority = .normal, customer: String? = nil, channel: String? = nil,
                group: String? = nil, assignee: String? = nil, tags: [String] = [], firstMessage: String? = nil,
                actor: String = "agent", category: String? = nil, customerTier: String? = nil) {
        self.category = category
        self.customerTier = customerTier
        self.subject = subject
        self.priority = priority
        self.customer = customer
        self.channel = channel
        self.group = group
        self.assignee = assignee
        self.tags = tags
        self.firstMessage = firstMessage
        self.actor = actor
    }
}

/// Records derived from a ticket as it stands inside a write (``TicketDatabase/writeRecords(_:_:)``).
public typealias RecordDerivation = (TicketState) throws -> [(event: TicketEvent, operations: [TicketModel.Operation])]

extension TicketDatabase {
    /// Opens a ticket with a new UUIDv7 and the next display number of this site.
    /// - Parameter follow: derives records from the new ticket (its SLA policy) that are written in
    ///   the same transaction, so no crash can leave the ticket without them.
    @discardableResult
    public func createTicket(_ draft: TicketDraft, follow: RecordDerivation? = nil) throws -> TicketRecord {
        try validate(draft)
        let id = UUIDv7.make(millis: wallClock(), random: Self.randomBytes(10))
        let eventID = UUIDv7.make(millis: wallClock(), random: Self.randomBytes(10))
        try writeLocal({ _, _, nextNumber in
                           let changes = Self.changes(opening: draft, id: id, number: try nextNumber(), messageID: eventID)
                           // The opening's fields are the opener's: attributed after the create.
                           return [changes[0]] + attributed(Array(changes.dropFirst()), to: id, actor: draft.actor)
                       },
                       followUp: follow.map { follow in { db in try Self.recordChanges(db, id, follow).changes } })
        return try ticket(id.lowercaseText)
    }

    /// Checks what a draft's texts may hold.
    func validate(_ draft: TicketDraft) throws {
        try checkText(draft.subject, "subject", max: BlockLimits.maxTextBytes, allowEmpty: false)
        for tag in draft.tags { try checkText(tag, "tag", max: BlockLimits.maxNameBytes, allowEmpty: false) }
    }

    /// The changes that open ticket `id` from `draft`: its creation, fields, tags and first message.
    static func changes(opening draft: TicketDraft, id: UUID, number: UInt64, messageID: UUID) -> [Change] {
        let ref = EntityRef.ticket(id)
        var changes = [Change(ref, .create(number: number)),
                       Change(ref, .set(.subject, .text(draft.subject))),
                       Change(ref, .set(.status, .text(Status.new.rawValue))),
                       Change(ref, .set(.priority, .text(draft.priority.rawValue)))]
        let optional: [(Field, String?)] = [(.customer, draft.customer), (.channel, draft.channel), (.group, draft.group), (.assignee, draft.assignee),
                                            (.category, draft.category), (.custom("customer_tier"), draft.customerTier)]
        for case let (field, value?) in optional { changes.append(Change(ref, .set(field, .text(value)))) }
        for tag in Set(draft.tags.map(\.canonicalTag)).sorted() { changes.append(Change(ref, .addElement(.tags, tag))) }
        if let body = draft.firstMessage {
            changes.append(Change(ref, .event(TicketEvent(id: messageID, kind: .customerMessage, actor: Self.actorName(draft.customer ?? "customer"),
                                                          visibility: .public, body: body))))
        }
        return changes
    }

    /// Writes fields of a ticket. A closed ticket leaves `closed` only through ``reopen(_:)``; `merged`
    /// is never written directly.
    /// - Parameter actor: who writes; recorded with the fields (``attributed(_:to:actor:)``).
    @discardableResult
    public func update(_ ref: String, _ fields: [(Field, FieldValue)], actor: String? = nil) throws -> TicketRecord {
        try updateIssuingSurvey(ref, fields, issue: false, actor: actor).ticket
    }

    /// `changes` with an `attribution` event naming `actor` in front, so the block that carries the
    /// field and tag changes says who made them on every replica (PROTOCOL §1.5.4). The changes of
    /// one local write are few and fit one block; `nil` or an empty actor adds nothing.
    func attributed(_ changes: [Change], to id: UUID, actor: String?) -> [Change] {
        guard let actor, !actor.isEmpty, !changes.isEmpty else { return changes }
        let event = TicketEvent(id: UUIDv7.make(millis: wallClock(), random: Self.randomBytes(10)),
                                kind: .attribution, actor: Self.actorName(actor), visibility: .internal, body: "")
        return [Change(.ticket(id), .event(event))] + changes
    }

    /// Checks a field's value and the size of its text.
    func validate(_ field: Field, _ value: FieldValue) throws {
        do { try field.validate(value) } catch { throw StoreError(.invalidInput, error.detail) }
        if let text = value.text { try checkText(text, field.description, max: BlockLimits.maxTextBytes, allowEmpty: field != .subject) }
    }

    /// Refuses to move a closed ticket's status anywhere but `closed`.
    static func checkNotClosed(_ db: Database, _ id: UUID, _ fields: [(Field, FieldValue)]) throws {
        guard fields.contains(where: { $0.0 == .status && $0.1 != .text(Status.closed.rawValue) }) else { return }
        let status = try String.fetchOne(db.cachedStatement(sql: "SELECT status FROM ticket WHERE id = ?"), arguments: [id.lowercaseText])
        if status == Status.closed.rawValue {
            throw StoreError(.refusedWrite, "ticket is closed; use `tierline ticket reopen` to open it again")
        }
    }

    /// Appends a reply, an internal note or a customer message.
    @discardableResult
    /// - Parameter recordedBy: the agent who wrote it down, when that is not `actor` (a customer's
    ///   message taken by phone): kept in an `attribution` event of the same block.
    public func comment(_ ref: String, body: String, kind: EventKind, visibility: Visibility, actor: String,
                        recordedBy: String? = nil) throws -> TicketRecord {
        try checkText(body, "body", max: BlockLimits.maxBodyBytes, allowEmpty: false)
        try checkText(actor, "actor", max: BlockLimits.maxNameBytes, allowEmpty: true)
        let id = try resolve(ref)
        let event = TicketEvent(id: UUIDv7.make(millis: wallClock(), random: Self.randomBytes(10)), kind: kind, actor: actor,
                                visibility: visibility, body: body)
        try writeLocal { _, _, _ in attributed([Change(.ticket(id), .event(event))], to: id, actor: recordedBy) }
        return try ticket(id.lowercaseText)
    }

    /// Adds and removes tags. A remove takes away the additions this replica has seen (observed-remove):
    /// a concurrent add elsewhere survives.
    @discardableResult
    public func tag(_ ref: String, add: [String], remove: [String], actor: String? = nil) throws -> TicketRecord {
        guard !add.isEmpty || !remove.isEmpty else { throw StoreError(.invalidInput, "pass --add or --remove") }
        for tag in add + remove { try checkText(tag, "tag", max: BlockLimits.maxNameBytes, allowEmpty: false) }
        let add = add.map(\.canonicalTag)
        let remove = remove.map(\.canonicalTag)
        let id = try resolve(ref)
        try writeLocal { db, _, _ in
            let state = try Self.fold(db, id)
            var changes = Set(add).sorted().map { Change(.ticket(id), .addElement(.tags, $0)) }
            for tag in Set(remove).subtracting(add).sorted() {
                let observed = state.elements[.tags]?[tag] ?? []
                if !observed.isEmpty { changes.append(Change(.ticket(id), .removeElement(.tags, tag, observed: observed))) }
            }
            return attributed(changes, to: id, actor: actor)
        }
        return try ticket(id.lowercaseText)
    }

    /// Opens a solved or closed ticket again: the one way out of `closed`.
    @discardableResult
    public func reopen(_ ref: String, actor: String? = nil) throws -> TicketRecord {
        let id = try resolve(ref)
        try writeLocal { _, _, _ in attributed([Change(.ticket(id), .set(.status, .text(Status.open.rawValue)))], to: id, actor: actor) }
        return try ticket(id.lowercaseText)
    }

    func checkText(_ text: String, _ what: String, max: Int, allowEmpty: Bool) throws {
        // Foundation's `.whitespacesAndNewlines` is Unicode's White_Space and U+200B (zero width
        // space; `TextCheckTests` compares the two). Checked scalar by scalar, it stops at the first
        // other character instead of copying the trimmed text.
        if !allowEmpty && text.unicodeScalars.allSatisfy({ $0.properties.isWhitespace || $0 == "\u{200B}" }) {
            throw StoreError(.invalidInput, "\(what) must not be empty")
        }
        if text.utf8.count > max { throw StoreError(.invalidInput, "\(what) is \(text.utf8.count) bytes; the limit is \(max)") }
    }

    /// `count` bytes from the system's secure generator (for UUIDv7 ids).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        // Eight bytes per call to the system's generator, not one.
        var rng = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(count + 7)
        while out.count < count { withUnsafeBytes(of: rng.next()) { out.append(contentsOf: $0) } }
        return Array(out.prefix(count))
    }
}

extension String {
    /// The tag as stored: in Unicode's composed form (NFC), computed only when the text is not
    /// ASCII (which NFC leaves as it is).
    var canonicalTag: String { utf8.allSatisfy { $0 < 0x80 } ? self : precomposedStringWithCanonicalMapping }
}
