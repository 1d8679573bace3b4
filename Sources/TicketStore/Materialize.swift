import Foundation
import GRDB
import TicketModel

extension TicketDatabase {
    /// Folds one ticket (or, with `kind`, one record) from the blocks that touch it (the pure rules of
    /// ``TicketState``): the changes to the entity of that kind and id, as the reference replica folds
    /// them; an entity of another kind that shares the id is not part of it. Changes the author's role
    /// may not make (``Authorization``) are skipped.
    /// - Parameter cache: blocks already decoded in this transaction; folding many tickets with one
    ///   cache decodes each block once.
    /// - Parameter keep: the changes to fold (all by default); a caller that needs one part of the
    ///   state (a ticket's tags) folds only the changes that decide it, and skips the rest's merge.
    static func fold(_ db: Database, _ id: UUID, kind: EntityKind = .ticket, roles known: [SiteID: SiteRole]? = nil, cache: BlockCache = BlockCache(),
                     keep: (TicketModel.Operation) -> Bool = { _ in true }) throws -> TicketState {
        let roles = try known ?? Self.roles(db)
        // Read through one cursor by position: a fetched row per slot, and names, cost more than the fold.
        var slots: [(origin: String, seq: Int64, offsets: Data?)] = []
        let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT origin, seq, offsets FROM entityBlock WHERE entity = ?"),
                                       arguments: [id.keyBytes])
        while let row = try rows.next() {
            slots.append((row[0], row[1], row.hasNull(atIndex: 2) ? nil : row[2] as Data))
        }
        var changes: [EntityChange] = []
        changes.reserveCapacity(slots.count * 2)
        func take(_ origin: SiteID, _ role: SiteRole, _ seq: UInt64, _ hlc: HLC, _ deps: VersionVector, _ index: Int, _ change: Change) {
            guard keep(change.operation), Authorization.refusal(change.operation, on: change.entity, by: role) == nil else { return }
            changes.append(EntityChange(dot: Dot(origin: origin, seq: seq, index: UInt32(index)), hlc: hlc, deps: deps, operation: change.operation))
        }
        for (origin, seq, offsets) in slots {
            if let offsets, !cache.holds(origin: origin, seq: seq) {
                // Only this ticket's changes of the block are decoded.
                let part = try cache.part(db, origin: origin, seq: seq, offsets: offsets)
                let block = part.block, role = roles[block.origin] ?? .site
                for (index, change) in part.changes where change.entity.id == id && change.entity.kind == kind {
                    take(block.origin, role, block.seq, block.hlc, block.deps, index, change)
                }
                continue
            }
            let entry = try cache.entry(db, origin: origin, seq: seq)
            let block = entry.block, role = roles[block.origin] ?? .site
            for index in entry.positions[id] ?? [] where block.changes[index].entity.kind == kind {
                take(block.origin, role, block.seq, block.hlc, block.deps, index, block.changes[index])
            }
        }
        return TicketState.fold(id: id, unsorted: changes)
    }

    /// Rewrites the materialized rows of the touched entities: tickets and configuration documents.
    /// The ticket parameters are those of ``materialize(_:_:cache:fresh:folds:growing:written:)``.
    static func materialize(_ db: Database, _ entities: Set<EntityRef>, cache: BlockCache = BlockCache(), fresh: Set<UUID> = [],
                            folds: FoldCache? = nil, growing: Bool = true, written: [Block]? = nil) throws {
        try materialize(db, Set(entities.filter { $0.kind == .ticket }.map(\.id)), cache: cache, fresh: fresh, folds: folds, growing: growing,
                        written: written)
        try materializeOthers(db, entities, cache: cache)
    }

    /// ``materialize(_:_:cache:fresh:folds:growing:written:)`` with the written blocks' changes already
    /// sorted by ticket (``authorizedChanges(_:roles:)`` of each block, in log order): a batch
    /// collects them as it seals its blocks, for the tickets `folds` holds.
    static func materialize(_ db: Database, _ entities: Set<EntityRef>, cache: BlockCache, folds: FoldCache,
                            inHand: [UUID: [[EntityChange]]]) throws {
        try materialize(db, Set(entities.filter { $0.kind == .ticket }.map(\.id)), cache: cache, fresh: [], folds: folds, inHand: inHand,
                        roles: try Self.roles(db))
        try materializeOthers(db, entities, cache: cache)
    }

    /// The configuration documents and records among `entities`, each folded from the log.
    private static func materializeOthers(_ db: Database, _ entities: Set<EntityRef>, cache: BlockCache) throws {
        for entity in entities where entity.kind == .config { try materializeConfig(db, entity.id) }
        let records = entities.filter(\.kind.isRecord)
        if !records.isEmpty {
            let roles = try Self.roles(db)
            for entity in records {
                let state = try fold(db, entity.id, kind: entity.kind, roles: roles, cache: cache)
                if entity.kind == .customer { try materializeCustomer(db, state) } else { try materializeArticle(db, state) }
            }
        }
    }

    /// A configuration document's published versions: one row per version event, the copy with the
    /// smallest (stamp, change id) when two blocks carry the same version id.
    static func materializeConfig(_ db: Database, _ id: UUID) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT b.bytes FROM entityBlock e JOIN block b ON b.origin = e.origin AND b.seq = e.seq WHERE e.entity = ?
            """, arguments: [id.keyBytes])
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
        try db.execute(sql: "DELETE FROM configVersion WHERE entity = ?", arguments: [id.lowercaseText])
        for (versionID, entry) in versions {
            try db.execute(sql: "INSERT INTO configVersion (id, entity, hlc, origin, actor, body) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [versionID.lowercaseText, id.lowercaseText, Int64(bitPattern: entry.stamp.hlc.rawValue),
                                       entry.stamp.site.rawValue, entry.event.actor, entry.event.body])
        }
    }

    /// Folds `ids` and brings their materialized rows up to date, then resolves merges across
    /// tickets if any of them asks for (or asked for) a merge.
    ///
    /// A ticket is folded from its history, except when `written` is given and the ticket is `fresh`
    /// (every change it has is in `written`: they are folded without reading the log), or when
    /// `folds` holds its state from earlier in this transaction and each of `written`'s blocks saw
    /// all of that state: then the blocks are absorbed into it (``TicketState/absorb(_:)``) and the
    /// history is not read. Only the rows that differ from the stored ones are written.
    /// - Parameters:
    ///   - fresh: tickets created in this transaction, which have no rows yet.
    ///   - folds: states of this transaction's earlier folds, updated with these.
    ///   - growing: whether `folds` also keeps the states of tickets it did not hold (else it only
    ///     keeps those it held up to date: a node receiving a million changes from a peer keeps no
    ///     state of each ticket, which its memory bound could not afford).
    ///   - written: the blocks this call materializes, in log order: the only blocks of `ids` that
    ///     `folds` (or, for a `fresh` ticket, the empty state) does not hold yet. `nil`: a `fresh`
    ///     ticket is folded from the log too (a rebuild of rows from scratch).
    static func materialize(_ db: Database, _ ids: Set<UUID>, cache: BlockCache = BlockCache(), fresh: Set<UUID> = [],
                            folds: FoldCache? = nil, growing: Bool = true, written: [Block]? = nil) throws {
        guard !ids.isEmpty else { return }
        let roles = try Self.roles(db)
        var inHand: [UUID: [[EntityChange]]]?
        if let written {
            // The changes of the tickets that can take them: the fresh ones and those `folds` holds.
            var changesByTicket: [UUID: [[EntityChange]]] = [:]
            for block in written {
                for (id, changes) in authorizedChanges(block, roles: roles)
                where ids.contains(id) && (fresh.contains(id) || folds?.states[id] != nil) {
                    changesByTicket[id, default: []].append(changes)
                }
            }
            inHand = changesByTicket
        }
        try materialize(db, ids, cache: cache, fresh: fresh, folds: folds, growing: growing, inHand: inHand, roles: roles)
    }

    /// The ticket part of the two above, under `roles` (read once by the caller). `inHand`: the changes of the written blocks by ticket, in
    /// log order, for every ticket of `ids` that is `fresh` or in `folds`; `nil` when nothing was
    /// written (every ticket is folded from the log).
    private static func materialize(_ db: Database, _ ids: Set<UUID>, cache: BlockCache, fresh: Set<UUID>, folds: FoldCache?, growing: Bool = true,
                                    inHand: [UUID: [[EntityChange]]]?, roles: [SiteID: SiteRole]) throws {
        guard !ids.isEmpty else { return }
        var mergesChanged = false
        for id in ids {
            // Taken out of the cache while it changes, so its storage is not copied.
            let known = folds?.take(id)
            var state: TicketState?
            if let inHand, known == nil, fresh.contains(id) {
                // Every change of a ticket these blocks open is in hand: the full fold, without the log.
                // (Absorbing them block by block from the empty state costs more than this fold.)
                state = TicketState.fold(id: id, unsorted: (inHand[id] ?? []).flatMap { $0 })
            } else if let inHand, var base = known {
                var absorbed = true
                for changes in inHand[id] ?? [] where !base.absorb(changes) {
                    absorbed = false
                    break
                }
                if absorbed { state = base }
            }
            let folded = try state ?? fold(db, id, roles: roles, cache: cache)
            if try writeTicketRows(db, folded, isNew: fresh.contains(id) && known == nil, previous: known) { mergesChanged = true }
            if growing || known != nil { folds?.keep(id, folded) }
        }
        if mergesChanged { try resolveMerges(db, cache: cache) }
    }

    /// A block's ticket changes by ticket, without those its author's role may not make, as
    /// ``fold(_:_:roles:cache:)`` skips them.
    static func authorizedChanges(_ block: Block, roles: [SiteID: SiteRole]) -> [UUID: [EntityChange]] {
        let role = roles[block.origin] ?? .site
        var out: [UUID: [EntityChange]] = [:]
        for (index, change) in block.changes.enumerated() where change.entity.kind == .ticket {
            guard Authorization.refusal(change.operation, on: change.entity, by: role) == nil else { continue }
            out[change.entity.id, default: []].append(EntityChange(dot: block.dot(index), hlc: block.hlc, deps: block.deps, operation: change.operation))
        }
        return out
    }

    /// Brings a ticket's materialized rows to `state`: inserts them all for a ticket that has none
    /// (`isNew`), else reads the stored rows and writes only what differs (the ticket row's changed
    /// columns, added or removed elements, new or changed events, lookups and conflicts).
    ///
    /// The stored `status`, `mergedInto` and `mergeRejected` are ``resolveMerges(_:cache:)``'s: a
    /// ticket that asks for no merge and never did is never merged, so its status is its base status.
    /// - Parameter previous: the state the stored rows were written from (a kept state, see
    ///   ``FoldCache``), if known: the rows are then compared with it instead of read back, unless a
    ///   merge is involved (the merge columns are ``resolveMerges(_:cache:)``'s).
    /// - Returns: whether the ticket asks, or asked, for a merge (the caller then resolves merges).
    static func writeTicketRows(_ db: Database, _ state: TicketState, isNew: Bool, previous: TicketState? = nil) throws -> Bool {
        let key = state.id.lowercaseText
        let candidate = state.mergeCandidate?.target.lowercaseText
        let values = columnValues(state)
        if !isNew, let previous, previous.mergeCandidate == nil, candidate == nil {
            // Never merged: the stored status is the base status, and every column is previous's.
            // The state hash, last, is written without comparing (previous's would cost a second hash).
            let old = columnValues(previous, hashed: false)
            var changed: [(column: String, value: DatabaseValue)] = []
            for (index, column) in foldedColumns.enumerated() where index == old.count || values[index] != old[index] {
                changed.append((column, values[index]))
            }
            if state.baseStatus != previous.baseStatus { changed.append(("status", state.baseStatus.rawValue.databaseValue)) }
            try updateTicketRow(db, key, changed)
            try writeTicketChildren(db, state, stored: key, previous: previous)
            return false
        }
        let stored = isNew ? nil : try Row.fetchOne(db.cachedStatement(sql: selectStoredSQL), arguments: [key])
        guard let stored else {
            try db.cachedStatement(sql: insertSQL).execute(values: [key.databaseValue] + values + [state.baseStatus.rawValue.databaseValue])
            try writeTicketChildren(db, state, stored: isNew ? nil : key)
            return candidate != nil
        }
        var changed: [(column: String, value: DatabaseValue)] = []
        for (index, column) in foldedColumns.enumerated() where values[index] != stored[index] as DatabaseValue {
            changed.append((column, values[index]))
        }
        let status = stored.hasNull(atIndex: mergedIntoIndex) ? state.baseStatus.rawValue : Status.merged.rawValue
        if stored.hasNull(atIndex: statusIndex) || stored[statusIndex] as String != status { changed.append(("status", status.databaseValue)) }
        try updateTicketRow(db, key, changed)
        try writeTicketChildren(db, state, stored: key)
        return candidate != nil || !stored.hasNull(atIndex: mergeCandidateIndex)
    }

    /// The values of ``foldedColumns`` for `state`, in that order; without the last, the state
    /// hash, unless `hashed`.
    private static func columnValues(_ state: TicketState, hashed: Bool = true) -> [DatabaseValue] {
        let owner = state.owner
        let origin = state.originSite?.rawValue
        let values: [(any DatabaseValueConvertible)?] = [
            state.displayNumber, state.number.map { Int64($0) }, origin, owner.site?.rawValue ?? origin, Int64(owner.epoch),
            state.subject, state.baseStatus.rawValue, state.priority.rawValue, state.text(.assignee), state.text(.group),
            state.text(.category), state.text(.customer), state.text(.channel), pendingUntil(state), Int64(state.escalation.cycle),
            Int64(state.escalation.level), state.mergeCandidate?.target.lowercaseText, state.isDeleted,
            state.created.map { Int64(bitPattern: $0.hlc.rawValue) }, state.updated.map { Int64(bitPattern: $0.hlc.rawValue) },
            state.conflicts.count,
        ]
        return values.map { $0?.databaseValue ?? .null } + (hashed ? [Data(state.stateHash).databaseValue] : [])
    }

    /// Writes the `changed` columns of a ticket's row.
    private static func updateTicketRow(_ db: Database, _ key: String, _ changed: [(column: String, value: DatabaseValue)]) throws {
        if !changed.isEmpty {
            try db.cachedStatement(sql: "UPDATE ticket SET \(changed.map { "\"\($0.column)\" = ?" }.joined(separator: ", ")) WHERE id = ?")
                .execute(values: changed.map(\.value) + [key.databaseValue])
        } else {
            // A change can leave every column as it was (a concurrent write of the same value with an
            // earlier stamp) and still be part of the history readers derive from: the dashboard's
            // facts read every status, priority and owner write. Updating the row keeps the promise
            // that every change folded into a ticket updates its row, which the dashboard's trigger
            // listens for.
            try db.cachedStatement(sql: "UPDATE ticket SET stateHash = stateHash WHERE id = ?").execute(arguments: [key])
        }
    }

    /// The ticket columns a fold decides, in the order ``writeTicketRows(_:_:isNew:previous:)`` lists their values.
    private static let foldedColumns = [
        "displayNumber", "number", "originSite", "owningSite", "owningEpoch", "subject", "baseStatus", "priority", "assignee",
        "group", "category", "customer", "channel", "pendingUntil", "escalationCycle", "escalationLevel", "mergeCandidate",
        "deleted", "createdHLC", "updatedHLC", "conflictCount", "stateHash",
    ]
    private static let foldedColumnList = foldedColumns.map { "\"\($0)\"" }.joined(separator: ", ")
    /// Built once, not for every ticket written (the statement cache is keyed by the SQL text).
    private static let selectStoredSQL = "SELECT \(foldedColumnList), status, mergedInto FROM ticket WHERE id = ?"
    private static let insertSQL = """
        INSERT INTO ticket (id, \(foldedColumnList), status, mergedInto, mergeRejected)
        VALUES (?, \(Array(repeating: "?", count: foldedColumns.count).joined(separator: ", ")), ?, NULL, 0)
        """
    /// Positions in the stored row ``writeTicketRows(_:_:isNew:previous:)`` reads (a column read by name costs a lookup).
    private static let statusIndex = foldedColumns.count, mergedIntoIndex = foldedColumns.count + 1
    private static let mergeCandidateIndex = foldedColumns.firstIndex(of: "mergeCandidate")!

    /// The element, event, lookup and conflict rows of a ticket, as keys and the columns compared.
    private struct ChildRows {
        struct Element: Hashable { let set: String, element: String }
        var elements = Set<Element>()
        var events: [String: (hlc: Int64, site: String)] = [:]
        var lookups: [String: String] = [:]
        var conflicts = Set<String>()

        init() {}

        /// The rows ``writeTicketChildren(_:_:stored:previous:)`` wrote for `state`.
        init(_ state: TicketState) {
            elements = Self.elements(state)
            for entry in state.events {
                events[entry.event.id.lowercaseText] = (Int64(bitPattern: entry.stamp.hlc.rawValue), entry.stamp.site.rawValue)
            }
            lookups = Self.lookups(state)
            conflicts = Set(state.conflicts.map(\.id))
        }

        static func elements(_ state: TicketState) -> Set<Element> {
            var elements = Set<Element>()
            for (set, byElement) in state.elements { for element in byElement.keys { elements.insert(Element(set: set.name, element: element)) } }
            return elements
        }

        static func lookups(_ state: TicketState) -> [String: String] {
            var lookups: [String: String] = [:]
            for name in TicketLookup.names {
                if case .text(let value)? = state.registers[.custom(name)]?.value { lookups[name] = value }
            }
            return lookups
        }
    }

    /// The element, event, lookup and conflict rows of a ticket: inserted, or (`stored` names the
    /// ticket) compared with the stored ones and changed where they differ. The stored ones are
    /// read, or taken from `previous`, the state they were written from.
    private static func writeTicketChildren(_ db: Database, _ state: TicketState, stored: String?, previous: TicketState? = nil) throws {
        let key = state.id.lowercaseText
        typealias Element = ChildRows.Element
        var old = ChildRows()
        if stored != nil, let previous {
            old = ChildRows(previous)
        } else if stored != nil {
            // The stored rows, read in one statement.
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                SELECT 0, setName, element, NULL FROM ticketElement WHERE ticket = ?1
                UNION ALL SELECT 1, id, site, hlc FROM ticketEvent WHERE ticket = ?1
                UNION ALL SELECT 2, name, value, NULL FROM ticketLookup WHERE ticket = ?1
                UNION ALL SELECT 3, id, NULL, NULL FROM ticketConflict WHERE ticket = ?1
                """), arguments: [key])
            while let row = try rows.next() {
                switch row[0] as Int {
                case 0: old.elements.insert(Element(set: row[1], element: row[2]))
                case 1: old.events[row[1]] = (row[3], row[2])
                case 2: old.lookups[row[1]] = row[2]
                default: old.conflicts.insert(row[1])
                }
            }
        }
        // The new events and conflicts are walked in the state itself, compared with the old keys.
        let elements = ChildRows.elements(state)
        for gone in old.elements.subtracting(elements) {
            try db.cachedStatement(sql: "DELETE FROM ticketElement WHERE ticket = ? AND setName = ? AND element = ?").execute(arguments: [key, gone.set, gone.element])
        }
        for added in elements.subtracting(old.elements) {
            try db.cachedStatement(sql: "INSERT INTO ticketElement (ticket, setName, element) VALUES (?, ?, ?)").execute(values: [key.databaseValue, added.set.databaseValue, added.element.databaseValue])
        }

        // An event row is the fold's copy: rewritten when another copy of its id won (an earlier stamp).
        for entry in state.events {
            let id = entry.event.id.lowercaseText, hlc = Int64(bitPattern: entry.stamp.hlc.rawValue), site = entry.stamp.site.rawValue
            let stored = old.events.removeValue(forKey: id)
            if let stored, stored.hlc == hlc, stored.site == site { continue }
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO ticketEvent (id, ticket, hlc, site, kind, actor, visibility, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(values: [id.databaseValue, key.databaseValue, hlc.databaseValue, site.databaseValue,
                                      entry.event.kind.rawValue.databaseValue, entry.event.actor.databaseValue,
                                      entry.event.visibility.rawValue.databaseValue, entry.event.body.databaseValue])
        }
        for id in old.events.keys {
            try db.cachedStatement(sql: "DELETE FROM ticketEvent WHERE ticket = ? AND id = ?").execute(arguments: [key, id])
        }

        for (name, value) in ChildRows.lookups(state) where old.lookups.removeValue(forKey: name) != value {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO ticketLookup (ticket, name, value) VALUES (?, ?, ?)").execute(values: [key.databaseValue, name.databaseValue, value.databaseValue])
        }
        for name in old.lookups.keys {
            try db.cachedStatement(sql: "DELETE FROM ticketLookup WHERE ticket = ? AND name = ?").execute(arguments: [key, name])
        }

        // A conflict's row follows from its id (the two change ids it names).
        for conflict in state.conflicts where old.conflicts.remove(conflict.id) == nil {
            try db.cachedStatement(sql: """
                INSERT INTO ticketConflict (id, ticket, field, firstValue, firstSite, secondValue, secondSite) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [conflict.id, key, conflict.field.description, conflict.first.value.description,
                                         conflict.first.stamp.site.rawValue, conflict.second.value.description,
                                         conflict.second.stamp.site.rawValue])
        }
        for id in old.conflicts {
            try db.cachedStatement(sql: "DELETE FROM ticketConflict WHERE id = ?").execute(arguments: [id])
        }
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
                """, arguments: [target?.lowercaseText, graph.rejected.contains(id), target?.lowercaseText, text])
        }
    }
}

