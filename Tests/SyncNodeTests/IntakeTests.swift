import Foundation
@testable import SyncNode
import Synchronization
import Testing
import TicketModel

/// What the stages of an intake did, in the order they did it.
final class StageLog: Sendable {
    private let entries = Mutex<[String]>([])
    func note(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

struct BatchFailed: Error, Equatable { var batch: Int }

@Suite struct IntakeTests {
    @Test func batchesArePreparedAndAppliedOneAtATimeInOrder() async throws {
        let log = StageLog()
        var intake = BatchIntake<Int>(depth: 3)
        for batch in 1...8 {
            try await intake.enqueue(prepare: { ahead in
                // Later batches yield less, so they would overtake earlier ones if nothing kept the order.
                for _ in 0..<(10 - batch) { await Task.yield() }
                log.note("prepare \(batch)")
                #expect(ahead <= 3)
                return batch
            }) { prepared in
                log.note("apply \(prepared)")
            }
        }
        try await intake.drain()
        let prepares = log.all.filter { $0.hasPrefix("prepare") }, applies = log.all.filter { $0.hasPrefix("apply") }
        #expect(prepares == (1...8).map { "prepare \($0)" })
        #expect(applies == (1...8).map { "apply \($0)" })
        // A batch is applied only after it was prepared.
        for batch in 1...8 {
            #expect(log.all.firstIndex(of: "prepare \(batch)")! < log.all.firstIndex(of: "apply \(batch)")!)
        }
    }

    @Test func atMostDepthBatchesWaitSoEnqueueingWaitsForTheOldest() async throws {
        let log = StageLog()
        var intake = BatchIntake<Int>(depth: 2)
        for batch in 1...3 {
            try await intake.enqueue(prepare: { _ in batch }) { log.note("apply \($0)") }
        }
        // The third enqueue returned only once the first batch was handled.
        #expect(log.all.contains("apply 1"))
        try await intake.drain()
        #expect(log.all == ["apply 1", "apply 2", "apply 3"])
    }

    @Test func aFailedBatchDropsEveryLaterOneAndDrainThrowsItsError() async throws {
        let log = StageLog()
        var intake = BatchIntake<Int>(depth: 4)
        for batch in 1...4 {
            try await intake.enqueue(prepare: { _ in batch }) { prepared in
                log.note("apply \(prepared)")
                if prepared == 2 { throw BatchFailed(batch: 2) }
            }
        }
        await #expect(throws: BatchFailed(batch: 2)) { try await intake.drain() }
        #expect(log.all == ["apply 1", "apply 2"])
        try await intake.drain()
    }

    @Test func cancelStopsBatchesNotYetAppliedAndWaitsForTheOneApplying() async throws {
        let log = StageLog()
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        // Never opened: the first apply waits on it until it is cancelled.
        let (gate, gateKeeper) = AsyncStream<Void>.makeStream()
        var intake = BatchIntake<Int>(depth: 4)
        for batch in 1...3 {
            try await intake.enqueue(prepare: { _ in batch }) { prepared in
                log.note("apply \(prepared)")
                startedSignal.yield()
                for await _ in gate {}
                log.note("applied \(prepared)")
            }
        }
        for await _ in started { break }
        #expect(await intake.cancel() == nil)
        #expect(log.all == ["apply 1", "applied 1"])
        gateKeeper.finish()
    }

    @Test func originsWithABadSignatureOrNoKeyAreLeftForTheStoreToCheck() async throws {
        let good = try SiteID("good"), forged = try SiteID("forged"), stranger = try SiteID("stranger")
        let goodKey = SiteKey.generate(), forgedKey = SiteKey.generate()
        func chain(_ origin: SiteID, _ count: UInt64, key: SiteKey) throws -> [Block] {
            try (1...count).map { seq in
                var deps = VersionVector()
                if seq > 1 { deps[origin] = seq - 1 }
                return try Block.make(origin: origin, seq: seq, hlc: HLC(millis: 1_700_000_000_000, counter: UInt16(seq)), deps: deps,
                                      changes: [Change(.ticket(UUID()), .create(number: seq))], key: key)
            }
        }
        // More blocks than one chunk, so the origins' blocks are checked by several tasks.
        var forgedChain = try chain(forged, 70, key: forgedKey)
        forgedChain[66] = try chain(forged, 67, key: SiteKey.generate())[66]
        let blocks = try chain(good, 150, key: goodKey) + forgedChain + chain(stranger, 2, key: SiteKey.generate())
        let keys = [good: goodKey.publicKey, forged: forgedKey.publicKey]
        for width in [1, 2, 8] {
            let verified = await SignatureCheck.verifiedKeys(blocks, keys: keys, width: width)
            #expect(verified == [good: goodKey.publicKey], "width \(width)")
        }
        // Cancelled, the check vouches for nobody.
        let cancelled = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await SignatureCheck.verifiedKeys(blocks, keys: keys, width: 2)
        }.value
        #expect(cancelled.isEmpty)
    }

    @Test func theSkewIsThePeersClockAgainstTheMidpointOfTheRoundTrip() {
        #expect(SyncSession.skew(peerTime: 1_060, sent: 1_000, received: 1_020) == 50)
        #expect(SyncSession.skew(peerTime: 1_000, sent: 1_000, received: 1_020) == -10)
        // A wall clock that stepped back between the two readings still gives a number.
        #expect(SyncSession.skew(peerTime: 1_000, sent: 1_020, received: 1_000) == -10)
    }
}
