import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension IntakeCommand.Token {
    struct List: StoreListing {
        static let configuration = CommandConfiguration(abstract: "Tokens of this node (names and channels, never the tokens).")
        static let columns = ["NAME", "CHANNELS", "UNMATCHED REPLIES", "CREATED", "REVOKED"]
        @OptionGroup var options: StoreOptions

        func items(in store: TicketDatabase) throws -> [APIToken] { try store.apiTokens() }

        func row(_ t: APIToken) -> [String] {
            [t.name, t.channels.isEmpty ? "all" : t.channels.joined(separator: ","), t.unmatchedReplies.rawValue, t.createdAt, t.revokedAt ?? "—"]
        }
    }
}
