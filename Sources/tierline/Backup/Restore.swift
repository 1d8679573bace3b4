import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a store from a backup file, in a folder with no database.",
        discussion: """
            The key comes from --key or the folder's site.key and must be the backup's site key. The restored store refuses \
            local writes until a sync with the coordinator (`tierline sync HOST:PORT`, or `tierline serve` dialing it) has \
            handed back the blocks this site wrote after the backup, so no sequence number is ever reused; then sync catches \
            it up. Sync first with every laptop or office that synced with this site directly since the backup. \
            --release lifts that wait by hand, when you know the site wrote nothing after the backup.
            """)

    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline backup`.") var file: String?
    @Option(help: "The site's key file (64 hex digits), copied into the store; default: the store folder's site.key.") var key: String?
    @Flag(help: "Lift a restored store's wait for the coordinator by hand (no FILE).") var release = false

    func validate() throws {
        if release && (file != nil || key != nil) { throw ValidationError("--release takes no FILE and no --key: it acts on the restored store in --store") }
        if !release && file == nil { throw ValidationError("name the backup FILE to restore (or --release)") }
    }

    func run() throws {
        if release {
            let store = try options.open()
            guard try store.restoredAt() != nil else { return print("\(options.directory.path) is not waiting: local writes are allowed") }
            try store.releaseRestoreFence()
            return print("local writes are allowed again in \(options.directory.path); if this site did write after the backup, its peers will refuse the reused numbers as equivocation")
        }
        guard let file else { return }
        let (_, report) = try options.directory.restore(from: file, keyFile: key, now: Int64(TicketDatabase.systemMillis()))
        if options.json { return try printJSON(report) }
        print("restored site \(report.site) (\(report.role)) into \(options.directory.path): \(report.blocks) blocks, \(report.tickets) tickets, vector \(report.vector)")
        print("local writes wait until the coordinator hands back this site's newer blocks: run `tierline sync HUB:PORT --store \(options.directory.path)` or start `tierline serve` dialing it")
    }
}
