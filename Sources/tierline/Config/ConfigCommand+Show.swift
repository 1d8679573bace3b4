import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension ConfigCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest version of every published document.")
        @OptionGroup var options: StoreOptions

        func run() throws {
            let library = try EscalationDesk(store: options.open()).library()
            let docs = library.current
            if options.json {
                return try printJSON(docs.map { Publish.Published(kind: $0.kind.rawValue, name: $0.name, version: $0.version) })
            }
            if docs.isEmpty { return print("no configuration published yet") }
            printTable(["KIND", "NAME", "VERSION"], docs.map { [$0.kind.rawValue, $0.name, String($0.version)] })
        }
    }
}
