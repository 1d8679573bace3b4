import Foundation
import GRDB
import TicketModel

/// Many local writes in one transaction: an import, a bulk edit, a script.
///
/// Each write is checked as the single-write methods check it, and its changes go into the block
/// being filled; a block is signed and appended when it is full (256 changes or its byte budget) or
/// when a write sets a field the block already sets. A ticket the batch opens keeps its changes in
/// hand as its blocks are sealed, and is folded from them once, without reading the log, when it
/// leaves the bounded set of open tickets (its rows are then inserted); every other touched ticket
/// is folded once, at the end. The batch is all or nothing: a write that throws rolls every earlier one back.
///
/// ```swift
/// try db.batch { batch in
///     let id = try batch.create(TicketDraft(subject: "Printer offline"))
///     try batch.set(id, .assignee, .text("ana"))
///     try batch.addTag(id, "hardware")
/// }
/// ```
public struct LocalBatch: ~Copyable {
    /// What a batch wrote.
    public struct Summary: Sendable, Equatable {
        public var blocks = 0
        public var changes = 0
        public var tickets = 0
    }

    let db: Database
    let store: TicketDatabase
    /// The site this batch writes as.
    public let site: SiteID
    let key: SiteKey
    var clock: HybridClock
    var vector: VersionVector
    var number: UInt64
    var fill = BlockFill()
    let cache = BlockCache()
    var touched = Set<EntityRef>()
    /// Stored tickets this batch writes to, as they were before it: closed or not.
    var before: [UUID: Before] = [:]
    enum Before { case open, closed
        var closed: Bool { self == .closed }
    }
    /// The entity of the last change appended (already in `touched`).
    var lastTouched: EntityRef?
    var created = Set<UUID>()
    /// The role this site writes with, for the changes the fold would skip.
    let role: SiteRole
    /// The changes of tickets opened by this batch whose rows are not written yet (their opening
    /// order is `openedOrder`): every change such a ticket has, so it is folded once, without the
    /// log, when its rows are written.
    var opened: [UUID: [EntityChange]] = [:]
    var openedOrder: [UUID] = []
    var openedStart = 0
    /// Tickets folded at the end from the log: stored tickets the batch writes to, and those opened
    /// here that it touched again after their rows were written.
    var refold = Set<EntityRef>()
    var mergesChanged = false
    /// States of tickets folded before (``StateCache``) and by this batch: a ticket it holds absorbs
    /// the batch's blocks (their changes collected in `absorbing`) instead of being folded from the log.
    let folds: FoldCache
    var absorbing: [UUID: [[EntityChange]]] = [:]
    /// Set when sealing a block or writing rows failed, or by ``keepNoStates()``: the batch leaves
    /// `folds` empty.
    var keepsNoStates = false
    /// Opened tickets whose changes are held at most before the oldest are written out (bounds a
    /// large import's memory).
    static let openedCapacity = 4_096
    /// Live tag additions (their dots) of the tickets this batch tagged, read once per ticket.
    var tagDots: [UUID: [String: [Dot]]] = [:]
    var summary = Summary()
    /// Records to derive from created tickets once they are folded (``follow(_:with:)``).
    var follows: [(id: UUID, derive: RecordDerivation)] = []
    /// The connection's page cache, grown as the batch rewrites stored tickets.
    let pageCache: PageCacheBudget

    /// Opens a ticket (as ``TicketDatabase/createTicket(_:)``) and returns its id.
    /// - Parameter fields: further fields to set in the same changes, replacing the draft's value of
    ///   a field it also sets (an import sets `status` this way).
    /// - Parameter attributed: records the draft's actor with the opening's fields, as
    ///   ``TicketDatabase/createTicket(_:follow:)`` does (an `attribution` event after the create).
    /// - Parameter id: the new ticket's id (``NameUUID``, so a re-run can tell it is there with
    ///   ``contains(_:)``); a fresh UUIDv7 when `nil`. The caller makes sure no ticket has it.
    @discardableResult
    public mutating func create(_ draft: TicketDraft, id: UUID? = nil, fields: [(Field, FieldValue)] = [], attributed: Bool = false) throws -> UUID {
        try store.validate(draft)
        for (field, value) in fields { try store.validate(field, value) }
        let id = id ?? UUIDv7.make(millis: store.wallClock(), random: TicketDatabase.randomBytes(10))
        let messageID = UUIDv7.make(millis: store.wallClock(), random: TicketDatabase.randomBytes(10))
        created.insert(id)
        opened[id] = []
        openedOrder.append(id)
        tagDots[id] = [:]
        var changes = TicketDatabase.changes(opening: draft, id: id, number: number, messageID: messageID)
        for (field, value) in fields {
            let change = Change(.ticket(id), .set(field, value))
            if let index = changes.firstIndex(where: { if case .set(field, _) = $0.operation { true } else { false } }) {
                changes[index] = change
            } else {
                changes.append(change)
            }
        }
        if attributed { changes = [changes[0]] + store.attributed(Array(changes.dropFirst()), to: id, actor: draft.actor) }
        for change in changes {
            let dot = try append(change)
            if case .addElement(.tags, let tag) = change.operation { tagDots[id]?[tag, default: []].append(dot) }
        }
        number += 1
        return id
    }

