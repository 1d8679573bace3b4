import ArgumentParser
import Foundation
import TicketStore

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A short local demo: two stores edited apart, exchanged as files, ending equal.")

    @Option(help: "Keep the demo stores in this new folder (default: a temporary folder, removed afterwards).")
    var dir: String?

    @Flag(help: "Print one JSON document with the outcome.") var json = false

    func run() throws {
        let folder = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("tierline-demo-\(UUID().uuidString.prefix(8))").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let outcome = try TwoSiteDemo.run(in: folder) { line in if !json { print(line) } }
        if json { try printJSON(outcome) } else {
            print("")
            printTable(["NUMBER", "STATUS", "ASSIGNEE", "TAGS", "SUBJECT"], outcome.tickets.map {
                [$0.displayNumber, $0.status, $0.assignee ?? "—", $0.tags.joined(separator: ","), $0.subject]
            })
            if let dir {
                print("\nstores kept in \(dir); try: tierline ticket show \(outcome.conflictTicket) --store \(dir)/north")
            }
        }
        if !outcome.converged { throw CLIFailure(message: "the two stores did not converge") }
    }
}
