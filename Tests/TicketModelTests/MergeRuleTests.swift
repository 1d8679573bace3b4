import Foundation
import TestSupport
import Testing
@testable import TicketModel

/// Two sites that share a ticket, then write apart, then exchange blocks in both orders.
struct Pair {
    var north = SimSite("north")
    var south = SimSite("south")
    let id = ticketID(1)

    init() {
        north.write(create(id, number: 1))
        south.sync(from: north)
    }

    /// Exchanges both ways and returns the two replicas' views of the ticket.
    mutating func exchange() -> (TicketView, TicketView) {
        let n = north, s = south
        north.sync(from: s)
        south.sync(from: n)
        return (north.view(id), south.view(id))
    }
}

@Suite struct MergeRuleTests {
    @Test func concurrentTagAddAndRemoveAddWins() {
        var pair = Pair()
        pair.north.write([Change(.ticket(pair.id), .addElement(.tags, "printer"))])
        pair.south.sync(from: pair.north)
        // North removes what it saw; south re-adds concurrently.
        let observed = pair.north.observedDots(pair.id, .tags, "printer")
        #expect(observed.count == 1)
        pair.north.write([Change(.ticket(pair.id), .removeElement(.tags, "printer", observed: observed))])
        pair.south.write([Change(.ticket(pair.id), .addElement(.tags, "printer"))])
        #expect(pair.north.view(pair.id).state.tags == [])
        let (n, s) = pair.exchange()
        #expect(n.state.tags == ["printer"])
        #expect(n == s)
    }

    @Test func observedRemoveRemovesOnlyWhatWasSeen() {
        var pair = Pair()
        pair.north.write([Change(.ticket(pair.id), .addElement(.tags, "vip"))])
        pair.south.sync(from: pair.north)
        pair.south.write([Change(.ticket(pair.id), .removeElement(.tags, "vip", observed: pair.south.observedDots(pair.id, .tags, "vip")))])
        let (n, s) = pair.exchange()
        #expect(n.state.tags == [])
        #expect(s.state.tags == [])
    }

    @Test func solvedConcurrentWithUnseenCustomerMessageReopens() {
        var pair = Pair()
        pair.north.write([set(pair.id, .status, .text("solved"))])
        pair.south.write([message(pair.id, eventID(1))])
        #expect(pair.north.view(pair.id).status == .solved)
        let (n, s) = pair.exchange()
        #expect(n.status == .open)
        #expect(s.status == .open)
        #expect(n.state.events.count == 1)
        #expect(n.state.stateHash == s.state.stateHash)
    }

    @Test func solvedAfterSeeingTheMessageStaysSolved() {
        var pair = Pair()
        pair.south.write([message(pair.id, eventID(1))])
        pair.north.sync(from: pair.south)
        pair.north.write([set(pair.id, .status, .text("solved"))])
        let (n, s) = pair.exchange()
        #expect(n.status == .solved)
        #expect(s.status == .solved)
    }

    @Test func closedLeavesOnlyThroughExplicitReopen() {
        var pair = Pair()
        pair.north.write([set(pair.id, .status, .text("closed"))])
        pair.south.sync(from: pair.north)
        // A message written after seeing the close does not reopen it...
        pair.south.write([message(pair.id, eventID(2))])
        var (n, _) = pair.exchange()
        #expect(n.status == .closed)
        // ...an explicit reopen written after the close does.
        pair.north.write([set(pair.id, .status, .text("open"))])
        (n, _) = pair.exchange()
        #expect(n.status == .open)
    }

    @Test func closedBeatsConcurrentStatusWrites() {
        var pair = Pair()
        pair.south.write([set(pair.id, .status, .text("pending_customer"))])
        pair.north.write([set(pair.id, .status, .text("closed"))])
        let (n, s) = pair.exchange()
        #expect(n.status == .closed)
        #expect(s.status == .closed)
        #expect(n.state.conflicts.count == 1)
    }

    @Test func concurrentAssigneeWritesOneWinnerSameConflictEverywhere() {
        var pair = Pair()
        pair.north.write([set(pair.id, .assignee, .text("anna"))])
        pair.south.write([set(pair.id, .assignee, .text("bela"))])
        // A third replica receives the blocks in the other order.
        var third = SimSite("third")
        third.receive(pair.south.replica.blocks(after: VersionVector()))
        third.receive(pair.north.replica.blocks(after: third.replica.vector))
        let (n, s) = pair.exchange()
        let t = third.view(pair.id)
        #expect(n.state.text(.assignee) == s.state.text(.assignee))
        #expect(t.state.text(.assignee) == n.state.text(.assignee))
        #expect(n.state.conflicts.count == 1)
        #expect(n.state.conflicts == s.state.conflicts)
        #expect(t.state.conflicts == n.state.conflicts)
        let conflict = n.state.conflicts[0]
        #expect(Set([conflict.first.value, conflict.second.value]) == [.text("anna"), .text("bela")])
        #expect(conflict.winner != nil)
    }

