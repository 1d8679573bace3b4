import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One article in full.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The article (KB-1a2b3c4d).") var article: String
        func run() throws {
            let a = try options.open().article(article)
            if options.json { return try printJSON(a) }
            print("\(a.ref)  \(a.title)\nfrom \(a.sourceTicket ?? "—") by \(a.author ?? "—") at \(a.site ?? "—"), \(a.createdAt ?? "—"); used on \(a.uses) ticket(s)\n")
            print("Summary\n  \(a.summary)\n\nRoot cause\n  \(a.rootCause)\n\nSteps\n  \(a.steps)")
        }
    }
}
