import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish an agent (coordinator only): version 1, or the next version of an agent added before (which also makes it active again).")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The agent's id: a-z, 0-9, ., _ and - (what --actor, --assignee and watchers name).") var name: String
        @Option(help: "The name people see (default: the id).") var displayName: String?
        @Option(help: "The agent's e-mail address.") var email: String?
        @Option(help: "The agent's home site.") var site: String
        @Option(name: .customLong("group"), help: "A group the agent works in at the home site (repeat for more).") var groups: [String] = []
        @Option(help: "agent, lead or manager.") var role: AgentRole = .agent
        @Option(name: .customLong("roles"), help: "Free-form roles that role: targets name, e.g. team_lead (repeat or separate with ;).") var roles: [String] = []
        @Option(help: "A published calendar giving the agent's working hours.") var calendar: String?

        func validate() throws {
            try validating { () throws(DeskError) in try AgentDesk.checkName(name, field: nil) }
        }

        func run() throws {
            let store = try options.open()
            let given = AgentDocument(name: name, version: 1, displayName: displayName ?? name, email: email, site: site, groups: groups, role: role,
                                      roles: roles.flatMap { $0.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty },
                                      calendar: calendar)
            let agent = try AgentDesk(store: store).add(given, actor: try actor.name(in: store, agent: false))
            try AgentCommand.report([agent], options, "published")
        }
    }
}

extension AgentRole: ExpressibleByArgument {}