    /// Sets one field of a ticket (as ``TicketDatabase/update(_:_:)``; whether a ticket is closed is
    /// read from its state before the batch).
    public mutating func set(_ id: UUID, _ field: Field, _ value: FieldValue) throws {
        try store.validate(field, value)
        try requireTicket(id)
        // A ticket this batch opened had no state before it (its rows may be written already).
        if !created.contains(id), field == .status, value != .text(Status.closed.rawValue), before[id]?.closed == true {
            throw StoreError(.refusedWrite, "ticket is closed; use `tierline ticket reopen` to open it again")
        }
        try append(Change(.ticket(id), .set(field, value)))
    }

    /// Adds a tag.
    public mutating func addTag(_ id: UUID, _ tag: String) throws {
        let tag = try checkedTag(id, tag)
        try loadTags(id)
        let dot = try append(Change(.ticket(id), .addElement(.tags, tag)))
        tagDots[id]?[tag, default: []].append(dot)
    }

    /// Removes a tag: the additions this replica has seen, earlier ones of this batch included
    /// (observed-remove). Removing a tag the ticket does not carry writes nothing.
    public mutating func removeTag(_ id: UUID, _ tag: String) throws {
        let tag = try checkedTag(id, tag)
        try loadTags(id)
        let observed = tagDots[id]?[tag] ?? []
        guard !observed.isEmpty else { return }
        try append(Change(.ticket(id), .removeElement(.tags, tag, observed: observed)))
        tagDots[id]?[tag] = []
    }

    private mutating func checkedTag(_ id: UUID, _ tag: String) throws -> String {
        try store.checkText(tag, "tag", max: BlockLimits.maxNameBytes, allowEmpty: false)
        try requireTicket(id)
        return tag.canonicalTag
    }

