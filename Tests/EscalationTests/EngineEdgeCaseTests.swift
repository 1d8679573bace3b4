@testable import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel

// Edge cases found in review: replicas with different timing or knowledge, reopened tickets,
// missing versions, paused ladders, and durations that would overflow.

private let t0: Int64 = 1_780_000_000_000
private func at(_ minutes: Int64) -> Int64 { t0 + minutes * 60_000 }

private let rLadder = LadderDocument(
    name: "ops", version: 1, loops: 0, ackTimeout: "10m", calendar: "24x7", pauseWhen: ["pending_customer"],
    levels: [LevelDocument(delay: "5m", targets: ["lead@north"], assignment: .notify),
             LevelDocument(delay: "10m", targets: ["tier:2"], assignment: .transferSite)])
private let rMatrix = MatrixDocument(version: 1, grace: "2m", entries: [MatrixEntry(site: "*", category: "*", tier: 2, target: "tier2@central")])

private func policy(_ clocks: ClocksDocument) -> PolicyDocument {
    PolicyDocument(name: "p", version: 1, position: 1, calendar: "24x7", ladder: "ops", clocks: clocks)
}

/// A ticket created at minute 0 at north with `library`'s policy pinned.
private func ticket(_ library: ConfigLibrary) -> (SimSite, UUID) { pinnedTicket(library, created: at(0)) }

private func write(_ site: inout SimSite, minute: Int64, _ changes: [Change]) {
    site.wall = UInt64(at(minute)) - 1
    site.write(changes)
}

private func reply(_ id: UUID, _ n: UInt8) -> Change {
    Change(.ticket(id), .event(TicketEvent(id: eventID(n), kind: .agentReply, actor: "a", visibility: .public, body: "on it")))
}

/// Writes what is due the way EscalationDesk.tick/writeRecords does (one block, last set per field wins).
private func tick(_ site: inout SimSite, _ id: UUID, _ library: ConfigLibrary, now: Int64) -> [DerivedEffect] {
    let held = Set(site.view(id).state.events.map(\.event.id))
    let due = EscalationEngine.evaluate(site.view(id).state, library: library, now: now).due.filter { !held.contains($0.id) }
    guard !due.isEmpty else { return [] }
    site.wall = max(site.wall, UInt64(now))
    site.write(due.flatMap { [Change(.ticket(id), .event($0.event))] + $0.operations.map { Change(.ticket(id), $0) } }
        .reduce(into: [Change]()) { out, change in
            if case .set(let field, _) = change.operation { out.removeAll { if case .set(field, _) = $0.operation { true } else { false } } }
            out.append(change)
        })
    return due
}

