import ArgumentParser
import TicketModel
import TicketStore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a store and this site's key pair.")

    @OptionGroup var options: StoreOptions

    @Option(help: "This site's id: [a-z][a-z0-9-]{0,31}, e.g. north or branch-7.")
    var site: SiteID

    @Option(help: "The site's role: site, coordinator or laptop.")
    var role: SiteRole = .site

    struct Output: Encodable {
        var site: String
        var role: String
        var publicKey: String
        var store: String
    }

    func run() throws {
        let database = try options.directory.create(site: site, role: role)
        let me = try database.identity()
        let output = Output(site: me.site.rawValue, role: me.role.rawValue, publicKey: me.publicKey.hexString, store: options.directory.path)
        if options.json { return try printJSON(output) }
        print("initialized \(output.store) as site \(output.site) (\(output.role))")
        print("public key \(output.publicKey)")
        print("private key \(options.directory.keyPath) (mode 0600)")
    }
}
