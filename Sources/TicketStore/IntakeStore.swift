import Crypto
import Foundation
import GRDB
import TicketModel

/// Custom fields of a ticket that intake finds tickets by (materialized in `ticketLookup`).
public enum TicketLookup {
    /// The channel's conversation id (an email's thread, a chat session): replies land on its ticket.
    public static let thread = "external_thread"
    /// SHA-256 (hex) of the survey token issued when the ticket was last solved.
    public static let surveyToken = "csat_token"
    /// The intake integration that opened the ticket, as `SITE/NAME` (tokens are a node's own):
    /// public replies go back through its reply webhook, sent by that site.
    public static let integration = "intake_integration"
    /// The address an e-mail ticket came from: where the customer's copies of public replies go.
    public static let replyAddress = "reply_address"
    /// Fields only intake writes, when it opens a ticket: they steer where replies go and which
    /// thread a message lands on, so an agent's update may not set them.
    public static let reserved: Set = [thread, surveyToken, integration, replyAddress]
    static let names = [thread, surveyToken]
}

/// One integration's API token, as `intake token list` shows it (the token itself is never stored).
public struct APIToken: Sendable, Equatable, Encodable {
    public var name: String
    /// The channels it may deliver; empty means every channel.
    public var channels: [String]
    public var createdAt: String
    @NullEncoded public var revokedAt: String?
    /// What a message that matches no ticket does when this integration delivers it.
    public var unmatchedReplies: UnmatchedReplies = .open

    public func allows(channel: String) -> Bool { channels.isEmpty || channels.contains(channel) }
}

/// What the intake API does with a message (`POST /api/intake/messages`) that names no ticket, or
/// whose thread id or `[NUMBER]` finds none: a choice of each integration.
public enum UnmatchedReplies: String, Sendable, Codable, CaseIterable {
    /// Open a new ticket with it, as a mail gateway expects (the default).
    case open
    /// Refuse it (400, or 404 when the reference it gave names nothing).
    case refuse
}

/// A ticket that arrives through a channel: the draft, the ids it is known by, and what to write with it.
public struct IntakeTicket: Sendable {
    /// Name-based from the channel's message id when there is one, so a redelivery finds the same ticket.
    public var id: UUID
    public var draft: TicketDraft
    /// The first message's event id.
    public var messageID: UUID
    /// Further fields (thread id, language, routing, SLA policy, bot).
    public var fields: [(Field, FieldValue)]
    /// Further events after the first message (attachments, a bot transcript, notes).
    public var events: [TicketEvent]
    /// Customer records to create or update with the ticket.
    public var customers: [CustomerDraft]

    public init(id: UUID, draft: TicketDraft, messageID: UUID, fields: [(Field, FieldValue)] = [], events: [TicketEvent] = [],
                customers: [CustomerDraft] = []) {
        self.id = id
        self.draft = draft
        self.messageID = messageID
        self.fields = fields
        self.events = events
        self.customers = customers
    }
}

/// Survey tokens: given to the customer in the clear, kept as their SHA-256.
public enum SurveyToken {
    public static func make() -> String { "cs_" + TokenText.random(18) }
    public static func hash(_ token: String) -> String { TokenText.sha256Hex(token) }
}

