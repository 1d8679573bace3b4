import Desk
import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel
import TicketStore

/// Handoffs across replicas: who may settle a request, and what every replica ends with when
/// answers cross (review of issue 19's `handoff_withdrawn`).
@Suite struct HandoffReviewTests {
    static let now: Int64 = 1_790_000_000_000
    let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")

    func pending(_ store: TicketDatabase, _ ticket: String, at t: Int64) throws -> [StoredRecord] {
        try HelpDesk(store: store).escalation.evaluate(ticket, now: t).1.pendingHandoffs
    }

    /// Writes `record` on `store` as an escalation event with the id `id`, bypassing the Desk.
    func forge(_ store: TicketDatabase, _ ticket: String, _ record: EscalationRecord, id: UUID = UUID()) throws {
        _ = try store.writeRecords(try store.resolve(ticket)) { _ in
            [(TicketEvent(id: id, kind: .escalation, actor: "tierline", visibility: .internal, body: record.encoded()), [])]
        }
    }

    /// North and a `receiver` in one fleet, north's ticket escalated to `tier2@RECEIVER`, and the
    /// receiver holding it.
    func escalatedFromNorth(to receiver: String, role: SiteRole) throws -> (north: TicketDatabase, receiver: TicketDatabase, ticket: String) {
        let northKey = SiteKey.generate(), receiverKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), other = try memoryStore(receiver, role: role, key: receiverKey)
        // Escalated before north adopts a roster: once it lists the receiver as a laptop, the Desk
        // refuses the request itself (issue 22); an older release could still have written one.
        let ticket = try HelpDesk(store: north).open(TicketDraft(subject: "Payroll export fails", group: "tier1"), now: Self.now)
        try HelpDesk(store: north).escalate(ticket.id, to: "tier2@\(receiver)", note: note, actor: "ana", now: Self.now)
        try admit([(north, northKey), (other, receiverKey)])
        _ = try other.apply(try north.blocks(after: try other.vector()))
        return (north, other, ticket.id)
    }

    /// `transfer` refuses a group with a space; `escalate` wrote one, and the receiver's accept then
    /// made it the ticket's group.
    @Test func escalateRefusesAGroupNameThatTransferRefuses() throws {
        let north = try memoryStore("north")
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Payroll export fails"), now: Self.now)
        for bad in ["tier 2@hub", "tier\u{1B}[2J@hub"] {
            let before = try north.vector()
            do {
                try desk.escalate(ticket.id, to: bad, note: note, actor: "ana", now: Self.now)
                Issue.record("\(bad.debugDescription) was accepted")
            } catch let error as DeskError {
                #expect(error.code == .invalidInput)
                #expect(error.field == "to")
            }
            #expect(try north.vector() == before, "a refusal writes nothing")
        }
    }

    /// North withdraws while the hub accepts, neither having seen the other: both replicas end with
    /// the request settled, the hub owning the ticket, and the requested group.
    @Test func aWithdrawalAndAnAcceptWrittenConcurrentlyConverge() throws {
        let (north, hub, id) = try escalatedFromNorth(to: "hub", role: .coordinator)
        let ticket = try north.ticket(id)
        try HelpDesk(store: north).withdraw(ticket.id, reason: "wrong site", actor: "ana", now: Self.now + 1)
        try HelpDesk(store: hub).accept(ticket.id, actor: "bo", now: Self.now + 2)
        let fromNorth = try north.blocks(after: try hub.vector()), fromHub = try hub.blocks(after: try north.vector())
        _ = try hub.apply(fromNorth)
        _ = try north.apply(fromHub)
        for store in [north, hub] {
            let record = try store.ticket(ticket.id)
            #expect(record.owningSite == "hub")
            #expect(record.group == "tier2")
            #expect(try pending(store, ticket.id, at: Self.now + 3).isEmpty)
        }
        #expect(try north.ticketState(ticket.id) == hub.ticketState(ticket.id))
    }

    /// A request fired by two sites (a derived record, same id: the owner and the coordinator's
    /// backstop while they were apart) belongs to whichever copy sorts first. The owner's withdrawal
    /// counted for nothing once the copies met, when the rule was "the requester withdraws"; the rule
    /// is now "the owning site withdraws" (PROTOCOL §3).
    @Test func aWithdrawnRequestThatAnotherSiteAlsoFiredStaysWithdrawn() throws {
        let northKey = SiteKey.generate(), hubKey = SiteKey.generate()
        let northClock = TestClock(UInt64(Self.now)), hubClock = TestClock(UInt64(Self.now))
        let north = try memoryStore("north", clock: northClock, key: northKey)
        let hub = try memoryStore("hub", role: .coordinator, clock: hubClock, key: hubKey)
        try admit([(north, northKey), (hub, hubKey)])
        let ticket = try HelpDesk(store: north).open(TicketDraft(subject: "Payroll export fails"), now: Self.now)
        _ = try hub.apply(try north.blocks(after: try hub.vector()))
        var request = EscalationRecord(type: .escalated, at: Self.now)
        request.toGroup = "tier2"
        request.toSite = "east"
        let id = UUID()
        hubClock.advance(5)
        try forge(hub, ticket.id, request, id: id)
        northClock.advance(10)
        try forge(north, ticket.id, request, id: id)
        northClock.advance(1)
        try HelpDesk(store: north).withdraw(ticket.id, reason: nil, actor: "ana", now: Self.now + 11)
        #expect(try pending(north, ticket.id, at: Self.now + 12).isEmpty)
        let fromNorth = try north.blocks(after: try hub.vector()), fromHub = try hub.blocks(after: try north.vector())
        _ = try hub.apply(fromNorth)
        _ = try north.apply(fromHub)
        let left = try pending(north, ticket.id, at: Self.now + 12)
        #expect(left.isEmpty)
    }

    /// An accept or a rejection settled a request whoever wrote it: the requester itself (or any third
    /// site) could settle it by writing a rejection the Desk would refuse to write there. Only the
    /// receiver's answer counts now (PROTOCOL §3).
    @Test func onlyTheReceiverSettlesARequestByAnswering() throws {
        let north = try memoryStore("north")
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Payroll export fails"), now: Self.now)
        try desk.escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: Self.now)
        let request = try #require(try pending(north, ticket.id, at: Self.now + 1).first)
        var rejection = EscalationRecord(type: .handoffRejected, at: Self.now + 1)
        rejection.refersTo = request.id
        rejection.toSite = "hub"
        rejection.reason = "written at north"
        try forge(north, ticket.id, rejection)
        let left = try pending(north, ticket.id, at: Self.now + 2)
        #expect(left.count == 1)
    }

    /// A laptop may not set a ticket's owning site (PROTOCOL 1.5.5): its accept wrote the record, which
    /// settled the request, while every replica skipped the owner change, so the ticket stayed where it
    /// was with its handoff answered.
    @Test func aLaptopCannotAcceptAHandoff() throws {
        let (_, lap, id) = try escalatedFromNorth(to: "lap", role: .laptop)
        let ticket = try lap.ticket(id)
        let before = try lap.vector()
        do {
            try HelpDesk(store: lap).accept(ticket.id, actor: "bo", now: Self.now + 1)
            Issue.record("a laptop accepted a handoff")
        } catch let error as DeskError {
            #expect(error.code == .notPermitted)
            // The reason is the rule by which every replica would skip the change (Authorization).
            #expect(error.message.contains("may not move a ticket's owning site"))
        }
        #expect(try lap.vector() == before, "a refusal writes nothing")
        #expect(try pending(lap, ticket.id, at: Self.now + 2).count == 1, "the request still waits for an answer")
    }
}

/// EscalationDesk throws only ``DeskError``, as HelpDesk does (ARCHITECTURE: "Both throw only
/// DeskError"): its reads passed the store's own error through.
@Suite struct EscalationDeskErrorTests {
    @Test func anUnknownTicketIsNotFound() throws {
        let desk = try EscalationDesk(store: try memoryStore("hub", role: .coordinator))
        do {
            _ = try desk.evaluate("HUB-99", now: 0)
            Issue.record("an unknown ticket was evaluated")
        } catch let error as DeskError {
            #expect(error.code == .notFound)
        } catch {
            Issue.record("\(type(of: error)) is not a DeskError: \(error)")
        }
    }
}
