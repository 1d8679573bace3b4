import Foundation
import SyncWire
import TestSupport
import Testing
import TicketModel

/// The columnar change set of protocol 5 (`Protocol/PROTOCOL.md` §2.3.3): its round trip, entities
/// named by a change the receiver holds, and refusals; `Protocol/vectors/columnar.json` is checked in
/// ``ColumnarVectorTests``.
@Suite struct ColumnarChangeSetTests {
    static func stampOrdered(_ blocks: [Block]) -> [Block] {
        blocks.sorted { ($0.hlc, $0.origin, $0.seq) < ($1.hlc, $1.origin, $1.seq) }
    }

    /// A history cut in two: the receiver holds `held`, and `batch` is what it lacks.
    static func split(seed: UInt64) -> (held: [Block], batch: [Block], keys: [SiteID: [UInt8]]) {
        let history = randomHistoryWithKeys(seed: seed)
        let blocks = Self.stampOrdered(history.blocks)
        let cut = blocks.count / 2
        return (Array(blocks[..<cut]), Array(blocks[cut...]), history.keys)
    }

    /// For each entity of `batch` that `held` has a change of, the smallest such change.
    static func heldChanges(_ batch: [Block], in held: [Block]) -> [UUID: Dot] {
        let wanted = Set(batch.flatMap { $0.changes.map(\.entity.id) })
        var found: [UUID: Dot] = [:]
        for block in held {
            for (index, change) in block.changes.enumerated() where wanted.contains(change.entity.id) {
                let dot = block.dot(index)
                if found[change.entity.id].map({ dot < $0 }) ?? true { found[change.entity.id] = dot }
            }
        }
        return found
    }

    /// A receiver's look-up over the blocks it holds.
    static func resolver(_ held: [Block]) -> ([Dot]) -> [UUID?] {
        let byDot = Dictionary(held.map { (Pair(site: $0.origin, seq: $0.seq), $0) }, uniquingKeysWith: { first, _ in first })
        return { dots in
            dots.map { dot in
                guard let block = byDot[Pair(site: dot.origin, seq: dot.seq)], Int(dot.index) < block.changes.count else { return nil }
                return block.changes[Int(dot.index)].entity.id
            }
        }
    }

    struct Pair: Hashable { var site: SiteID, seq: UInt64 }

    @Test func roundTripsThroughAFrameWithAndWithoutHeldEntities() throws {
        for seed: UInt64 in 1...6 {
            let (held, batch, _) = Self.split(seed: seed)
            for map in [[:], Self.heldChanges(batch, in: held)] {
                let encoded = try ChangeSet.encode(batch, batch: 2, keys: [:], format: .columnar, held: map)
                #expect(encoded.blockCount == batch.count)
                guard case .batch(let raw) = try Frame.decodeDeferringBatches(line: encoded.line) else {
                    Issue.record("not a blocks frame")
                    return
                }
                let parsed = try raw.parseColumnar()
                #expect(parsed.heldChanges.count == Set(map.values).count)
                let decoded = try raw.batch(of: try parsed.blocks(resolved: Self.resolver(held)(parsed.heldChanges)))
                #expect(decoded.blocks.map(\.bytes) == batch.map(\.bytes), "the exact signed bytes come back (seed \(seed))")
                // Stored bytes encode to the same line.
                let stored = try ChangeSet.encode(stored: batch.map { ($0.origin, $0.seq, $0.bytes) }, batch: 2, keys: [:], format: .columnar, held: map)
                #expect(stored.line == encoded.line)
            }
        }
    }

    @Test func heldEntitiesMakeItShorter() throws {
        let (held, batch, _) = Self.split(seed: 3)
        let map = Self.heldChanges(batch, in: held)
        try #require(!map.isEmpty, "the second half touches entities of the first")
        let byID = try ColumnarChangeSet.encode(batch)
        let byChange = try ColumnarChangeSet.encode(batch, held: map)
        #expect(byChange.count < byID.count)
        #expect(try ColumnarChangeSet.decode(byChange, count: batch.count, resolve: Self.resolver(held)).map(\.bytes) == batch.map(\.bytes))
    }

