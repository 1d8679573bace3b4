@testable import Dashboard
import Foundation
import GRDB
import Testing
import TicketModel
import TicketStore

/// The facts' prepared inserts (``TicketMetricRow/insertWithClocksAndHandoffs(_:)``) write exactly
/// what GRDB's Codable `insert` writes: every column, its storage class, and NULL for absent values.
@Suite struct FactRowWriteTests {
    /// A row with every optional member set (`full`) or none of them.
    static func row(_ id: String, full: Bool) -> TicketMetricRow {
        func some<T>(_ value: T) -> T? { full ? value : nil }
        var row = TicketMetricRow(
            id: id, site: "north", origin: "south", tier: 2, channel: "email", priority: "high", customerTier: "gold",
            group: "it \"ops\"", category: "hardware", status: "solved", isOpen: !full, createdAt: 1_700_000_000_001,
            firstSolvedAt: some(1_700_000_000_002), lastSolvedAt: some(1_700_000_000_003), reopens: 3, reopenedWithin30d: full,
            publicReplies: 4, firstResponseAt: some(1_700_000_000_004), frtCalendar: some(5), frtBusiness: some(6),
            ttoCalendar: some(7), ttoBusiness: some(8), resolutionCalendar: some(9), resolutionBusiness: some(10),
            escalatedAt: some(1_700_000_000_011), escalationTrigger: some("sla_breach"), transferred: full, crossSite: !full,
            maxLevel: 5, exhausted: 6, backstopFirings: 7, csatScore: some(4), csatAt: some(1_700_000_000_012))
        row.clocks = [
            ClockRow(ticket: id, site: "north", kind: "first_response", cycle: 1, start: 100, target: some(200), deadline: some(300),
                     warnAt: some(250), stop: some(280), calendarMillis: some(180), businessMillis: some(90)),
            ClockRow(ticket: id, site: "north", kind: "resolution", cycle: 2, start: 400),
        ]
        row.handoffs = [HandoffRow(id: id + "-h", ticket: id, requestedAt: 500, toSite: "east", answeredAt: some(600), accepted: some(full), timedOut: !full)]
        return row
    }

    func dump(_ db: Database) throws -> [[String: DatabaseValue]] {
        var out: [[String: DatabaseValue]] = []
        for table in ["metricTicket", "metricClock", "metricHandoff"] {
            for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY rowid") {
                out.append(Dictionary(uniqueKeysWithValues: row.columnNames.map { ($0, row[$0] as DatabaseValue) }))
            }
        }
        return out
    }

    @Test func preparedInsertsWriteWhatCodableInsertsWrite() async throws {
        var dumps: [[[String: DatabaseValue]]] = []
        for prepared in [true, false] {
            let store = try TicketDatabase(DatabaseQueue(), key: .generate())
            try store.initialize(site: try SiteID("north"), role: .site)
            _ = try await MetricIndex(store)
            let rows = [Self.row("a", full: true), Self.row("b", full: false)]
            try await store.writer.write { db in
                for row in rows {
                    if prepared {
                        try row.insertWithClocksAndHandoffs(db)
                    } else {
                        try row.insert(db)
                        for clock in row.clocks { try clock.insert(db) }
                        for handoff in row.handoffs { try handoff.insert(db) }
                    }
                }
            }
            let written: [[String: DatabaseValue]] = try await store.writer.read { db in try self.dump(db) }
            let read: [TicketMetricRow] = try await store.writer.read { db in
                try TicketMetricRow.fetchAll(db, sql: "SELECT * FROM metricTicket ORDER BY id")
            }
            #expect(read.map { $0.id } == ["a", "b"])
            if prepared {
                // What was written reads back whole (clocks and handoffs have tables of their own).
                let bare = { (row: TicketMetricRow) -> TicketMetricRow in
                    var row = row
                    (row.clocks, row.handoffs) = ([], [])
                    return row
                }
                #expect(read.map(bare) == rows.map(bare))
                #expect(try await store.writer.read { db in try ClockRow.fetchAll(db, sql: "SELECT * FROM metricClock ORDER BY rowid") }
                        == rows.flatMap { $0.clocks })
                #expect(try await store.writer.read { db in try HandoffRow.fetchAll(db, sql: "SELECT * FROM metricHandoff ORDER BY rowid") }
                        == rows.flatMap { $0.handoffs })
            }
            dumps.append(written)
        }
        #expect(dumps[0].count == 2 + 4 + 2)
        #expect(dumps[0] == dumps[1], "every column, storage class and NULL as GRDB's insert writes them")
    }
}
