import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore
@testable import Dashboard

/// The workspace's SLA and handoff queues read the dashboard's facts through an index: no plan walks
/// `metricClock` or `metricHandoff` whole. Each sorts only what it found (its order is an aggregate
/// of the rows it groups, so no index can give it): one row per ticket in the queue.
@Suite struct QueuePlanTests {
    private func plan(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [String] {
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] }
    }

    @Test func slaAndHandoffQueuesSearchAnIndex() async throws {
        let store = try memoryStore("north")
        _ = try await FleetQueries(store)
        try await store.writer.read { db in
            for state in SLAState.allCases {
                for site in [nil, "north"] {
                    let statement = try FleetQueries.ticketsRequest(in: state, now: 1_700_000_000_000, site: site, limit: 1_000)
                        .makePreparedRequest(db, forSingleResult: false).statement
                    let lines = try plan(db, statement.sql, statement.arguments)
                    // The partial index holds running clocks only: walking it (at risk, ok) reads no stopped one.
                    let reads = lines.filter { $0.hasPrefix("SEARCH metricClock") || $0.hasPrefix("SCAN metricClock") }
                    #expect(!reads.isEmpty && reads.allSatisfy { $0.contains("USING INDEX metricClock_running") }, "\(state) \(site ?? "-"): \(lines)")
                }
            }
            let lines = try plan(db, FleetQueries.awaitingHandoffSQL, ["north", 1_000])
            #expect(lines.contains { $0.hasPrefix("SEARCH metricHandoff USING INDEX metricHandoff_waiting (toSite=?)") }, "\(lines)")
            #expect(!lines.contains { $0.hasPrefix("SCAN metricHandoff") }, "\(lines)")
        }
    }

    /// A ticket's deadline and warning are each the earliest of its running clocks, here two clocks'
    /// (the first response warns first, the resolution is due first): at risk from the first response's
    /// warning, breached from the resolution's deadline; stopped clocks and clocks without a target
    /// count for nothing.
    @Test func aTicketsDueIsTheEarliestOfItsRunningClocks() async throws {
        let store = try memoryStore("north")
        let facts = try await FleetQueries(store)
        try await store.writer.write { db in
            for (kind, cycle, target, deadline, warnAt, stop) in [("firstResponse", 0, 1, 300, 50, nil), ("resolution", 0, 1, 200, 150, nil),
                                                                  ("nextResponse", 1, 1, 100, 10, 90), ("pending", 0, nil, 20, 5, nil)] as [(String, Int, Int?, Int, Int, Int?)] {
                try db.execute(sql: """
                    INSERT INTO metricClock (ticket, site, kind, cycle, start, target, deadline, warnAt, stop) VALUES ('t', 'north', ?, ?, 0, ?, ?, ?, ?)
                    """, arguments: [kind, cycle, target, deadline, warnAt, stop])
            }
        }
        let due = try #require(try await facts.due(["t", "unknown"])["t"])
        #expect(due == SLADue(ticket: "t", deadline: 200, warnAt: 50))
        #expect(due.state(now: 49) == .ok && due.state(now: 50) == .atRisk && due.state(now: 200) == .breached)
        #expect(try await facts.tickets(in: .atRisk, now: 60).map(\.ticket) == ["t"])
        #expect(try await facts.tickets(in: .breached, now: 60).isEmpty)
        #expect(try await facts.tickets(in: .breached, now: 250).map(\.ticket) == ["t"])
    }

    /// Deriving a ticket again reads and removes its clocks and handoffs by the primary keys, which
    /// begin with the ticket: no index of the ticket alone is kept beside them (migration v7).
    @Test func aTicketsClocksAndHandoffsAreFoundByThePrimaryKeys() async throws {
        let store = try memoryStore("north")
        _ = try await FleetQueries(store)
        try await store.writer.read { db in
            let indexes = try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('metricClock', 'metricHandoff')")
            #expect(indexes.isDisjoint(with: ["metricClock_on_ticket", "metricHandoff_on_ticket"]), "\(indexes)")
            for sql in ["DELETE FROM metricClock WHERE ticket = ?", "SELECT deadline, stop FROM metricClock WHERE ticket = ? AND target IS NOT NULL",
                        "DELETE FROM metricHandoff WHERE ticket = ?"] {
                let lines = try plan(db, sql, ["t"])
                #expect(lines.count == 1 && lines[0].hasPrefix("SEARCH") && lines[0].contains("sqlite_autoindex") && lines[0].contains("(ticket=?)"),
                        "\(sql): \(lines)")
            }
        }
    }
}
