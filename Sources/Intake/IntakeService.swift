import Escalation
import Foundation
import HTTPTypes
import Logging
import NIOPosix
import Desk
import TicketModel
import TicketStore

/// A ticket as an intake answer shows it. Every key is always present (`null` when unset).
struct TicketSummary: Encodable, Sendable {
    var id: String
    var displayNumber: String
    var subject: String
    var status: String
    var priority: String
    @NullEncoded var channel: String?
    @NullEncoded var group: String?
    var tags: [String]
    @NullEncoded var customer: String?
    @NullEncoded var customerTier: String?

    init(_ record: TicketRecord, tier: String?) {
        id = record.id
        displayNumber = record.displayNumber
        subject = record.subject
        status = record.status
        priority = record.priority
        channel = record.channel
        group = record.group
        tags = record.tags
        customer = record.customer
        customerTier = tier
    }

}

/// What a survey answer answers: every key present, `comment` null when none was given.
struct SurveyAnswered: Encodable, Sendable {
    var ticket: String
    var score: Int64
    @NullEncoded var comment: String?
}

/// How a ticket was routed, as the answer says it.
struct RoutingSummary: Encodable, Sendable {
    var rule: String
    var fallback: Bool
    var explanation: String
}

/// What a create, append or handoff answers.
struct IntakeResult: Encodable, Sendable {
    var ticket: TicketSummary
    var duplicate: Bool
    var messageId: String
    @NullEncoded var routing: RoutingSummary?
    /// Handoffs only (the key is left out otherwise): when the human first-response clock started.
    var firstResponseClockStartedAt: String?
    /// Messages only (the key is left out otherwise): whether the message matched no ticket and
    /// opened one (the integration's ``UnmatchedReplies/open``).
    var openedTicket: Bool?
}

/// The intake side of a node: tickets and messages from channels, bot handoffs and survey answers,
/// routed by the node's rules file and written to its store.
public struct IntakeService: Sendable {
    public let store: TicketDatabase
    public let routing: RoutingRules?
    /// Groups concurrent intake writes into one transaction each (see ``GroupCommit``).
    public let commits: GroupCommit
    let desk: HelpDesk
    let site: SiteID
    let now: @Sendable () -> Int64
    let logger: Logger

    /// - Parameter maxBatch: the most requests one transaction takes (1: a transaction each).
    public init(store: TicketDatabase, routing: RoutingRules?, logger: Logger = Logger(label: "tierline.intake"), maxBatch: Int = 128,
                now: @escaping @Sendable () -> Int64 = { Int64(TicketDatabase.systemMillis()) }) throws {
        // Through the Desk: every intake write puts its notices (a customer reply to the assignee) in the outbox.
        desk = try HelpDesk(store: store)
        self.store = desk.store
        commits = GroupCommit(store: desk.store, maxBatch: maxBatch)
        self.routing = routing
        self.logger = logger
        self.now = now
        site = try store.identity().site
    }

    // MARK: Requests

    static let customerKeys: Set = ["id", "name", "email", "phone", "organization"]
    static let attachmentKeys: Set = ["name", "contentType", "size", "url", "sha256"]

    /// Opens a ticket from a channel.
    /// - Parameter integration: the name of the token it came with: public replies go back through
    ///   that integration's reply webhook, when one is registered.
    func create(_ body: JSONValue, integration: String? = nil) async throws -> (IntakeResult, created: Bool) {
        let r = try ObjectReader(body, path: "", known: ["channel", "subject", "message", "customer", "externalMessageId", "externalThreadId",
                                                         "attachments", "category", "language", "priority", "tags"])
        let channel = try r.choice("channel", IntakeChannel.all, required: true)!
        let subject = try r.string("subject", required: true, max: 1000, empty: .text)!
        let message = try r.string("message", required: true, max: 16000, empty: .text)!
        let customer = try Self.customer(r, "customer", required: true)!
        let messageID = try r.string("externalMessageId", max: 200)
        let thread = try r.string("externalThreadId", max: 200)
        let attachments = try Self.attachments(r)
        let category = try r.string("category", max: 64, empty: .absent)
        let language = try r.string("language", max: 64, empty: .absent)
        let priority = try r.choice("priority", Priority.allCases.map(\.rawValue)).flatMap(Priority.init(rawValue:))
        let tags = try r.strings("tags", max: 20, maxLength: 64)
        let ids = Self.ids(channel: channel, externalMessageID: messageID)
        return try await open(TicketRequest(id: ids.ticket, messageID: ids.message, channel: channel, subject: subject, firstMessage: message,
                                      customer: customer, thread: thread, attachments: attachments, category: category, language: language,
                                      priority: priority, tags: tags, events: [], fields: [], integration: integration))
    }

