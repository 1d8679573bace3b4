import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct Ack: TicketWrite {
    static let configuration = CommandConfiguration(
        commandName: "ack", abstract: "Acknowledge a ticket's running escalation ladder: it holds until the ladder's ack timeout.")
    static let done = "acknowledged"
    @OptionGroup var target: TicketTarget

    func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
        try desk.acknowledge(ticket, actor: actor, now: now)
    }
}
