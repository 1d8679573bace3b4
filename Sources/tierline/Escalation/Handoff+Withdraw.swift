import ArgumentParser
import Desk
import Foundation
import TicketStore

extension Handoff {
    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take back a handoff this site asked for that is not answered yet (to a wrong or silent site).")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "Why (kept in the history).") var reason: String?

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            try desk.withdraw(id, reason: reason, actor: actor.actor, now: nowMillis())
            try report(try desk.store.ticket(id), options, "withdrew the handoff of")
        }
    }
}
