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
        @Argument(help: "The ticket's id or display number.") var id: String

        func run() throws {
            try report(try HelpDesk(store: options.open()).reopen(id), options, "reopened")
        }
    }
}
