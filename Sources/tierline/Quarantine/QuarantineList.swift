import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct QuarantineList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List quarantined blocks with how far ahead each is.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        let blocks = try options.open().quarantined()
        if options.json { return try printJSON(blocks) }
        guard !blocks.isEmpty else { return print("no block is quarantined") }
        printTable(["SITE", "SEQ", "AHEAD", "HASH"], blocks.map { [$0.origin, "\($0.seq)", durationText(millis: $0.aheadMillis), $0.hash] })
    }
}
