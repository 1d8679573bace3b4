import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// Every list the CLI and the workspace read from the store is answered in an index's order: no
/// plan sorts what it read (`USE TEMP B-TREE FOR ORDER BY`) or walks a table whole in its own
/// order (`SCAN ticket` without an index). The lists by creation may sort the tickets that share a
/// stamp as they walk their index (`… FOR RIGHT PART OF ORDER BY`), and no other list. The statements are the ones the code runs, taken from
/// the builders it calls, and explained on a store migrated as a real one is.
@Suite struct TicketListPlanTests {
    /// A store with a few tickets: tags, an assignee, a group, a conflict-free history.
    private func store() throws -> TicketDatabase {
        let store = try makeStore("north")
        for n in 0..<5 {
            let ticket = try store.createTicket(TicketDraft(subject: "printer \(n)", group: "tier1", assignee: n % 2 == 0 ? "anna" : nil, tags: ["hw"]))
            if n == 3 { _ = try store.update(ticket.id, [(.status, .text("solved"))]) }
        }
        return store
    }

    /// The `detail` column of each line of the statement's plan.
    private func plan(_ db: Database, _ request: some FetchRequest) throws -> [String] {
        let statement = try request.makePreparedRequest(db, forSingleResult: false).statement
        return try plan(db, statement.sql, statement.arguments)
    }

