import Foundation
import Testing
@testable import Escalation

/// A routing file's names against a store's configuration (issue 22): a ladder the store does not
/// have never starts, so `routing check --store` and `serve` name every one.
@Suite struct RoutingNameTests {
    let rules = """
    {"rules": [
       {"name": "vip", "when": {"site": ["north", "nrth"]}, "then": {"group": "major-incident", "slaPolicy": "platinum", "escalate": "standrd"}},
       {"name": "billing", "when": {"category": ["billing"]}, "then": {"group": "billing", "escalate": "standard"}}],
     "fallback": {"name": "rest", "then": {"group": "first-line", "slaPolicy": "gold"}}}
    """
    let library = ConfigLibrary([
        .ladder(LadderDocument(name: "standard", version: 1, loops: 0, levels: [LevelDocument(delay: "0", targets: ["coordinator"], assignment: .notify)])),
        .agent(AgentDocument(name: "ana", version: 1, displayName: "Ana", site: "north", groups: ["billing", "first-line"])),
    ])

    @Test func everyUnknownLadderPolicyGroupAndSiteIsNamedWithItsPath() throws {
        let issues = try RoutingRules.load(Data(rules.utf8), file: "routing.json")
            .unknownNames(library: library, file: "routing.json", sites: ["hub", "north"]).map(\.description)
        #expect(issues.count == 5, "\(issues)")
        #expect(issues.contains { $0.hasPrefix("routing.json: rules[0].then.escalate: ladder \"standrd\"") && $0.contains("Did you mean \"standard\"?") })
        #expect(issues.contains { $0.hasPrefix("routing.json: rules[0].then.slaPolicy: SLA policy \"platinum\"") && $0.contains("none is published") })
        #expect(issues.contains { $0.hasPrefix("routing.json: rules[0].then.group: group \"major-incident\"") && $0.contains("published: billing, first-line") })
        #expect(issues.contains { $0.hasPrefix("routing.json: rules[0].when.site[1]: site \"nrth\" is not in the store's roster") })
        #expect(issues.contains { $0.hasPrefix("routing.json: fallback.then.slaPolicy: SLA policy \"gold\"") })
    }

    @Test func knownNamesAndFreeGroupsPass() throws {
        let file = #"{"rules": [{"name": "b", "when": {"site": ["north"]}, "then": {"group": "anything", "escalate": "standard"}}], "fallback": {"name": "f", "then": {"group": "x"}}}"#
        let ladderOnly = ConfigLibrary([.ladder(LadderDocument(name: "standard", version: 1, loops: 0,
                                                               levels: [LevelDocument(delay: "0", targets: ["coordinator"], assignment: .notify)]))])
        // No agent published: groups are free text; no roster: sites are not checked.
        #expect(try RoutingRules.load(Data(file.utf8), file: "r.json").unknownNames(library: ladderOnly, file: "r.json", sites: nil).isEmpty)
    }

    /// A ladder or matrix that hands tickets to a site the roster lacks makes handoffs that stay
    /// pending: `config publish` warns with each target and where it is.
    @Test func targetsAtSitesTheRosterLacksAreListed() {
        let documents: [ConfigDocument] = [
            .ladder(LadderDocument(name: "standard", version: 1, loops: 0, levels: [
                LevelDocument(delay: "0", targets: ["role:lead", "coordinator", "tier:2"], assignment: .notify),
                LevelDocument(delay: "1h", targets: ["tier2@hbu", "role:lead@hub", "role:duty@sout"], assignment: .transferSite)])),
            .matrix(MatrixDocument(version: 1, grace: "2m", entries: [MatrixEntry(site: "*", category: "*", tier: 2, target: "tier2@central"),
                                                                      MatrixEntry(site: "north", category: "*", tier: 3, target: "eng@hub")])),
        ]
        #expect(ConfigDocument.unlistedSites(in: documents, roster: ["hub", "north"]) == [
            "ladder standard level 2: tier2@hbu", "ladder standard level 2: role:duty@sout",
            "matrix tier 2 (site *, category *): tier2@central"])
        #expect(ConfigDocument.unlistedSites(in: documents, roster: ["hub", "north", "hbu", "sout", "central"]).isEmpty)
    }
}
