import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Comment: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a reply, an internal note or a customer message.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "The text.") var body: String
        @Flag(help: "An internal note, not shown to the customer.") var `internal` = false
        @Flag(help: "A message from the customer (it reopens a solved ticket).") var fromCustomer = false

        func validate() throws {
            if `internal` && fromCustomer { throw ValidationError("--internal and --from-customer exclude each other") }
        }

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            let record = try fromCustomer ? desk.customerMessage(id, body: body, actor: actor.actor)
                : `internal` ? desk.note(id, body: body, actor: actor.actor) : desk.reply(id, body: body, actor: actor.actor)
            try report(record, options, "commented on")
        }
    }
}
