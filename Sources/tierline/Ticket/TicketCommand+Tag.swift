import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension TicketCommand {
    struct Tag: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add and remove tags.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var id: String
        @Option(help: "A tag to add (repeat for more).") var add: [String] = []
        @Option(help: "A tag to remove (repeat for more).") var remove: [String] = []

        func validate() throws {
            if add.isEmpty && remove.isEmpty { throw ValidationError("pass --add TAG or --remove TAG") }
        }

        func run() throws {
            let store = try options.open()
            let record = try HelpDesk(store: store).tag(id, add: add, remove: remove, actor: try actor.name(in: store))
            if options.json { return try printJSON(record) }
            print("tagged \(record.displayNumber): \(record.tags.isEmpty ? "no tags" : record.tags.joined(separator: ", "))")
        }
    }
}