    private func plan(_ db: Database, _ sql: String, _ arguments: StatementArguments = StatementArguments()) throws -> [String] {
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] }
    }

    /// Records an issue for each line of `lines` that sorts or walks a table whole.
    /// - Parameters:
    ///   - walks: the alias of the list's own table, which may be walked in an index's order (a
    ///     page stops at its limit); any other table may only be searched.
    ///   - sorts: why a sort is fine here (it sorts a result bounded by something other than the table).
    ///   - inRowidOrder: the order asked is the table's own (rowid), so a plain walk serves it.
    ///   - sortsTies: the index gives the order's first column, and the rows that share a value of it
    ///     are sorted by the rest as the walk goes (a list by creation: the tickets of one stamp).
    private func expectIndexed(_ name: String, _ lines: [String], walks alias: String, sorts: String? = nil, inRowidOrder: Bool = false,
                               sortsTies: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        for line in lines {
            if line.contains("USE TEMP B-TREE FOR ORDER BY"), sorts == nil {
                Issue.record("\(name) sorts what it read: \(lines)", sourceLocation: sourceLocation)
            }
            if line.contains("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"), sorts == nil, !sortsTies {
                Issue.record("\(name) sorts part of what it read: \(lines)", sourceLocation: sourceLocation)
            }
            // `SCAN (subquery-1)` reads a subquery's own rows (a ticket's tags), `SCAN CONSTANT ROW` nothing.
            guard line.hasPrefix("SCAN "), !line.hasPrefix("SCAN (subquery"), !line.hasPrefix("SCAN CONSTANT") else { continue }
            let table = line.split(separator: " ")[1]
            if table != alias {
                Issue.record("\(name) walks \(table) whole for each row: \(lines)", sourceLocation: sourceLocation)
            } else if !line.contains(" USING "), !inRowidOrder {
                Issue.record("\(name) walks the whole table in no order it asks for: \(lines)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func ticketListReadsTheCreatedOrderOfAnIndex() throws {
        let store = try store()
        try store.writer.read { db in
            // The first page, and the next ones after a stamped ticket and among unstamped ones.
            let pages: [TicketListPosition?] = [nil, .created(1_700_000_000_000, "00000000-0000-0000-0000-000000000000"),
                                                .unstamped(afterID: nil), .unstamped(afterID: "00000000-0000-0000-0000-000000000000")]
            for status in [nil, Status.open] {
                for site in [nil, try SiteID("north")] {
                    for after in pages {
                        let request = TicketDatabase.ticketsRequest(status: status, site: site, after: after, limit: 500)
                        expectIndexed("ticket list --status \(status?.rawValue ?? "-") --site \(site?.rawValue ?? "-") after \(String(describing: after))",
                                      try plan(db, request), walks: "t", sortsTies: true)
                    }
                }
            }
        }
    }

    /// A next page starts its index read at the cursor (a range on the order's column), not at the
    /// top with every row of the pages before skipped: `--limit 1000000` reads 2,000 pages.
    @Test func aNextPageStartsAtItsCursor() throws {
        let store = try store()
        try store.writer.read { db in
            for status in [nil, Status.open] {
                for site in [nil, try SiteID("north")] {
                    let request = TicketDatabase.ticketsRequest(status: status, site: site, after: .created(1_700_000_000_000, "00000000-0000-0000-0000-000000000000"), limit: 500)
                    let lines = try plan(db, request)
                    #expect(lines.contains { $0.hasPrefix("SEARCH t USING") && $0.contains("createdHLC<") }, "ticket list --status \(status?.rawValue ?? "-") --site \(site?.rawValue ?? "-"): \(lines)")
                }
            }
            for query in [TicketListQuery(), TicketListQuery(statuses: [.open]), TicketListQuery(statuses: TicketListQuery.unresolved, conflicted: true)] {
                var next = query
                next.cursor = "1700000000000.00000000-0000-0000-0000-000000000000"
                let lines = try plan(db, try TicketDatabase.listRequest(next))
                #expect(lines.contains { $0.hasPrefix("SEARCH t USING") && $0.contains("<expr><") }, "\(query): \(lines)")
            }
        }
    }

    /// The queues `GET /api/tickets` and the workspace build (`Workspace/Queue.swift`): each view
    /// with and without a site, with the filters a request may add, first page and next.
    @Test func everyQueueReadsTheUpdatedOrderOfAnIndex() throws {
        let store = try store()
        let unresolved = TicketListQuery.unresolved
        var queries: [(String, TicketListQuery)] = [
            ("all", TicketListQuery()),
            ("one status", TicketListQuery(statuses: [.open])),
            ("unresolved", TicketListQuery(statuses: unresolved)),
            ("group", TicketListQuery(group: "tier1")),
            ("group, status", TicketListQuery(statuses: [.open], group: "tier1")),
            ("mine", TicketListQuery(statuses: unresolved, assignee: "anna")),
            ("groups", TicketListQuery(statuses: unresolved, groups: ["tier1", "tier2"])),
            ("one group", TicketListQuery(statuses: unresolved, groups: ["tier1"])),
            ("unassigned", TicketListQuery(statuses: unresolved, unassigned: true)),
            ("conflicts", TicketListQuery(statuses: unresolved, conflicted: true)),
            ("no conflicts", TicketListQuery(conflicted: false)),
            ("text", TicketListQuery(text: "printer")),
            ("text, unresolved", TicketListQuery(statuses: unresolved, text: "NORTH-1")),
        ]
        for (name, query) in queries {
            var atSite = query
            atSite.owningSite = "north"
            queries.append((name + " at a site", atSite))
        }
        for (name, query) in queries {
            var next = query
            next.cursor = "1700000000000.00000000-0000-0000-0000-000000000000"
            queries.append((name + ", next page", next))
        }
        try store.writer.read { db in
            for (name, query) in queries {
                expectIndexed(name, try plan(db, try TicketDatabase.listRequest(query)), walks: "t")
            }
            // The SLA and handoff queues list ids the dashboard's facts found: each is looked up by
            // its key and only they are sorted, never more rows than ids given.
            let ids = TicketListQuery(statuses: unresolved, ids: ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"])
            let lines = try plan(db, try TicketDatabase.listRequest(ids))
            #expect(lines.contains { $0.contains("USING INDEX sqlite_autoindex_ticket_1 (id=?)") }, "\(lines)")
            expectIndexed("ids", lines, walks: "t", sorts: "only the ids given")
            var idsNext = ids
            idsNext.cursor = "1700000000000.00000000-0000-0000-0000-000000000000"
            let nextLines = try plan(db, try TicketDatabase.listRequest(idsNext))
            #expect(nextLines.contains { $0.contains("USING INDEX sqlite_autoindex_ticket_1 (id=?)") }, "\(nextLines)")
            expectIndexed("ids, next page", nextLines, walks: "t", sorts: "only the ids given")
        }
    }

    @Test func otherListsReadAnIndexOrTheirOwnOrder() throws {
        let store = try store()
        try store.writer.read { db in
            expectIndexed("kb list", try plan(db, TicketDatabase.articlesSQL, [1_000]), walks: "a")
            expectIndexed("customer list", try plan(db, TicketDatabase.customersSQL, [10_000]), walks: "customer")
            // Newest first is the table's own order, read backwards.
            expectIndexed("outbox list", try plan(db, TicketDatabase.outboxRequest(state: nil, limit: 100)), walks: "outbox", inRowidOrder: true)
            expectIndexed("outbox list --state", try plan(db, TicketDatabase.outboxRequest(state: .pending, limit: 100)), walks: "outbox")
            // `handoff list` and the escalation ticker fold every active ticket: those alone are read,
            // through the status index, and sorted; tickets closed long ago are not visited.
            let active = try plan(db, TicketDatabase.activeTicketsSQL)
            #expect(active.contains { $0.contains("(status=?)") }, "\(active)")
            expectIndexed("active tickets", active, walks: "ticket", sorts: "the active tickets only")
            // An intake message's redelivery check: one lookup in the events' id index, which holds
            // no attribution events, and one by key among the ticket's own.
            let held = try plan(db, TicketDatabase.heldMessageSQL, ["00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001"])
            #expect(held.contains("SEARCH ticketEvent USING INDEX ticketEvent_on_id (id=?)"), "\(held)")
            #expect(held.contains("SEARCH ticketEvent USING COVERING INDEX sqlite_autoindex_ticketEvent_1 (ticket=? AND id=?)"), "\(held)")
            #expect(!held.contains { $0.hasPrefix("SCAN") }, "\(held)")
            let index = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_schema WHERE name = 'ticketEvent_on_id'")
            #expect(index?.hasSuffix("WHERE kind <> 'attribution'") == true, "\(index ?? "no index")")
        }
    }

    /// The rewrites that let an index serve (`+t.status IN`, one term for "no assignee") select the
    /// same tickets as the plain conditions they replace.
    @Test func rewrittenFiltersSelectWhatTheySay() throws {
        let store = try makeStore("north")
        let anna = try store.createTicket(TicketDraft(subject: "a", group: "tier1", assignee: "anna"))
        let nobody = try store.createTicket(TicketDraft(subject: "b", group: "tier2"))
        let solved = try store.createTicket(TicketDraft(subject: "c", group: "tier3"))
        _ = try store.update(solved.id, [(.status, .text("solved"))])
        func ids(_ query: TicketListQuery) throws -> Set<String> { Set(try store.listTickets(query).tickets.map(\.id)) }
        #expect(try ids(TicketListQuery(statuses: TicketListQuery.unresolved)) == [anna.id, nobody.id])
        #expect(try ids(TicketListQuery(statuses: [.solved, .closed])) == [solved.id])
        #expect(try ids(TicketListQuery(groups: ["tier1", "tier3"])) == [anna.id, solved.id])
        #expect(try ids(TicketListQuery(unassigned: true)) == [nobody.id, solved.id])
        #expect(try ids(TicketListQuery(assignee: "anna")) == [anna.id])
    }

    /// Paged reading lists what one read lists, in its order: across page ends, with tickets created
    /// while it reads (left out: they sort before the page reached) and with a ticket that has no
    /// creation stamp (last).
    @Test func readingInPagesListsWhatOneReadLists() throws {
        let store = try store()
        for (pageSize, limit) in [(1, 10), (2, 10), (2, 3), (5, 5), (500, 2)] {
            let all = try store.tickets()
            var read: [String] = []
            try store.forEachTicket(limit: limit, pageSize: pageSize) { ticket in
                if read.isEmpty { _ = try store.createTicket(TicketDraft(subject: "created while listing")) }
                read.append(ticket.id)
            }
            #expect(read == all.prefix(limit).map(\.id), "page \(pageSize), limit \(limit)")
        }
        let unstamped = try store.tickets()[1].id
        try store.writer.write { db in try db.execute(sql: "UPDATE ticket SET createdHLC = NULL WHERE id = ?", arguments: [unstamped]) }
        let now = try store.tickets()
        #expect(now.last?.id == unstamped)
        for pageSize in [1, 2, 3, 100] {
            var read: [String] = []
            try store.forEachTicket(limit: 100, pageSize: pageSize) { read.append($0.id) }
            #expect(read == now.map(\.id), "page \(pageSize)")
        }
    }

    /// Tickets created in one batch share their block's stamp; every replica lists them by id within
    /// it, whatever order its rows were written in (the lists by creation hold the stamp alone, and
    /// the read sorts each stamp's tickets as it walks).
    @Test func ticketsOfOneStampListInTheSameOrderOnEveryReplica() throws {
        let north = try makeStore("north"), south = try makeStore("south")
        try north.learn(keys: [try SiteID("south"): try south.identity().publicKey])
        try south.learn(keys: [try SiteID("north"): try north.identity().publicKey])
        for store in [north, south] {
            try store.batch { batch in
                for n in 0..<40 { _ = try batch.create(TicketDraft(subject: "batch \(n)", tags: n % 2 == 0 ? ["hw"] : [])) }
            }
        }
        #expect(try south.apply(try north.blocks(after: try south.vector())).refused.isEmpty)
        #expect(try north.apply(try south.blocks(after: try north.vector())).refused.isEmpty)
        let listed = try north.tickets(limit: 1_000)
        #expect(listed.count == 80)
        #expect(try south.tickets(limit: 1_000).map(\.id) == listed.map(\.id))
        // Newest stamp first, and the tickets of one stamp by id, descending.
        let keys = try north.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id, createdHLC FROM ticket").reduce(into: [String: Int64]()) { $0[$1[0]] = $1[1] }
        }
        let expected = listed.map(\.id).sorted { (keys[$0]!, $0) > (keys[$1]!, $1) }
        #expect(listed.map(\.id) == expected)
        #expect(Set(listed.map { keys[$0.id]! }).count < 80, "some tickets share a stamp")
        for pageSize in [1, 7, 33] {
            for store in [north, south] {
                var read: [String] = []
                try store.forEachTicket(limit: 1_000, pageSize: pageSize) { read.append($0.id) }
                #expect(read == expected, "page \(pageSize)")
            }
        }
    }
}
