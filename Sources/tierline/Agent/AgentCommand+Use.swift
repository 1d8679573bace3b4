import ArgumentParser
import Desk
import Escalation
import Foundation
import TicketStore

extension AgentCommand {
    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the agent this store's writes are recorded as when no --actor or $TIERLINE_ACTOR is given (this store only, never replicated).")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The agent's id.") var name: String?
        @Flag(help: "Forget the setting: writes fall back to $USER.") var clear = false
        @Flag(help: "Take a name from outside the agent directory (on purpose).") var allowUnknown = false

        func validate() throws {
            if clear == (name != nil) { throw ValidationError("give an agent's id, or --clear") }
        }

        func run() throws {
            let desk = try AgentDesk(store: options.open())
            try desk.use(clear ? nil : name, allowUnknown: allowUnknown)
            if options.json { return try printJSON(["actor": try desk.localActor()]) }
            print(clear ? "writes of this store are recorded as --actor, $TIERLINE_ACTOR or $USER" : "writes of this store are recorded as \(name ?? "") unless --actor or $TIERLINE_ACTOR says otherwise")
        }
    }
}
