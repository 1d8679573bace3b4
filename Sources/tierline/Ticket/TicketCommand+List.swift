import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tickets, newest first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only this status.") var status: Status?
        @Option(help: "Only tickets created at this site.") var site: SiteID?
        @Option(help: "At most this many.") var limit = 500

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        /// Streams: rows are printed as the store reads them, a page at a time (a table reads them
        /// twice, to size its columns first), so `--limit 1000000` needs no more memory than `--limit 10`.
        /// Scripts read `--json`, which reads once; a table lists what the second read finds.
        func run() throws {
            let store = try options.open()
            if options.json {
                var printer = JSONArrayPrinter<TicketRecord>()
                try store.forEachTicket(status: status, site: site, limit: limit) { try printer.add($0) }
                return try printer.finish()
            }
            try printTable(["NUMBER", "STATUS", "PRIORITY", "ASSIGNEE", "OWNER", "TAGS", "SUBJECT"], whenEmpty: "no tickets") { each in
                try store.forEachTicket(status: status, site: site, limit: limit) {
                    try each([$0.displayNumber, $0.status, $0.priority, $0.assignee ?? "—", $0.owningSite, $0.tags.joined(separator: ","),
                              $0.subject + ($0.conflictCount > 0 ? "  ⚠ \($0.conflictCount) conflict(s)" : "")])
                }
            }
        }
    }
}