    /// Whether a ticket with this id is stored or opened by this batch.
    public func contains(_ id: UUID) throws -> Bool {
        if created.contains(id) { return true }
        return try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM ticket WHERE id = ?)"), arguments: [id.lowercaseText]) ?? false
    }

    /// Checks that ticket `id` is stored or opened here, reading a stored one's row once per batch
    /// (into ``before``: the rows are not rewritten before the batch ends, except those it opened).
    private mutating func requireTicket(_ id: UUID) throws {
        guard !created.contains(id) else { return }
        if before[id] == nil {
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT status FROM ticket WHERE id = ? AND number IS NOT NULL"),
                                       arguments: [id.lowercaseText])
            guard let row else { throw StoreError(.unknownTicket, "no ticket \(id.lowercaseText) in this store") }
            before[id] = (row["status"] as String?) == Status.closed.rawValue ? .closed : .open
            try pageCache.hold(storedTickets: before.count)
        }
    }

    /// Reads a ticket's live tag additions before this batch first tags it. Every tag write of the
    /// batch goes through here first, so the log holds none of the batch's own tag changes for that
    /// ticket yet, and the open block none either.
    private mutating func loadTags(_ id: UUID) throws {
        guard tagDots[id] == nil else { return }
        if let state = folds.states[id] {
            tagDots[id] = state.elements[.tags] ?? [:]
            return
        }
        // The live tags depend on the tag changes alone (an observed-remove set), so only those are folded.
        tagDots[id] = try TicketDatabase.fold(db, id, cache: cache, keep: Self.isTagChange).elements[.tags] ?? [:]
    }

    private static func isTagChange(_ operation: TicketModel.Operation) -> Bool {
        switch operation {
        case .addElement(.tags, _), .removeElement(.tags, _, _): true
        default: false
        }
    }

    /// Adds a change to the block being filled, sealing that block first if the change does not fit.
    /// - Returns: the change's id.
    @discardableResult
    private mutating func append(_ change: Change) throws -> Dot {
        if let full = fill.place(change) { try seal(full) }
        let dot = Dot(origin: site, seq: vector[site] + 1, index: UInt32(fill.changes.count - 1))
        // A ticket's changes come in a row (a create is a dozen): one set insert for the run.
        if change.entity != lastTouched {
            touched.insert(change.entity)
            lastTouched = change.entity
        }
        summary.changes += 1
        return dot
    }

    /// Signs a block of `changes` and appends it to the log.
    mutating func seal(_ changes: [Change]) throws {
        guard !changes.isEmpty else { return }
        let hlc = try clock.now(wall: store.wallClock())
        let block: Block
        do {
            block = try Block.make(origin: site, seq: vector[site] + 1, hlc: hlc, deps: vector, changes: changes, key: key)
        } catch {
            throw StoreError(.invalidInput, "the write does not fit a block: \(error)")
        }
        do {
            try TicketDatabase.insert(db, block)
            cache.insert(block)
            vector[site] = block.seq
            summary.blocks += 1
            try collect(block)
        } catch {
            // A caller that goes on after this error could commit a block the held states did
            // not take in: the batch keeps none.
            keepsNoStates = true
            throw error
        }
    }

    /// Adds a sealed block's changes to those of the tickets this batch opened; its other tickets
    /// wait for the end. Writes out the oldest opened tickets past ``openedCapacity``.
    private mutating func collect(_ block: Block) throws {
        let byTicket = TicketDatabase.authorizedChanges(block, roles: [site: role])
        var entities = Set<EntityRef>(minimumCapacity: byTicket.count + 1)
        var last: EntityRef?
        for change in block.changes where change.entity != last {
            last = change.entity
            entities.insert(change.entity)
        }
        for entity in entities {
            if entity.kind == .ticket, opened[entity.id] != nil {
                opened[entity.id]!.append(contentsOf: byTicket[entity.id] ?? [])
            } else {
                refold.insert(entity)
                if entity.kind == .ticket, folds.states[entity.id] != nil, let changes = byTicket[entity.id] {
                    absorbing[entity.id, default: []].append(changes)
                }
            }
        }
        while opened.count > Self.openedCapacity { try writeOldestOpened() }
    }

    /// Folds the oldest ticket opened here whose changes are still held, and inserts its rows.
    private mutating func writeOldestOpened() throws {
        while openedStart < openedOrder.count {
            let id = openedOrder[openedStart]
            openedStart += 1
            guard let changes = opened.removeValue(forKey: id) else { continue }
            let state = TicketState.fold(id: id, unsorted: changes)
            do {
                if try TicketDatabase.writeTicketRows(db, state, isNew: true) { mergesChanged = true }
            } catch {
                keepsNoStates = true
                throw error
            }
            if !keepsNoStates { folds.keep(id, state) }
            return
        }
    }

    /// Keeps none of the ticket states this batch folds for the store's next write, and drops those
    /// kept before (``StateCache``) when it ends. For bulk writes, such as an import, whose tickets
    /// are not written again soon: their states would fill the bound for nothing and hold its memory.
    public mutating func keepNoStates() {
        keepsNoStates = true
    }

    /// Derives records (the SLA policy ``TicketDatabase/createTicket(_:follow:)`` pins) from ticket
    /// `id` once the batch has folded it, written in the same transaction.
    public mutating func follow(_ id: UUID, with derive: @escaping RecordDerivation) {
        follows.append((id, derive))
    }

    /// Seals the last block, folds every touched ticket once (twice for those with follow-ups) and
    /// saves the clock and counter.
    consuming func finish() throws -> Summary {
        try seal(fill.take())
        while !opened.isEmpty { try writeOldestOpened() }
        try TicketDatabase.materialize(db, refold, cache: cache, folds: folds, inHand: absorbing)
        if !follows.isEmpty {
            // The records are derived from the tickets as the batch left them, and go in blocks of
            // their own; no state is held open any more, so sealing them lists every ticket to refold.
            refold = []
            absorbing = [:]
            for (id, derive) in follows {
                for change in try TicketDatabase.recordChanges(db, id, derive).changes { try append(change) }
            }
            try seal(fill.take())
            try TicketDatabase.materialize(db, refold, cache: cache, folds: folds, inHand: absorbing)
        }
        if mergesChanged { try TicketDatabase.resolveMerges(db, cache: cache) }
        if keepsNoStates { folds.clear() }
        try TicketDatabase.saveClock(db, clock)
        try TicketDatabase.setNextNumber(db, number)
        summary.tickets = touched.count
        return summary
    }
}

