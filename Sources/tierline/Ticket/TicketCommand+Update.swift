import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change fields of a ticket (an empty value clears a field).")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option var subject: String?
        @Option(help: "new, open, pending_customer, pending_third_party, on_hold, solved, closed.") var status: Status?
        @Option var priority: Priority?
        @Option var assignee: String?
        @Option var group: String?
        @Option var category: String?
        @Option(name: .customLong("field"), help: "A custom field as NAME=VALUE (repeat for more; an empty value clears it).")
        var customFields: [String] = []
        @Flag(help: "Take an assignee or group from outside the agent directory (on purpose) instead of refusing it.") var allowUnknown = false

        func validate() throws {
            for pair in customFields where !pair.contains("=") || pair.hasPrefix("=") {
                throw ValidationError("--field takes NAME=VALUE; got \(pair.debugDescription)")
            }
            try validating { () throws(DeskError) in try update.validate() }
        }

        var update: FieldUpdate {
            FieldUpdate(subject: subject, status: status, priority: priority, assignee: assignee, group: group, category: category,
                        custom: customFields.map { pair in
                            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                            return (String(parts[0]), String(parts[1]))
                        })
        }

        func run() throws {
            // Checked here, not in validate(): ArgumentParser validates before it reports an unknown
            // option, and a misspelt flag must be named as such.
            if update == FieldUpdate() {
                throw ValidationError("nothing to update: pass --subject, --status, --priority, --assignee, --group, --category or --field")
            }
            let store = try options.open()
            let (record, survey) = try HelpDesk(store: store).update(id, update, actor: try actor.name(in: store), allowUnknown: allowUnknown)
            if options.json { return try printJSON(Updated(ticket: record, surveyToken: survey)) }
            print("updated \(record.displayNumber)  \(record.id)")
            if let survey { print("CSAT survey token (send it to the customer; it is shown only now): \(survey)") }
        }

        /// The ticket's keys plus `surveyToken` (`null` unless this update solved it).
        struct Updated: Encodable {
            var ticket: TicketRecord
            var surveyToken: String?
            enum CodingKeys: String, CodingKey { case surveyToken }
            func encode(to encoder: any Encoder) throws {
                try ticket.encode(to: encoder)
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(surveyToken, forKey: .surveyToken)
            }
        }
    }
}
