import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension Handoff {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pending handoffs: to this site (incoming), from it (outgoing), and between other sites (elsewhere).")
        @OptionGroup var options: StoreOptions

        func run() throws {
            let desk = try EscalationDesk(store: options.open())
            var rows: [PendingHandoff] = []
            for (state, evaluation) in try desk.evaluations(now: nowMillis()) {
                for request in evaluation.pendingHandoffs {
                    rows.append(PendingHandoff(ticket: state.displayNumber ?? "", id: state.id.lowercaseText,
                                               fromSite: state.owner.site?.rawValue ?? "", toSite: request.record.toSite ?? "",
                                               toGroup: request.record.toGroup ?? "", requestedAt: SLAReport.iso(request.record.at),
                                               incoming: request.record.toSite == desk.identity.site.rawValue))
                }
            }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("no pending handoffs") }
            // Every replica holds the fleet's requests: one between two other sites is neither.
            let own = desk.identity.site.rawValue
            printTable(["TICKET", "DIRECTION", "FROM", "TO", "REQUESTED"], rows.map {
                [$0.ticket, $0.incoming ? "incoming" : $0.fromSite == own ? "outgoing" : "elsewhere", $0.fromSite,
                 "\($0.toGroup)@\($0.toSite)", $0.requestedAt]
            })
        }
    }
}
