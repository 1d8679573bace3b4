import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent copy of the store's database while its node runs (SQLite's online backup).",
        discussion: "The copy is checked with PRAGMA integrity_check before it gets its name; an existing FILE is never overwritten. The site's private key (site.key) is not in the copy: back it up once, right after `init`.")

    @OptionGroup var options: StoreOptions
    @Argument(help: "The backup file to create.") var file: String
    @Flag(help: "No progress on stderr.") var quiet = false

    func run() throws {
        let store = try options.open()
        let showProgress = !quiet && !options.json && isatty(2) == 1
        let report = try store.backup(to: file) { done, total in
            guard showProgress, total > 0 else { return }
            FileHandle.standardError.write(Data("\rbacking up: \(done * 100 / total)% of \(total) pages".utf8))
        }
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        if options.json { return try printJSON(report) }
        print("backed up site \(report.site) (\(report.role)) to \(report.file): \(byteText(report.bytes)), \(report.blocks) blocks, \(report.tickets) tickets")
        print("vector \(report.vector), digest \(report.digest.prefix(16))…")
        print("keep \(options.directory.keyPath) safe as well: the backup does not hold the site's private key")
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a store from a backup file, in a folder with no database.",
        discussion: "The key comes from --key or the folder's site.key and must be the backup's site key. The restored store refuses local writes until one sync with a peer (`tierline sync HOST:PORT`, or `tierline serve` with peers) has told it its own highest block, so no sequence number is ever reused; then sync catches it up.")

    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline backup`.") var file: String
    @Option(help: "The site's key file (64 hex digits), copied into the store; default: the store folder's site.key.") var key: String?

    func run() throws {
        let (_, report) = try options.directory.restore(from: file, keyFile: key, now: Int64(TicketDatabase.systemMillis()))
        if options.json { return try printJSON(report) }
        print("restored site \(report.site) (\(report.role)) into \(options.directory.path): \(report.blocks) blocks, \(report.tickets) tickets, vector \(report.vector)")
        print("local writes wait until a peer tells this store its own highest block: run `tierline sync HOST:PORT --store \(options.directory.path)` or start `tierline serve` with peers")
    }
}
