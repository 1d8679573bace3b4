import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

/// `--at TIME`: evaluate at another moment than now (ISO 8601, e.g. 2026-11-24T17:00:00Z).
struct AtOption: ParsableArguments {
    @Option(help: "Evaluate at this moment instead of now (ISO 8601 with a zone, e.g. 2026-11-24T17:00:00Z).")
    var at: String?

    func validate() throws {
        if let at, Self.parse(at) == nil {
            throw ValidationError("--at takes an ISO 8601 time with a zone, e.g. 2026-11-24T17:00:00Z; got \(at.debugDescription)")
        }
    }

    /// Whole seconds or fractions (`2026-11-24T12:45:43.125Z`, as `ticket show` prints them).
    static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions.insert(.withFractionalSeconds)
        return plain.date(from: text) ?? fractional.date(from: text)
    }

    var millis: Int64 {
        let date = at.flatMap(Self.parse) ?? Date()
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}

func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// Runs one of the Desk's checks in `validate()`, so a bad flag is a usage error (exit 2) before the
/// store is opened.
func validating(_ check: () throws(DeskError) -> Void) throws {
    do { try check() } catch { throw ValidationError(Tierline.render(error)) }
}

struct Transfer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Functional escalation: move a ticket sideways to another group (same tier).")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String
    @Option(help: "The group that takes it.") var group: String
    @Option(help: "Why (kept in the history).") var reason: String?

    func validate() throws {
        try validating { () throws(DeskError) in try HelpDesk.checkGroupName(group, field: "group") }
    }

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.transfer(id, group: group, reason: reason, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "transferred")
    }
}

struct Escalate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hierarchical escalation: move a ticket up to GROUP@SITE with a handoff note.",
        discussion: "At the owning site the group changes at once; to another site it is a handoff request that the receiver accepts (`tierline handoff accept`).")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String
    @Option(help: "The target, GROUP@SITE (e.g. tier2@central).") var to: String
    @Option(help: "What the ticket is about, in a sentence or two.") var summary: String
    @Option(help: "Facts already verified with the customer.") var verifiedFacts: String
    @Option(help: "What was tried, and what happened.") var stepsTried: String
    @Option(help: "What the next tier is asked to do.") var requestedAction: String

    func validate() throws {
        if Target(to).map({ if case .group = $0 { true } else { false } }) != true {
            throw ValidationError("--to takes GROUP@SITE, e.g. tier2@central; got \(to.debugDescription)")
        }
        try validating { () throws(DeskError) in try HelpDesk.check(note) }
    }

    var note: HandoffNote {
        HandoffNote(summary: summary, verifiedFacts: verifiedFacts, stepsTried: stepsTried, requestedAction: requestedAction)
    }

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.escalate(id, to: to, note: note, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "escalated")
    }
}

struct Handoff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer cross-site handoffs addressed to this site.", subcommands: [Accept.self, Reject.self, List.self])

    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take the ticket: this site becomes its owning site.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            try desk.accept(id, actor: actor.actor, now: nowMillis())
            try report(try desk.store.ticket(id), options, "accepted")
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline the ticket; the origin keeps it and its ladder goes on.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "Why (the origin reads it).") var reason: String

        func run() throws {
            let desk = try HelpDesk(store: options.open())
            try desk.reject(id, reason: reason, actor: actor.actor, now: nowMillis())
            try report(try desk.store.ticket(id), options, "rejected")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pending handoffs: to this site, and from it.")
        @OptionGroup var options: StoreOptions

        func run() throws {
            let desk = try EscalationDesk(store: options.open())
            var rows: [PendingHandoff] = []
            for (state, evaluation) in try desk.evaluations(now: nowMillis()) {
                for request in evaluation.pendingHandoffs {
                    rows.append(PendingHandoff(ticket: state.displayNumber ?? "", id: state.id.uuidString.lowercased(),
                                               fromSite: state.owner.site?.rawValue ?? "", toSite: request.record.toSite ?? "",
                                               toGroup: request.record.toGroup ?? "", requestedAt: SLAReport.iso(request.record.at),
                                               incoming: request.record.toSite == desk.identity.site.rawValue))
                }
            }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("no pending handoffs") }
            printTable(["TICKET", "DIRECTION", "FROM", "TO", "REQUESTED"], rows.map {
                [$0.ticket, $0.incoming ? "incoming" : "outgoing", $0.fromSite, "\($0.toGroup)@\($0.toSite)", $0.requestedAt]
            })
        }
    }
}

struct PendingHandoff: Encodable {
    var ticket: String
    var id: String
    var fromSite: String
    var toSite: String
    var toGroup: String
    var requestedAt: String
    var incoming: Bool
}

struct Ack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack", abstract: "Acknowledge a ticket's running escalation ladder: it holds until the ladder's ack timeout.")
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number.") var id: String

    func run() throws {
        let desk = try HelpDesk(store: options.open())
        try desk.acknowledge(id, actor: actor.actor, now: nowMillis())
        try report(try desk.store.ticket(id), options, "acknowledged")
    }
}

