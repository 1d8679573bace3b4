import Desk
import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel
import TicketStore

/// What `escalate` refuses before it writes (issue 22): a request to a site the roster does not list,
/// or to a laptop, would stay pending on every replica for ever.
@Suite struct HandoffTargetTests {
    static let now: Int64 = 1_790_000_000_000
    let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")

    /// North, the hub (coordinator), a silent site `south` and a laptop `lap`, in one roster.
    func fleet() throws -> (north: TicketDatabase, hub: TicketDatabase) {
        let keys = (0..<4).map { _ in SiteKey.generate() }
        let north = try memoryStore("north", key: keys[0]), hub = try memoryStore("hub", role: .coordinator, key: keys[1])
        let south = try memoryStore("south", key: keys[2]), lap = try memoryStore("lap", role: .laptop, key: keys[3])
        try admit([(north, keys[0]), (hub, keys[1]), (south, keys[2]), (lap, keys[3])])
        return (north, hub)
    }

    func refusal(_ body: () throws -> Void) throws -> DeskError {
        try #require(throws: DeskError.self) { try body() }
    }

    @Test func aSiteTheRosterDoesNotListIsRefusedNamingTheKnownOnes() throws {
        let (north, _) = try fleet()
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Badge printer jams", group: "tier1"), now: Self.now)
        let before = try north.vector()
        let error = try refusal { try desk.escalate(ticket.id, to: "tier2@hbu", note: note, actor: "ana", now: Self.now + 1) }
        #expect(error.code == .invalidInput)
        #expect(error.field == "to")
        #expect(error.message.contains("hbu is not a site of the roster (known: hub, lap, north, south)"))
        #expect(error.message.contains("Did you mean \"hub\"?"))
        #expect(try north.vector() == before, "a refusal writes nothing")
        #expect(try desk.escalation.evaluate(ticket.id, now: Self.now + 2).1.pendingHandoffs.isEmpty)
    }

    @Test func aLaptopIsRefusedAsAReceiverWithTheReasonEveryReplicaWouldSkipItsAccept() throws {
        let (north, _) = try fleet()
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Badge printer jams"), now: Self.now)
        let before = try north.vector()
        let error = try refusal { try desk.escalate(ticket.id, to: "tier2@lap", note: note, actor: "ana", now: Self.now + 1) }
        #expect(error.code == .notPermitted)
        #expect(error.message.contains("lap is a laptop"))
        #expect(error.message.contains("may not move a ticket's owning site"))
        #expect(try north.vector() == before, "a refusal writes nothing")
    }

    /// A site the roster has made a laptop accepts nothing, whatever role it was initialised with:
    /// replicas judge its change of the owning site by the roster's role.
    @Test func aSiteTheRosterMadeALaptopIsRefusedItsAccept() throws {
        let hubKey = SiteKey.generate(), westKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey), west = try memoryStore("west", key: westKey)
        try admit([(hub, hubKey), (west, westKey)])
        let demoted = try hub.editRoster { roster in
            roster.sites = roster.sites.map { member in
                var member = member
                if member.site == "west" { member.role = .laptop }
                return member
            }
        }
        try west.adopt(document: demoted.document, signature: demoted.signature)
        let desk = try HelpDesk(store: west)
        let ticket = try desk.open(TicketDraft(subject: "Badge printer jams"), now: Self.now)
        let error = try refusal { try desk.accept(ticket.id, actor: "ana", now: Self.now + 1) }
        #expect(error.code == .notPermitted, "\(error.message)")
        #expect(error.message.contains("is a laptop (west)"), "\(error.message)")
    }

    /// A request to a listed site that never answers: the owning site withdraws it.
    @Test func aRequestToASilentSiteIsWithdrawnByTheOwningSite() throws {
        let (north, _) = try fleet()
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Badge printer jams"), now: Self.now)
        try desk.escalate(ticket.id, to: "tier2@south", note: note, actor: "ana", now: Self.now + 1)
        #expect(try desk.escalation.evaluate(ticket.id, now: Self.now + 2).1.pendingHandoffs.count == 1)
        // Rejecting it here, where it cannot be answered, points to the withdraw.
        let refusal = try #require(throws: DeskError.self) { try desk.reject(ticket.id, reason: "no", actor: "ana", now: Self.now + 2) }
        #expect(refusal.message.contains("answer it there, or take it back here with `tierline handoff withdraw"), "\(refusal.message)")
        try desk.withdraw(ticket.id, reason: "south is closed", actor: "ana", now: Self.now + 3)
        #expect(try desk.escalation.evaluate(ticket.id, now: Self.now + 4).1.pendingHandoffs.isEmpty)
    }

    /// Records at one millisecond read in the order they were written (their hybrid clock), not by
    /// their random ids: two transfers in one millisecond print in either order otherwise.
    @Test func recordsAtOneInstantReadInTheOrderTheyWereWritten() throws {
        let north = try memoryStore("north")
        let desk = try HelpDesk(store: north)
        // Eight tickets: random ids would agree with the write order in all eight 1 time in 256.
        for i in 0..<8 {
            let ticket = try desk.open(TicketDraft(subject: "Ticket \(i)", group: "a"), now: Self.now)
            for group in ["b", "c", "d"] { try desk.transfer(ticket.id, group: group, reason: nil, actor: "ana", now: Self.now + 1) }
            let (state, evaluation) = try desk.escalation.evaluate(ticket.id, now: Self.now + 2)
            let history = SLAReport(state, evaluation, now: Self.now + 2).history.filter { $0.type == "transferred" }.map(\.text)
            #expect(history == ["transferred a → b", "transferred b → c", "transferred c → d"])
        }
    }
}
