import Desk
import Escalation
import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The Desk's use cases and its one error type: every refusal has a stable code, the field that
/// was wrong, and leaves the store as it was.
@Suite struct HelpDeskTests {
    static let now: Int64 = 1_790_000_000_000

    func store(_ site: String = "hub", role: SiteRole = .coordinator) throws -> (TicketDatabase, HelpDesk) {
        let store = try memoryStore(site, role: role)
        return (store, try HelpDesk(store: store))
    }

    /// Runs `body`, expecting a refusal; returns it.
    func refusal(_ body: () throws -> Void) throws -> DeskError {
        do { try body() } catch let error as DeskError { return error }
        Issue.record("expected a DeskError")
        return DeskError(.invalidInput, "none")
    }

    @Test func theCodesAreStable() {
        // Scripts and HTTP clients match on these strings: renaming one breaks them.
        #expect(DeskError.Code.allCases.map(\.rawValue) == [
            "invalid_input", "not_found", "wrong_state", "not_permitted", "store_refused", "invalid_configuration",
        ])
    }

    @Test func anUnknownTicketIsNotFound() throws {
        let (_, desk) = try store()
        let error = try refusal { try desk.reply("HUB-99", body: "hello", actor: "ana") }
        #expect(error.code == .notFound)
        #expect(try refusal { try desk.acknowledge("HUB-99", actor: "ana", now: Self.now) }.code == .notFound)
    }

    @Test func repliesAreVisibleAndNotesInternal() throws {
        let (store, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        try desk.reply(ticket.id, body: "Which client version?", actor: "ana")
        try desk.note(ticket.id, body: "Probably the MTU again", actor: "ana")
        try desk.customerMessage(ticket.id, body: "Version 5.2", actor: "acme")
        let events = try store.detail(ticket.id).events.filter { $0.kind != .escalation }
        let kinds = events.map { "\($0.kind.rawValue)/\($0.visibility ?? "")" }
        #expect(kinds.contains("agent_reply/public"))
        #expect(kinds.contains("internal_note/internal"))
        #expect(kinds.contains("customer_message/public"))
    }

    @Test func anEmptyBodyIsInvalidInputAndWritesNothing() throws {
        let (store, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        let before = try store.vector()
        #expect(try refusal { try desk.reply(ticket.id, body: "   ", actor: "ana") }.code == .invalidInput)
        #expect(try store.vector() == before)
    }

    @Test func anUpdateNamesTheFieldItRefuses() throws {
        let (store, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        let before = try store.vector()
        let merged = try refusal { _ = try desk.update(ticket.id, FieldUpdate(status: .merged), actor: "ana") }
        #expect(merged.code == .invalidInput && merged.field == "status")
        let blank = try refusal { _ = try desk.update(ticket.id, FieldUpdate(subject: "  "), actor: "ana") }
        #expect(blank.code == .invalidInput && blank.field == "subject")
        let nothing = try refusal { _ = try desk.update(ticket.id, FieldUpdate(), actor: "ana") }
        #expect(nothing.code == .invalidInput && nothing.field == nil)
        let unnamed = try refusal { _ = try desk.update(ticket.id, FieldUpdate(custom: [(name: "", value: "x")]), actor: "ana") }
        #expect(unnamed.field == "field")
        #expect(try store.vector() == before)
    }

    @Test func solvingIssuesASurveyTokenOnce() throws {
        let (_, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        let (solved, token) = try desk.update(ticket.id, FieldUpdate(status: .solved, custom: [(name: "cause", value: "mtu")]), actor: "ana")
        #expect(solved.status == "solved")
        #expect(token != nil)
        #expect(try desk.update(ticket.id, FieldUpdate(status: .solved), actor: "ana").surveyToken == nil)
    }

    @Test func tagsNeedSomethingToDo() throws {
        let (_, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        #expect(try refusal { try desk.tag(ticket.id, add: [], remove: [], actor: "ana") }.code == .invalidInput)
        #expect(try desk.tag(ticket.id, add: ["vpn", "vip"], remove: [], actor: "ana").tags == ["vip", "vpn"])
        #expect(try desk.tag(ticket.id, add: [], remove: ["vip"], actor: "ana").tags == ["vpn"])
    }

    @Test func escalationRefusalsNameTheirField() throws {
        let (store, desk) = try store()
        let ticket = try desk.open(TicketDraft(subject: "VPN drops"), now: Self.now)
        let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")
        let target = try refusal { try desk.escalate(ticket.id, to: "tier2", note: note, actor: "ana", now: Self.now) }
        #expect(target.code == .invalidInput && target.field == "to")
        var thin = note
        thin.stepsTried = " "
        let missing = try refusal { try desk.escalate(ticket.id, to: "tier2@north", note: thin, actor: "ana", now: Self.now) }
        #expect(missing.code == .invalidInput && missing.field == "stepsTried")
        let group = try refusal { try desk.transfer(ticket.id, group: "tier 2", reason: nil, actor: "ana", now: Self.now) }
        #expect(group.code == .invalidInput && group.field == "group")
        let reason = try refusal { try desk.reject(ticket.id, reason: "", actor: "ana", now: Self.now) }
        #expect(reason.field == "reason")
        // Nothing pending, nothing running: the ticket's state, not the request, is in the way.
        #expect(try refusal { try desk.accept(ticket.id, actor: "ana", now: Self.now) }.code == .wrongState)
        #expect(try refusal { try desk.acknowledge(ticket.id, actor: "ana", now: Self.now) }.code == .wrongState)
        _ = try desk.update(ticket.id, FieldUpdate(status: .closed), actor: "ana")
        #expect(try refusal { try desk.transfer(ticket.id, group: "billing", reason: nil, actor: "ana", now: Self.now) }.code == .wrongState)
        #expect(try store.ticket(ticket.id).group == nil)
    }

    @Test func escalatingWithinTheSiteMovesTheGroupAndToAnotherSiteAsksIt() throws {
        let (store, desk) = try store()
        // A handoff goes only to a site of the roster (issue 22).
        _ = try store.admit(site: try SiteID("central"), key: SiteKey.generate().publicKey, role: .site)
        let ticket = try desk.open(TicketDraft(subject: "VPN drops", group: "tier1"), now: Self.now)
        let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")
        try desk.escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: Self.now)
        #expect(try store.ticket(ticket.id).group == "tier2")
        try desk.escalate(ticket.id, to: "tier3@central", note: note, actor: "ana", now: Self.now + 1)
        let (_, evaluation) = try desk.escalation.evaluate(ticket.id, now: Self.now + 2)
        #expect(evaluation.pendingHandoffs.map(\.record.toSite) == ["central"])
        #expect(try store.ticket(ticket.id).group == "tier2")
    }

    @Test func onlyTheCoordinatorPublishes() throws {
        let (_, desk) = try store("north", role: .site)
        #expect(try refusal { _ = try desk.escalation.publish(Data("{}".utf8), file: "c.json", actor: "ops") }.code == .notPermitted)
    }

    @Test func aConfigurationFileReportsEveryProblemAtOnce() throws {
        let (store, desk) = try store()
        // Three documents, each wrong in its own way: a missing key, a bad value, a misspelt key.
        let file = #"""
        {"calendars": [{"name": "office", "version": 1, "timezone": "Mars/Olympus", "weekly": {"mon": ["09:00-17:00"]}}],
         "ladders": [{"name": "l", "version": 1, "levels": []}],
         "policies": [{"name": "p", "version": 1, "position": 1, "calendar": "office", "clokcs": {}, "clocks": {}}]}
        """#
        let error = try refusal { _ = try desk.escalation.publish(Data(file.utf8), file: "bad.json", actor: "ops") }
        #expect(error.code == .invalidConfiguration)
        #expect(error.problems.contains { $0.contains("ladders[0].loops") })
        #expect(error.problems.contains { $0.contains("calendars[0].timezone") })
        #expect(error.problems.contains { $0.contains("policies[0].clokcs") })
        #expect(try store.configBodies().isEmpty)
    }

    @Test func aCustomerFileWithAnUnknownColumnIsInvalidInput() throws {
        let (store, desk) = try store()
        let error = try refusal { _ = try desk.importCustomers(csv: Data("id,nmae\nC-1,Ada\n".utf8), file: "crm.csv") }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains("nmae"))
        #expect(try store.customers().isEmpty)
        var seen: [Int] = []
        let report = try desk.importCustomers(csv: Data("id,name,tier\nC-1,Ada,gold\nC-2,Bo,silver\n".utf8), file: "crm.csv") { done, _ in seen.append(done) }
        #expect(report.created == 2)
        #expect(seen.last == 2)
    }

    @Test func theStoresRefusalsAreReadByCode() {
        let cases: [(StoreError.Code, DeskError.Code)] = [
            (.unknownTicket, .notFound), (.unknownToken, .notFound), (.invalidInput, .invalidInput), (.alreadyAnswered, .wrongState),
            (.refusedWrite, .storeRefused), (.awaitingSync, .storeRefused), (.keyMismatch, .storeRefused), (.notInitialized, .storeRefused),
        ]
        for (store, desk) in cases { #expect(DeskError(StoreError(store, "x")).code == desk) }
    }
}

/// A handoff the requesting site takes back (issue 19's withdraw): only that site may, and only
/// while it is unanswered.
@Suite struct WithdrawTests {
    static let now: Int64 = 1_790_000_000_000
    let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")

    @Test func theRequestingSiteWithdrawsAPendingHandoff() throws {
        let north = try memoryStore("north")
        let desk = try HelpDesk(store: north)
        let ticket = try desk.open(TicketDraft(subject: "Payroll export fails", group: "tier1"), now: Self.now)
        try desk.escalate(ticket.id, to: "tier2@hbu", note: note, actor: "ana", now: Self.now)
        #expect(try desk.escalation.evaluate(ticket.id, now: Self.now + 1).1.pendingHandoffs.count == 1)
        let withdrawn = try desk.withdraw(ticket.id, reason: "typo in the site", actor: "ana", now: Self.now + 2)
        #expect(withdrawn.body.contains("handoff_withdrawn"))
        #expect(try desk.escalation.evaluate(ticket.id, now: Self.now + 3).1.pendingHandoffs.isEmpty)
        // Nothing left to withdraw; the origin still owns the ticket.
        #expect(throws: DeskError.self) { try desk.withdraw(ticket.id, reason: nil, actor: "ana", now: Self.now + 4) }
        #expect(try north.ticket(ticket.id).owningSite == "north")
    }

    @Test func onlyTheSiteThatAskedMayWithdrawAndAnotherSitesWithdrawalCountsForNothing() throws {
        let northKey = SiteKey.generate(), hubKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), hub = try memoryStore("hub", role: .coordinator, key: hubKey)
        try admit([(north, northKey), (hub, hubKey)])
        let ticket = try HelpDesk(store: north).open(TicketDraft(subject: "Payroll export fails"), now: Self.now)
        try HelpDesk(store: north).escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: Self.now)
        _ = try hub.apply(try north.blocks(after: try hub.vector()))
        let refused = try #require(throws: DeskError.self) { try HelpDesk(store: hub).withdraw(ticket.id, reason: nil, actor: "bo", now: Self.now + 1) }
        #expect(refused.code == .notPermitted)
        #expect(refused.message.contains("only the owning site"))
        // A withdrawal record forged at the hub (bypassing the Desk) does not settle north's request.
        var record = EscalationRecord(type: .handoffWithdrawn, at: Self.now + 2)
        let (_, before) = try HelpDesk(store: hub).escalation.evaluate(ticket.id, now: Self.now + 2)
        record.refersTo = try #require(before.pendingHandoffs.first).id
        _ = try hub.writeRecords(try hub.resolve(ticket.id)) { _ in
            [(TicketEvent(id: UUID(), kind: .escalation, actor: "bo", visibility: .internal, body: record.encoded()), [])]
        }
        #expect(try HelpDesk(store: hub).escalation.evaluate(ticket.id, now: Self.now + 3).1.pendingHandoffs.count == 1)
        // The receiver can still answer it.
        try HelpDesk(store: hub).accept(ticket.id, actor: "bo", now: Self.now + 4)
        #expect(try hub.ticket(ticket.id).owningSite == "hub")
    }
}

/// A misspelt channel would be stored as it is and miss every policy and routing rule that matches on
/// it (issue 22): the desk refuses it with the nearest, and takes a new one only when asked to.
@Suite struct ChannelTests {
    @Test func aMisspeltChannelIsRefusedWithTheNearest() throws {
        let store = try memoryStore("north")
        let desk = try HelpDesk(store: store)
        do {
            try desk.open(TicketDraft(subject: "VPN drops", channel: "emial"), now: 1_790_000_000_000)
            Issue.record("a misspelt channel was taken")
        } catch let error as DeskError {
            #expect(error.code == .invalidInput && error.field == "channel")
            #expect(error.message.contains("Did you mean \"email\"?"))
        }
        #expect(try store.tickets().isEmpty)
        #expect(try desk.open(TicketDraft(subject: "VPN drops", channel: "email"), now: 1_790_000_000_000).channel == "email")
        #expect(try desk.open(TicketDraft(subject: "From the kiosk", channel: "kiosk"), now: 1_790_000_000_000, allowUnknown: true).channel == "kiosk")
    }
}

/// `ticket show --json` gives an escalation event's record as structured JSON beside its text
/// (issue 22), so a script reads the handoff note's four parts without parsing a string.
@Suite struct HistoryRecordTests {
    @Test func anEscalationEventCarriesItsRecordAsJSON() throws {
        let store = try memoryStore("north")
        let desk = try HelpDesk(store: store)
        let ticket = try desk.open(TicketDraft(subject: "Payroll export fails"), now: 1_790_000_000_000)
        let note = HandoffNote(summary: "exports fail", verifiedFacts: "since 9:00", stepsTried: "rerun", requestedAction: "check the job")
        try desk.escalate(ticket.id, to: "tier2@hub", note: note, actor: "ana", now: 1_790_000_000_000)
        let detail = try store.detail(ticket.id)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(detail)) as? [String: Any]
        let events = try #require(json?["events"] as? [[String: Any]])
        let escalated = try #require(events.first { ($0["record"] as? [String: Any])?["type"] as? String == "escalated" })
        let record = try #require(escalated["record"] as? [String: Any])
        #expect((record["note"] as? [String: Any])?["requestedAction"] as? String == "check the job")
        #expect(record["toSite"] as? String == "hub")
        #expect(escalated["body"] is String, "body stays text, as the CLI contract expects")
        // Other kinds carry the key, null.
        #expect(events.filter { $0["kind"] as? String != "escalation" }.allSatisfy { $0["record"] is NSNull })
    }
}
