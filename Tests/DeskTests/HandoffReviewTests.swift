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
}
