import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct QuarantineRelease: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "release", abstract: "Release a quarantined block (coordinator only).")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site that wrote the block.") var site: SiteID
    @Argument(help: "Its seq, as `tierline quarantine list` shows it.") var seq: UInt64

    func run() throws {
        let (signed, block) = try options.open().releaseQuarantined(site: site, seq: seq)
        if options.json { return try printJSON(signed.roster.released) }
        print("released \(site) seq \(seq) (\(durationText(millis: block.aheadMillis)) ahead) in roster version \(signed.roster.version); every replica applies it as the roster reaches it")
    }
}
