import Desk
import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The agent directory's use cases, the actor on every write, and the checks of names against the
/// directory: every refusal leaves the store as it was.
@Suite struct AgentDeskTests {
    static let now: Int64 = 1_790_000_000_000

    func hub() throws -> (TicketDatabase, AgentDesk, HelpDesk) {
        let store = try memoryStore("hub", role: .coordinator)
        return (store, try AgentDesk(store: store), try HelpDesk(store: store))
    }

    func refusal(_ body: () throws -> Void) throws -> DeskError {
        do { try body() } catch let error as DeskError { return error }
        Issue.record("expected a DeskError")
        return DeskError(.invalidInput, "none")
    }

    func seed(_ agents: AgentDesk) throws {
        try agents.add(AgentDocument(name: "alice", version: 1, displayName: "Alice", email: "alice@example.com", site: "hub", groups: ["billing-L1"],
                                  role: .lead, roles: ["team_lead"]), actor: "root")
        try agents.add(AgentDocument(name: "bob", version: 1, displayName: "Bob", site: "hub", groups: ["billing-L1"]), actor: "root")
        try agents.add(AgentDocument(name: "carol", version: 1, displayName: "Carol", site: "hub", groups: ["tier2"]), actor: "root")
        try agents.deactivate("carol", actor: "root")
    }

    /// A home site the roster does not have is refused, with the sites it has (attack review).
    @Test func anAgentAtASiteOutsideTheRosterIsRefused() throws {
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let store = try memoryStore("hub", role: .coordinator, key: hubKey), north = try memoryStore("north", key: northKey)
        try admit([(store, hubKey), (north, northKey)])
        let agents = try AgentDesk(store: store)
        let error = try refusal { try agents.add(AgentDocument(name: "nils", version: 1, displayName: "Nils", site: "nroth"), actor: "root") }
        #expect(error.code == .invalidInput && error.field == "site")
        #expect(error.message.contains("Did you mean \"north\""))
        #expect(try store.configBodies().isEmpty)
        #expect(try agents.add(AgentDocument(name: "nils", version: 1, displayName: "Nils", site: "north"), actor: "root").site == "north")
    }

    @Test func addGivesVersionOneThenTheNextAndDeactivateRaisesIt() throws {
        let (_, agents, _) = try hub()
        #expect(try agents.add(AgentDocument(name: "alice", version: 1, displayName: "Alice", site: "hub"), actor: "root").version == 1)
        let retired = try agents.deactivate("alice", actor: "root")
        #expect(retired.version == 2 && !retired.active)
        #expect(try refusal { try agents.deactivate("alice", actor: "root") }.code == .wrongState)
        #expect(try refusal { try agents.deactivate("alcie", actor: "root") }.message.contains("did you mean \"alice\""))
        let back = try agents.add(AgentDocument(name: "alice", version: 1, displayName: "Alice M.", site: "hub"), actor: "root")
        #expect(back.version == 3 && back.active)
        #expect(try agents.directory().agent("alice")?.displayName == "Alice M.")
    }

    @Test func onlyTheCoordinatorPublishesAgents() throws {
        let store = try memoryStore("north")
        let error = try refusal { try AgentDesk(store: store).add(AgentDocument(name: "alice", version: 1, displayName: "Alice", site: "north"), actor: "x") }
        #expect(error.code == .notPermitted)
        #expect(error.message.contains("run it at the coordinator"))
        // Said before any value of a file is read.
        #expect(try refusal { _ = try AgentDesk(store: store).importAgents(csv: Data("nonsense".utf8), file: "a.csv", actor: "x") }.code == .notPermitted)
        #expect(try refusal { _ = try AgentDesk(store: store).deactivate("alice", actor: "x") }.code == .notPermitted)
        #expect(try store.configBodies().isEmpty)
    }

