import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a site from the roster (coordinator only): its sessions are refused, its later blocks too.",
        discussion: """
            The site's blocks up to the newest one this coordinator holds stay valid everywhere (replicas may hold them \
            already); later ones are refused on every replica. Sync the site once more before removing it if you want its \
            last work.
            """)
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site id to remove.") var site: SiteID
    @Option(help: ArgumentHelp("The last valid seq of the site (default: the newest block of it this store holds).",
                               discussion: "For a removal the fleet already holds, which a coordinator restored from an older backup signs again: the sites refuse its rosters until it does, and their message gives the value."))
    var after: UInt64?

    func run() throws {
        let (signed, held) = try options.open().removeFromRoster(site, after: after)
        if options.json { return try printJSON(signed.roster) }
        print("roster version \(signed.roster.version): \(site) removed; its blocks after seq \(held) are refused everywhere")
    }
}
