import Desk
import Escalation
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Intake
import SyncNode
import Testing
import TicketModel
import TicketStore

/// Routing at the door: the node's rules file decides group, priority, tags, SLA policy and a
/// proactive ladder for tickets arriving over HTTP, and the ticket says which rule matched.
@Suite struct RoutingIntakeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func fixture() throws -> IntakeFixture {
        let rules = try RoutingRules.load(try Data(contentsOf: Self.root.appendingPathComponent("Deploy/routing.json")), file: "routing.json")
        let fixture = try IntakeFixture(routing: rules, role: .coordinator)
        // The escalation configuration the rules name (policy `platinum`, ladder `standard`).
        _ = try EscalationDesk(store: fixture.store).publish(try Data(contentsOf: Self.root.appendingPathComponent("Deploy/escalation.json")),
                                                             file: "escalation.json", actor: "ops")
        return fixture
    }

    @Test func eachTicketTakesTheRuleItMustMatch() async throws {
        let fixture = try fixture()
        _ = try fixture.store.importCustomers([CustomerDraft(crmID: "C-1", email: "ada@example.com", tier: "platinum")])
        // (channel, customer email, subject, message, category, language) -> rule
        let table: [(String, String, String, String, String?, String?, String)] = [
            ("email", "ada@example.com", "Portal down", "Nothing loads since 9:00", nil, nil, "platinum-outage"),
            ("chat", "ada@example.com", "Login", "I cannot log in at all", nil, nil, "platinum-outage"),
            ("email", "bob@example.com", "Portal down", "Nothing loads", nil, nil, "first-line"),  // not platinum
            ("email", "ada@example.com", "Download slow", "The download takes long", nil, nil, "first-line"),  // "down" is not "download"
            ("email", "kai@example.de", "Rechnung falsch", "Die Rechnung ist doppelt", nil, "de", "billing-de"),
            ("portal", "kai@example.de", "Question", "About my plan", "billing", nil, "billing"),
            ("phone", "lee@example.com", "Call back", "Customer says it is urgent", nil, nil, "phone-urgent"),
            ("social", "sam@example.com", "Angry post", "Your service is slow", nil, nil, "social-public"),
            ("api", "sam@example.com", "Sync", "Nothing special", nil, nil, "first-line"),
        ]
        try await fixture.live { client in
            for (channel, email, subject, message, category, language, rule) in table {
                var body: [String: Any] = ["channel": channel, "subject": subject, "message": message, "customer": ["email": email]]
                if let category { body["category"] = category }
                if let language { body["language"] = language }
                let (status, answer) = try await post(client, "/api/intake/tickets", body, token: fixture.token)
                #expect(status == .created, "\(answer)")
                let routing = answer["routing"] as? [String: Any]
                #expect(routing?["rule"] as? String == rule, "\(subject) via \(channel): \(routing ?? [:])")
                #expect(routing?["fallback"] as? Bool == (rule == "first-line"))
                let detail = try fixture.store.detail(try #require(ticketOf(answer)["displayNumber"] as? String))
                #expect(detail.routing?.contains(rule) == true, "ticket show says \(detail.routing ?? "nothing")")
            }
        }
    }

    @Test func aPlatinumOutageIsRoutedPinnedAndEscalatedAtTheDoor() async throws {
        let fixture = try fixture()
        _ = try fixture.store.importCustomers([CustomerDraft(crmID: "C-1", email: "ada@example.com", tier: "platinum")])
        try await fixture.live { client in
            let (status, answer) = try await post(client, "/api/intake/tickets", [
                "channel": "phone", "subject": "Payroll down", "message": "The payroll portal is down for everyone",
                "customer": ["email": "ada@example.com"], "priority": "low",
            ], token: fixture.token)
            #expect(status == .created)
            let ticket = ticketOf(answer)
            #expect(ticket["group"] as? String == "major-incident")
            #expect(ticket["priority"] as? String == "urgent")  // the rule wins over the requested priority
            #expect(ticket["tags"] as? [String] == ["outage", "vip"])
            #expect(ticket["customer"] as? String == "C-1" && ticket["customerTier"] as? String == "platinum")
            // A redelivery answers with the same routing (read back from the ticket).
            let (_, first) = try await post(client, "/api/intake/tickets", [
                "channel": "email", "subject": "Portal down", "message": "down again", "customer": ["email": "ada@example.com"],
                "externalMessageId": "<r1@mail>"], token: fixture.token)
            let (redelivered, second) = try await post(client, "/api/intake/tickets", [
                "channel": "email", "subject": "Portal down", "message": "down again", "customer": ["email": "ada@example.com"],
                "externalMessageId": "<r1@mail>"], token: fixture.token)
            #expect(redelivered == .ok)
            #expect((second["routing"] as? [String: Any])?["rule"] as? String == "platinum-outage")
            #expect((second["routing"] as? [String: Any])?["explanation"] as? String == (first["routing"] as? [String: Any])?["explanation"] as? String)
            let number = try #require(ticket["displayNumber"] as? String)
            let (state, evaluation) = try EscalationDesk(store: fixture.store).evaluate(number, now: Int64(TicketDatabase.systemMillis()))
            let report = SLAReport(state, evaluation, now: Int64(TicketDatabase.systemMillis()))
            #expect(report.policy?.hasPrefix("platinum") == true, "policy \(report.policy ?? "none")")
            let records = try fixture.store.detail(number).events.filter { $0.kind == .escalation }.map(\.body)
            // The ladder routing names (`standard`) is also the proactive rule `platinum-urgent`'s: it starts once.
            let starts = records.filter { $0.contains("escalation_started") }
            #expect(starts.count == 1 && starts.allSatisfy { $0.contains("\"standard\"") }, "\(records)")
        }
    }

    @Test func routingStartsItsLadderWhenNoRuleDoes() async throws {
        // A gold customer's outage: no proactive rule of Deploy/escalation.json matches it, so the
        // ladder starts only because routing names it.
        let rules = try RoutingRules.load(Data(#"""
            {"rules": [{"name": "gold-outage", "when": {"customerTier": ["gold"], "keywords": ["outage"]},
                        "then": {"group": "major-incident", "escalate": "standard"}}],
             "fallback": {"name": "first-line", "then": {"group": "first-line"}}}
            """#.utf8), file: "gold.json")
        let routed = try IntakeFixture(routing: rules, role: .coordinator)
        _ = try EscalationDesk(store: routed.store).publish(try Data(contentsOf: Self.root.appendingPathComponent("Deploy/escalation.json")),
                                                            file: "escalation.json", actor: "ops")
        _ = try routed.store.importCustomers([CustomerDraft(crmID: "G-1", email: "gil@example.com", tier: "gold")])
        try await routed.live { client in
            let (status, answer) = try await post(client, "/api/intake/tickets", [
                "channel": "chat", "subject": "Outage", "message": "Total outage in the warehouse", "customer": ["email": "gil@example.com"],
            ], token: routed.token)
            #expect(status == .created)
            let number = try #require(ticketOf(answer)["displayNumber"] as? String)
            let records = try routed.store.detail(number).events.filter { $0.kind == .escalation }.map(\.body)
            #expect(records.contains { $0.contains("escalation_started") && $0.contains("routing at intake") }, "\(records)")
        }
    }

    @Test func aRulesFileWithProblemsIsRefusedOnLoad() throws {
        let broken = Data(#"{"rules":[{"name":"x","when":{"chanel":["email"]},"then":{"group":"g"}}]}"#.utf8)
        do {
            _ = try RoutingRules.load(broken, file: "bad.json")
            Issue.record("a file without a fallback and with a misspelt key loaded")
        } catch {
            #expect("\(error)".contains("rules[0].when.chanel"))
            #expect("\(error)".contains("fallback"))
        }
    }
}
