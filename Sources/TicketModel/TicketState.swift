import Crypto
import struct Foundation.UUID

/// One change of one entity, with what the fold needs of its block: its id, stamp and `deps`.
public struct EntityChange: Sendable, Hashable {
    public var dot: Dot
    public var hlc: HLC
    public var deps: VersionVector
    public var operation: Operation

    public init(dot: Dot, hlc: HLC, deps: VersionVector, operation: Operation) {
        self.dot = dot
        self.hlc = hlc
        self.deps = deps
        self.operation = operation
    }

    public var stamp: Stamp { Stamp(hlc: hlc, site: dot.origin) }

    /// Whether the author of this change had seen the change `other` (changes of one block see each other).
    public func covers(_ other: Dot) -> Bool {
        other.origin == dot.origin ? other.seq <= dot.seq : deps[other.origin] >= other.seq
    }

    /// Neither change had seen the other.
    public func isConcurrent(with other: EntityChange) -> Bool {
        !covers(other.dot) && !other.covers(dot)
    }
}

public extension Block {
    /// The block's changes, each with its entity and the block's metadata.
    var entityChanges: [(entity: EntityRef, change: EntityChange)] {
        changes.enumerated().map { index, change in
            (change.entity, EntityChange(dot: dot(index), hlc: hlc, deps: deps, operation: change.operation))
        }
    }
}

/// One `set` of one field, as the history and conflicts show it.
public struct FieldWrite: Sendable, Hashable {
    public var field: Field
    public var value: FieldValue
    public var stamp: Stamp
    public var dot: Dot
    /// The `deps` of the write's block: what its author had seen, which decides whether a later
    /// write is concurrent with it (``TicketState/absorb(_:)`` re-resolves a field from these).
    public var deps: VersionVector
}

/// An addition to or removal from a set, as the history shows it.
public struct ElementWrite: Sendable, Hashable {
    public var set: ElementSet
    public var element: String
    public var isAddition: Bool
    public var stamp: Stamp
    public var dot: Dot
}

/// An event of the log, with the stamp and site of the block that carried it.
public struct EventEntry: Sendable, Hashable {
    public var event: TicketEvent
    public var stamp: Stamp
    public var dot: Dot
    /// The `deps` of the event's block (a customer message the status writer had not seen reopens).
    public var deps: VersionVector
    public init(event: TicketEvent, stamp: Stamp, dot: Dot, deps: VersionVector = VersionVector()) {
        self.event = event
        self.stamp = stamp
        self.dot = dot
        self.deps = deps
    }
}

/// Two concurrent writes of one field with different values.
///
/// Derived from the blocks, never written: every replica holding both writes shows the same conflict
/// with the same id (a hash of the two sorted change ids).
public struct Conflict: Sendable, Hashable {
    public var id: String
    public var field: Field
    /// The write with the smaller change id.
    public var first: FieldWrite
    public var second: FieldWrite
    /// The write the merge rule kept, if it is one of the two.
    public var winner: Dot?

    static func makeID(_ a: Dot, _ b: Dot) -> String {
        // The hash of the text `first|second`, each change id as ``Dot/description`` writes it,
        // assembled as bytes: a fold makes one for every pair of concurrent writes it meets.
        var text: [UInt8] = []
        text.reserveCapacity(80)
        min(a, b).appendText(to: &text)
        text.append(UInt8(ascii: "|"))
        max(a, b).appendText(to: &text)
        return SHA256.hash(data: text).withUnsafeBytes { $0.prefix(12).hexString }
    }
}

/// A ticket's wish to be merged into another: the first writer's target.
public struct MergeCandidate: Sendable, Hashable {
    public var target: UUID
    public var stamp: Stamp
    public var dot: Dot
}