    @Test func aBadAgentIsRefusedAndNothingIsPublished() throws {
        let (store, agents, _) = try hub()
        let error = try refusal { try agents.add(AgentDocument(name: "alice", version: 1, displayName: "Alice", email: "nope", site: "hub", calendar: "office"), actor: "root") }
        #expect(error.code == .invalidInput && error.field == "email")
        #expect(error.problems.contains { $0.hasPrefix("calendar: no calendar named \"office\"") }, "\(error.problems)")
        #expect(try store.configBodies().isEmpty)
    }

    @Test func aCSVImportPublishesEveryRowOrNone() throws {
        let (store, agents, _) = try hub()
        let bad = """
            name,display_name,email,site,groups,role,roles,active,calendar
            alice,Alice,alice@example.com,hub,billing-L1;field,lead,team_lead,true,
            bob,Bob,bob-at-example,hub,billing-L1,agent,,,
            carol,Carol,,hub,tier2,boss,,maybe,
            alice,Alice again,,hub,,agent,,,
            """
        let error = try refusal { _ = try agents.importAgents(csv: Data(bad.utf8), file: "a.csv", actor: "root") }
        #expect(error.code == .invalidInput && error.field == "file")
        #expect(error.problems.contains { $0.hasPrefix("a.csv line 3, email:") }, "\(error.problems)")
        #expect(error.problems.contains { $0.hasPrefix("a.csv line 4, role:") })
        #expect(error.problems.contains { $0.hasPrefix("a.csv line 4, active:") })
        #expect(error.problems.contains { $0.hasPrefix("a.csv line 5:") && $0.contains("already on line 2") })
        #expect(try store.configBodies().isEmpty)

        let good = """
            name,display_name,email,site,groups,role,roles,active,calendar
            alice,Alice,alice@example.com,hub,billing-L1;field,lead,team_lead;duty_manager,true,
            "bob",Bob,,hub,billing-L1,agent,,false,
            """
        let published = try agents.importAgents(csv: Data(good.utf8), file: "a.csv", actor: "root")
        #expect(published.map(\.name) == ["alice", "bob"])
        let alice = try #require(try agents.directory().agent("alice"))
        #expect(alice.groups == ["billing-L1", "field"] && alice.roles == ["team_lead", "duty_manager"] && alice.role == .lead)
        #expect(try agents.directory().agent("bob")?.active == false)
        // The same file again publishes nothing.
        #expect(try agents.importAgents(csv: Data(good.utf8), file: "a.csv", actor: "root").isEmpty)
    }

    @Test func anUnknownHeaderIsNamedWithTheNearest() throws {
        let (_, agents, _) = try hub()
        let error = try refusal { _ = try agents.importAgents(csv: Data("name,displayname,site\na,A,hub\n".utf8), file: "a.csv", actor: "root") }
        #expect(error.problems.first?.contains("did you mean \"display_name\"") == true, "\(error.problems)")
    }

    // MARK: Names checked against the directory

    @Test func withNoAgentPublishedNamesAreFreeText() throws {
        let (_, _, desk) = try hub()
        let ticket = try desk.open(TicketDraft(subject: "VPN", group: "anything", assignee: "whoever"), now: Self.now)
        _ = try desk.update(ticket.id, FieldUpdate(assignee: "someone-else"), actor: "x")
        try desk.transfer(ticket.id, group: "nobody-group", reason: nil, actor: "x", now: Self.now)
    }

