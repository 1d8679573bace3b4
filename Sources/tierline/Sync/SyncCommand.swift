import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import SyncNode
import TicketModel
import TicketStore

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Exchange blocks with a node once, both ways, then exit.",
        discussion: "Shows progress on stderr. Exit code 0 when both sides caught up, 1 when the exchange did not finish (what was applied stays applied; run it again to resume). Any --tls-* option connects with TLS: --tls-ca checks the node's certificate (else the system's CAs), --tls-cert and --tls-key present this side's certificate to a node that requires one.")

    @OptionGroup var options: StoreOptions
    @Argument(help: "The node's HOST:PORT.") var peer: String
    @OptionGroup var tls: TLSOptions
    @Flag(help: "No progress on stderr.") var quiet = false

    struct Output: Encodable {
        var peer: String
        var peerSite: String?
        var sent: Direction
        var received: Direction
        var applied: Int
        var held: Int
        var refused: Int
        var duplicates: Int
        var conflicts: Int
        var durationMillis: Int
        var skewMillis: Int64?
        var completed: Bool
        var error: String?
        var vector: VersionVector
    }

    struct Direction: Encodable {
        var blocks: Int
        var batches: Int?
        var wireBytes: Int
        var changeSetBytes: Int
    }

    func validate() throws {
        do { _ = try Endpoint(parsing: peer) } catch { throw ValidationError(error.message) }
    }

    func run() async throws {
        // A certificate or key file with problems is not a usage mistake: exit 2 without the usage line.
        do { try tls.applied(to: nil)?.validate(listening: false) } catch { throw CLIFailure(message: error.message, code: 2) }
        let endpoint = try Endpoint(parsing: peer)
        let directory = options.directory
        let store = try directory.open()
        let key = try directory.loadKey()
        let bar = ProgressBar(enabled: !quiet)
        var summary: SessionSummary
        var failure: String?
        do {
            summary = try await SyncClient.exchange(store: store, key: key, with: endpoint, logger: Logger(label: "tierline.sync", factory: { _ in SwiftLogNoOpLogHandler() }),
                                                    tls: tls.applied(to: nil), allowPlain: try tls.allowPlain.map { try SiteID($0) }, onProgress: { bar.update($0) })
        } catch let error as SyncFailure {
            // Nothing was exchanged: a summary of zeros would read like a sync that found nothing to do.
            guard error.sessionStarted else {
                bar.finish()
                throw CLIFailure(message: error.message)
            }
            summary = error.summary
            failure = error.message
        }
        bar.finish()
        // A session refused after hello (a wrong pinned key, a roster either side refuses) moved no
        // block: its zeros would read like a sync that found nothing to do, so only the error is said.
        if let failure, summary.sentBlocks == 0, summary.receivedBlocks == 0 { throw CLIFailure(message: failure) }
        let output = Output(peer: endpoint.description, peerSite: summary.peerSite,
                            sent: Direction(blocks: summary.sentBlocks, batches: summary.sentBatches, wireBytes: summary.bytesOut,
                                            changeSetBytes: summary.changeSetBytesOut),
                            received: Direction(blocks: summary.receivedBlocks, batches: nil, wireBytes: summary.bytesIn,
                                                changeSetBytes: summary.changeSetBytesIn),
                            applied: summary.applied, held: summary.held, refused: summary.refused, duplicates: summary.duplicates,
                            conflicts: summary.newConflicts, durationMillis: summary.durationMillis, skewMillis: summary.skewMillis,
                            completed: failure == nil, error: failure, vector: try store.vector())
        if options.json {
            try printJSON(output)
        } else {
            printTable(["", "BLOCKS", "ON THE WIRE", "CHANGE SETS"], [
                ["sent", "\(output.sent.blocks)", byteText(output.sent.wireBytes), byteText(output.sent.changeSetBytes)],
                ["received", "\(output.received.blocks)", byteText(output.received.wireBytes), byteText(output.received.changeSetBytes)],
            ])
            print("")
            // Cut mid-way: what was exchanged is kept, and the line says the sync did not finish.
            print("peer \(output.peerSite ?? "?") at \(output.peer)\(failure == nil ? "" : " (did not finish)"): applied \(output.applied), held back \(output.held), refused \(output.refused), new conflicts \(output.conflicts), \(output.durationMillis) ms"
                  + (output.skewMillis.map { ", clock skew \($0) ms" } ?? ""))
        }
        if let failure { throw CLIFailure(message: failure) }
    }
}
