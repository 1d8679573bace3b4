import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

/// `tierline customer`: customer records from a CRM, replicated like tickets.
struct CustomerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer", abstract: "Customer records (name, contacts, organization, tier, value), replicated to every site.",
        subcommands: [Import.self, List.self, Show.self])

}