/// The merged state of one ticket: a pure function of the set of its changes.
///
/// ``fold(id:changes:)`` is commutative, associative and idempotent in its input: any order, any
/// repetition of the same changes gives an equal state. The merge rules are those of
/// Protocol/PROTOCOL.md §1.5.6.
///
/// ## Topics
/// - ``fold(id:changes:)``
/// - ``stateHash``
public struct TicketState: Sendable, Equatable {
    public let id: UUID
    /// The per-site counter of the display number, from the `create` change.
    public private(set) var number: UInt64?
    public private(set) var originSite: SiteID?
    public private(set) var created: Stamp?
    public private(set) var updated: Stamp?
    /// The winning write of each field that has one.
    public private(set) var registers: [Field: FieldWrite] = [:]
    /// The status by the status rule, before a merge makes it `merged`.
    public private(set) var baseStatus: Status = .new
    /// Live additions of each element of each set.
    public private(set) var elements: [ElementSet: [String: [Dot]]] = [:]
    /// The event log, oldest first.
    public private(set) var events: [EventEntry] = []
    /// Every `set`, oldest first: the field-change part of the history.
    public private(set) var writes: [FieldWrite] = []
    /// Every set addition and removal, oldest first.
    public private(set) var elementWrites: [ElementWrite] = []
    public private(set) var conflicts: [Conflict] = []
    public private(set) var mergeCandidate: MergeCandidate?
    /// Why the status differs from the last status write, when a domain rule decided it.
    public private(set) var statusNote: String?
    /// The highest `seq` of each origin among the changes folded in: enough to tell whether a new
    /// block had seen all of them (``isDominated(byBlockOf:)``), as the log is causally closed.
    public private(set) var held = VersionVector()

    /// About how many bytes this state takes in memory: a fixed cost per kept change (each write
    /// is held twice, in its list and in its register or element) plus the texts it holds, which
    /// may be long (a message body). For caches that bound the states they hold.
    ///
    /// The `deps` each block's writes and events keep count once per block (one entry per site of
    /// the fleet, so in a fleet of hundreds of sites they outweigh the rest).
    public var approximateBytes: Int {
        var bytes = 512
        var lastBlock: (origin: SiteID, seq: UInt64)?
        func deps(_ dot: Dot, _ deps: VersionVector) {
            // A block's writes are adjacent in (stamp, change id) order, and share one copy.
            if lastBlock?.origin != dot.origin || lastBlock?.seq != dot.seq { bytes += 64 + 48 * deps.entries.count }
            lastBlock = (dot.origin, dot.seq)
        }
        for write in writes {
            bytes += 160 + (write.value.text?.utf8.count ?? 0)
            deps(write.dot, write.deps)
        }
        lastBlock = nil
        for entry in events {
            bytes += 160 + entry.event.body.utf8.count + entry.event.actor.utf8.count
            deps(entry.dot, entry.deps)
        }
        for write in elementWrites { bytes += 160 + write.element.utf8.count }
        return bytes + conflicts.count * 256
    }

    public var isCreated: Bool { number != nil }

    public var displayNumber: String? {
        guard let number, let originSite else { return nil }
        return TicketState.displayNumber(site: originSite, number: number)
    }

    public static func displayNumber(site: SiteID, number: UInt64) -> String {
        "\(site.rawValue.uppercased())-\(number)"
    }

    public func text(_ field: Field) -> String? { registers[field]?.value.text }
    public var subject: String { text(.subject) ?? "" }
    public var priority: Priority { text(.priority).flatMap(Priority.init(rawValue:)) ?? .normal }

    /// Owning site `(epoch, site)`: the origin at epoch 0 until a handoff bumps it.
    public var owner: (epoch: UInt64, site: SiteID?) {
        if case .owner(let epoch, let site)? = registers[.owner]?.value { return (epoch, site) }
        return (0, originSite)
    }

    public var escalation: (cycle: UInt64, level: UInt64) {
        if case .level(let cycle, let level)? = registers[.escalation]?.value { return (cycle, level) }
        return (0, 0)
    }

    public var isDeleted: Bool { registers[.deleted]?.value == .flag(true) }

