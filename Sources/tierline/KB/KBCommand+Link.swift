import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct Link: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record that an article was used on a ticket (first line resolved with it).")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The ticket's id or display number.") var ticket: String
        @Argument(help: "The article (KB-1a2b3c4d).") var article: String

        func run() throws {
            let store = try options.open()
            let (record, linked) = try HelpDesk(store: store).link(ticket, article: article, actor: try actor.name(in: store))
            if options.json { return try printJSON(["ticket": record.displayNumber, "article": linked.ref]) }
            print("linked \(record.displayNumber) to \(linked.ref) (used on \(linked.uses) ticket(s))")
        }
    }
}
