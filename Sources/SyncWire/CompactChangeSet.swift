import struct Foundation.UUID
import TicketModel

/// The compact change set of protocol 3 (`Protocol/PROTOCOL.md` §2.3.1): the batch's blocks taken
/// apart so that each site id and each entity id is written once per batch, and put back together on
/// arrival into exactly the bytes their origins signed.
///
/// ```
/// compact = siteCount site{siteCount} entityCount uuid{entityCount} entry{count}
/// entry   = originIndex seq hlc depCount (siteIndex seq){depCount} changeCount change{changeCount} signature
/// change  = kind entityRef op payloadLength payload
/// ```
/// `entityRef` 0 is the entity of the change before it in the change set; 1 is the next entry of the
/// entity table not yet introduced so (the table is in order of first use, so a writer introduces each
/// entity with 1); `n` ≥ 2 is entry `n` − 2. Everything else of a change (its payload) is copied as
/// the block holds it.
///
/// ```swift
/// let raw = try CompactChangeSet.encode(blocks)
/// let same = try CompactChangeSet.decode(raw, count: blocks.count, limits: .standard)  // == blocks
/// ```
public enum CompactChangeSet {
    /// Most distinct site ids one compact change set may list: origins and `deps` entries together.
    public static let maxSites = 8192
    /// Most distinct entity ids one compact change set may list: a full batch of full blocks.
    public static let maxEntities = 4096 * 256

    /// Takes `blocks` (in the order given) apart into one compact change set.
    /// - Throws: ``WireError`` `.tooLarge` when the blocks name more sites or entities than a compact
    ///   change set may list (the caller sends fewer blocks per batch).
    public static func encode(_ blocks: [Block]) throws(WireError) -> [UInt8] {
        var sites = SiteTable()
        var entities: [UUID: Int] = [:], entityOrder: [UUID] = []
        var entries = ByteWriter()
        var previous: Int?
        for block in blocks {
            sites.writeHeader(of: block, into: &entries)
            let body = block.body
            for (i, change) in block.changes.enumerated() {
                let start = Int(block.changeOffsets[i])
                let end = i + 1 < block.changeOffsets.count ? Int(block.changeOffsets[i + 1]) : body.count
                let id = change.entity.id
                entries.u8(body[start])
                if let index = entities[id] {
                    entries.uvarint(previous == index ? 0 : UInt64(index + 2))
                    previous = index
                } else {
                    entities[id] = entityOrder.count
                    previous = entityOrder.count
                    entityOrder.append(id)
                    entries.uvarint(1)
                }
                // kind (1 byte) and entity id (16) come before the op; the payload follows the op.
                entries.u8(body[start + 17])
                entries.uvarint(UInt64(end - start - 18))
                entries.bytes.append(contentsOf: body[(start + 18)..<end])
            }
            entries.bytes.append(contentsOf: block.signature)
        }
        guard sites.order.count <= maxSites, entityOrder.count <= maxEntities else {
            throw WireError(.tooLarge, "the batch names \(sites.order.count) sites and \(entityOrder.count) entities; a compact change set lists at most \(maxSites) and \(maxEntities)")
        }
        var out = ByteWriter()
        out.bytes.reserveCapacity(entries.bytes.count + sites.order.count * 12 + entityOrder.count * 16 + 8)
        sites.write(into: &out)
        out.uvarint(UInt64(entityOrder.count))
        for id in entityOrder { out.uuid(id) }
        out.bytes.append(contentsOf: entries.bytes)
        return out.bytes
    }

