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

/// What every write to one ticket takes: the store, who writes, and the ticket.
struct TicketTarget: ParsableArguments {
    @OptionGroup var options: StoreOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The ticket's id or display number (e.g. NORTH-12).") var id: String
}

/// A command that makes one write to one ticket through the help desk, then shows the ticket: the
/// opening, the clock and the report are the same for all of them.
protocol TicketWrite: ParsableCommand {
    var target: TicketTarget { get }
    /// What it did, in the past tense, for the table output ("accepted").
    static var done: String { get }
    func write(_ desk: HelpDesk, _ ticket: String, actor: String, now: Int64) throws
}

extension TicketWrite {
    func run() throws {
        let desk = try HelpDesk(store: target.options.open())
        try write(desk, target.id, actor: target.actor.actor, now: nowMillis())
        try report(try desk.store.ticket(target.id), target.options, Self.done)
    }
}
