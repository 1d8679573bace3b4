import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension IntakeCommand.Token {
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a token from now on.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The token's name.") var name: String
        func run() throws {
            try options.open().revokeAPIToken(name: name)
            if options.json { return try printJSON(["revoked": name]) }
            print("revoked \(name)")
        }
    }
}
