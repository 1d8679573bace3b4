import struct Foundation.UUID
import TicketModel

/// The columnar change set of protocol 5 (`Protocol/PROTOCOL.md` §2.3.3): the batch's blocks taken
/// apart into columns of like bytes (kinds, operations, entity numbers, payloads grouped by field,
/// signatures), so that zlib finds the repeats; and an entity the receiver already holds is named by
/// one of its changes in a block the receiver holds, not by its 16 bytes.
///
/// ```
/// columnar = siteCount site{siteCount} idCount uuid{idCount} heldCount held{heldCount}
///            header{count} kind{N} opField{N} entityPlane{w} payload{N} signature{count}
/// held     = siteIndex seqStep index           ; uvarint svarint uvarint
/// header   = origin seq hlc depCount (siteIndex seq){depCount} changeCount
/// ```
/// The receiver puts every block back together into exactly the bytes its origin signed, after
/// looking up the held entities in its own store (``Parsed/heldChanges`` then ``Parsed/blocks(resolved:)``).
public enum ColumnarChangeSet {
    /// Most distinct site ids one columnar change set may list.
    public static let maxSites = CompactChangeSet.maxSites
    /// Most entities one columnar change set may list, by id and by held change together.
    public static let maxEntities = CompactChangeSet.maxEntities
    /// Most distinct blocks the held changes a columnar change set uses may lie in: what one batch
    /// can make a receiver read from its log.
    public static let maxHeldBlocks = 4096

    // MARK: Writing

    /// Takes `blocks` (in the order given) apart into one columnar change set.
    /// - Parameter held: for entities the receiver holds, a change of each in a block the receiver
    ///   holds (the writing rule names the smallest); any other entity goes by its id, and so does
    ///   one whose change would make the held changes lie in more than ``maxHeldBlocks`` blocks.
    /// - Throws: ``WireError`` `.tooLarge` when the blocks name more sites or entities than a change
    ///   set may list (the caller sends fewer blocks per batch).
    public static func encode(_ blocks: [Block], held: [UUID: Dot] = [:]) throws(WireError) -> [UInt8] {
        var sites = SiteTable()
        // Entities: by id in order of first use, then held ones in the order of their changes. A held
        // entity whose change lies in a block beyond the first maxHeldBlocks named goes by id.
        var literal: [UUID: Int] = [:], literalOrder: [UUID] = []
        var heldUsed: [UUID: Dot] = [:]
        var heldBlocks = Set<HeldBlock>()
        var headers = ByteWriter()
        var changeCount = 0
        for block in blocks {
            sites.writeHeader(of: block, into: &headers)
            changeCount += block.changes.count
            for change in block.changes {
                let id = change.entity.id
                guard heldUsed[id] == nil, literal[id] == nil else { continue }
                if let dot = held[id], heldBlocks.count < maxHeldBlocks || heldBlocks.contains(HeldBlock(dot)) {
                    heldBlocks.insert(HeldBlock(dot))
                    heldUsed[id] = dot
                } else {
                    literal[id] = literalOrder.count
                    literalOrder.append(id)
                }
            }
        }
        let heldOrder = heldUsed.sorted { $0.value < $1.value }
        for (_, dot) in heldOrder { _ = sites(dot.origin) }
        let entityCount = literalOrder.count + heldOrder.count
        guard sites.order.count <= maxSites, entityCount <= maxEntities else {
            throw WireError(.tooLarge, "the batch names \(sites.order.count) sites and \(entityCount) entities; a columnar change set lists at most \(maxSites) and \(maxEntities)")
        }
        var number = literal
        for (i, entry) in heldOrder.enumerated() { number[entry.key] = literalOrder.count + i }

        var out = ByteWriter()
        sites.write(into: &out)
        out.uvarint(UInt64(literalOrder.count))
        for id in literalOrder { out.uuid(id) }
        out.uvarint(UInt64(heldOrder.count))
        var previousSeq: UInt64 = 0
        for (_, dot) in heldOrder {
            out.uvarint(UInt64(sites(dot.origin)))
            out.svarint(Int64(bitPattern: dot.seq &- previousSeq))
            out.uvarint(UInt64(dot.index))
            previousSeq = dot.seq
        }
        out.raw(headers.bytes)

        // The change columns. A change's bytes in its block: kind, 16 bytes of id, op, then (for
        // set, add and remove) the field or set byte, then the payload.
        var kinds = ByteWriter(), opFields = ByteWriter()
        var numbers: [Int] = []
        numbers.reserveCapacity(changeCount)
        var classes: [UInt16: ByteWriter] = [:]
        for block in blocks {
            let body = block.body
            for (i, change) in block.changes.enumerated() {
                let start = Int(block.changeOffsets[i])
                let end = i + 1 < block.changeOffsets.count ? Int(block.changeOffsets[i + 1]) : body.count
                let op = body[start + 17]
                kinds.u8(body[start])
                opFields.u8(op)
                var payloadStart = start + 18
                var field: UInt8 = 0
                if hasField(op) {
                    field = body[payloadStart]
                    opFields.u8(field)
                    payloadStart += 1
                }
                numbers.append(number[change.entity.id]!)
                classes[UInt16(op) << 8 | UInt16(field), default: ByteWriter()].bytes.append(contentsOf: body[payloadStart..<end])
            }
        }
        out.raw(kinds.bytes)
        out.raw(opFields.bytes)
        let width = planeCount(entityCount)
        for plane in 0..<width {
            let shift = 8 * (width - 1 - plane)
            for n in numbers { out.u8(UInt8(truncatingIfNeeded: n >> shift)) }
        }
        for key in classes.keys.sorted() { out.raw(classes[key]!.bytes) }
        for block in blocks { out.raw(block.signature) }
        return out.bytes
    }

