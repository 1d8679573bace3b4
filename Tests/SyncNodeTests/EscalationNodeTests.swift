import Desk
import Escalation
import Foundation
@testable import SyncNode
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A coordinator configuration with short timers: first response in 3 s on a 24×7 calendar, a
/// breach starts a one-level ladder, and the coordinator steps in after 1 s of silence.
private let fastConfig = #"""
{
  "ladders": [{"name": "fast", "version": 1, "loops": 0, "calendar": "24x7",
               "levels": [{"delay": "0", "targets": ["lead@north"], "assignment": "notify", "actions": ["watch:lead"]}]}],
  "policies": [{"name": "fast", "version": 1, "position": 1, "calendar": "24x7", "ladder": "fast",
                "clocks": {"firstResponse": {"targets": {"normal": "3s"}, "onBreach": ["escalate"]}}}],
  "matrix": {"version": 1, "grace": "1s", "entries": []}
}
"""#

private func records(_ db: TicketDatabase, _ ref: String) throws -> [(id: UUID, record: EscalationRecord, site: SiteID)] {
    try db.ticketState(ref).events.compactMap { entry in
        guard entry.event.kind == .escalation, let record = EscalationRecord.decode(entry.event.body) else { return nil }
        return (entry.event.id, record, entry.stamp.site)
    }
}

@Suite(.serialized) struct EscalationNodeTests {
    @Test func theCoordinatorFiresForASilentSiteAndThePartitionHealsToOneEvent() async throws {
        let central = try TestSite("central", role: .coordinator), north = try TestSite("north")
        try admit(central, north)
        let published = try EscalationDesk(store: central.db).publish(Data(fastConfig.utf8), file: "fast.json", actor: "ops")
        #expect(published.count == 3)
        let hub = try #require(try await central.start(escalationMillis: 100))
        // North's ticker is off until the partition heals: north is the silent site, whatever the time
        // the steps below take (on a busy machine the 3 s target may pass before north goes offline,
        // and north's own ticker would then fire the level first). The coordinator's backstop fires
        // only for a site that is not connected, so nothing fires while north is online.
        try await north.start(listen: false, peers: [hub], escalationMillis: 0)
        defer { Task { await north.stop(); await central.stop() } }
        try await eventually(60, "the configuration reaches north") { try north.db.configBodies().count == 3 }

        let ticket = try north.db.createTicket(TicketDraft(subject: "VPN down", firstMessage: "cannot connect"))
        try EscalationDesk(store: north.db).applyPolicy(UUID(uuidString: ticket.id)!, now: Int64(TicketDatabase.systemMillis()))
        try await eventually(60, "central holds the ticket with its pinned policy") {
            (try? records(central.db, ticket.id).contains { $0.record.type == .slaApplied }) == true
        }
        // North goes offline; it had written no escalation record of its own.
        await north.stop()
        #expect(try records(north.db, ticket.id).allSatisfy { $0.record.type == .slaApplied }, "north stayed silent")

        try await eventually(60, "the coordinator fires the level for silent north") {
            try records(central.db, ticket.id).contains { $0.record.type == .levelFired }
        }
        let fired = try records(central.db, ticket.id).filter { $0.record.type == .levelFired }
        #expect(fired.count == 1)
        #expect(fired.first?.site.rawValue == "central", "the coordinator fired it")

        // Offline, north's own ticker derives the same facts and writes its own copies.
        let own = try EscalationDesk(store: north.db).tick(now: Int64(TicketDatabase.systemMillis()))
        let ownIDs = Set(own.values.flatMap { $0.map(\.id) })
        #expect(ownIDs.isSuperset(of: Set(fired.map(\.id))), "north derived the same level event id")

        // The partition heals: every replica holds one event per id and the same state.
        try await north.start(listen: false, peers: [hub], escalationMillis: 100)
        try await eventually(60, "both replicas converge") { try north.db.digest() == central.db.digest() }
        for db in [north.db, central.db] {
            let all = try records(db, ticket.id)
            #expect(Set(all.map(\.id)).count == all.count)
            #expect(all.filter { $0.record.type == .levelFired }.count == 1)
            #expect(all.filter { $0.record.type == .slaBreach }.count == 1)
            #expect(try db.ticket(ticket.id).escalationLevel == 1)
            #expect(try db.ticket(ticket.id).watchers == ["lead"])
        }
        await north.stop()
        await central.stop()
    }

    @Test func aHandoffRequestedAtOneSiteAndAcceptedAtAnotherMovesTheOwningSite() async throws {
        let central = try TestSite("central", role: .coordinator), north = try TestSite("north"), south = try TestSite("south")
        try admit(central, north, south)
        let hub = try #require(try await central.start(escalationMillis: 0))
        try await north.start(listen: false, peers: [hub], escalationMillis: 0)
        try await south.start(listen: false, peers: [hub], escalationMillis: 0)
        defer { Task { await north.stop(); await south.stop(); await central.stop() } }

        let ticket = try north.db.createTicket(TicketDraft(subject: "Invoice disputed", customer: "acme"))
        let note = HandoffNote(summary: "double charge in March", verifiedFacts: "two card payments on 03-02",
                               stepsTried: "refund tool refused", requestedAction: "refund one payment")
        let now = { Int64(TicketDatabase.systemMillis()) }
        _ = try HelpDesk(store: north.db).escalate(ticket.id, to: "billing-l2@central", note: note, actor: "ana", now: now())
        #expect(try north.db.ticket(ticket.id).owningSite == "north", "the origin keeps the ticket until the receiver accepts")

        // South too: otherwise its refusal below could be "unknown ticket" rather than "not for this site".
        try await eventually(60, "central and south see the pending handoff") {
            try [central, south].allSatisfy { site in
                (try? EscalationDesk(store: site.db).evaluate(ticket.id, now: now()).1.pendingHandoffs.count) == 1
            }
        }
        // Only the receiving site can accept.
        #expect(throws: DeskError.self) { try HelpDesk(store: south.db).accept(ticket.id, actor: "sam", now: now()) }
        _ = try HelpDesk(store: central.db).accept(ticket.id, actor: "bo", now: now())

        try await eventually(60, "every replica has central as the owning site") {
            try [north, central, south].allSatisfy { site in
                let t = try site.db.ticket(ticket.id)
                return t.owningSite == "central" && t.owningEpoch == 1 && t.group == "billing-l2"
            }
        }
        try await eventually(60, "the replicas converge") { Set(try [north, central, south].map { try $0.db.digest() }).count == 1 }
        let history = try records(south.db, ticket.id)
        #expect(history.map(\.record.type) == [.escalated, .handoffAccepted])
        #expect(history.first?.record.note == note)
        #expect(try EscalationDesk(store: north.db).evaluate(ticket.id, now: now()).1.pendingHandoffs.isEmpty)
        await north.stop(); await south.stop(); await central.stop()
    }
}
