import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct VectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vector", abstract: "Print this store's version vector as JSON.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        try printJSON(try options.open().vector())
    }
}
