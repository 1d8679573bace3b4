import CompressNIO
import Foundation
import NIOCore
import SyncWire
import TestSupport
import Testing
import TicketModel

/// The compact change set of protocol 3 (`Protocol/PROTOCOL.md` §2.3.1), against its own round trip
/// and `Protocol/vectors/compact.json`, written by `Protocol/tools/make_compact_vectors.py`, an
/// independent implementation.
@Suite struct CompactChangeSetTests {
    struct Valid: Decodable {
        var name: String
        var count: Int
        var compact: String
        var blocks: [String]
    }

    struct Invalid: Decodable {
        var name: String
        var count: Int
        var compact: String?
        var compactZlibBase64: String?
        var error: String
    }

    struct Framed: Decodable {
        var name: String
        var line: String
        var blocks: [String]
    }

    struct BinaryFrame: Decodable {
        var name: String
        var line: String
        var expect: [String: String]?
        var error: String?
    }

    struct File: Decodable {
        var valid: [Valid]
        var invalid: [Invalid]
        var frames: [Framed]
        var binaryFrames: [BinaryFrame]
        var binaryInvalid: [BinaryFrame]
    }

    static func load() throws -> File {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Protocol/vectors/compact.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    }

    static func stampOrdered(_ blocks: [Block]) -> [Block] {
        blocks.sorted { ($0.hlc, $0.origin, $0.seq) < ($1.hlc, $1.origin, $1.seq) }
    }

    @Test func roundTripsThroughAFrame() throws {
        for seed: UInt64 in 1...4 {
            let blocks = Self.stampOrdered(sampleBlocks(12, seed: seed).blocks)
            let encoded = try ChangeSet.encode(blocks, batch: 3, keys: [:], format: .compact)
            guard case .blocks(let batch) = try Frame.decode(line: encoded.line, format: .compact) else {
                Issue.record("not a blocks frame")
                return
            }
            #expect(batch.blocks == blocks)
            #expect(batch.blocks.map(\.bytes) == blocks.map(\.bytes), "the exact signed bytes come back")
            #expect(batch.size == encoded.size)
            let stored = try ChangeSet.encode(stored: blocks.map { ($0.origin, $0.seq, $0.bytes) }, batch: 3, keys: [:], format: .compact)
            #expect(stored.line == encoded.line)
            #expect(stored.through == encoded.through)
        }
    }

    @Test func isSmallerThanThePlainChangeSet() throws {
        let blocks = Self.stampOrdered(sampleBlocks(12, seed: 2).blocks)
        let plain = try ChangeSet.encode(blocks, batch: 1, keys: [:])
        let compact = try ChangeSet.encode(blocks, batch: 1, keys: [:], format: .compact)
        #expect(compact.size < plain.size)
    }

    /// A page of 1 MiB of blocks whose every change touches an entity of its own comes out longer
    /// compact than plain; a receiver at the lowest limits a node may set (§2.9.1) still takes every
    /// batch, the sender sending fewer blocks per batch.
    @Test func aPageOfNewEntitiesFitsAReceiverAtTheLowestLimits() throws {
        let floor = (1 << 20) + (64 << 10)  // NodeConfiguration.minimumBatchBytes
        let key = SiteKey.generate()
        let site = try SiteID("north")
        var blocks: [Block] = []
        var total = 0
        for seq in UInt64(1)... {
            let deps = seq == 1 ? VersionVector() : VersionVector([site: seq - 1])
            let changes = (0..<BlockLimits.maxChanges).map { _ in set(UUID(), .deleted, .flag(true)) }
            let block = try Block.make(origin: site, seq: seq, hlc: HLC(millis: 1_700_000_000_000 + seq, counter: 0),
                                       deps: deps, changes: changes, key: key)
            guard total + block.bytes.count <= 1 << 20 else { break }
            total += block.bytes.count
            blocks.append(block)
        }
        #expect(try CompactChangeSet.encode(blocks).count > floor, "the page's compact form is over the floor")
        var receiver = WireLimits()
        (receiver.maxLineBytes, receiver.maxBatchBytes, receiver.maxBatchCompressedBytes) = (2 << 20, floor, floor)
        var received: [Block] = []
        var batch: UInt64 = 0
        while received.count < blocks.count, batch < 8 {
            batch += 1
            let page = blocks[received.count...].map { ($0.origin, $0.seq, $0.bytes) }
            let encoded = try ChangeSet.encode(stored: page, batch: batch, keys: [:], format: .compact)
            guard case .blocks(let frame) = try Frame.decode(line: encoded.line, limits: receiver, format: .compact) else {
                Issue.record("not a blocks frame")
                return
            }
            #expect(frame.blocks.count == encoded.blockCount && encoded.through[site] == frame.blocks.last?.seq)
            received += frame.blocks
        }
        #expect(received == blocks)
        #expect(batch == 2, "one batch of all the blocks but the last few, then the rest")
    }

