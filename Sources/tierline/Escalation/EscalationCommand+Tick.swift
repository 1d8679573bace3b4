import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension EscalationCommand {
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
            for (id, events) in written.sorted(by: { $0.key.textPrecedes($1.key) }) {
                let number = try desk.store.ticket(id.uuidString).displayNumber
                rows.append(Written(ticket: number, id: id.lowercaseText, records: events.compactMap { event in
                    EscalationRecord.decode(event.body).map {
                        SLAReport.Entry(id: event.id.lowercaseText, type: $0.type.rawValue, at: SLAReport.iso($0.at), site: desk.identity.site.rawValue, text: SLAReport.describe($0))
                    }
                }))
            }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("nothing due") }
            printTable(["TICKET", "WHEN", "RECORD"], rows.flatMap { row in row.records.map { [row.ticket, $0.at, $0.text] } }, maxWidth: 100)
        }
    }
}
