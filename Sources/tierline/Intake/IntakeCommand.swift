import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

/// `tierline intake`: the credentials of the integrations that deliver tickets to this node.
struct IntakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intake", abstract: "Intake API tokens, one per integration (email gateway, chat, phone, portal, bots).",
        subcommands: [Token.self])

}
