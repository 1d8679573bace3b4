import Foundation
import PropertyBased
import TestSupport
import Testing
@testable import TicketModel

@Suite struct ConvergenceProperties {
    @Test func replicasConvergeWhateverTheOrderAndRepetition() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            let blocks = randomHistory(seed: UInt64(seed))
            var rng = SplitMix(state: UInt64(seed) ^ 0xABCDEF)
            var reference: (digest: String, views: [UUID: TicketView])?
            for _ in 0..<4 {
                // A random order, with a third of the blocks delivered twice.
                var order = Array(blocks.indices).shuffled(using: &rng)
                order += order.filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }
                order.shuffle(using: &rng)
                let replica = replay(blocks, order: order)
                #expect(replica.pendingCount == 0)
                #expect(replica.vector.entries.values.reduce(0, +) == UInt64(blocks.count))
                if let reference {
                    #expect(replica.digest == reference.digest)
                    #expect(replica.tickets == reference.views)
                } else {
                    reference = (replica.digest, replica.tickets)
                }
            }
        }
    }

    @Test func foldIsOrderIndependentAndIdempotent() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            let blocks = randomHistory(seed: UInt64(seed))
            var rng = SplitMix(state: UInt64(seed))
            var byTicket: [UUID: [EntityChange]] = [:]
            for block in blocks {
                for (entity, change) in block.entityChanges { byTicket[entity.id, default: []].append(change) }
            }
            for (id, changes) in byTicket {
                let base = TicketState.fold(id: id, changes: changes)
                let shuffled = TicketState.fold(id: id, changes: changes.shuffled(using: &rng))
                let doubled = TicketState.fold(id: id, changes: changes + changes.shuffled(using: &rng))
                // Associativity: folding a union of two halves equals folding the whole.
                let split = Int.random(in: 0...changes.count, using: &rng)
                let halves = TicketState.fold(id: id, changes: Array(changes[split...]) + Array(changes[..<split]))
                #expect(shuffled == base)
                #expect(doubled == base)
                #expect(halves == base)
                #expect(shuffled.stateHash == base.stateHash)
            }
        }
    }

    @Test func differentStatesGiveDifferentDigests() {
        var pair = Pair()
        let before = pair.north.replica.digest
        #expect(before == pair.south.replica.digest)
        pair.north.write([set(pair.id, .assignee, .text("anna"))])
        #expect(pair.north.replica.digest != before)
    }
}
