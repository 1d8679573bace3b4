import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish agents from a CSV file (coordinator only): all of them, or none if any row has a problem.",
            discussion: "Header: name,display_name,email,site,groups,role,roles,active,calendar (name, display_name and site required). groups and roles are separated by ';'; active is true or false (empty: true). Every problem is reported with its line. An agent already published gets its next version; a row equal to it is left out.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The CSV file.") var file: String

        func run() throws {
            let data = try contents(of: file, hint: "; check the path and its permissions")
            let store = try options.open()
            let agents = try AgentDesk(store: store).importAgents(csv: data, file: file, actor: try actor.name(in: store, agent: false))
            try AgentCommand.report(agents, options, "published")
        }
    }
}
