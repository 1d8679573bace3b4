import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-issue a copied store's unsynced work in this store, under this store's own site.",
        discussion: """
            A store that a peer showed to be a copy of its site (`tierline status` says THIS STORE WRITES \
            NOTHING) keeps its unsynced tickets. Make a new store for the machine with a site id of its own \
            (`tierline init --site NEW`), have the coordinator admit it (`tierline roster add`), sync it with \
            the coordinator, then run this in it with --from the copy: every change of the copy that the fleet \
            does not hold is written again as this store's, and the next sync sends it. The copy is not changed. \
            This store records what it re-issued: a second run from the same copy is refused rather than issue \
            the work twice, and a run that was cut short is taken up where it stopped.
            """)
    @OptionGroup var options: StoreOptions
    @Option(help: "The folder of the store found to be a copy.") var from: String

    func run() throws {
        let store = try options.open()
        let copy = try StoreDirectory(path: from).open()
        let report = try store.reissue(from: copy)
        if options.json { return try printJSON(report) }
        if report.blocksRead.isEmpty {
            print("nothing to re-issue: the fleet holds every block of \(report.from) that the copy holds")
            return
        }
        if !report.alreadyReissued.isEmpty {
            print("skipped \(report.alreadyReissued.count) block(s) of \(report.from) (seq \(report.alreadyReissued.map(String.init).joined(separator: ", "))) that an earlier recover re-issued here")
        }
        print("re-issued \(report.changes) change(s) of \(report.blocksRead.count) block(s) of \(report.from) (seq \(report.blocksRead.map(String.init).joined(separator: ", "))) as \(report.to)'s blocks \(report.blocksWritten.map(String.init).joined(separator: ", "))")
        if !report.tickets.isEmpty {
            printTable(["TICKET", "WAS", "NOW"], report.tickets.map { [$0.id, $0.was, $0.now] })
        }
        print("next: `tierline sync HUB:PORT` (or the node's serve) sends them to the fleet")
    }
}
