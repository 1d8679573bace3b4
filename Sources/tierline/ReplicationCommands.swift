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
            guard let data = FileManager.default.contents(atPath: sinceVector) else {
                throw CLIFailure(message: "cannot read \(sinceVector); write it with `tierline vector > FILE` on the receiving store")
            }
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

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the blocks of an export file.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline export`.") var file: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIFailure(message: "cannot read \(file); check the path")
        }
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

struct VectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vector", abstract: "Print this store's version vector as JSON.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        try printJSON(try options.open().vector())
    }
}

struct Digest: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the state digest: equal on two stores exactly when they hold the same tickets.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        let digest = try options.open().digest()
        if options.json { return try printJSON(["digest": digest]) }
        print(digest)
    }
}

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
