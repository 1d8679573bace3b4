import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// Pages continue where the last one stopped, also among tickets with the same stamp: a batch's
/// tickets share their block's stamp, so the lists by last activity tell them apart by rowid, and
/// the lists by creation by id.
@Suite struct TicketPagingTests {
    /// Eleven tickets from one batch (one block, one stamp) and two written alone after them.
    private func store() throws -> (TicketDatabase, [String]) {
        let store = try makeStore("north")
        var ids: [UUID] = []
        try store.batch { batch in for n in 0..<11 { ids.append(try batch.create(TicketDraft(subject: "printer \(n)"))) } }
        for n in 0..<2 { ids.append(try #require(UUID(uuidString: try store.createTicket(TicketDraft(subject: "late \(n)")).id))) }
        return (store, ids.map(\.lowercaseText))
    }

    @Test func theWorkspaceListPagesThroughTiedStampsOnceEach() throws {
        let (store, ids) = try store()
        var seen: [TicketRecord] = [], query = TicketListQuery(limit: 3)
        for _ in 0..<20 {
            let page = try store.listTickets(query)
            seen += page.tickets
            guard let next = page.next else { break }
            query.cursor = next
        }
        #expect(seen.map(\.id).sorted() == ids.sorted())
        #expect(Set(seen.map(\.id)).count == seen.count, "no ticket twice")
        // Newest change first; among equal stamps, the one this store took in last first (its rowid).
        let keys = try store.writer.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, updatedHLC, rowid FROM ticket").map {
                ($0["id"] as String, (stamp: $0["updatedHLC"] as Int64, rowid: $0["rowid"] as Int64))
            })
        }
        let listed = seen.compactMap { keys[$0.id] }
        #expect(Set(listed.map(\.stamp)).count < ids.count, "the batch's tickets share a stamp")
        #expect(zip(listed, listed.dropFirst()).allSatisfy { $0.stamp > $1.stamp || ($0.stamp == $1.stamp && $0.rowid > $1.rowid) })
        #expect(Array(seen.map(\.id).suffix(11)) == ids.prefix(11).reversed(), "the batch's tickets, last created first")
    }

    /// A withdrawn site's tickets leave the store (`RosterStore.withdraw`): a cursor naming one lists
    /// its stamp's tickets again from the first rather than skip the rest of them.
    @Test func aCursorWhoseTicketIsGoneSkipsNoTicketOfItsTie() throws {
        let store = try makeStore("north")
        var ids: [UUID] = []
        try store.batch { batch in for n in 0..<10 { ids.append(try batch.create(TicketDraft(subject: "tied \(n)"))) } }
        let first = try store.listTickets(TicketListQuery(limit: 3))
        let cursor = try #require(first.next)
        let named = String(try #require(cursor.split(separator: ".", maxSplits: 1).last))
        try store.writer.write { db in try db.execute(sql: "DELETE FROM ticket WHERE id = ?", arguments: [named]) }
        var seen = first.tickets.map(\.id), query = TicketListQuery(limit: 3, cursor: cursor)
        for _ in 0..<20 {
            let page = try store.listTickets(query)
            seen += page.tickets.map(\.id)
            guard let next = page.next else { break }
            query.cursor = next
        }
        #expect(Set(seen) == Set(ids.map(\.lowercaseText)), "every ticket listed, the gone one from the first page too")
        #expect(seen.count == 3 + 9, "the tie listed again from its first ticket, once")
    }

    @Test func ticketListPagesThroughTiedStampsOnceEach() throws {
        let (store, ids) = try store()
        var seen: [String] = []
        try store.forEachTicket(limit: 100, pageSize: 2) { seen.append($0.id) }
        #expect(seen.sorted() == ids.sorted())
        #expect(Set(seen).count == seen.count)
        // The two tickets written alone come first, newest first; the batch's follow by id, larger first.
        #expect(seen.prefix(2) == [ids[12], ids[11]])
        #expect(Array(seen.dropFirst(2)) == ids.prefix(11).sorted(by: >))
    }
}