extension TicketDatabase {
    /// Runs `writes` as one batch of local writes in one `BEGIN IMMEDIATE` transaction (see
    /// ``LocalBatch``): all of them are stored, or none.
    @discardableResult
    public func batch(_ writes: (inout LocalBatch) throws -> Void) throws -> LocalBatch.Summary {
        guard let key else { throw StoreError(.refusedWrite, "this store was opened without its site key; local writes need it") }
        return try writer.writeWithoutTransaction { db in
            var summary = LocalBatch.Summary()
            let pageCache = PageCacheBudget(db)
            // After the commit or rollback: the batch's pages are clean then, and the cache frees them.
            defer { pageCache.restore() }
            var lease: StateCache.Lease?
            try db.inTransaction(.immediate) {
                let leased = try foldStates.checkOut(db)
                lease = leased
                let me = try Self.checkLocalWrite(db, key: key)
                var batch = LocalBatch(db: db, store: self, site: me.site, key: key, clock: try Self.clock(db, maxDrift: maxDrift),
                                       vector: try Self.vector(db), number: try Self.nextNumber(db, site: me.site),
                                       role: try Self.roles(db)[me.site] ?? .site, folds: leased.folds, pageCache: pageCache)
                try writes(&batch)
                summary = try batch.finish()
                try faultHook?("beforeCommit")
                try leased.close(db)
                return .commit
            }
            if let lease { foldStates.checkIn(lease) }
            return summary
        }
    }
}

extension TicketDatabase {
    /// Checks a draft as ``createTicket(_:follow:)`` does, writing nothing: for a caller that must
    /// refuse a whole file before its first transaction.
    public func check(_ draft: TicketDraft) throws { try validate(draft) }
}

/// Lets a batch's connection cache about as many pages as the stored tickets it rewrites take in the
/// store, up to ``maxKiB``. An update of a stored ticket dirties pages all over the store's b-trees
/// (its row, a dozen index entries, its tag rows); a cache too small for them spills them to the WAL
/// in the middle of the transaction and reads them back for the next write, which took a third of a
/// 200,000-update batch (`tierline-bench --only w1`). Creates append at the b-trees' right edges and
/// gain nothing from it, so only rewritten stored tickets count, and a batch of the sizes the import
/// and single writes use never grows it.
final class PageCacheBudget {
    /// Store bytes per ticket, KiB, rounded up (W1's store: about 1.8 KB a ticket with its indexes and blocks).
    static let kibPerStoredTicket = 2
    static let maxKiB = 262_144
    private let db: Database
    /// The connection's own setting (`PRAGMA cache_size`'s value), read when the batch first grows it.
    private var original: Int?
    /// The cache the batch has: the store's own (``TicketDatabase/pageCacheKiB``) until it grows it.
    private var kib = TicketDatabase.pageCacheKiB

    init(_ db: Database) { self.db = db }

    /// Grows the cache to hold `storedTickets` rewritten tickets, doubling it at least, so a large
    /// batch sets it a handful of times and a small one never.
    func hold(storedTickets: Int) throws {
        let needed = min(Self.maxKiB, storedTickets * Self.kibPerStoredTicket)
        guard needed > kib else { return }
        if original == nil { original = try Int.fetchOne(db, sql: "PRAGMA cache_size") }
        kib = min(Self.maxKiB, max(needed, kib * 2))
        try db.execute(sql: "PRAGMA cache_size = \(-kib)")
    }

    /// Sets the connection's own setting back if the batch grew it. Lowering the limit frees the
    /// clean pages above it to malloc, which reuses them; glibc keeps such memory in the process
    /// (a reviewer measured it), so a long-running process that once ran a large batch stays larger.
    /// Setting `cache_size` on an open connection does not fail.
    func restore() {
        guard let original else { return }
        try? db.execute(sql: "PRAGMA cache_size = \(original)")
        self.original = nil
        kib = TicketDatabase.pageCacheKiB
    }
}