    /// The entities of `blocks` a sender looks up in its store for ``encode(_:held:)``: each one
    /// whose first change here is not its `create` (an entity created in the batch is new to the
    /// receiver, so looking it up would find nothing).
    public static func entitiesToLookUp(_ blocks: [Block]) -> Set<UUID> {
        var seen = Set<UUID>(), older = Set<UUID>()
        for block in blocks {
            for change in block.changes where seen.insert(change.entity.id).inserted {
                if case .create = change.operation { continue }
                older.insert(change.entity.id)
            }
        }
        return older
    }

    /// Bytes per entity number: 1 for up to 256 entities, 2 up to 65 536, else 3.
    static func planeCount(_ entities: Int) -> Int { entities <= 1 << 8 ? 1 : entities <= 1 << 16 ? 2 : 3 }

    static func hasField(_ op: UInt8) -> Bool { ChangeLayout.hasFieldByte(op: op) }

    // MARK: Reading

    /// A columnar change set read and checked, whose held entities are still to be looked up.
    public struct Parsed: Sendable {
        public let count: Int
        /// Each held entry of the table, in table order: the change the receiver looks its entity up by.
        /// Only ``heldChanges`` need to be found.
        let held: [Dot]
        /// The held entries a change uses (indexes into `held`), in table order.
        let usedHeld: [Int]
        let siteBytes: [[UInt8]]
        let ids: [[UInt8]]
        let headers: [Header]
        let kinds: [UInt8]
        let ops: [UInt8]
        let fields: [UInt8]
        let numbers: [UInt32]
        /// Where each change's payload stands in `source`.
        let payloads: [Range<UInt32>]
        let source: [UInt8]
        let signatures: Range<Int>

        struct Header: Sendable {
            var origin: Int, seq: UInt64, hlc: UInt64, deps: [(site: Int, seq: UInt64)], changes: Int
        }

        /// The changes the receiver must find in its own store, one per held entity the blocks use:
        /// give their entities' ids, in this order, to ``blocks(resolved:)``.
        public var heldChanges: [Dot] { usedHeld.map { held[$0] } }