    @Test func theWrongLayoutIsABadBatchNeverACrash() throws {
        let blocks = Self.stampOrdered(sampleBlocks(4, seed: 5).blocks)
        for (write, read) in [(ChangeSet.Format.plain, ChangeSet.Format.compact), (.compact, .plain)] {
            let line = try ChangeSet.encode(blocks, batch: 1, keys: [:], format: write).line
            #expect(throws: WireError.self) { try Frame.decode(line: line, format: read) }
            do { _ = try Frame.decode(line: line, format: read) } catch {
                #expect(error.code == .badBatch, "\(error)")
            }
        }
    }

    @Test func theFormatFollowsTheNegotiatedProtocol() {
        #expect(ChangeSet.Format(protocolVersion: 1) == .plain)
        #expect(ChangeSet.Format(protocolVersion: 2) == .plain)
        #expect(ChangeSet.Format(protocolVersion: 3) == .compact)
        #expect(ChangeSet.Format(protocolVersion: 4) == .compact)
        #expect(ChangeSet.Format(protocolVersion: 5) == .columnar)
        #expect(WireVersion.protocolVersion == 5 && WireVersion.minProtocolVersion == 1)
    }

    @Test func decodesAndEncodesTheValidVectors() throws {
        let file = try Self.load()
        #expect(file.valid.count >= 3)
        for vector in file.valid {
            let compact = try #require([UInt8](hex: vector.compact), "\(vector.name)")
            let blocks = try CompactChangeSet.decode(compact, count: vector.count)
            #expect(blocks.map { $0.bytes.hexString } == vector.blocks, "\(vector.name): decoding")
            #expect(try CompactChangeSet.encode(blocks) == compact, "\(vector.name): encoding")
        }
    }

    @Test func refusesEveryInvalidVectorWithItsCode() throws {
        let file = try Self.load()
        #expect(file.invalid.count >= 19)
        for vector in file.invalid {
            var compact: [UInt8]
            if let hex = vector.compact {
                compact = try #require([UInt8](hex: hex), "\(vector.name)")
            } else {
                let text = try #require(vector.compactZlibBase64, "\(vector.name)")
                compact = try #require(inflated(text), "\(vector.name)")
            }
            if vector.error == "too-large" {
                // Only step 11d may refuse it: a frame carrying it passes step 4's limit on `size`.
                #expect(compact.count <= WireLimits.standard.maxBatchBytes, "\(vector.name): \(compact.count) bytes compact")
            }
            do {
                _ = try CompactChangeSet.decode(compact, count: vector.count)
                Issue.record("\(vector.name): decoded")
            } catch {
                #expect(error.code.rawValue == vector.error, "\(vector.name): \(error)")
            }
        }
    }

