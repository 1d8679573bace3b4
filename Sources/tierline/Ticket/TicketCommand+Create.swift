import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open a ticket; prints its id and display number.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Option(help: "One line saying what is wrong.") var subject: String
        @Option(help: "low, normal, high or urgent.") var priority: Priority = .normal
        @Option(help: "The customer's id or address.") var customer: String?
        @Option(help: "Where the ticket came from: email, chat, phone, social, portal, bot, api.") var channel: String?
        @Option(help: "The group that works on it.") var group: String?
        @Option(help: "The agent who owns it.") var assignee: String?
        @Option(name: .customLong("tag"), help: "A tag (repeat for more).") var tags: [String] = []
        @Option(help: "The customer's first message.") var message: String?

        @Option(help: "The customer's tier (e.g. platinum): SLA policies and proactive rules match on it.") var customerTier: String?
        @Option(help: "The category (e.g. billing): the escalation matrix routes on it.") var category: String?
        @Flag(help: "Take a channel intake does not know, a customer tier nothing names, or an assignee or group from outside the agent directory (on purpose), instead of refusing it.") var allowUnknown = false

        func run() throws {
            let store = try options.open()
            // The matching SLA policy is pinned in the same transaction; a ticket opened before any
            // policy is pinned by the site's ticker once one arrives.
            let record = try HelpDesk(store: store).open(TicketDraft(
                subject: subject, priority: priority, customer: customer, channel: channel, group: group, assignee: assignee,
                tags: tags, firstMessage: message, actor: try actor.name(in: store), category: category, customerTier: customerTier), now: nowMillis(), allowUnknown: allowUnknown)
            try report(record, options, "created")
        }
    }
}
