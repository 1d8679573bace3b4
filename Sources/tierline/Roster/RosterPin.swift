import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

struct RosterPin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Pin the coordinator's public key on a site or laptop store (once; `init --coordinator-key` does it at setup).")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The coordinator's public key: 64 hex digits, from `tierline init` or `tierline roster list` there.") var key: PublicKeyArgument

    func run() throws {
        let store = try options.open()
        try store.pinCoordinator(key: key.bytes)
        if options.json { return try printJSON(["pinnedKey": key.bytes.hexString]) }
        print("pinned coordinator key \(key.bytes.hexString); this store now syncs only with sites in that coordinator's roster")
    }
}
