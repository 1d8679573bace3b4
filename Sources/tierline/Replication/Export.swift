import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write blocks to a file (zlib) for another store to import.",
        discussion: "The file is written a block at a time from one snapshot of the store (memory stays bounded), as a new FILE.partial-XXXXXX (owner-only), renamed to FILE once whole.")
    @OptionGroup var options: StoreOptions
    @Option(help: "The file to write.") var out: String
    @Option(help: "A version vector (JSON from `tierline vector` of the receiving store): export only what it lacks.")
    var sinceVector: String?
    @Flag(help: "No progress on stderr.") var quiet = false

    struct Output: Encodable {
        var file: String
        var blocks: Int
        var bytes: Int
    }

    func run() throws {
        var vector = VersionVector()
        if let sinceVector {
            let data = try contents(of: sinceVector, hint: "; write it with `tierline vector > FILE` on the receiving store")
            do { vector = try JSONDecoder().decode(VersionVector.self, from: data) } catch {
                throw CLIFailure(message: "\(sinceVector) is not a version vector (a JSON object of site → seq): \(error.localizedDescription)")
            }
        }
        let bar = CountProgress("export", enabled: !quiet)
        let written = try options.open().exportArchive(to: out, after: vector) { done, total in bar.update(done, of: total) }
        bar.finish()
        let output = Output(file: out, blocks: written.blocks, bytes: written.bytes)
        if options.json { return try printJSON(output) }
        print("exported \(output.blocks) blocks (\(output.bytes) bytes) to \(out)")
    }
}
