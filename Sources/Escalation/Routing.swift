import Crypto
import Foundation
import StrictJSON
import TicketModel

/// The routing rules a node applies at intake: functional escalation at the door.
///
/// A rules file lists rules tried in order; the first rule whose every condition holds routes the
/// ticket (a group, a priority, tags, an SLA policy, a ladder to start now), and the `fallback`
/// routes the tickets no rule matched:
///
/// ```swift
/// let rules = try RoutingRules.load(bytes, file: "routing.json")
/// let decision = rules.route(RoutingFacts(channel: "phone", category: "outage", subject: "Site down",
///                                         customerTier: "platinum", language: "en", site: "north"))
/// decision.group        // "major-incident"
/// decision.explanation  // rule platinum-outage (#1 of 2, rules 3f2a9c1d0b7e): channel phone, …
/// ```
///
/// Everything here is pure: the caller reads the file and passes its bytes, and routing reads only
/// the facts it is given. ``route(_:)`` runs on the caller's thread and takes time in proportion to
/// the rules times the words of the subject and first message.
///
/// ## Topics
/// - ``load(_:file:)``
/// - ``route(_:)``
/// - ``RoutingRule``
/// - ``RoutingFacts``
/// - ``RoutingDecision``
/// - ``RoutingError``
public struct RoutingRules: Sendable, Equatable {
    /// The rules, tried in this order.
    public var rules: [RoutingRule]
    /// What applies to a ticket no rule matched; it has no conditions.
    public var fallback: RoutingRule
    /// First 12 hex digits of the SHA-256 of the file's bytes: names the version that routed a ticket.
    public var version: String

    /// The values a `channel` condition may list.
    public static let channels = ["email", "chat", "phone", "social", "portal", "bot", "api"]

    /// The largest rules file ``load(_:file:)`` reads.
    public static let maximumFileBytes = 1 << 20

    public init(rules: [RoutingRule], fallback: RoutingRule, version: String) {
        self.rules = rules
        self.fallback = fallback
        self.version = version
    }

    /// Reads and checks a routing rules file.
    ///
    /// The file is one JSON object, `{"rules": [...], "fallback": {...}}`; each rule is
    /// `{"name", "when", "then"}` (the fallback has no `when`). Nothing of a file with a problem is
    /// used: every problem is collected, not just the first.
    ///
    /// ```swift
    /// do { rules = try RoutingRules.load(bytes, file: path) } catch {
    ///     print(error)  // routing.json: rules[2].when.chanel: unknown key; known keys: category, …
    /// }
    /// ```
    /// - Parameters:
    ///   - data: the file's bytes, at most ``maximumFileBytes``.
    ///   - file: the file's name, for the messages.
    /// - Returns: the rules, with ``version`` taken from `data`.
    /// - Throws: ``RoutingError`` with every problem found, each naming the JSON path of the value.
    /// The rules of the file at `path`: what `serve` and `routing check` both read. A file over
    /// ``maximumFileBytes`` is refused before it is read whole.
    public static func load(path: String) throws(RoutingError) -> RoutingRules {
        func refuse(_ message: String) -> RoutingError { RoutingError(file: path, issues: [ConfigIssue(file: path, path: "", message)]) }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maximumFileBytes {
            throw refuse("the file is \(size) bytes; a routing rules file is at most \(maximumFileBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw refuse("cannot read the routing file; check the path and its permissions")
        }
        return try load(data, file: path)
    }

    public static func load(_ data: Data, file: String) throws(RoutingError) -> RoutingRules {
        var reader = RoutingReader(file: file)
        guard case let (rules, fallback)? = reader.document(data), reader.issues.isEmpty else {
            throw RoutingError(file: file, issues: reader.issues)
        }
        return RoutingRules(rules: rules, fallback: fallback, version: String(SHA256.hash(data: data).hexString.prefix(12)))
    }

    /// Routes one new ticket: the first rule whose every condition holds, else the fallback.
    ///
    /// - Returns: what the rule sets, with the rule's name and position and a one-line explanation
    ///   of what matched.
    public func route(_ facts: RoutingFacts) -> RoutingDecision {
        let text = rules.contains { $0.conditions.keywords != nil } ? TicketWords(facts) : TicketWords()
        for (position, rule) in rules.enumerated() {
            guard let matched = rule.conditions.matches(facts, text) else { continue }
            let why = matched.isEmpty ? "no conditions" : matched.joined(separator: ", ")
            return RoutingDecision(rule, position: position,
                                   explanation: "rule \(rule.name) (#\(position + 1) of \(rules.count), rules \(version)): \(why)")
        }
        return RoutingDecision(fallback, position: nil, explanation: "fallback \(fallback.name) (no rule matched; rules \(version))")
    }
}

/// One rule of a routing file: a name, the conditions (`when`) and the actions (`then`).
public struct RoutingRule: Sendable, Equatable {
    /// 1 to 64 of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter or digit; unique in the file.
    public var name: String
    /// The file's `when`: every condition must hold. No conditions match every ticket.
    public var conditions: RoutingConditions
    /// The file's `then`: at least one action.
    public var actions: RoutingActions
}

/// The conditions of a rule. A condition left out (`nil`) holds for every ticket; a listed one holds
/// when any of its values matches.
public struct RoutingConditions: Sendable, Equatable, CustomStringConvertible {
    /// Channels the ticket came in by, from ``RoutingRules/channels``.
    public var channel: [String]?
    /// Categories, compared case-insensitively.
    public var category: [String]?
    /// Words or phrases looked for as whole words in the subject and the first message, ignoring case
    /// and diacritics; anything not a letter or digit separates words, so `"log in"` also finds
    /// "log-in".
    public var keywords: [String]?
    /// Customer tiers, compared case-insensitively.
    public var customerTier: [String]?
    /// Language ranges: `en` holds for a ticket in `en`, `en-GB` or `en_GB`, case-insensitively.
    public var language: [String]?
    /// Sites the ticket was opened at, compared case-insensitively.
    public var site: [String]?

