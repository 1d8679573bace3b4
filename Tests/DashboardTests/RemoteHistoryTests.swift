import Dashboard
import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A change that leaves every column of a ticket as it was still changes the history the facts are
/// derived from, so the ticket is listed to be derived again.
@Suite struct RemoteHistoryTests {
    @Test func anEarlierSolveFromAnotherSiteMovesTheFirstSolve() async throws {
        let northClock = TestClock(), southClock = TestClock()
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", clock: northClock, key: northKey)
        let south = try memoryStore("south", clock: southClock, key: southKey)
        try admit([(north, northKey), (south, southKey)])
        let ticket = try north.createTicket(TicketDraft(subject: "Printer offline"))
        _ = try south.apply(north.blocks(after: south.vector()))
        // Both sites solve it while apart; south first. North's later write keeps the status and its
        // stamp, so south's block changes no column of north's row, only the history.
        southClock.advance(60_000)
        northClock.advance(120_000)
        _ = try south.update(ticket.id, [(.status, .text("solved"))])
        _ = try north.update(ticket.id, [(.status, .text("solved"))])
        let index = try await MetricIndex(north)
        _ = try await index.refresh(now: Int64(northClock.now))
        #expect(try await index.pending() == 0)
        func firstSolved() async throws -> Int64? {
            try await north.writer.read { db in try Int64.fetchOne(db, sql: "SELECT firstSolvedAt FROM metricTicket") }
        }
        let before = try await firstSolved()

        #expect(try north.apply(south.blocks(after: north.vector())).applied == 1)
        #expect(try await index.pending() == 1, "south's solve is part of the ticket's history")
        _ = try await index.refresh(now: Int64(northClock.now))
        let after = try #require(try await firstSolved())
        #expect(after < before!, "the first solve is south's, a minute before north's")
    }
}
