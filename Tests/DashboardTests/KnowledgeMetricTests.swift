import Desk
import Dashboard
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The dashboard's knowledge figures, from articles and `kb:` links written into a real store.
@Suite struct KnowledgeMetricTests {
    @Test func articlesLinksAndFirstLineResolutions() async throws {
        let start: UInt64 = 1_790_000_000_000
        let clock = TestClock(start)
        let store = try memoryStore("north", clock: clock)
        // A ticket solved earlier gives the article (outside the period, so it is not in the cohort).
        let source = try store.createTicket(TicketDraft(subject: "Spooler crash"))
        _ = try store.update(source.id, [(.status, .text("solved"))])
        clock.advance(3_600_000)
        let article = try store.recordResolution(source.id, ArticleDraft(title: "Spooler crash after driver update", summary: "s",
                                                                           rootCause: "r", steps: "x", author: "anna"))
        // In the period: three tickets; two use the article; one of those is solved at first line, the
        // other is transferred to tier 2 first; the third is solved without it.
        clock.advance(60_000)
        let from = Int64(clock.now)
        let a = try store.createTicket(TicketDraft(subject: "Printer crashed"))
        let b = try store.createTicket(TicketDraft(subject: "Spooler again"))
        let c = try store.createTicket(TicketDraft(subject: "Unrelated"))
        _ = try store.linkArticle(a.id, article.ref)
        _ = try store.linkArticle(b.id, article.ref)
        _ = try HelpDesk(store: store).transfer(b.id, group: "tier2", reason: "needs a driver engineer", actor: "anna", now: from)
        for t in [a, b, c] { _ = try store.update(t.id, [(.status, .text("solved"))]) }
        let now = Int64(clock.now) + 1000
        try await MetricIndex(store).refresh(now: now)
        let k = try await FleetQueries(store).metrics(period: Period(from: from, to: now), now: now).knowledge
        #expect(k.articles == 1)
        #expect(k.written == 0)  // written an hour before the period
        #expect(k.linkRate.part == 2 && k.linkRate.whole == 3)  // a and b of the cohort a, b, c
        #expect(k.firstLineWithArticle.part == 1 && k.firstLineWithArticle.whole == 2)  // a; b was transferred
        #expect(k.top.map(\.ref) == [article.ref] && k.top.first?.uses == 2)
    }
}
