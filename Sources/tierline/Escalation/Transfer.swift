import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Transfer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Functional escalation: move a ticket sideways to another group (same tier).")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String
    @Option(help: "The group that takes it.") var group: String
    @Option(help: "Why (kept in the history).") var reason: String?

    func validate() throws {
        try validating { () throws(DeskError) in try HelpDesk.checkGroupName(group, field: "group") }
    }

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.transfer(id, group: group, reason: reason, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "transferred")
    }
}
