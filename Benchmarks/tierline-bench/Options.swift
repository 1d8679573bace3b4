import ArgumentParser
import Foundation

/// The benchmark's flags. `--help` prints them and exits; an unknown flag or a bad value is a usage
/// error (exit 2), so a mistyped flag never starts a run of several minutes with the defaults.
///
/// A `ParsableCommand` only for its name and abstract in the help: `main.swift` runs the sections.
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tierline-bench",
        abstract: "Tierline's figures beside plain SQLite and raw loopback, measured in one run.",
        discussion: """
            Prints one JSON object per figure ({"peer","workload","metric","value","unit","ratio"}), then \
            a table. Each section checks its own result and exits non-zero if it is wrong.

            With --peers DIR, the peer harness in DIR (bench_sqlite_plain.py, bench_sqlite_session.py, \
            bench_pycrdt.py, bench_loro.py, and a .venv with their libraries) runs W1 and W2 in the same \
            run, each peer in a process of its own, and every Tierline figure of W1 and W2 gets its ratio \
            to each peer and to the best one. A peer that is missing, fails or times out is reported \
            (on stderr, in the table, and as a JSON line with an "error" member) and the run goes on.

            Exit status: 0 when every section passed and every peer asked for gave its figures; 3 when \
            the sections passed but the harness or a peer did not (the figures printed are good); 2 for a \
            usage error; any other non-zero status when a section failed its own check.
            """)

    static let allSections = ["w1", "w2", "sync", "rss", "escalation", "wire", "intake"]

    @Option(help: ArgumentHelp("Sections to run, comma-separated: \(Options.allSections.joined(separator: ",")).", valueName: "sections"))
    var only = Options.allSections.joined(separator: ",")

    @Option(help: "Changes the laptop syncs to the node in the sync section.")
    var changes = 100_000

    @Option(help: "Changes of the rss section's sync (run in a process of its own).")
    var rssChanges = 1_000_000

    @Option(help: "Scale of W1's and W2's sizes (0.1 is a tenth).")
    var scale = 1.0

    @Flag(help: "Run the dashboard's figures instead of the sections.")
    var dashboard = false

    @Option(help: ArgumentHelp("Ticket counts of the dashboard's stores, comma-separated.", valueName: "sizes"))
    var sizes = "10000,100000,1000000"

    @Option(help: ArgumentHelp("Runs of every section (and peer), interleaved; each figure is their median.", valueName: "n"))
    var runs = 1

    @Option(help: ArgumentHelp("The peer harness's folder: run its W1/W2 benches in this run, at the same --scale.", valueName: "dir"))
    var peers: String?

    @Option(help: ArgumentHelp("The Python that runs the peers (default: DIR/.venv/bin/python).", valueName: "path"))
    var peersPython: String?

    @Option(help: ArgumentHelp("Seconds each peer's process may take before it is stopped and reported.", valueName: "seconds"))
    var peersTimeout = 600

    @Option(help: "Concurrent clients of the intake section.")
    var intakeClients = 16

    @Option(help: "Tickets each intake client posts, one after another.")
    var intakeRequests = 25

    @Flag(help: "Print the JSON lines only: no table, no progress on stderr.")
    var jsonOnly = false

    @Flag(help: "Leave the stores in place (the folder goes to stderr), to inspect them with sqlite3.")
    var keep = false

    var sectionSet: Set<String> { Set(only.split(separator: ",").map(String.init)) }
    var sizeList: [Int] { sizes.split(separator: ",").compactMap { Int($0) } }

    func validate() throws {
        if let unknown = sectionSet.subtracting(Self.allSections).sorted().first {
            throw ValidationError("unknown section \"\(unknown)\" in --only; the sections are \(Self.allSections.joined(separator: ", "))")
        }
        guard !sectionSet.isEmpty else { throw ValidationError("--only names no section") }
        guard sizes.split(separator: ",", omittingEmptySubsequences: false).allSatisfy({ Int($0).map { $0 > 0 } == true }) else {
            throw ValidationError("--sizes takes positive ticket counts separated by commas, such as 10000,100000")
        }
        guard changes > 0, rssChanges > 0, scale > 0 else { throw ValidationError("--changes, --rss-changes and --scale must be positive") }
        guard (1...99).contains(runs) else { throw ValidationError("--runs takes 1 to 99 (3 gives a median of three)") }
        guard peersTimeout > 0, intakeClients > 0, intakeRequests > 0 else {
            throw ValidationError("--peers-timeout, --intake-clients and --intake-requests must be positive")
        }
        if peersPython != nil && peers == nil { throw ValidationError("--peers-python needs --peers DIR, the harness it runs") }
    }

    /// The options of this process: `--help` exits 0 with the help, a usage error exits 2 with the
    /// message and the usage (STYLE.md §8: exit 2 for usage, not ArgumentParser's 64).
    static func parseCommandLine() -> Options {
        do { return try parse() } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}