    /// `true` when the rule has no conditions and so matches every ticket.
    public var isEmpty: Bool {
        [channel, category, keywords, customerTier, language, site].allSatisfy { $0 == nil }
    }

    /// E.g. `channel phone or email; keyword "down" or "outage"`, or `every ticket`.
    public var description: String {
        let parts = [("channel", channel), ("category", category), ("customer tier", customerTier), ("language", language),
                     ("site", site), ("keyword", keywords?.map(\.debugDescription))]
            .compactMap { label, values in values.map { "\(label) " + $0.joined(separator: " or ") } }
        return parts.isEmpty ? "every ticket" : parts.joined(separator: "; ")
    }

    /// What held, one phrase a condition (`channel phone`, `keyword "outage"`), or `nil` if a
    /// condition does not hold.
    func matches(_ facts: RoutingFacts, _ text: TicketWords) -> [String]? {
        var held: [String] = []
        func check(_ label: String, _ values: [String]?, _ value: String?, _ equal: (String, String) -> Bool) -> Bool {
            guard let values else { return true }
            guard let value = value?.lowercased(), let hit = values.first(where: { equal($0.lowercased(), value) }) else { return false }
            held.append("\(label) \(hit)")
            return true
        }
        let same: (String, String) -> Bool = { $0 == $1 }
        guard check("channel", channel, facts.channel, same), check("category", category, facts.category, same),
              check("customer tier", customerTier, facts.customerTier, same),
              check("language", language, facts.language, { range, tag in
                  let tag = tag.replacingOccurrences(of: "_", with: "-")
                  return tag == range || tag.hasPrefix(range + "-")
              }),
              check("site", site, facts.site, same) else { return nil }
        if let keywords {
            guard let hit = keywords.first(where: { text.contains(phrase: TicketWords.words($0)) }) else { return nil }
            held.append("keyword \(hit.debugDescription)")
        }
        return held
    }
}

/// The actions of a rule; at least one is set.
public struct RoutingActions: Sendable, Equatable, CustomStringConvertible {
    /// The group that gets the ticket.
    public var group: String?
    public var priority: Priority?
    /// Tags added to the ticket.
    public var tags: [String] = []
    /// The name of the SLA policy to apply.
    public var slaPolicy: String?
    /// The name of an escalation ladder to start at creation (a proactive escalation).
    public var escalate: String?

