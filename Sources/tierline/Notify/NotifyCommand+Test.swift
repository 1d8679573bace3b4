import ArgumentParser
import Foundation
import Notify
import SyncNode
import TicketModel
import TicketStore

extension NotifyCommand {
    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put test notices in the outbox, for the running node (or `tierline outbox send`) to send.",
            discussion: "Each notice has its own idempotency key (printed; --json lists them): the Message-ID of the e-mail, the webhook-id of the webhook. `tierline outbox list` shows how each went. --email and --webhook need the node's --config; --integration tests an intake integration's reply webhook (`tierline intake token reply-url`).")
        @OptionGroup var options: StoreOptions
        @Option(help: "The node's JSON settings file.") var config: String?
        @Option(help: "Send the test to this e-mail address through notifications.smtp.") var email: String?
        @Option(help: "Send the test to this webhook of notifications.webhooks.") var webhook: String?
        @Option(help: "Send the test to this intake integration's reply webhook.") var integration: String?
        @Option(help: "How many notices (1…10000), for a burst.") var count = 1

        func validate() throws {
            guard [email, webhook, integration].compactMap({ $0 }).count == 1 else {
                throw ValidationError("give one of --email ADDRESS, --webhook NAME or --integration NAME")
            }
            guard (1...10_000).contains(count) else { throw ValidationError("--count must be between 1 and 10000") }
            if let email, !EmailAddress.isValid(email) {
                // Queued, it could only go to the dead letters: the sender refuses it.
                throw ValidationError("--email \(email.debugDescription) is not an address the sender takes: local@domain, the local part ASCII letters, digits and !#$%&'*+/=?^_`{|}~.- (no quotes, brackets or spaces), the domain ASCII labels")
            }
            guard config != nil || integration != nil else { throw ValidationError("--email and --webhook need --config, the node's settings file") }
        }

        /// The channel and recipient of the test notices, checked against the settings and the store.
        func target(_ setup: NotificationSetup, _ store: TicketDatabase) throws -> (channel: String, recipient: String) {
            let file = config ?? "the settings"
            if let email {
                guard setup.node.notifications.smtp != nil else {
                    throw CLIFailure(message: "\(file) has no notifications.smtp: add the mail relay (host, port, security, username, passwordFile, from) first", code: 2)
                }
                return ("email", email)
            }
            if let webhook {
                let known = setup.node.notifications.webhooks.map(\.name)
                guard known.contains(webhook) else {
                    throw CLIFailure(message: "\(file) has no webhook named \(webhook) in notifications.webhooks" + (known.isEmpty ? "" : "; it has \(known.joined(separator: ", "))"), code: 2)
                }
                return ("webhook:\(webhook)", webhook)
            }
            let name = integration ?? ""
            guard try store.replyWebhook(integration: name) != nil else {
                throw CLIFailure(message: "integration \(name) has no reply webhook (or no live token); `tierline intake token reply-url \(name) URL` registers one", code: 2)
            }
            return ("integration:\(name)", name)
        }

        func run() throws {
            let setup = try NotificationSetup(config: config)
            let store = try setup.open(options)
            let (channel, recipient) = try target(setup, store)
            let site = try store.identity().site.rawValue
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let run = "\(now)-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let drafts = (1...count).map { n in
                let key = "test.\(site).\(run).\(n)"
                let subject = "Tierline test notice \(n) of \(count) from site \(site)"
                let body: String
                if email != nil {
                    body = "This is a test notice from the Tierline node of site \(site) (`tierline notify test`).\nIts key, also its Message-ID: \(key)\n"
                } else {
                    let object: [String: Any] = ["type": "test", "key": key, "site": site, "sequence": n, "count": count, "subject": subject]
                    body = String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
                }
                return OutboxDraft(key: key, channel: channel, recipient: recipient, kind: "test", ticket: nil,
                                   subject: subject, body: body, notBefore: now)
            }
            try store.enqueue(drafts)
            if options.json {
                struct Output: Encodable { var channel: String; var recipient: String; var keys: [String] }
                return try printJSON(Output(channel: channel, recipient: recipient, keys: drafts.map(\.key)))
            }
            print("\(count) test \(count == 1 ? "notice" : "notices") for \(channel == "email" ? recipient : channel) in the outbox (keys test.\(site).\(run).1…\(count)); `tierline serve` or `tierline outbox send` sends them, `tierline outbox list` shows how they went")
        }
    }
}
