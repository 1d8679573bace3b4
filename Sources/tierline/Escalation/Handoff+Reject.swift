import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension Handoff {
    struct Reject: TicketWrite {
        static let configuration = CommandConfiguration(abstract: "Decline the ticket; the origin keeps it and its ladder goes on.")
        static let done = "rejected"
        @OptionGroup var target: TicketTarget
        @Option(help: "Why (the origin reads it).") var reason: String

        func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
            try desk.reject(ticket, reason: reason, actor: actor, now: now)
        }
    }
}