@Suite struct EngineEdgeCases {
    /// F1: a customer message that reopens a solved ticket starts a next-response cycle that is
    /// stopped at its own start (TicketFacts.resolved(after:) looks at `at < from`).
    @Test func aCustomerMessageThatReopensASolvedTicketGetsANextResponseClock() throws {
        let library = ConfigLibrary([.ladder(rLadder), .matrix(rMatrix), .policy(policy(ClocksDocument(
            nextResponse: ClockDocument(targets: ["normal": "30m"]))))])
        var (north, id) = ticket(library)
        write(&north, minute: 1, [reply(id, 1)])
        write(&north, minute: 5, [set(id, .status, .text("solved"))])
        write(&north, minute: 10, [message(id, eventID(2))])
        #expect(north.view(id).state.baseStatus == .open)
        let clock = try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(100)).clocks.first { $0.kind == .nextResponse })
        #expect(clock.state == .breached, "nobody answered the reopening message for 90 minutes; state is \(clock.state)")
    }

    /// F2: the merge rule reopens a ticket when the solver had not seen a customer message, but
    /// TicketFacts.timeline orders by HLC time and keeps it solved: clocks freeze, ladders end.
    @Test func aTicketReopenedByAnUnseenMessageKeepsItsResolutionClockRunning() throws {
        let library = ConfigLibrary([.ladder(rLadder), .matrix(rMatrix), .policy(policy(ClocksDocument(
            resolution: ClockDocument(targets: ["normal": "1h"]))))])
        var (north, id) = ticket(library)
        var central = SimSite("central")
        central.wall = north.wall
        central.sync(from: north)
        write(&central, minute: 10, [message(id, eventID(2))])   // intake at central
        write(&north, minute: 20, [set(id, .status, .text("solved"))]) // north, not yet synced
        north.sync(from: central)
        #expect(north.view(id).state.baseStatus == .open)
        let clock = try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(200)).clocks.first { $0.kind == .resolution })
        #expect(clock.state == .breached, "the ticket is open; state is \(clock.state)")
    }

    /// F3: raise_priority on warning changes the target the breach deadline is computed from, so the
    /// breach record (same id) has a different `at` depending on when ticks happened.
    @Test func breachRecordDoesNotDependOnTickTiming() throws {
        let library = ConfigLibrary([.ladder(rLadder), .matrix(rMatrix), .policy(policy(ClocksDocument(
            firstResponse: ClockDocument(targets: ["normal": "60m", "high": "20m"], warnAt: 50, onWarn: ["raise_priority"], onBreach: ["raise_priority"]))))])
        var (owner, id) = ticket(library)
        var backstop = SimSite("central")
        backstop.wall = owner.wall
        backstop.sync(from: owner)
        // The owner ticks every minute; the coordinator (backstop) once, late.
        var ownerRecords: [DerivedEffect] = []
        for minute in stride(from: Int64(1), through: 70, by: 1) { ownerRecords += tick(&owner, id, library, now: at(minute)) }
        let late = tick(&backstop, id, library, now: at(70))
        let a = try #require(ownerRecords.first { $0.record.type == .slaBreach })
        let b = try #require(late.first { $0.record.type == .slaBreach })
        #expect(a.id == b.id)
        #expect(a.record.at == b.record.at, "owner: breach at minute \((a.record.at - t0) / 60_000); backstop: minute \((b.record.at - t0) / 60_000)")
        #expect(a.record.at >= (ownerRecords.first { $0.record.type == .slaWarning }?.record.at ?? 0), "a breach dated before its warning")
        #expect(owner.view(id).state.priority == backstop.view(id).state.priority,
                "owner ends \(owner.view(id).state.priority), backstop \(backstop.view(id).state.priority)")
    }

    /// F4: a level's body (targets, assignment, toSite) is resolved from the owning site at
    /// evaluation time, so the same level id gets different bodies on either side of a handoff.
    @Test func aLevelBodyDoesNotDependOnTheCurrentOwner() throws {
        let library = ConfigLibrary([.ladder(rLadder), .matrix(rMatrix), .policy(policy(ClocksDocument(
            resolution: ClockDocument(targets: ["normal": "10h"]))))])
        var (north, id) = ticket(library)
        var start = EscalationRecord(type: .escalationStarted, at: at(0))
        start.ladder = rLadder.pinValue
        start.ladderCalendar = Pin(name: "24x7", version: 1)
        start.matrix = Pin(name: "matrix", version: 1)
        write(&north, minute: 0, [Change(.ticket(id), .event(TicketEvent(id: eventID(101), kind: .escalation, actor: "a", visibility: .internal, body: start.encoded())))])
        var central = SimSite("central")
        central.wall = north.wall
        central.sync(from: north)
        // Central takes the ticket (e.g. accepts an agent's handoff) while north is cut off.
        write(&central, minute: 12, [set(id, .owner, .owner(epoch: 1, site: central.site))])
        let n = try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(16)).due.first { $0.record.level == 2 })
        let c = try #require(EscalationEngine.evaluate(central.view(id).state, library: library, now: at(16)).due.first { $0.record.level == 2 })
        #expect(n.id == c.id)
        #expect(n.record.encoded() == c.record.encoded(), "north: \(n.record.encoded())\ncentral: \(c.record.encoded())")
    }

    /// F5: a ladder whose pinned calendar this replica cannot build runs on 24x7 instead of waiting.
    @Test func aMissingLadderCalendarDoesNotFallBackTo24x7() throws {
        var ladder = rLadder
        ladder.calendar = "biz"
        let library = ConfigLibrary([.ladder(ladder), .matrix(rMatrix), .policy(policy(ClocksDocument(resolution: ClockDocument(targets: ["normal": "10h"]))))])
        let biz = CalendarDocument(name: "biz", version: 1, timezone: "UTC", weekly: ["mon": ["09:00-17:00"]])
        var (north, id) = ticket(ConfigLibrary([.calendar(biz), .ladder(ladder), .matrix(rMatrix), .policy(policy(ClocksDocument(resolution: ClockDocument(targets: ["normal": "10h"]))))]))
        var start = EscalationRecord(type: .escalationStarted, at: at(0))
        start.ladder = ladder.pinValue
        start.ladderCalendar = Pin(name: "biz", version: 1) // not in this replica's library
        write(&north, minute: 0, [Change(.ticket(id), .event(TicketEvent(id: eventID(101), kind: .escalation, actor: "a", visibility: .internal, body: start.encoded())))])
        #expect(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(60)).due.filter { $0.record.type == .levelFired }.isEmpty)
    }

    /// F6: a pause status is reported as "held (acknowledged)" and the cycle cannot be acknowledged.
    @Test func aPausedLadderIsNotReportedAsAcknowledged() throws {
        let library = ConfigLibrary([.ladder(rLadder), .matrix(rMatrix), .policy(policy(ClocksDocument(resolution: ClockDocument(targets: ["normal": "10h"]))))])
        var (north, id) = ticket(library)
        var start = EscalationRecord(type: .escalationStarted, at: at(0))
        start.ladder = rLadder.pinValue
        write(&north, minute: 0, [Change(.ticket(id), .event(TicketEvent(id: eventID(101), kind: .escalation, actor: "a", visibility: .internal, body: start.encoded())))])
        write(&north, minute: 2, [set(id, .status, .text("pending_customer"))])
        let cycle = try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(30)).cycles.first)
        #expect(cycle.ended == nil, "ended: \(cycle.ended ?? "nil")")
    }

    /// F7: a duration the validator accepts makes `target * warnAt` overflow: evaluate traps.
    @Test func validatedDurationsDoNotOverflow() throws {
        let huge = String(repeating: "9999999d", count: 108)
        let file = #"{"policies": [{"name": "p", "version": 1, "position": 1, "calendar": "24x7", "clocks": {"resolution": {"targets": {"normal": "\#(huge)"}, "warnAt": 99}}}]}"#
        let accepted = try? ConfigReader.read(Data(file.utf8), file: "f.json", published: ConfigLibrary())
        #expect(accepted == nil, "a target beyond ten years is refused")
        #expect(DurationText.millis(huge) == nil)
        #expect(DurationText.millis("3650d") == DurationText.maximum)
        #expect(DurationText.millis("3651d") == nil)
    }

    @Test func evaluatingAnAcceptedPolicyDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let huge = String(repeating: "9999999d", count: 108)
            let library = ConfigLibrary([.policy(PolicyDocument(name: "p", version: 1, position: 1, calendar: "24x7",
                clocks: ClocksDocument(resolution: ClockDocument(targets: ["normal": huge], warnAt: 99))))])
            var site = SimSite("north")
            site.wall = 1_780_000_000_000
            let id = ticketID(1)
            var changes = create(id, number: 1)
            // A library built from such a document leaves it out: no policy applies.
            guard let pin = library.apply(to: MatchFacts(priority: .normal), at: 1_780_000_000_000) else { return }
            changes.append(Change(.ticket(id), .event(TicketEvent(id: eventID(100), kind: .escalation, actor: "tierline", visibility: .internal,
                body: pin.encoded()))))
            site.write(changes)
            _ = EscalationEngine.evaluate(site.view(id).state, library: library, now: 1_780_000_100_000)
        }
    }

    @Test func aLongDurationIsRejectedNotTrapped() async {
        await #expect(processExitsWith: .success) {
            _ = DurationText.millis(String(repeating: "9999999d", count: 10_700))
        }
    }
}

private extension LadderDocument {
    var pinValue: Pin { Pin(name: name, version: version) }
}
