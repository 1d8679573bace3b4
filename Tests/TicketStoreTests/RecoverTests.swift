import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// `tierline recover --from COPY --store NEW`: a copied store's unsynced work, re-issued in a new store.
@Suite struct RecoverTests {
    /// A laptop store (site field) that was copied after its first ticket; each store then wrote on,
    /// the fleet heard the original, and a peer showed the copy the original's block 2, so the copy
    /// writes nothing more. `fresh` is the new store for the copied machine (site field2), holding
    /// what the fleet holds of field, as `recover` requires.
    struct CopiedLaptop {
        let copy: TicketDatabase
        let fresh: TicketDatabase
        /// The ticket written before the copy, held by all three stores.
        let shared: TicketRecord
    }

    /// `work` is what the copy writes after it was copied, before it is found out.
    func copiedLaptop(_ work: (TicketDatabase, TicketRecord) throws -> Void) throws -> CopiedLaptop {
        let clock = TestClock()
        let key = SiteKey.generate()
        let field = try SiteID("field")
        let original = try makeStore("field", clock: clock, key: key)
        let shared = try original.createTicket(TicketDraft(subject: "before the copy"))
        let copyQueue = try DatabaseQueue()
        try original.writer.backup(to: copyQueue)
        let copy = try TicketDatabase(copyQueue, key: key, wallClock: { clock.now })
        clock.advance(1000)
        _ = try original.createTicket(TicketDraft(subject: "written by the original"))
        try work(copy, shared)
        let evidence = try #require(try original.storedBlock(origin: field, seq: 2))
        guard case .recorded = try copy.recordFork(evidence, peer: try SiteID("north"), address: "test", now: clock.now) else {
            throw StoreError(.invalidInput, "the copy did not record the divergence")
        }
        let fresh = try makeStore("field2", clock: clock)
        try fresh.learn(keys: [field: key.publicKey])
        _ = try fresh.apply(try original.blocks(after: VersionVector()))
        return CopiedLaptop(copy: copy, fresh: fresh, shared: shared)
    }

    @Test func aSecondRecoverFromTheSameCopyIsRefusedAndIssuesNothingTwice() throws {
        let laptop = try copiedLaptop { copy, _ in
            _ = try copy.createTicket(TicketDraft(subject: "written by the copy"))
            _ = try copy.createTicket(TicketDraft(subject: "also written by the copy"))
        }
        let first = try laptop.fresh.reissue(from: laptop.copy)
        #expect(first.blocksRead == [2, 3])
        #expect(first.tickets.map(\.now) == ["FIELD2-1", "FIELD2-2"])
        #expect(try laptop.fresh.tickets().count == 4)
        let digest = try laptop.fresh.digest()

        do {
            let again = try laptop.fresh.reissue(from: laptop.copy)
            Issue.record("a second recover re-issued \(again.blocksRead) again")
        } catch let error as StoreError {
            #expect(error.code == .refusedWrite)
            #expect(error.detail.contains("already re-issued"), "\(error.detail)")
            #expect(error.detail.contains("seq 2, 3") && error.detail.contains("field2's blocks 1 to 2"), "\(error.detail)")
            #expect(error.detail.contains("tierline sync"), "it says what to do: \(error.detail)")
        }
        #expect(try laptop.fresh.digest() == digest, "nothing was written")
        #expect(try laptop.fresh.tickets().count == 4)
    }

    @Test func aRecoverCutShortIsTakenUpWhereItStopped() throws {
        // The copy tags the shared ticket, then removes the tag: the removal names the addition, which the
        // recover re-issues under field2's own dot; the removal must name that one.
        let laptop = try copiedLaptop { copy, shared in
            _ = try copy.tag(shared.id, add: ["urgent"], remove: [])
            _ = try copy.tag(shared.id, add: [], remove: ["urgent"])
            _ = try copy.createTicket(TicketDraft(subject: "written by the copy"))
        }
        // The first recover fails while it writes the copy's second block: the first stays re-issued.
        let writes = Mutex(0)
        var interrupted = laptop.fresh
        interrupted.faultHook = { point in
            if point == "beforeCommit", writes.withLock({ $0 += 1; return $0 }) == 2 { throw Fault() }
        }
        #expect(throws: Fault.self) { try interrupted.reissue(from: laptop.copy) }
        #expect(try laptop.fresh.ticket(laptop.shared.id).tags == ["urgent"])

        let resumed = try laptop.fresh.reissue(from: laptop.copy)
        #expect(resumed.alreadyReissued == [2])
        #expect(resumed.blocksRead == [3, 4])
        #expect(resumed.tickets.map(\.now) == ["FIELD2-1"])
        #expect(try laptop.fresh.ticket(laptop.shared.id).tags == [], "the removal names the re-issued addition")
        #expect(try laptop.fresh.tickets().count == 3)
        #expect(throws: StoreError.self) { try laptop.fresh.reissue(from: laptop.copy) }
    }
}
