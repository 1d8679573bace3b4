import Escalation
import Foundation
import TicketModel
import TicketStore

/// What `ticket import` did.
public struct TicketImportReport: Sendable, Equatable, Encodable {
    /// Rows read from the file (each opened one ticket).
    public var rows = 0
    public var created = 0
    /// Signed blocks written, and the transactions they were written in.
    public var blocks = 0
    public var transactions = 0
    /// The display numbers of the first and the last ticket opened.
    public var firstNumber: String?
    public var lastNumber: String?
    /// Tickets opened by priority.
    public var byPriority: [String: Int] = [:]
    public init() {}
}

extension HelpDesk {
    /// Opens a ticket for each row of a CSV or JSON-lines file (``TicketSheet``), in transactions of
    /// `batchSize` tickets, each with its SLA policy pinned as ``open(_:now:allowUnknown:)`` pins it.
    ///
    /// Every row is checked first, as `open` checks a draft (texts and their limits, a known channel
    /// and customer tier, assignee and group in the agent directory once one is published, unless
    /// `allowUnknown`): one bad row refuses the whole file, naming its line and column, and nothing is
    /// written. Imported tickets are written as local writes, in batches (``TicketDatabase/batch(_:)``);
    /// they put no notices in the outbox (an assignee is not told of each imported ticket). A crash
    /// between two transactions keeps the tickets of those before it.
    /// - Parameter progress: tickets opened so far and the file's total, after each transaction.
    public func importTickets(_ data: Data, format: TicketSheet.Format, file: String, actor: String, now: Int64,
                              allowUnknown: Bool = false, batchSize: Int = 1_000,
                              progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> TicketImportReport {
        try DeskError.translating {
            let rows = try TicketSheet.parse(data, format: format, file: file)
            let library = try escalation.library()
            let directory = DirectoryCheck(AgentDirectory(library: library))
            // Rows naming the same channel, tier, assignee and group pass or fail alike: checked once.
            var passed = Set<[String?]>()
            for row in rows {
                var draft = row.draft
                draft.actor = actor
                let key = [draft.channel, draft.customerTier, draft.assignee, draft.group]
                do {
                    try store.check(draft)
                    if passed.insert(key).inserted { try checkOpening(draft, library: library, directory: directory, allowUnknown: allowUnknown) }
                } catch let error as DeskError {
                    // The file is the input at fault; the row's place names the field.
                    throw DeskError(error.code, "\(file) \(row.place(error.field)): \(error.message) Nothing was imported.")
                } catch let error as StoreError {
                    throw DeskError(.invalidInput, "\(file) \(row.place(nil)): \(error.detail); nothing was imported")
                }
            }
            let follow = library.isEmpty ? nil : escalation.policy(library, now: now)
            var report = TicketImportReport()
            var first: UUID?, last: UUID?
            var start = 0
            let size = max(1, batchSize)
            while start < rows.count {
                let part = rows[start..<min(start + size, rows.count)]
                let summary = try store.batch { batch in
                    for row in part {
                        var draft = row.draft
                        draft.actor = actor
                        let id = try batch.create(draft, attributed: true)
                        if let follow { batch.follow(id, with: follow) }
                        if first == nil { first = id }
                        last = id
                    }
                }
                for row in part { report.byPriority[row.draft.priority.rawValue, default: 0] += 1 }
                report.rows += part.count
                report.created += part.count
                report.blocks += summary.blocks
                report.transactions += 1
                start += part.count
                progress(start, rows.count)
            }
            report.firstNumber = try first.map { try store.ticket($0.uuidString.lowercased()).displayNumber }
            report.lastNumber = try last.map { try store.ticket($0.uuidString.lowercased()).displayNumber }
            return report
        }
    }
}