    /// Appends a customer's message to the ticket it answers; a message that matches none opens a
    /// ticket, unless the integration refuses those (``UnmatchedReplies``).
    /// - Parameter token: the integration's; it may append only to tickets of a channel it may
    ///   deliver, so an integration limited to one channel cannot write into another's tickets by
    ///   their (guessable) numbers.
    func append(_ body: JSONValue, token: APIToken? = nil) async throws -> (IntakeResult, created: Bool) {
        let r = try ObjectReader(body, path: "", known: ["channel", "message", "ticket", "externalThreadId", "subject", "externalMessageId",
                                                         "customer", "from", "attachments"])
        let channel = try r.choice("channel", IntakeChannel.all, required: true)!
        let message = try r.string("message", required: true, max: 16000, empty: .text)!
        let ticketRef = try r.string("ticket", max: 200, empty: .text)
        let thread = try r.string("externalThreadId", max: 200)
        let subject = try r.string("subject", max: 1000, empty: .text)
        let externalID = try r.string("externalMessageId", max: 200)
        // `from` is the old name of `customer` (as /tickets calls it), kept for one release.
        if case .object(let members) = body, members["customer"] != nil, members["from"] != nil {
            throw IntakeError.bad("from", "is the old name of customer; give customer only")
        }
        let from = try Self.customer(r, "customer", required: false) ?? Self.customer(r, "from", required: false)
        let attachments = try Self.attachments(r)
        let ids = Self.ids(channel: channel, externalMessageID: externalID)
        let ticket: UUID
        switch try await blocking({ try self.matchTicket(ticket: ticketRef, thread: thread, channel: channel, subject: subject) }) {
        case .ticket(let id): ticket = id
        case .none(var refusal):
            guard (token?.unmatchedReplies ?? .open) == .open else {
                refusal.message += "; this integration refuses messages that match no ticket (`tierline intake token unmatched-replies` changes that)"
                throw refusal
            }
            // A new ticket needs its customer: without one, the message is refused as unplaced.
            guard let from else {
                refusal.message += "; or give customer, to open a new ticket with this message"
                throw refusal
            }
            // The first line of the message stands in for a missing subject.
            let title = subject ?? String(message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .first { !$0.isEmpty }?.prefix(120) ?? "")
            var (result, created) = try await open(TicketRequest(id: ids.ticket, messageID: ids.message, channel: channel, subject: title,
                                                           firstMessage: message, customer: from, thread: thread, attachments: attachments,
                                                           category: nil, language: nil, priority: nil, tags: [], events: [], fields: [],
                                                           integration: token?.name))
            result.openedTicket = true
            return (result, created)
        }
        let (known, customers) = try await blocking { (try self.store.ticket(ticket.text), try self.newCustomer(from).map { [$0] } ?? []) }
        if let token, let held = known.channel, !token.allows(channel: held) {
            throw IntakeError(.forbidden, field: "ticket", "token \(token.name) may deliver \(token.channels.joined(separator: ", ")); \(known.displayNumber) is a \(held) ticket")
        }
        let event = TicketEvent(id: ids.message, kind: .customerMessage, actor: TicketDatabase.actorName(from?.key ?? known.customer ?? "customer"),
                                visibility: .public, body: message)
        let (record, duplicate) = try await store.intakeAppend(ticket, message: event, events: try attachmentEvents(attachments, ticket: ticket, message: ids.message),
                                                               customers: customers, through: commits)
        let answer = try await blocking { try self.summary(record) }
        return (IntakeResult(ticket: answer, duplicate: duplicate, messageId: ids.message.text, routing: nil, openedTicket: false), !duplicate)
    }

