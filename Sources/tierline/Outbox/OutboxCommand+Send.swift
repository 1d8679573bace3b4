import ArgumentParser
import Foundation
import Notify
import SyncNode
import TicketStore

extension OutboxCommand {
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send the due deliveries in the foreground, as serve does, then exit.",
            discussion: "Without --until-empty it stops when nothing is due now (a retry scheduled for later waits for the next run: for cron); with it, it waits out the retries until nothing is pending. Exit 0 even when deliveries failed: `outbox list` shows them.")
        @OptionGroup var options: StoreOptions
        @Option(help: "The node's JSON settings file (its notifications section: smtp, webhooks, retries).") var config: String?
        @Flag(help: "Wait out retries until every delivery is sent or dead.") var untilEmpty = false
        @Flag(help: "Log each delivery to stderr.") var verbose = false

        func run() async throws {
            let setup = try NotificationSetup(config: config)
            let store = try setup.open(options)
            let dispatcher = NotificationDispatcher(store: store, settings: setup.node.notifications, secrets: setup.secrets,
                                                    logger: commandLogger("tierline.outbox", verbose: verbose))
            let started = Date()
            let report = try await dispatcher.drain(until: untilEmpty ? .nothingPending : .nothingDue)
            let summary = try await store.outboxSummary()
            struct Output: Encodable {
                var sent: Int
                var retrying: Int
                var dead: Int
                var seconds: Double
                var outbox: OutboxSummary
            }
            let output = Output(sent: report.sent, retrying: report.retrying, dead: report.dead,
                                seconds: (Date().timeIntervalSince(started) * 1000).rounded() / 1000, outbox: summary)
            if options.json { return try printJSON(output) }
            print("sent \(report.sent), failed attempts to retry \(report.retrying), dead \(report.dead) in \(output.seconds) s")
            print("outbox: \(summary.pending) pending, \(summary.sent) sent, \(summary.dead) dead" + (summary.dead > 0 ? " (`tierline outbox list --state dead`)" : ""))
        }
    }
}
