import Dashboard
import Foundation
import GRDB
import Synchronization
import Testing
import TicketModel
import TicketStore

/// The per-day sums (`metricDay`) are moved in memory for a whole batch of tickets and written once:
/// whatever the batch size and however often tickets are derived again, they equal a count taken
/// afresh from the facts rows.
@Suite struct DaySumTests {
    static let start: Int64 = 1_790_000_000_000
    static let day: Int64 = 86_400_000

    /// The sums as a recount from `metricTicket` gives them: (day, site) → (created, solved, firstSolved).
    func recount(_ store: TicketDatabase) async throws -> [String: [Int]] {
        try await store.writer.read { db in
            var out: [String: [Int]] = [:]
            for (column, index) in [("createdAt", 0), ("lastSolvedAt", 1), ("firstSolvedAt", 2)] {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT CAST(\(column) / \(Self.day) AS INTEGER) AS d, site, COUNT(*) AS n FROM metricTicket
                    WHERE \(column) IS NOT NULL GROUP BY d, site
                    """)
                for row in rows { out["\(row["d"] as Int64) \(row["site"] as String)", default: [0, 0, 0]][index] = row["n"] }
            }
            return out
        }
    }

    func sums(_ store: TicketDatabase) async throws -> [String: [Int]] {
        try await store.writer.read { db in
            var out: [String: [Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT day, site, created, solved, firstSolved FROM metricDay") {
                let counts: [Int] = [row["created"] ?? 0, row["solved"] ?? 0, row["firstSolved"] ?? 0]
                if counts != [0, 0, 0] { out["\(row["day"] as Int64) \(row["site"] as String)"] = counts }
            }
            return out
        }
    }

    @Test(arguments: [1, 7, 200]) func batchedSumsEqualARecountAfterEveryRound(batch: Int) async throws {
        let now = Mutex<Int64>(Self.start)
        let store = try TicketDatabase(DatabaseQueue(), key: .generate(), wallClock: { UInt64(now.withLock { $0 }) })
        try store.initialize(site: try SiteID("north"), role: .site)
        let index = try await MetricIndex(store)
        var ids: [String] = []
        for n in 0..<24 {
            // Tickets over four days, several a day.
            now.withLock { $0 = Self.start + Int64(n / 6) * Self.day + Int64(n) * 60_000 }
            ids.append(try store.createTicket(TicketDraft(subject: "ticket \(n)")).id)
        }
        let later = Self.start + 5 * Self.day
        #expect(try await index.refresh(now: later, batch: batch).derived == 24)
        #expect(try await sums(store) == recount(store))

        // Solve a third on day 5, then reopen some of them and solve them again on day 6: tickets leave
        // the day they were solved on and join another one, within one batch and across batches.
        now.withLock { $0 = later }
        for id in ids where Int(id.suffix(1), radix: 16)! % 3 == 0 { _ = try store.update(id, [(.status, .text("solved"))]) }
        #expect(try await index.refresh(now: later, batch: batch).failed.isEmpty)
        #expect(try await sums(store) == recount(store))
        now.withLock { $0 = later + Self.day }
        for id in ids where Int(id.suffix(1), radix: 16)! % 6 == 0 {
            _ = try store.update(id, [(.status, .text("open"))])
            _ = try store.update(id, [(.status, .text("solved"))])
        }
        #expect(try await index.refresh(now: later + Self.day, batch: batch).failed.isEmpty)
        let final = try await sums(store)
        #expect(final == (try await recount(store)))
        #expect(final.values.reduce(0) { $0 + $1[1] } > 0, "some tickets are solved")
    }
}
