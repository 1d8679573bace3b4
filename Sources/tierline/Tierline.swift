import ArgumentParser
import Desk
import SyncNode
import Foundation
import TicketModel
import TicketStore

@main
struct Tierline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tierline",
        abstract: "Multi-site help desk: tickets in SQLite, merged without loss across sites.",
        version: TierlineVersion.current,
        subcommands: [Init.self, TicketCommand.self, Transfer.self, Escalate.self, Handoff.self, Ack.self, SLACommand.self,
                      ConfigCommand.self, EscalationCommand.self, Export.self, Import.self, Recover.self, VectorCommand.self, Digest.self,
                      RoutingCommand.self, Serve.self, SyncCommand.self, StatusCommand.self, RosterCommand.self, QuarantineCommand.self,
                      Backup.self, Restore.self, DashboardCommand.self, CustomerCommand.self, KBCommand.self, AgentCommand.self, IntakeCommand.self,
                      OutboxCommand.self, NotifyCommand.self, MirrorCommand.self, Demo.self])

    /// Exit codes: 0 ok, 1 failure, 2 usage. ArgumentParser's own usage code (64) becomes 2.
    static func main() async {
        var command: any ParsableCommand
        do { command = try parseAsRoot() } catch { report(error) }
        do {
            if var async = command as? any AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch let error as ValidationError {
            // Thrown by a command's run, after its flags parsed: a setting or a file's content is
            // wrong, which the root's usage line would not help with.
            fail(error.message, code: 2)
        } catch {
            report(error)
        }
    }

    /// Prints `error` as the CLI says it and exits with its code.
    static func report(_ error: any Error) -> Never {
        do { throw error } catch let error as DeskError {
            fail(render(error), code: error.code == .invalidInput ? 2 : 1)
        } catch let error as StoreError {
            fail(error.description, code: error.code == .invalidInput ? 2 : 1)
        } catch let error as CLIFailure {
            fail(error.message, code: error.code)
        } catch {
            switch exitCode(for: error) {
            case .success: exit(withError: error)  // --help and other clean exits
            case .validationFailure: fail(fullMessage(for: error), code: 2)
            default: fail(fullMessage(for: error).isEmpty ? "\(error)" : fullMessage(for: error), code: 1)
            }
        }
    }

    /// A refusal of the Desk layer as the CLI says it: a field by its flag (`verifiedFacts` is
    /// `--verified-facts`), then every problem of a configuration file on its own line.
    static func render(_ error: DeskError) -> String {
        let flag = error.field.map { name in
            "--" + name.reduce(into: "") { out, c in out += c.isUppercase ? "-" + c.lowercased() : String(c) } + " "
        }
        return (flag ?? "") + error.message + error.problems.map { "\n  " + $0 }.joined()
    }

    /// Prints `message` to stderr and exits. Control characters are shown escaped: a message may
    /// quote a flag's value, or a record a peer wrote, and must not move the cursor or recolour the
    /// terminal.
    static func fail(_ message: String, code: Int32) -> Never {
        let message = TerminalText.visible(message, keepingLineBreaks: true)
        let text = message.hasPrefix("Error: ") ? "error: " + message.dropFirst(7) : "error: " + message
        FileHandle.standardError.write(Data((text + "\n").utf8))
        Foundation.exit(code)
    }
}

/// A failure the CLI reports: exit code 1, or 2 for input that a retry cannot fix (a file named by
/// a flag or a setting that has problems), without the usage text a flag error gets.
struct CLIFailure: Error {
    var message: String
    var code: Int32 = 1
}

/// The bytes of the file at `path`, for a command that reads a file named by an argument.
///
/// - Parameter hint: what follows `cannot read PATH` in the failure, saying what to check.
/// - Throws: ``CLIFailure`` (exit 1) when the file is missing or not readable.
func contents(of path: String, hint: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIFailure(message: "cannot read \(path)\(hint)")
    }
    return data
}

/// Flags every command takes.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store folder (else $TIERLINE_STORE, else ~/.tierline).")
    var store: String?

    @Flag(name: .long, help: "Print one JSON document instead of a table.")
    var json = false

    var directory: StoreDirectory { StoreDirectory.resolve(store) }

    /// The store, with the Desk's notice planner: whatever this command writes or imports puts its
    /// notices in the outbox in the same transaction.
    func open() throws -> TicketDatabase {
        var store = try directory.open()
        store.notices = Notices.planner
        return store
    }
}

extension Priority: ExpressibleByArgument {}
extension Status: ExpressibleByArgument {}
extension SiteRole: ExpressibleByArgument {}

extension SiteID: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(argument) }
}
