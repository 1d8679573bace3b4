import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension UnmatchedReplies: ExpressibleByArgument {}

extension IntakeCommand.Token {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token for an integration; it is printed once.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The integration's name (a-z, 0-9, . _ -).") var name: String
        @Option(name: .customLong("channel"), help: "A channel it may deliver (repeat; none = every channel): email, chat, phone, social, portal, bot, api.")
        var channels: [String] = []
        @Option(help: "What a message it delivers that matches no ticket does: open (a new ticket, the default) or refuse.")
        var unmatchedReplies: UnmatchedReplies = .open

        func validate() throws {
            for channel in channels where !IntakeChannel.all.contains(channel) {
                throw ValidationError("unknown channel '\(channel)'; channels: \(IntakeChannel.all.joined(separator: ", "))")
            }
        }

        func run() throws {
            let token = try options.open().addAPIToken(name: name, channels: channels, unmatchedReplies: unmatchedReplies)
            if options.json {
                struct Made: Encodable { var name: String; var token: String; var channels: [String]; var unmatchedReplies: UnmatchedReplies }
                return try printJSON(Made(name: name, token: token, channels: channels, unmatchedReplies: unmatchedReplies))
            }
            print("token for \(name) (shown only now; the store keeps its SHA-256):\n\(token)")
        }
    }
}
