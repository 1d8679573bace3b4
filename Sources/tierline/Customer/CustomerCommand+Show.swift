import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension CustomerCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One customer, by id, email or phone.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The customer's CRM id, email or phone.") var customer: String
        func run() throws {
            guard let record = try options.open().customer(customer) else {
                throw CLIFailure(message: "no customer \(customer.debugDescription) in this store; `tierline customer list` shows them")
            }
            if options.json { return try printJSON(record) }
            for (key, value) in [("key", record.key), ("name", record.name), ("email", record.email), ("phone", record.phone),
                                 ("organization", record.organization), ("tier", record.tier), ("value", record.value)] {
                print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + "  " + (value ?? "—"))
            }
        }
    }
}
