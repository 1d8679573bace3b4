import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
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
}
