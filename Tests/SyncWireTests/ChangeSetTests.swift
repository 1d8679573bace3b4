import CompressNIO
import Foundation
import NIOCore
import SyncWire
import TestSupport
import Testing
import TicketModel

/// Signed blocks from several sites, for change sets.
func sampleBlocks(_ count: Int = 3, seed: UInt64 = 1) -> (blocks: [Block], keys: [SiteID: [UInt8]]) {
    let history = randomHistoryWithKeys(seed: seed)
    let blocks = Array(history.blocks.prefix(count))
    let origins = Set(blocks.map(\.origin))
    return (blocks, history.keys.filter { origins.contains($0.key) })
}

@Suite struct ChangeSetTests {
    @Test func roundTripsAtEveryLevel() throws {
        let (blocks, keys) = sampleBlocks(5)
        for level: Int32 in [1, 6, 9] {
            let encoded = try ChangeSet.encode(blocks, batch: 7, keys: keys, level: level)
            let frame = try Frame.decode(line: encoded.line)
            guard case .blocks(let batch) = frame else { Issue.record("not a blocks frame"); return }
            #expect(batch.blocks == blocks)
            #expect(batch.batch == 7)
            #expect(batch.keys == keys)
            #expect(batch.size == encoded.size)
        }
    }

    @Test func storedBytesEncodeToTheSameLineAsTheirBlocks() throws {
        let blocks = sampleBlocks(6, seed: 3).blocks.sorted { ($0.hlc, $0.origin, $0.seq) < ($1.hlc, $1.origin, $1.seq) }
        let fromBlocks = try ChangeSet.encode(blocks, batch: 2, keys: [:])
        let fromBytes = try ChangeSet.encode(stored: blocks.map { ($0.origin, $0.seq, $0.bytes) }, batch: 2, keys: [:])
        #expect(fromBytes.line == fromBlocks.line)
        #expect(fromBytes.size == fromBlocks.size && fromBytes.blockCount == blocks.count)
        var through = VersionVector()
        for block in blocks { through[block.origin] = max(through[block.origin], block.seq) }
        #expect(fromBytes.through == through)
        guard case .blocks(let batch) = try Frame.decode(line: fromBytes.line) else { Issue.record("not a blocks frame"); return }
        #expect(batch.blocks == blocks)
    }

    @Test func theCompressedLengthIsCountedWithoutDecoding() {
        for bytes in 0...9 {
            let text = Data(repeating: 0xA5, count: bytes).base64EncodedString()
            #expect(ChangeSet.decodedLength(base64: text) == bytes, "\(text)")
        }
    }

    @Test func aBatchOverTheCompressedLimitIsTooLargeBeforeAnyDecoding() throws {
        // A node configured with a lower maxBatchCompressedBytes refuses the frame from its header,
        // like `count` and `size`; the default never refuses a line that fits in maxLineBytes.
        var limits = WireLimits.standard
        limits.maxBatchCompressedBytes = 1000
        let data = String(repeating: "A", count: 1338) + "=="  // 1340 characters: 1005 bytes, less 2 of padding
        let line = #"{"type":"blocks","batch":1,"count":1,"size":10,"data":"\#(data)"}"#
        #expect(ChangeSet.decodedLength(base64: data) == 1003)
        do {
            _ = try Frame.decodeDeferringBatches(line: Array(line.utf8), limits: limits)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .tooLarge)
            #expect(error.detail.contains("limit is 1000"), "\(error.detail)")
        }
        limits.maxBatchCompressedBytes = 1003
        guard case .batch = try Frame.decodeDeferringBatches(line: Array(line.utf8), limits: limits) else {
            Issue.record("not a batch")
            return
        }
        #expect(WireLimits.standard.maxBatchCompressedBytes * 4 / 3 == WireLimits.standard.maxLineBytes,
                "by default the compressed limit is what a full line can carry")
    }
}
