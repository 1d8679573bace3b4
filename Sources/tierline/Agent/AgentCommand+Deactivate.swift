import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct Deactivate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire an agent (coordinator only): a new version with active false. It receives nothing more and is refused as an assignee; histories keep its name.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The agent's id.") var name: String

        func run() throws {
            let store = try options.open()
            let agent = try AgentDesk(store: store).deactivate(name, actor: try actor.name(in: store, agent: false))
            try AgentCommand.report([agent], options, "deactivated")
        }
    }
}
