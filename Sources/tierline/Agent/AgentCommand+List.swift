import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The agents this replica holds, newest version of each.")
        @OptionGroup var options: StoreOptions
        @Flag(help: "Only active agents.") var active = false

        func run() throws {
            let agents = try AgentDesk(store: options.open()).directory().agents.filter { !active || $0.active }
            if options.json { return try printJSON(agents.map(Row.init)) }
            if agents.isEmpty { return print("no agents published; names are free text until the coordinator publishes some (`tierline agent add`)") }
            printTable(AgentCommand.columns, agents.map(AgentCommand.cells))
        }
    }
}