    /// Counts and lengths chosen to overflow or to make the decoder allocate are refused with the
    /// code §2.3.1 gives (or the frame's `count` would get), never a trap.
    @Test func hostileCountsAndLengthsAreRefusedNeverATrap() throws {
        func refusal(_ bytes: [UInt8], count: Int = 1) -> WireError? {
            do { _ = try CompactChangeSet.decode(bytes, count: count) } catch { return error }
            return nil
        }
        /// A site table of one site, then an entity table of `entities` entries of which `ids` follow.
        func tables(entities: UInt64, ids: Int = 0) -> ByteWriter {
            var w = ByteWriter()
            w.uvarint(1)
            w.string("north")
            w.uvarint(entities)
            for _ in 0..<ids { w.uuid(UUID()) }
            return w
        }
        /// An entry's fields up to its changes: origin 0, seq 1, no deps.
        func entry(_ w: inout ByteWriter, changes: UInt64) {
            w.uvarint(0)
            w.uvarint(1)
            w.u64(1_700_000_000_000 << 16)
            w.uvarint(0)
            w.uvarint(changes)
        }
        for count in [-1, 0, Int.min] { #expect(refusal(tables(entities: 0).bytes, count: count)?.code == .badField, "count \(count)") }
        for count in [4097, Int.max] { #expect(refusal(tables(entities: 0).bytes, count: count)?.code == .tooLarge, "count \(count)") }
        for entities: UInt64 in [(1 << 20) + 1, 1 << 60, 1 << 62, .max] {
            #expect(refusal(tables(entities: entities).bytes)?.code == .badBatch, "entity count \(entities)")
        }
        var sites = ByteWriter()
        sites.uvarint(UInt64(CompactChangeSet.maxSites) + 1)
        #expect(refusal(sites.bytes)?.code == .badBatch, "8193 sites")
        var longSite = ByteWriter()
        longSite.uvarint(1)
        longSite.string(String(repeating: "a", count: 33))
        longSite.uvarint(0)
        #expect(refusal(longSite.bytes)?.code == .badBatch, "a site of 33 bytes")
        for length: UInt64 in [(1 << 20) + 1, 1 << 63, .max] {
            var w = tables(entities: 1, ids: 1)
            entry(&w, changes: 1)
            w.u8(1)
            w.uvarint(1)
            w.u8(1)
            w.uvarint(length)
            #expect(refusal(w.bytes)?.code == .badBatch, "payload length \(length)")
        }
        var big = tables(entities: 1, ids: 1)
        entry(&big, changes: 2)
        for ref: UInt64 in [1, 0] {
            big.u8(1)
            big.uvarint(ref)
            big.u8(1)
            big.uvarint(600_000)
            big.raw([UInt8](repeating: 0, count: 600_000))
        }
        big.raw([UInt8](repeating: 0, count: BlockLimits.signatureBytes))
        let refused = refusal(big.bytes)
        #expect(refused?.code == .badBatch && refused?.detail.contains("over \(BlockLimits.maxBlockBytes) bytes") == true,
                "a block put back together over 1 MiB: \(String(describing: refused))")
    }

    /// The tables only serve to put blocks back together (§2.3.1): ids that no block uses are
    /// accepted and change nothing, even a change set's worth of them.
    @Test func unusedEntityIdsMeanNothing() throws {
        let blocks = Self.stampOrdered(sampleBlocks(6, seed: 7).blocks)
        let compact = try CompactChangeSet.encode(blocks)
        var reader = ByteReader(compact)
        for _ in 0..<(try reader.uvarint()) { _ = try reader.siteID() }
        let countAt = reader.offset
        let used = Int(try reader.uvarint())
        let idsAt = reader.offset
        let unused = (4 << 20) / 16 - used - 64
        var padded = ByteWriter()
        padded.raw(Array(compact[..<countAt]))
        padded.uvarint(UInt64(used + unused))
        padded.raw(Array(compact[idsAt..<(idsAt + 16 * used)]))
        for _ in 0..<unused { padded.uuid(UUID()) }
        padded.raw(Array(compact[(idsAt + 16 * used)...]))
        #expect(try CompactChangeSet.decode(padded.bytes, count: blocks.count) == blocks)
    }

    @Test func decodesTheProtocol3Frames() throws {
        let file = try Self.load()
        for vector in file.frames {
            guard case .blocks(let batch) = try Frame.decode(line: Array(vector.line.utf8), format: .compact) else {
                Issue.record("\(vector.name): not a blocks frame")
                continue
            }
            #expect(batch.blocks.map { $0.bytes.hexString } == vector.blocks, "\(vector.name)")
        }
    }

    @Test func readsBinaryMembersInBase64AndWritesThemSoInProtocol3() throws {
        let file = try Self.load()
        for vector in file.binaryFrames {
            let frame = try Frame.decode(line: Array(vector.line.utf8))
            switch frame {
            case .auth(let signature):
                #expect(signature.hexString == vector.expect?["signature"], "\(vector.name)")
            case .vector(_, let heads):
                #expect(heads.values.first?.hash.hexString == vector.expect?["hash"], "\(vector.name)")
            default:
                Issue.record("\(vector.name): \(frame.type)")
            }
            // Written back the protocol-3 way, the line reads back to the same frame; hex reads too.
            #expect(try Frame.decode(line: frame.encodeLine(binary: .base64)) == frame, "\(vector.name)")
            #expect(try Frame.decode(line: frame.encodeLine()) == frame, "\(vector.name)")
            #expect(frame.encodeLine(binary: .base64).count < frame.encodeLine().count, "\(vector.name)")
        }
        for vector in file.binaryInvalid {
            do {
                _ = try Frame.decode(line: Array(vector.line.utf8))
                Issue.record("\(vector.name): decoded")
            } catch {
                #expect(error.code.rawValue == vector.error, "\(vector.name): \(error)")
            }
        }
    }

    /// The bytes of a base64 zlib stream, as a `blocks` frame's `data` carries them.
    func inflated(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        var buffer = ByteBuffer(bytes: data)
        guard let raw = try? buffer.decompress(with: .zlib(), maxSize: 16 << 20) else { return nil }
        return Array(raw.readableBytesView)
    }
}
