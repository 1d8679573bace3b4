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
        @Option(help: "List at most N customers, by key (default 10000).") var limit: Int = 10_000

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        /// Reads one past the limit, so a list cut short says so (on stderr) instead of looking whole.
        func items(in store: TicketDatabase) throws -> [CustomerRecord] {
            let records = try store.customers(limit: limit == .max ? limit : limit + 1)
            guard records.count > limit else { return records }
            FileHandle.standardError.write(Data("note: listed the first \(limit) customers by key; there are more (pass --limit N)\n".utf8))
            return Array(records.prefix(limit))
        }

        func row(_ c: CustomerRecord) -> [String] {
            [c.key, c.name ?? "—", c.organization ?? "—", c.tier ?? "—", c.value ?? "—", c.email ?? "—", c.phone ?? "—", c.mergedInto ?? "—"]
        }
    }
}
