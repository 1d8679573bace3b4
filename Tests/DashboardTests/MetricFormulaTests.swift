import Desk
import Dashboard
import Escalation
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

// Every figure of `MetricSet` checked against answers worked out by hand from a week of tickets
// written at chosen moments into a real store, then derived by `MetricIndex` (the formulas of README.md, "Dashboard").
// Expected values are literals with their arithmetic in comments: none comes from the code under test.

// MARK: - Time

/// Monday 2 March 2026, 00:00 UTC: day 0 of every scenario.
private let t0: Int64 = 1_772_409_600_000
private let minute: Int64 = 60_000
private let hour: Int64 = 3_600_000
private let day: Int64 = 86_400_000

/// Day `d` (0 = Monday 2 March 2026, negative before it) at `h`:`m` UTC, in ms.
private func at(_ d: Int64, _ h: Int64, _ m: Int64 = 0) -> Int64 { t0 + d * day + h * hour + m * minute }

// MARK: - Scenario

/// The configuration of the week: a business-hours policy for gold customers (Mon–Fri 09:00–17:00
/// UTC), a 24×7 one for silver ones, a three-level ladder whose second level asks `central` to take
/// the ticket, and a proactive rule for urgent gold tickets.
private let weekConfig = #"""
{
  "calendars": [{"name": "office", "version": 1, "timezone": "UTC",
                 "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
                            "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]}}],
  "ladders": [{"name": "std", "version": 1, "loops": 0, "ackTimeout": "1h", "calendar": "24x7",
               "levels": [{"delay": "0", "targets": ["lead@north"], "assignment": "notify"},
                          {"delay": "1h", "targets": ["tier2@central"], "assignment": "transfer_site"},
                          {"delay": "2h", "targets": ["coordinator"], "assignment": "notify"}]}],
  "policies": [
    {"name": "gold", "version": 1, "position": 10, "match": {"customerTier": ["gold"]}, "calendar": "office", "ladder": "std",
     "clocks": {"firstResponse": {"targets": {"urgent": "30m", "normal": "2h"}, "warnAt": 50, "onBreach": ["escalate"]},
                "nextResponse": {"targets": {"urgent": "1h", "normal": "4h"}},
                "resolution": {"targets": {"urgent": "8h", "normal": "16h"}},
                "timeToOwn": {"targets": {"urgent": "15m", "normal": "1h"}}}},
    {"name": "silver", "version": 1, "position": 20, "match": {"customerTier": ["silver"]}, "calendar": "24x7", "ladder": "std",
     "clocks": {"firstResponse": {"targets": {"normal": "1h"}, "warnAt": 50, "onWarn": ["escalate"]}}}
  ],
  "rules": [{"name": "vip", "version": 1, "match": {"priority": ["urgent"], "customerTier": ["gold"]}, "ladder": "std"}]
}
"""#

/// One coordinator store (site `north`) with its escalation desk, written at chosen moments.
private struct Scenario {
    let clock: TestClock
    let store: TicketDatabase
    let desk: EscalationDesk

    init() throws {
        let clock = TestClock(0)
        self.clock = clock
        store = try memoryStore("north", role: .coordinator, clock: clock)
        desk = try EscalationDesk(store: store)
    }

    func publish(_ json: String, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        _ = try desk.publish(Data(json.utf8), file: "test.json", actor: "ops")
    }

    /// Opens a ticket (with the customer's first message unless `message` is false); a ticket with a
    /// customer tier gets its matching policy pinned at once, as a site does.
    @discardableResult
    func open(_ t: Int64, _ subject: String, tier: String? = nil, priority: Priority = .normal, channel: String? = nil,
              message: Bool = true) throws -> String {
        clock.move(to: UInt64(t))
        let ticket = try store.createTicket(TicketDraft(subject: subject, priority: priority, customer: "acme", channel: channel,
                                                       firstMessage: message ? "please help" : nil, customerTier: tier))
        if tier != nil { try desk.applyPolicy(try #require(UUID(uuidString: ticket.id)), now: t) }
        return ticket.id
    }

    func reply(_ id: String, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        try store.comment(id, body: "on it", kind: .agentReply, visibility: .public, actor: "ana")
    }

    func customerWrites(_ id: String, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        try store.comment(id, body: "still broken", kind: .customerMessage, visibility: .public, actor: "acme")
    }

    func set(_ id: String, _ fields: [(Field, FieldValue)], _ t: Int64) throws {
        clock.move(to: UInt64(t))
        try store.update(id, fields)
    }

    func status(_ id: String, _ status: String, _ t: Int64) throws { try set(id, [(.status, .text(status))], t) }
    func assign(_ id: String, _ t: Int64) throws { try set(id, [(.assignee, .text("ana"))], t) }
    func csat(_ id: String, _ score: String, _ t: Int64) throws { try set(id, [(.custom("csat_score"), .text(score))], t) }

    /// One pass of the ticker at `t`; with `backstop`, it also fires for tickets other sites own.
    func tick(_ t: Int64, backstop: Bool = false) throws {
        clock.move(to: UInt64(t))
        _ = try desk.tick(now: t, backstop: { _, _ in backstop })
    }

    func escalate(_ id: String, to target: String, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        _ = try HelpDesk(store: store).escalate(id, to: target, note: HandoffNote(summary: "renewal", verifiedFacts: "contract 42",
                                                                stepsTried: "quote", requestedAction: "discount"),
                              actor: "ana", now: t)
    }

    func transfer(_ id: String, to group: String, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        _ = try HelpDesk(store: store).transfer(id, group: group, reason: "billing question", actor: "ana", now: t)
    }

    /// The receiving site's answer to the ticket's latest handoff request (written here, as it
    /// would arrive by sync): an acceptance makes that site the owner.
    func answerHandoff(_ id: String, accept: Bool, _ t: Int64) throws {
        clock.move(to: UInt64(t))
        try store.writeRecords(try #require(UUID(uuidString: id))) { state in
            let request = try #require(TicketFacts(state).records.last { $0.record.isHandoffRequest })
            var record = EscalationRecord(type: accept ? .handoffAccepted : .handoffRejected, at: t)
            record.refersTo = request.id
            record.cycle = request.record.cycle
            record.toGroup = request.record.toGroup
            record.toSite = request.record.toSite
            record.reason = accept ? nil : "no capacity"
            var operations: [TicketModel.Operation] = []
            if accept {
                operations.append(.set(.owner, .owner(epoch: state.owner.epoch + 1, site: try SiteID(try #require(request.record.toSite)))))
                operations.append(.set(.group, .text(try #require(request.record.toGroup))))
            }
            return [(TicketEvent(id: UUID(), kind: .escalation, actor: "bo", visibility: .internal, body: record.encoded()), operations)]
        }
    }

    @discardableResult
    func refresh(now: Int64) async throws -> Int { try await MetricIndex(store).refresh(now: now).derived }

    func metrics(_ period: Period, now: Int64, _ filter: MetricFilter = MetricFilter()) async throws -> MetricSet {
        try await FleetQueries(store).metrics(filter, period: period, now: now)
    }

    func backlogSeries(_ period: Period, site: String? = nil) async throws -> [SeriesPoint] {
        try await FleetQueries(store).series(period: period, site: site).backlog
    }
}

/// The week of 2–8 March 2026 at site `north`, read at `now` = Monday 9 March 01:00.
///
/// | ticket | tier, priority | story (day 0 = Mon 2 Mar; times UTC) |
/// |---|---|---|
/// | I | –, normal | created day −40 10:00, open ever since |
/// | B | gold | created Fri day −3 16:00, assigned 16:30; replied Mon day 0 09:30 (65.5 h calendar, 1.5 h business); still open |
/// | J | – | created day −2 10:00, solved day 0 08:00 with no reply; CSAT 4 on day 7 00:30 (after the period) |
/// | A | gold | created day 0 09:00, assigned 09:30, replied 10:40, solved 12:00, CSAT 5 at 13:00, closed day 1 08:00 |
/// | C | gold | created day 0 14:00, assigned 14:10; first response breached 16:00 → ladder: level 1 16:00, level 2 17:00 (handoff to central), accepted 17:30; level 3 fired by north as backstop 20:00, exhausted; replied day 1 10:00; open, owned by central |
/// | D | gold, urgent | created day 1 09:00: the `vip` rule starts the ladder (levels 09:00, 10:00 → handoff, 12:00 → handoff timed out, exhausted); assigned 09:10, replied 09:20; handoff rejected 13:00; solved 15:00 |
/// | E | – | created day 1 10:30, transferred to billing 11:00, replied 12:30, solved 13:30, CSAT 7 (invalid) at 14:00 |
/// | F | –, high, phone | created day 2 09:00, replies 09:10 and 10:00, solved 11:00; customer writes day 3 09:00 (reopens), reply 10:00, solved 12:00; CSAT 2 at 13:00 |
/// | G | – | created day 2 12:00 without a customer message; agent writes first 12:05, pending 12:06, customer 13:00, open 13:01; escalated by an agent to tier2@north (own site) 14:00 |
/// | H | silver | created day 3 14:00, never answered: warning 14:30 starts the ladder (level 1 14:30, level 2 15:30 → pending handoff), breach 15:00 |
/// | L | – | created day 5 10:00, replied 10:30, pending customer 10:31 |
/// | K | silver | created day 7 00:20 (after the period): warning 00:50, deadline 01:20 — at risk at `now` |
private struct Week {
    static let period = Period(from: t0, to: t0 + 7 * day)
    static let now = at(7, 1)

    let s: Scenario
    let a: String, b: String, c: String, d: String, e: String, f: String, g: String, h: String, i: String, j: String, k: String, l: String

    init() async throws {
        let s = try Scenario()
        self.s = s
        i = try s.open(at(-40, 10), "Old VPN issue")
        try s.status(i, "open", at(-40, 11))
        try s.publish(weekConfig, at(-5, 8))
        b = try s.open(at(-3, 16), "Invoice copy", tier: "gold")
        try s.assign(b, at(-3, 16, 30))
        j = try s.open(at(-2, 10), "Password reset")
        try s.status(j, "solved", at(0, 8))
        a = try s.open(at(0, 9), "Printer offline", tier: "gold")
        try s.assign(a, at(0, 9, 30))
        try s.reply(b, at(0, 9, 30))
        try s.status(b, "open", at(0, 9, 30))
        try s.reply(a, at(0, 10, 40))
        try s.status(a, "solved", at(0, 12))
        try s.csat(a, "5", at(0, 13))
        c = try s.open(at(0, 14), "Shop outage", tier: "gold")
        try s.assign(c, at(0, 14, 10))
        try s.tick(at(0, 16))
        try s.tick(at(0, 17))
        try s.answerHandoff(c, accept: true, at(0, 17, 30))
        try s.tick(at(0, 20, 10), backstop: true)
        try s.status(a, "closed", at(1, 8))
        d = try s.open(at(1, 9), "Payments down", tier: "gold", priority: .urgent)
        try s.tick(at(1, 9, 5))
        try s.assign(d, at(1, 9, 10))
        try s.reply(d, at(1, 9, 20))
        try s.tick(at(1, 10))
        try s.reply(c, at(1, 10))
        try s.status(c, "open", at(1, 10))
        e = try s.open(at(1, 10, 30), "Wrong invoice address")
        try s.transfer(e, to: "billing", at(1, 11))
        try s.tick(at(1, 12))
        try s.reply(e, at(1, 12, 30))
        try s.answerHandoff(d, accept: false, at(1, 13))
        try s.status(e, "solved", at(1, 13, 30))
        try s.csat(e, "7", at(1, 14))
        try s.status(d, "solved", at(1, 15))
        f = try s.open(at(2, 9), "Headset broken", priority: .high, channel: "phone")
        try s.reply(f, at(2, 9, 10))
        try s.reply(f, at(2, 10))
        try s.status(f, "solved", at(2, 11))
        g = try s.open(at(2, 12), "Renewal offer", message: false)
        try s.reply(g, at(2, 12, 5))
        try s.status(g, "pending_customer", at(2, 12, 6))
        try s.customerWrites(g, at(2, 13))
        try s.status(g, "open", at(2, 13, 1))
        try s.escalate(g, to: "tier2@north", at(2, 14))
        try s.customerWrites(f, at(3, 9))
        try s.reply(f, at(3, 10))
        try s.status(f, "solved", at(3, 12))
        try s.csat(f, "2", at(3, 13))
        h = try s.open(at(3, 14), "Slow laptop", tier: "silver")
        try s.tick(at(3, 16))
        l = try s.open(at(5, 10), "Monitor flickers")
        try s.reply(l, at(5, 10, 30))
        try s.status(l, "pending_customer", at(5, 10, 31))
        k = try s.open(at(7, 0, 20), "Mail bounces", tier: "silver")
        try s.csat(j, "4", at(7, 0, 30))
        try await s.refresh(now: Week.now)
    }

    func metrics(_ filter: MetricFilter = MetricFilter(), period: Period = Week.period, now: Int64 = Week.now) async throws -> MetricSet {
        try await s.metrics(period, now: now, filter)
    }
}

// MARK: - Tests

@Suite struct MetricFormulaTests {
    /// The scenario did what the table says, so the figures below test the formulas, not the setup.
    @Test func theWeekScenarioUnfoldsAsDescribed() async throws {
        let week = try await Week()
        let c = try week.s.store.ticket(week.c), d = try week.s.store.ticket(week.d)
        #expect(c.owningSite == "central" && c.escalationLevel == 3)
        #expect(d.owningSite == "north" && d.escalationLevel == 3 && d.status == "solved")
        #expect(try week.s.store.ticket(week.h).escalationLevel == 2)
        #expect(try week.s.store.ticket(week.g).escalationLevel == 1)
        #expect(try week.s.store.ticket(week.e).group == "billing")
        #expect(try await MetricIndex(week.s.store).pending() == 0)
        #expect(try await facts(week.s.store).count == 12)
    }

    @Test func volumeAndBacklog() async throws {
        let m = try await Week().metrics()
        // Created in the period: A, C, D, E, F, G, H, L (not I, B, J before it, nor K after it).
        #expect(m.created == 8)
        // First solved in the period: J (day 0 08:00), A, D, E, F (first solve day 2 11:00).
        #expect(m.solved == 5)
        #expect(m.netFlow == 3)  // 8 − 5
        // Open now: B, C, G, I (open), H, K (new), L (pending customer); A closed, D, E, F, J solved.
        #expect(m.backlog.total == 7)
        #expect(m.backlog.byStatus == ["open": 4, "new": 2, "pending_customer": 1])
        // Ages at day 7 01:00: K 40 min; L 1 d 15 h; C 6 d 11 h, G 4 d 13 h, H 3 d 11 h; B 9 d 9 h; I 46 d 15 h.
        #expect(m.backlog.byAge == ["<1d": 1, "1-3d": 1, "3-7d": 3, "7-30d": 1, ">30d": 1])
        // I: day 7 01:00 − day −40 10:00 = 47 d − 9 h = 4_060_800_000 − 32_400_000.
        #expect(m.backlog.oldestOpenAgeMillis == 4_028_400_000)
    }

    @Test func firstResponseTimeCalendarAndBusiness() async throws {
        let frt = try await Week().metrics().speed.firstResponse
        // First responses in the period (G left out: the agent wrote before the customer did):
        //   F 10 min = 600_000; D 20 min = 1_200_000; L 30 min = 1_800_000; A 1 h 40 = 6_000_000;
        //   E 2 h = 7_200_000; C 20 h = 72_000_000; B Fri 16:00 → Mon 09:30 = 65.5 h = 235_800_000.
        #expect(frt.calendar.count == 7)
        #expect(frt.calendar.medianMillis == 6_000_000)     // ⌈0.5·7⌉ = 4th
        #expect(frt.calendar.p90Millis == 235_800_000)      // ⌈0.9·7⌉ = 7th
        #expect(frt.calendar.meanMillis == 46_371_428)      // 324_600_000 / 7, truncated
        // Business time (pinned tickets only, office hours Mon–Fri 09–17): D 20 min; B Fri 16–17 + Mon
        // 09–09:30 = 1.5 h; A 1 h 40; C Mon 14–17 + Tue 09–10 = 4 h.
        #expect(frt.business.count == 4)
        #expect(frt.business.medianMillis == 5_400_000)     // ⌈0.5·4⌉ = 2nd of 1.2M, 5.4M, 6.0M, 14.4M: the lower middle
        #expect(frt.business.p90Millis == 14_400_000)       // ⌈3.6⌉ = 4th
        #expect(frt.business.meanMillis == 6_750_000)       // 27_000_000 / 4
    }

    @Test func timeToOwnResolutionAndNextResponse() async throws {
        let speed = try await Week().metrics().speed
        // Time to own over the cohort: A 30 min, C 10 min, D 10 min (B was assigned before the period).
        #expect(speed.timeToOwn.calendar.count == 3)
        #expect(speed.timeToOwn.calendar.medianMillis == 600_000)
        #expect(speed.timeToOwn.calendar.p90Millis == 1_800_000)
        #expect(speed.timeToOwn.calendar.meanMillis == 1_000_000)
        #expect(speed.timeToOwn.business.count == 3)
        #expect(speed.timeToOwn.business.medianMillis == 600_000)
        // Resolution (last solve in the period, still resolved): A 3 h (closed since), E 3 h, D 6 h,
        // F 27 h (to its second solve), J 46 h.
        #expect(speed.resolution.calendar.count == 5)
        #expect(speed.resolution.calendar.medianMillis == 21_600_000)  // 3rd of 5
        #expect(speed.resolution.calendar.p90Millis == 165_600_000)    // ⌈4.5⌉ = 5th
        #expect(speed.resolution.calendar.meanMillis == 61_200_000)    // 306_000_000 / 5
        // Business: the pinned A (Mon 09–12, closed afterwards) and D (Tue 09–15).
        #expect(speed.resolution.business.count == 2)
        #expect(speed.resolution.business.medianMillis == 10_800_000)
        #expect(speed.resolution.business.p90Millis == 21_600_000)
        // Next response: F's customer message day 3 09:00, answered 10:00. G's run still waits.
        #expect(speed.nextResponse.calendar.count == 1)
        #expect(speed.nextResponse.calendar.medianMillis == 3_600_000)
        #expect(speed.nextResponse.business.count == 0)  // F has no policy
    }

    @Test func slaAttainmentPerClockKind() async throws {
        let sla = try await Week().metrics().sla
        // First response: achieved in the period A (10:40), B (09:30), D (09:20); breached C (deadline
        // day 0 16:00, answered late) and H (deadline day 3 15:00, still running). K's deadline is after the period.
        #expect(sla.clocks["firstResponse"]?.achieved == 3)
        #expect(sla.clocks["firstResponse"]?.breached == 2)
        #expect(sla.clocks["firstResponse"]?.attainment == 0.6)
        // Time to own: A, C, D in time; B's stopped before the period.
        #expect(sla.clocks["timeToOwn"]?.achieved == 3)
        #expect(sla.clocks["timeToOwn"]?.breached == 0)
        #expect(sla.clocks["timeToOwn"]?.attainment == 1)
        // Resolution: A (stopped when closed, day 1 08:00) and D in time; B (16 business hours from Fri
        // 16:00 = Tue 16:00) and C (from Mon 14:00 = Wed 14:00) breached, still running.
        #expect(sla.clocks["resolution"]?.achieved == 2)
        #expect(sla.clocks["resolution"]?.breached == 2)
        #expect(sla.clocks["resolution"]?.attainment == 0.5)
        // No pinned ticket had a next-response run.
        #expect(sla.clocks["nextResponse"] == nil)
        #expect(sla.overall.achieved == 8 && sla.overall.breached == 4)
        #expect(sla.overall.attainment == 8.0 / 12.0)
        // Tickets with a breach in the period: B, C, H; with a run achieved or breached: A, B, C, D, H.
        #expect(sla.breachRate.part == 3 && sla.breachRate.whole == 5)
        // Now: K past its warning (00:50) before its deadline (01:20); B and C resolution and H first
        // response running past their deadlines.
        #expect(sla.atRiskNow == 1)
        #expect(sla.breachedNow == 3)
    }

    @Test func slaFiguresFollowNowAndThePeriod() async throws {
        let week = try await Week()
        // At 01:30 K's deadline (01:20) has passed too: no longer at risk, breached now.
        let later = try await week.metrics(now: at(7, 1, 30)).sla
        #expect(later.atRiskNow == 0)
        #expect(later.breachedNow == 4)
        // The next week holds K's breach (deadline day 7 01:20, before now) and nothing achieved.
        let next = try await week.metrics(period: Period(from: t0 + 7 * day, to: t0 + 14 * day), now: at(7, 1, 30)).sla
        #expect(next.clocks["firstResponse"]?.breached == 1)
        #expect(next.clocks["firstResponse"]?.achieved == 0)
        #expect(next.overall.attainment == 0)
    }

    @Test func escalationRateAndItsSplitByTrigger() async throws {
        let escalation = try await Week().metrics().escalation
        // Cohort of 8; escalated: C (first-response breach), D (proactive rule), G (agent), H (first-response warning).
        #expect(escalation.rate.part == 4 && escalation.rate.whole == 8)
        #expect(escalation.rate.rate == 0.5)
        #expect(escalation.byTrigger == ["sla_breach": 1, "rule": 1, "manual": 1, "sla_warning": 1])
        // E was moved sideways; C was accepted at central, another site than its origin.
        #expect(escalation.transferRate.part == 1 && escalation.transferRate.rate == 0.125)
        #expect(escalation.crossSiteRate.part == 1 && escalation.crossSiteRate.rate == 0.125)
        // Highest level fired: C 3, D 3, H 2, the others (G's agent escalation fires no level) 0.
        #expect(escalation.maxLevel == ["0": 5, "2": 1, "3": 2])
        // Time to escalate: D 0, H 30 min, C 2 h, G 2 h.
        #expect(escalation.timeToEscalate.count == 4)
        #expect(escalation.timeToEscalate.medianMillis == 1_800_000)
        #expect(escalation.timeToEscalate.p90Millis == 7_200_000)
        #expect(escalation.timeToEscalate.meanMillis == 4_050_000)
        // C's and D's ladders ran out; C's last level was fired by north while central owned it.
        #expect(escalation.exhausted == 2)
        #expect(escalation.backstopFirings == 1)
    }

    @Test func handoffAcceptanceAndTimeouts() async throws {
        let handoffs = try await Week().metrics().escalation.handoffs
        // Requests: C level 2 (accepted after 30 min), D level 2 (level 3 fired before the rejection:
        // timed out), H level 2 (unanswered). G's escalation to its own site asks nobody to take it.
        #expect(handoffs.requested == 3)
        #expect(handoffs.accepted == 1)
        #expect(handoffs.rejected == 1)
        #expect(handoffs.timedOut == 1)
        #expect(handoffs.timeoutRate == 1.0 / 3.0)
        #expect(handoffs.acceptance.count == 1)
        #expect(handoffs.acceptance.medianMillis == 1_800_000)
    }

    @Test func firstContactResolutionReopensAndCSAT() async throws {
        let quality = try await Week().metrics().quality
        // Solved in the period: A (1 reply), J (none), D (escalated), E (transferred), F (3 replies, reopened).
        #expect(quality.firstContactResolution.part == 2 && quality.firstContactResolution.whole == 5)
        #expect(quality.firstContactResolution.rate == 0.4)
        // Zendesk: fewer than 2 replies and resolved now: A, J, D, E.
        #expect(quality.firstContactResolutionZendesk.part == 4 && quality.firstContactResolutionZendesk.rate == 0.8)
        // Reopened within 30 days of the first solve: F.
        #expect(quality.reopenRate.part == 1 && quality.reopenRate.rate == 0.2)
        // Answers in the period: A 5 (good), F 2; E's 7 is no score, J's 4 came after the period.
        #expect(quality.csat.part == 1 && quality.csat.whole == 2 && quality.csat.rate == 0.5)
    }

    @Test func filtersNarrowEveryFigure() async throws {
        let week = try await Week()
        let central = try await week.metrics(MetricFilter(site: "central"))
        #expect(central.created == 1)                                          // C
        #expect(central.backlog.total == 1)
        #expect(central.escalation.crossSiteRate.rate == 1)
        #expect(central.sla.clocks["firstResponse"]?.breached == 1)
        #expect(central.sla.clocks["firstResponse"]?.achieved == 0)
        let gold = try await week.metrics(MetricFilter(customerTier: "gold"))
        #expect(gold.created == 3)                                             // A, C, D
        #expect(gold.speed.firstResponse.calendar.count == 4)                  // A, B, C, D
        #expect(gold.speed.firstResponse.calendar.medianMillis == 6_000_000)   // 2nd of 1.2M, 6.0M, 72M, 235.8M
        let phone = try await week.metrics(MetricFilter(channel: "phone"))
        #expect(phone.solved == 1 && phone.quality.reopenRate.rate == 1)       // F
        let urgent = try await week.metrics(MetricFilter(priority: "urgent"))
        #expect(urgent.escalation.byTrigger == ["rule": 1])                    // D
        let tier3 = try await week.metrics(MetricFilter(tier: 3))
        #expect(tier3.created == 2)                                            // C, D
        let tier1 = try await week.metrics(MetricFilter(tier: 1))
        #expect(tier1.escalation.byTrigger == ["manual": 1])                   // G
    }

    @Test func thirtyDayResolutionGoal() async throws {
        let s = try Scenario()
        // Before the week: created day −1, solved day 0 (not in the cohort).
        let before = try s.open(at(-1, 10), "before")
        try s.status(before, "solved", at(0, 9))
        let g1 = try s.open(at(0, 10), "solved in 10 days")
        let g2 = try s.open(at(1, 10), "solved in exactly 30 days")
        let g3 = try s.open(at(2, 10), "solved in 31 days")
        let g4 = try s.open(at(3, 10), "solved, reopened, open")
        try s.open(at(4, 10), "never solved")
        try s.status(g4, "solved", at(5, 10))
        let g7 = try s.open(at(5, 11), "solved 1 ms late")
        try s.customerWrites(g4, at(6, 10))
        try s.status(g1, "solved", at(10, 10))
        try s.status(g2, "solved", at(31, 10))
        try s.status(g3, "solved", at(33, 10))
        try s.status(g7, "solved", at(35, 11) + 1)
        try await s.refresh(now: at(36, 0))
        let week = Period(from: t0, to: t0 + 7 * day)

        // Cohort g1–g7 minus `before`: 6. Met: g1 (10 d), g2 (30 d exactly). Not met: g3 (31 d),
        // g7 (30 d + 1 ms), g4 (open again), the never-solved one.
        let goal = try await s.metrics(week, now: at(36, 0)).quality.resolutionGoal30d
        #expect(goal.cohort == 6)
        #expect(goal.met == 2)
        #expect(goal.attainment == 2.0 / 6.0)
        // Open and older than 30 days at day 36 00:00: g4 (32 d 14 h), the never-solved one (31 d 14 h).
        #expect(goal.openOver30d == 2)
        // Final once now ≥ end of the week (day 7) + 30 days = day 37.
        #expect(goal.final == false)
        // At day 34 09:00 the never-solved one (day 4 10:00) is 1 h short of 30 days.
        #expect(try await s.metrics(week, now: at(34, 9)).quality.resolutionGoal30d.openOver30d == 1)
        #expect(try await s.metrics(week, now: at(37, 0) - 1).quality.resolutionGoal30d.final == false)
        #expect(try await s.metrics(week, now: at(37, 0)).quality.resolutionGoal30d.final == true)
    }

    @Test func aLaterChangeRederivesExactlyThatTicket() async throws {
        let week = try await Week()
        let index = try await MetricIndex(week.s.store)
        let before = try await facts(week.s.store)
        #expect(try await index.refresh(now: Week.now).derived == 0, "nothing is listed after a refresh")

        // H is solved at day 7 00:50 (after the week fixture's last write at 00:30).
        try week.s.status(week.h, "solved", at(7, 0, 50))
        #expect(try await index.listed() == [week.h])
        #expect(try await index.pending() == 1)
        #expect(try await index.refresh(now: Week.now).derived == 1)
        #expect(try await index.pending() == 0)

        let after = try await facts(week.s.store)
        #expect(Set(after.keys) == Set(before.keys))
        for (id, row) in before where id != week.h {
            #expect(after[id] == row, "ticket \(id) did not change")
        }
        #expect(after[week.h] != before[week.h])
        let h = try #require(after[week.h])
        #expect(h.status == "solved")
        #expect(h.isOpen == false)
        #expect(h.firstSolvedAt == at(7, 0, 50))

        // Backlog now loses H (a "new" ticket) and its breached first-response run stops.
        let m = try await week.metrics()
        #expect(m.backlog.total == 6)
        #expect(m.backlog.byStatus == ["open": 4, "new": 1, "pending_customer": 1])
        #expect(m.sla.breachedNow == 2)
        // The solve falls after the week: the week's figures that do not read `now` stay.
        #expect(m.solved == 5)
        #expect(m.sla.clocks["firstResponse"]?.breached == 2)
    }

    @Test func aNewConfigurationVersionRederivesEveryTicket() async throws {
        let s = try Scenario()
        let v1 = #"""
            {"calendars": [{"name": "office", "version": 1, "timezone": "UTC",
                            "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
                                       "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]}}],
             "policies": [{"name": "gold", "version": 1, "position": 10, "calendar": "office",
                           "clocks": {"firstResponse": {"targets": {"normal": "2h"}}}}]}
            """#
        let v2 = #"""
            {"policies": [{"name": "gold", "version": 2, "position": 10, "calendar": "office",
                           "clocks": {"firstResponse": {"targets": {"normal": "1h"}}}}]}
            """#
        try s.publish(v1, at(-1, 8))
        // X pins gold v2, which this replica does not hold yet (it arrives later): no targets until then.
        let x = try s.open(at(0, 9), "pinned ahead")
        try s.store.writeRecords(try #require(UUID(uuidString: x))) { _ in
            var pin = EscalationRecord(type: .slaApplied, at: at(0, 9))
            pin.policy = Pin(name: "gold", version: 2)
            pin.calendar = Pin(name: "office", version: 1)
            return [(TicketEvent(id: UUID(), kind: .escalation, actor: "tierline", visibility: .internal, body: pin.encoded()), [])]
        }
        let y = try s.open(at(0, 9, 1), "pinned v1", tier: "gold")
        let z = try s.open(at(0, 9, 2), "no policy")
        try s.reply(x, at(0, 9, 30))
        try s.reply(z, at(0, 10, 2))
        try s.reply(y, at(0, 12, 1))
        #expect(try await s.refresh(now: at(0, 18)) == 3)
        let day0 = Period(from: t0, to: t0 + day)

        // Y (v1: 2 h, deadline 11:01) answered at 12:01: breached; X measured but without a target.
        let first = try await s.metrics(day0, now: at(0, 18))
        #expect(first.sla.clocks["firstResponse"]?.achieved == 0)
        #expect(first.sla.clocks["firstResponse"]?.breached == 1)
        #expect(first.speed.firstResponse.business.count == 1)             // Y: 3 h
        #expect(first.speed.firstResponse.business.medianMillis == 10_800_000)
        #expect(first.speed.firstResponse.calendar.count == 3)             // X 30 min, Z 1 h, Y 3 h

        try s.publish(v2, at(0, 18))
        let index = try await MetricIndex(s.store)
        #expect(try await index.pending() == 3, "a new version lists every ticket")
        #expect(try await index.refresh(now: at(0, 18, 1)).derived == 3)
        #expect(try await index.pending() == 0)
        #expect(try await index.refresh(now: at(0, 18, 1)).derived == 0)

        // X now reads v2 (1 h): answered after 30 min, achieved; Y keeps its pinned v1 and its breach.
        let second = try await s.metrics(day0, now: at(0, 18, 1))
        #expect(second.sla.clocks["firstResponse"]?.achieved == 1)
        #expect(second.sla.clocks["firstResponse"]?.breached == 1)
        #expect(second.sla.clocks["firstResponse"]?.attainment == 0.5)
        #expect(second.speed.firstResponse.business.count == 2)            // X 30 min, Y 3 h
        #expect(second.speed.firstResponse.business.medianMillis == 1_800_000)
    }

    @Test func backlogSeriesAndEscalationTrendFromDailySums() async throws {
        let week = try await Week()
        let days = (2...8).map { String(format: "2026-03-%02d", $0) }
        let series = { (site: String?) async throws -> [SeriesPoint] in try await week.s.backlogSeries(Week.period, site: site) }
        // Open at the end of each day = created up to then − tickets whose last solve (still solved) fell
        // up to then. Before day 0: I, B, J created → 3.
        // Day 0: +A +C, −J −A → 3. Day 1: +D +E, −D −E → 3. Day 2: +F +G → 5. Day 3: +H, −F (last
        // solve day 3) → 5. Day 4: 5. Day 5: +L → 6. Day 6: 6.
        let all = try await series(nil)
        #expect(all.map(\.day) == days)
        #expect(all.map(\.value) == [3, 3, 5, 5, 5, 6, 6])
        // By owning site: C belongs to central now.
        #expect(try await series("north").map(\.value) == [2, 2, 4, 4, 4, 5, 5])
        #expect(try await series("central").map(\.value) == [1, 1, 1, 1, 1, 1, 1])

        // Weekly escalation rate of the creation cohorts of two weeks: Feb 23–Mar 1 created B and J, none
        // escalated; Mar 2–8 created 8, of which C, D, G, H escalated.
        let trend = try await FleetQueries(week.s.store).series(period: Period(from: t0 - 7 * day, to: t0 + 7 * day)).escalationRate
        #expect(trend.map(\.day) == ["2026-02-23", "2026-03-02"])
        #expect(trend.map(\.value) == [0, 0.5])
    }

    @Test func aMergedTicketLeavesTheBacklogAndItsSeries() async throws {
        let s = try Scenario()
        let x = try s.open(at(0, 10), "VPN drops")
        let y = try s.open(at(0, 11), "VPN drops again")
        try s.set(y, [(.mergedInto, .ticket(try #require(UUID(uuidString: x))))], at(1, 12))
        try await s.refresh(now: at(2, 0))
        let m = try await s.metrics(Period(from: at(0, 0), to: at(2, 0)), now: at(2, 0))
        // Both were created; only X is still open (Y is merged into it).
        #expect(m.created == 2)
        #expect(m.backlog.total == 1)
        #expect(m.backlog.byStatus == ["new": 1])
        // End of day 0: X and Y open → 2; end of day 1: Y merged at 12:00 → 1.
        let series = try await s.backlogSeries(Period(from: at(0, 0), to: at(2, 0)))
        #expect(series.map(\.value) == [2, 1])
    }

    @Test func fleetSummaryPerOwningSite() async throws {
        let week = try await Week()
        let queries = try await FleetQueries(week.s.store)
        let summary = try await queries.summary(period: Week.period, now: Week.now)
        #expect(summary.sites.map(\.site) == ["central", "north"])
        #expect(summary.pendingFacts == 0)
        let north = try #require(summary.sites.first { $0.site == "north" })
        let central = try #require(summary.sites.first { $0.site == "central" })
        // north owns A, B, D, E, F, G, H, I, J, K, L; central owns C.
        #expect(north.isLocal && !central.isLocal)
        #expect(north.backlog == 6)                   // B, G, H, I, K, L
        #expect(north.created == 7 && north.solved == 5)
        #expect(north.escalationRate == 3.0 / 7.0)    // D, G, H of A, D, E, F, G, H, L
        #expect(north.atRiskNow == 1 && north.breachedNow == 2)   // K; B resolution, H first response
        // Achieved: A ×3, B first response, D ×3; breached: B resolution, H first response.
        #expect(north.slaAttainment == 7.0 / 9.0)
        // First responses at north: 0.6M, 1.2M, 1.8M, 6.0M, 7.2M, 235.8M → 3rd (the site's metric set).
        #expect(try await week.metrics(MetricFilter(site: "north")).speed.firstResponse.calendar.medianMillis == 1_800_000)
        #expect(central.backlog == 1 && central.created == 1 && central.solved == 0)
        #expect(central.escalationRate == 1)
        #expect(central.breachedNow == 1 && central.atRiskNow == 0)
        #expect(central.slaAttainment == 1.0 / 3.0)   // C: time to own achieved; first response, resolution breached
        #expect(try await week.metrics(MetricFilter(site: "central")).speed.firstResponse.calendar.medianMillis == 72_000_000)
        #expect(summary.totals.created == 8 && summary.totals.solved == 5 && summary.totals.backlog == 7)
        #expect(summary.totals.escalationRate == 0.5)
        #expect(summary.totals.slaAttainment == 8.0 / 12.0)
        #expect(summary.totals.atRiskNow == 1 && summary.totals.breachedNow == 3)

        let onlyCentral = try await queries.summary(period: Week.period, now: Week.now, site: "central")
        #expect(onlyCentral.sites.map(\.site) == ["central"])
        #expect(onlyCentral.totals.slaAttainment == 1.0 / 3.0)
        #expect(onlyCentral.totals.created == 1)
    }

    @Test func nearestRankQuantiles() {
        // n = 6: median ⌈3⌉ = 3rd (the lower middle), p90 ⌈5.4⌉ = 6th, mean 21 / 6 = 3 (truncated).
        let six = DurationStats([6, 1, 5, 2, 4, 3])
        #expect(six.count == 6 && six.medianMillis == 3 && six.p90Millis == 6 && six.meanMillis == 3)
        // n = 10: median 5th, p90 ⌈9⌉ = 9th.
        let ten = DurationStats(Array(1...10).map { Int64($0) * 10 })
        #expect(ten.medianMillis == 50 && ten.p90Millis == 90 && ten.meanMillis == 55)
        let one = DurationStats([7])
        #expect(one.medianMillis == 7 && one.p90Millis == 7 && one.meanMillis == 7)
        let none = DurationStats([])
        #expect(none.count == 0 && none.medianMillis == nil && none.p90Millis == nil && none.meanMillis == nil)
    }
}

/// Every ticket's stored facts, by ticket id, read back as the dashboard's records.
private func facts(_ store: TicketDatabase) async throws -> [String: TicketMetricRow] {
    try await store.writer.read { db in
        var out = Dictionary(uniqueKeysWithValues: try TicketMetricRow.fetchAll(db).map { ($0.id, $0) })
        for clock in try ClockRow.order(ClockRow.Columns.ticket, Column("kind"), Column("cycle")).fetchAll(db) { out[clock.ticket]?.clocks.append(clock) }
        for handoff in try HandoffRow.order(HandoffRow.Columns.ticket, Column("id")).fetchAll(db) { out[handoff.ticket]?.handoffs.append(handoff) }
        return out
    }
}
