import Escalation
import Foundation
import Testing
import TicketModel

/// The agent directory: `agent` documents as the configuration reader checks them, and the targets
/// of a ladder resolved to the agents who receive the notice.
@Suite struct AgentDirectoryTests {
    static let agents = [
        AgentDocument(name: "alice", version: 2, displayName: "Alice", email: "alice@example.com", site: "north",
                      groups: ["billing-L1"], role: .lead, roles: ["team_lead"]),
        AgentDocument(name: "bob", version: 1, displayName: "Bob", site: "north", groups: ["billing-L1", "field"], roles: []),
        AgentDocument(name: "carol", version: 3, displayName: "Carol", site: "north", groups: ["billing-L1"], roles: ["team_lead"], active: false),
        AgentDocument(name: "dora", version: 1, displayName: "Dora", site: "central", groups: ["tier2"], role: .manager, roles: ["site_manager"]),
        AgentDocument(name: "eve", version: 1, displayName: "Eve", site: "central", groups: ["tier2"], roles: ["coordinator", "team_lead"]),
        AgentDocument(name: "finn", version: 1, displayName: "Finn", site: "central", groups: ["tier2"], roles: []),
    ]
    static let matrix = try! JSONDecoder().decode(MatrixDocument.self, from: Data(#"""
        {"version": 1, "grace": "5m", "entries": [
          {"site": "north", "category": "billing", "tier": 2, "target": "tier2@central"},
          {"site": "*", "category": "*", "tier": 2, "target": "billing-L1@north"}]}
        """#.utf8))

    let directory = AgentDirectory(agents)
    let north = try! SiteID("north"), central = try! SiteID("central")

    func names(_ target: String, category: String? = nil, coordinator: SiteID? = try! SiteID("central")) -> [String] {
        directory.recipients(of: Target(target)!, owner: north, coordinator: coordinator, category: category, matrix: Self.matrix).map(\.name)
    }

    @Test func aGroupAtASiteReachesItsActiveAgents() {
        #expect(names("billing-L1@north") == ["alice", "bob"])  // carol is deactivated
        #expect(names("billing-L1@central") == [])
        #expect(names("tier2@central") == ["dora", "eve", "finn"])
    }

    @Test func aTierGoesThroughTheMatrixExactEntriesFirst() {
        #expect(names("tier:2", category: "billing") == ["dora", "eve", "finn"])
        #expect(names("tier:2", category: "hardware") == ["alice", "bob"])
        #expect(names("tier:3", category: "billing") == [])
    }

    @Test func aRoleIsAtTheOwningSiteUnlessItNamesOne() {
        #expect(names("role:team_lead") == ["alice"])
        #expect(names("role:team_lead@central") == ["eve"])
        #expect(names("role:site_manager") == [])
        #expect(names("role:site_manager@central") == ["dora"])
    }

    @Test func theCoordinatorTargetIsTheCoordinatorsManagersAndCoordinators() {
        #expect(names("coordinator") == ["dora", "eve"])
        #expect(names("coordinator", coordinator: nil) == [])
    }

    @Test func roleTargetsParseAndPrintWithAndWithoutASite() {
        #expect(Target("role:team_lead") == .role("team_lead", site: nil))
        #expect(Target("role:team_lead@central") == .role("team_lead", site: central))
        #expect(Target("role:team_lead@central")?.description == "role:team_lead@central")
        #expect(Target("role:@central") == nil)
        #expect(Target("role:x@Central!") == nil)
        #expect(Target("role:x@a@b") == nil)
    }

    @Test func lookupsAndSuggestions() {
        #expect(directory.isPublished)
        #expect(!AgentDirectory([]).isPublished)
        #expect(directory.agent("carol")?.active == false)
        #expect(directory.suggestion(for: "alcie") == "alice")
        #expect(directory.suggestion(for: "zzzzzz") == nil)
        #expect(directory.suggestion(group: "biling-L1", at: north) == "billing-L1@north")
        // Of two versions of one agent, the higher counts.
        let newer = AgentDirectory(Self.agents + [AgentDocument(name: "bob", version: 2, displayName: "Bob", site: "central")])
        #expect(newer.agent("bob")?.site == "central")
    }

    // MARK: Publishing agent documents

    func read(_ json: String, published: ConfigLibrary = ConfigLibrary(), allowUnknown: Bool = false) -> Result<[ConfigDocument], ConfigErrors> {
        Result { () throws(ConfigErrors) in try ConfigReader.read(Data(json.utf8), file: "a.json", published: published, allowUnknownTargets: allowUnknown) }
    }

    func problems(_ json: String, published: ConfigLibrary = ConfigLibrary()) -> [String] {
        if case .failure(let errors) = read(json, published: published) { return errors.issues.map(\.description) }
        return []
    }

    @Test func agentDocumentsAreReadWithDefaults() throws {
        let docs = try read(#"{"agents": [{"name": "alice", "version": 1, "displayName": "Alice", "site": "north"}]}"#).get()
        guard case .agent(let alice)? = docs.first else { Issue.record("no agent read"); return }
        #expect(alice.active && alice.groups.isEmpty && alice.roles.isEmpty && alice.role == .agent)
        #expect(docs.first?.key == "agent/alice")
    }

    @Test func badAgentValuesAreEachReported() {
        let found = problems(#"""
            {"agents": [{"name": "Alice!", "version": 1, "displayName": " ", "email": "alice-at-example", "site": "North",
                         "groups": ["a b"], "roles": ["Team Lead"], "calendar": "office"}]}
            """#)
        for path in ["agents[0].name", "agents[0].displayName", "agents[0].email", "agents[0].site", "agents[0].groups[0]",
                     "agents[0].roles[0]", "agents[0].calendar"] {
            #expect(found.contains { $0.hasPrefix("a.json: \(path):") }, "\(path) in \(found)")
        }
        #expect(problems(#"{"agents": [{"name": "a", "version": 1, "displayName": "A", "site": "north", "role": "boss"}]}"#)
            .contains { $0.contains("is not a role; use agent, lead or manager") })
    }

    @Test func agentVersionsOnlyGrow() throws {
        let v2 = AgentDocument(name: "alice", version: 2, displayName: "Alice", site: "north")
        let library = ConfigLibrary([.agent(v2)])
        let found = problems(#"{"agents": [{"name": "alice", "version": 1, "displayName": "Alice", "site": "north"}]}"#, published: library)
        #expect(found.contains { $0.contains("a new version must be higher") }, "\(found)")
    }

    @Test func ladderTargetsNamingNobodyAreRefusedOnceAgentsArePublished() throws {
        let library = ConfigLibrary(Self.agents.map(ConfigDocument.agent))
        let ladder = #"""
            {"ladders": [{"name": "l", "version": 1, "loops": 0, "levels": [
              {"delay": "0s", "targets": ["biling-L1@north", "role:team_leed", "role:team_lead@central", "tier2@central"], "assignment": "notify",
               "actions": ["watch:alcie", "watch:carol", "watch:bob"]}]}]}
            """#
        let found = problems(ladder, published: library)
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.contains("levels[0].actions[0]") && $0.contains("did you mean \"watch:alice\"") })
        #expect(found.contains { $0.contains("levels[0].actions[1]") && $0.contains("deactivated") })
        #expect(found.contains { $0.contains("levels[0].targets[0]") && $0.contains("did you mean \"billing-L1@north\"") })
        #expect(found.contains { $0.contains("levels[0].targets[1]") && $0.contains("did you mean \"role:team_lead\"") })
        // Allowed on purpose, or with no agent published, they pass.
        #expect((try? read(ladder, published: library, allowUnknown: true).get()) != nil)
        #expect((try? read(ladder).get()) != nil)
    }
}
