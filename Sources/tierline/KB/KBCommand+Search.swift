import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find articles: the exact phrase first, then all words, then any word.",
            discussion: "Words match in any form (printer, printers, printing). RELEVANCE is 100% for the best hit and the others' share of its bm25 score; --json has both (relevance, score).")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The words to look for.") var text: [String]
        @Option(help: "At most this many results (1–100).") var limit = 10

        func validate() throws {
            guard (1...100).contains(limit) else { throw ValidationError("--limit must be 1 to 100, got \(limit)") }
        }

        func run() throws {
            let hits = try options.open().searchArticles(text.joined(separator: " "), limit: limit)
            if options.json { return try printJSON(hits) }
            if hits.isEmpty { return print("no article matches; `tierline kb list` shows them all") }
            printTable(["ARTICLE", "MATCH", "RELEVANCE", "SITE", "FROM", "TITLE"], hits.map {
                [$0.article.ref, $0.match, "\($0.relevance)%", $0.article.site ?? "—", $0.article.sourceTicket ?? "—", $0.article.title]
            }, maxWidth: 80)
        }
    }
}