    /// Turns a bot conversation into a ticket for a human.
    func handoff(_ body: JSONValue, integration: String? = nil) async throws -> (IntakeResult, created: Bool) {
        let r = try ObjectReader(body, path: "", known: ["bot", "customer", "subject", "transcript", "reason", "channel", "externalThreadId",
                                                         "externalMessageId", "category", "language"])
        let bot = try r.string("bot", required: true, max: 200)!
        let customer = try Self.customer(r, "customer", required: true)!
        let subject = try r.string("subject", required: true, max: 1000, empty: .text)!
        var lines: [(from: String, text: String)] = []
        for (value, path) in try r.array("transcript", required: true, min: 1, max: 500)! {
            let line = try ObjectReader(value, path: path, known: ["from", "text"])
            lines.append((try line.choice("from", ["customer", "bot"], required: true)!, try line.string("text", required: true, max: 16000, empty: .text)!))
        }
        let reason = try r.string("reason", max: 4000, empty: .absent)
        let channel = try r.choice("channel", IntakeChannel.all) ?? "bot"
        let thread = try r.string("externalThreadId", max: 200)
        let externalID = try r.string("externalMessageId", max: 200)
        let category = try r.string("category", max: 64, empty: .absent)
        let language = try r.string("language", max: 64, empty: .absent)
        // A redelivered handoff of the same conversation finds the same ticket.
        let key = externalID ?? thread.map { "handoff|\(bot)|\($0)" }
        let ids = Self.ids(channel: channel, externalMessageID: key)
        let actor = TicketDatabase.actorName(customer.key ?? "customer"), botActor = TicketDatabase.actorName(bot)
        var events: [TicketEvent] = []
        for (index, line) in lines.enumerated() {
            let id = NameBasedID.make(["transcript", ids.ticket.text, String(index)])
            events.append(line.from == "customer"
                ? TicketEvent(id: id, kind: .customerMessage, actor: actor, visibility: .public, body: line.text)
                : TicketEvent(id: id, kind: .autoReply, actor: botActor, visibility: .public, body: line.text))
        }
        events.append(TicketEvent(id: NameBasedID.make(["handoff-note", ids.ticket.text]), kind: .internalNote, actor: botActor, visibility: .internal,
                                  body: "Handed to a human by bot \(bot)" + (reason.map { ": \($0)" } ?? "") + ". The first-response clock starts now."))
        let customerText = lines.filter { $0.from == "customer" }.map(\.text).joined(separator: "\n")
        var (result, created) = try await open(TicketRequest(id: ids.ticket, messageID: ids.message, channel: channel, subject: subject, firstMessage: nil,
                                                       routingText: customerText, customer: customer, thread: thread, attachments: [], category: category,
                                                       language: language, priority: nil, tags: [], events: events,
                                                       fields: [(.custom("handoff_bot"), .text(bot))], integration: integration))
        let id = result.ticket.id
        result.firstResponseClockStartedAt = try await blocking { try self.store.ticket(id).createdAt }
        return (result, created)
    }

    /// Records a survey answer.
    func answerSurvey(_ body: JSONValue) throws -> SurveyAnswered {
        let r = try ObjectReader(body, path: "", known: ["token", "score", "comment"])
        let token = try r.string("token", required: true, max: 200)!
        let score = try r.integer("score", required: true, 1...5)!
        let comment = try r.string("comment", max: 1000, empty: .absent)
        do {
            let record = try store.answerSurvey(token: token, score: Int(score), comment: comment)
            return SurveyAnswered(ticket: record.displayNumber, score: score, comment: comment)
        } catch let error as StoreError where error.code == .unknownToken {
            throw IntakeError(.notFound, field: "token", "no survey has this token (an unknown token, or one replaced when the ticket was solved again)")
        } catch let error as StoreError where error.code == .alreadyAnswered {
            throw IntakeError(.conflict, field: "token", "this survey has its answer already; a survey takes one answer")
        }
    }

    // MARK: Opening a ticket

    struct TicketRequest {
        var id: UUID
        var messageID: UUID
        var channel: String
        var subject: String
        var firstMessage: String?
        var routingText: String? = nil
        var customer: CustomerDraft
        var thread: String?
        var attachments: [Attachment]
        var category: String?
        var language: String?
        var priority: Priority?
        var tags: [String]
        var events: [TicketEvent]
        var fields: [(Field, FieldValue)]
        var integration: String? = nil
    }

    struct Attachment {
        var name: String
        var contentType: String
        var size: Int64
        var url: String?
        var sha256: String?
    }

    private func open(_ request: TicketRequest) async throws -> (IntakeResult, created: Bool) {
        let (intake, library) = try await blocking { (try self.intakeTicket(request), try self.desk.escalation.library()) }
        // What a site does when it opens a ticket: pin the SLA policy and start proactive ladders, in
        // the ticket's own write, which commits with the requests that arrive with it.
        let (record, duplicate) = try await desk.open(fromIntake: intake, library: library, now: now(), through: commits)
        return try await blocking {
            (IntakeResult(ticket: try self.summary(record), duplicate: duplicate, messageId: request.messageID.text,
                          routing: try self.routingSummary(record.id)), !duplicate)
        }
    }