    /// Puts `count` blocks back together from a compact change set and decodes each (§1.10).
    ///
    /// Every failure is `bad-batch` with the step that failed, except blocks that together exceed
    /// `limits.maxBatchBytes` once put back together, which is `too-large`, and a `count` outside
    /// 1…`limits.maxBatchBlocks`, refused as the frame's `count` is (`bad-field`, `too-large`).
    public static func decode(_ bytes: [UInt8], count: Int, limits: WireLimits = .standard) throws(WireError) -> [Block] {
        guard count >= 1 else { throw WireError(.badField, "a batch holds at least 1 block, not \(count)") }
        guard count <= limits.maxBatchBlocks else {
            throw WireError(.tooLarge, "the batch holds \(count) blocks; the limit is \(limits.maxBatchBlocks)")
        }
        var r = CompactReader(bytes: ByteReader(bytes))
        func fail(_ detail: String) -> WireError { WireError(.badBatch, "compact change set: \(detail)") }
        let siteBytes = try r.siteTable().encoded
        let siteCount = UInt64(siteBytes.count)
        let entityCount = try r.uvarint("entity count")
        guard entityCount <= UInt64(maxEntities) else { throw fail("the entity table lists \(entityCount) ids; at most \(maxEntities) are allowed") }
        guard entityCount * 16 <= UInt64(r.bytes.remaining) else { throw fail("the entity table of \(entityCount) ids: truncated") }
        // Entry i of the table is read where it stands in `bytes`; only the duplicate check keeps the
        // ids, 16 bytes each.
        let table = r.bytes.offset
        var seenEntities = Set<UUID>(minimumCapacity: Int(entityCount))
        for i in 0..<Int(entityCount) {
            guard seenEntities.insert(try r.uuid("entity \(i)")).inserted else { throw fail("entity \(i) repeats an earlier id") }
        }
        var blocks: [Block] = []
        blocks.reserveCapacity(count)
        var previous: Int?
        var introduced = 0
        var total = 0
        var body = ByteWriter()
        var index = 0
        // Messages are built only on failure: the reads take them as autoclosures.
        func at() -> String { "block \(index + 1) of \(count)" }
        for current in 0..<count {
            index = current
            body.bytes.removeAll(keepingCapacity: true)
            body.u8(BlockLimits.encodingVersion)
            let origin = try r.uvarint("\(at()), origin")
            guard origin < siteCount else { throw fail("\(at()): origin index \(origin) is outside the site table of \(siteCount)") }
            body.raw(siteBytes[Int(origin)])
            body.uvarint(try r.uvarint("\(at()), seq"))
            body.u64(try r.u64("\(at()), hlc"))
            let depCount = try r.uvarint("\(at()), dep count")
            guard depCount <= UInt64(BlockLimits.maxDeps) else { throw fail("\(at()): \(depCount) deps; the limit is \(BlockLimits.maxDeps)") }
            body.uvarint(depCount)
            for _ in 0..<depCount {
                let site = try r.uvarint("\(at()), dep site")
                guard site < siteCount else { throw fail("\(at()): dep site index \(site) is outside the site table of \(siteCount)") }
                body.raw(siteBytes[Int(site)])
                body.uvarint(try r.uvarint("\(at()), dep seq"))
            }
            let changeCount = try r.uvarint("\(at()), change count")
            guard changeCount >= 1, changeCount <= UInt64(BlockLimits.maxChanges) else {
                throw fail("\(at()): \(changeCount) changes; a block holds 1 to \(BlockLimits.maxChanges)")
            }
            body.uvarint(changeCount)
            for _ in 0..<changeCount {
                body.u8(try r.u8("\(at()), entity kind"))
                let ref = try r.uvarint("\(at()), entity")
                let entity: Int
                switch ref {
                case 0:
                    guard let previous else { throw fail("\(at()): entity 0 (the previous change's) on the first change of the change set") }
                    entity = previous
                case 1:
                    guard introduced < Int(entityCount) else { throw fail("\(at()): entity 1 (the next new one) after all \(entityCount) of the table were introduced") }
                    entity = introduced
                    introduced += 1
                default:
                    guard ref - 2 < entityCount else { throw fail("\(at()): entity \(ref) is outside the entity table of \(entityCount) (entity n is entry n - 2)") }
                    entity = Int(ref - 2)
                }
                previous = entity
                body.bytes.append(contentsOf: bytes[(table + 16 * entity)..<(table + 16 * entity + 16)])
                body.u8(try r.u8("\(at()), op"))
                let length = try r.uvarint("\(at()), payload length")
                guard length <= UInt64(BlockLimits.maxBlockBytes) else { throw fail("\(at()): a payload of \(length) bytes; a block is at most \(BlockLimits.maxBlockBytes)") }
                body.bytes.append(contentsOf: try r.take(Int(length), "\(at()), payload"))
                guard body.bytes.count + BlockLimits.signatureBytes <= BlockLimits.maxBlockBytes else {
                    throw fail("\(at()): tooLarge: the block is over \(BlockLimits.maxBlockBytes) bytes")
                }
            }
            body.bytes.append(contentsOf: try r.take(BlockLimits.signatureBytes, "\(at()), signature"))
            total += body.bytes.count
            guard total <= limits.maxBatchBytes else {
                throw WireError(.tooLarge, "the blocks of the compact change set come to more than \(limits.maxBatchBytes) bytes")
            }
            do { blocks.append(try Block(decoding: body.bytes)) } catch {
                throw WireError(.badBatch, "\(at()): \(error.code.rawValue): \(error.detail)")
            }
        }
        guard r.bytes.isAtEnd else { throw fail("\(r.bytes.remaining) bytes follow block \(count)") }
        return blocks
    }
}

