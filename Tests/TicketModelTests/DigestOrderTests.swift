import Foundation
import TestSupport
import Testing
import TicketModel

/// The digest lists tickets in the order of their ids' text; it compares their bytes instead of
/// formatting the text, and must keep that order (a digest of a store is compared with an older
/// one, and between versions).
@Suite struct DigestOrderTests {
    @Test func idsCompareAsTheirTextDoes() {
        var rng = SplitMix(state: 7)
        // Random ids, and ids that differ only where a digit meets a letter (0x09/0x0a, 0x9f/0xa0)
        // or only in the last byte, where the text's dashes lie between.
        var ids = (0..<2_000).map { _ in UUID(uuid: randomBytes(&rng)) }
        for (a, b) in [(0x09, 0x0a), (0x9f, 0xa0), (0x00, 0xff)] as [(UInt8, UInt8)] {
            for position in [0, 3, 4, 5, 9, 10, 15] {
                var x = randomBytes(&rng)
                x = set(x, position, a)
                ids.append(UUID(uuid: x))
                ids.append(UUID(uuid: set(x, position, b)))
            }
        }
        #expect(ids.sorted { $0.precedesInText($1) } == ids.sorted { $0.uuidString < $1.uuidString })
        for _ in 0..<2_000 {
            let a = ids.randomElement(using: &rng)!, b = ids.randomElement(using: &rng)!
            #expect(a.precedesInText(b) == (a.uuidString < b.uuidString))
        }
    }

    @Test func theDigestDoesNotDependOnTheOrderGiven() {
        var rng = SplitMix(state: 11)
        let entries = (0..<300).map { n in
            (id: UUID(uuid: randomBytes(&rng)), stateHash: [UInt8](repeating: UInt8(n % 256), count: 32), mergedInto: n % 7 == 0 ? UUID() : nil)
        }
        let digest = TicketView.digest(entries: entries)
        #expect(TicketView.digest(entries: entries.shuffled(using: &rng)) == digest)
        #expect(TicketView.digest(entries: entries.reversed()) == digest)
        #expect(TicketView.digest(entries: Array(entries.dropLast())) != digest)
    }

    private func randomBytes(_ rng: inout SplitMix) -> uuid_t {
        var t: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &t) { for i in 0..<16 { $0[i] = UInt8.random(in: 0...255, using: &rng) } }
        return t
    }

    private func set(_ t: uuid_t, _ position: Int, _ value: UInt8) -> uuid_t {
        var t = t
        withUnsafeMutableBytes(of: &t) { $0[position] = value }
        return t
    }
}
