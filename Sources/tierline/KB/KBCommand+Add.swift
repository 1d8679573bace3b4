import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a solved ticket's resolution as a knowledge article.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The solved ticket's id or display number.") var ticket: String
        @Option(help: "A title first line will search for.") var title: String
        @Option(help: "What the problem was and how it was solved, in a few lines.") var summary: String
        @Option(help: "Why it happened.") var rootCause: String
        @Option(help: "The steps that solve it.") var steps: String

        func run() throws {
            let store = try options.open()
            let article = try HelpDesk(store: store).writeArticle(from: ticket, ArticleDraft(title: title, summary: summary, rootCause: rootCause,
                                                                                      steps: steps, author: try actor.name(in: store)))
            if options.json { return try printJSON(article) }
            print("recorded \(article.ref)  \(article.title)")
        }
    }
}
