import StrictJSON
import TicketModel

extension RoutingRules {
    /// The names the rules use that a store's published configuration (and roster) does not have:
    /// an SLA policy or a ladder no published version names, a group no published agent works in
    /// (once agents are published), a site the roster does not list.
    ///
    /// A rules file is read on its own (``load(_:file:)``); the names it gives only mean something
    /// against a store. A ladder it names that the store does not have never starts, and a policy
    /// falls back to matching, silently: `routing check --store` and `serve` ask this first.
    ///
    /// ```swift
    /// let issues = rules.unknownNames(library: library, sites: roster.sites.map(\.site))
    /// // routing.json: rules[0].then.escalate: ladder "standard" is not published (published: breach, platinum)
    /// ```
    /// Pure; runs on the caller's thread.
    /// - Parameters:
    ///   - library: the store's published configuration. With nothing published every policy and
    ///     ladder named is unknown.
    ///   - file: the rules file's name, for the issues.
    ///   - sites: the active sites of the store's roster, or `nil` when it has none (sites unchecked).
    /// - Returns: one issue per unknown name, with its JSON path; empty when every name is known.
    public func unknownNames(library: ConfigLibrary, file: String, sites: [String]?) -> [ConfigIssue] {
        let current = library.current
        func names(_ kind: ConfigDocument.Kind) -> [String] { current.filter { $0.kind == kind }.map(\.name).sorted() }
        let policies = names(.policy), ladders = names(.ladder)
        // A rule's group is one at the site the ticket arrives at: the agents there are the list (the
        // ladders and the matrix name the tiers above, not the first line).
        let groups = Set(AgentDirectory(library: library).agents.filter(\.active).flatMap(\.groups))
        var issues: [ConfigIssue] = []
        func unknown(_ what: String, _ name: String, in known: [String], at path: String) {
            let near = StrictJSON.nearest(name, in: Set(known), within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
            let list = known.isEmpty ? "none is published" : "published: " + known.joined(separator: ", ")
            issues.append(ConfigIssue(file: file, path: path, "\(what) \(name.debugDescription) is not in the store's published configuration (\(list)).\(near)"))
        }
        for (index, rule) in (rules + [fallback]).enumerated() {
            let path = index < rules.count ? "rules[\(index)]" : "fallback"
            let actions = rule.actions
            if let name = actions.slaPolicy, !policies.contains(name) { unknown("SLA policy", name, in: policies, at: "\(path).then.slaPolicy") }
            if let name = actions.escalate, !ladders.contains(name) { unknown("ladder", name, in: ladders, at: "\(path).then.escalate") }
            // Groups are free text until agents are published.
            if let group = actions.group, !groups.isEmpty, !groups.contains(group) {
                unknown("group", group, in: groups.sorted(), at: "\(path).then.group")
            }
            if let sites, let listed = rule.conditions.site {
                for (i, site) in listed.enumerated() where !sites.contains(site.lowercased()) {
                    let near = StrictJSON.nearest(site.lowercased(), in: Set(sites), within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
                    issues.append(ConfigIssue(file: file, path: "\(path).when.site[\(i)]",
                                              "site \(site.debugDescription) is not in the store's roster (sites: \(sites.sorted().joined(separator: ", "))).\(near)"))
                }
            }
        }
        return issues
    }
}

extension ConfigDocument {
    /// The sites the ladders' and the matrix's targets name (`group@site`, `role:NAME@site`, a
    /// matrix entry's target) that `roster` does not list, each with where: a handoff a ladder makes
    /// to such a site stays pending until the owning site withdraws it.
    ///
    /// Configuration may be published before a site joins, so this is for a warning, not a refusal.
    /// Pure; runs on the caller's thread.
    /// - Returns: `"ladder standard level 2: tier2@central"`-like lines; empty when every site is listed.
    public static func unlistedSites(in documents: [ConfigDocument], roster sites: Set<String>) -> [String] {
        func site(_ text: String) -> String? {
            switch Target(text) {
            case .group(_, let site)?: site.rawValue
            case .role(_, let site?)?: site.rawValue
            default: nil
            }
        }
        var found: [String] = []
        for document in documents {
            switch document {
            case .ladder(let ladder):
                for (i, level) in ladder.levels.enumerated() {
                    for target in level.targets where site(target).map({ !sites.contains($0) }) ?? false {
                        found.append("ladder \(ladder.name) level \(i + 1): \(target)")
                    }
                }
            case .matrix(let matrix):
                for entry in matrix.entries where site(entry.target).map({ !sites.contains($0) }) ?? false {
                    found.append("matrix tier \(entry.tier) (site \(entry.site), category \(entry.category)): \(entry.target)")
                }
            default: break
            }
        }
        return found
    }
}
