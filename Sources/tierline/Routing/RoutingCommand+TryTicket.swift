import ArgumentParser
import Escalation
import Foundation
import TicketModel

extension RoutingCommand {
    struct TryTicket: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test", abstract: "Route a made-up ticket with a rules file and print the decision.")
        @Argument(help: "The JSON rules file.") var file: String
        @Option(help: "How the ticket came in: \(RoutingRules.channels.joined(separator: ", ")).") var channel: String
        @Option(help: "The ticket's subject.") var subject: String
        @Option(help: "The customer's first message.") var message: String = ""
        @Option(help: "The ticket's category.") var category: String?
        @Option(help: "The customer's tier.") var customerTier: String?
        @Option(help: "The ticket's language tag, e.g. de or en-GB.") var language: String?
        @Option(help: "The site the ticket is opened at (without it, rules with a site condition do not match).") var site: String?
        @Flag(help: "Print one JSON document instead of text.") var json = false

        func validate() throws {
            if !RoutingRules.channels.contains(channel.lowercased()) {
                throw ValidationError("--channel takes one of \(RoutingRules.channels.joined(separator: ", ")); got \(channel.debugDescription)")
            }
        }

        func run() throws {
            let rules = try readRoutingRules(file)
            let decision = rules.route(RoutingFacts(channel: channel, category: category, subject: subject, message: message,
                                                    customerTier: customerTier, language: language, site: site ?? ""))
            if json { return try printJSON(DecisionOutput(file: file, version: rules.version, decision: decision)) }
            print(decision.explanation)
            let pairs = [("group", decision.group), ("priority", decision.priority?.rawValue),
                         ("tags", decision.tags.isEmpty ? nil : decision.tags.joined(separator: ", ")),
                         ("SLA policy", decision.slaPolicy), ("escalate", decision.escalate)]
            let width = pairs.map(\.0.count).max() ?? 0
            for (key, value) in pairs { print("  " + key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + (value ?? "—")) }
        }
    }
}