    @Test func aHeldEntityTheReceiverLacksIsABadBatchNamingTheChange() throws {
        let (held, batch, _) = Self.split(seed: 4)
        let map = Self.heldChanges(batch, in: held)
        let dot = try #require(map.values.min())
        let bytes = try ColumnarChangeSet.encode(batch, held: map)
        let lacking = held.filter { !($0.origin == dot.origin && $0.seq == dot.seq) }
        let error = #expect(throws: WireError.self) { try ColumnarChangeSet.decode(bytes, count: batch.count, resolve: Self.resolver(lacking)) }
        #expect(error?.code == .badBatch)
        #expect(error?.detail.contains("\(dot.origin) seq \(dot.seq)") == true, "\(String(describing: error))")
        // A receiver that resolves no held entity (the default) refuses it the same way.
        #expect(throws: WireError.self) { try ColumnarChangeSet.decode(bytes, count: batch.count) { $0.map { _ in nil } } }
    }

    /// A receiver whose change names another entity (its block differs from the sender's) puts
    /// together a block whose signature does not verify: it is refused when applied, never taken.
    @Test func aWrongLookUpMakesABlockThatFailsItsSignature() throws {
        let (held, batch, keys) = Self.split(seed: 5)
        let map = Self.heldChanges(batch, in: held)
        try #require(!map.isEmpty)
        let bytes = try ColumnarChangeSet.encode(batch, held: map)
        let decoded = try ColumnarChangeSet.decode(bytes, count: batch.count) { $0.map { _ in UUID() } }
        let changed = zip(decoded, batch).filter { $0.bytes != $1.bytes }
        #expect(!changed.isEmpty)
        for (block, _) in changed { #expect(!block.isSignatureValid(publicKey: keys[block.origin]!)) }
    }

    /// The writing rule keeps the held changes within 4096 blocks (step 11k): the 4097th entity,
    /// whose change lies in a block of its own, goes by its id, and the receiver takes the batch.
    @Test func aSenderNamesHeldChangesInAtMost4096Blocks() throws {
        let key = SiteKey.generate()
        let site = try SiteID("south"), north = try SiteID("north")
        let ids = (0..<4097).map { _ in UUID() }
        var blocks: [Block] = []
        for (seq, part) in stride(from: 0, to: ids.count, by: 256).map({ Array(ids[$0..<min($0 + 256, ids.count)]) }).enumerated() {
            let deps = seq == 0 ? VersionVector() : VersionVector([site: UInt64(seq)])
            blocks.append(try Block.make(origin: site, seq: UInt64(seq + 1), hlc: HLC(millis: 1_700_000_000_000 + UInt64(seq), counter: 0),
                                         deps: deps, changes: part.map { set($0, .deleted, .flag(true)) }, key: key))
        }
        let held = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Dot(origin: north, seq: UInt64($0 + 1), index: 0)) })
        let bytes = try ColumnarChangeSet.encode(blocks, held: held)
        let parsed = try ColumnarChangeSet.parse(bytes, count: blocks.count)
        #expect(parsed.heldChanges.count == ColumnarChangeSet.maxHeldBlocks)
        let byDot = Dictionary(uniqueKeysWithValues: held.map { ($1, $0) })
        #expect(try parsed.blocks(resolved: parsed.heldChanges.map { byDot[$0] }).map(\.bytes) == blocks.map(\.bytes))
    }

    @Test func everyTruncationAndAnyFlippedByteIsAnErrorNeverACrash() throws {
        let (held, batch, _) = Self.split(seed: 6)
        let bytes = try ColumnarChangeSet.encode(batch, held: Self.heldChanges(batch, in: held))
        let resolve = Self.resolver(held)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try ColumnarChangeSet.decode(Array(bytes[..<length]), count: batch.count, resolve: resolve) }
        }
        #expect(throws: WireError.self) { try ColumnarChangeSet.decode(bytes + [0], count: batch.count, resolve: resolve) }
        var random = SplitMix(state: 9)
        for _ in 0..<2_000 {
            var damaged = bytes
            damaged[Int(random.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            // Either refused, or blocks whose bytes differ somewhere are put together; never a trap.
            if let blocks = try? ColumnarChangeSet.decode(damaged, count: batch.count, resolve: resolve) {
                #expect(blocks.count == batch.count)
            }
        }
    }

    @Test func theWrongLayoutIsABadBatchNeverACrash() throws {
        let blocks = Self.stampOrdered(sampleBlocks(4, seed: 5).blocks)
        for (write, read) in [(ChangeSet.Format.compact, ChangeSet.Format.columnar), (.columnar, .compact), (.plain, .columnar)] {
            let line = try ChangeSet.encode(blocks, batch: 1, keys: [:], format: write).line
            do {
                _ = try Frame.decode(line: line, format: read)
                Issue.record("\(write) read as \(read)")
            } catch {
                #expect(error.code == .badBatch, "\(error)")
            }
        }
    }
}

