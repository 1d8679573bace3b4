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
}
