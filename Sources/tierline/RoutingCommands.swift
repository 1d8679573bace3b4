import ArgumentParser
import Escalation
import Foundation
import TicketModel

struct RoutingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing", abstract: "Routing rules at intake: check a rules file, try a ticket against it.",
        discussion: "A rules file routes each new ticket by the first rule whose every condition holds, else by its fallback; a node loads one with `serve --routing FILE`. Neither command needs a store.",
        subcommands: [Check.self, TryTicket.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a routing rules file and list its rules in the order they are tried.",
            discussion: "Exit 0 for a valid file; 1 with every problem (file: JSON path: what is wrong) on stderr for an invalid or unreadable one.")
        @Argument(help: "The JSON rules file.") var file: String
        @Flag(help: "Print one JSON document instead of a table.") var json = false

        func run() throws {
            let rules = try readRoutingRules(file)
            if json { return try printJSON(RulesOutput(file: file, rules: rules)) }
            print("\(file): \(rules.rules.count) rule(s) and a fallback; rules \(rules.version)")
            let rows = rules.rules.enumerated().map { i, rule in
                [String(i + 1), rule.name, rule.conditions.description, rule.actions.description]
            }
            printTable(["#", "NAME", "WHEN", "THEN"], rows + [["fallback", rules.fallback.name, "no rule matched", rules.fallback.actions.description]],
                       maxWidth: 240)
        }
    }

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

/// The rules of `file`, or a failure (exit 1) naming every problem.
private func readRoutingRules(_ file: String) throws -> RoutingRules {
    // Refuse an oversized file before reading it whole.
    if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int, size > RoutingRules.maximumFileBytes {
        throw CLIFailure(message: "\(file) is \(size) bytes; a routing rules file is at most \(RoutingRules.maximumFileBytes) bytes")
    }
    guard let data = FileManager.default.contents(atPath: file) else {
        throw CLIFailure(message: "cannot read \(file): no such file or not readable")
    }
    do { return try RoutingRules.load(data, file: file) } catch {
        throw CLIFailure(message: "\(file) is not a valid routing rules file; fix these:\n" + error.issues.map { "  " + $0.description }.joined(separator: "\n"))
    }
}

/// `routing check --json`: every key present, `null` when unset.
private struct RulesOutput: Encodable {
    var file: String
    var version: String
    var rules: [RuleOutput]
    var fallback: RuleOutput

    init(file: String, rules: RoutingRules) {
        self.file = file
        version = rules.version
        self.rules = rules.rules.map { RuleOutput($0, isFallback: false) }
        fallback = RuleOutput(rules.fallback, isFallback: true)
    }
}

private struct RuleOutput: Encodable {
    var rule: RoutingRule
    var isFallback: Bool

    init(_ rule: RoutingRule, isFallback: Bool) {
        self.rule = rule
        self.isFallback = isFallback
    }

    enum CodingKeys: String, CodingKey { case name, when, then }
    enum WhenKeys: String, CodingKey { case channel, category, keywords, customerTier, language, site }
    enum ThenKeys: String, CodingKey { case group, priority, tags, slaPolicy, escalate }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rule.name, forKey: .name)
        if isFallback {
            try c.encodeNil(forKey: .when)
        } else {
            let w = rule.conditions
            var when = c.nestedContainer(keyedBy: WhenKeys.self, forKey: .when)
            for (key, values) in [(WhenKeys.channel, w.channel), (.category, w.category), (.keywords, w.keywords),
                                  (.customerTier, w.customerTier), (.language, w.language), (.site, w.site)] {
                try when.encode(values, forKey: key)
            }
        }
        let a = rule.actions
        var then = c.nestedContainer(keyedBy: ThenKeys.self, forKey: .then)
        try then.encode(a.group, forKey: .group)
        try then.encode(a.priority?.rawValue, forKey: .priority)
        try then.encode(a.tags.isEmpty ? nil : a.tags, forKey: .tags)
        try then.encode(a.slaPolicy, forKey: .slaPolicy)
        try then.encode(a.escalate, forKey: .escalate)
    }
}

/// `routing test --json`: the decision, every key present, `null` when unset.
private struct DecisionOutput: Encodable {
    var file: String
    var version: String
    var decision: RoutingDecision

    enum CodingKeys: String, CodingKey {
        case file, version, rule, isFallback, position, group, priority, tags, slaPolicy, escalate, explanation
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let d = decision
        try c.encode(file, forKey: .file)
        try c.encode(version, forKey: .version)
        try c.encode(d.rule, forKey: .rule)
        try c.encode(d.isFallback, forKey: .isFallback)
        try c.encode(d.position, forKey: .position)
        try c.encode(d.group, forKey: .group)
        try c.encode(d.priority?.rawValue, forKey: .priority)
        try c.encode(d.tags, forKey: .tags)
        try c.encode(d.slaPolicy, forKey: .slaPolicy)
        try c.encode(d.escalate, forKey: .escalate)
        try c.encode(d.explanation, forKey: .explanation)
    }
}
