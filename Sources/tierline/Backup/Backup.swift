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
