import Escalation
import Foundation
import StrictJSON
import TicketModel
import TicketStore

/// The help desk's use cases, one function each, over one store: what the CLI, the intake API, the
/// node's ticker and the demo call (and the agent workspace and notifications will).
///
/// Every function reads time from its `now` argument where a decision depends on it, returns a typed
/// result, and throws only ``DeskError``. Reads that are plain lookups (`ticket show`, `list`) stay on
/// the store.
public struct HelpDesk: Sendable {
    public let store: TicketDatabase
    public let escalation: EscalationDesk
    public var identity: LocalIdentity { escalation.identity }

    public init(store: TicketDatabase) throws {
        escalation = try DeskError.translating { try EscalationDesk(store: store) }
        // Every write through the Desk puts its notices in the outbox in the same transaction.
        self.store = escalation.store
    }

    // MARK: Opening

    /// Opens a ticket from `draft` and pins its SLA policy (and starts its proactive ladders) in the
    /// same transaction: no crash leaves it opened without them. A ticket opened before any policy is
    /// published is pinned by the site's ticker once one arrives.
    /// - Returns: the ticket as stored, its policy records included.
    /// - Parameter allowUnknown: admits a channel intake does not know, or a customer tier nothing
    ///   names (a new one, on purpose); otherwise each is refused with the nearest (see
    ///   ``knownTiers(_:)``).
    ///   Once agents are published, an assignee or group that names nobody in the directory is
    ///   refused the same way, and a deactivated assignee always.
    @discardableResult
    public func open(_ draft: TicketDraft, now: Int64, allowUnknown: Bool = false) throws -> TicketRecord {
        try DeskError.translating {
            let library = try escalation.library()
            try checkOpening(draft, library: library, directory: DirectoryCheck(AgentDirectory(library: library)), allowUnknown: allowUnknown)
            return try store.createTicket(draft, follow: library.isEmpty ? nil : escalation.policy(library, now: now))
        }
    }

    /// What ``open(_:now:allowUnknown:)`` checks before it writes (a bulk import checks every row so).
    func checkOpening(_ draft: TicketDraft, library: ConfigLibrary, directory: DirectoryCheck, allowUnknown: Bool) throws {
        if !allowUnknown { try check(draft, library: library) }
        if let assignee = draft.assignee { try directory.agent(assignee, field: "assignee", allowUnknown: allowUnknown) }
        if let group = draft.group { try directory.group(group, at: identity.site, field: "group", allowUnknown: allowUnknown) }
    }

