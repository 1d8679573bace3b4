import ArgumentParser
import Foundation
import Demo
import SyncNode
import TicketStore

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A local multi-site demo on 127.0.0.1: three nodes and a laptop edit apart, a partition heals, digests end equal.",
        discussion: "--files runs the network-free variant: two stores exchange export files.")

    @Option(help: "Keep the demo stores in this new folder (default: a temporary folder, removed afterwards).")
    var dir: String?

    @Flag(help: "Exchange export files instead of running nodes.") var files = false

    @Flag(help: "Print one JSON document with the outcome.") var json = false

    func run() async throws {
        let folder = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("tierline-demo-\(UUID().uuidString.prefix(8))").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let quiet = json
        let say: @Sendable (String) -> Void = { line in if !quiet { print(line) } }
        if files {
            let outcome = try TwoSiteDemo.run(in: folder, say: say)
            try finish(outcome, tickets: outcome.tickets, converged: outcome.converged, conflict: outcome.conflictTicket, store: "north")
            return
        }
        let outcome = try await FleetDemo.run(in: folder, say: say)
        if !json {
            print("")
            printTable(["SITE", "ROLE", "TICKETS", "VECTOR", "DIGEST"], outcome.sites.map {
                [$0.site, $0.role, "\($0.tickets)", $0.vector, String($0.digest.prefix(16)) + "…"]
            }, maxWidth: 60)
        }
        try finish(outcome, tickets: outcome.tickets, converged: outcome.converged, conflict: outcome.conflictTicket, store: "hub")
    }

    func finish(_ outcome: some Encodable, tickets: [TicketRecord], converged: Bool, conflict: String, store: String) throws {
        if json { try printJSON(outcome) } else {
            print("")
            printTable(["NUMBER", "STATUS", "ASSIGNEE", "TAGS", "SUBJECT"], tickets.map {
                [$0.displayNumber, $0.status, $0.assignee ?? "—", $0.tags.joined(separator: ","), $0.subject]
            })
            print(converged ? "\nall replicas hold the same tickets (equal digests)" : "\nreplicas DIFFER")
            if let dir {
                print("stores kept in \(dir); try: tierline ticket show \(conflict) --store \(dir)/\(store)")
            }
        }
        if !converged { throw CLIFailure(message: "the demo replicas did not converge") }
    }
}
