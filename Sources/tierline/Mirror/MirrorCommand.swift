import ArgumentParser
import Dashboard
import Foundation
import Logging
import Mirror
import SyncNode
import TicketModel
import TicketStore
import UnixSignals

struct MirrorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Keep a PostgreSQL schema current from this store, one way, for reports in SQL.",
        discussion: """
            Copies tickets (every field), their events, tags, conflicts, customers, articles, sites \
            and the dashboard's per-ticket facts (deriving those still pending, as the dashboard does) \
            into tables of --schema, creating and upgrading them itself, with a cursor per origin site \
            written in the same transaction as the rows it covers: a mirror stopped at any point \
            resumes where it stopped. Catches up in batches (progress on stderr), then follows the \
            store until Ctrl-C; --once stops when caught up. The password comes from the URL, else \
            $PGPASSWORD (prefer $PGPASSWORD: a URL's password shows in ps). sslmode is disable, prefer (default), require, verify-ca or verify-full \
            (with sslrootcert=FILE). Docs/postgres-mirror.md describes the tables and views.
            """)

    @OptionGroup var options: StoreOptions

    @Option(name: .long, help: ArgumentHelp("The PostgreSQL URL: postgres://ROLE@HOST:PORT/DATABASE?sslmode=require", valueName: "url"))
    var postgres: String

    @Option(name: .long, help: "The PostgreSQL schema the mirror owns.")
    var schema = "tierline"

    @Flag(name: .long, help: "Stop when the mirror has caught up, instead of following the store.")
    var once = false

    @Option(name: .long, help: "Blocks of the log per PostgreSQL transaction, at most.")
    var batchBlocks = 256

    @Option(name: .long, help: "Longest wait, in ms, for PostgreSQL to answer one batch, or a connection with its migration (1000-3600000); past it the mirror gives up (--once) or reconnects.")
    var timeoutMillis = MirrorSettings.defaultTimeoutMillis

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard (1...100_000).contains(batchBlocks) else { throw ValidationError("--batch-blocks takes 1 to 100000, not \(batchBlocks)") }
        guard MirrorSettings.timeoutRange.contains(timeoutMillis) else {
            throw ValidationError("--timeout-millis takes \(MirrorSettings.timeoutRange.lowerBound) to \(MirrorSettings.timeoutRange.upperBound), not \(timeoutMillis)")
        }
    }

    struct Output: Encodable {
        var target: String
        var schema: String
        var caughtUp: Bool
        var batches: Int
        var blocks: Int
        var tickets: Int
        var events: Int
        var customers: Int
        var articles: Int
        /// Tickets whose dashboard facts were mirrored.
        var facts: Int
        /// `null` when the run never read PostgreSQL's cursors.
        @NullEncoded var behindBlocks: Int64?
        /// Tickets whose facts are not mirrored yet (derived and not copied, or not derived yet).
        var factsBehind: Int64
        var cursors: [String: Int64]
        var seconds: Double
    }

    func run() async throws {
        let target: PostgresTarget
        do { target = try PostgresTarget(url: postgres, schema: schema, environment: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError("--postgres: \(error.detail)")
        }
        let store = try options.directory.open()
        // TIERLINE_MIRROR_LOG=debug (or trace: every PostgreSQL message) logs to stderr.
        let level = ProcessInfo.processInfo.environment["TIERLINE_MIRROR_LOG"].flatMap(Logger.Level.init(rawValue:))
        if let level { bootstrapLogging(level) }
        var logger = Logger(label: "tierline.mirror")
        logger.logLevel = level ?? .error
        var mirror = PostgresMirror(store: store, target: target, logger: logger, limits: BatchLimits(blocks: batchBlocks))
        mirror.stepLimit = .milliseconds(timeoutMillis)
        mirror.facts = try await MetricIndex(store)
        let progress = MirrorProgress(enabled: !quiet)
        let started = Date()
        let trapped = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let live = !once
        let work = Task { try await mirror.run(live: live) { progress.show($0) } }
        let signals = Task {
            for await _ in trapped { work.cancel(); break }
        }
        defer { signals.cancel() }
        let status: MirrorStatus
        do {
            status = try await work.value
        } catch is CancellationError {
            progress.finish()
            FileHandle.standardError.write(Data("mirror stopped; run the same command to resume from PostgreSQL's cursor\n".utf8))
            // Following the store, Ctrl-C or SIGTERM is how it ends: the summary of the run, exit 0.
            // Stopped before --once caught up: exit 130, as an interrupted command.
            guard !once else { Foundation.exit(130) }
            return try summarize(progress.last ?? MirrorStatus(target: target.description), target: target, since: started)
        } catch let error as MirrorError {
            progress.finish()
            throw CLIFailure(message: error.detail, code: error.code == .badTarget ? 2 : 1)
        }
        progress.finish()
        try summarize(status, target: target, since: started)
    }

    /// The summary: a table, or one JSON document with `--json`.
    func summarize(_ status: MirrorStatus, target: PostgresTarget, since started: Date) throws {
        let output = Output(target: target.description, schema: schema, caughtUp: status.connected && status.behindBlocks == 0 && (status.factsBehind ?? 0) == 0, batches: status.batches,
                            blocks: status.blocks, tickets: status.tickets, events: status.events, customers: status.customers,
                            articles: status.articles, facts: status.facts, behindBlocks: status.behindBlocks,
                            factsBehind: status.factsBehind ?? 0, cursors: status.cursors,
                            seconds: Date().timeIntervalSince(started))
        if options.json { return try printJSON(output) }
        print("mirrored into \(output.target)")
        printTable(["BATCHES", "BLOCKS", "TICKETS", "EVENTS", "CUSTOMERS", "ARTICLES", "FACTS", "BEHIND", "FACTS BEHIND", "SECONDS"], [[
            "\(output.batches)", "\(output.blocks)", "\(output.tickets)", "\(output.events)", "\(output.customers)",
            "\(output.articles)", "\(output.facts)", output.behindBlocks.map { "\($0)" } ?? "unknown", "\(output.factsBehind)", String(format: "%.1f", output.seconds),
        ]])
        printTable(["ORIGIN", "MIRRORED SEQ"], output.cursors.sorted { $0.key < $1.key }.map { [$0.key, "\($0.value)"] })
    }
}

/// The mirror's progress on stderr: redrawn on a terminal, a line every two seconds otherwise; a
/// retry's error at once.
final class MirrorProgress: @unchecked Sendable {
    let enabled: Bool
    let tty = isatty(2) == 1
    let lock = NSLock()
    var lastDraw = Date.distantPast
    var lastError: String?
    var drawn = false
    /// The last status reported, for the summary of a run that was stopped.
    var last: MirrorStatus?

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ status: MirrorStatus) {
        lock.lock()
        defer { lock.unlock() }
        last = status
        guard enabled else { return }
        if let error = status.lastError, error != lastError {
            FileHandle.standardError.write(Data(((drawn && tty ? "\n" : "") + "mirror: PostgreSQL unreachable, retrying: \(error)\n").utf8))
            drawn = false
        }
        lastError = status.lastError
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= (tty ? 0.2 : 2.0), status.blocks > 0 else { return }
        lastDraw = now
        let text = "mirror: \(status.blocks) blocks, \(status.tickets) tickets, \(status.events) events in \(status.batches) batches; \(status.behindBlocks.map { "\($0)" } ?? "unknown") blocks behind"
        FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + text + (tty ? "" : "\n")).utf8))
        drawn = true
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drawn && tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
