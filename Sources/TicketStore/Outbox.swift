import Foundation
import GRDB
import TicketModel

/// One message for a person or a system, as the application layer derives it from a write: written
/// to the outbox in the same transaction as the write, sent later by the node's dispatcher.
public struct OutboxDraft: Sendable, Hashable {
    /// The idempotency key: derived from the record that caused the notice (and the recipient), so
    /// that two sites deriving the same notice (the owner and the coordinator's backstop, across a
    /// partition) give the receiver the same key to drop the second by.
    public var key: String
    /// `email`, `webhook:NAME` (a webhook of the node's settings) or `integration:NAME` (an intake
    /// integration's reply webhook).
    public var channel: String
    /// An e-mail address for `email`; the webhook's or integration's name otherwise.
    public var recipient: String
    /// What happened: `sla_breach`, `level_fired`, `handoff_requested`, `customer_reply`…
    public var kind: String
    public var ticket: UUID?
    /// The e-mail's subject (webhooks carry it in their JSON too).
    public var subject: String
    /// The e-mail's text, or the webhook's JSON body.
    public var body: String
    /// Not sent before this time (ms since 1970): a notice outside its recipient's working hours
    /// waits for the next opening.
    public var notBefore: UInt64

    public init(key: String, channel: String, recipient: String, kind: String, ticket: UUID?, subject: String, body: String, notBefore: UInt64) {
        self.key = key
        self.channel = channel
        self.recipient = recipient
        self.kind = kind
        self.ticket = ticket
        self.subject = subject
        self.body = body
        self.notBefore = notBefore
    }
}

/// Where a delivery stands.
public enum DeliveryState: String, Sendable, Codable, CaseIterable {
    /// Waiting for its time or its next attempt.
    case pending
    case sent
    /// Out of attempts: waits for `tierline outbox retry`.
    case dead
}

