import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Escalate: TicketWrite {
    static let configuration = CommandConfiguration(
        abstract: "Hierarchical escalation: move a ticket up to GROUP@SITE with a handoff note.",
        discussion: "At the owning site the group changes at once; to another site it is a handoff request that the receiver accepts (`tierline handoff accept`).")
    static let done = "escalated"
    @OptionGroup var target: TicketTarget
    @Option(help: "The target, GROUP@SITE (e.g. tier2@central).") var to: String
    @Option(help: "What the ticket is about, in a sentence or two.") var summary: String
    @Option(help: "Facts already verified with the customer.") var verifiedFacts: String
    @Option(help: "What was tried, and what happened.") var stepsTried: String
    @Option(help: "What the next tier is asked to do.") var requestedAction: String
    @Flag(help: "Take a group no agent of the directory works in (on purpose) instead of refusing it.") var allowUnknown = false

    func validate() throws {
        if Target(to).map({ if case .group = $0 { true } else { false } }) != true {
            throw ValidationError("--to takes GROUP@SITE, e.g. tier2@central; got \(to.debugDescription)")
        }
        try validating { () throws(DeskError) in try HelpDesk.check(note) }
    }

    var note: HandoffNote {
        HandoffNote(summary: summary, verifiedFacts: verifiedFacts, stepsTried: stepsTried, requestedAction: requestedAction)
    }

    func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
        try desk.escalate(ticket, to: to, note: note, actor: actor, now: now, allowUnknown: allowUnknown)
    }
}
