import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Ack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack", abstract: "Acknowledge a ticket's running escalation ladder: it holds until the ladder's ack timeout.")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.acknowledge(id, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "acknowledged")
    }
}
