import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roster",
        abstract: "The fleet's members: which sites may sync, with which key and role.",
        discussion: """
            The coordinator signs the roster; every node pins the coordinator's public key at setup (`init \
            --coordinator-key` or `roster pin`) and accepts rosters only under it. A session with a site that is not \
            in the roster is refused before any block moves. A new site joins by handing its public key (printed by \
            `tierline init`) to the coordinator's operator, who runs `roster add`. Peers learn each edit at their next \
            session, or within a second on an open one.
            """,
        subcommands: [RosterList.self, RosterAdd.self, RosterRemove.self, RosterPin.self, RosterExport.self, RosterImport.self],
        defaultSubcommand: RosterList.self)
}
