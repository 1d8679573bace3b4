import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a site to the roster (coordinator only), or change an active site's role.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site id, as the site chose it at `tierline init`.") var site: SiteID
    @Option(help: "The site's public key: the 64 hex digits `tierline init` printed there.") var key: PublicKeyArgument
    @Option(help: "site (an office node) or laptop.") var role: SiteRole = .site

    func validate() throws {
        if role == .coordinator { throw ValidationError("a fleet has one coordinator, the store that signs the roster; add sites as site or laptop") }
    }

    func run() throws {
        let signed = try options.open().admit(site: site, key: key.bytes, role: role)
        if options.json { return try printJSON(signed.roster) }
        print("roster version \(signed.roster.version): \(site) is a \(role.rawValue) with key \(key.bytes.hexString.prefix(16))…; peers learn it at their next session")
    }
}