    /// The ticket `request` opens: its customer looked up, routed by the node's rules.
    private func intakeTicket(_ request: TicketRequest) throws -> IntakeTicket {
        let known = try store.customer(request.customer.key ?? "") ?? request.customer.email.flatMap { try? store.customer($0) }
        let customerKey = known?.key ?? request.customer.key
        let tier = known?.tier
        var draft = TicketDraft(subject: request.subject, priority: request.priority ?? .normal, customer: customerKey, channel: request.channel,
                                tags: request.tags, firstMessage: request.firstMessage, actor: TicketDatabase.actorName(customerKey ?? "customer"),
                                category: request.category, customerTier: tier)
        var fields = request.fields
        if let thread = request.thread { fields.append((.custom(TicketLookup.thread), .text(thread))) }
        if let integration = request.integration { fields.append((.custom(TicketLookup.integration), .text("\(site.rawValue)/\(integration)"))) }
        // The address the mail came from, as the gateway reports it: the customer's copy of a public
        // reply goes there, not to whatever e-mail a customer record (which any integration may
        // write) holds.
        if request.channel == "email", let address = request.customer.email { fields.append((.custom(TicketLookup.replyAddress), .text(address))) }
        if let language = request.language { fields.append((.custom("language"), .text(language))) }
        if let routing {
            let decision = routing.route(RoutingFacts(channel: request.channel, category: request.category, subject: request.subject,
                                                      message: request.routingText ?? request.firstMessage ?? "", customerTier: tier,
                                                      language: request.language, site: site.rawValue))
            if let group = decision.group { draft.group = group }
            if let priority = decision.priority { draft.priority = priority }
            draft.tags = Array(Set(draft.tags + decision.tags)).sorted()
            fields.append((.custom("routing"), .text(decision.explanation)))
            fields.append((.custom("routing_rule"), .text(decision.rule)))
            if let policy = decision.slaPolicy { fields.append((.custom(RoutedEscalation.policyField), .text(policy))) }
            if let ladder = decision.escalate { fields.append((.custom(RoutedEscalation.ladderField), .text(ladder))) }
        }
        let events = try attachmentEvents(request.attachments, ticket: request.id, message: request.messageID) + request.events
        return IntakeTicket(id: request.id, draft: draft, messageID: request.messageID, fields: fields, events: events,
                            customers: try newCustomer(request.customer).map { [$0] } ?? [])
    }

    /// `body` on the thread pool: the store's reads block their thread.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// The customer record to create for a sender the store does not know (`nil` when it knows them:
    /// the CRM import owns known customers' fields).
    private func newCustomer(_ draft: CustomerDraft?) throws -> CustomerDraft? {
        guard let draft, let key = draft.key else { return nil }
        if try store.customer(key) != nil { return nil }
        if let email = draft.email, try store.customer(email) != nil { return nil }
        return draft
    }

    /// How the ticket was routed, from what it holds (so a redelivery answers as the first delivery did).
    private func routingSummary(_ id: String) throws -> RoutingSummary? {
        guard routing != nil else { return nil }
        let fields = try store.ticketState(id).customFields
        guard let rule = fields["routing_rule"], let explanation = fields["routing"] else { return nil }
        return RoutingSummary(rule: rule, fallback: explanation.hasPrefix("fallback"), explanation: explanation)
    }

    private func summary(_ record: TicketRecord) throws -> TicketSummary {
        TicketSummary(record, tier: try record.customer.flatMap { try store.customer($0)?.tier })
    }

    /// What a message's references find.
    enum Match {
        case ticket(UUID)
        /// No ticket: none was named, or the thread id or the `[NUMBER]` found none. `refusal` says
        /// which, for an integration that refuses such messages.
        case none(refusal: IntakeError)
    }

