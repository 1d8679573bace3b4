import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct TicketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticket", abstract: "Agents' daily work on tickets.",
        subcommands: [Create.self, List.self, Show.self, Update.self, Comment.self, Tag.self, Reopen.self, Import.self])
}