    @Test func sequentialWritesAreNotConflicts() {
        var pair = Pair()
        pair.north.write([set(pair.id, .assignee, .text("anna"))])
        pair.south.sync(from: pair.north)
        pair.south.write([set(pair.id, .assignee, .text("bela"))])
        let (n, _) = pair.exchange()
        #expect(n.state.text(.assignee) == "bela")
        #expect(n.state.conflicts.isEmpty)
    }

    @Test func concurrentEqualValuesAreNotConflicts() {
        var pair = Pair()
        pair.north.write([set(pair.id, .priority, .text("high"))])
        pair.south.write([set(pair.id, .priority, .text("high"))])
        let (n, _) = pair.exchange()
        #expect(n.state.conflicts.isEmpty)
        #expect(n.state.priority == .high)
    }

    @Test func escalationLevelNeverDecreases() {
        var pair = Pair()
        pair.north.write([set(pair.id, .escalation, .level(cycle: 0, level: 2))])
        pair.south.sync(from: pair.north)
        // A later, lower write (a stale replica, a bug) does not bring the level down.
        pair.south.write([set(pair.id, .escalation, .level(cycle: 0, level: 1))])
        var (n, s) = pair.exchange()
        #expect(n.state.escalation == (0, 2))
        #expect(s.state.escalation == (0, 2))
        // De-escalation opens a new cycle.
        pair.south.write([set(pair.id, .escalation, .level(cycle: 1, level: 0))])
        (n, s) = pair.exchange()
        #expect(n.state.escalation == (1, 0))
    }

    @Test func owningSiteIsAMaxRegisterOnEpoch() {
        var pair = Pair()
        pair.north.write([set(pair.id, .owner, .owner(epoch: 1, site: try! SiteID("south")))])
        pair.south.write([set(pair.id, .owner, .owner(epoch: 1, site: try! SiteID("central")))])
        let (n, s) = pair.exchange()
        #expect(n.state.owner.epoch == 1)
        #expect(n.state.owner.site?.rawValue == "south")
        #expect(s.state.owner.site?.rawValue == "south")
    }

    @Test func deleteWinsOverConcurrentUndelete() {
        var pair = Pair()
        pair.north.write([set(pair.id, .deleted, .flag(true))])
        pair.south.write([set(pair.id, .deleted, .flag(false))])
        let (n, s) = pair.exchange()
        #expect(n.state.isDeleted)
        #expect(s.state.isDeleted)
    }

    @Test func mergedIntoFirstWriterWinsAndCyclesCannotForm() {
        var north = SimSite("north")
        var south = SimSite("south")
        let a = ticketID(1), b = ticketID(2), c = ticketID(3)
        north.write(create(a, number: 1) + create(b, number: 2) + create(c, number: 3))
        south.sync(from: north)
        // North merges A into B; south, concurrently and later, merges B into A, and A into C.
        north.write([set(a, .mergedInto, .ticket(b))])
        south.wall += 10
        south.write([set(b, .mergedInto, .ticket(a))])
        south.write([set(a, .mergedInto, .ticket(c))])
        let (n0, s0) = (north, south)
        north.sync(from: s0)
        south.sync(from: n0)
        for site in [north, south] {
            let views = site.replica.tickets
            #expect(views[a]!.mergedInto == b, "first writer of A's merge wins")
            #expect(views[a]!.status == .merged)
            #expect(views[b]!.mergedInto == nil, "B into A would close a cycle")
            #expect(views[b]!.mergeRejected)
            #expect(views[b]!.status != .merged)
        }
        #expect(north.replica.digest == south.replica.digest)
    }

    @Test func eventsAreNeverLost() {
        var pair = Pair()
        pair.north.write([message(pair.id, eventID(1), .agentReply, body: "Try turning it off")])
        pair.south.write([message(pair.id, eventID(2), .internalNote, body: "Known issue")])
        pair.south.write([message(pair.id, eventID(3)), message(pair.id, eventID(4), .handoffNote, body: "to L2")])
        let (n, s) = pair.exchange()
        let ids: Set<UUID> = Set(n.state.events.map(\.event.id))
        let expected: Set<UUID> = [eventID(1), eventID(2), eventID(3), eventID(4)]
        #expect(ids == expected)
        #expect(n.state.events == s.state.events)
    }
}

