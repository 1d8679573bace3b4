import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Escalate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hierarchical escalation: move a ticket up to GROUP@SITE with a handoff note.",
        discussion: "At the owning site the group changes at once; to another site it is a handoff request that the receiver accepts (`tierline handoff accept`).")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String
    @Option(help: "The target, GROUP@SITE (e.g. tier2@central).") var to: String
    @Option(help: "What the ticket is about, in a sentence or two.") var summary: String
    @Option(help: "Facts already verified with the customer.") var verifiedFacts: String
    @Option(help: "What was tried, and what happened.") var stepsTried: String
    @Option(help: "What the next tier is asked to do.") var requestedAction: String

    func validate() throws {
        if Target(to).map({ if case .group = $0 { true } else { false } }) != true {
            throw ValidationError("--to takes GROUP@SITE, e.g. tier2@central; got \(to.debugDescription)")
        }
        try validating { () throws(DeskError) in try HelpDesk.check(note) }
    }

    var note: HandoffNote {
        HandoffNote(summary: summary, verifiedFacts: verifiedFacts, stepsTried: stepsTried, requestedAction: requestedAction)
    }

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.escalate(id, to: to, note: note, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "escalated")
    }
}
