import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

extension ConfigCommand {
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and publish its new versions (coordinator only); they replicate to every site.",
            discussion: "Nothing of an invalid file is published. Each problem is reported with the file, the key and what is wrong. See Deploy/escalation.json.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The JSON file.") var file: String
        @Flag(help: "Take ladder targets that name nobody in the agent directory (once agents are published).") var allowUnknown = false

        struct Published: Encodable {
            var kind: String
            var name: String
            var version: Int
        }

        func run() throws {
            let data = try contents(of: file, hint: ": no such file or not readable")
            let store = try options.open()
            let desk = try EscalationDesk(store: store)
            let documents = try desk.publish(data, file: file, actor: try actor.name(in: store, agent: false), allowUnknownTargets: allowUnknown)
            // A ladder's handoff to a site the roster lacks would stay pending; a site may join later.
            if let roster = try store.roster()?.roster {
                let unlisted = ConfigDocument.unlistedSites(in: documents, roster: Set(roster.activeMembers.map(\.site)))
                if !unlisted.isEmpty {
                    FileHandle.standardError.write(Data(TerminalText.visible(
                        "warning: \(file) names sites the roster does not list; a handoff to one stays pending until withdrawn. "
                        + "Add the site (`tierline roster add`) before a ticket escalates there, or fix the file:\n"
                        + unlisted.map { "  " + $0 }.joined(separator: "\n") + "\n", keepingLineBreaks: true).utf8))
                }
            }
            let rows = documents.map { Published(kind: $0.kind.rawValue, name: $0.name, version: $0.version) }
            if options.json { return try printJSON(rows) }
            if rows.isEmpty { return print("nothing new: every version in \(file) is already published") }
            print("published \(rows.count) document version(s) from \(file):")
            printTable(["KIND", "NAME", "VERSION"], rows.map { [$0.kind, $0.name, String($0.version)] })
        }
    }
}
