import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketModel
import TicketStore

/// `tierline agent`: the agent directory, published by the coordinator and replicated to every site.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "The agent directory (who assignees, watchers, --actor and ladder targets name), published by the coordinator.",
        discussion: "Once any agent is published, an assignee, a group or a ladder target that names nobody in the directory is refused with a did-you-mean (--allow-unknown admits a name from outside).",
        subcommands: [Add.self, List.self, Show.self, Deactivate.self, Import.self, Use.self, Password.self, Token.self])

    /// One agent as `list`, `show` and the writes print it with `--json`.
    struct Row: Encodable {
        var name: String
        var version: Int
        var displayName: String
        @NullEncoded var email: String?
        var site: String
        var groups: [String]
        var role: String
        var roles: [String]
        var active: Bool
        @NullEncoded var calendar: String?

        init(_ a: AgentDocument) {
            (name, version, displayName, email, site) = (a.name, a.version, a.displayName, a.email, a.site)
            (groups, role, roles, active, calendar) = (a.groups, a.role.rawValue, a.roles, a.active, a.calendar)
        }
    }

    static let columns = ["NAME", "DISPLAY NAME", "SITE", "GROUPS", "ROLE", "ROLES", "ACTIVE", "VERSION"]

    static func cells(_ a: AgentDocument) -> [String] {
        [a.name, a.displayName, a.site, a.groups.isEmpty ? "—" : a.groups.joined(separator: ","), a.role.rawValue,
         a.roles.isEmpty ? "—" : a.roles.joined(separator: ","), a.active ? "yes" : "no", String(a.version)]
    }

    /// Prints published versions: a table, or one JSON array with `--json`.
    static func report(_ agents: [AgentDocument], _ options: StoreOptions, _ verb: String) throws {
        if options.json { return try printJSON(agents.map(Row.init)) }
        if agents.isEmpty { return print("nothing new: the directory already holds every agent as given") }
        print("\(verb) \(agents.count) agent version(s):")
        printTable(columns, agents.map(cells))
    }
}