    /// E.g. `group major-incident; priority urgent; tags vip; SLA platinum-sla; escalate platinum-ladder`.
    public var description: String {
        [group.map { "group \($0)" }, priority.map { "priority \($0.rawValue)" }, tags.isEmpty ? nil : "tags " + tags.joined(separator: ", "),
         slaPolicy.map { "SLA \($0)" }, escalate.map { "escalate \($0)" }].compactMap { $0 }.joined(separator: "; ")
    }
}

/// What routing looks at in a new ticket.
public struct RoutingFacts: Sendable {
    /// How the ticket came in: email, chat, phone, social, portal, bot or api.
    public var channel: String
    public var category: String?
    public var subject: String
    /// The customer's first message.
    public var message: String
    public var customerTier: String?
    /// The ticket's language tag, e.g. `de` or `en-GB`.
    public var language: String?
    /// The site the ticket was opened at.
    public var site: String

    public init(channel: String, category: String? = nil, subject: String, message: String = "",
                customerTier: String? = nil, language: String? = nil, site: String) {
        self.channel = channel
        self.category = category
        self.subject = subject
        self.message = message
        self.customerTier = customerTier
        self.language = language
        self.site = site
    }
}

/// How a ticket was routed: the rule that matched (or the fallback) and what it sets.
public struct RoutingDecision: Sendable, Equatable {
    /// The name of the rule, or of the fallback.
    public var rule: String
    public var isFallback: Bool
    /// The rule's index in ``RoutingRules/rules`` (from 0); `nil` for the fallback.
    public var position: Int?
    public var group: String?
    public var priority: Priority?
    public var tags: [String]
    public var slaPolicy: String?
    public var escalate: String?
    /// One line for `ticket show`, e.g. `rule platinum-outage (#1 of 4, rules 3f2a9c1d0b7e): channel
    /// phone, customer tier platinum, keyword "outage"` or `fallback default (no rule matched; rules
    /// 3f2a9c1d0b7e)`. It names values of the rules file, never the ticket's text.
    public var explanation: String

    init(_ rule: RoutingRule, position: Int?, explanation: String) {
        self.rule = rule.name
        self.isFallback = position == nil
        self.position = position
        self.group = rule.actions.group
        self.priority = rule.actions.priority
        self.tags = rule.actions.tags
        self.slaPolicy = rule.actions.slaPolicy
        self.escalate = rule.actions.escalate
        self.explanation = explanation
    }
}

/// Every problem of a routing rules file.
public struct RoutingError: Error, Sendable, CustomStringConvertible {
    /// The file's name as given to ``RoutingRules/load(_:file:)``.
    public var file: String
    /// Each problem with its JSON path (`rules[2].when.channel[0]`) and what is wrong.
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    /// One problem a line, each `FILE: PATH: MESSAGE`.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// The subject and first message as lists of folded words (case and diacritics removed).
struct TicketWords {
    private var fields: [[Substring]] = []

    init() {}

    init(_ facts: RoutingFacts) {
        fields = [Self.words(facts.subject), Self.words(facts.message)]
    }

    /// The words of `text`: runs of letters and digits, without case or diacritics.
    static func words(_ text: String) -> [Substring] {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .split { !($0.isLetter || $0.isNumber) }
    }

    /// Whether the words of `phrase` stand one after the other in the subject or in the message.
    func contains(phrase: [Substring]) -> Bool {
        guard let first = phrase.first else { return false }
        return fields.contains { words in
            words.indices.contains { words[$0] == first && words[$0...].starts(with: phrase) }
        }
    }
}

/// Reads a routing file's JSON, collecting every problem with its path.
private struct RoutingReader {
    let file: String
    var issues: [ConfigIssue] = []

