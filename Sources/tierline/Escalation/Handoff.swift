import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Handoff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer cross-site handoffs addressed to this site, or withdraw one this site asked for.", subcommands: [Accept.self, Reject.self, Withdraw.self, List.self])

}
