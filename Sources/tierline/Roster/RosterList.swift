import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the roster this store holds.")
    @OptionGroup var options: StoreOptions

    struct Output: Encodable {
        var version: UInt64
        @NullEncoded var coordinator: String?
        @NullEncoded var pinnedKey: String?
        @NullEncoded var issued: Date?
        var sites: [Roster.Member]
        var released: [Roster.Release]

    }

    func run() throws {
        let store = try options.open()
        let signed = try store.roster()
        let pinned = try store.pinnedCoordinatorKey()
        let roster = signed?.roster
        let output = Output(version: roster?.version ?? 0, coordinator: roster?.coordinator, pinnedKey: pinned?.hexString,
                            issued: roster.map { Date(timeIntervalSince1970: Double($0.issued) / 1000) },
                            sites: roster?.sites ?? [], released: roster?.released ?? [])
        if options.json { return try printJSON(output) }
        guard let roster else {
            print(pinned == nil
                  ? "no coordinator key pinned and no roster: this store syncs with nobody. Run `tierline roster pin KEY` with the coordinator's public key"
                  : "coordinator key \(pinned!.hexString) pinned; no roster yet: the first sync with the coordinator (or a site that has it) brings it")
            return
        }
        print("roster version \(roster.version), signed by coordinator \(roster.coordinator) \(ageText(Date().timeIntervalSince(output.issued!)))")
        printTable(["SITE", "ROLE", "KEY", "STATUS"], roster.sites.map { m in
            [m.site, m.role.rawValue, m.key, m.revokedAfter.map { "removed (blocks after \($0) refused)" } ?? "active"]
        }, maxWidth: 64)
        if !roster.released.isEmpty {
            print("\nreleased from the clock-drift quarantine:")
            printTable(["SITE", "SEQ", "HASH"], roster.released.map { [$0.site, "\($0.seq)", $0.hash] })
        }
    }
}
