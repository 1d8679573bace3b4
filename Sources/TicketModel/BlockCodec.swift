import struct Foundation.UUID

/// The canonical block body encoding of `Protocol/PROTOCOL.md` §1.
enum BlockCodec {
    enum Op: UInt8 { case create = 1, set = 2, add = 3, remove = 4, event = 5 }

    static func encodeBody(origin: SiteID, seq: UInt64, hlc: HLC, deps: VersionVector, changes: [Change],
                           into w: inout ByteWriter) {
        w.u8(BlockLimits.encodingVersion)
        w.string(origin.rawValue)
        w.uvarint(seq)
        w.u64(hlc.rawValue)
        let sortedDeps = deps.sorted
        w.uvarint(UInt64(sortedDeps.count))
        for dep in sortedDeps {
            w.string(dep.site.rawValue)
            w.uvarint(dep.seq)
        }
        w.uvarint(UInt64(changes.count))
        for change in changes { encode(change, into: &w) }
    }

    static func encode(_ change: Change, into w: inout ByteWriter) {
        w.u8(change.entity.kind.rawValue)
        w.uuid(change.entity.id)
        switch change.operation {
        case .create(let number):
            w.u8(Op.create.rawValue)
            w.uvarint(number)
        case .set(let field, let value):
            w.u8(Op.set.rawValue)
            w.u8(field.code)
            if case .custom(let name) = field { w.string(name) }
            encode(value, into: &w)
        case .addElement(let set, let element):
            w.u8(Op.add.rawValue)
            w.u8(set.rawValue)
            w.string(element)
        case .removeElement(let set, let element, let observed):
            w.u8(Op.remove.rawValue)
            w.u8(set.rawValue)
            w.string(element)
            let dots = Array(Set(observed)).sorted()
            w.uvarint(UInt64(dots.count))
            for dot in dots {
                w.string(dot.origin.rawValue)
                w.uvarint(dot.seq)
                w.uvarint(UInt64(dot.index))
            }
        case .event(let event):
            w.u8(Op.event.rawValue)
            w.uuid(event.id)
            w.u8(event.kind.code)
            w.u8(event.visibility.code)
            w.string(event.actor)
            w.string(event.body)
        }
    }

    static func encode(_ value: FieldValue, into w: inout ByteWriter) {
        w.u8(value.tag)
        switch value {
        case .null: break
        case .text(let s): w.string(s)
        case .integer(let i): w.svarint(i)
        case .flag(let b): w.u8(b ? 1 : 0)
        case .ticket(let id): w.uuid(id)
        case .level(let cycle, let level):
            w.uvarint(cycle)
            w.uvarint(level)
        case .owner(let epoch, let site):
            w.uvarint(epoch)
            w.string(site.rawValue)
        }
    }

    static func decodeBody(_ r: inout ByteReader) throws(CodecError) -> Block.Parsed {
        var parsed = try decodeHeader(&r)
        let count = try r.uvarint()
        guard (1...UInt64(BlockLimits.maxChanges)).contains(count) else {
            throw CodecError(count == 0 ? .invalidValue : .tooLarge, "a block holds 1 to \(BlockLimits.maxChanges) changes; this one says \(count)")
        }
        parsed.changes.reserveCapacity(Int(count))
        parsed.offsets.reserveCapacity(Int(count))
        var setFields = Set<SetKey>()
        for _ in 0..<count {
            parsed.offsets.append(UInt32(r.offset))
            let change = try decodeChange(&r)
            if case .set(let field, _) = change.operation {
                guard setFields.insert(SetKey(entity: change.entity, field: field)).inserted else {
                    throw CodecError(.invalidValue, "two sets of \(field) on one entity in one block")
                }
            }
            parsed.changes.append(change)
        }
        return parsed
    }

