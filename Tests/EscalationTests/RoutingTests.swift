import Escalation
import Foundation
import Testing
import TicketModel

/// Seven rules over every kind of condition, in an order where several tickets match more than one.
private let rulesFile = """
{
  "rules": [
    {"name": "platinum-outage",
     "when": {"channel": ["phone", "email"], "category": ["outage"], "keywords": ["down", "outage"], "customerTier": ["platinum"]},
     "then": {"group": "major-incident", "priority": "urgent", "tags": ["vip"], "slaPolicy": "platinum-sla", "escalate": "platinum-ladder"}},
    {"name": "german-billing", "when": {"language": ["de"], "keywords": ["rechnung", "invoice", "überweisung"]}, "then": {"group": "billing-de"}},
    {"name": "login-trouble", "when": {"keywords": ["cannot log in", "password reset"]}, "then": {"group": "identity", "tags": ["access", "login"]}},
    {"name": "north-phone", "when": {"site": ["north"], "channel": ["phone"]}, "then": {"group": "north-desk"}},
    {"name": "gold", "when": {"customerTier": ["gold"]}, "then": {"priority": "high", "slaPolicy": "gold-sla"}},
    {"name": "community", "when": {"channel": ["social", "bot"]}, "then": {"group": "community", "priority": "low"}},
    {"name": "french.network", "when": {"language": ["fr"], "category": ["network"]}, "then": {"group": "reseau"}}
  ],
  "fallback": {"name": "default", "then": {"group": "first-line", "tags": ["unrouted"]}}
}
"""

private func load(_ text: String) throws -> RoutingRules { try RoutingRules.load(Data(text.utf8), file: "routing.json") }

/// A ticket and the rule it must be routed by.
struct RoutingCase: Sendable, CustomTestStringConvertible {
    var why: String
    var facts: RoutingFacts
    var rule: String
    var testDescription: String { why }

    init(_ why: String, _ rule: String, channel: String = "email", category: String? = nil, subject: String, message: String = "",
         tier: String? = nil, language: String? = nil, site: String = "south") {
        self.why = why
        self.rule = rule
        facts = RoutingFacts(channel: channel, category: category, subject: subject, message: message,
                             customerTier: tier, language: language, site: site)
    }
}

private let cases: [RoutingCase] = [
    RoutingCase("every condition of the first rule", "platinum-outage",
                channel: "phone", category: "outage", subject: "Checkout is DOWN", tier: "platinum"),
    RoutingCase("category and tier ignore case; the keyword is in the first message", "platinum-outage",
                channel: "Email", category: "Outage", subject: "Help", message: "Our whole site is down.", tier: "PLATINUM"),
    RoutingCase("\"down\" is a whole word: \"Download\" does not hold it", "default",
                channel: "phone", category: "outage", subject: "Download page slow", tier: "platinum"),
    RoutingCase("no customer tier does not match a tier condition", "north-phone",
                channel: "phone", category: "outage", subject: "Checkout is down", site: "north"),
    RoutingCase("no customer tier and nothing else: the fallback", "default",
                channel: "email", category: "outage", subject: "Everything is down"),
    RoutingCase("language and keyword", "german-billing", subject: "Frage zur Rechnung", language: "de"),
    RoutingCase("a language range holds for a regional tag; keywords ignore case", "german-billing",
                subject: "Frage", message: "Meine RECHNUNG ist falsch", language: "DE-at"),
    RoutingCase("keywords ignore diacritics", "german-billing", subject: "Uberweisung fehlgeschlagen", language: "de"),
    RoutingCase("the keyword alone is not enough: the language must hold too", "default", subject: "Invoice question", language: "en"),
    RoutingCase("a phrase", "login-trouble", channel: "chat", subject: "I cannot log in since Monday"),
    RoutingCase("a phrase across a hyphen and spaces in the message", "login-trouble",
                channel: "chat", subject: "Account", message: "I Cannot   log-in!"),
    RoutingCase("a phrase's words out of order do not hold it", "default", channel: "chat", subject: "Log in: cannot be done"),
    RoutingCase("three rules hold: the first wins", "login-trouble",
                channel: "phone", subject: "cannot log in", tier: "gold", site: "north"),
    RoutingCase("two rules hold: the first wins; sites ignore case", "north-phone",
                channel: "phone", subject: "hello", tier: "gold", site: "North"),
    RoutingCase("a tier alone", "gold", channel: "portal", subject: "Question", tier: "gold"),
    RoutingCase("a channel alone", "community", channel: "social", subject: "@acme why"),
    RoutingCase("gold comes before community", "gold", channel: "bot", subject: "hi", tier: "Gold"),
    RoutingCase("language and category", "french.network", channel: "api", category: "network", subject: "Le réseau", language: "fr"),
    RoutingCase("no category does not match a category condition", "default", channel: "api", subject: "Le réseau", language: "fr"),
    RoutingCase("a platinum ticket without the keyword falls through every rule", "default",
                channel: "email", category: "outage", subject: "Slow pages", tier: "platinum"),
]

