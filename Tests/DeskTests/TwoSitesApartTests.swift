import Desk
import Foundation
import Testing
import TestSupport
import TicketModel
import TicketStore

/// Two sites work on the same tickets while apart, then exchange what each lacks: the merge
/// outcomes an agent sees (issue 19 moved these checks here from `Tests/CLI/two-stores.sh`, which
/// keeps what only the binary shows: files, exit codes, `--json`).
@Suite struct TwoSitesApartTests {
    static let now: Int64 = 1_790_000_000_000

    /// North and south in one roster, each with its help desk.
    func sites() throws -> (north: TicketDatabase, south: TicketDatabase) {
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", role: .laptop, key: southKey)
        try admit([(north, northKey), (south, southKey)])
        return (north, south)
    }

    /// Each side applies exactly the blocks the other lacks; both must apply all of them.
    func exchange(_ a: TicketDatabase, _ b: TicketDatabase) throws {
        let toB = try a.blocks(after: try b.vector()), toA = try b.blocks(after: try a.vector())
        let intoB = try b.apply(toB), intoA = try a.apply(toA)
        #expect(intoB.applied == toB.count && intoB.held == 0 && intoB.refused.isEmpty)
        #expect(intoA.applied == toA.count && intoA.held == 0 && intoA.refused.isEmpty)
    }

    @Test func concurrentEditsMergeWithoutLosingAnything() throws {
        let (north, south) = try sites()
        let n = try HelpDesk(store: north), s = try HelpDesk(store: south)
        let a = try n.open(TicketDraft(subject: "Printer on fire", priority: .high, customer: "c-100@example.com", channel: "email",
                                       tags: ["printer", "hw"]), now: Self.now)
        let b = try n.open(TicketDraft(subject: "VPN down", priority: .urgent, tags: ["network"], firstMessage: "VPN drops every minute"),
                           now: Self.now)
        try exchange(north, south)

        // Apart: both assign A, north removes a tag south adds again, north solves B while south
        // takes down a customer message on it, and each side writes comments and tickets of its own.
        _ = try n.update(a.id, FieldUpdate(assignee: "alice"), actor: "ana")
        _ = try s.update(a.id, FieldUpdate(assignee: "bob"), actor: "ana")
        #expect(try n.tag(a.id, add: [], remove: ["printer"], actor: "ana").tags == ["hw"])
        _ = try s.tag(a.id, add: ["printer"], remove: [], actor: "ana")
        #expect(try n.update(b.id, FieldUpdate(status: .solved), actor: "ana").ticket.status == "solved")
        try s.customerMessage(b.id, body: "customer-south: still broken after the fix", actor: "customer")
        let c = try s.open(TicketDraft(subject: "Laptop battery swollen", priority: .low, tags: ["hw"]), now: Self.now)
        try n.reply(a.id, body: "north-reply: technician on the way", actor: "ana")
        try n.note(a.id, body: "north-note: toner recall", actor: "ana")
        try s.reply(a.id, body: "south-reply: laptop user confirms fire", actor: "sam")
        try s.reply(c.id, body: "south-reply: replacement ordered", actor: "sam")
        #expect(try north.digest() != south.digest())

        try exchange(north, south)
        #expect(try north.digest() == south.digest())
        #expect(try north.vector() == south.vector())
        for id in [a.id, b.id, c.id] { #expect(try north.ticket(id) == south.ticket(id)) }

        // A: one conflict on the assignee naming both, with the same id everywhere.
        for store in [north, south] {
            let detail = try store.detail(a.id)
            let conflicts = detail.events.filter { $0.kind == .conflict && $0.body.contains("alice") && $0.body.contains("bob") }
            #expect(conflicts.count == 1)
            #expect(["alice", "bob"].contains(detail.ticket.assignee ?? ""))
            // South's re-add of the tag wins over north's remove, which had not seen it.
            #expect(detail.ticket.tags == ["hw", "printer"])
        }
        #expect(try north.detail(a.id).events.filter { $0.kind == .conflict }.map(\.id)
                == south.detail(a.id).events.filter { $0.kind == .conflict }.map(\.id))
        // B: the customer's message, unseen by the agent who solved it, opens the ticket again.
        #expect(try north.ticket(b.id).status == "open" && south.ticket(b.id).status == "open")
        // Every comment from both sides is there, with its site and kind.
        let expected: [(String, String, String, HistoryItem.Kind)] = [
            (a.id, "north", "north-reply: technician on the way", .agentReply), (a.id, "north", "north-note: toner recall", .internalNote),
            (a.id, "south", "south-reply: laptop user confirms fire", .agentReply), (b.id, "north", "VPN drops every minute", .customerMessage),
            (b.id, "south", "customer-south: still broken after the fix", .customerMessage), (c.id, "south", "south-reply: replacement ordered", .agentReply),
        ]
        for store in [north, south] {
            for (ticket, site, body, kind) in expected {
                #expect(try store.detail(ticket).events.contains { $0.site == site && $0.body == body && $0.kind == kind }, "\(body)")
            }
        }
        // C keeps the number its own site gave it.
        #expect(try north.ticket(c.id).originSite == "south" && north.ticket(c.id).displayNumber.hasPrefix("SOUTH-"))
    }
}
