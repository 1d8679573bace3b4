import ArgumentParser
import Foundation
import TicketModel
import TicketStore

struct Digest: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the state digest: equal on two stores exactly when they hold the same tickets.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        let digest = try options.open().digest()
        if options.json { return try printJSON(["digest": digest]) }
        print(digest)
    }
}
