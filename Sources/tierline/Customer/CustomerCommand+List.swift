import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension CustomerCommand {
    struct List: StoreListing {
        static let configuration = CommandConfiguration(abstract: "Customers this replica holds.")
        static let columns = ["KEY", "NAME", "ORGANIZATION", "TIER", "VALUE", "EMAIL", "PHONE", "MERGED INTO"]
        @OptionGroup var options: StoreOptions

        func items(in store: TicketDatabase) throws -> [CustomerRecord] { try store.customers() }

        func row(_ c: CustomerRecord) -> [String] {
            [c.key, c.name ?? "—", c.organization ?? "—", c.tier ?? "—", c.value ?? "—", c.email ?? "—", c.phone ?? "—", c.mergedInto ?? "—"]
        }
    }
}
