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

    @Option(name: .customLong("coordinator-key"),
            help: "The coordinator's public key (64 hex digits), pinned so this store trusts only that coordinator's roster. Later: `tierline roster pin`.")
    var coordinatorKey: PublicKeyArgument?

    func validate() throws {
        if role == .coordinator && coordinatorKey != nil {
            throw ValidationError("a coordinator pins its own key; --coordinator-key is for sites and laptops")
        }
    }

    struct Output: Encodable {
        var site: String
        var role: String
        var publicKey: String
        var store: String
        var coordinatorKey: String?
    }

    func run() throws {
        let database = try options.directory.create(site: site, role: role)
        if let coordinatorKey { try database.pinCoordinator(key: coordinatorKey.bytes) }
        let me = try database.identity()
        let output = Output(site: me.site.rawValue, role: me.role.rawValue, publicKey: me.publicKey.hexString, store: options.directory.path,
                            coordinatorKey: try database.pinnedCoordinatorKey()?.hexString)
        if options.json { return try printJSON(output) }
        print("initialized \(output.store) as site \(output.site) (\(output.role))")
        print("public key \(output.publicKey)")
        print("private key \(options.directory.keyPath) (mode 0600)")
        if me.role == .coordinator {
            print("founded the roster (version 1); add each site with `tierline roster add SITE --key KEY --role site|laptop`, and give sites this public key to pin")
        } else if let pinned = output.coordinatorKey {
            print("pinned coordinator key \(pinned); ask the coordinator's operator to run `tierline roster add \(me.site) --key \(me.publicKey.hexString) --role \(me.role.rawValue)`")
        } else {
            print("next: pin the coordinator's key (`tierline roster pin KEY`) and have it add this site to its roster; until then this store syncs with nobody")
        }
    }
}
