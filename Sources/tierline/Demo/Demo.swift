import ArgumentParser
import Demo
import Foundation
import SyncNode
import TicketStore
import UnixSignals

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A local multi-site help desk on 127.0.0.1: a coordinator with the dashboard, two offices and a laptop.",
        discussion: """
            Tickets stream in, south's link is cut and heals, north escalates a ticket to tier 2 at the hub with a handoff note, \
            a platinum ticket misses its SLA target and climbs its ladder, the laptop syncs, and every replica ends equal. \
            Then the fleet keeps running (the dashboard shows breaches within a minute) until Ctrl-C, which stops every node \
            and removes the temporary stores. The hub's dashboard is behind the workspace's sign-in like any node's: the demo \
            publishes an agent demo-manager (role manager) and prints a password made for the run, once, to sign in at /login. \
            --short runs the story quickly and exits (exit 0 when the replicas converged); \
            --files runs the network-free two-store variant.
            """)

    @Option(help: "Keep the demo stores in this new folder (default: a temporary folder, removed afterwards).")
    var dir: String?

    @Option(help: "Serve the hub's dashboard on HOST:PORT (a free port if it is taken), or 'off'.")
    var dashboard: String = "127.0.0.1:8080"

    @Flag(help: "Run the story with short pauses and exit at its end, without the live phase.") var short = false

    @Flag(help: "Exchange export files between two stores instead of running nodes.") var files = false

    @Flag(help: "Print one JSON document with the outcome (narration goes to stderr).") var json = false

    func validate() throws {
        if dashboard != "off" {
            do { _ = try Endpoint(parsing: dashboard) } catch { throw ValidationError("--dashboard: \(error.message)") }
        }
        if let dir, FileManager.default.fileExists(atPath: dir + "/hub") || FileManager.default.fileExists(atPath: dir + "/north") {
            throw ValidationError("--dir \(dir) already holds demo stores; name a new folder")
        }
    }

    func run() async throws {
        let folder = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("tierline-demo-\(UUID().uuidString.prefix(8))").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let json = json
        let say: @Sendable (String) -> Void = { line in
            (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
        }
        if files {
            let outcome = try TwoSiteDemo.run(in: folder, say: say)
            if json { return try printJSON(outcome) }
            print("")
            printTable(["NUMBER", "STATUS", "ASSIGNEE", "TAGS", "SUBJECT"], outcome.tickets.map {
                [$0.displayNumber, $0.status, $0.assignee ?? "—", $0.tags.joined(separator: ","), $0.subject]
            })
            print(outcome.converged ? "\nboth stores hold the same tickets (equal digests)" : "\nthe stores DIFFER")
            if !outcome.converged { throw CLIFailure(message: "the demo stores did not converge") }
            return
        }
        let options = FleetDemoOptions(short: short, dashboard: dashboard == "off" ? nil : try Endpoint(parsing: dashboard))
        // Ctrl-C (or SIGTERM) cancels the demo, which stops every node; a second one exits at once.
        // The signals are trapped before the first store is made, so no Ctrl-C finds them untrapped.
        let trapped = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let demo = Task { try await FleetDemo.run(in: folder, options: options, say: say) }
        let temporary = dir == nil
        let signals = Task {
            var count = 0
            for await _ in trapped {
                count += 1
                if count == 1 { demo.cancel() } else {
                    if temporary { try? FileManager.default.removeItem(atPath: folder) }
                    Foundation.exit(130)
                }
            }
        }
        defer { signals.cancel() }
        let outcome: FleetDemo.Outcome
        do {
            outcome = try await demo.value
        } catch is CancellationError {
            say("\nInterrupted: every node, the proxy and the dashboard are stopped" + (dir == nil ? "; the temporary stores are removed." : "."))
            if dir == nil { try? FileManager.default.removeItem(atPath: folder) }
            Foundation.exit(130)
        }
        if json {
            try printJSON(outcome)
        } else {
            print("")
            printTable(["SITE", "ROLE", "TICKETS", "VECTOR", "DIGEST"], outcome.sites.map {
                [$0.site, $0.role, "\($0.tickets)", $0.vector, $0.digest]
            }, maxWidth: 60)
            let s = outcome.stream
            func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
            print("\nwork written: " + [count(s.tickets, "ticket"), (s.replies == 1 ? "1 reply" : "\(s.replies) replies"), count(s.customerMessages, "customer message"),
                                        count(s.tags, "tag"), "\(s.solved) solved"].joined(separator: ", ")
                  + "; " + count(outcome.breachedClocks, "SLA clock") + " breached")
            print(outcome.converged ? "all replicas hold the same tickets (equal digests)" : "replicas DIFFER")
            print("every node, the proxy and the dashboard are stopped")
            if let dir {
                print("stores kept in \(dir); try: tierline ticket show \(outcome.handoffTicket) --store \(dir)/hub")
            }
        }
        if !outcome.converged { throw CLIFailure(message: "the demo replicas did not converge") }
    }
}
