import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

/// `tierline kb`: the knowledge base of resolutions.
struct KBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kb", abstract: "Knowledge articles written from resolutions, replicated to every site and searched with SQLite FTS5.",
        subcommands: [Add.self, Search.self, Link.self, List.self, Show.self])

}
