import Foundation
import GRDB
import TicketModel

extension TicketDatabase {
    /// Folds one ticket from the blocks that touch it (the pure rules of ``TicketState``).
    /// Changes the author's role may not make (``Authorization``) are skipped.
    /// - Parameter cache: blocks already decoded in this transaction; folding many tickets with one
    ///   cache decodes each block once.
    static func fold(_ db: Database, _ id: UUID, roles known: [SiteID: SiteRole]? = nil, cache: BlockCache = BlockCache()) throws -> TicketState {
        let roles = try known ?? Self.roles(db)
        let slots = try Row.fetchAll(db.cachedStatement(sql: "SELECT origin, seq, offsets FROM blockEntity WHERE entity = ?"),
                                     arguments: [id.lowercased])
        var changes: [EntityChange] = []
        func take(_ origin: SiteID, _ seq: UInt64, _ hlc: HLC, _ deps: VersionVector, _ index: Int, _ change: Change) {
            guard Authorization.refusal(change.operation, on: change.entity, by: roles[origin] ?? .site) == nil else { return }
            changes.append(EntityChange(dot: Dot(origin: origin, seq: seq, index: UInt32(index)), hlc: hlc, deps: deps, operation: change.operation))
        }
        for slot in slots {
            let origin: String = slot[0], seq: Int64 = slot[1]
            if let offsets: Data = slot[2], !cache.holds(origin: origin, seq: seq) {
                // Only this ticket's changes of the block are decoded.
                let part = try cache.part(db, origin: origin, seq: seq, offsets: offsets)
                for (index, change) in part.changes where change.entity.id == id {
                    take(part.block.origin, part.block.seq, part.block.hlc, part.block.deps, index, change)
                }
                continue
            }
            let entry = try cache.entry(db, origin: origin, seq: seq)
            let block = entry.block
            for index in entry.positions[id] ?? [] { take(block.origin, block.seq, block.hlc, block.deps, index, block.changes[index]) }
        }
        return TicketState.fold(id: id, changes: changes)
    }

    /// Rewrites the materialized rows of the touched entities: tickets and configuration documents.
    static func materialize(_ db: Database, _ entities: Set<EntityRef>, cache: BlockCache = BlockCache(), fresh: Set<UUID> = []) throws {
        try materialize(db, Set(entities.filter { $0.kind == .ticket }.map(\.id)), cache: cache, fresh: fresh)
        for entity in entities where entity.kind == .config { try materializeConfig(db, entity.id) }
        let records = entities.filter(\.kind.isRecord)
        if !records.isEmpty {
            let roles = try Self.roles(db)
            for entity in records {
                let state = try fold(db, entity.id, roles: roles, cache: cache)
                if entity.kind == .customer { try materializeCustomer(db, state) } else { try materializeArticle(db, state) }
            }
        }
    }

