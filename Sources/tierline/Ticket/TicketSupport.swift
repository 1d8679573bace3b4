import Desk
import ArgumentParser
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

/// Who the write is recorded as: `--actor`, else `$TIERLINE_ACTOR`, else the store's own setting
/// (`tierline agent use NAME`), else `$USER`.
struct ActorOption: ParsableArguments {
    @Option(name: .customLong("actor"), help: "Who is writing (default: $TIERLINE_ACTOR, else the store's `tierline agent use`, else $USER).")
    var given: String?

    /// The actor for a write to `store`.
    /// - Parameter agent: whether the write is an agent's work on tickets, so that once agents are
    ///   published it must name an active one (publishing configuration and agents is an
    ///   administrator's, who need not be an agent).
    func name(in store: TicketDatabase, agent: Bool = true) throws -> String {
        let name = try unchecked(in: store)
        if agent { try AgentDesk(store: store).checkActor(name) }
        return name
    }

    private func unchecked(in store: TicketDatabase) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let given, !given.isEmpty { return given }
        if let name = environment["TIERLINE_ACTOR"], !name.isEmpty { return name }
        if let name = try store.localSetting(.actor) { return name }
        return environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "agent"
    }
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
        let store = try target.options.open()
        let desk = try HelpDesk(store: store)
        try write(desk, target.id, actor: try target.actor.name(in: store), now: nowMillis())
        try report(try desk.store.ticket(target.id), target.options, Self.done)
    }
}