    /// A misspelt channel or customer tier is stored as it is and silently misses the SLA policies
    /// and routing that match on it: refuse a channel intake does not know, and a tier nothing names,
    /// with the nearest.
    func check(_ draft: TicketDraft, library: ConfigLibrary) throws {
        // Every ticket that names a tier passes here (the intake API's too): the configuration's
        // tiers answer first, then a probe that stops at the first customer holding it; the whole set of
        // known tiers is read only to word a refusal.
        if let tier = draft.customerTier, !library.customerTiers.contains(tier), try !store.holdsCustomerTier(tier) {
            let known = try knownTiers(library)
            if !known.tiers.isEmpty {
                throw DeskError(.invalidInput, field: "customerTier", Self.unknownTier(tier, known))
            }
        }
        if let channel = draft.channel, !IntakeChannel.all.contains(channel) {
            // Two edits: a swapped pair of letters ("emial") is one slip of the fingers.
            let near = StrictJSON.nearest(channel, in: Set(IntakeChannel.all), within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
            throw DeskError(.invalidInput, field: "channel",
                            "\(StrictJSON.printable(channel).debugDescription) is not a channel (\(IntakeChannel.all.joined(separator: ", ")))." + near
                                + " A new one is taken only when its operator allows it on purpose (`--allow-unknown` on `tierline ticket create`).")
        }
    }

    /// The customer tiers a ticket or a customer record may name: those the published policies and
    /// proactive rules match on, and those customer records hold (so a tier admitted once, by a CRM
    /// import with `allowUnknown`, is known from then on). An empty set (a new store, no tier
    /// anywhere) checks nothing.
    public func knownTiers(_ library: ConfigLibrary) throws -> (tiers: Set<String>, source: String) {
        let named = library.customerTiers, held = try store.customerTiers()
        let source = named.isEmpty ? "customer records hold" : held.isEmpty ? "the published configuration names"
            : "the published configuration or customer records name"
        return (named.union(held), source)
    }

    static func unknownTier(_ tier: String, _ known: (tiers: Set<String>, source: String)) -> String {
        let near = StrictJSON.nearest(tier, in: known.tiers, within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
        return "\(StrictJSON.printable(tier).debugDescription) is not a customer tier \(known.source) (\(known.tiers.sorted().joined(separator: ", ")))."
            + near + " A new one is taken only when its operator allows it on purpose (`--allow-unknown` on `tierline ticket create` or `customer import`), or once the published configuration names it."
    }

    /// Opens a ticket that arrived through a channel, with its policy, in one transaction (see
    /// ``open(_:now:)``); a redelivery is left as it is.
    public func open(fromIntake intake: IntakeTicket, now: Int64) throws -> (ticket: TicketRecord, duplicate: Bool) {
        try DeskError.translating {
            let library = try escalation.library()
            return try store.intakeCreate(intake, follow: library.isEmpty ? nil : escalation.policy(library, now: now))
        }
    }

    /// ``open(fromIntake:now:)`` through `commits`: the ticket and its policy commit in one
    /// transaction with the intake requests that arrive with it (see ``GroupCommit``). Waits on no
    /// thread: `library` (``EscalationDesk/library()``, a blocking read) is the caller's to read.
    public func open(fromIntake intake: IntakeTicket, library: ConfigLibrary, now: Int64,
                     through commits: GroupCommit) async throws -> (ticket: TicketRecord, duplicate: Bool) {
        let escalation = self.escalation
        do {
            return try await store.intakeCreate(intake, follow: library.isEmpty ? nil : { @Sendable in escalation.policy(library, now: now) }, through: commits)
        } catch let error as StoreError {
            throw DeskError(error)
        }
    }

    // MARK: Conversation

    /// A public reply to the customer.
    @discardableResult
    public func reply(_ ref: String, body: String, actor: String) throws -> TicketRecord {
        try DeskError.translating { try store.comment(ref, body: body, kind: .agentReply, visibility: .public, actor: actor) }
    }

    /// An internal note, never shown to the customer.
    @discardableResult
    public func note(_ ref: String, body: String, actor: String) throws -> TicketRecord {
        try DeskError.translating { try store.comment(ref, body: body, kind: .internalNote, visibility: .internal, actor: actor) }
    }

    /// A message from the customer, taken down by an agent (it reopens a solved ticket). The
    /// history shows it by the ticket's customer (or `customer`); `actor`, the agent who typed it, is
    /// kept in the block's attribution.
    @discardableResult
    public func customerMessage(_ ref: String, body: String, actor: String) throws -> TicketRecord {
        try DeskError.translating {
            let customer = try store.ticket(ref).customer
            return try store.comment(ref, body: body, kind: .customerMessage, visibility: .public,
                                     actor: TicketDatabase.actorName(customer ?? "customer"),
                                     recordedBy: actor == customer ? nil : actor)
        }
    }

    // MARK: Fields and tags

    /// Writes the fields `update` names, attributed to `actor` on every replica. When the write
    /// solves the ticket, a survey token is issued with it (only its hash replicates) and returned in
    /// the clear, once.
    /// - Parameter allowUnknown: takes an assignee or group from outside the agent directory (a
    ///   deactivated assignee is refused all the same). With no agent published, names are free.
    public func update(_ ref: String, _ update: FieldUpdate, actor: String,
                       allowUnknown: Bool = false) throws -> (ticket: TicketRecord, surveyToken: String?) {
        let fields = try update.changes()
        return try DeskError.translating {
            let directory = DirectoryCheck(AgentDirectory(library: try escalation.library()))
            if directory.directory.isPublished {
                if let assignee = update.assignee { try directory.agent(assignee, field: "assignee", allowUnknown: allowUnknown) }
                if let group = update.group, !group.isEmpty {
                    try directory.group(group, at: try? SiteID(try store.ticket(ref).owningSite), field: "group", allowUnknown: allowUnknown)
                }
            }
            return try store.updateIssuingSurvey(ref, fields, actor: actor)
        }
    }

    /// Adds and removes tags, attributed to `actor`; a remove takes away only the additions this
    /// replica has seen.
    @discardableResult
    public func tag(_ ref: String, add: [String], remove: [String], actor: String) throws -> TicketRecord {
        guard !add.isEmpty || !remove.isEmpty else { throw DeskError(.invalidInput, "name at least one tag to add or to remove") }
        return try DeskError.translating { try store.tag(ref, add: add, remove: remove, actor: actor) }
    }

    /// Opens a solved or closed ticket again, attributed to `actor`: the one way out of `closed`.
    @discardableResult
    public func reopen(_ ref: String, actor: String) throws -> TicketRecord {
        try DeskError.translating { try store.reopen(ref, actor: actor) }
    }

    // MARK: Knowledge and customers

    /// Writes a solved ticket's resolution as a knowledge article.
    public func writeArticle(from ticketRef: String, _ draft: ArticleDraft) throws -> ArticleRecord {
        try DeskError.translating { try store.recordResolution(ticketRef, draft) }
    }

    /// Records that an article was used on a ticket.
    public func link(_ ticketRef: String, article articleRef: String, actor: String) throws -> (ticket: TicketRecord, article: ArticleRecord) {
        try DeskError.translating { try store.linkArticle(ticketRef, articleRef, actor: actor) }
    }

    /// Imports or updates customers from a CRM's CSV export; unchanged fields are not written again.
    /// A value that is not a number is always refused, and a tier that ``knownTiers(_:)`` does not
    /// hold unless `allowUnknown`, each with its line and column; nothing is written then.
    /// - Parameter progress: rows done so far, after each chunk.
    public func importCustomers(csv data: Data, file: String, allowUnknown: Bool = false,
                                progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> CustomerImportReport {
        try DeskError.translating {
            let sheet = try CustomerCSV.sheet(data, file: file)
            if !allowUnknown {
                let known = try knownTiers(try escalation.library())
                // Stored tiers are lowercased, so a file's "Gold" is the tier "gold".
                if !known.tiers.isEmpty, let row = sheet.rows.first(where: { $0.draft.tier.map { !known.tiers.contains($0.lowercased()) } ?? false }) {
                    throw DeskError(.invalidInput, "\(file) line \(row.line), column \(sheet.tierColumn ?? 0) (tier): "
                                    + Self.unknownTier(row.draft.tier!.lowercased(), known) + " Nothing was imported.")
                }
            }
            let drafts = sheet.rows.map(\.draft)
            return try store.importCustomers(drafts) { progress($0, drafts.count) }
        }
    }
}

/// The fields one update writes; `nil` leaves a field as it is, an empty text clears it.
public struct FieldUpdate: Sendable, Equatable {
    public var subject: String?
    public var status: Status?
    public var priority: Priority?
    public var assignee: String?
    public var group: String?
    public var category: String?
    /// Custom fields by name; an empty value clears one.
    public var custom: [(name: String, value: String)]

    public init(subject: String? = nil, status: Status? = nil, priority: Priority? = nil, assignee: String? = nil,
                group: String? = nil, category: String? = nil, custom: [(name: String, value: String)] = []) {
        self.subject = subject
        self.status = status
        self.priority = priority
        self.assignee = assignee
        self.group = group
        self.category = category
        self.custom = custom
    }

    public static func == (a: Self, b: Self) -> Bool {
        (a.subject, a.status, a.priority, a.assignee, a.group, a.category) == (b.subject, b.status, b.priority, b.assignee, b.group, b.category)
            && a.custom.elementsEqual(b.custom) { $0 == $1 }
    }

    /// The first thing wrong with the values given, if any: an edge may check before it opens a store.
    public func validate() throws(DeskError) {
        if status == .merged { throw DeskError(.invalidInput, field: "status", "merged is set by merging tickets, not by an update") }
        if subject?.trimmingCharacters(in: .whitespaces).isEmpty == true { throw DeskError(.invalidInput, field: "subject", "must not be empty") }
        if let bad = custom.first(where: { $0.name.isEmpty }) {
            throw DeskError(.invalidInput, field: "field", "needs a name before its value; got \("=\(bad.value)".debugDescription)")
        }
        if let reserved = custom.first(where: { TicketLookup.reserved.contains($0.name.precomposedStringWithCanonicalMapping) }) {
            throw DeskError(.invalidInput, field: "field", "\(reserved.name) is written by intake when it opens a ticket (it says where replies go); an update may not set it")
        }
    }

    /// The changes to write, or the first thing wrong with the update.
    func changes() throws(DeskError) -> [(Field, FieldValue)] {
        try validate()
        func text(_ value: String?) -> FieldValue? { value.map { $0.isEmpty ? .null : .text($0) } }
        let fields: [(Field, FieldValue?)] = [
            (.subject, subject.map { .text($0) }), (.status, status.map { .text($0.rawValue) }),
            (.priority, priority.map { .text($0.rawValue) }), (.assignee, text(assignee)), (.group, text(group)),
            (.category, text(category)),
        ] + custom.map { (Field.custom($0.name.precomposedStringWithCanonicalMapping), text($0.value)) }
        let changes = fields.compactMap { field, value in value.map { (field, $0) } }
        guard !changes.isEmpty else {
            throw DeskError(.invalidInput, "nothing to update: name at least one of subject, status, priority, assignee, group, category or a custom field")
        }
        return changes
    }
}