    public func members(_ set: ElementSet) -> [String] {
        (elements[set] ?? [:]).keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    public var tags: [String] { members(.tags) }

    public var customFields: [String: String] {
        var out: [String: String] = [:]
        for (field, write) in registers {
            if case .custom(let name) = field, let text = write.value.text { out[name] = text }
        }
        return out
    }

    /// The state of a ticket no change has touched yet: ``absorb(_:)`` folds its first block.
    public init(id: UUID) { self.id = id }

    /// Folds the changes of one ticket into its state.
    public static func fold(id: UUID, changes input: some Sequence<EntityChange>) -> TicketState {
        fold(id: id, unsorted: Array(input))
    }

    /// The fold itself, on an array (not generic: it runs once per touched ticket on every write).
    ///
    /// Written for speed, as it runs for every ticket a batch or a received block touches: the
    /// changes are ordered by a comparison that reads the clock first (two blocks almost never share
    /// one), and the few sites, fields and sets of one ticket are looked up in short arrays instead
    /// of hashed. What it computes is the merge of Protocol/PROTOCOL.md §1.5.6, unchanged.
    public static func fold(id: UUID, unsorted: consuming [EntityChange]) -> TicketState {
        // In stamp order; a change given twice (same dot, so same stamp) ends up adjacent and counts once.
        var changes = unsorted
        if changes.indices.dropFirst().contains(where: { precedes(changes[$0], changes[$0 - 1]) }) {
            changes.sort(by: precedes)
        }
        var kept = 0
        for index in changes.indices where kept == 0 || changes[kept - 1].dot != changes[index].dot {
            if kept != index { changes.swapAt(kept, index) }
            kept += 1
        }
        changes.removeLast(changes.count - kept)

        var state = TicketState(id: id)
        var heldSites: [SiteID] = []
        var heldSeqs: [UInt64] = []
        var fields: [Field] = []
        var setsByField: [[EntityChange]] = []
        var adds: [(set: ElementSet, byElement: [String: [Dot]])] = []
        var removes: [(change: EntityChange, set: ElementSet, element: String, observed: [Dot])] = []
        var eventsByID: [UUID: EventEntry] = [:]
        var customerMessages: [EntityChange] = []

        for change in changes {
            let origin = change.dot.origin
            if let site = heldSites.firstIndex(of: origin) {
                heldSeqs[site] = max(heldSeqs[site], change.dot.seq)
            } else {
                heldSites.append(origin)
                heldSeqs.append(change.dot.seq)
            }
            switch change.operation {
            case .create(let number):
                if state.created == nil {
                    state.number = number
                    state.originSite = origin
                    state.created = change.stamp
                }
            case .set(let field, let value):
                if let slot = fields.firstIndex(of: field) {
                    setsByField[slot].append(change)
                } else {
                    fields.append(field)
                    setsByField.append([change])
                }
                state.writes.append(FieldWrite(field: field, value: value, stamp: change.stamp, dot: change.dot, deps: change.deps))
            case .addElement(let set, let element):
                if let slot = adds.firstIndex(where: { $0.set == set }) {
                    adds[slot].byElement[element, default: []].append(change.dot)
                } else {
                    adds.append((set, [element: [change.dot]]))
                }
                state.elementWrites.append(ElementWrite(set: set, element: element, isAddition: true, stamp: change.stamp, dot: change.dot))
            case .removeElement(let set, let element, let observed):
                removes.append((change, set, element, observed))
                state.elementWrites.append(ElementWrite(set: set, element: element, isAddition: false, stamp: change.stamp, dot: change.dot))
            case .event(let event):
                if eventsByID[event.id] == nil {
                    eventsByID[event.id] = EventEntry(event: event, stamp: change.stamp, dot: change.dot, deps: change.deps)
                    if event.kind == .customerMessage { customerMessages.append(change) }
                }
            }
        }
        state.updated = changes.last?.stamp
        state.held = VersionVector(Dictionary(uniqueKeysWithValues: zip(heldSites, heldSeqs)))

        // A remove takes away only additions of its own element that its author had seen.
        var removed = Set<Dot>()
        for remove in removes {
            guard let added = adds.first(where: { $0.set == remove.set })?.byElement[remove.element] else { continue }
            removed.formUnion(remove.observed.filter { added.contains($0) && remove.change.covers($0) })
        }
        for (set, byElement) in adds {
            for (element, dots) in byElement {
                let live = removed.isEmpty ? dots.sorted() : dots.filter { !removed.contains($0) }.sorted()
                if !live.isEmpty { state.elements[set, default: [:]][element] = live }
            }
        }
        state.events = eventsByID.values.sorted { ($0.stamp, $0.dot) < ($1.stamp, $1.dot) }

        state.registers.reserveCapacity(fields.count)
        for (slot, field) in fields.enumerated() {
            state.resolve(field, setsByField[slot], customerMessages: customerMessages)
        }
        state.conflicts.sort { $0.id < $1.id }
        return state
    }

    /// `(stamp, dot)` order, the order a fold reads changes in. A stamp's site is its change's
    /// origin, so this is (clock, origin, seq, index), read clock first.
    private static func precedes(_ x: EntityChange, _ y: EntityChange) -> Bool {
        if x.hlc != y.hlc { return x.hlc < y.hlc }
        if x.dot.origin != y.dot.origin { return x.dot.origin < y.dot.origin }
        if x.dot.seq != y.dot.seq { return x.dot.seq < y.dot.seq }
        return x.dot.index < y.dot.index
    }

    private static func write(_ field: Field, _ change: EntityChange) -> FieldWrite {
        guard case .set(_, let value) = change.operation else { preconditionFailure("not a set") }
        return FieldWrite(field: field, value: value, stamp: change.stamp, dot: change.dot, deps: change.deps)
    }

    /// The writes no other write has seen.
    private static func frontier(_ sets: [EntityChange]) -> [EntityChange] {
        sets.filter { candidate in !sets.contains { $0.dot != candidate.dot && $0.covers(candidate.dot) } }
    }

    /// Resolves `field`'s register from its writes and, when `recording`, records its conflicts.
    private mutating func resolve(_ field: Field, _ sets: [EntityChange], customerMessages: [EntityChange], recording: Bool = true) {
        let writes = sets.map { TicketState.write(field, $0) }
        switch field {
        case .escalation, .owner:
            // Max-registers: the largest (cycle, level) or (epoch, site) wins; they never go back.
            registers[field] = writes.max { TicketState.rank($0.value, $0.stamp) < TicketState.rank($1.value, $1.stamp) }
        case .deleted:
            // Remove-wins: a delete that no later write has seen beats a concurrent undelete.
            let front = TicketState.frontier(sets).map { TicketState.write(field, $0) }
            let deleting = front.filter { $0.value == .flag(true) }
            registers[field] = (deleting.isEmpty ? front : deleting).max { $0.stamp < $1.stamp }
        case .mergedInto:
            // First writer wins among merges; cycles across tickets are cut by ``MergeGraph``.
            if let first = writes.filter({ $0.value != .null }).min(by: { $0.stamp < $1.stamp }), case .ticket(let target) = first.value {
                mergeCandidate = MergeCandidate(target: target, stamp: first.stamp, dot: first.dot)
                registers[field] = first
            }
        case .status:
            resolveStatus(sets, customerMessages: customerMessages)
        default:
            registers[field] = writes.max { $0.stamp < $1.stamp }
        }
        if recording { recordConflicts(field, sets) }
    }

    static func rank(_ value: FieldValue, _ stamp: Stamp) -> (UInt64, UInt64, String, Stamp) {
        switch value {
        case .level(let cycle, let level): (cycle, level, "", stamp)
        case .owner(let epoch, let site): (epoch, 0, site.rawValue, stamp)
        default: (0, 0, "", stamp)
        }
    }

    private mutating func resolveStatus(_ sets: [EntityChange], customerMessages: [EntityChange]) {
        func precedence(_ change: EntityChange) -> Int {
            if case .set(_, .text(Status.closed.rawValue)) = change.operation { return 1 }
            return 0
        }
        // Among writes no other has seen, closed beats the rest, then the last writer wins.
        guard let winner = TicketState.frontier(sets).max(by: { (precedence($0), $0.stamp) < (precedence($1), $1.stamp) }) else { return }
        let written = TicketState.write(.status, winner)
        registers[.status] = written
        baseStatus = written.value.text.flatMap(Status.init(rawValue:)) ?? .open
        // A customer message the resolver had not seen reopens the ticket: solved by any such message,
        // closed only by one written concurrently with the close (closed leaves only through reopen).
        let unseen = customerMessages.filter { !winner.covers($0.dot) }
        if baseStatus == .solved, !unseen.isEmpty {
            baseStatus = .open
            statusNote = "reopened: a customer message the resolver had not seen"
        } else if baseStatus == .closed, unseen.contains(where: { !$0.covers(winner.dot) }) {
            baseStatus = .open
            statusNote = "reopened: a customer message concurrent with the close"
        }
    }

    /// Records the conflicts among `sets`, or only those of the write `involving` with the others.
    private mutating func recordConflicts(_ field: Field, _ sets: [EntityChange], involving: Dot? = nil) {
        let winner = registers[field]?.dot
        func record(_ a: EntityChange, _ b: EntityChange) {
            // Values compare by their canonical bytes, not by Swift's Unicode-equivalence `==`,
            // so every implementation derives the same conflicts.
            guard a.isConcurrent(with: b), TicketState.canonical(a.operation) != TicketState.canonical(b.operation) else { return }
            let (x, y) = a.dot < b.dot ? (a, b) : (b, a)
            conflicts.append(Conflict(id: Conflict.makeID(x.dot, y.dot), field: field,
                                      first: TicketState.write(field, x), second: TicketState.write(field, y),
                                      winner: winner == x.dot || winner == y.dot ? winner : nil))
        }
        if let involving {
            guard let new = sets.first(where: { $0.dot == involving }) else { return }
            for other in sets where other.dot != involving { record(other, new) }
            return
        }
        for i in sets.indices {
            for j in sets.indices where j > i { record(sets[i], sets[j]) }
        }
    }

    private static func canonical(_ operation: Operation) -> [UInt8] {
        guard case .set(_, let value) = operation else { return [] }
        var w = ByteWriter()
        BlockCodec.encode(value, into: &w)
        return w.bytes
    }

    /// SHA-256 over the canonical rendering of the materialized values, their winning stamps, the
    /// OR-set dots, the events and the conflicts. Two replicas with the same changes of this ticket
    /// have the same hash.
    public var stateHash: [UInt8] {
        // Every list is prefixed by its length, so two different states never render the same bytes.
        var w = ByteWriter()
        w.uuid(id)
        w.uvarint(number ?? 0)
        w.string(originSite?.rawValue ?? "")
        w.u64(created?.hlc.rawValue ?? 0)
        let fields = registers.sorted(by: { $0.key < $1.key })
        w.uvarint(UInt64(fields.count))
        for (field, write) in fields {
            w.u8(field.code)
            if case .custom(let name) = field { w.string(name) }
            BlockCodec.encode(write.value, into: &w)
            w.u64(write.stamp.hlc.rawValue)
            w.string(write.stamp.site.rawValue)
        }
        w.string(baseStatus.rawValue)
        let sets = elements.sorted(by: { $0.key < $1.key })
        w.uvarint(UInt64(sets.count))
        for (set, byElement) in sets {
            w.u8(set.rawValue)
            w.uvarint(UInt64(byElement.count))
            for element in byElement.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                w.string(element)
                let dots = byElement[element]!
                w.uvarint(UInt64(dots.count))
                for dot in dots { w.dotText(dot) }
            }
        }
        w.uvarint(UInt64(events.count))
        for entry in events {
            w.dotText(entry.dot)
            BlockCodec.encode(Change(.ticket(id), .event(entry.event)), into: &w)
        }
        w.uvarint(UInt64(conflicts.count))
        for conflict in conflicts { w.string(conflict.id) }
        return Array(SHA256.hash(data: w.bytes))
    }
}

