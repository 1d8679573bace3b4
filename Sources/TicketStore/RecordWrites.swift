import Foundation
import GRDB
import TicketModel

/// One version of a configuration document, ready to publish.
public struct ConfigVersionDraft: Sendable {
    /// `kind/name`: names the document's entity.
    public var entity: UUID
    /// The version's event id.
    public var versionID: UUID
    /// The canonical JSON of the version.
    public var body: String
    public init(entity: UUID, versionID: UUID, body: String) {
        self.entity = entity
        self.versionID = versionID
        self.body = body
    }
}

extension TicketDatabase {
    /// Publishes configuration versions, all in one transaction: all of them or none.
    public func publish(_ drafts: [ConfigVersionDraft], actor: String) throws {
        guard !drafts.isEmpty else { return }
        for draft in drafts where draft.body.utf8.count > BlockLimits.maxBodyBytes {
            throw StoreError(.invalidInput, "a configuration document is \(draft.body.utf8.count) bytes; the limit is \(BlockLimits.maxBodyBytes)")
        }
        try writeLocal { _, _, _ in
            drafts.map { draft in
                Change(EntityRef(kind: .config, id: draft.entity),
                       .event(TicketEvent(id: draft.versionID, kind: .configVersion, actor: actor, visibility: .internal, body: draft.body)))
            }
        }
    }

    /// The bodies of every published configuration version this replica holds.
    public func configBodies() throws -> [String] {
        try writer.read { db in try Self.configBodies(db) }
    }

    static func configBodies(_ db: Database) throws -> [String] { try String.fetchAll(db, sql: "SELECT body FROM configVersion ORDER BY id") }

    /// The merged state of one ticket, folded from its blocks.
    public func ticketState(_ ref: String) throws -> TicketState {
        let id = try resolve(ref)
        return try writer.read { db in try Self.fold(db, id) }
    }

    /// Ids of tickets that may still have running clocks or ladders: not closed, merged or deleted.
    public func activeTicketIDs() throws -> [UUID] { try activeTickets().map(\.id) }

    /// The active tickets with the stamp of their latest change, so a caller can tell which changed.
    public func activeTickets() throws -> [(id: UUID, updated: Int64)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: Self.activeTicketsSQL).map { (try Self.uuid($0["id"]), ($0["updatedHLC"] as Int64?) ?? 0) }
        }
    }

    /// The statement behind ``activeTickets()``: the active statuses named one by one, so the status
    /// index finds them instead of a walk over every ticket ever closed; only they are sorted.
    static let activeTicketsSQL: String = {
        let active = Status.allCases.filter { $0 != .closed && $0 != .merged }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return "SELECT id, updatedHLC FROM ticket WHERE number IS NOT NULL AND status IN (\(active)) AND NOT deleted ORDER BY id"
    }()

    /// Writes escalation records and their changes as one local block, leaving out records the
    /// ticket already holds (another replica derived them first). Nothing is written when every
    /// record is already there.
    ///
    /// - Parameter prepare: reads the ticket as it is inside the write transaction and returns the
    ///   events and operations to write; it runs under the write lock, so two writers never derive
    ///   from the same stale state.
    /// - Returns: the events written.
    @discardableResult
    public func writeRecords(_ ticket: UUID, _ prepare: (TicketState) throws -> [(event: TicketEvent, operations: [TicketModel.Operation])]) throws -> [TicketEvent] {
        var written: [TicketEvent] = []
        _ = try writeLocal { db, _, _ in
            let records = try Self.recordChanges(db, ticket, prepare)
            written = records.events
            return records.changes
        }
        return written
    }

    /// The changes that write the records `prepare` derives from ticket `ticket` as it is now in
    /// `db`, leaving out events the ticket already holds.
    static func recordChanges(_ db: Database, _ ticket: UUID, _ prepare: (TicketState) throws -> [(event: TicketEvent, operations: [TicketModel.Operation])]) throws -> (changes: [Change], events: [TicketEvent]) {
        let state = try Self.fold(db, ticket)
        guard state.isCreated else { throw StoreError(.unknownTicket, "no ticket \(ticket.lowercaseText) in this store") }
        let held = Set(state.events.map(\.event.id))
        var changes: [Change] = []
        var written: [TicketEvent] = []
        var fields = Set<String>()
        for item in try prepare(state) where !held.contains(item.event.id) {
            written.append(item.event)
            changes.append(Change(.ticket(ticket), .event(item.event)))
            for operation in item.operations {
                // One set per field per write: a later record's value wins within the write.
                if case .set(let field, _) = operation {
                    if !fields.insert(field.description).inserted { changes.removeAll { if case .set(field, _) = $0.operation { true } else { false } } }
                }
                changes.append(Change(.ticket(ticket), operation))
            }
        }
        return (changes, written)
    }
}

extension TicketDatabase {
    /// When this replica last heard from each site: the newest of its block stamps and, for peers
    /// synced directly, the end of the last session.
    public func lastHeard() throws -> [SiteID: UInt64] {
        try writer.read { db in try Self.lastHeard(db) }
    }

    package static func lastHeard(_ db: Database) throws -> [SiteID: UInt64] {
        var out: [SiteID: UInt64] = [:]
        // A site's stamps grow with its seq, so its newest block is its last: one index lookup per
        // origin instead of a scan of the whole log.
        for row in try Row.fetchAll(db, sql: """
            SELECT v.site AS origin, (SELECT b.hlc FROM block b WHERE b.origin = v.site ORDER BY b.seq DESC LIMIT 1) AS hlc
            FROM versionEntry v
            """) {
            guard row["hlc"] as Int64? != nil else { continue }
            if let site = try? SiteID(row["origin"] as String) { out[site] = HLC(rawValue: UInt64(bitPattern: row["hlc"] as Int64)).millis }
        }
        for row in try Row.fetchAll(db, sql: "SELECT site, lastSeen FROM peer") {
            if let site = try? SiteID(row["site"] as String) { out[site] = max(out[site] ?? 0, UInt64(row["lastSeen"] as Int64)) }
        }
        return out
    }
}

extension TicketDatabase {
    /// The merged state of one ticket inside a transaction the caller holds: the state that
    /// transaction sees.
    public static func ticketState(_ db: Database, id: UUID) throws -> TicketState {
        try fold(db, id)
    }

    /// Folds many tickets inside one transaction the caller holds: the roster's roles are read once
    /// and each block is decoded once, however many of the tickets it touches. Use it in that
    /// transaction only (the roles and blocks it holds are those the transaction sees).
    public final class StateReader {
        private let roles: [SiteID: SiteRole]
        private let cache = BlockCache()

        public init(_ db: Database) throws { roles = try TicketDatabase.roles(db) }

        /// The merged state of ticket `id`, as ``TicketDatabase/ticketState(_:id:)`` folds it.
        public func state(_ db: Database, id: UUID) throws -> TicketState {
            try TicketDatabase.fold(db, id, roles: roles, cache: cache)
        }
    }
}
