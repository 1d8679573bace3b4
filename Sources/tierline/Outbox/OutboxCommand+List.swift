import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension DeliveryState: ExpressibleByArgument {}

extension OutboxCommand {
    struct List: StoreListing {
        static let configuration = CommandConfiguration(
            abstract: "Deliveries, newest first: kind, channel, recipient, state, attempts, next attempt, last error.")
        static let columns = ["ID", "KIND", "CHANNEL", "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"]
        static let maxWidth = 40
        @OptionGroup var options: StoreOptions
        @Option(help: "Only deliveries in this state: pending, sent or dead.") var state: DeliveryState?
        @Option(help: "At most this many rows (1…100000).") var limit = 100

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        /// One delivery as `outbox list` shows it; the text of the notice stays in the store.
        struct Item: Encodable {
            var id: Int64
            var key: String
            var kind: String
            var channel: String
            var recipient: String
            var state: DeliveryState
            var attempts: Int
            var nextAttempt: Date
            @NullEncoded var lastError: String?
            @NullEncoded var ticket: String?
            var createdAt: Date
            @NullEncoded var sentAt: Date?
        }

        func items(in store: TicketDatabase) throws -> [Item] {
            func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
            return try store.outbox(state: state, limit: limit).map { e in
                Item(id: e.id ?? 0, key: e.key, kind: e.kind, channel: e.channel, recipient: e.recipient, state: e.state, attempts: e.attempts,
                     nextAttempt: date(e.nextAttempt), lastError: e.lastError, ticket: e.ticket, createdAt: date(e.createdAt), sentAt: e.sentAt.map(date))
            }
        }

        func row(_ item: Item) -> [String] {
            let next = item.state == .pending ? ISO8601DateFormatter().string(from: item.nextAttempt) : "—"
            return ["\(item.id)", item.kind, item.channel, item.recipient, item.state.rawValue, "\(item.attempts)", next, item.lastError ?? "—"]
        }
    }
}