    @Test func unknownOrDeactivatedNamesAreRefusedAndNothingIsWritten() throws {
        let (store, agents, desk) = try hub()
        try seed(agents)
        let ticket = try desk.open(TicketDraft(subject: "VPN", group: "billing-L1", assignee: "alice"), now: Self.now)
        let before = try store.vector()
        let events = try store.detail(ticket.id).events.count

        let unknown = try refusal { _ = try desk.update(ticket.id, FieldUpdate(assignee: "alcie"), actor: "bob") }
        #expect(unknown.code == .invalidInput && unknown.field == "assignee")
        #expect(unknown.message.contains("Did you mean \"alice\"?"))
        let retired = try refusal { _ = try desk.update(ticket.id, FieldUpdate(assignee: "carol"), actor: "bob") }
        #expect(retired.field == "assignee" && retired.message.contains("deactivated"))
        // A deactivated agent is refused even when outsiders are allowed.
        #expect(try refusal { _ = try desk.update(ticket.id, FieldUpdate(assignee: "carol"), actor: "bob", allowUnknown: true) }.field == "assignee")
        let group = try refusal { try desk.transfer(ticket.id, group: "biling-L1", reason: nil, actor: "bob", now: Self.now) }
        #expect(group.field == "group" && group.message.contains("billing-L1@hub"))
        let up = try refusal {
            try desk.escalate(ticket.id, to: "tier3@hub", note: HandoffNote(summary: "s", verifiedFacts: "f", stepsTried: "t", requestedAction: "a"),
                              actor: "bob", now: Self.now)
        }
        #expect(up.field == "to")
        #expect(try refusal { _ = try desk.open(TicketDraft(subject: "x", assignee: "zed"), now: Self.now) }.field == "assignee")
        #expect(try store.vector() == before)
        #expect(try store.detail(ticket.id).events.count == events)

        // Allowed on purpose, a name from outside is taken.
        _ = try desk.update(ticket.id, FieldUpdate(assignee: "contractor-7"), actor: "bob", allowUnknown: true)
        #expect(try store.ticket(ticket.id).assignee == "contractor-7")
    }

    // MARK: The actor

    @Test func fieldChangesTagsAndReopenShowTheirActor() throws {
        let (store, _, desk) = try hub()
        let ticket = try desk.open(TicketDraft(subject: "VPN", actor: "olga"), now: Self.now)
        _ = try desk.update(ticket.id, FieldUpdate(status: .solved, assignee: "ann"), actor: "alice")
        try desk.tag(ticket.id, add: ["vpn"], remove: [], actor: "bob")
        try desk.reopen(ticket.id, actor: "carol")
        let items = try store.detail(ticket.id).events
        func by(_ body: String) -> String? { items.last { $0.body == body }?.actor }
        #expect(by("assignee → ann") == "alice")
        #expect(by("tag + vpn") == "bob")
        #expect(by("status → open") == "carol")
        #expect(by("subject → VPN") == "olga")
        #expect(items.first { $0.kind == .created }?.actor == "olga")
        // The attribution is not a history item of its own.
        #expect(!items.contains { $0.kind.rawValue == "attribution" })
        #expect(items.filter { $0.kind == .fieldChange }.allSatisfy { $0.actor != nil }, "\(items.map { ($0.body, $0.actor) })")
    }

    @Test func theAttributionTravelsWithTheBlock() throws {
        let hubKey = SiteKey.generate(), northKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey), north = try memoryStore("north", key: northKey)
        try admit([(hub, hubKey), (north, northKey)])
        let desk = try HelpDesk(store: hub)
        let ticket = try desk.open(TicketDraft(subject: "VPN"), now: Self.now)
        _ = try desk.update(ticket.id, FieldUpdate(priority: .high), actor: "alice")
        // A replica that receives the blocks shows the same actor.
        _ = try north.apply(try hub.blocks(after: try north.vector()))
        #expect(try north.detail(ticket.id).events.last { $0.body == "priority → high" }?.actor == "alice")
    }

    @Test func aCustomerMessageIsByTheCustomer() throws {
        let (store, _, desk) = try hub()
        let ticket = try desk.open(TicketDraft(subject: "VPN", customer: "acme"), now: Self.now)
        try desk.customerMessage(ticket.id, body: "still down", actor: "bob")
        #expect(try store.detail(ticket.id).events.last { $0.body == "still down" }?.actor == "acme")
    }

    @Test func theLocalActorIsKeptInThisStoreOnly() throws {
        let (store, agents, _) = try hub()
        try seed(agents)
        let before = try store.vector()
        try agents.use("alice")
        #expect(try agents.localActor() == "alice")
        #expect(try store.vector() == before)
        #expect(try refusal { try agents.use("alcie") }.message.contains("Did you mean \"alice\"?"))
        try agents.use(nil)
        #expect(try agents.localActor() == nil)
    }
}
