import ArgumentParser
import Escalation
import Foundation
import TicketModel

extension RoutingCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a routing rules file and list its rules in the order they are tried.",
            discussion: "Exit 0 for a valid file; 2 with every problem (file: JSON path: what is wrong) on stderr for an invalid or unreadable one, as serve --routing refuses it.")
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
}