@Suite struct RoutingTests {
    @Test(arguments: cases) func routesByTheFirstRuleThatHolds(_ c: RoutingCase) throws {
        let rules = try load(rulesFile)
        let decision = rules.route(c.facts)
        #expect(decision.rule == c.rule)
        #expect(decision.isFallback == (c.rule == "default"))
        #expect(decision.position == rules.rules.firstIndex { $0.name == c.rule })
    }

    @Test func theTableCoversEveryConditionAndTheFallback() throws {
        let rules = try load(rulesFile)
        #expect(rules.rules.count >= 6 && cases.count >= 12)
        let kinds: [(RoutingConditions) -> [String]?] = [\.channel, \.category, \.keywords, \.customerTier, \.language, \.site]
        #expect(kinds.allSatisfy { kind in rules.rules.contains { kind($0.conditions) != nil } })
        #expect(Set(cases.map(\.rule)) == Set(rules.rules.map(\.name) + ["default"]))
        #expect(cases.filter { $0.rule == "default" }.count >= 3)
    }

    @Test func theDecisionCarriesTheRulesActions() throws {
        let rules = try load(rulesFile)
        let major = rules.route(cases[0].facts)
        #expect(major.group == "major-incident" && major.priority == .urgent && major.tags == ["vip"])
        #expect(major.slaPolicy == "platinum-sla" && major.escalate == "platinum-ladder")
        let fallback = rules.route(RoutingFacts(channel: "email", subject: "hello", site: "south"))
        #expect(fallback.rule == "default" && fallback.isFallback)
        #expect(fallback.group == "first-line" && fallback.priority == nil && fallback.tags == ["unrouted"] && fallback.position == nil)
    }

