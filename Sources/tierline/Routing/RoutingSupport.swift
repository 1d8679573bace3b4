import ArgumentParser
import Escalation
import Foundation
import TicketModel
import TicketStore
import Desk

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
    /// A rule's conditions; the fallback has none (`null`).
    struct When: Encodable {
        @NullEncoded var channel: [String]?
        @NullEncoded var category: [String]?
        @NullEncoded var keywords: [String]?
        @NullEncoded var customerTier: [String]?
        @NullEncoded var language: [String]?
        @NullEncoded var site: [String]?
    }
    struct Then: Encodable {
        @NullEncoded var group: String?
        @NullEncoded var priority: String?
        @NullEncoded var tags: [String]?
        @NullEncoded var slaPolicy: String?
        @NullEncoded var escalate: String?
    }
    var name: String
    @NullEncoded var when: When?
    var then: Then

    init(_ rule: RoutingRule, isFallback: Bool) {
        name = rule.name
        let w = rule.conditions
        when = isFallback ? nil : When(channel: w.channel, category: w.category, keywords: w.keywords, customerTier: w.customerTier,
                                       language: w.language, site: w.site)
        let a = rule.actions
        then = Then(group: a.group, priority: a.priority?.rawValue, tags: a.tags.isEmpty ? nil : a.tags, slaPolicy: a.slaPolicy,
                    escalate: a.escalate)
    }
}

/// `routing test --json`: the decision, every key present, `null` when unset.
struct DecisionOutput: Encodable {
    var file: String
    var version: String
    var rule: String
    var isFallback: Bool
    @NullEncoded var position: Int?
    @NullEncoded var group: String?
    @NullEncoded var priority: String?
    var tags: [String]
    @NullEncoded var slaPolicy: String?
    @NullEncoded var escalate: String?
    var explanation: String

    init(file: String, version: String, decision d: RoutingDecision) {
        (self.file, self.version, rule, isFallback, tags, explanation) = (file, version, d.rule, d.isFallback, d.tags, d.explanation)
        (position, group, priority, slaPolicy, escalate) = (d.position, d.group, d.priority?.rawValue, d.slaPolicy, d.escalate)
    }
}

/// Refuses `rules` when they name a policy, ladder, group or site that the store's published
/// configuration and roster do not have: such a ladder never starts and such a policy never applies.
/// What `routing check --store` and `serve` (and `serve --check`) run.
/// - Returns: `false` when the store has no configuration published yet, so names could not be
///   checked (the caller says so); `true` when every name is known.
/// - Throws: ``CLIFailure`` (exit `code`) listing every unknown name.
@discardableResult
func checkRoutingNames(_ rules: RoutingRules, file: String, store: TicketDatabase, code: Int32) throws -> Bool {
    guard let issues = try EscalationDesk(store: store).unknownRoutingNames(rules, file: file) else { return false }
    guard !issues.isEmpty else { return true }
    throw CLIFailure(message: "\(file) names what this store does not have; publish it at the coordinator (or `tierline sync` with it"
                         + " if it was published since), or fix the routing file:\n" + issues.map { "  " + $0.description }.joined(separator: "\n"),
                     code: code)
}