/// One row of the outbox.
public struct OutboxEntry: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "outbox"
    public var id: Int64?
    public var key: String
    public var channel: String
    public var recipient: String
    public var kind: String
    public var ticket: String?
    public var subject: String
    public var body: String
    public var notBefore: Int64
    public var state: DeliveryState
    public var attempts: Int
    /// When the next attempt is due (ms): `notBefore`, then later after each failure.
    public var nextAttempt: Int64
    public var lastError: String?
    public var createdAt: Int64
    public var sentAt: Int64?

    public enum Columns {
        static let id = Column(CodingKeys.id), state = Column(CodingKeys.state), nextAttempt = Column(CodingKeys.nextAttempt)
        static let key = Column(CodingKeys.key)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Counts of the outbox by state: what `status`, `/metrics` and the dashboard show.
public struct OutboxSummary: Sendable, Codable, Equatable {
    public var pending = 0
    public var sent = 0
    public var dead = 0
    /// The oldest pending delivery's due time (ms), if any.
    public var oldestPending: Int64?
    public init() {}
}

/// What a write gives the application layer to derive notices from, inside the write's transaction.
public struct WriteContext {
    let db: Database
    /// The blocks the write made, in order.
    public let blocks: [Block]
    /// This store's site.
    public let site: SiteID
    /// The store's clock at the write (ms since 1970).
    public let now: UInt64
    /// Whether the blocks arrived from a peer (a sync or an import) rather than being written here.
    public var remote = false

    /// A ticket as it stands inside the write.
    public func state(of ticket: UUID) throws -> TicketState { try TicketDatabase.ticketState(db, id: ticket) }

    /// The bodies of every published configuration version, as inside the write.
    public func configBodies() throws -> [String] { try TicketDatabase.configBodies(db) }

    /// The coordinator's site, as the adopted roster names it.
    public func coordinator() throws -> SiteID? {
        guard let roster = try TicketDatabase.roster(db)?.roster else { return nil }
        return try? SiteID(roster.coordinator)
    }

    /// The names of the node's webhooks that receive every notice.
    public func noticeWebhooks() throws -> [String] { try String.fetchAll(db, sql: "SELECT name FROM noticeWebhook ORDER BY name") }

    /// A customer record by key, email or phone, as inside the write.
    public func customer(_ ref: String) throws -> CustomerRecord? { try TicketDatabase.customer(db, ref) }

    /// An intake integration's reply webhook, if one is registered on this node.
    public func replyWebhook(integration name: String) throws -> ReplyWebhook? { try TicketDatabase.replyWebhook(db, name: name) }
}

/// Derives the notices of a local write; installed by the application layer.
public typealias NoticePlanner = @Sendable (WriteContext) throws -> [OutboxDraft]

/// An intake integration's reply webhook: where public replies on its tickets go, signed with its
/// own secret (node-local, never replicated).
public struct ReplyWebhook: Sendable, Equatable {
    public var integration: String
    public var url: String
    public var secret: String
    /// The channels the integration's token may deliver (empty: every channel): only tickets of
    /// those channels are answered through it.
    public var channels: [String]

    public func allows(channel: String) -> Bool { channels.isEmpty || channels.contains(channel) }
}

extension TicketDatabase {
    /// Writes `drafts` to the outbox inside `db`'s transaction; a draft whose key, channel and
    /// recipient are there already is left out (the same notice derived twice is sent once).
    static func enqueue(_ db: Database, _ drafts: [OutboxDraft], now: UInt64) throws {
        for draft in drafts {
            let entry = OutboxEntry(id: nil, key: draft.key, channel: draft.channel, recipient: draft.recipient, kind: draft.kind,
                                    ticket: draft.ticket?.lowercaseText, subject: draft.subject, body: draft.body,
                                    notBefore: Int64(draft.notBefore), state: .pending, attempts: 0, nextAttempt: Int64(draft.notBefore),
                                    lastError: nil, createdAt: Int64(now), sentAt: nil)
            try entry.insert(db, onConflict: .ignore)
        }
    }

    /// Writes `drafts` to the outbox in a transaction of their own: notices that no ticket write
    /// causes, such as `tierline notify test`'s. A draft already there (same key, channel and
    /// recipient) is left out.
    public func enqueue(_ drafts: [OutboxDraft]) throws {
        try writer.write { db in try Self.enqueue(db, drafts, now: wallClock()) }
    }

    /// Deliveries that are due at `now`, oldest first.
    ///
    /// With `perDestination`, at most that many of each destination (channel and recipient), its
    /// oldest: a destination with a long backlog does not fill the page, so the dispatcher sees the
    /// others' deliveries too.
    public func dueDeliveries(now: UInt64, limit: Int = 64, perDestination: Int? = nil) throws -> [OutboxEntry] {
        try writer.read { db in try Self.dueDeliveries(db, now: now, limit: limit, perDestination: perDestination) }
    }

    /// The same from async code (the dispatcher), without blocking a cooperative thread.
    public func dueDeliveries(now: UInt64, limit: Int = 64, perDestination: Int? = nil) async throws -> [OutboxEntry] {
        try await writer.read { db in try Self.dueDeliveries(db, now: now, limit: limit, perDestination: perDestination) }
    }

    static func dueDeliveries(_ db: Database, now: UInt64, limit: Int, perDestination: Int? = nil) throws -> [OutboxEntry] {
        guard let perDestination else {
            return try OutboxEntry.filter(OutboxEntry.Columns.state == DeliveryState.pending.rawValue && OutboxEntry.Columns.nextAttempt <= Int64(now))
                .order(OutboxEntry.Columns.nextAttempt, OutboxEntry.Columns.id).limit(limit).fetchAll(db)
        }
        return try OutboxEntry.fetchAll(db, sql: """
            SELECT * FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY channel, recipient ORDER BY nextAttempt, id) AS destinationRank
                FROM outbox WHERE state = 'pending' AND nextAttempt <= ?)
            WHERE destinationRank <= ? ORDER BY nextAttempt, id LIMIT ?
            """, arguments: [Int64(now), perDestination, limit])
    }

    /// When the next pending delivery is due (ms), if any: how long the dispatcher may sleep.
    public func nextDeliveryDue() throws -> Int64? {
        try writer.read(Self.nextDeliveryDue)
    }

    /// The same from async code.
    public func nextDeliveryDue() async throws -> Int64? {
        try await writer.read(Self.nextDeliveryDue)
    }

    static func nextDeliveryDue(_ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT MIN(nextAttempt) FROM outbox WHERE state = 'pending'")
    }

    /// Outbox rows, newest first, optionally in one state.
    public func outbox(state: DeliveryState? = nil, limit: Int = 1000) throws -> [OutboxEntry] {
        try writer.read { db in try Self.outboxRequest(state: state, limit: limit).fetchAll(db) }
    }

    /// The statement behind ``outbox(state:limit:)``: the table in id order, or `outbox_on_state`'s.
    static func outboxRequest(state: DeliveryState?, limit: Int) -> QueryInterfaceRequest<OutboxEntry> {
        var request = OutboxEntry.order(OutboxEntry.Columns.id.desc).limit(limit)
        if let state { request = request.filter(OutboxEntry.Columns.state == state.rawValue) }
        return request
    }

    public func outboxSummary() throws -> OutboxSummary {
        try writer.read(Self.outboxSummary)
    }

    /// The same from async code (the dashboard, `/metrics`), without blocking a cooperative thread.
    public func outboxSummary() async throws -> OutboxSummary {
        try await writer.read(Self.outboxSummary)
    }

    static func outboxSummary(_ db: Database) throws -> OutboxSummary {
        var summary = OutboxSummary()
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n, MIN(nextAttempt) AS oldest FROM outbox GROUP BY state") {
            let n: Int = row["n"]
            switch DeliveryState(rawValue: row["state"]) {
            case .pending?: summary.pending = n; summary.oldestPending = row["oldest"]
            case .sent?: summary.sent = n
            case .dead?: summary.dead = n
            case nil: break
            }
        }
        return summary
    }

    /// Marks delivery `id` sent.
    public func markSent(_ id: Int64) throws {
        let now = wallClock()
        try writer.write { db in try Self.markSent(db, id, now: now) }
    }

    /// The same from async code (the dispatcher), without blocking a cooperative thread.
    public func markSent(_ id: Int64) async throws {
        let now = wallClock()
        try await writer.write { db in try Self.markSent(db, id, now: now) }
    }

    static func markSent(_ db: Database, _ id: Int64, now: UInt64) throws {
        try db.execute(sql: "UPDATE outbox SET state = 'sent', sentAt = ?, attempts = attempts + 1, lastError = NULL WHERE id = ?",
                       arguments: [Int64(now), id])
    }

    /// Records a failed attempt: the delivery is tried again at `retryAt`, or, with `retryAt` nil,
    /// it is dead (kept for `tierline outbox retry`).
    public func markFailed(_ id: Int64, error: String, retryAt: UInt64?) throws {
        try writer.write { db in try Self.markFailed(db, id, error: error, retryAt: retryAt) }
    }

    /// The same from async code.
    public func markFailed(_ id: Int64, error: String, retryAt: UInt64?) async throws {
        try await writer.write { db in try Self.markFailed(db, id, error: error, retryAt: retryAt) }
    }

    static func markFailed(_ db: Database, _ id: Int64, error: String, retryAt: UInt64?) throws {
        try db.execute(sql: """
            UPDATE outbox SET attempts = attempts + 1, lastError = ?, state = ?, nextAttempt = COALESCE(?, nextAttempt) WHERE id = ?
            """, arguments: [String(error.prefix(500)), (retryAt == nil ? DeliveryState.dead : .pending).rawValue, retryAt.map(Int64.init), id])
    }

    /// Deletes at most `limit` sent deliveries sent before `before` (ms since 1970), oldest first, in
    /// one short transaction; with `includingDead`, dead deliveries created before it too. Pending
    /// deliveries are never deleted.
    /// - Returns: how many rows were deleted (fewer than `limit`: none of the kind is left).
    @discardableResult
    public func pruneDeliveries(before: UInt64, includingDead: Bool = false, limit: Int = 500) throws -> Int {
        try writer.write { db in try Self.pruneDeliveries(db, before: before, includingDead: includingDead, limit: limit) }
    }

    /// The same from async code (the dispatcher).
    @discardableResult
    public func pruneDeliveries(before: UInt64, includingDead: Bool = false, limit: Int = 500) async throws -> Int {
        try await writer.write { db in try Self.pruneDeliveries(db, before: before, includingDead: includingDead, limit: limit) }
    }

    static func pruneDeliveries(_ db: Database, before: UInt64, includingDead: Bool, limit: Int) throws -> Int {
        try db.execute(sql: """
            DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                WHERE (state = 'sent' AND sentAt < ?1) OR (?2 AND state = 'dead' AND createdAt < ?1) ORDER BY id LIMIT ?3)
            """, arguments: [Int64(clamping: before), includingDead, limit])
        return db.changesCount
    }

    /// Sends dead deliveries again from now (all of them, or those with the given ids).
    /// - Returns: how many were put back.
    @discardableResult
    public func retryDeliveries(ids: [Int64]? = nil) throws -> Int {
        try writer.write { db in
            let now = Int64(wallClock())
            if let ids {
                for id in ids {
                    guard let entry = try OutboxEntry.fetchOne(db, key: id) else {
                        throw StoreError(.invalidInput, "no delivery \(id) in the outbox; `tierline outbox list` shows them")
                    }
                    guard entry.state == .dead else {
                        throw StoreError(.invalidInput, "delivery \(id) is \(entry.state.rawValue), not dead; only dead deliveries are retried")
                    }
                }
                try db.execute(sql: "UPDATE outbox SET state = 'pending', attempts = 0, nextAttempt = ? WHERE state = 'dead' AND id IN (\(ids.map { _ in "?" }.joined(separator: ",")))",
                               arguments: StatementArguments([now] + ids)!)
            } else {
                try db.execute(sql: "UPDATE outbox SET state = 'pending', attempts = 0, nextAttempt = ? WHERE state = 'dead'", arguments: [now])
            }
            return db.changesCount
        }
    }

    /// Sets the webhooks that receive every notice written to this store (the node's settings name
    /// them; `serve` sets them at start).
    public func setNoticeWebhooks(_ names: [String]) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM noticeWebhook")
            for name in Set(names) { try db.execute(sql: "INSERT INTO noticeWebhook (name) VALUES (?)", arguments: [name]) }
        }
    }

    public func noticeWebhooks() throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: "SELECT name FROM noticeWebhook ORDER BY name") }
    }

    // MARK: Reply webhooks (local to this node)

    /// Registers (or replaces) the webhook that receives public replies on integration `name`'s
    /// tickets. Returns the signing secret in the clear (Standard Webhooks `whsec_…`): shown once,
    /// kept only by this node.
    public func setReplyWebhook(integration name: String, url: String) throws -> String {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http", parsed.host != nil else {
            throw StoreError(.invalidInput, "reply URL \(url.debugDescription) is not an http(s) URL; give one like https://chat.example/tierline/replies")
        }
        let secret = "whsec_" + Data(Self.randomBytes(32)).base64EncodedString()
        try writer.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM apiToken WHERE name = ? AND revokedAt IS NULL", arguments: [name]) ?? false else {
                throw StoreError(.unknownToken, "no live token named \(name); `tierline intake token add \(name)` makes one, `intake token list` shows them")
            }
            try db.execute(sql: "UPDATE apiToken SET replyURL = ?, replySecret = ? WHERE name = ?", arguments: [url, secret, name])
        }
        return secret
    }

    static func replyWebhook(_ db: Database, name: String) throws -> ReplyWebhook? {
        guard let row = try Row.fetchOne(db, sql: "SELECT replyURL, replySecret, channels FROM apiToken WHERE name = ? AND revokedAt IS NULL AND replyURL IS NOT NULL",
                                         arguments: [name]) else { return nil }
        let channels: String = row["channels"]
        return ReplyWebhook(integration: name, url: row["replyURL"], secret: row["replySecret"],
                            channels: channels.split(separator: ",").map(String.init))
    }

    /// The reply webhook of integration `name`, if registered and its token is live.
    public func replyWebhook(integration name: String) throws -> ReplyWebhook? {
        try writer.read { db in try Self.replyWebhook(db, name: name) }
    }

    /// The same from async code.
    public func replyWebhook(integration name: String) async throws -> ReplyWebhook? {
        try await writer.read { db in try Self.replyWebhook(db, name: name) }
    }
}
