import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension Handoff {
    struct Accept: TicketWrite {
        static let configuration = CommandConfiguration(abstract: "Take the ticket: this site becomes its owning site.")
        static let done = "accepted"
        @OptionGroup var target: TicketTarget

        func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
            try desk.accept(ticket, actor: actor, now: now)
        }
    }
}
