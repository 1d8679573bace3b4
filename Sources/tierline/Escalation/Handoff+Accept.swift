import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension Handoff {
    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take the ticket: this site becomes its owning site.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            try desk.accept(id, actor: actor.actor, now: nowMillis())
            try report(try desk.store.ticket(id), options, "accepted")
        }
    }
}
