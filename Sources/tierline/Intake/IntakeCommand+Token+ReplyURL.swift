import ArgumentParser
import Foundation
import TicketStore

extension IntakeCommand.Token {
    struct ReplyURL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reply-url",
            abstract: "Register the webhook that receives public replies on an integration's tickets; prints its signing secret once.",
            discussion: "Deliveries are signed in the Standard Webhooks scheme (webhook-id, webhook-timestamp, webhook-signature) with the whsec_ secret printed here, kept only in this node's store. Running it again replaces the URL and the secret.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The integration's token name (`tierline intake token list`).") var name: String
        @Argument(help: "The http(s) URL replies are POSTed to.") var url: String

        func run() throws {
            let secret = try options.open().setReplyWebhook(integration: name, url: url)
            if options.json {
                struct Made: Encodable { var name: String; var url: String; var secret: String }
                return try printJSON(Made(name: name, url: url, secret: secret))
            }
            print("reply webhook of \(name): \(url)\nsigning secret (shown only now; verify webhook-signature with it):\n\(secret)")
        }
    }
}
