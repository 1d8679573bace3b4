import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the signed roster to a file (or stdout), to hand to a site that cannot reach the coordinator yet.")
    @OptionGroup var options: StoreOptions
    @Option(help: "The file to write; default: standard output.") var out: String?

    func run() throws {
        guard let signed = try options.open().roster() else {
            throw CLIFailure(message: "this store holds no roster yet; export it from the coordinator (or a store that synced with it)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(RosterFile(document: signed.document, signature: signed.signature.hexString)) + Data("\n".utf8)
        guard let out else { return FileHandle.standardOutput.write(data) }
        guard FileManager.default.createFile(atPath: out, contents: data) else {
            throw CLIFailure(message: "cannot write \(out); check the folder and its permissions")
        }
        if !options.json { print("wrote roster version \(signed.roster.version) to \(out)") }
    }
}