// MARK: Incremental folding

extension TicketState {
    /// Whether the block holding `change` had seen every change this state holds: its own site's
    /// earlier blocks and, through its `deps`, every other site's.
    ///
    /// Always true of a local write (its deps are the store's whole vector), and of a remote block
    /// that arrives after everything concurrent with it.
    public func isDominated(byBlockOf change: EntityChange) -> Bool {
        held.entries.allSatisfy { site, seq in
            site == change.dot.origin ? seq < change.dot.seq : change.deps[site] >= seq
        }
    }

    /// Folds one block's changes of this ticket into the state directly, without its history.
    ///
    /// When the block had seen every change the state holds (a local write, and most remote blocks),
    /// it is concurrent with nothing held, so each merge rule reduces to a comparison with the
    /// current winner: a set beats the register by its rule (the largest rank for escalation and
    /// owner, the largest stamp for plain fields, always for `deleted` and `status`, the smallest stamp
    /// for `mergedInto`), adds the block makes are live, a remove takes the live additions it observed,
    /// and no new conflict appears. That runs in time proportional to the block and the ticket's field
    /// count, not its history.
    ///
    /// A block concurrent with some held change goes through the full merge, but per field: each
    /// field it sets (and the status, when it brings a customer message) is resolved again from that
    /// field's writes, which keep their blocks' `deps`; its element changes and events are merged as
    /// the fold merges them. Fields it does not touch keep their registers and conflicts.
    ///
    /// Either way the result equals ``fold(id:changes:)`` over the held changes plus these (the model
    /// tests check it over random histories and arrival orders).
    ///
    /// ```swift
    /// var state = TicketState(id: id)
    /// if !state.absorb(blockChanges) { state = TicketState.fold(id: id, changes: everything) }
    /// ```
    /// - Parameter changes: this ticket's changes of one block (same origin, seq, stamp and deps),
    ///   each at most once. The held changes must be causally closed (a store's log is), and the
    ///   block must come after every block it depends on, as a store applies them.
    /// - Returns: `false`, leaving the state as it was, when the block holds what needs the full fold
    ///   (a second create, a create concurrent with held changes, a field set twice, an event id
    ///   already held, a block of an origin already held this far); the caller then folds the whole
    ///   history.
    public mutating func absorb(_ changes: [EntityChange]) -> Bool {
        guard let first = changes.first else { return true }
        guard changes.allSatisfy({ $0.dot.origin == first.dot.origin && $0.dot.seq == first.dot.seq && $0.hlc == first.hlc && $0.deps == first.deps })
        else { return false }
        guard isDominated(byBlockOf: first) else { return absorbConcurrent(changes, first: first) }
        let changes = changes.sorted { $0.dot < $1.dot }
        guard let fields = fieldsToAbsorb(changes, allowingCreate: created == nil) else { return false }
        let customerMessage = record(changes, of: first, settingRegisters: true)
        // A customer message the status winner had not seen reopens a solved ticket. A status set
        // of this block saw the block's messages; a close is reopened only by a concurrent message.
        if customerMessage, !fields.contains(.status), let winner = registers[.status],
           winner.value.text.flatMap(Status.init(rawValue:)) == .solved {
            baseStatus = .open
            statusNote = "reopened: a customer message the resolver had not seen"
        }
        for field in fields { refreshConflictWinners(field) }
        return true
    }