    /// A configuration document's published versions: one row per version event, the copy with the
    /// smallest (stamp, change id) when two blocks carry the same version id.
    static func materializeConfig(_ db: Database, _ id: UUID) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT b.bytes FROM blockEntity e JOIN block b ON b.origin = e.origin AND b.seq = e.seq WHERE e.entity = ?
            """, arguments: [id.lowercased])
        var versions: [UUID: EventEntry] = [:]
        let roles = try Self.roles(db)
        for row in rows {
            let block = try decodeStored(row["bytes"])
            // Only the coordinator publishes configuration.
            guard Authorization.refusal(.create(number: 0), on: EntityRef(kind: .config, id: id), by: roles[block.origin] ?? .site) == nil else { continue }
            for (entity, change) in block.entityChanges where entity == EntityRef(kind: .config, id: id) {
                guard case .event(let event) = change.operation, event.kind == .configVersion else { continue }
                let entry = EventEntry(event: event, stamp: change.stamp, dot: change.dot)
                if let held = versions[event.id], (held.stamp, held.dot) < (entry.stamp, entry.dot) { continue }
                versions[event.id] = entry
            }
        }
        try db.execute(sql: "DELETE FROM configVersion WHERE entity = ?", arguments: [id.lowercased])
        for (versionID, entry) in versions {
            try db.execute(sql: "INSERT INTO configVersion (id, entity, hlc, origin, actor, body) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [versionID.lowercased, id.lowercased, Int64(bitPattern: entry.stamp.hlc.rawValue),
                                       entry.stamp.site.rawValue, entry.event.actor, entry.event.body])
        }
    }

    /// Re-folds `ids` and rewrites their materialized rows, then resolves merges across tickets if any
    /// of them asks for (or asked for) a merge.
    /// - Parameter fresh: tickets created in this transaction, which have no rows to replace yet.
    static func materialize(_ db: Database, _ ids: Set<UUID>, cache: BlockCache = BlockCache(), fresh: Set<UUID> = []) throws {
        guard !ids.isEmpty else { return }
        var mergesChanged = false
        let roles = try Self.roles(db)
        // Statements compiled once per connection and reused for every ticket.
        let readCandidate = try db.cachedStatement(sql: "SELECT mergeCandidate FROM ticket WHERE id = ?")
        let writeTicket = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO ticket (id, displayNumber, number, originSite, owningSite, owningEpoch, subject, status,
              baseStatus, priority, assignee, "group", category, customer, channel, pendingUntil, escalationCycle,
              escalationLevel, mergeCandidate, mergedInto, mergeRejected, deleted, createdHLC, updatedHLC, conflictCount, stateHash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?, ?, ?, ?)
            """)
        let clearElements = try db.cachedStatement(sql: "DELETE FROM ticketElement WHERE ticket = ?")
        let writeElement = try db.cachedStatement(sql: "INSERT INTO ticketElement (ticket, setName, element) VALUES (?, ?, ?)")
        let clearEvents = try db.cachedStatement(sql: "DELETE FROM ticketEvent WHERE ticket = ?")
        let writeEvent = try db.cachedStatement(sql: """
            INSERT INTO ticketEvent (id, ticket, hlc, site, kind, actor, visibility, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let clearLookups = try db.cachedStatement(sql: "DELETE FROM ticketLookup WHERE ticket = ?")
        let writeLookup = try db.cachedStatement(sql: "INSERT INTO ticketLookup (ticket, name, value) VALUES (?, ?, ?)")
        let clearConflicts = try db.cachedStatement(sql: "DELETE FROM ticketConflict WHERE ticket = ?")
        let writeConflict = try db.cachedStatement(sql: """
            INSERT INTO ticketConflict (id, ticket, field, firstValue, firstSite, secondValue, secondSite) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for id in ids {
            let state = try fold(db, id, roles: roles, cache: cache)
            let key = id.lowercased
            let isFresh = fresh.contains(id)
            let previousCandidate = isFresh ? nil : try String.fetchOne(readCandidate, arguments: [key])
            let candidate = state.mergeCandidate?.target.lowercased
            if previousCandidate != nil || candidate != nil { mergesChanged = true }
            let owner = state.owner
            let origin = state.originSite?.rawValue
            try writeTicket.execute(arguments: [
                    key, state.displayNumber, state.number.map { Int64($0) }, origin, owner.site?.rawValue ?? origin,
                    Int64(owner.epoch), state.subject, state.baseStatus.rawValue, state.baseStatus.rawValue,
                    state.priority.rawValue, state.text(.assignee), state.text(.group), state.text(.category),
                    state.text(.customer), state.text(.channel), pendingUntil(state), Int64(state.escalation.cycle),
                    Int64(state.escalation.level), candidate, state.isDeleted,
                    state.created.map { Int64(bitPattern: $0.hlc.rawValue) }, state.updated.map { Int64(bitPattern: $0.hlc.rawValue) },
                    state.conflicts.count, Data(state.stateHash),
                ])
            if !isFresh { try clearElements.execute(arguments: [key]) }
            for (set, byElement) in state.elements {
                for element in byElement.keys { try writeElement.execute(arguments: [key, set.name, element]) }
            }
            if !isFresh { try clearEvents.execute(arguments: [key]) }
            for entry in state.events {
                try writeEvent.execute(arguments: [entry.event.id.lowercased, key, Int64(bitPattern: entry.stamp.hlc.rawValue),
                                     entry.stamp.site.rawValue, entry.event.kind.rawValue, entry.event.actor,
                                     entry.event.visibility.rawValue, entry.event.body])
            }
            if !isFresh { try clearLookups.execute(arguments: [key]) }
            for name in TicketLookup.names {
                if case .text(let value)? = state.registers[.custom(name)]?.value { try writeLookup.execute(arguments: [key, name, value]) }
            }
            if !isFresh { try clearConflicts.execute(arguments: [key]) }
            for conflict in state.conflicts {
                try writeConflict.execute(arguments: [conflict.id, key, conflict.field.description, conflict.first.value.description,
                                     conflict.first.stamp.site.rawValue, conflict.second.value.description,
                                     conflict.second.stamp.site.rawValue])
            }
        }
        if mergesChanged { try resolveMerges(db, cache: cache) }
    }

    private static func pendingUntil(_ state: TicketState) -> Int64? {
        if case .integer(let ms)? = state.registers[.pendingUntil]?.value { return ms }
        return nil
    }

    /// Applies ``MergeGraph`` over every ticket that asks for a merge (merges are rare).
    static func resolveMerges(_ db: Database, cache: BlockCache = BlockCache()) throws {
        let ids = try String.fetchAll(db, sql: "SELECT id FROM ticket WHERE mergeCandidate IS NOT NULL OR mergedInto IS NOT NULL OR mergeRejected")
        var candidates: [UUID: MergeCandidate] = [:]
        let roles = try Self.roles(db)
        for text in ids {
            let id = try uuid(text)
            if let candidate = try fold(db, id, roles: roles, cache: cache).mergeCandidate { candidates[id] = candidate }
        }
        let graph = MergeGraph.resolve(candidates)
        for text in ids {
            let id = try uuid(text)
            let target = graph.accepted[id]
            try db.execute(sql: """
                UPDATE ticket SET mergedInto = ?, mergeRejected = ?,
                  status = CASE WHEN ? IS NULL THEN baseStatus ELSE 'merged' END
                WHERE id = ?
                """, arguments: [target?.lowercased, graph.rejected.contains(id), target?.lowercased, text])
        }
    }
}

