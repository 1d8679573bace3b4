import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension IntakeCommand {
    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make, list and revoke API tokens (kept only as SHA-256 in this node's store).",
                                                        subcommands: [Add.self, List.self, Revoke.self, ReplyURL.self, UnmatchedRepliesCommand.self])
    }
}