    /// ``absorb(_:)`` of a block concurrent with some held change: each field it sets is resolved
    /// again from its writes, as ``fold(id:changes:)`` resolves it.
    private mutating func absorbConcurrent(_ input: [EntityChange], first: EntityChange) -> Bool {
        // A block of an origin this state holds up to its seq or past it is a repeat or out of order.
        guard held[first.dot.origin] < first.dot.seq else { return false }
        let changes = input.sorted { $0.dot < $1.dot }
        // Which create is first depends on stamps across the history: the full fold decides.
        guard var fields = fieldsToAbsorb(changes, allowingCreate: false) else { return false }
        let customerMessage = record(changes, of: first, settingRegisters: false)
        // A customer message may reopen the ticket whatever the status writes saw: resolve it again.
        if customerMessage, !fields.contains(.status), writes.contains(where: { $0.field == .status }) { fields.append(.status) }
        guard !fields.isEmpty else { return true }
        let messages = events.filter { $0.event.kind == .customerMessage }
            .map { EntityChange(dot: $0.dot, hlc: $0.stamp.hlc, deps: $0.deps, operation: .event($0.event)) }
        for field in fields {
            let sets = writes.filter { $0.field == field }
                .map { EntityChange(dot: $0.dot, hlc: $0.stamp.hlc, deps: $0.deps, operation: .set(field, $0.value)) }
            registers[field] = nil
            switch field {
            case .mergedInto: mergeCandidate = nil
            case .status: (baseStatus, statusNote) = (.new, nil)
            default: break
            }
            resolve(field, sets, customerMessages: messages, recording: false)
            // The pairs of held writes conflict as before (their winner may change); the new pairs
            // are those of this block's write.
            if let new = sets.first(where: { $0.dot.origin == first.dot.origin && $0.dot.seq == first.dot.seq }) {
                recordConflicts(field, sets, involving: new.dot)
            }
            refreshConflictWinners(field)
        }
        conflicts.sort { $0.id < $1.id }
        return true
    }