    /// Everything before the changes: version, origin, seq, stamp and deps.
    static func decodeHeader(_ r: inout ByteReader) throws(CodecError) -> Block.Parsed {
        let version = try r.u8()
        guard version == BlockLimits.encodingVersion else {
            throw CodecError(.badVersion, "block encoding version \(version); this build reads version \(BlockLimits.encodingVersion)")
        }
        let origin = try r.siteID()
        let seq = try r.count63()
        guard seq >= 1 else { throw CodecError(.invalidValue, "seq must be at least 1") }
        let hlc = HLC(rawValue: try r.u64())
        let depCount = try r.uvarint()
        guard depCount <= UInt64(BlockLimits.maxDeps) else { throw CodecError(.tooLarge, "\(depCount) deps; the limit is \(BlockLimits.maxDeps)") }
        var deps = VersionVector()
        var previous: SiteID?
        for _ in 0..<depCount {
            let site = try r.siteID()
            if let previous, !(previous < site) { throw CodecError(.unsorted, "deps must be sorted by site id without repeats (\(site))") }
            let depSeq = try r.count63()
            guard depSeq >= 1 else { throw CodecError(.nonCanonical, "deps entry \(site) is 0; zero entries are omitted") }
            deps[site] = depSeq
            previous = site
        }
        guard deps[origin] == seq - 1 else {
            throw CodecError(.invalidValue, "deps name \(deps[origin]) for the origin; a block with seq \(seq) must name \(seq - 1)")
        }
        return Block.Parsed(origin: origin, seq: seq, hlc: hlc, deps: deps, changes: [], offsets: [])
    }

    private struct SetKey: Hashable {
        var entity: EntityRef
        var field: Field
    }

    static func decodeChange(_ r: inout ByteReader) throws(CodecError) -> Change {
        let kindByte = try r.u8()
        guard let kind = EntityKind(rawValue: kindByte) else { throw CodecError(.badTag, "unknown entity kind \(kindByte)") }
        let entity = EntityRef(kind: kind, id: try r.uuid())
        let opByte = try r.u8()
        guard let op = Op(rawValue: opByte) else { throw CodecError(.badTag, "unknown operation \(opByte)") }
        if kind == .config && op != .event { throw CodecError(.badTag, "a configuration entity takes only events (operation \(opByte))") }
        if kind.isRecord && op != .set { throw CodecError(.badTag, "a \(kind == .customer ? "customer" : "knowledge article") entity takes only sets of its fields (operation \(opByte))") }
        switch op {
        case .create:
            let number = try r.count63()
            guard number >= 1 else { throw CodecError(.invalidValue, "display numbers start at 1") }
            return Change(entity, .create(number: number))
        case .set:
            let code = try r.u8()
            let field: Field
            if code == 255 {
                let name = try r.name(max: BlockLimits.maxNameBytes)
                guard !name.isEmpty else { throw CodecError(.invalidValue, "empty custom field name") }
                field = .custom(name)
            } else if let known = Field.fromCode(code) {
                field = known
            } else {
                throw CodecError(.badTag, "unknown field code \(code)")
            }
            let value = try decodeValue(&r)
            do { try field.validate(value, on: kind) } catch { throw CodecError(.invalidValue, error.detail) }
            return Change(entity, .set(field, value))
        case .add, .remove:
            let setByte = try r.u8()
            guard let set = ElementSet(rawValue: setByte) else { throw CodecError(.badTag, "unknown set \(setByte)") }
            let element = try r.name(max: BlockLimits.maxNameBytes)
            guard !element.isEmpty else { throw CodecError(.invalidValue, "empty \(set.name) element") }
            if op == .add { return Change(entity, .addElement(set, element)) }
            let dotCount = try r.uvarint()
            guard dotCount <= UInt64(BlockLimits.maxObservedDots) else { throw CodecError(.tooLarge, "\(dotCount) observed dots") }
            var dots: [Dot] = []
            for _ in 0..<dotCount {
                let dot = Dot(origin: try r.siteID(), seq: try r.count63(), index: try index(&r))
                guard dot.seq >= 1 else { throw CodecError(.invalidValue, "an observed dot with seq 0 names no block") }
                if let last = dots.last, !(last < dot) { throw CodecError(.unsorted, "observed dots must be sorted without repeats") }
                dots.append(dot)
            }
            return Change(entity, .removeElement(set, element, observed: dots))
        case .event:
            let id = try r.uuid()
            let kindCode = try r.u8()
            guard let eventKind = EventKind.allCases.first(where: { $0.code == kindCode }) else { throw CodecError(.badTag, "unknown event kind \(kindCode)") }
            // config_version events belong to configuration entities, and only they.
            guard (kind == .config) == (eventKind == .configVersion) else {
                throw CodecError(.badTag, "event kind \(eventKind.rawValue) does not belong on a \(kind == .config ? "configuration" : "ticket") entity")
            }
            let visCode = try r.u8()
            guard let visibility = Visibility.allCases.first(where: { $0.code == visCode }) else { throw CodecError(.badTag, "unknown visibility \(visCode)") }
            let actor = try r.string(max: BlockLimits.maxNameBytes)
            let body = try r.string(max: BlockLimits.maxBodyBytes)
            return Change(entity, .event(TicketEvent(id: id, kind: eventKind, actor: actor, visibility: visibility, body: body)))
        }
    }

