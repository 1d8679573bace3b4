import ArgumentParser
import Desk
import Foundation
import TicketStore

extension Handoff {
    struct Withdraw: TicketWrite {
        static let configuration = CommandConfiguration(
            abstract: "Take back a handoff this site asked for that is not answered yet (to a wrong or silent site).")
        static let done = "withdrew the handoff of"
        @OptionGroup var target: TicketTarget
        @Option(help: "Why (kept in the history).") var reason: String?

        func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws {
            try desk.withdraw(ticket, reason: reason, actor: actor, now: now)
        }
    }
}
