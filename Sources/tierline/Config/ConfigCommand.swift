import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Replicated escalation configuration: calendars, SLA policies, ladders, the matrix, rules.",
        subcommands: [Publish.self, Show.self])

}
