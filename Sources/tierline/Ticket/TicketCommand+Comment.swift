import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Comment: TicketWrite {
        static let configuration = CommandConfiguration(abstract: "Add a reply, an internal note or a customer message.")
        static let done = "commented on"
        @OptionGroup var target: TicketTarget
        @Option(help: "The text.") var body: String
        @Flag(help: "An internal note, not shown to the customer.") var `internal` = false
        @Flag(help: "A message from the customer (it reopens a solved ticket).") var fromCustomer = false

        func validate() throws {
            if `internal` && fromCustomer { throw ValidationError("--internal and --from-customer exclude each other") }
        }

        func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
            _ = try fromCustomer ? desk.customerMessage(ticket, body: body, actor: actor)
                : `internal` ? desk.note(ticket, body: body, actor: actor) : desk.reply(ticket, body: body, actor: actor)
        }
    }
}