    private static func index(_ r: inout ByteReader) throws(CodecError) -> UInt32 {
        let v = try r.uvarint()
        guard v < UInt64(BlockLimits.maxChanges) else { throw CodecError(.invalidValue, "change index \(v) beyond a block's size") }
        return UInt32(v)
    }

    static func decodeValue(_ r: inout ByteReader) throws(CodecError) -> FieldValue {
        let tag = try r.u8()
        switch tag {
        case 0: return .null
        case 1: return .text(try r.string(max: BlockLimits.maxTextBytes))
        case 2: return .integer(try r.svarint())
        case 3:
            let b = try r.u8()
            guard b <= 1 else { throw CodecError(.nonCanonical, "flag byte \(b)") }
            return .flag(b == 1)
        case 4: return .ticket(try r.uuid())
        case 5: return .level(cycle: try r.count63(), level: try r.count63())
        case 6: return .owner(epoch: try r.count63(), site: try r.siteID())
        default: throw CodecError(.badTag, "unknown value tag \(tag)")
        }
    }
}

/// Where a change's parts end in a block, without decoding them (§1.5): what a reader that lays
/// changes out in other orders (the columnar change sets of protocol 5) needs. Kept beside
/// ``BlockCodec/decodeChange(_:)``, whose grammar it follows; the block put back together is then
/// decoded whole, which checks every value.
public enum ChangeLayout {
    /// Whether a change of `op` has a byte between its op and its payload: the field code of a set,
    /// the set of an add or a remove.
    public static func hasFieldByte(op: UInt8) -> Bool {
        op == BlockCodec.Op.set.rawValue || op == BlockCodec.Op.add.rawValue || op == BlockCodec.Op.remove.rawValue
    }

    /// Moves `r` past the payload of a change of `op` (and `field`, its byte after the op, or 0),
    /// reading only lengths and varints.
    /// - Throws: ``CodecError`` when the payload is cut short, names an unknown value tag, or claims
    ///   a string longer than a block or more observed dots than a remove may hold.
    public static func skipPayload(op: UInt8, field: UInt8, _ r: inout ByteReader) throws(CodecError) {
        func skipString() throws(CodecError) {
            let length = try r.uvarint()
            guard length <= UInt64(BlockLimits.maxBlockBytes) else { throw CodecError(.tooLarge, "a string of \(length) bytes") }
            _ = try r.take(Int(length))
        }
        switch BlockCodec.Op(rawValue: op) {
        case .create: _ = try r.uvarint()
        case .set:
            if field == 255 { try skipString() }  // a custom field: its name comes first (decodeChange)
            // The value tags of decodeValue.
            switch try r.u8() {
            case 0: break
            case 1: try skipString()
            case 2: _ = try r.uvarint()
            case 3: _ = try r.take(1)
            case 4: _ = try r.take(16)
            case 5: _ = try r.uvarint(); _ = try r.uvarint()
            case 6: _ = try r.uvarint(); try skipString()
            case let tag: throw CodecError(.badTag, "unknown value tag \(tag)")
            }
        case .add: try skipString()
        case .remove:
            try skipString()
            let dots = try r.uvarint()
            guard dots <= UInt64(BlockLimits.maxObservedDots) else { throw CodecError(.tooLarge, "\(dots) observed dots") }
            for _ in 0..<dots {
                try skipString()
                _ = try r.uvarint()
                _ = try r.uvarint()
            }
        case .event:
            _ = try r.take(18)
            try skipString()
            try skipString()
        case nil: throw CodecError(.badTag, "unknown operation \(op)")
        }
    }
}
