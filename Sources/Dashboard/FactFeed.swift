import Foundation
import GRDB
import TicketStore

/// The dashboard's per-ticket facts as a feed, for a reader that copies them elsewhere (the
/// PostgreSQL mirror): every derivation or removal of a ticket's facts gives the ticket the next
/// number, so a reader that remembers the last number it copied asks for what came after it and
/// misses nothing. A ticket derived again moves to the end; its older number is gone.
///
/// ```swift
/// let index = try await MetricIndex(store)
/// var cursor: Int64 = 0
/// let page = try await index.facts(after: cursor, limit: 500)
/// for change in page.changes { copy(change.ticket, change.facts) }  // nil facts: remove them
/// cursor = page.cursor
/// ```
public struct FactPage: Sendable, Equatable {
    /// One ticket whose facts changed: its facts now (with their clocks and handoffs), or `nil`
    /// when it has none any more (deleted, merged away before creation, or failing to derive).
    public struct Change: Sendable, Equatable {
        public var ticket: String
        public var seq: Int64
        public var facts: TicketMetricRow?
    }

    /// In feed order.
    public var changes: [Change]
    /// The number to ask after next: the last change's, or the one asked after when none came.
    public var cursor: Int64
    /// The feed's newest number when the page was read (0: nothing derived yet).
    public var head: Int64
    /// Tickets whose changed facts come after ``cursor``: exact up to 10,000, past that the count of
    /// feed numbers after it (a ticket derived twice since counts twice there).
    public var after: Int
    /// Tickets listed for deriving and not derived yet: they join the feed when the dashboard (or
    /// ``MetricIndex/refresh(now:batch:progress:shouldContinue:)``) derives them.
    public var pending: Int
}

extension MetricIndex {
    /// The facts that changed after `cursor`, at most `limit` tickets, read in one read transaction
    /// (the rows are those of one snapshot). Awaits SQLite through GRDB's async read: it blocks no
    /// event loop or cooperative thread.
    /// - Parameters:
    ///   - cursor: the ``FactPage/cursor`` of the last page copied, 0 at first. A cursor past the
    ///     feed's ``FactPage/head`` means the facts were made again from nothing (another store
    ///     file, or its dashboard tables rebuilt): start over from 0.
    public func facts(after cursor: Int64, limit: Int) async throws -> FactPage {
        try await database.writer.read { db in try Self.facts(db, after: cursor, limit: limit) }
    }

    static func facts(_ db: Database, after cursor: Int64, limit: Int) throws -> FactPage {
        let listed = try Row.fetchAll(db, sql: "SELECT ticket, seq FROM metricFeed WHERE seq > ? ORDER BY seq LIMIT ?",
                                      arguments: [cursor, max(1, limit)])
        let head = try feedHead(db)
        let ids: [String] = listed.map { $0["ticket"] }
        var rows: [String: TicketMetricRow] = [:]
        if !ids.isEmpty {
            // The ids travel as one JSON array: one statement whatever the page's size.
            let list = String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)
            for row in try TicketMetricRow.fetchAll(db, sql: "SELECT * FROM metricTicket WHERE id IN (SELECT value FROM json_each(?))", arguments: [list]) {
                rows[row.id] = row
            }
            for clock in try ClockRow.fetchAll(db, sql: "SELECT * FROM metricClock WHERE ticket IN (SELECT value FROM json_each(?)) ORDER BY ticket, kind, cycle",
                                               arguments: [list]) {
                rows[clock.ticket]?.clocks.append(clock)
            }
            for handoff in try HandoffRow.fetchAll(db, sql: "SELECT * FROM metricHandoff WHERE ticket IN (SELECT value FROM json_each(?)) ORDER BY ticket, id",
                                                   arguments: [list]) {
                rows[handoff.ticket]?.handoffs.append(handoff)
            }
        }
        let changes = listed.map { FactPage.Change(ticket: $0["ticket"], seq: $0["seq"], facts: rows[$0["ticket"] as String]) }
        let next = changes.last?.seq ?? cursor
        // One number per ticket: counted exactly while few (a bounded index range), else bounded by the numbers.
        let exact = try feedCount(db, after: next, atMost: 10_001)
        let after = exact <= 10_000 ? exact : Int(max(0, head - next))
        return FactPage(changes: changes, cursor: next, head: head, after: after, pending: try pending(db))
    }
}

extension MetricIndex {
    /// The feed's newest number (0: nothing derived yet).
    public func feedHead() async throws -> Int64 {
        try await database.writer.read { db in try Self.feedHead(db) }
    }

    static func feedHead(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM metricFeed") ?? 0
    }

    /// Feed numbers after `seq`, counted up to `atMost` (a bounded read of the index).
    static func feedCount(_ db: Database, after seq: Int64, atMost: Int) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (SELECT 1 FROM metricFeed WHERE seq > ? LIMIT ?)", arguments: [seq, atMost]) ?? 0
    }

    /// The tickets whose facts changed after `cursor`, whoever derived them (this process or
    /// another one on the same store, such as a mirror), up to `limit`; `nil` tickets when more
    /// changed than that, or when `cursor` is past the feed's head (its facts were made again from
    /// nothing, as ``facts(after:limit:)`` says). Only ids are read.
    /// - Returns: the tickets and the cursor to ask after next.
    public func changedTickets(after cursor: Int64, limit: Int) async throws -> (tickets: [String]?, cursor: Int64) {
        try await database.writer.read { db in
            let head = try Self.feedHead(db)
            guard cursor <= head, try Self.feedCount(db, after: cursor, atMost: limit + 1) <= limit else { return (nil, head) }
            let tickets = try String.fetchAll(db, sql: "SELECT ticket FROM metricFeed WHERE seq > ? AND seq <= ? ORDER BY seq", arguments: [cursor, head])
            return (tickets, head)
        }
    }
}