/// Blocks decoded within one transaction, each with the positions of its changes by entity: folding
/// the tickets of a large write or batch decodes every block once, not once per ticket it touches.
/// Bounded by the changes it holds: past ``capacity`` it starts afresh (a fold then decodes only the
/// changes it needs from the log), so a million-change import does not hold its blocks in memory.
final class BlockCache {
    struct Entry {
        let block: Block
        let positions: [UUID: [Int]]
    }

    private struct Key: Hashable {
        let origin: String
        let seq: Int64
    }

    private var entries: [Key: Entry] = [:]
    private var changes = 0
    /// Blocks read for some changes only, with their decoded headers (bounded by bytes).
    private var stored: [Key: StoredBlock] = [:]
    private var storedBytes = 0
    /// Changes held at most (about 10 MiB decoded).
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    /// Whether the block `(origin, seq)` is here decoded.
    func holds(origin: String, seq: Int64) -> Bool { entries[Key(origin: origin, seq: seq)] != nil }

    /// The changes of block `(origin, seq)` at `offsets` (uvarint pairs of index and byte offset, as
    /// ``TicketDatabase/insert(_:_:)`` stores them), decoded without the block's other changes. The
    /// block's header and bytes are kept for the next ticket that reads it.
    func part(_ db: Database, origin: String, seq: Int64, offsets: Data) throws -> (block: StoredBlock, changes: [(index: Int, change: Change)]) {
        let key = Key(origin: origin, seq: seq)
        do {
            let block: StoredBlock
            if let held = stored[key] {
                block = held
            } else {
                block = try StoredBlock(bytes: try bytes(db, origin: origin, seq: seq))
                if storedBytes + block.size > capacity * 160 {
                    stored.removeAll()
                    storedBytes = 0
                }
                stored[key] = block
                storedBytes += block.size
            }
            var reader = ByteReader([UInt8](offsets))
            var changes: [(index: Int, change: Change)] = []
            while !reader.isAtEnd {
                let index = Int(try reader.uvarint())
                changes.append((index, try block.change(at: Int(try reader.uvarint()))))
            }
            return (block, changes)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.corruptFile, "block \(origin) \(seq) or its entity offsets do not decode (\(error)); the database file is damaged, restore it from a backup or a peer")
        }
    }

    private func bytes(_ db: Database, origin: String, seq: Int64) throws -> [UInt8] {
        guard let bytes = try Data.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM block WHERE origin = ? AND seq = ?"),
                                            arguments: [origin, seq]) else {
            throw StoreError(.corruptFile, "blockEntity names block \(origin) \(seq), which the log does not hold; the database file is damaged, restore it from a backup or a peer")
        }
        return [UInt8](bytes)
    }

    /// Adds a block the caller already holds decoded (one it just wrote or received).
    func insert(_ block: Block) {
        store(Key(origin: block.origin.rawValue, seq: Int64(block.seq)), block)
    }

    /// The block `(origin, seq)` of the log, decoded at most once per cache.
    func entry(_ db: Database, origin: String, seq: Int64) throws -> Entry {
        let key = Key(origin: origin, seq: seq)
        if let entry = entries[key] { return entry }
        return store(key, try TicketDatabase.decodeStored(Data(try bytes(db, origin: origin, seq: seq))))
    }

    @discardableResult
    private func store(_ key: Key, _ block: Block) -> Entry {
        if changes + block.changes.count > capacity {
            entries.removeAll()
            changes = 0
        }
        changes += block.changes.count
        var positions: [UUID: [Int]] = [:]
        for (index, change) in block.changes.enumerated() { positions[change.entity.id, default: []].append(index) }
        let entry = Entry(block: block, positions: positions)
        entries[key] = entry
        return entry
    }
}
