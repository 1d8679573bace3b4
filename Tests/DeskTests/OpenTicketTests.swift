import Desk
import Escalation
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The Desk's "open a ticket" use case: the ticket and its SLA policy are one transaction.
@Suite struct OpenTicketTests {
    static let config = #"""
    {"policies": [{"name": "standard", "version": 1, "position": 1, "match": {}, "calendar": "24x7",
                   "clocks": {"firstResponse": {"targets": {"urgent": "30m", "high": "1h", "normal": "4h", "low": "1d"}}}}]}
    """#

    func coordinator() throws -> (TicketDatabase, HelpDesk) {
        let store = try memoryStore("hub", role: .coordinator)
        let desk = try HelpDesk(store: store)
        _ = try desk.escalation.publish(Data(Self.config.utf8), file: "policies.json", actor: "ops")
        return (store, desk)
    }

    @Test func aTicketOpensWithItsPolicyPinned() throws {
        let (store, desk) = try coordinator()
        let before = try store.vector()[SiteID("hub")]
        let ticket = try desk.open(TicketDraft(subject: "VPN drops every hour"), now: 1_790_000_000_000)
        let (state, evaluation) = try desk.escalation.evaluate(ticket.id, now: 1_790_000_000_000)
        #expect(state.events.contains { $0.event.kind == .escalation && $0.event.body.contains("sla_applied") })
        #expect(evaluation.clocks.isEmpty == false)
        // The ticket and its policy records: two blocks, one write.
        #expect(try store.vector()[SiteID("hub")] == before + 2)
    }

    /// A crash after the ticket's block but before its policy's: nothing of either is left, so no
    /// ticket can exist without its policy (issue 19).
    @Test func aCrashBetweenTheTicketAndItsPolicyLeavesNeither() throws {
        var (store, desk) = try coordinator()
        let before = try store.vector()
        let inserts = Mutex(0)
        store.faultHook = { point in
            guard point == "afterBlockInsert" else { return }
            let count = inserts.withLock { $0 += 1; return $0 }
            if count == 2 { throw CocoaError(.fileWriteUnknown) }
        }
        desk = try HelpDesk(store: store)
        #expect(throws: (any Error).self) { try desk.open(TicketDraft(subject: "Printer offline"), now: 1_790_000_000_000) }
        #expect(inserts.withLock { $0 } == 2)
        #expect(try store.tickets().isEmpty)
        #expect(try store.vector() == before)
        store.faultHook = nil
        desk = try HelpDesk(store: store)
        let ticket = try desk.open(TicketDraft(subject: "Printer offline"), now: 1_790_000_000_000)
        #expect(try desk.escalation.evaluate(ticket.id, now: 1_790_000_000_000).0.events.contains { $0.event.body.contains("sla_applied") })
    }

    @Test func withNoPolicyPublishedATicketOpensAlone() throws {
        let store = try memoryStore("north")
        let ticket = try HelpDesk(store: store).open(TicketDraft(subject: "No policy yet"), now: 1_790_000_000_000)
        #expect(ticket.displayNumber == "NORTH-1")
        #expect(try store.vector()[SiteID("north")] == 1)
    }
}
