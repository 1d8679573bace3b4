import ArgumentParser
import Escalation
import Foundation
import TicketModel

struct RoutingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing", abstract: "Routing rules at intake: check a rules file, try a ticket against it.",
        discussion: "A rules file routes each new ticket by the first rule whose every condition holds, else by its fallback; a node loads one with `serve --routing FILE`. Neither command needs a store.",
        subcommands: [Check.self, TryTicket.self])

}
