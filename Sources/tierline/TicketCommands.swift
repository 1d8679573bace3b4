import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct TicketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticket", abstract: "Agents' daily work on tickets.",
        subcommands: [Create.self, List.self, Show.self, Update.self, Comment.self, Tag.self, Reopen.self])
}

/// Who the write is recorded as.
struct ActorOption: ParsableArguments {
    @Option(help: "Who is writing (default: $USER).")
    var actor: String = ProcessInfo.processInfo.environment["USER"] ?? "agent"
}

func report(_ record: TicketRecord, _ options: StoreOptions, _ verb: String) throws {
    if options.json { return try printJSON(record) }
    print("\(verb) \(record.displayNumber)  \(record.id)")
}

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

        func run() throws {
            let store = try options.open()
            // The matching SLA policy is pinned in the same transaction; a ticket opened before any
            // policy is pinned by the site's ticker once one arrives.
            let record = try HelpDesk(store: store).open(TicketDraft(
                subject: subject, priority: priority, customer: customer, channel: channel, group: group, assignee: assignee,
                tags: tags, firstMessage: message, actor: actor.actor, category: category, customerTier: customerTier), now: nowMillis())
            try report(record, options, "created")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tickets, newest first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only this status.") var status: Status?
        @Option(help: "Only tickets created at this site.") var site: SiteID?
        @Option(help: "At most this many.") var limit = 500

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let records = try options.open().tickets(status: status, site: site, limit: limit)
            if options.json { return try printJSON(records) }
            if records.isEmpty { return print("no tickets") }
            printTable(["NUMBER", "STATUS", "PRIORITY", "ASSIGNEE", "OWNER", "TAGS", "SUBJECT"], records.map {
                [$0.displayNumber, $0.status, $0.priority, $0.assignee ?? "—", $0.owningSite, $0.tags.joined(separator: ","),
                 $0.subject + ($0.conflictCount > 0 ? "  ⚠ \($0.conflictCount) conflict(s)" : "")]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A ticket's fields, tags and whole history, conflicts included.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The ticket's id or display number (e.g. NORTH-12).") var id: String
        @OptionGroup var at: AtOption

        struct Output: Encodable {
            var detail: TicketDetail
            var sla: SLAReport
            enum CodingKeys: String, CodingKey { case sla }
            func encode(to encoder: any Encoder) throws {
                try detail.encode(to: encoder)
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(sla, forKey: .sla)
            }
        }

        func run() throws {
            let store = try options.open()
            let detail = try store.detail(id)
            let (state, evaluation) = try EscalationDesk(store: store).evaluate(id, now: at.millis)
            let sla = SLAReport(state, evaluation, now: at.millis)
            if options.json { return try printJSON(Output(detail: detail, sla: sla)) }
            printTicketSummary(detail.ticket)
            if let note = detail.statusNote { print("status note  \(TerminalText.visible(note))") }
            for (name, value) in detail.customFields.sorted(by: { $0.key < $1.key }) { print("custom.\(TerminalText.visible(name))  \(TerminalText.visible(value))") }
            printIntakeSections(detail)
            print("")
            printTable(["WHEN", "SITE", "KIND", "BY", "WHAT"], detail.events.filter { $0.kind != .escalation }.map {
                [$0.at, $0.site, $0.kind.rawValue + ($0.visibility == "internal" ? " (internal)" : ""), $0.actor ?? "", $0.body]
            }, maxWidth: 120)
            printSLA(sla)
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change fields of a ticket (an empty value clears a field).")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option var subject: String?
        @Option(help: "new, open, pending_customer, pending_third_party, on_hold, solved, closed.") var status: Status?
        @Option var priority: Priority?
        @Option var assignee: String?
        @Option var group: String?
        @Option var category: String?
        @Option(name: .customLong("field"), help: "A custom field as NAME=VALUE (repeat for more; an empty value clears it).")
        var customFields: [String] = []

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
            let (record, survey) = try HelpDesk(store: options.open()).update(id, update)
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

    struct Comment: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a reply, an internal note or a customer message.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "The text.") var body: String
        @Flag(help: "An internal note, not shown to the customer.") var `internal` = false
        @Flag(help: "A message from the customer (it reopens a solved ticket).") var fromCustomer = false

        func validate() throws {
            if `internal` && fromCustomer { throw ValidationError("--internal and --from-customer exclude each other") }
        }

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            let record = try fromCustomer ? desk.customerMessage(id, body: body, actor: actor.actor)
                : `internal` ? desk.note(id, body: body, actor: actor.actor) : desk.reply(id, body: body, actor: actor.actor)
            try report(record, options, "commented on")
        }
    }

    struct Tag: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add and remove tags.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "A tag to add (repeat for more).") var add: [String] = []
        @Option(help: "A tag to remove (repeat for more).") var remove: [String] = []

        func validate() throws {
            if add.isEmpty && remove.isEmpty { throw ValidationError("pass --add TAG or --remove TAG") }
        }

        func run() throws {
            let record = try HelpDesk(store: options.open()).tag(id, add: add, remove: remove)
            if options.json { return try printJSON(record) }
            print("tagged \(record.displayNumber): \(record.tags.isEmpty ? "no tags" : record.tags.joined(separator: ", "))")
        }
    }

    struct Reopen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open a solved or closed ticket again.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The ticket's id or display number.") var id: String

        func run() throws {
            try report(try HelpDesk(store: options.open()).reopen(id), options, "reopened")
        }
    }
}
