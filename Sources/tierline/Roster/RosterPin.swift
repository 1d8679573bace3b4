import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterPin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Pin the coordinator's public key on a site or laptop store (`init --coordinator-key` does it at setup).",
        discussion: "A store that has adopted no roster yet may be pinned again (a wrong key replaced); once it holds a roster, its coordinator key never changes. A key this store knows as a site's (its own, or a site's in its roster) is refused.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The coordinator's public key: 64 hex digits, from `tierline init` or `tierline roster list` there.") var key: PublicKeyArgument

    func run() throws {
        let store = try options.open()
        let previous = try store.pinnedCoordinatorKey()
        try store.pinCoordinator(key: key.bytes)
        if options.json { return try printJSON(["pinnedKey": key.bytes.hexString]) }
        let replaced = previous.flatMap { $0 == key.bytes ? nil : " (replacing \($0.hexString.prefix(16))…, which never judged a roster)" } ?? ""
        print("pinned coordinator key \(key.bytes.hexString)\(replaced); this store now syncs only with sites in that coordinator's roster")
    }
}