@Suite struct BlockTests {
    @Test func equivocationIsRefused() throws {
        var north = SimSite("north")
        let id = ticketID(9)
        let honest = north.write(create(id, number: 1))
        let forged = try Block.make(origin: north.site, seq: 1, hlc: honest.hlc, deps: VersionVector(),
                                    changes: create(id, number: 1, subject: "Different"), key: north.key)
        var replica = Replica()
        #expect(try replica.receive(honest) == .applied(1))
        #expect(try replica.receive(honest) == .duplicate)
        #expect(throws: ApplyError.self) { try replica.receive(forged) }
        do {
            _ = try replica.receive(forged)
        } catch {
            #expect(error.code == .equivocation)
        }
        #expect(replica.tickets[id]?.state.subject == "Printer offline")
    }

    @Test func tamperedBlockFailsItsSignature() throws {
        var north = SimSite("north")
        let block = north.write(create(ticketID(1), number: 1))
        #expect(block.isSignatureValid(publicKey: north.key.publicKey))
        var bytes = block.bytes
        // Flip one bit of the subject text.
        let index = block.body.lastIndex(of: UInt8(ascii: "P"))!
        bytes[index] ^= 0x01
        let tampered = try Block(decoding: bytes)
        #expect(!tampered.isSignatureValid(publicKey: north.key.publicKey))
        #expect(tampered.hash != block.hash)
        #expect(!block.isSignatureValid(publicKey: SiteKey.generate().publicKey))
        var replica = Replica()
        replica.keys[north.site] = north.key.publicKey
        #expect(throws: ApplyError(.badSignature, "the signature of north seq 1 does not match its content")) { try replica.receive(tampered) }
        #expect(replica.vector == VersionVector())
    }

    @Test func blockRoundTripsThroughItsEncoding() throws {
        var north = SimSite("north")
        let id = ticketID(3)
        north.write(create(id, number: 1))
        let block = north.write([set(id, .custom("region"), .text("emea")), set(id, .pendingUntil, .integer(-5)),
                                 Change(.ticket(id), .addElement(.watchers, "bela")), message(id, eventID(7))])
        let decoded = try Block(decoding: block.bytes)
        #expect(decoded == block)
        #expect(decoded.bytes == block.bytes)
        #expect(decoded.deps[north.site] == 1)
    }

    @Test func blockRefusesTooManyChanges() {
        let id = ticketID(1)
        let changes = (0..<(BlockLimits.maxChanges + 1)).map { Change(.ticket(id), .addElement(.tags, "t\($0)")) }
        #expect(throws: CodecError.self) {
            try Block.make(origin: try SiteID("north"), seq: 1, hlc: HLC(millis: 1, counter: 0), deps: VersionVector(),
                           changes: changes, key: SiteKey.generate())
        }
    }

    @Test func heldBackBlocksApplyOnceTheGapFills() {
        var north = SimSite("north")
        let id = ticketID(1)
        let b1 = north.write(create(id, number: 1))
        let b2 = north.write([set(id, .assignee, .text("anna"))])
        let b3 = north.write([set(id, .priority, .text("urgent"))])
        var replica = Replica()
        #expect(try! replica.receive(b3) == .held)
        #expect(try! replica.receive(b2) == .held)
        #expect(replica.vector[north.site] == 0)
        #expect(try! replica.receive(b1) == .applied(3))
        #expect(replica.pendingCount == 0)
        #expect(replica.digest == north.replica.digest)
    }

    @Test func blocksAfterVectorAreExactlyWhatIsMissing() {
        var north = SimSite("north")
        var south = SimSite("south")
        north.write(create(ticketID(1), number: 1))
        north.write([set(ticketID(1), .assignee, .text("x"))])
        south.write(create(ticketID(2), number: 1))
        north.sync(from: south)
        let all = north.replica.blocks(after: VersionVector())
        #expect(all.count == 3)
        var peer = VersionVector()
        peer[north.site] = 1
        let missing = north.replica.blocks(after: peer)
        #expect(Set(missing.map { "\($0.origin):\($0.seq)" }) == ["north:2", "south:1"])
    }
}

@Suite struct ClockTests {
    @Test func nowIsMonotonicWhenWallGoesBack() throws {
        var clock = HybridClock(last: .zero)
        let a = try clock.now(wall: 1000)
        let b = try clock.now(wall: 900)
        let c = try clock.now(wall: 1000)
        #expect(a < b && b < c)
        #expect(b.millis == 1000 && b.counter == 1)
    }

    @Test func receiveMovesPastRemoteAndRefusesFarFuture() throws {
        var clock = HybridClock(last: .zero, maxDrift: 60_000)
        let remote = HLC(millis: 5_000, counter: 7)
        let after = try clock.receive(remote, wall: 4_000)
        #expect(after > remote)
        #expect(try clock.now(wall: 4_000) > remote)
        #expect(throws: ModelError.self) { try clock.receive(HLC(millis: 200_000, counter: 0), wall: 4_000) }
    }

