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
}
