import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Adopt a roster file from `roster export`, if it is signed by the pinned coordinator and newer.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline roster export`.") var file: String

    func run() throws {
        let data = try contents(of: file, hint: "; check the path and its permissions")
        let parsed: RosterFile
        do { parsed = try JSONDecoder().decode(RosterFile.self, from: data) } catch {
            throw CLIFailure(message: "\(file) is not a roster file (a JSON object with \"document\" and \"signature\", as `tierline roster export` writes)")
        }
        guard parsed.signature.utf8.count == 128, let signature = [UInt8](hex: parsed.signature) else {
            throw CLIFailure(message: "\(file): \"signature\" must be 128 hex digits")
        }
        let store = try options.open()
        let adopted = try store.adopt(document: parsed.document, signature: signature)
        let version = try store.rosterVersion()
        if options.json { return try printJSON(["adopted": adopted ? 1 : 0, "version": Int(version)]) }
        print(adopted ? "adopted roster version \(version)" : "this store already holds roster version \(version), as new or newer; nothing changed")
        if let removed = try store.removedSiteRefusal() {
            print("THIS STORE WRITES NOTHING: \(removed)")
        }
    }
}
