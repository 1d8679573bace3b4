import ArgumentParser
import Escalation
import Foundation
import TicketModel
import TicketStore

extension RoutingCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a routing rules file and list its rules in the order they are tried.",
            discussion: """
                Exit 0 for a valid file; 2 with every problem (file: JSON path: what is wrong) on stderr for an invalid or unreadable one, as serve --routing refuses it. \
                With --store, the names the rules use are also checked against that store's published configuration and roster: every SLA policy, \
                ladder, group (once agents are published or the configuration names groups) and site it does not know is listed and the exit is 1, \
                as serve refuses to start with them. A store with no configuration published yet is said so, and only the file is checked.
                """)
        @Argument(help: "The JSON rules file.") var file: String
        @Option(help: "Also check the names the rules use against this store's published configuration and roster.") var store: String?
        @Flag(help: "Print one JSON document instead of a table.") var json = false

        func run() throws {
            let rules = try readRoutingRules(file)
            if let store, try !checkRoutingNames(rules, file: file, store: try StoreDirectory.resolve(store).open(), code: 1) {
                FileHandle.standardError.write(Data("warning: \(store) has no configuration published yet; only the file was checked, not the names it uses\n".utf8))
            }
            if json { return try printJSON(RulesOutput(file: file, rules: rules)) }
            print("\(file): \(rules.rules.count) rule(s) and a fallback; rules \(rules.version)")
            let rows = rules.rules.enumerated().map { i, rule in
                [String(i + 1), rule.name, rule.conditions.description, rule.actions.description]
            }
            printTable(["#", "NAME", "WHEN", "THEN"], rows + [["fallback", rules.fallback.name, "no rule matched", rules.fallback.actions.description]],
                       maxWidth: 240)
        }
    }
}
