import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Transfer: TicketWrite {
    static let configuration = CommandConfiguration(abstract: "Functional escalation: move a ticket sideways to another group (same tier).")
    static let done = "transferred"
    @OptionGroup var target: TicketTarget
    @Option(help: "The group that takes it.") var group: String
    @Option(help: "Why (kept in the history).") var reason: String?
    @Flag(help: "Take a group no agent of the directory works in (on purpose) instead of refusing it.") var allowUnknown = false

    func validate() throws {
        try validating { () throws(DeskError) in try HelpDesk.checkGroupName(group, field: "group") }
    }

    func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
        try desk.transfer(ticket, group: group, reason: reason, actor: actor, now: now, allowUnknown: allowUnknown)
    }
}