    static let ruleKeys = ["name", "when", "then"]
    static let conditionKeys = ["channel", "category", "keywords", "customerTier", "language", "site"]
    static let actionKeys = ["group", "priority", "tags", "slaPolicy", "escalate"]
    static var rulePattern: Regex<Substring> { #/[a-z0-9][a-z0-9._-]{0,63}/# }
    static var documentPattern: Regex<Substring> { #/[a-z0-9][a-z0-9_-]{0,63}/# }

    init(file: String) { self.file = file }

    mutating func fail(_ path: String, _ message: String) { issues.append(ConfigIssue(file: file, path: path, message)) }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The rules and the fallback, or `nil` when the document cannot be read far enough to hold them.
    mutating func document(_ data: Data) -> ([RoutingRule], RoutingRule)? {
        guard data.count <= RoutingRules.maximumFileBytes else {
            fail("", "the file is \(data.count) bytes; a rules file is at most \(RoutingRules.maximumFileBytes) bytes")
            return nil
        }
        // Syntax first, strictly: a repeated key or a trailing comma is refused with its place.
        do { _ = try StrictJSON.parse(data) } catch {
            fail(error.path, "not valid JSON at \(error.position): \(error.message)")
            return nil
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) } catch {
            fail("", "not a JSON document; write one object {\"rules\": [...], \"fallback\": {...}}")
            return nil
        }
        guard let top = object(root, at: "", known: ["rules", "fallback"]) else { return nil }
        var rules: [RoutingRule] = []
        var names: [String: String] = [:]
        if let list = top["rules"] {
            if let list = list as? [Any] {
                for (i, value) in list.enumerated() {
                    let path = "rules[\(i)]"
                    guard case let (rule, isCatchAll)? = self.rule(value, at: path, names: &names) else { continue }
                    rules.append(rule)
                    if isCatchAll && i < list.count - 1 {
                        let later = (i + 1..<list.count).map { j in ((list[j] as? [String: Any])?["name"] as? String) ?? "rules[\(j)]" }
                        fail("\(path).when", "no conditions, so this rule matches every ticket and the rules after it can never match: "
                            + later.joined(separator: ", ") + "; move it last or give it conditions")
                    }
                }
            } else {
                fail("rules", "expected a list of rules (it may be empty)")
            }
        } else {
            fail("rules", "required key is missing; give the list of rules (it may be empty)")
        }
        guard let value = top["fallback"] else {
            fail("fallback", "required key is missing; give the rule for tickets no rule matches, e.g. {\"name\": \"default\", \"then\": {\"group\": \"first-line\"}}")
            return nil
        }
        guard case let (fallback, _)? = rule(value, at: "fallback", names: &names) else { return nil }
        return (rules, fallback)
    }

    /// `value` as an object, its unknown keys and nulls reported and left out; `nil` if it is not an
    /// object. `refused` gives the message for keys that have one of their own.
    mutating func object(_ value: Any, at path: String, known: [String], refused: [String: String] = [:]) -> [String: Any]? {
        guard let object = value as? [String: Any] else {
            fail(path, path.isEmpty ? "expected a JSON object {\"rules\": [...], \"fallback\": {...}}" : "expected an object")
            return nil
        }
        var kept: [String: Any] = [:]
        for key in object.keys.sorted() {
            let here = join(path, key)
            if let message = refused[key] {
                fail(here, message)
            } else if !known.contains(key) {
                fail(here, "unknown key; known keys: " + known.sorted().joined(separator: ", "))
            } else if object[key] is NSNull {
                fail(here, "null is not a value here; leave the key out")
            } else {
                kept[key] = object[key]
            }
        }
        return kept
    }

    /// One rule (the fallback when `path` is `fallback`), and whether it has no conditions; `nil`
    /// when anything in it is wrong. `names` maps the names seen so far to their paths.
    mutating func rule(_ value: Any, at path: String, names: inout [String: String]) -> (RoutingRule, Bool)? {
        let before = issues.count
        let isFallback = path == "fallback"
        let refused = isFallback ? ["when": "the fallback applies when no rule matched, so it takes no conditions; make a rule of them"] : [:]
        guard let fields = object(value, at: path, known: isFallback ? ["name", "then"] : Self.ruleKeys, refused: refused) else { return nil }
        var name = ""
        if let value = fields["name"] {
            if let text = string(value, at: "\(path).name") {
                name = text
                if (try? Self.rulePattern.wholeMatch(in: text)) == nil {
                    fail("\(path).name", "\(text.debugDescription) is not a rule name; use 1-64 of a-z, 0-9, ., _ and -, starting with a letter or digit")
                } else if let first = names[text] {
                    fail("\(path).name", "\(text.debugDescription) is already the name of \(first); names must be unique")
                } else {
                    names[text] = path
                }
            }
        } else {
            fail("\(path).name", "required key is missing; name the rule, e.g. \"billing-de\"")
        }
        var conditions = RoutingConditions()
        var isCatchAll = true
        if let value = fields["when"], let when = object(value, at: "\(path).when", known: Self.conditionKeys) {
            isCatchAll = (value as? [String: Any])?.isEmpty ?? false
            conditions = self.conditions(when, at: "\(path).when")
        }
        var actions = RoutingActions()
        if let value = fields["then"] {
            if let then = object(value, at: "\(path).then", known: Self.actionKeys) {
                actions = self.actions(then, at: "\(path).then")
                if (value as? [String: Any])?.isEmpty == true {
                    fail("\(path).then", "no actions; give at least one of " + Self.actionKeys.sorted().joined(separator: ", "))
                }
            }
        } else {
            fail("\(path).then", "required key is missing; give at least one of " + Self.actionKeys.sorted().joined(separator: ", "))
        }
        guard issues.count == before else { return nil }
        return (RoutingRule(name: name, conditions: conditions, actions: actions), isCatchAll)
    }

    mutating func conditions(_ when: [String: Any], at path: String) -> RoutingConditions {
        var c = RoutingConditions()
        func values(_ key: String) -> [String]? { when[key].flatMap { strings($0, at: join(path, key)) } }
        c.channel = values("channel")
        for (i, channel) in (c.channel ?? []).enumerated() where !RoutingRules.channels.contains(channel) {
            fail("\(path).channel[\(i)]", "\(channel.debugDescription) is not a channel; use one of " + RoutingRules.channels.joined(separator: ", "))
        }
        c.category = values("category")
        c.keywords = values("keywords")
        for (i, keyword) in (c.keywords ?? []).enumerated() where !keyword.isEmpty && TicketWords.words(keyword).isEmpty {
            fail("\(path).keywords[\(i)]", "\(keyword.debugDescription) has no letter or digit, so it can never match")
        }
        c.customerTier = values("customerTier")
        c.language = values("language")
        c.site = values("site")
        for (i, site) in (c.site ?? []).enumerated() where !site.isEmpty && !SiteID.isValid(site.lowercased()) {
            fail("\(path).site[\(i)]", "\(site.debugDescription) is not a site id; site ids are 1-32 of a-z, 0-9 and -, starting with a letter")
        }
        return c
    }

    mutating func actions(_ then: [String: Any], at path: String) -> RoutingActions {
        var a = RoutingActions()
        if let value = then["group"], let group = string(value, at: "\(path).group") {
            if group.isEmpty || group.count > 64 || group.contains("@") || group.contains(where: \.isWhitespace) {
                fail("\(path).group", "\(group.debugDescription) is not a group name; use 1-64 characters, no spaces and no @")
            }
            a.group = group
        }
        if let value = then["priority"], let text = string(value, at: "\(path).priority") {
            a.priority = Priority(rawValue: text)
            if a.priority == nil {
                fail("\(path).priority", "\(text.debugDescription) is not a priority; use one of " + Priority.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
        if let value = then["tags"], let tags = strings(value, at: "\(path).tags") {
            for (i, tag) in tags.enumerated() where tag.count > 64 {
                fail("\(path).tags[\(i)]", "a tag is at most 64 characters; this one has \(tag.count)")
            }
            a.tags = tags
        }
        for (key, kind) in [("slaPolicy", "an SLA policy"), ("escalate", "an escalation ladder")] {
            guard let value = then[key], let name = string(value, at: "\(path).\(key)") else { continue }
            if (try? Self.documentPattern.wholeMatch(in: name)) == nil {
                fail("\(path).\(key)", "\(name.debugDescription) is not the name of \(kind); names are 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
            }
            if key == "slaPolicy" { a.slaPolicy = name } else { a.escalate = name }
        }
        return a
    }

    mutating func string(_ value: Any, at path: String) -> String? {
        guard let text = value as? String else {
            fail(path, "expected a string")
            return nil
        }
        return text
    }

    /// A non-empty list of strings that are not blank; each bad element is reported and left out.
    mutating func strings(_ value: Any, at path: String) -> [String]? {
        guard let list = value as? [Any] else {
            fail(path, "expected a list of strings")
            return nil
        }
        if list.isEmpty { fail(path, "empty list; give at least one value or leave the key out") }
        var out: [String] = []
        for (i, item) in list.enumerated() {
            guard let text = string(item, at: "\(path)[\(i)]") else { continue }
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                fail("\(path)[\(i)]", "empty string; give a value")
            } else {
                out.append(text)
            }
        }
        return out
    }
}