    /// The fields one block's changes (sorted by change id) set, in order; `nil` when absorbing them
    /// needs the full fold: a change given twice, a field set twice, an event id given twice or
    /// already held, or a create not allowed (only the first, in a block that saw everything held).
    private func fieldsToAbsorb(_ changes: [EntityChange], allowingCreate: Bool) -> [Field]? {
        var fields: [Field] = []
        var eventIDs = Set<UUID>()
        var creates = 0
        for (index, change) in changes.enumerated() {
            if index > 0, changes[index - 1].dot == change.dot { return nil }
            switch change.operation {
            case .create:
                creates += 1
                if !allowingCreate || creates > 1 { return nil }
            case .set(let field, _):
                if fields.contains(field) { return nil }
                fields.append(field)
            case .event(let event):
                if !eventIDs.insert(event.id).inserted || events.contains(where: { $0.event.id == event.id }) { return nil }
            case .addElement, .removeElement:
                break
            }
        }
        return fields
    }

    /// Adds one block's changes (sorted by change id, each at most once) to the history lists, the
    /// live elements and, when `settingRegisters` (a block that saw everything held), the registers.
    /// A remove takes the live additions it observed and its author had seen; a concurrent addition
    /// stays (no held remove can take one of this block: it would have depended on this block).
    /// - Returns: whether the block brings a customer message.
    private mutating func record(_ changes: [EntityChange], of first: EntityChange, settingRegisters: Bool) -> Bool {
        let stamp = first.stamp
        if updated.map({ $0 < stamp }) ?? true { updated = stamp }
        held[first.dot.origin] = first.dot.seq
        var removes: [(set: ElementSet, element: String, observed: [Dot])] = []
        var customerMessage = false
        for change in changes {
            switch change.operation {
            case .create(let number):
                self.number = number
                originSite = change.dot.origin
                created = stamp
            case .set(let field, let value):
                let write = FieldWrite(field: field, value: value, stamp: stamp, dot: change.dot, deps: first.deps)
                TicketState.insertSorted(write, into: &writes) { ($0.stamp, $0.dot) }
                if settingRegisters { absorbSet(write) }
            case .addElement(let set, let element):
                TicketState.insertSorted(ElementWrite(set: set, element: element, isAddition: true, stamp: stamp, dot: change.dot),
                                         into: &elementWrites) { ($0.stamp, $0.dot) }
                elements[set, default: [:]][element, default: []].append(change.dot)
                elements[set]![element]!.sort()
            case .removeElement(let set, let element, let observed):
                TicketState.insertSorted(ElementWrite(set: set, element: element, isAddition: false, stamp: stamp, dot: change.dot),
                                         into: &elementWrites) { ($0.stamp, $0.dot) }
                removes.append((set, element, observed))
            case .event(let event):
                TicketState.insertSorted(EventEntry(event: event, stamp: stamp, dot: change.dot, deps: first.deps), into: &events) { ($0.stamp, $0.dot) }
                if event.kind == .customerMessage { customerMessage = true }
            }
        }
        for remove in removes {
            guard let live = elements[remove.set]?[remove.element] else { continue }
            let taken = Set(remove.observed.filter { first.covers($0) })
            let kept = live.filter { !taken.contains($0) }
            elements[remove.set]![remove.element] = kept.isEmpty ? nil : kept
            if elements[remove.set]!.isEmpty { elements[remove.set] = nil }
        }
        return customerMessage
    }

