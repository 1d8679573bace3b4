import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension IntakeCommand.Token {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tokens of this node (names and channels, never the tokens).")
        @OptionGroup var options: StoreOptions
        func run() throws {
            let tokens = try options.open().apiTokens()
            if options.json { return try printJSON(tokens) }
            printTable(["NAME", "CHANNELS", "CREATED", "REVOKED"], tokens.map {
                [$0.name, $0.channels.isEmpty ? "all" : $0.channels.joined(separator: ","), $0.createdAt, $0.revokedAt ?? "—"]
            })
        }
    }
}
