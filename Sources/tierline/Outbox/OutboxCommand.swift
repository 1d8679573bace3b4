import ArgumentParser
import Foundation
import Logging
import Notify
import SyncNode
import TicketStore

/// `tierline outbox`: the deliveries (e-mails, webhooks) this node sends.
struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "The notices and replies this node sends: list them, retry dead ones, send in the foreground, prune old ones.",
        discussion: "`tierline serve` sends the outbox by itself; `outbox send` does the same in the foreground, for cron or a check.",
        subcommands: [List.self, Retry.self, Send.self, Prune.self])
}

/// The node's settings and notification secrets, as serve reads them, for the commands that send or
/// enqueue notices. Bad settings or an unreadable secret file exit 2.
struct NotificationSetup {
    var node: NodeConfiguration
    var secrets: NotificationSecrets

    init(config: String?) throws {
        do {
            node = try config.map(NodeConfiguration.load(path:)) ?? NodeConfiguration()
            secrets = try node.notifications.loadSecrets()
        } catch let error as ConfigurationError {
            throw CLIFailure(message: error.message, code: 2)
        } catch let error as NotifyError {
            throw CLIFailure(message: (config.map { "\($0): " } ?? "") + error.detail, code: 2)
        }
    }

    /// The store: `--store`, else the settings' `store`, else the default.
    func open(_ options: StoreOptions) throws -> TicketDatabase {
        try StoreDirectory.resolve(options.store ?? node.store).open()
    }
}

/// A logger for a foreground command: stderr, warnings and worse unless `--verbose`.
func commandLogger(_ label: String, verbose: Bool) -> Logger {
    Logger(label: label) { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = verbose ? .debug : .warning
        return handler
    }
}
