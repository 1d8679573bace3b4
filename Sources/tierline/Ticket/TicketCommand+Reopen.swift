import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Reopen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open a solved or closed ticket again.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String

        func run() throws {
            let store = try options.open()
            try report(try HelpDesk(store: store).reopen(id, actor: try actor.name(in: store)), options, "reopened")
        }
    }
}
