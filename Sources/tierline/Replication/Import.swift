import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the blocks of an export file.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline export`.") var file: String

    func run() throws {
        let data = try contents(of: file, hint: "; check the path")
        let report = try options.open().importArchive([UInt8](data))
        if options.json { try printJSON(report) } else {
            print("received \(report.received) blocks: \(report.applied) applied, \(report.duplicates) already here, \(report.held) held back")
            for refusal in report.refused { print("refused \(refusal.origin) seq \(refusal.seq): \(refusal.code): \(refusal.reason)") }
        }
        if !report.refused.isEmpty {
            throw CLIFailure(message: "\(report.refused.count) block(s) refused; the others were applied")
        }
    }
}