enum TokenText {
    /// `count` random bytes as unpadded base64url.
    static func random(_ count: Int) -> String {
        Data(TicketDatabase.randomBytes(count)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension TicketDatabase {
    /// `name` cut to the 256 bytes an event's actor holds, at a character boundary (a customer id or
    /// a bot name may be longer in UTF-8; the full key stays in the ticket's customer field).
    public static func actorName(_ name: String) -> String {
        var out = ""
        for character in name {
            guard out.utf8.count + character.utf8.count <= BlockLimits.maxNameBytes else { break }
            out.append(character)
        }
        return out
    }

    // MARK: API tokens (local to this node)

    /// Makes a token for integration `name`. Returns it in the clear: it is shown once and kept only hashed.
    /// - Parameter unmatchedReplies: what a message it delivers that matches no ticket does.
    public func addAPIToken(name: String, channels: [String], unmatchedReplies: UnmatchedReplies = .open) throws -> String {
        guard name.range(of: "^[a-z0-9][a-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
            throw StoreError(.invalidInput, "token name \(name.debugDescription) must be 1–64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        }
        let token = "tl_" + TokenText.random(32)
        try writer.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM apiToken WHERE name = ? AND revokedAt IS NULL", arguments: [name]) ?? false {
                throw StoreError(.invalidInput, "a live token named \(name) exists; revoke it first (`tierline intake token revoke \(name)`) or choose another name")
            }
            // A revoked name may be used again: the new token replaces the revoked one's row.
            try db.execute(sql: "DELETE FROM apiToken WHERE name = ?", arguments: [name])
            try db.execute(sql: "INSERT INTO apiToken (name, hash, channels, createdAt, unmatchedReplies) VALUES (?, ?, ?, ?, ?)",
                           arguments: [name, Data(SHA256.hash(data: Array(token.utf8))), channels.joined(separator: ","), Int64(wallClock()),
                                       unmatchedReplies.rawValue])
        }
        return token
    }

    /// Sets what a message that integration `name` delivers does when it matches no ticket.
    public func setUnmatchedReplies(integration name: String, _ choice: UnmatchedReplies) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE apiToken SET unmatchedReplies = ? WHERE name = ? AND revokedAt IS NULL", arguments: [choice.rawValue, name])
            guard db.changesCount > 0 else {
                throw StoreError(.unknownToken, "no live token named \(name); `tierline intake token list` shows them")
            }
        }
    }

    /// Every token, revoked ones too.
    public func apiTokens() throws -> [APIToken] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM apiToken ORDER BY name").map(Self.apiToken) }
    }