        /// Puts the blocks back together and decodes each (§1.10).
        /// - Parameter resolved: the entity id of each of ``heldChanges``, in order; `nil` where the
        ///   receiver does not hold that change (a `bad-batch`).
        public func blocks(resolved: [UUID?]) throws(WireError) -> [Block] {
            guard resolved.count == usedHeld.count else {
                throw WireError(.internal, "\(resolved.count) held entities looked up for \(usedHeld.count)")
            }
            var heldIDs: [Int: [UInt8]] = [:]
            for (position, entry) in usedHeld.enumerated() {
                guard let id = resolved[position] else {
                    let dot = held[entry]
                    throw WireError(.badBatch, "columnar change set: held entity \(entry) names change \(dot.index) of \(dot.origin) seq \(dot.seq), which this node does not hold")
                }
                var w = ByteWriter()
                w.uuid(id)
                heldIDs[ids.count + entry] = w.bytes
            }
            var blocks: [Block] = []
            blocks.reserveCapacity(count)
            var body = ByteWriter()
            var change = 0
            for (index, header) in headers.enumerated() {
                body.bytes.removeAll(keepingCapacity: true)
                body.u8(BlockLimits.encodingVersion)
                body.raw(siteBytes[header.origin])
                body.uvarint(header.seq)
                body.u64(header.hlc)
                body.uvarint(UInt64(header.deps.count))
                for dep in header.deps {
                    body.raw(siteBytes[dep.site])
                    body.uvarint(dep.seq)
                }
                body.uvarint(UInt64(header.changes))
                for _ in 0..<header.changes {
                    body.u8(kinds[change])
                    let n = Int(numbers[change])
                    body.raw(n < ids.count ? ids[n] : heldIDs[n]!)
                    body.u8(ops[change])
                    if hasField(ops[change]) { body.u8(fields[change]) }
                    let payload = payloads[change]
                    body.bytes.append(contentsOf: source[Int(payload.lowerBound)..<Int(payload.upperBound)])
                    change += 1
                }
                // Sizes were checked whole before any look-up (step 11j).
                let signature = signatures.lowerBound + index * BlockLimits.signatureBytes
                body.bytes.append(contentsOf: source[signature..<signature + BlockLimits.signatureBytes])
                do { blocks.append(try Block(decoding: body.bytes)) } catch {
                    throw WireError(.badBatch, "block \(index + 1) of \(count): \(error.code.rawValue): \(error.detail)")
                }
            }
            return blocks
        }
    }