    /// Applies one set of a dominating block to its field's register.
    private mutating func absorbSet(_ write: FieldWrite) {
        let field = write.field
        // The full fold keeps the first of equal maxima in (stamp, change id) order.
        func beats(_ held: FieldWrite?, _ isGreater: (FieldWrite, FieldWrite) -> Bool, _ isEqual: (FieldWrite, FieldWrite) -> Bool) -> Bool {
            guard let held else { return true }
            return isGreater(write, held) || (isEqual(write, held) && write.dot < held.dot)
        }
        switch field {
        case .escalation, .owner:
            let rank = { (w: FieldWrite) in TicketState.rank(w.value, w.stamp) }
            if beats(registers[field], { rank($0) > rank($1) }, { rank($0) == rank($1) }) { registers[field] = write }
        case .deleted:
            // The only write of the frontier: nothing held is concurrent with it.
            registers[field] = write
        case .mergedInto:
            // First writer wins: the smallest stamp among the non-null writes, all of them held in `writes`.
            if let first = writes.filter({ $0.field == .mergedInto && $0.value != .null }).min(by: { $0.stamp < $1.stamp }),
               case .ticket(let target) = first.value {
                mergeCandidate = MergeCandidate(target: target, stamp: first.stamp, dot: first.dot)
                registers[field] = first
            } else {
                mergeCandidate = nil
                registers[field] = nil
            }
        case .status:
            // The frontier's only write, which saw every customer message held or in its block.
            registers[field] = write
            baseStatus = write.value.text.flatMap(Status.init(rawValue:)) ?? .open
            statusNote = nil
        default:
            if beats(registers[field], { $0.stamp > $1.stamp }, { $0.stamp == $1.stamp }) { registers[field] = write }
        }
    }

