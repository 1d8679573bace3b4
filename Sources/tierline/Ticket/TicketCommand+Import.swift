import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension TicketSheet.Format: ExpressibleByArgument {}

extension TicketCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open many tickets from a CSV or JSON-lines file, in batches.",
            discussion: """
                Each CSV row (header row required) or JSON line (one object) is a ticket: subject (required), priority (low, normal, high, urgent), customer, channel, group, assignee, tags (a JSON array, or tags separated by ';'), category, customer_tier, first_message. \
                The format comes from the file's extension (.csv, .jsonl, .ndjson) unless --format says it. \
                The file is read twice, a row at a time (memory holds a batch, not the file): every row is checked as `ticket create` checks its flags before anything is written, with progress: one bad row refuses the whole file with its line and column, and nothing is imported. \
                Tickets are then written --batch at a time, each transaction with their SLA policies; progress goes to stderr. Imported tickets send no notices. \
                An import that stops (a crash, a full disk) keeps the batches it committed and says so; run the same command on the unchanged file to finish it: each row's ticket id comes from this site, the file's SHA-256 and the row's line, so rows already imported are skipped and counted as "already imported". An edited file is a new file: every row of it is imported again.
                """)
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The CSV or JSON-lines file.") var file: String
        @Option(help: "csv or jsonl (default: from the file's extension).") var format: TicketSheet.Format?
        @Option(help: "Tickets per transaction. Each transaction holds the store's write lock: a running node's intake and sync wait for it, so keep batches modest (the default suits a live node).") var batch = 1_000
        @Flag(help: "Take a channel intake does not know, a customer tier nothing names, or an assignee or group from outside the agent directory (on purpose), instead of refusing it.") var allowUnknown = false
        @Flag(help: "No progress on stderr.") var quiet = false

        func validate() throws {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            if format == nil, TicketSheet.format(forFile: file) == nil {
                throw ValidationError("cannot tell the format of \(file) from its name; pass --format csv or --format jsonl")
            }
        }

        func run() throws {
            let store = try options.open()
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            let checkBar = CountProgress("ticket import", enabled: !quiet, minimum: 2_048)
            let bar = CountProgress("ticket import", enabled: !quiet, minimum: 2 * batch)
            let report: TicketImportReport
            do {
                report = try HelpDesk(store: store).importTickets(
                    from: file, format: format ?? TicketSheet.format(forFile: file)!, actor: try actor.name(in: store), now: nowMillis(),
                    allowUnknown: allowUnknown, batchSize: batch,
                    progress: { done, total in bar.update(done, of: total) },
                    checking: { rows, bytes in checkBar.update(bytes >> 10, of: size >> 10, "checking, \(rows) rows; KiB") })
            } catch {
                // Ended on failure too, so the error starts on a line of its own, not after a progress line.
                checkBar.finish()
                bar.finish()
                throw error
            }
            checkBar.finish()
            bar.finish()
            if options.json { return try printJSON(report) }
            printTable(["rows", "created", "already imported", "blocks", "transactions", "first", "last"],
                       [["\(report.rows)", "\(report.created)", "\(report.alreadyImported)", "\(report.blocks)", "\(report.transactions)", report.firstNumber ?? "-", report.lastNumber ?? "-"]])
            print("")
            printTable(["priority", "tickets"], Priority.allCases.compactMap { p in report.byPriority[p.rawValue].map { [p.rawValue, "\($0)"] } })
        }
    }
}
