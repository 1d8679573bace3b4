import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One agent of the directory.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The agent's id.") var name: String

        func run() throws {
            let directory = try AgentDesk(store: options.open()).directory()
            guard let agent = directory.agent(name) else {
                throw DeskError(.notFound, "no agent \(name.debugDescription) in the directory"
                                + (directory.suggestion(for: name).map { "; did you mean \"\($0)\"?" } ?? "; `tierline agent list` shows them"))
            }
            if options.json { return try printJSON(Row(agent)) }
            let pairs: [(String, String)] = [
                ("name", agent.name), ("display name", agent.displayName), ("email", agent.email ?? "—"), ("site", agent.site),
                ("groups", agent.groups.isEmpty ? "—" : agent.groups.joined(separator: ", ")), ("role", agent.role.rawValue),
                ("roles", agent.roles.isEmpty ? "—" : agent.roles.joined(separator: ", ")), ("active", agent.active ? "yes" : "no"),
                ("calendar", agent.calendar ?? "—"), ("version", String(agent.version)),
            ]
            for (key, value) in pairs { print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + "  " + TerminalText.visible(value)) }
        }
    }
}