/// The site table of a compact or columnar change set: each site once, in order of first use.
struct SiteTable {
    private(set) var index: [SiteID: Int] = [:]
    private(set) var order: [SiteID] = []

    /// The site's index, listing it first if it is new.
    mutating func callAsFunction(_ id: SiteID) -> Int {
        if let known = index[id] { return known }
        index[id] = order.count
        order.append(id)
        return order.count - 1
    }

    /// Writes a block's origin, seq, stamp, deps and change count against the table (§2.3.1 and
    /// §2.3.3 lay them out alike), listing the sites it names.
    mutating func writeHeader(of block: Block, into w: inout ByteWriter) {
        w.uvarint(UInt64(self(block.origin)))
        w.uvarint(block.seq)
        w.u64(block.hlc.rawValue)
        let deps = block.deps.sorted
        w.uvarint(UInt64(deps.count))
        for dep in deps {
            w.uvarint(UInt64(self(dep.site)))
            w.uvarint(dep.seq)
        }
        w.uvarint(UInt64(block.changes.count))
    }

    /// The table itself: its count, then each site.
    func write(into w: inout ByteWriter) {
        w.uvarint(UInt64(order.count))
        for id in order { w.string(id.rawValue) }
    }
}

/// Reads a compact change set; a failure is `bad-batch` naming what was read and the section-1 code.
struct CompactReader {
    var bytes: ByteReader
    /// What the failures call the change set.
    var label = "compact change set"

    private func failed(_ what: () -> String, _ error: CodecError) -> WireError {
        WireError(.badBatch, "\(label): \(what()): \(error.code.rawValue)")
    }

    /// Step 11a of both layouts: the site table, each site as its id and as the bytes a block holds.
    mutating func siteTable() throws(WireError) -> (ids: [SiteID], encoded: [[UInt8]]) {
        let count = try uvarint("site count")
        guard count >= 1, count <= UInt64(CompactChangeSet.maxSites) else {
            throw WireError(.badBatch, "\(label): the site table lists \(count) sites; 1 to \(CompactChangeSet.maxSites) are allowed")
        }
        var ids: [SiteID] = [], encoded: [[UInt8]] = []
        var seen = Set<SiteID>()
        for i in 0..<Int(count) {
            let id = try siteID("site \(i)")
            guard seen.insert(id).inserted else { throw WireError(.badBatch, "\(label): site \(id) is listed twice") }
            var w = ByteWriter()
            w.string(id.rawValue)
            ids.append(id)
            encoded.append(w.bytes)
        }
        return (ids, encoded)
    }

    mutating func uvarint(_ what: @autoclosure () -> String) throws(WireError) -> UInt64 {
        do { return try bytes.uvarint() } catch { throw failed(what, error) }
    }

    mutating func svarint(_ what: @autoclosure () -> String) throws(WireError) -> Int64 {
        do { return try bytes.svarint() } catch { throw failed(what, error) }
    }

    mutating func u64(_ what: @autoclosure () -> String) throws(WireError) -> UInt64 {
        do { return try bytes.u64() } catch { throw failed(what, error) }
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(WireError) -> UInt8 {
        do { return try bytes.u8() } catch { throw failed(what, error) }
    }

    mutating func uuid(_ what: @autoclosure () -> String) throws(WireError) -> UUID {
        do { return try bytes.uuid() } catch { throw failed(what, error) }
    }

    mutating func siteID(_ what: @autoclosure () -> String) throws(WireError) -> SiteID {
        do { return try bytes.siteID() } catch { throw failed(what, error) }
    }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(WireError) -> ArraySlice<UInt8> {
        do { return try bytes.take(count) } catch { throw failed(what, error) }
    }
}
