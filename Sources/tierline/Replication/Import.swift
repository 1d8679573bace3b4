import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the blocks of an export file.",
        discussion: "The file is streamed: it is checked whole first (nothing is imported from a damaged file), then applied in transactions of at most --batch blocks, with progress on stderr. If the import is interrupted, what was applied stays and is consistent; run the same import again to apply the rest.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline export`.") var file: String
    @Option(help: "Blocks per transaction (at most about 2 MiB of them).") var batch = 500
    @Flag(help: "No progress on stderr.") var quiet = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw CLIFailure(message: "cannot read \(file); check the path")
        }
        let bar = CountProgress("import", enabled: !quiet, minimum: 2 * batch)
        let report = try options.open().importArchive(from: file, batching: ImportBatching(blocks: batch)) { pass, done, total in
            bar.update(done, of: total, pass == .check ? "checking" : "applying")
        }
        bar.finish()
        if options.json { try printJSON(report) } else {
            print("received \(report.received) blocks: \(report.applied) applied, \(report.duplicates) already here, \(report.held) held back")
            for refusal in report.refused { print("refused \(refusal.origin) seq \(refusal.seq): \(refusal.code): \(refusal.reason)") }
        }
        if report.held > 0 {
            FileHandle.standardError.write(Data("note: \(report.held) block(s) are held back: they follow blocks of their site this store has not got. Import the export that holds those blocks, or sync with a node that has them (`tierline sync HOST:PORT`); the held blocks apply then by themselves\n".utf8))
        }
        if !report.refused.isEmpty {
            throw CLIFailure(message: "\(report.refused.count) block(s) refused; the others were applied")
        }
    }
}
