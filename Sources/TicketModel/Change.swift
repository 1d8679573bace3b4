import struct Foundation.UUID

/// The kinds of replicated entities: tickets, configuration documents, customers and knowledge
/// articles, all in the same block format.
public enum EntityKind: UInt8, Sendable, Hashable, CaseIterable {
    case ticket = 1
    /// A configuration document (calendar, SLA policy, ladder, matrix, rule): each published version
    /// is one `config_version` event of the document's log (schema 2).
    case config = 2
    /// A customer record: last-writer-wins text registers only (`set` of custom fields), schema 3.
    case customer = 3
    /// A knowledge article written from a resolution: last-writer-wins text registers only, schema 3.
    case article = 4

    /// Whether the entity is a record of named text registers (customers, articles): its changes are
    /// `set`s of custom fields to text or null, nothing else.
    public var isRecord: Bool { self == .customer || self == .article }
}

/// Names one replicated entity.
public struct EntityRef: Hashable, Sendable {
    public var kind: EntityKind
    public var id: UUID
    public init(kind: EntityKind, id: UUID) {
        self.kind = kind
        self.id = id
    }
    public static func ticket(_ id: UUID) -> EntityRef { EntityRef(kind: .ticket, id: id) }
}

/// The identity of one change: its block's origin and `seq`, and its position in the block.
///
/// Dots are the add tags of observed-remove sets and the ids from which conflict ids are hashed.
public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var origin: SiteID
    public var seq: UInt64
    public var index: UInt32
    public init(origin: SiteID, seq: UInt64, index: UInt32) {
        self.origin = origin
        self.seq = seq
        self.index = index
    }
    public static func < (lhs: Dot, rhs: Dot) -> Bool {
        (lhs.origin, lhs.seq, lhs.index) < (rhs.origin, rhs.seq, rhs.index)
    }
    /// `origin:seq:index`, the change id conflict ids and state hashes are made of.
    public var description: String {
        var text: [UInt8] = []
        appendText(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the bytes of ``description`` (its one definition) without building the string.
    func appendText(to bytes: inout [UInt8]) {
        // Numbers of up to 15 digits are small strings, held inline: no allocation.
        let seq = String(seq), index = String(index)
        bytes.append(contentsOf: origin.rawValue.utf8)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(contentsOf: seq.utf8)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(contentsOf: index.utf8)
    }

    /// The byte count of ``description``.
    var textCount: Int { origin.rawValue.utf8.count + String(seq).utf8.count + String(index).utf8.count + 2 }
}

extension ByteWriter {
    /// Writes `dot`'s ``Dot/description`` as ``string(_:)`` would, without building the string.
    mutating func dotText(_ dot: Dot) {
        uvarint(UInt64(dot.textCount))
        dot.appendText(to: &bytes)
    }
}

/// What one change does to its entity.
public enum Operation: Hashable, Sendable {
    /// Creates the ticket with display number `SITE-number` (the site is the block's origin).
    case create(number: UInt64)
    /// Writes one register.
    case set(Field, FieldValue)
    /// Adds an element to a set; the change's ``Dot`` tags the addition.
    case addElement(ElementSet, String)
    /// Removes the additions of an element that the author had observed.
    case removeElement(ElementSet, String, observed: [Dot])
    /// Appends an event to the ticket's log.
    case event(TicketEvent)
}

/// One operation on one entity.
public struct Change: Hashable, Sendable {
    public var entity: EntityRef
    public var operation: Operation
    public init(_ entity: EntityRef, _ operation: Operation) {
        self.entity = entity
        self.operation = operation
    }
}
