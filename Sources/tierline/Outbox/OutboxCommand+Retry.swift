import ArgumentParser
import Foundation
import TicketStore

extension OutboxCommand {
    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead deliveries back in the queue, due now, with their attempts counted from zero.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "Ids of dead deliveries (`tierline outbox list --state dead`).") var ids: [Int64] = []
        @Flag(help: "Every dead delivery.") var allDead = false

        func validate() throws {
            guard ids.isEmpty != !allDead else { throw ValidationError("give the ids of dead deliveries, or --all-dead") }
        }

        func run() throws {
            let count = try options.open().retryDeliveries(ids: allDead ? nil : ids)
            if options.json {
                struct Output: Encodable { var retried: Int }
                return try printJSON(Output(retried: count))
            }
            print("\(count) \(count == 1 ? "delivery" : "deliveries") back in the queue; `tierline serve` (or `tierline outbox send`) sends them")
        }
    }
}