    @Test func theExplanationNamesTheRuleAndWhatMatched() throws {
        let rules = try load(rulesFile)
        let v = rules.version
        #expect(rules.route(cases[0].facts).explanation
            == "rule platinum-outage (#1 of 7, rules \(v)): channel phone, category outage, customer tier platinum, keyword \"down\"")
        #expect(rules.route(cases[6].facts).explanation == "rule german-billing (#2 of 7, rules \(v)): language de, keyword \"rechnung\"")
        #expect(rules.route(cases[10].facts).explanation == "rule login-trouble (#3 of 7, rules \(v)): keyword \"cannot log in\"")
        #expect(rules.route(cases[2].facts).explanation == "fallback default (no rule matched; rules \(v))")
        let subject = "Checkout is DOWN"
        #expect(!rules.route(cases[0].facts).explanation.contains(subject), "ticket text stays out of the explanation")
    }

    @Test func theVersionIsTheFilesDigest() throws {
        let rules = try load(rulesFile)
        #expect(rules.version.count == 12 && rules.version.allSatisfy(\.isHexDigit))
        #expect(try load(rulesFile).version == rules.version)
        #expect(try load(rulesFile + "\n").version != rules.version, "other bytes are another version")
    }

    @Test func aCatchAllMayBeLastAndRulesMayBeEmpty() throws {
        let last = try load(#"{"rules": [{"name": "phones", "when": {"channel": ["phone"]}, "then": {"group": "voice"}}, {"name": "rest", "then": {"group": "triage"}}], "fallback": {"name": "default", "then": {"group": "first-line"}}}"#)
        let rest = last.route(RoutingFacts(channel: "email", subject: "x", site: "north"))
        #expect(rest.rule == "rest" && rest.position == 1 && rest.explanation.hasSuffix("): no conditions"))
        let none = try load(#"{"rules": [], "fallback": {"name": "default", "then": {"priority": "normal"}}}"#)
        #expect(none.route(RoutingFacts(channel: "api", subject: "x", site: "north")).isFallback)
    }
}

/// A broken file and the path its problem must be reported at.
struct BrokenFile: Sendable, CustomTestStringConvertible {
    var why: String
    var json: String
    var path: String
    var message: String
    var testDescription: String { why }
}

private let fallback = #""fallback": {"name": "default", "then": {"group": "first-line"}}"#

/// `rules` (the inside of the list) with a good fallback.
private func file(_ rules: String) -> String { #"{"rules": [\#(rules)], \#(fallback)}"# }

private let broken: [BrokenFile] = [
    BrokenFile(why: "unknown key", json: file(#"{"name": "a", "when": {"chanel": ["email"]}, "then": {"group": "g"}}"#),
               path: "rules[0].when.chanel", message: "unknown key; known keys: category, channel, customerTier, keywords, language, site"),
    BrokenFile(why: "unknown key at the top", json: #"{"rules": [], "fallbak": {}, \#(fallback)}"#,
               path: "fallbak", message: "unknown key; known keys: fallback, rules"),
    BrokenFile(why: "bad channel", json: file(#"{"name": "a", "when": {"channel": ["email", "fax"]}, "then": {"group": "g"}}"#),
               path: "rules[0].when.channel[1]", message: "\"fax\" is not a channel; use one of email, chat, phone, social, portal, bot, api"),
    BrokenFile(why: "bad priority", json: file(#"{"name": "a", "when": {"channel": ["email"]}, "then": {"priority": "critical"}}"#),
               path: "rules[0].then.priority", message: "\"critical\" is not a priority; use one of low, normal, high, urgent"),
    BrokenFile(why: "duplicate name", json: file(#"{"name": "a", "when": {"site": ["north"]}, "then": {"group": "g"}}, {"name": "a", "when": {"site": ["south"]}, "then": {"group": "h"}}"#),
               path: "rules[1].name", message: "\"a\" is already the name of rules[0]; names must be unique"),
    BrokenFile(why: "the fallback's name is taken", json: file(#"{"name": "default", "when": {"site": ["north"]}, "then": {"group": "g"}}"#),
               path: "fallback.name", message: "\"default\" is already the name of rules[0]; names must be unique"),
    BrokenFile(why: "catch-all rule not last", json: file(#"{"name": "all", "when": {}, "then": {"group": "g"}}, {"name": "b", "when": {"site": ["north"]}, "then": {"group": "h"}}, {"name": "c", "when": {"site": ["east"]}, "then": {"group": "h"}}"#),
               path: "rules[0].when", message: "no conditions, so this rule matches every ticket and the rules after it can never match: b, c; move it last or give it conditions"),
    BrokenFile(why: "missing fallback", json: #"{"rules": []}"#,
               path: "fallback", message: "required key is missing; give the rule for tickets no rule matches, e.g. {\"name\": \"default\", \"then\": {\"group\": \"first-line\"}}"),
    BrokenFile(why: "missing rules", json: #"{\#(fallback)}"#, path: "rules", message: "required key is missing; give the list of rules (it may be empty)"),
    BrokenFile(why: "empty list", json: file(#"{"name": "a", "when": {"keywords": []}, "then": {"group": "g"}}"#),
               path: "rules[0].when.keywords", message: "empty list; give at least one value or leave the key out"),
    BrokenFile(why: "blank keyword", json: file(#"{"name": "a", "when": {"keywords": ["  "]}, "then": {"group": "g"}}"#),
               path: "rules[0].when.keywords[0]", message: "empty string; give a value"),
    BrokenFile(why: "not JSON", json: #"{"rules": ["#, path: "rules[0]",
               message: "not valid JSON at line 1, column 12: the text ends where a value should be"),
    BrokenFile(why: "a repeated key", json: #"{"rules": [], "rules": []}"#, path: "rules",
               message: "not valid JSON at line 1, column 15: \"rules\" appears twice in one object; keep one"),
    BrokenFile(why: "not an object", json: #"["rules"]"#, path: "", message: "expected a JSON object {\"rules\": [...], \"fallback\": {...}}"),
    BrokenFile(why: "wrong type", json: file(#"{"name": "a", "when": {"site": ["north"]}, "then": {"tags": "vip"}}"#),
               path: "rules[0].then.tags", message: "expected a list of strings"),
    BrokenFile(why: "a number for a string", json: file(#"{"name": "a", "when": {"category": [7]}, "then": {"group": "g"}}"#),
               path: "rules[0].when.category[0]", message: "expected a string"),
    BrokenFile(why: "empty then", json: file(#"{"name": "a", "when": {"site": ["north"]}, "then": {}}"#),
               path: "rules[0].then", message: "no actions; give at least one of escalate, group, priority, slaPolicy, tags"),
    BrokenFile(why: "the fallback has conditions", json: #"{"rules": [], "fallback": {"name": "d", "when": {"site": ["north"]}, "then": {"group": "g"}}}"#,
               path: "fallback.when", message: "the fallback applies when no rule matched, so it takes no conditions; make a rule of them"),
    BrokenFile(why: "bad rule name", json: file(#"{"name": "Platinum Outage", "when": {"site": ["north"]}, "then": {"group": "g"}}"#),
               path: "rules[0].name", message: "\"Platinum Outage\" is not a rule name; use 1-64 of a-z, 0-9, ., _ and -, starting with a letter or digit"),
    BrokenFile(why: "tag too long", json: file(#"{"name": "a", "when": {"site": ["north"]}, "then": {"tags": ["\#(String(repeating: "t", count: 65))"]}}"#),
               path: "rules[0].then.tags[0]", message: "a tag is at most 64 characters; this one has 65"),
    BrokenFile(why: "null", json: file(#"{"name": "a", "when": {"site": ["north"]}, "then": {"group": null, "priority": "low"}}"#),
               path: "rules[0].then.group", message: "null is not a value here; leave the key out"),
]

@Suite struct RoutingValidationTests {
    @Test(arguments: broken) func aBrokenFileNamesThePath(_ b: BrokenFile) {
        do {
            _ = try RoutingRules.load(Data(b.json.utf8), file: "routing.json")
            Issue.record("a broken file was accepted")
        } catch {
            #expect(error.issues.map(\.path) == [b.path])
            #expect(error.issues.first?.message == b.message)
            #expect(error.issues.allSatisfy { $0.file == "routing.json" })
        }
    }

    @Test func everyProblemIsReported() {
        let json = """
        {"rules": [
           {"name": "ok", "when": {"channel": ["phone"]}, "then": {"group": "voice"}},
           {"name": "ok", "when": {"chanel": ["email"], "language": []}, "then": {"priority": "asap", "group": "a b"}},
           {"name": "", "when": {"site": ["North Office"]}, "then": {"slaPolicy": "Gold SLA"}},
           {"when": {"keywords": ["!!"]}},
           "rule"
         ],
         "fallback": {"name": "default", "when": {}, "then": {}}, "version": 2}
        """
        do {
            _ = try RoutingRules.load(Data(json.utf8), file: "r.json")
            Issue.record("a broken file was accepted")
        } catch {
            #expect(error.issues.map(\.path) == [
                "version",
                "rules[1].name", "rules[1].when.chanel", "rules[1].when.language", "rules[1].then.group", "rules[1].then.priority",
                "rules[2].name", "rules[2].when.site[0]", "rules[2].then.slaPolicy",
                "rules[3].name", "rules[3].when.keywords[0]", "rules[3].then",
                "rules[4]",
                "fallback.when", "fallback.then",
            ])
            let lines = error.description.split(separator: "\n")
            #expect(lines.count == error.issues.count)
            #expect(lines.allSatisfy { $0.hasPrefix("r.json: ") })
            #expect(lines.contains("r.json: rules[4]: expected an object"))
        }
    }

    @Test func aFileOverTheLimitIsRefused() {
        let padding = String(repeating: " ", count: RoutingRules.maximumFileBytes)
        #expect(throws: RoutingError.self) { try RoutingRules.load(Data((file("") + padding).utf8), file: "big.json") }
    }
}

/// The SLA policy routing names at intake wins over the first matching policy, when the replica has it.
@Suite struct RoutedPolicyTests {
    @Test func aNamedPolicyWinsOverMatching() throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/escalation.json"))
        let library = ConfigLibrary(try ConfigReader.read(file, file: "escalation.json", published: ConfigLibrary()))
        let platinum = MatchFacts(priority: .normal, customerTier: "platinum")
        #expect(library.apply(to: platinum, at: 0)?.policy?.name == "platinum")
        var routed = platinum
        routed.slaPolicy = "standard"
        #expect(library.apply(to: routed, at: 0)?.policy?.name == "standard")
        routed.slaPolicy = "no-such-policy"  // not (yet) replicated here: matching decides
        #expect(library.apply(to: routed, at: 0)?.policy?.name == "platinum")
    }
}