    /// Revokes the token named `name`: later requests with it are refused.
    public func revokeAPIToken(name: String) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE apiToken SET revokedAt = ? WHERE name = ? AND revokedAt IS NULL", arguments: [Int64(wallClock()), name])
            if db.changesCount == 0 {
                let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM apiToken WHERE name = ?", arguments: [name]) ?? false
                throw StoreError(exists ? .invalidInput : .unknownToken,
                                 exists ? "token \(name) is revoked already" : "no token named \(name); `tierline intake token list` shows them")
            }
        }
    }

    /// The live token `presented` is, or `nil`.
    public func verifyAPIToken(_ presented: String) throws -> APIToken? {
        let hash = Data(SHA256.hash(data: Array(presented.utf8)))
        return try writer.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM apiToken WHERE hash = ? AND revokedAt IS NULL"), arguments: [hash]).map(Self.apiToken)
        }
    }

    private static func apiToken(_ row: Row) -> APIToken {
        func iso(_ ms: Int64?) -> String? { ms.map { HLC(rawValue: UInt64($0) << 16).iso8601 } }
        let channels: String = row["channels"]
        return APIToken(name: row["name"], channels: channels.split(separator: ",").map(String.init),
                        createdAt: iso(row["createdAt"]) ?? "", revokedAt: iso(row["revokedAt"]),
                        unmatchedReplies: (row["unmatchedReplies"] as String?).flatMap(UnmatchedReplies.init(rawValue:)) ?? .open)
    }

    // MARK: Intake writes

    /// Opens a ticket that arrived through a channel, with its customers, in one write. A ticket with
    /// the same id (a redelivery of the same message) is left as it is: `duplicate` is then true.
    /// - Parameter follow: records derived from the new ticket (its SLA policy), written in the same
    ///   transaction; not for a duplicate.
    public func intakeCreate(_ intake: IntakeTicket, follow: RecordDerivation? = nil) throws -> (ticket: TicketRecord, duplicate: Bool) {
        try checkIntake(intake)
        let duplicate = try writeIntake(intake, follow: follow, within: nil)
        return (try ticket(intake.id.lowercaseText), duplicate)
    }

    /// ``intakeCreate(_:follow:)`` through `commits`: the write shares a transaction with the
    /// requests that arrive with it, and this returns once that transaction committed. The ticket's
    /// own checks come first, so a bad request is refused without joining a batch.
    /// - Parameter follow: makes the records derived from the new ticket, inside the write.
    public func intakeCreate(_ intake: IntakeTicket, follow: (@Sendable () -> RecordDerivation?)?,
                             through commits: GroupCommit) async throws -> (ticket: TicketRecord, duplicate: Bool) {
        try checkIntake(intake)
        let duplicate = try await commits.commit { db in try self.writeIntake(intake, follow: follow?(), within: db) }
        return (try await committedTicket(intake.id.lowercaseText), duplicate)
    }

    /// The checks of an intake ticket that need no transaction.
    func checkIntake(_ intake: IntakeTicket) throws {
        try validate(intake.draft)
        for (field, value) in intake.fields { try validate(field, value) }
        for event in intake.events { try checkText(event.body, "\(event.kind.rawValue) body", max: BlockLimits.maxBodyBytes, allowEmpty: false) }
        if let body = intake.draft.firstMessage { try checkText(body, "message", max: BlockLimits.maxBodyBytes, allowEmpty: false) }
    }

    /// The write of an intake ticket, in its own transaction or in a group commit's savepoint.
    /// - Returns: whether the store held the ticket already (nothing was written).
    func writeIntake(_ intake: IntakeTicket, follow: RecordDerivation?, within group: Database?) throws -> Bool {
        var duplicate = false
        let isStored = { (db: Database) throws -> Bool in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM ticket WHERE id = ? AND number IS NOT NULL", arguments: [intake.id.lowercaseText]) ?? false
        }
        let redelivered = try answeringRedeliveries({ try isStored($0) ? true : nil }, within: group) {
            try writeLocal({ db, _, nextNumber in
                duplicate = try isStored(db)
                guard !duplicate else { return [] }
                var changes: [Change] = []
                for customer in intake.customers {
                    guard let key = customer.key else { continue }
                    changes += try Self.customerChanges(db, key: key, draft: customer).changes
                }
                changes += Self.changes(opening: intake.draft, id: intake.id, number: try nextNumber(), messageID: intake.messageID)
                changes += intake.fields.map { Change(.ticket(intake.id), .set($0.0, $0.1)) }
                changes += intake.events.map { Change(.ticket(intake.id), .event($0)) }
                return changes
            }, followUp: follow.map { follow in { db in try Self.recordChanges(db, intake.id, follow).changes } }, within: group)
        }
        return duplicate || redelivered != nil
    }

    /// Runs `write`; when this store refuses to write (a copy, a removed site, a restore that waits)
    /// and `lookup` finds what the request would write already stored (a redelivery of a request it
    /// took before), returns what it found instead of failing: the sender gets its answer, not a
    /// refusal it would retry for ever. Any other request still gets the refusal.
    /// - Returns: `nil` when `write` ran.
    private func answeringRedeliveries<Found>(_ lookup: (Database) throws -> Found?, within group: Database?,
                                              _ write: () throws -> Void) throws -> Found? {
        do {
            try write()
            return nil
        } catch let error as StoreError where error.code == .refusedWrite || error.code == .awaitingSync {
            guard let found = try GroupCommit.writing(writer, within: group, lookup) else { throw error }
            return found
        }
    }

    /// A ticket as a committed write left it, read without blocking the caller's thread.
    func committedTicket(_ id: String) async throws -> TicketRecord {
        try await writer.read { db in
            guard let row = try TicketRow.fetch(db, TicketRow.Columns.id == id).first else {
                throw StoreError(.unknownTicket, "no ticket \(id) in this store")
            }
            return row.record
        }
    }

    /// Appends a customer's message (and its attachments) to ticket `ticket`. A message whose id this
    /// store holds already (a redelivery) is not written again: `duplicate` is then true and
    /// `ticket` is the ticket that holds it.
    public func intakeAppend(_ ticket: UUID, message: TicketEvent, events: [TicketEvent] = [], fields: [(Field, FieldValue)] = [],
                             customers: [CustomerDraft] = []) throws -> (ticket: TicketRecord, duplicate: Bool) {
        try checkAppend(message: message, events: events, fields: fields)
        let holder = try writeAppend(ticket, message: message, events: events, fields: fields, customers: customers, within: nil)
        return (try self.ticket(holder ?? ticket.lowercaseText), holder != nil)
    }

    /// ``intakeAppend(_:message:events:fields:customers:)`` through `commits` (see
    /// ``intakeCreate(_:follow:through:)``).
    public func intakeAppend(_ ticket: UUID, message: TicketEvent, events: [TicketEvent] = [], customers: [CustomerDraft] = [],
                             through commits: GroupCommit) async throws -> (ticket: TicketRecord, duplicate: Bool) {
        try checkAppend(message: message, events: events, fields: [])
        let holder = try await commits.commit { db in
            try self.writeAppend(ticket, message: message, events: events, fields: [], customers: customers, within: db)
        }
        return (try await committedTicket(holder ?? ticket.lowercaseText), holder != nil)
    }

    func checkAppend(message: TicketEvent, events: [TicketEvent], fields: [(Field, FieldValue)]) throws {
        for event in [message] + events { try checkText(event.body, "\(event.kind.rawValue) body", max: BlockLimits.maxBodyBytes, allowEmpty: false) }
        for (field, value) in fields { try validate(field, value) }
    }

    /// The ticket that holds a message (`?1`) already: one lookup in `ticketEvent_on_id`, which leaves
    /// attribution events out, then one in the events of the ticket it is for (`?2`) by key. A
    /// message is never an attribution; the second lookup covers an event of any kind that took the
    /// message's id on that ticket (a peer's block can carry one), which the fold keeps in the
    /// message's place, so that each redelivery is not appended again unseen.
    static let heldMessageSQL = """
        SELECT ticket FROM ticketEvent WHERE id = ?1 AND kind <> 'attribution'
        UNION ALL SELECT ticket FROM ticketEvent WHERE ticket = ?2 AND id = ?1
        LIMIT 1
        """

    /// The write of an appended message, in its own transaction or in a group commit's savepoint.
    /// - Returns: the ticket that holds the message already (nothing was written), or `nil`.
    func writeAppend(_ ticket: UUID, message: TicketEvent, events: [TicketEvent], fields: [(Field, FieldValue)],
                     customers: [CustomerDraft], within group: Database?) throws -> String? {
        var holder: String?
        let storedIn = { (db: Database) throws -> String? in
            try String.fetchOne(db, sql: Self.heldMessageSQL, arguments: [message.id.lowercaseText, ticket.lowercaseText])
        }
        let redelivered = try answeringRedeliveries(storedIn, within: group) {
            try writeLocal({ db, _, _ in
                holder = try storedIn(db)
                guard holder == nil else { return [] }
                var changes: [Change] = []
                for customer in customers {
                    guard let key = customer.key else { continue }
                    changes += try Self.customerChanges(db, key: key, draft: customer).changes
                }
                return changes + [Change(.ticket(ticket), .event(message))] + events.map { Change(.ticket(ticket), .event($0)) }
                    + fields.map { Change(.ticket(ticket), .set($0.0, $0.1)) }
            }, within: group)
        }
        return redelivered ?? holder
    }

    /// The ticket whose custom field `name` (one of ``TicketLookup``) holds `value`, on `channel` when
    /// given (a thread id is the channel's own): the newest when several do.
    public func ticket(lookup name: String, value: String, channel: String? = nil) throws -> UUID? {
        try writer.read { db in
            try String.fetchOne(db, sql: """
                SELECT l.ticket FROM ticketLookup l JOIN ticket t ON t.id = l.ticket
                WHERE l.name = ? AND l.value = ? AND (? IS NULL OR t.channel = ?) ORDER BY t.createdHLC DESC, t.id DESC LIMIT 1
                """, arguments: [name, value, channel, channel]).map(Self.uuid)
        }
    }

    // MARK: Customer satisfaction

    /// Writes fields of a ticket like ``update(_:_:)``; when the write solves the ticket, a survey
    /// token is issued with it (its hash is replicated with the ticket) and returned in the clear.
    /// - Parameters:
    ///   - issue: `false` writes the fields only (``update(_:_:actor:)``).
    ///   - actor: who writes; recorded with the fields in an `attribution` event of the same block.
    public func updateIssuingSurvey(_ ref: String, _ fields: [(Field, FieldValue)], issue: Bool = true,
                                    actor: String? = nil) throws -> (ticket: TicketRecord, surveyToken: String?) {
        guard !fields.isEmpty else { throw StoreError(.invalidInput, "nothing to update; pass at least one field") }
        for (field, value) in fields { try validate(field, value) }
        if let actor { try checkText(actor, "actor", max: BlockLimits.maxNameBytes, allowEmpty: true) }
        let id = try resolve(ref)
        var token: String?
        try writeLocal { db, _, _ in
            try Self.checkNotClosed(db, id, fields)
            token = nil
            var changes = fields.map { Change(.ticket(id), .set($0.0, $0.1)) }
            if issue, fields.contains(where: { $0.0 == .status && $0.1 == .text(Status.solved.rawValue) }),
               try String.fetchOne(db, sql: "SELECT baseStatus FROM ticket WHERE id = ?", arguments: [id.lowercaseText]) != Status.solved.rawValue {
                let issued = SurveyToken.make()
                token = issued
                changes.append(Change(.ticket(id), .set(.custom(TicketLookup.surveyToken), .text(SurveyToken.hash(issued)))))
            }
            return attributed(changes, to: id, actor: actor)
        }
        return (try ticket(id.lowercaseText), token)
    }

    /// Records a customer's answer to the survey of `token`: once per token.
    /// - Throws: ``StoreError/Code/unknownToken`` for a token no ticket holds (or one replaced by a
    ///   later solve), ``StoreError/Code/alreadyAnswered`` when the survey has its answer.
    public func answerSurvey(token: String, score: Int, comment: String?) throws -> TicketRecord {
        guard (1...5).contains(score) else { throw StoreError(.invalidInput, "score must be 1 to 5, got \(score)") }
        if let comment { try checkText(comment, "comment", max: BlockLimits.maxTextBytes, allowEmpty: true) }
        let hash = SurveyToken.hash(token)
        guard let id = try ticket(lookup: TicketLookup.surveyToken, value: hash) else {
            throw StoreError(.unknownToken, "no survey has this token; it may have been replaced when the ticket was solved again")
        }
        try writeLocal { db, _, _ in
            let state = try Self.fold(db, id)
            guard state.customFields[TicketLookup.surveyToken] == hash else {
                throw StoreError(.unknownToken, "no survey has this token; it may have been replaced when the ticket was solved again")
            }
            guard state.customFields["csat_answered"] != hash else {
                throw StoreError(.alreadyAnswered, "this survey was answered already; a survey takes one answer")
            }
            let ref = EntityRef.ticket(id)
            return [Change(ref, .set(.custom("csat_score"), .text(String(score)))),
                    Change(ref, .set(.custom("csat_comment"), comment.map { .text($0) } ?? .null)),
                    Change(ref, .set(.custom("csat_answered"), .text(hash)))]
        }
        return try ticket(id.lowercaseText)
    }
}