/// The states of tickets folded earlier, so a later write absorbs its blocks
/// (``TicketState/absorb(_:)``) instead of reading the history again: each state is that of every
/// block the log held for its ticket when it was kept. Within one transaction that holds by itself;
/// between transactions ``StateCache`` checks that nothing else wrote the store.
///
/// Bounded by the memory its states take (``TicketState/approximateBytes``): past ``capacity``
/// bytes it drops states down to half of it. A ticket it does not hold is folded from the log, so
/// dropping states is always safe.
final class FoldCache {
    private(set) var states: [UUID: TicketState] = [:]
    /// Each state's weight when it was kept (a state does not change while it is kept).
    private var weights: [UUID: Int] = [:]
    private var held = 0
    let capacity: Int

    init(capacity: Int = .max) { self.capacity = capacity }

    /// Takes ticket `id`'s state out (so that changing it does not copy its storage).
    func take(_ id: UUID) -> TicketState? {
        guard let state = states.removeValue(forKey: id) else { return nil }
        held -= weights.removeValue(forKey: id) ?? 0
        return state
    }

    /// Keeps `state` as ticket `id`'s.
    func keep(_ id: UUID, _ state: TicketState) {
        _ = take(id)
        let weight = capacity == .max ? 0 : state.approximateBytes
        guard weight <= capacity else { return }
        if held + weight > capacity {
            // Room for half the bound: states dropped in the dictionary's order, which has nothing
            // to do with the tickets (a hit rate like a random choice's, without keeping an order).
            var victims: [UUID] = []
            var freed = 0
            for (victim, victimWeight) in weights where held - freed + weight > capacity / 2 {
                victims.append(victim)
                freed += victimWeight
            }
            for victim in victims { _ = take(victim) }
        }
        states[id] = state
        weights[id] = weight
        held += weight
    }

    /// Drops every state.
    func clear() {
        states.removeAll()
        weights.removeAll()
        held = 0
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
            throw StoreError(.corruptFile, "entityBlock names block \(origin) \(seq), which the log does not hold; the database file is damaged, restore it from a backup or a peer")
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
