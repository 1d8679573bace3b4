import ArgumentParser
import Foundation
import TicketStore

extension OutboxCommand {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete sent deliveries (their bodies hold customer text) older than N days; with --dead, dead ones too.",
            discussion: "serve deletes sent deliveries older than notifications.keepSentDays (default 30) by itself, once a minute; this does it by hand. Pending deliveries are never deleted; dead ones only with --dead (by the day they were written).")
        @OptionGroup var options: StoreOptions
        @Option(help: "Delete what is older than this many days (0…3650).") var olderThanDays = 30
        @Flag(help: "Delete dead deliveries older than that too (they are kept for `tierline outbox retry` otherwise).") var dead = false

        func validate() throws {
            guard (0...3650).contains(olderThanDays) else { throw ValidationError("--older-than-days must be between 0 and 3650") }
        }

        func run() throws {
            let store = try options.open()
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let before = now - min(now, UInt64(olderThanDays) * 86_400_000)
            var deleted = 0
            while true {
                let batch = try store.pruneDeliveries(before: before, includingDead: dead, limit: 500)
                deleted += batch
                if batch < 500 { break }
            }
            if options.json {
                struct Output: Encodable { var deleted: Int; var olderThanDays: Int; var dead: Bool }
                return try printJSON(Output(deleted: deleted, olderThanDays: olderThanDays, dead: dead))
            }
            print("\(deleted) \(deleted == 1 ? "delivery" : "deliveries") older than \(olderThanDays) days deleted (sent\(dead ? " and dead" : ""); pending ones are kept)")
        }
    }
}
