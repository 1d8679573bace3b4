import Desk
import Escalation
import Foundation
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// Which writes reach people (issue 20): the notices and customer copies the Desk's planner puts in
/// the outbox, in the write's own transaction.
@Suite struct NoticeTests {
    /// Monday 2026-09-21 16:00 UTC.
    static let monday1600: UInt64 = 1_790_006_400_000
    static let hour: UInt64 = 3_600_000

    static let config = #"""
    {"calendars": [{"name": "office", "version": 1, "timezone": "UTC",
                    "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"], "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]}}],
     "ladders": [{"name": "breach", "version": 1, "loops": 0,
                  "levels": [{"delay": "0m", "targets": ["role:team_lead"], "assignment": "notify"}]},
                 {"name": "page", "version": 1, "loops": 0,
                  "levels": [{"delay": "0m", "targets": ["role:team_lead"], "assignment": "notify", "pageAnytime": true}]}],
     "policies": [{"name": "standard", "version": 1, "position": 2, "match": {}, "calendar": "24x7", "ladder": "breach",
                   "clocks": {"firstResponse": {"targets": {"normal": "1h", "urgent": "1h"}, "onBreach": ["notify", "escalate"]}}},
                  {"name": "urgent", "version": 1, "position": 1, "match": {"priority": ["urgent"]}, "calendar": "24x7", "ladder": "page",
                   "clocks": {"firstResponse": {"targets": {"urgent": "1h"}, "onBreach": ["escalate"]}}}],
     "agents": [{"name": "lena", "version": 1, "displayName": "Lena Lead", "email": "lena@example.com", "site": "hub",
                 "groups": ["tier1"], "role": "lead", "roles": ["team_lead"], "calendar": "office"},
                {"name": "ana", "version": 1, "displayName": "Ana Agent", "email": "ana@example.com", "site": "hub", "groups": ["tier1"]},
                {"name": "tom", "version": 1, "displayName": "Tom Tier2", "email": "tom@example.com", "site": "hub", "groups": ["tier2"]}]}
    """#

    func hub(_ clock: TestClock, key: SiteKey = .generate()) throws -> (TicketDatabase, HelpDesk) {
        let store = try memoryStore("hub", role: .coordinator, clock: clock, key: key)
        let desk = try HelpDesk(store: store)
        _ = try desk.escalation.publish(Data(Self.config.utf8), file: "config.json", actor: "ops")
        return (store, desk)
    }

    func pending(_ store: TicketDatabase) throws -> [OutboxEntry] { try store.outbox(state: .pending).sorted { $0.id! < $1.id! } }

    /// A chat ticket opened as intake opens one for integration `name` of `site`: the integration
    /// and the thread written in the opening block.
    func chatTicket(_ desk: HelpDesk, site: String, integration name: String, now: UInt64) throws -> TicketRecord {
        let id = UUID()
        return try desk.open(fromIntake: IntakeTicket(id: id, draft: TicketDraft(subject: "Chat: locked out", channel: "chat"), messageID: UUID(),
                                                      fields: [(.custom(TicketLookup.integration), .text("\(site)/\(name)")),
                                                               (.custom(TicketLookup.thread), .text("chat-77"))]), now: Int64(now)).ticket
    }

    @Test func aPublicReplyReachesAnEmailCustomerAndANoteDoesNot() throws {
        let clock = TestClock(Self.monday1600)
        let (store, desk) = try hub(clock)
        _ = try desk.importCustomers(csv: Data("id,name,email\nC-7,Ada,ada@customer.example\n".utf8), file: "crm.csv")
        let ticket = try desk.open(TicketDraft(subject: "Invoice missing", customer: "C-7", channel: "email"), now: Int64(clock.now))
        let before = try pending(store).count
        try desk.note(ticket.id, body: "internal: check the billing run", actor: "ana")
        #expect(try pending(store).count == before, "an internal note reaches no customer")
        let reply = try desk.reply(ticket.id, body: "We have re-sent the invoice.", actor: "ana")
        let copies = try pending(store).filter { $0.kind == "reply" }
        #expect(copies.count == 1)
        let copy = try #require(copies.first)
        #expect(copy.channel == "email" && copy.recipient == "ada@customer.example")
        #expect(copy.subject == "[\(reply.displayNumber)] Re: Invoice missing")
        #expect(copy.body.hasPrefix("We have re-sent the invoice."))
        #expect(copy.notBefore == Int64(clock.now))
    }

    @Test func aReplyOnAnIntegrationsTicketGoesToItsReplyWebhook() throws {
        let clock = TestClock(Self.monday1600)
        let (store, desk) = try hub(clock)
        _ = try store.addAPIToken(name: "chatbridge", channels: [])
        let secret = try store.setReplyWebhook(integration: "chatbridge", url: "http://127.0.0.1:9/replies")
        #expect(secret.hasPrefix("whsec_"))
        let ticket = try chatTicket(desk, site: "hub", integration: "chatbridge", now: clock.now)
        try desk.reply(ticket.id, body: "Try the reset link.", actor: "ana")
        let copy = try #require(try pending(store).first { $0.kind == "reply" })
        #expect(copy.channel == "integration:chatbridge")
        let body = try JSONSerialization.jsonObject(with: Data(copy.body.utf8)) as? [String: Any]
        let data = body?["data"] as? [String: Any]
        #expect(body?["type"] as? String == "reply")
        #expect(data?["text"] as? String == "Try the reset link.")
        #expect((data?["ticket"] as? [String: Any])?["id"] as? String == ticket.id)
        #expect(data?["externalThreadId"] as? String == "chat-77")
    }

    /// The fields that say where a reply goes count only as the opening block wrote them: an
    /// update may not set them, and a peer's later write of them steers nothing (second attack
    /// review of issue 20).
    @Test func whereARepliesGoesCannotBeRewrittenAfterTheTicketOpens() throws {
        let clock = TestClock(Self.monday1600)
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let (hub, hubDesk) = try hub(clock, key: hubKey)
        let north = try memoryStore("north", clock: clock, key: northKey)
        try admit([(hub, hubKey), (north, northKey)])
        _ = try hub.addAPIToken(name: "chat", channels: ["chat"])
        _ = try hub.setReplyWebhook(integration: "chat", url: "http://127.0.0.1:9/replies")
        for name in [TicketLookup.integration, TicketLookup.replyAddress, TicketLookup.thread] {
            let ticket = try hubDesk.open(TicketDraft(subject: "x", channel: "email"), now: Int64(clock.now))
            #expect(throws: DeskError.self) { try hubDesk.update(ticket.id, FieldUpdate(custom: [(name: name, value: "hub/chat")]), actor: "ana") }
        }
        // A peer opens its own chat ticket naming hub's integration, and rewrites an e-mail
        // ticket's reply address; hub's own agent then replies on both.
        let email = try hubDesk.open(fromIntake: IntakeTicket(id: UUID(), draft: TicketDraft(subject: "Invoice", customer: "ada@customer.example", channel: "email"),
                                                              messageID: UUID(), fields: [(.custom(TicketLookup.replyAddress), .text("ada@customer.example"))]),
                                     now: Int64(clock.now)).ticket
        _ = try north.apply(try hub.blocks(after: try north.vector()))
        let forged = try north.createTicket(TicketDraft(subject: "Chat", channel: "chat"))
        _ = try north.update(forged.id, [(.custom(TicketLookup.integration), .text("hub/chat")), (.custom(TicketLookup.thread), .text("victim"))])
        _ = try north.update(email.id, [(.custom(TicketLookup.replyAddress), .text("eve@evil.example"))])
        var hubStore = hub
        hubStore.notices = Notices.planner
        _ = try hubStore.apply(try north.blocks(after: try hub.vector()))
        try hubDesk.reply(forged.id, body: "ours", actor: "ana")
        try hubDesk.reply(email.id, body: "Your invoice", actor: "ana")
        let copies = try hub.outbox().filter { $0.kind == "reply" }
        #expect(copies.map(\.recipient) == ["ada@customer.example"], "\(copies.map(\.recipient))")
    }

    @Test func aBreachReachesTheAssigneeAndTheTeamLeadAndTheLadderTheLead() throws {
        let clock = TestClock(Self.monday1600 - 6 * Self.hour)   // 10:00, inside office hours
        let (store, desk) = try hub(clock)
        try store.setNoticeWebhooks(["ops"])
        let ticket = try desk.open(TicketDraft(subject: "VPN down", group: "tier1", assignee: "ana"), now: Int64(clock.now))
        _ = try store.outbox().map { try store.markSent($0.id!) }
        clock.advance(2 * Self.hour)
        _ = try desk.escalation.tick(now: Int64(clock.now))
        let entries = try pending(store)
        let breach = entries.filter { $0.kind == "sla_breach" && $0.channel == "email" }
        #expect(Set(breach.map(\.recipient)) == ["ana@example.com", "lena@example.com"])
        #expect(breach.allSatisfy { $0.subject.hasPrefix("[\(ticket.displayNumber)]") && $0.notBefore == Int64(clock.now) })
        let level = entries.filter { $0.kind == "level_fired" && $0.channel == "email" }
        #expect(level.map(\.recipient) == ["lena@example.com"])
        // The webhook gets each notice once, keyed by the record alone, with its recipients listed.
        let hooks = entries.filter { $0.channel == "webhook:ops" }
        #expect(Set(hooks.map(\.kind)) == ["sla_breach", "level_fired", "ladder_exhausted"])
        #expect(Set(hooks.map(\.key)).count == hooks.count)
        let state = try store.ticketState(ticket.id)
        let breachRecord = try #require(state.events.first { $0.event.kind == .escalation && $0.event.body.contains("sla_breach") })
        #expect(hooks.contains { $0.key == "tl-\(breachRecord.event.id.uuidString.lowercased())" })
    }

    /// A breach at 18:30 on a calendar that ends at 17:00 waits for 09:00 the next working day; an
    /// agent without a calendar, and a level marked to page at any time, are told at once.
    @Test func aNoticeOutsideWorkingHoursWaitsForTheNextOpening() throws {
        let clock = TestClock(Self.monday1600)
        let (store, desk) = try hub(clock)
        let normal = try desk.open(TicketDraft(subject: "Printer jam", group: "tier1", assignee: "ana"), now: Int64(clock.now))
        let urgent = try desk.open(TicketDraft(subject: "Payroll down", priority: .urgent, group: "tier1", assignee: "ana"), now: Int64(clock.now))
        _ = try store.outbox().map { try store.markSent($0.id!) }
        let at1830 = Self.monday1600 + 5 * Self.hour / 2
        clock.move(to: at1830)
        _ = try desk.escalation.tick(now: Int64(clock.now))
        let tuesday0900: Int64 = 1_790_067_600_000
        let entries = try pending(store)
        func due(_ ticket: TicketRecord, _ kind: String, _ to: String) -> [Int64] {
            entries.filter { $0.ticket == ticket.id && $0.kind == kind && $0.recipient == to }.map(\.notBefore)
        }
        #expect(due(normal, "sla_breach", "lena@example.com") == [tuesday0900])
        #expect(due(normal, "sla_breach", "ana@example.com") == [Int64(at1830)])
        #expect(due(normal, "level_fired", "lena@example.com") == [tuesday0900])
        #expect(due(urgent, "level_fired", "lena@example.com") == [Int64(at1830)], "the page level rings at any hour")
        // Not due yet: the dispatcher does not see it before 09:00.
        #expect(try store.dueDeliveries(now: at1830).allSatisfy { $0.recipient != "lena@example.com" || $0.ticket == urgent.id })
        #expect(try store.dueDeliveries(now: UInt64(tuesday0900)).contains { $0.recipient == "lena@example.com" && $0.ticket == normal.id })
    }

    @Test func aRetiredAgentIsToldNothing() throws {
        let clock = TestClock(Self.monday1600 - 6 * Self.hour)
        let (store, desk) = try hub(clock)
        _ = try desk.escalation.publish(Data(#"{"agents": [{"name": "lena", "version": 2, "displayName": "Lena Lead", "email": "lena@example.com", "site": "hub", "groups": ["tier1"], "role": "lead", "roles": ["team_lead"], "active": false}]}"#.utf8), file: "retire.json", actor: "ops")
        _ = try desk.open(TicketDraft(subject: "VPN down", group: "tier1"), now: Int64(clock.now))
        clock.advance(2 * Self.hour)
        _ = try desk.escalation.tick(now: Int64(clock.now))
        #expect(try store.outbox().allSatisfy { $0.recipient != "lena@example.com" })
    }

    /// A crash after the outbox rows but before the commit leaves neither the reply nor its copy.
    @Test func aCrashLeavesNeitherTheEventNorItsDelivery() throws {
        let clock = TestClock(Self.monday1600)
        var (store, desk) = try hub(clock)
        let ticket = try desk.open(TicketDraft(subject: "Invoice missing", customer: "ada@customer.example", channel: "email"), now: Int64(clock.now))
        let before = (try store.vector(), try store.outbox().count)
        store.faultHook = { if $0 == "afterOutbox" { throw CocoaError(.fileWriteUnknown) } }
        desk = try HelpDesk(store: store)
        #expect(throws: (any Error).self) { try desk.reply(ticket.id, body: "Re-sent.", actor: "ana") }
        #expect(try store.vector() == before.0 && store.outbox().count == before.1)
        store.faultHook = nil
        try HelpDesk(store: store).reply(ticket.id, body: "Re-sent.", actor: "ana")
        #expect(try store.outbox().count == before.1 + 1)
    }

    /// The owner and the coordinator both fire a level while apart: the two notices carry the same
    /// key, so a receiver keeps one.
    @Test func theOwnerAndTheBackstopDeriveTheSameKeys() throws {
        let clock = TestClock(Self.monday1600 - 6 * Self.hour)
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let (hub, hubDesk) = try hub(clock, key: hubKey)
        let north = try memoryStore("north", clock: clock, key: northKey)
        try admit([(hub, hubKey), (north, northKey)])
        _ = try north.apply(try hub.blocks(after: try north.vector()))
        try hub.setNoticeWebhooks(["ops"])
        try north.setNoticeWebhooks(["ops"])
        let northDesk = try HelpDesk(store: north)
        let ticket = try northDesk.open(TicketDraft(subject: "VPN down"), now: Int64(clock.now))
        _ = try hub.apply(try north.blocks(after: try hub.vector()))
        clock.advance(3 * Self.hour)
        _ = try northDesk.escalation.tick(now: Int64(clock.now))
        _ = try hubDesk.escalation.tick(now: Int64(clock.now), backstop: { _, _ in true })
        func keys(_ store: TicketDatabase) throws -> Set<String> {
            Set(try store.outbox().filter { $0.channel == "webhook:ops" && $0.ticket == ticket.id && $0.kind == "level_fired" }.map(\.key))
        }
        #expect(try !keys(north).isEmpty)
        #expect(try keys(north) == keys(hub))
    }

    @Test func anAssignmentACustomersAnswerAndAHandoffReachTheAgentsConcerned() throws {
        let clock = TestClock(Self.monday1600 - 6 * Self.hour)
        let (store, desk) = try hub(clock)
        let ticket = try desk.open(TicketDraft(subject: "VPN down", group: "tier1"), now: Int64(clock.now))
        _ = try desk.update(ticket.id, FieldUpdate(assignee: "ana"), actor: "lena")
        #expect(try pending(store).filter { $0.kind == "assigned" }.map(\.recipient) == ["ana@example.com"])
        try desk.customerMessage(ticket.id, body: "It is down again", actor: "customer")
        let answer = try #require(try pending(store).first { $0.kind == "customer_reply" })
        #expect(answer.recipient == "ana@example.com" && answer.body.contains("It is down again"))
        let note = HandoffNote(summary: "VPN flaps", verifiedFacts: "two sites", stepsTried: "restart", requestedAction: "check the concentrator")
        try desk.escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: Int64(clock.now))
        let request = try #require(try pending(store).first { $0.kind == "handoff_requested" })
        #expect(request.recipient == "tom@example.com")
        #expect(request.body.contains("check the concentrator") && request.body.contains("by ana"))
    }

    /// A reply written at another site on a ticket of hub's chat integration: the writer sends
    /// nothing, the hub plans the copy when the reply reaches it (attack review of issue 20).
    @Test func aReplyWrittenElsewhereIsSentByTheIntegrationsOwnSite() throws {
        let clock = TestClock(Self.monday1600)
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let (hub, hubDesk) = try hub(clock, key: hubKey)
        let north = try memoryStore("north", clock: clock, key: northKey)
        try admit([(hub, hubKey), (north, northKey)])
        _ = try hub.addAPIToken(name: "chat", channels: [])
        _ = try hub.setReplyWebhook(integration: "chat", url: "http://127.0.0.1:9/replies")
        _ = try north.addAPIToken(name: "chat", channels: [])
        _ = try north.setReplyWebhook(integration: "chat", url: "http://127.0.0.1:9/north")
        let ticket = try chatTicket(hubDesk, site: "hub", integration: "chat", now: clock.now)
        _ = try north.apply(try hub.blocks(after: try north.vector()))
        var northStore = north
        northStore.notices = Notices.planner
        try HelpDesk(store: northStore).reply(ticket.id, body: "Unlocked.", actor: "nils")
        #expect(try north.outbox().isEmpty, "north has no business with hub's integration")
        var hubStore = hub
        hubStore.notices = Notices.planner
        _ = try hubStore.apply(try north.blocks(after: try hub.vector()))
        let copies = try hub.outbox().filter { $0.kind == "reply" }
        #expect(copies.map(\.channel) == ["integration:chat"])
        #expect(copies.first?.body.contains("Unlocked.") == true)
    }

    /// A cross-site handoff unanswered past the matrix's handoffTimeout: one derived record, and the
    /// requester and the group asked are told; the request stays pending.
    @Test func aHandoffUnansweredPastItsTimeoutTellsTheRequesterAndTheGroupAsked() throws {
        let clock = TestClock(Self.monday1600 - 6 * Self.hour)
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let (hub, hubDesk) = try hub(clock, key: hubKey)
        _ = try hubDesk.escalation.publish(Data(#"{"matrix": {"version": 1, "grace": "5m", "handoffTimeout": "30m", "entries": []}}"#.utf8),
                                           file: "matrix.json", actor: "ops")
        let north = try memoryStore("north", clock: clock, key: northKey)
        try admit([(hub, hubKey), (north, northKey)])
        _ = try north.apply(try hub.blocks(after: try north.vector()))
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Payroll export fails"), now: Int64(clock.now))
        let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")
        try desk.escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: Int64(clock.now))
        clock.advance(29 * 60_000)
        _ = try desk.escalation.tick(now: Int64(clock.now))
        #expect(try north.outbox().allSatisfy { $0.kind != "handoff_timed_out" }, "not before the timeout")
        clock.advance(2 * 60_000)
        _ = try desk.escalation.tick(now: Int64(clock.now))
        let told = try north.outbox().filter { $0.kind == "handoff_timed_out" }
        #expect(Set(told.map(\.recipient)) == ["ana@example.com", "tom@example.com"])
        #expect(told.allSatisfy { $0.subject.contains("tier2@hub") })
        let (_, evaluation) = try desk.escalation.evaluate(ticket.id, now: Int64(clock.now))
        #expect(evaluation.pendingHandoffs.count == 1, "the request stays open")
        _ = try desk.escalation.tick(now: Int64(clock.now) + 60_000)
        #expect(try north.outbox().filter { $0.kind == "handoff_timed_out" }.count == told.count, "said once")
    }

    /// A request whose `at` is near the end of time (a peer can write any) must not trap the
    /// engine when the timeout is added (second attack review of issue 20).
    @Test func aRequestAtTheEndOfTimeDoesNotTrapTheTimeout() throws {
        let clock = TestClock(Self.monday1600)
        let (store, desk) = try hub(clock)
        _ = try desk.escalation.publish(Data(#"{"matrix": {"version": 1, "grace": "5m", "handoffTimeout": "30m", "entries": []}}"#.utf8),
                                        file: "matrix.json", actor: "ops")
        let ticket = try desk.open(TicketDraft(subject: "x"), now: Int64(clock.now))
        var request = EscalationRecord(type: .escalated, at: Int64.max - 5)
        request.toGroup = "tier2"
        request.toSite = "north"
        _ = try store.writeRecords(try store.resolve(ticket.id)) { _ in
            [(TicketEvent(id: UUID(), kind: .escalation, actor: "peer", visibility: .internal, body: request.encoded()), [])]
        }
        let (_, evaluation) = try desk.escalation.evaluate(ticket.id, now: Int64(clock.now))
        #expect(evaluation.pendingHandoffs.count == 1)
        #expect(try desk.escalation.tick(now: Int64(clock.now)).values.flatMap { $0 }.allSatisfy { !$0.body.contains("handoff_timed_out") })
    }
}
