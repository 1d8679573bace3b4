import StrictJSON
import TicketModel

/// The agents the coordinator has published, as this replica holds them: the newest version of each.
///
/// Pure and cheap to build from a ``ConfigLibrary``; every replica that holds the same versions
/// resolves a target to the same agents. With no agent published (``isPublished`` false) names are
/// free text, as before the directory existed.
///
/// ```swift
/// let directory = AgentDirectory(library: try desk.library())
/// let leads = directory.recipients(of: Target("role:team_lead")!, owner: "north", coordinator: "central",
///                                  category: "billing", matrix: library.matrix)
/// ```
///
/// ## Topics
/// - ``agent(_:)``
/// - ``suggestion(for:)``
/// - ``recipients(of:owner:coordinator:category:matrix:)``
public struct AgentDirectory: Sendable {
    /// Every agent, active or not, by name.
    public let agents: [AgentDocument]
    private let byName: [String: AgentDocument]

    /// The directory of the newest agent versions of `library`.
    public init(library: ConfigLibrary) { self.init(library.agents) }

    /// A directory of `agents`; of two with one name, the higher version is kept.
    public init(_ agents: [AgentDocument]) {
        var byName: [String: AgentDocument] = [:]
        for agent in agents where (byName[agent.name]?.version ?? .min) < agent.version { byName[agent.name] = agent }
        self.byName = byName
        self.agents = byName.values.sorted { $0.name < $1.name }
    }

    /// Whether any agent is published: only then are names checked against the directory.
    public var isPublished: Bool { !agents.isEmpty }

    /// The agent named `name` (active or not), if published.
    public func agent(_ name: String) -> AgentDocument? { byName[name] }

    /// The published agent name nearest to `name`, for a did-you-mean.
    public func suggestion(for name: String) -> String? {
        StrictJSON.nearest(name, in: Set(byName.keys), within: 2)
    }

    /// Whether some active agent works in `group` at `site`.
    public func hasGroup(_ group: String, at site: SiteID) -> Bool {
        agents.contains { $0.active && $0.site == site.rawValue && $0.groups.contains(group) }
    }

    /// The `group@site` nearest to `group` at `site` (or anywhere), for a did-you-mean.
    public func suggestion(group: String, at site: SiteID) -> String? {
        let known = Set(agents.filter(\.active).flatMap { a in a.groups.map { "\($0)@\(a.site)" } })
        return StrictJSON.nearest("\(group)@\(site.rawValue)", in: known, within: 3)
    }

    /// Whether some active agent has `role` in its roles, at `site` if one is given.
    public func hasRole(_ role: String, at site: SiteID?) -> Bool {
        agents.contains { agent in agent.active && agent.roles.contains(role) && (site.map { agent.site == $0.rawValue } ?? true) }
    }

    /// The published role nearest to `role`, for a did-you-mean.
    public func suggestion(role: String) -> String? {
        StrictJSON.nearest(role, in: Set(agents.filter(\.active).flatMap(\.roles)), within: 2)
    }

    /// The active agents who receive a notice for `target`.
    ///
    /// - `group@site`: the agents of that site in that group;
    /// - `tier:N`: the matrix's entry for (owner or `*`, category or `*`, N), then as `group@site`;
    /// - `role:x`: the agents with role `x` at the owning site; `role:x@site` at that site;
    /// - `coordinator`: the agents at the coordinator's site with the role `coordinator`, or whose
    ///   ``AgentDocument/role`` is `manager`.
    ///
    /// - Parameters:
    ///   - owner: the ticket's owning site.
    ///   - coordinator: the coordinator's site, if the roster names one.
    ///   - category: the ticket's category, for `tier:N`.
    ///   - matrix: the matrix version the ticket pinned (or the newest), for `tier:N`.
    /// - Returns: the agents, by name; empty when the target names nobody (or an unresolved tier).
    public func recipients(of target: Target, owner: SiteID, coordinator: SiteID?, category: String?,
                           matrix: MatrixDocument?) -> [AgentDocument] {
        let active = agents.filter(\.active)
        switch target {
        case .group(let group, let site):
            return active.filter { $0.site == site.rawValue && $0.groups.contains(group) }
        case .tier:
            let resolved = EscalationEngine.resolve(target, site: owner, category: category, matrix: matrix)
            guard case .group = resolved else { return [] }
            return recipients(of: resolved, owner: owner, coordinator: coordinator, category: category, matrix: matrix)
        case .role(let role, let site):
            let at = (site ?? owner).rawValue
            return active.filter { $0.site == at && $0.roles.contains(role) }
        case .coordinator:
            guard let coordinator else { return [] }
            return active.filter { $0.site == coordinator.rawValue && ($0.roles.contains("coordinator") || $0.role == .manager) }
        }
    }
}

extension AgentDocument {
    /// An address the mail sender accepts (``EmailAddress/isValid(_:)``: a plain dot-atom local part,
    /// an ASCII domain, at most 254 bytes) whose domain has a dot. Delivery is the proof; this catches
    /// slips, and never lets in an address every notice to which would go to the dead letters.
    public static func isEmail(_ text: String) -> Bool {
        EmailAddress.isValid(text) && text.split(separator: "@").last?.contains(".") == true
    }
}