    /// Reads a columnar change set of `count` blocks (§2.3.3, steps 11a to 11j, and the bound of 11k
    /// on the blocks to look up); the held entities are looked up afterwards.
    public static func parse(_ bytes: [UInt8], count: Int, limits: WireLimits = .standard) throws(WireError) -> Parsed {
        guard count >= 1 else { throw WireError(.badField, "a batch holds at least 1 block, not \(count)") }
        guard count <= limits.maxBatchBlocks else {
            throw WireError(.tooLarge, "the batch holds \(count) blocks; the limit is \(limits.maxBatchBlocks)")
        }
        var r = CompactReader(bytes: ByteReader(bytes), label: "columnar change set")
        func fail(_ detail: String) -> WireError { WireError(.badBatch, "columnar change set: \(detail)") }
        // 11a: sites.
        let (siteIDs, siteBytes) = try r.siteTable()
        let siteCount = UInt64(siteIDs.count)
        // 11b: entities by id.
        let idCount = try r.uvarint("id count")
        guard idCount <= UInt64(maxEntities) else { throw fail("the id table lists \(idCount) ids; at most \(maxEntities) are allowed") }
        guard idCount * 16 <= UInt64(r.bytes.remaining) else { throw fail("the id table of \(idCount) ids: truncated") }
        var ids: [[UInt8]] = []
        ids.reserveCapacity(Int(idCount))
        var seenIDs = Set<UUID>(minimumCapacity: Int(idCount))
        for i in 0..<Int(idCount) {
            let start = r.bytes.offset
            guard seenIDs.insert(try r.uuid("id \(i)")).inserted else { throw fail("id \(i) repeats an earlier id") }
            ids.append(Array(bytes[start..<start + 16]))
        }
        // 11c: entities by a held change.
        let heldCount = try r.uvarint("held count")
        guard heldCount <= UInt64(maxEntities) - idCount else {
            throw fail("\(idCount) ids and \(heldCount) held entities; at most \(maxEntities) entities are allowed")
        }
        var held: [Dot] = []
        held.reserveCapacity(Int(min(heldCount, UInt64(r.bytes.remaining) / 3)))
        var seq: Int64 = 0
        for i in 0..<Int(heldCount) {
            let site = try r.uvarint("held \(i), site")
            guard site < siteCount else { throw fail("held \(i): site index \(site) is outside the site table of \(siteCount)") }
            let step = try r.svarint("held \(i), seq step")
            let (next, overflow) = seq.addingReportingOverflow(step)
            guard !overflow, next >= 1 else { throw fail("held \(i): seq \(overflow ? "beyond 2^63 - 1" : String(next)); a seq is 1 to 2^63 - 1") }
            seq = next
            let index = try r.uvarint("held \(i), change index")
            guard index < UInt64(BlockLimits.maxChanges) else { throw fail("held \(i): change index \(index); a block holds at most \(BlockLimits.maxChanges) changes") }
            held.append(Dot(origin: siteIDs[Int(site)], seq: UInt64(seq), index: UInt32(index)))
        }
        let entityCount = Int(idCount + heldCount)
        guard entityCount >= 1 else { throw fail("the tables list no entity; a block holds at least one change") }
        // 11d: block headers.
        var headers: [Parsed.Header] = []
        headers.reserveCapacity(count)
        var changeCount = 0
        for index in 0..<count {
            func at() -> String { "block \(index + 1) of \(count)" }
            let origin = try r.uvarint("\(at()), origin")
            guard origin < siteCount else { throw fail("\(at()): origin index \(origin) is outside the site table of \(siteCount)") }
            let blockSeq = try r.uvarint("\(at()), seq")
            let hlc = try r.u64("\(at()), hlc")
            let depCount = try r.uvarint("\(at()), dep count")
            guard depCount <= UInt64(BlockLimits.maxDeps) else { throw fail("\(at()): \(depCount) deps; the limit is \(BlockLimits.maxDeps)") }
            var deps: [(site: Int, seq: UInt64)] = []
            for _ in 0..<depCount {
                let site = try r.uvarint("\(at()), dep site")
                guard site < siteCount else { throw fail("\(at()): dep site index \(site) is outside the site table of \(siteCount)") }
                deps.append((Int(site), try r.uvarint("\(at()), dep seq")))
            }
            let changes = try r.uvarint("\(at()), change count")
            guard changes >= 1, changes <= UInt64(BlockLimits.maxChanges) else {
                throw fail("\(at()): \(changes) changes; a block holds 1 to \(BlockLimits.maxChanges)")
            }
            headers.append(Parsed.Header(origin: Int(origin), seq: blockSeq, hlc: hlc, deps: deps, changes: Int(changes)))
            changeCount += Int(changes)
        }
        // 11e: kinds.
        guard changeCount <= r.bytes.remaining else { throw fail("the kind column of \(changeCount) changes: truncated") }
        let kinds = Array(try r.take(changeCount, "kinds"))
        // 11f: operations, with the field or set byte of a set, add or remove.
        var ops: [UInt8] = [], fields: [UInt8] = []
        ops.reserveCapacity(changeCount)
        fields.reserveCapacity(changeCount)
        for change in 0..<changeCount {
            let op = try r.u8("change \(change + 1), op")
            guard (1...5).contains(op) else { throw fail("change \(change + 1): unknown operation \(op)") }
            ops.append(op)
            fields.append(hasField(op) ? try r.u8("change \(change + 1), field") : 0)
        }
        // 11g: entity numbers, most significant plane first.
        let width = planeCount(entityCount)
        guard width * changeCount <= r.bytes.remaining else { throw fail("the \(width) entity planes of \(changeCount) changes: truncated") }
        var numbers = [UInt32](repeating: 0, count: changeCount)
        for _ in 0..<width {
            let plane = try r.take(changeCount, "entity plane")
            for (i, byte) in zip(numbers.indices, plane) { numbers[i] = numbers[i] << 8 | UInt32(byte) }
        }
        var usedHeld = Set<Int>()
        for (i, n) in numbers.enumerated() {
            guard n < entityCount else { throw fail("change \(i + 1): entity \(n) is outside the tables' \(entityCount) entities") }
            if n >= ids.count { usedHeld.insert(Int(n) - ids.count) }
        }
        // 11h: payloads, grouped by operation and field, each as long as section 1.5 reads it.
        var payloads = [Range<UInt32>](repeating: 0..<0, count: changeCount)
        let order = ops.indices.sorted { (ops[$0], fields[$0], $0) < (ops[$1], fields[$1], $1) }
        for change in order {
            let start = r.bytes.offset
            do { try ChangeLayout.skipPayload(op: ops[change], field: fields[change], &r.bytes) } catch {
                throw fail("change \(change + 1), payload: \(error.code.rawValue)")
            }
            guard r.bytes.offset - start <= BlockLimits.maxBlockBytes else { throw fail("change \(change + 1): a payload over \(BlockLimits.maxBlockBytes) bytes") }
            payloads[change] = UInt32(start)..<UInt32(r.bytes.offset)
        }
        // 11i: signatures, then nothing more (step 12).
        let signatureStart = r.bytes.offset
        _ = try r.take(count * BlockLimits.signatureBytes, "signatures")
        guard r.bytes.isAtEnd else { throw fail("\(r.bytes.remaining) bytes follow the signatures") }
        // 11j: the blocks put back together, sized before anything is looked up (an id is 16 bytes
        // whichever table gives it).
        var total = 0, change = 0
        for (index, header) in headers.enumerated() {
            var size = 1 + siteBytes[header.origin].count + uvarintLength(header.seq) + 8 + uvarintLength(UInt64(header.deps.count))
            for dep in header.deps { size += siteBytes[dep.site].count + uvarintLength(dep.seq) }
            size += uvarintLength(UInt64(header.changes)) + BlockLimits.signatureBytes
            for _ in 0..<header.changes {
                size += 18 + (hasField(ops[change]) ? 1 : 0) + payloads[change].count
                change += 1
            }
            guard size <= BlockLimits.maxBlockBytes else {
                throw fail("block \(index + 1) of \(count): put back together it is \(size) bytes; a block is at most \(BlockLimits.maxBlockBytes)")
            }
            total += size
            guard total <= limits.maxBatchBytes else {
                throw WireError(.tooLarge, "the blocks of the columnar change set come to more than \(limits.maxBatchBytes) bytes")
            }
        }
        // 11k, before any look-up: the held changes the blocks use lie in at most maxHeldBlocks blocks.
        var heldBlocks = Set<HeldBlock>()
        for entry in usedHeld { heldBlocks.insert(HeldBlock(held[entry])) }
        guard heldBlocks.count <= maxHeldBlocks else {
            throw fail("the held entities the changes use lie in \(heldBlocks.count) blocks; at most \(maxHeldBlocks) may be named")
        }
        return Parsed(count: count, held: held, usedHeld: usedHeld.sorted(), siteBytes: siteBytes, ids: ids, headers: headers, kinds: kinds,
                      ops: ops, fields: fields, numbers: numbers, payloads: payloads, source: bytes,
                      signatures: signatureStart..<signatureStart + count * BlockLimits.signatureBytes)
    }

    /// The block a held change lies in.
    private struct HeldBlock: Hashable {
        var origin: SiteID, seq: UInt64
        init(_ dot: Dot) { (origin, seq) = (dot.origin, dot.seq) }
    }

    /// The length of `value` as a uvarint (§1.1).
    static func uvarintLength(_ value: UInt64) -> Int { max(1, (64 - value.leadingZeroBitCount + 6) / 7) }

    /// Reads and decodes, looking held entities up with `resolve` (the entity id of each change
    /// given, or `nil` where the receiver does not hold it).
    public static func decode(_ bytes: [UInt8], count: Int, limits: WireLimits = .standard,
                              resolve: ([Dot]) throws(WireError) -> [UUID?]) throws(WireError) -> [Block] {
        let parsed = try parse(bytes, count: count, limits: limits)
        return try parsed.blocks(resolved: try resolve(parsed.heldChanges))
    }
}
