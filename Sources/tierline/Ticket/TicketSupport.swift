import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

/// Who the write is recorded as.
struct ActorOption: ParsableArguments {
    @Option(help: "Who is writing (default: $USER).")
    var actor: String = ProcessInfo.processInfo.environment["USER"] ?? "agent"
}

func report(_ record: TicketRecord, _ options: StoreOptions, _ verb: String) throws {
    if options.json { return try printJSON(record) }
    print("\(verb) \(record.displayNumber)  \(record.id)")
}