    @Test func stampsTieBreakBySite() throws {
        let hlc = HLC(millis: 10, counter: 0)
        #expect(Stamp(hlc: hlc, site: try SiteID("alpha")) < Stamp(hlc: hlc, site: try SiteID("beta")))
        #expect(!SiteID.isValid("North"))
        #expect(!SiteID.isValid("1abc"))
        #expect(SiteID.isValid("branch-7"))
    }
}

@Suite struct EncodingRuleTests {
    @Test func namesMustBeNFC() {
        let kelvin = "\u{212A}elvin"
        #expect(!kelvin.isNFC)
        #expect(throws: CodecError.self) {
            try Block.make(origin: try SiteID("north"), seq: 1, hlc: HLC(millis: 1, counter: 0), deps: VersionVector(),
                           changes: [Change(.ticket(ticketID(1)), .addElement(.tags, kelvin))], key: SiteKey.generate())
        }
    }

    @Test func observedDotWithSeqZeroIsRefused() {
        let dot = Dot(origin: try! SiteID("north"), seq: 0, index: 0)
        #expect(throws: CodecError(.invalidValue, "an observed dot with seq 0 names no block")) {
            try Block.make(origin: try SiteID("north"), seq: 1, hlc: HLC(millis: 1, counter: 0), deps: VersionVector(),
                           changes: [Change(.ticket(ticketID(1)), .removeElement(.tags, "vip", observed: [dot]))], key: SiteKey.generate())
        }
    }

    @Test func oversizedBlockIsRefusedBeforeSigningAndThePlannerSplitsIt() throws {
        let id = ticketID(1)
        let body = String(repeating: "x", count: BlockLimits.maxBodyBytes)
        let changes = (0..<20).map { message(id, eventID(UInt8($0)), body: body) }
        #expect(throws: CodecError.self) {
            try Block.make(origin: try SiteID("north"), seq: 1, hlc: HLC(millis: 1, counter: 0), deps: VersionVector(),
                           changes: changes, key: SiteKey.generate())
        }
        let planned = BlockPlanner.split(changes)
        #expect(planned.count == 2)
        #expect(planned.flatMap { $0 } == changes)
    }

    @Test func plannerStartsANewBlockForASecondSetOfOneField() {
        let id = ticketID(1)
        let planned = BlockPlanner.split([set(id, .assignee, .text("a")), set(id, .priority, .text("high")), set(id, .assignee, .text("b"))])
        #expect(planned.map(\.count) == [2, 1])
    }
}

@Suite struct ReviewedRuleTests {
    @Test func textValuesConflictByTheirBytesNotByUnicodeEquivalence() {
        var pair = Pair()
        pair.north.write([set(pair.id, .assignee, .text("Jos\u{E9}"))])
        pair.south.write([set(pair.id, .assignee, .text("Jose\u{301}"))])
        let (n, s) = pair.exchange()
        #expect(n.state.conflicts.count == 1)
        #expect(n.state.stateHash == s.state.stateHash)
    }

    @Test func aRemoveIgnoresDotsItsAuthorHadNotSeen() {
        var pair = Pair()
        // South adds a tag north has not seen; a (faulty) remove from north names that add's dot.
        let add = pair.south.write([Change(.ticket(pair.id), .addElement(.tags, "vip"))])
        pair.north.write([Change(.ticket(pair.id), .removeElement(.tags, "vip", observed: [add.dot(0)]))])
        let (n, s) = pair.exchange()
        #expect(n.state.tags == ["vip"])
        #expect(s.state.tags == ["vip"])
    }

    @Test func concurrentDeleteAndUndeleteShowAConflict() {
        var pair = Pair()
        pair.north.write([set(pair.id, .deleted, .flag(true))])
        pair.south.write([set(pair.id, .deleted, .flag(false))])
        let (n, _) = pair.exchange()
        #expect(n.state.conflicts.map(\.field) == [.deleted])
    }
}

@Suite struct VersionVectorTests {
    @Test func lackingCountsAndSaturates() throws {
        let a = try SiteID("a"), b = try SiteID("b")
        #expect(VersionVector([a: 3]).lacking(from: VersionVector([a: 5, b: 2])) == 4)
        #expect(VersionVector([a: 9]).lacking(from: VersionVector([a: 5])) == 0)
        // A crafted vector from a peer must not trap.
        let huge = VersionVector([a: UInt64(Int64.max), b: UInt64(Int64.max)])
        #expect(VersionVector().lacking(from: huge) == Int.max)
    }
}
