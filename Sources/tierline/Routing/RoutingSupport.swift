import ArgumentParser
import Escalation
import Foundation
import TicketModel

/// The rules of `file`, or a usage failure (exit 2) naming every problem: `serve` refuses the
/// same file the same way.
func readRoutingRules(_ file: String) throws -> RoutingRules {
    do { return try RoutingRules.load(path: file) } catch {
        throw CLIFailure(message: "\(file) is not a valid routing rules file; fix these:\n" + error.issues.map { "  " + $0.description }.joined(separator: "\n"),
                         code: 2)
    }
}

/// `routing check --json`: every key present, `null` when unset.
struct RulesOutput: Encodable {
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

struct RuleOutput: Encodable {
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
struct DecisionOutput: Encodable {
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
