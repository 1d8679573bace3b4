import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension Handoff {
    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline the ticket; the origin keeps it and its ladder goes on.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "Why (the origin reads it).") var reason: String

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            try desk.reject(id, reason: reason, actor: actor.actor, now: nowMillis())
            try report(try desk.store.ticket(id), options, "rejected")
        }
    }
}
