import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension CustomerCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Customers this replica holds.")
        @OptionGroup var options: StoreOptions
        func run() throws {
            let customers = try options.open().customers()
            if options.json { return try printJSON(customers) }
            printTable(["KEY", "NAME", "ORGANIZATION", "TIER", "VALUE", "EMAIL", "PHONE"], customers.map {
                [$0.key, $0.name ?? "—", $0.organization ?? "—", $0.tier ?? "—", $0.value ?? "—", $0.email ?? "—", $0.phone ?? "—"]
            })
        }
    }
}