    /// Conflicts keep naming the register's winner when it is one of their two writes.
    private mutating func refreshConflictWinners(_ field: Field) {
        let winner = registers[field]?.dot
        for index in conflicts.indices where conflicts[index].field == field {
            let conflict = conflicts[index]
            conflicts[index].winner = winner == conflict.first.dot || winner == conflict.second.dot ? winner : nil
        }
    }

    /// Inserts `element` after every element not ordered after it by (stamp, change id): appending,
    /// in the usual case of a block stamped after everything held.
    private static func insertSorted<T>(_ element: T, into array: inout [T], key: (T) -> (Stamp, Dot)) {
        func isAfter(_ a: T, _ b: T) -> Bool { key(b) < key(a) }
        var low = array.count
        if let last = array.last, isAfter(last, element) {
            low = 0
            var high = array.count
            while low < high {
                let mid = (low + high) / 2
                if isAfter(array[mid], element) { high = mid } else { low = mid + 1 }
            }
        }
        array.insert(element, at: low)
    }
}

/// Resolves merges across tickets: first writer wins per ticket, and a merge that would close a cycle
/// (A into B, B into A) loses to the earlier ones.
public enum MergeGraph {
    /// - Returns: the accepted `ticket → target` edges and the tickets whose merge lost.
    public static func resolve(_ candidates: [UUID: MergeCandidate]) -> (accepted: [UUID: UUID], rejected: Set<UUID>) {
        var accepted: [UUID: UUID] = [:]
        var rejected = Set<UUID>()
        for (ticket, candidate) in candidates.sorted(by: { ($0.value.stamp, $0.value.dot) < ($1.value.stamp, $1.value.dot) }) {
            var cursor: UUID? = candidate.target
            var steps = 0
            var closesCycle = false
            while let node = cursor, steps <= accepted.count {
                if node == ticket { closesCycle = true; break }
                cursor = accepted[node]
                steps += 1
            }
            if closesCycle { rejected.insert(ticket) } else { accepted[ticket] = candidate.target }
        }
        return (accepted, rejected)
    }
}
