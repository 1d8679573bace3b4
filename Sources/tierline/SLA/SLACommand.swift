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
                rows.append(Row(ticket: state.displayNumber ?? "", id: state.id.lowercaseText, subject: state.subject,
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
