import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension KBCommand {
    struct List: StoreListing {
        static let configuration = CommandConfiguration(abstract: "Every article, newest first.")
        static let columns = ["ARTICLE", "CREATED", "SITE", "FROM", "USES", "TITLE"]
        static let maxWidth = 80
        @OptionGroup var options: StoreOptions

        func items(in store: TicketDatabase) throws -> [ArticleRecord] { try store.articles() }

        func row(_ a: ArticleRecord) -> [String] {
            [a.ref, a.createdAt ?? "—", a.site ?? "—", a.sourceTicket ?? "—", String(a.uses), a.title]
        }
    }
}
