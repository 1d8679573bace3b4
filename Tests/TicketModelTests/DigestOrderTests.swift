import Crypto
import Foundation
import TestSupport
import Testing
import TicketModel

/// The digest lists tickets in the order of their ids' text, compared as bytes (`textPrecedes`,
/// whose order `TextCodecTests` holds equal to the text's): a digest of a store is compared with an
/// older one, and between versions.
@Suite struct DigestOrderTests {
    @Test func theDigestDoesNotDependOnTheOrderGiven() {
        var rng = SplitMix(state: 11)
        let entries = (0..<300).map { n in
            (id: UUID(uuid: randomBytes(&rng)), stateHash: [UInt8](repeating: UInt8(n % 256), count: 32), mergedInto: n % 7 == 0 ? UUID() : nil)
        }
        let digest = TicketView.digest(entries: entries)
        #expect(TicketView.digest(entries: entries.shuffled(using: &rng)) == digest)
        #expect(TicketView.digest(entries: entries.reversed()) == digest)
        #expect(TicketView.digest(entries: Array(entries.dropLast())) != digest)
        // The digest an earlier version computed, sorting by the ids' upper-case text.
        var hasher = SHA256()
        for entry in entries.sorted(by: { $0.id.uuidString < $1.id.uuidString }) {
            hasher.update(data: TicketView.digestEntry(id: entry.id, stateHash: entry.stateHash, mergedInto: entry.mergedInto))
        }
        #expect(digest == Array(hasher.finalize()).hexString)
    }

    private func randomBytes(_ rng: inout SplitMix) -> uuid_t {
        var t: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &t) { for i in 0..<16 { $0[i] = UInt8.random(in: 0...255, using: &rng) } }
        return t
    }
}
