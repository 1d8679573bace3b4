import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write blocks to a file (zlib) for another store to import.")
    @OptionGroup var options: StoreOptions
    @Option(help: "The file to write.") var out: String
    @Option(help: "A version vector (JSON from `tierline vector` of the receiving store): export only what it lacks.")
    var sinceVector: String?

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
        let archive = try options.open().exportArchive(after: vector)
        let tmp = out + ".partial"
        // Write then rename, so a reader never sees half a file.
        guard FileManager.default.createFile(atPath: tmp, contents: Data(archive.bytes)) else {
            throw CLIFailure(message: "cannot write \(out); check the folder exists and is writable")
        }
        _ = try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.moveItem(atPath: tmp, toPath: out)
        let output = Output(file: out, blocks: archive.blockCount, bytes: archive.bytes.count)
        if options.json { return try printJSON(output) }
        print("exported \(output.blocks) blocks (\(output.bytes) bytes) to \(out)")
    }
}