/// `Protocol/vectors/columnar.json`, written by `Protocol/tools/make_columnar_vectors.py`, an
/// independent implementation of §2.3.3: every valid vector decodes to its blocks and encodes back to
/// its bytes (held entities by the writing rule), and every invalid one is refused with its code.
@Suite struct ColumnarVectorTests {
    struct Valid: Decodable {
        var name: String
        var count: Int
        var holds: [String]
        var columnar: String
        var blocks: [String]
    }

    struct Invalid: Decodable {
        var name: String
        var count: Int
        var holds: [String]
        var columnar: String?
        var columnarZlibBase64: String?
        var error: String
    }

    struct Framed: Decodable {
        var name: String
        var holds: [String]
        var line: String
        var blocks: [String]
    }

    struct File: Decodable {
        var valid: [Valid]
        var invalid: [Invalid]
        var frames: [Framed]
    }

    static func load() throws -> File {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Protocol/vectors/columnar.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    }

    static func blocks(_ hex: [String]) throws -> [Block] {
        try hex.map { try Block(decoding: try #require([UInt8](hex: $0))) }
    }

    @Test func decodesAndEncodesTheValidVectors() throws {
        let file = try Self.load()
        #expect(file.valid.count >= 5)
        for vector in file.valid {
            let columnar = try #require([UInt8](hex: vector.columnar), "\(vector.name)")
            let holds = try Self.blocks(vector.holds)
            let blocks = try ColumnarChangeSet.decode(columnar, count: vector.count, resolve: ColumnarChangeSetTests.resolver(holds))
            #expect(blocks.map(\.bytes.hexString) == vector.blocks, "\(vector.name): decoding")
            let held = ColumnarChangeSetTests.heldChanges(blocks, in: holds)
            #expect(try ColumnarChangeSet.encode(blocks, held: held) == columnar, "\(vector.name): encoding")
        }
    }

    @Test func refusesEveryInvalidVectorWithItsCode() throws {
        let file = try Self.load()
        #expect(file.invalid.count >= 25)
        for vector in file.invalid {
            let columnar: [UInt8]
            if let hex = vector.columnar {
                columnar = try #require([UInt8](hex: hex), "\(vector.name)")
            } else {
                let text = try #require(vector.columnarZlibBase64, "\(vector.name)")
                columnar = try #require(CompactChangeSetTests().inflated(text), "\(vector.name)")
                #expect(columnar.count <= WireLimits.standard.maxBatchBytes, "\(vector.name): only step 11k may refuse it")
            }
            let holds = try Self.blocks(vector.holds)
            do {
                _ = try ColumnarChangeSet.decode(columnar, count: vector.count, resolve: ColumnarChangeSetTests.resolver(holds))
                Issue.record("\(vector.name): decoded")
            } catch {
                #expect(error.code.rawValue == vector.error, "\(vector.name): \(error)")
            }
        }
    }

    @Test func decodesTheProtocol5Frames() throws {
        let file = try Self.load()
        #expect(file.frames.count >= 2)
        for vector in file.frames {
            guard case .batch(let raw) = try Frame.decodeDeferringBatches(line: Array(vector.line.utf8)) else {
                Issue.record("\(vector.name): not a blocks frame")
                continue
            }
            let parsed = try raw.parseColumnar()
            let batch = try raw.batch(of: try parsed.blocks(resolved: ColumnarChangeSetTests.resolver(try Self.blocks(vector.holds))(parsed.heldChanges)))
            #expect(batch.blocks.map(\.bytes.hexString) == vector.blocks, "\(vector.name)")
        }
    }
}
