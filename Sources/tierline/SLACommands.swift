import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

struct SLACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sla", abstract: "Open tickets' SLA clocks, most urgent first.",
        discussion: "Lists running, paused and breached clocks. --at-risk keeps clocks past their warning or within a quarter of their target; --breached keeps breached ones; both together keep either.")
    @OptionGroup var options: StoreOptions
    @OptionGroup var at: AtOption
    @Flag(help: "Only clocks past their warning threshold (or in the last quarter of the target) and not yet breached.") var atRisk = false
    @Flag(help: "Only breached clocks.") var breached = false

    struct Row: Encodable {
        var ticket: String
        var id: String
        var subject: String
        var owningSite: String
        var clock: SLAReport.Clock
    }

    func run() throws {
        let desk = try EscalationDesk(store: options.open())
        let now = at.millis
        var rows: [Row] = []
        for (state, evaluation) in try desk.evaluations(now: now) {
            for clock in SLAReport(state, evaluation, now: now).clocks where clock.state != "met" {
                if atRisk || breached, !((atRisk && clock.atRisk) || (breached && clock.state == "breached")) { continue }
                rows.append(Row(ticket: state.displayNumber ?? "", id: state.id.uuidString.lowercased(), subject: state.subject,
                                owningSite: state.owner.site?.rawValue ?? "", clock: clock))
            }
        }
        // Breached first (most overdue first), then by the time left; paused clocks last.
        rows.sort { ($0.clock.remainingMillis ?? .max, $0.ticket) < ($1.clock.remainingMillis ?? .max, $1.ticket) }
        if options.json { return try printJSON(rows) }
        if rows.isEmpty { return print(try desk.library().isEmpty ? "no SLA policy is published; `tierline config publish FILE` on the coordinator" : "no clocks match") }
        printTable(["TICKET", "CLOCK", "STATE", "TARGET", "ELAPSED", "REMAINING", "DEADLINE", "OWNER", "SUBJECT"], rows.map { row in
            let c = row.clock
            let state = c.state == "running" && c.atRisk ? "at risk" : c.state
            return [row.ticket, c.clock + (c.cycle > 1 ? " #\(c.cycle)" : ""), state, c.target, DurationText.render(c.elapsedMillis),
                    c.remainingMillis.map { $0 < 0 ? "over by " + DurationText.render(-$0) : DurationText.render($0) } ?? "—",
                    c.deadline ?? "—", row.owningSite, row.subject]
        })
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Replicated escalation configuration: calendars, SLA policies, ladders, the matrix, rules.",
        subcommands: [Publish.self, Show.self])

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and publish its new versions (coordinator only); they replicate to every site.",
            discussion: "Nothing of an invalid file is published. Each problem is reported with the file, the key and what is wrong. See Deploy/escalation.json.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The JSON file.") var file: String

        struct Published: Encodable {
            var kind: String
            var name: String
            var version: Int
        }

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIFailure(message: "cannot read \(file): no such file or not readable")
            }
            let desk = try EscalationDesk(store: options.open())
            let documents = try desk.publish(data, file: file, actor: actor.actor)
            let rows = documents.map { Published(kind: $0.kind.rawValue, name: $0.name, version: $0.version) }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("nothing new: every version in \(file) is already published") }
            print("published \(rows.count) document version(s) from \(file):")
            printTable(["KIND", "NAME", "VERSION"], rows.map { [$0.kind, $0.name, String($0.version)] })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest version of every published document.")
        @OptionGroup var options: StoreOptions

        func run() throws {
            let library = try EscalationDesk(store: options.open()).library()
            let docs = library.current
            if options.json {
                return try printJSON(docs.map { Publish.Published(kind: $0.kind.rawValue, name: $0.name, version: $0.version) })
            }
            if docs.isEmpty { return print("no configuration published yet") }
            printTable(["KIND", "NAME", "VERSION"], docs.map { [$0.kind.rawValue, $0.name, String($0.version)] })
        }
    }
}

struct EscalationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalation", abstract: "Run the escalation rules on this store.", subcommands: [Tick.self])

    struct Tick: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the SLA and ladder records due now for tickets this site owns (what `serve` does every second).")
        @OptionGroup var options: StoreOptions
        @OptionGroup var at: AtOption
        @Flag(help: "Allow an --at in the future: the records written are permanent facts that replicate, so only for a rehearsal on a copy of a store.")
        var allowFuture = false

        func validate() throws {
            if at.millis > nowMillis() + 1_000 && !allowFuture {
                throw ValidationError("--at is in the future: records written now would claim breaches and firings that have not happened, and they replicate; pass --allow-future only on a copy of a store")
            }
        }

        struct Written: Encodable {
            var ticket: String
            var id: String
            var records: [SLAReport.Entry]
        }

        func run() throws {
            let desk = try EscalationDesk(store: options.open())
            let written = try desk.tick(now: at.millis)
            var rows: [Written] = []
            for (id, events) in written.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
                let number = try desk.store.ticket(id.uuidString).displayNumber
                rows.append(Written(ticket: number, id: id.uuidString.lowercased(), records: events.compactMap { event in
                    EscalationRecord.decode(event.body).map {
                        SLAReport.Entry(id: event.id.uuidString.lowercased(), type: $0.type.rawValue, at: SLAReport.iso($0.at), site: desk.identity.site.rawValue, text: SLAReport.describe($0))
                    }
                }))
            }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("nothing due") }
            printTable(["TICKET", "WHEN", "RECORD"], rows.flatMap { row in row.records.map { [row.ticket, $0.at, $0.text] } }, maxWidth: 100)
        }
    }
}