    /// The ticket a reply answers: by `ticket`, else by thread id, else by a `[NORTH-12]` in the
    /// subject. A `ticket` that names nothing is refused here: the caller said which ticket it meant.
    /// A thread id that finds nothing leaves the subject to decide: a reply to a notification whose
    /// thread this node never recorded (sent by another node, or before the ticket had a thread)
    /// still names its ticket in the subject, and opening a new one would split the conversation.
    private func matchTicket(ticket: String?, thread: String?, channel: String, subject: String?) throws -> Match {
        if let ticket {
            do { return .ticket(try store.resolve(ticket)) } catch {
                throw IntakeError(.notFound, field: "ticket", "no ticket \(ticket.debugDescription) at this node; give a display number (NORTH-12) or a ticket id")
            }
        }
        if let thread, let id = try store.ticket(lookup: TicketLookup.thread, value: thread, channel: channel) {
            return .ticket(id)
        }
        if let subject, let number = Self.displayNumber(in: subject) {
            if let id = try? store.resolve(number) { return .ticket(id) }
            if thread == nil {
                return .none(refusal: IntakeError(.notFound, field: "subject", "the subject names \(number), which is no ticket at this node"))
            }
        }
        if let thread {
            return .none(refusal: IntakeError(.notFound, field: "externalThreadId", "no \(channel) ticket has the thread id \(thread.debugDescription)"))
        }
        return .none(refusal: IntakeError.bad("ticket", "say which ticket the message answers: give ticket, externalThreadId, or a subject holding [SITE-NUMBER]"))
    }

    /// The first `[SITE-NUMBER]` in `subject` (as replies keep it from the notification's subject).
    static func displayNumber(in subject: String) -> String? {
        guard let range = subject.range(of: #"\[[A-Z][A-Z0-9-]{0,31}-[0-9]+\]"#, options: .regularExpression) else { return nil }
        return String(subject[range].dropFirst().dropLast())
    }

    /// Name-based ids when the channel gives a message id (a redelivery makes the same ids), else new ones.
    static func ids(channel: String, externalMessageID: String?) -> (ticket: UUID, message: UUID) {
        guard let external = externalMessageID else {
            let ms = TicketDatabase.systemMillis()
            return (UUIDv7.make(millis: ms, random: TicketDatabase.randomBytes(10)), UUIDv7.make(millis: ms, random: TicketDatabase.randomBytes(10)))
        }
        return (NameBasedID.make(["ticket", channel, external]), NameBasedID.make(["message", channel, external]))
    }

    static func customer(_ r: ObjectReader, _ key: String, required: Bool) throws(IntakeError) -> CustomerDraft? {
        guard let c = try r.object(key, required: required, known: customerKeys) else { return nil }
        let draft = CustomerDraft(crmID: try c.string("id", max: 200), name: try c.string("name", max: 200, empty: .absent),
                                  email: try c.string("email", max: 200, empty: .absent), phone: try c.string("phone", max: 64, empty: .absent),
                                  organization: try c.string("organization", max: 200, empty: .absent))
        guard draft.key != nil else { throw IntakeError.bad(c.path, "give at least one of id, email or phone, so the customer can be found again") }
        // An id that is an address would name that mailbox: a record keyed by one address with another
        // as its e-mail would let a caller steer replies meant for the first to the second. Addresses
        // go in `email`, where they are checked as addresses; an id holds no `@`.
        if let id = draft.crmID, id.contains("@") {
            throw IntakeError.bad(c.at("id"), "holds an @: give the CRM's own id here and the address as email")
        }
        return draft
    }

    static func attachments(_ r: ObjectReader) throws(IntakeError) -> [Attachment] {
        var out: [Attachment] = []
        for (value, path) in try r.array("attachments", max: 50) ?? [] {
            let a = try ObjectReader(value, path: path, known: attachmentKeys)
            let sha = try a.string("sha256", max: 64)
            if let sha, sha.range(of: "^[0-9a-f]{64}$", options: .regularExpression) == nil {
                throw IntakeError.bad(a.at("sha256"), "must be 64 lowercase hex digits (the file's SHA-256)")
            }
            out.append(Attachment(name: try a.string("name", required: true, max: 255)!, contentType: try a.string("contentType", required: true, max: 255)!,
                                  size: try a.integer("size", required: true, 0...1_000_000_000_000)!, url: try a.string("url", max: 2000, empty: .absent), sha256: sha))
        }
        return out
    }

    /// One `attachment` event per file, with canonical JSON metadata naming the message it came with.
    private func attachmentEvents(_ attachments: [Attachment], ticket: UUID, message: UUID) throws -> [TicketEvent] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try attachments.enumerated().map { index, a in
            struct Meta: Encodable { var message: String; var name: String; var contentType: String; var size: Int64; var url: String?; var sha256: String? }
            let body = String(decoding: try encoder.encode(Meta(message: message.text, name: a.name, contentType: a.contentType, size: a.size,
                                                                url: a.url, sha256: a.sha256)), as: UTF8.self)
            return TicketEvent(id: NameBasedID.make(["attachment", message.text, String(index)]), kind: .attachment, actor: "intake",
                               visibility: .public, body: body)
        }
    }
}
