import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every article, newest first.")
        @OptionGroup var options: StoreOptions
        func run() throws {
            let articles = try options.open().articles()
            if options.json { return try printJSON(articles) }
            printTable(["ARTICLE", "CREATED", "SITE", "FROM", "USES", "TITLE"], articles.map {
                [$0.ref, $0.createdAt ?? "—", $0.site ?? "—", $0.sourceTicket ?? "—", String($0.uses), $0.title]
            }, maxWidth: 80)
        }
    }
}
