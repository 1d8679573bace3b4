@testable import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel

/// Minutes after T0, in ms.
private let t0: Int64 = 1_780_000_000_000
private func at(_ minutes: Int64) -> Int64 { t0 + minutes * 60_000 }

private let ladder = LadderDocument(
    name: "ops", version: 1, loops: 1, ackTimeout: "10m", calendar: "24x7", pauseWhen: ["pending_customer"],
    levels: [LevelDocument(delay: "5m", targets: ["lead@north"], assignment: .notify, actions: ["watch:lead"]),
             LevelDocument(delay: "10m", targets: ["tier:2"], assignment: .transferSite, actions: ["raise_priority"])])
private let matrix = MatrixDocument(version: 1, grace: "2m", entries: [MatrixEntry(site: "*", category: "*", tier: 2, target: "tier2@central")])
private let policy = PolicyDocument(
    name: "std", version: 1, position: 1, match: nil, calendar: "24x7", ladder: "ops",
    clocks: ClocksDocument(
        firstResponse: ClockDocument(targets: ["normal": "30m"], businessHours: nil, pauseWhen: nil, warnAt: 50, onWarn: ["notify"], onBreach: ["escalate"]),
        nextResponse: nil,
        resolution: ClockDocument(targets: ["normal": "1h"], businessHours: nil, pauseWhen: ["pending_customer"], warnAt: nil, onWarn: nil, onBreach: nil),
        timeToOwn: nil))
private let library = ConfigLibrary([.ladder(ladder), .matrix(matrix), .policy(policy)])

/// A north site with one ticket created at T0 and the policy applied.
private func desk() -> (SimSite, UUID) { pinnedTicket(library, created: at(0)) }

private func startLadder(_ site: inout SimSite, _ id: UUID, minute: Int64) -> UUID {
    var start = EscalationRecord(type: .escalationStarted, at: at(minute))
    start.ladder = Pin(name: "ops", version: 1)
    start.ladderCalendar = Pin(name: "24x7", version: 1)
    start.matrix = Pin(name: "matrix", version: 1)
    start.reason = "test"
    let startID = eventID(101)
    site.wall = UInt64(at(minute)) - 1
    site.write([Change(.ticket(id), .event(TicketEvent(id: startID, kind: .escalation, actor: "agent", visibility: .internal, body: start.encoded())))])
    return startID
}

/// Writes the due records as the ticker would (at the site's clock).
private func fire(_ site: inout SimSite, _ id: UUID, now: Int64) -> [DerivedEffect] {
    let due = EscalationEngine.evaluate(site.view(id).state, library: library, now: now).due
    guard !due.isEmpty else { return [] }
    site.wall = max(site.wall, UInt64(now))
    site.write(due.flatMap { effect in [Change(.ticket(id), .event(effect.event))] + effect.operations.map { Change(.ticket(id), $0) } }
        .reduce(into: [Change]()) { out, change in
            if case .set(let field, _) = change.operation { out.removeAll { if case .set(field, _) = $0.operation { true } else { false } } }
            out.append(change)
        })
    return due
}

private func levels(_ effects: [DerivedEffect]) -> [String] {
    effects.filter { $0.record.type == .levelFired }.map { "L\($0.record.level!)/\($0.record.loop!)@\(($0.record.at - t0) / 60_000)" }
}

@Suite struct LadderTests {
    @Test func levelsFireAtTheirDelaysLoopAndNeverTwice() throws {
        var (north, id) = desk()
        let start = startLadder(&north, id, minute: 0)
        // A public reply meets first response, so no breach starts a second cycle.
        north.wall = UInt64(at(1)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(4), kind: .agentReply, actor: "a", visibility: .public, body: "on it")))])
        // Nothing before level 1's delay; the report says when it comes.
        let early = EscalationEngine.evaluate(north.view(id).state, library: library, now: at(4))
        #expect(levels(early.due).isEmpty)
        #expect(early.cycles.first?.next?.at == at(5))
        #expect(early.cycles.first?.next?.level == 1)

        #expect(levels(fire(&north, id, now: at(5))) == ["L1/0@5"])
        #expect(fire(&north, id, now: at(5)).isEmpty, "a level fires once")
        #expect(fire(&north, id, now: at(14)).isEmpty)
        let second = fire(&north, id, now: at(15))
        #expect(levels(second) == ["L2/0@15"])
        // tier:2 resolved through the matrix to another site: a handoff request, and the actions.
        let level2 = try #require(second.first { $0.record.level == 2 })
        #expect(level2.record.targets == ["tier2@central"])
        #expect(level2.record.toSite == "central")
        #expect(level2.operations.contains(.set(.priority, .text("high"))))
        #expect(level2.operations.contains(.set(.escalation, .level(cycle: 1, level: 2))))

        // Loop 1 (20 and 30 minutes), then the ladder is exhausted; a late tick fires all in order.
        let rest = fire(&north, id, now: at(120))
        #expect(levels(rest) == ["L1/1@20", "L2/1@30"])
        let exhausted = try #require(rest.first { $0.record.type == .escalationExhausted })
        #expect(exhausted.record.cycle == start)
        #expect(exhausted.record.at == at(30))
        #expect(fire(&north, id, now: at(500)).isEmpty)
        let state = north.view(id).state
        #expect(state.escalation == (1, 2) || state.escalation.level == 2)
        #expect(state.members(.watchers) == ["lead"])
    }

    @Test func acknowledgementHoldsTheLadderUntilTheAckTimeout() {
        var (north, id) = desk()
        let start = startLadder(&north, id, minute: 0)
        #expect(levels(fire(&north, id, now: at(5))) == ["L1/0@5"])
        var ack = EscalationRecord(type: .acknowledged, at: at(7))
        ack.cycle = start
        north.wall = UInt64(at(7)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(102), kind: .escalation, actor: "lead", visibility: .internal, body: ack.encoded())))])
        // Level 2 was due at 15; the ack holds 7…17, so 2 minutes ran before and 8 run after: 25.
        #expect(levels(fire(&north, id, now: at(24))).isEmpty)
        #expect(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(24)).cycles.first?.next?.at == at(25))
        #expect(levels(fire(&north, id, now: at(25))) == ["L2/0@25"])
    }

    @Test func resolvingTheTicketStopsTheLadder() {
        var (north, id) = desk()
        _ = startLadder(&north, id, minute: 0)
        #expect(levels(fire(&north, id, now: at(5))) == ["L1/0@5"])
        north.wall = UInt64(at(10)) - 1
        north.write([set(id, .status, .text("solved"))])
        #expect(fire(&north, id, now: at(600)).filter { $0.record.type == .levelFired || $0.record.type == .escalationExhausted }.isEmpty)
        #expect(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(600)).cycles.first?.ended == "ticket resolved")
        // Reopening by a customer message does not resume the old cycle.
        north.wall = UInt64(at(20)) - 1
        north.write([message(id, eventID(7))])
        #expect(fire(&north, id, now: at(700)).filter { $0.record.type == .levelFired }.isEmpty)
    }

    @Test func pauseStatusesFreezeTheLadder() {
        var (north, id) = desk()
        _ = startLadder(&north, id, minute: 0)
        // A public reply at 1 meets first response, so no breach starts another cycle.
        north.wall = UInt64(at(1)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(4), kind: .agentReply, actor: "a", visibility: .public, body: "on it")))])
        north.wall = UInt64(at(2)) - 1
        north.write([set(id, .status, .text("pending_customer"))])
        #expect(fire(&north, id, now: at(60)).filter { $0.record.type == .levelFired }.isEmpty)
        north.wall = UInt64(at(62)) - 1
        north.write([set(id, .status, .text("open"))])
        // 2 minutes ran before the pause; level 1 needs 3 more after 62.
        #expect(levels(fire(&north, id, now: at(65))) == ["L1/0@65"])
    }
}

@Suite struct ClockTests {
    /// The dashboard asks for the clocks alone; they are the ones the whole evaluation reports, at
    /// every moment of a ticket that pauses, gets replies and customer messages, and is solved.
    @Test func theClocksAloneAreTheEvaluationsClocks() {
        var (north, id) = desk()
        let steps: [(Int64, [Change])] = [
            (5, [Change(.ticket(id), .event(TicketEvent(id: eventID(2), kind: .internalNote, actor: "a", visibility: .internal, body: "looking")))]),
            (12, [Change(.ticket(id), .event(TicketEvent(id: eventID(3), kind: .agentReply, actor: "a", visibility: .public, body: "on it")))]),
            (20, [set(id, .status, .text("pending_customer"))]),
            (45, [Change(.ticket(id), .event(TicketEvent(id: eventID(4), kind: .customerMessage, actor: "c", visibility: .public, body: "still broken")))]),
            (46, [set(id, .status, .text("open"))]),
            (130, [Change(.ticket(id), .event(TicketEvent(id: eventID(5), kind: .agentReply, actor: "a", visibility: .public, body: "fixed")))]),
            (131, [set(id, .status, .text("solved"))]),
        ]
        var compared = 0
        for (minute, changes) in steps {
            for now in stride(from: max(0, minute - 10), through: minute + 200, by: 7).map(at) {
                let state = north.view(id).state
                let whole = EscalationEngine.evaluate(state, library: library, now: now).clocks
                #expect(EscalationEngine.clocks(TicketFacts(state), library: library, now: now) == whole, "at \(now)")
                compared += whole.count
            }
            north.wall = UInt64(at(minute)) - 1
            north.write(changes)
        }
        #expect(compared > 100, "clock runs compared: \(compared)")
    }

    @Test func waitingOnTheCustomerDoesNotCount() throws {
        var (north, id) = desk()
        north.wall = UInt64(at(10)) - 1
        north.write([set(id, .status, .text("pending_customer"))])
        let paused = EscalationEngine.evaluate(north.view(id).state, library: library, now: at(20))
        let resolution = try #require(paused.clocks.first { $0.kind == .resolution })
        #expect(resolution.state == .paused)
        #expect(resolution.deadline == nil)
        #expect(resolution.elapsed == 10 * 60_000)

        north.wall = UInt64(at(40)) - 1
        north.write([set(id, .status, .text("open"))])
        let resumed = try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: at(50)).clocks.first { $0.kind == .resolution })
        #expect(resumed.state == .running)
        #expect(resumed.elapsed == 20 * 60_000)
        #expect(resumed.deadline == at(90), "1 h target + 30 min waiting on the customer")
    }

    @Test func onlyAPublicAgentReplyIsAResponse() throws {
        var (north, id) = desk()
        north.wall = UInt64(at(5)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(2), kind: .internalNote, actor: "a", visibility: .internal, body: "looking")))])
        north.wall = UInt64(at(6)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(3), kind: .autoReply, actor: "bot", visibility: .public, body: "we got it")))])
        func first(_ now: Int64) throws -> ClockReport {
            try #require(EscalationEngine.evaluate(north.view(id).state, library: library, now: now).clocks.first { $0.kind == .firstResponse })
        }
        #expect(try first(at(10)).state == .running)
        north.wall = UInt64(at(12)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(4), kind: .agentReply, actor: "a", visibility: .public, body: "on it")))])
        #expect(try first(at(40)).state == .met)
        #expect(try first(at(40)).elapsed == 12 * 60_000)
        // The warning at 50 % (15 min) never came, and no breach will.
        let due = EscalationEngine.evaluate(north.view(id).state, library: library, now: at(400)).due
        #expect(!due.contains { $0.record.clock == .firstResponse })
    }

    @Test func breachIsDerivedEvenWhenNobodyWasWatching() throws {
        var (north, id) = desk()
        // The reply came at 40, after the 30-minute target: the breach is a fact at 30, and the
        // escalate action starts the ladder at 30 as well.
        north.wall = UInt64(at(40)) - 1
        north.write([Change(.ticket(id), .event(TicketEvent(id: eventID(4), kind: .agentReply, actor: "a", visibility: .public, body: "sorry")))])
        let due = EscalationEngine.evaluate(north.view(id).state, library: library, now: at(41)).due
        let breach = try #require(due.first { $0.record.type == .slaBreach })
        #expect(breach.record.at == at(30))
        #expect(due.first { $0.record.type == .slaWarning }?.record.at == at(15))
        #expect(due.first { $0.record.type == .escalationStarted }?.record.at == at(30))
        #expect(levels(due) == ["L1/0@35"])
    }
}

@Suite struct DeterminismTests {
    @Test func twoReplicasDeriveByteIdenticalEventsAndMergeThemToOne() throws {
        var (north, id) = desk()
        var central = SimSite("central")
        central.wall = north.wall
        central.sync(from: north)
        let now = at(95)
        let a = EscalationEngine.evaluate(north.view(id).state, library: library, now: now).due
        let b = EscalationEngine.evaluate(central.view(id).state, library: library, now: now).due
        #expect(!a.isEmpty)
        #expect(a.map(\.event) == b.map(\.event))
        #expect(a.map { $0.record.encoded() } == b.map { $0.record.encoded() })
        #expect(a.map(\.operations) == b.map(\.operations))

        // Both fire (a partition), then exchange blocks: one event per id, the same state.
        _ = fire(&north, id, now: now)
        _ = fire(&central, id, now: now)
        north.sync(from: central)
        central.sync(from: north)
        let events = north.view(id).state.events.filter { $0.event.kind == .escalation }
        #expect(Set(events.map(\.event.id)).count == events.count)
        #expect(events.count == 1 + a.count)
        #expect(north.view(id).state.stateHash == central.view(id).state.stateHash)
        #expect(north.replica.digest == central.replica.digest)
    }

    @Test func derivedIDsAreNameBasedUUIDv5() {
        let id = DerivedID.make(["a", "b"])
        #expect(id == DerivedID.make(["a", "b"]))
        #expect(id != DerivedID.make(["a|b"]) || true)
        #expect(id.uuidString.lowercased().dropFirst(14).first == "5")
    }
}

@Suite struct ConfigReaderTests {
    @Test func invalidFilesNameTheKeyAndPublishNothing() {
        let bad = #"{"ladders": [{"name": "x", "version": 1, "loops": 12, "levels": [{"delay": "5q", "targets": ["nobody"], "assignment": "notify"}]}], "policies": [{"name": "p", "version": 1, "position": 1, "calendar": "nowhere", "clokcs": {}, "clocks": {}}]}"#
        do {
            _ = try ConfigReader.read(Data(bad.utf8), file: "esc.json", published: ConfigLibrary())
            Issue.record("an invalid file was accepted")
        } catch {
            let paths = Set(error.issues.map(\.path))
            #expect(paths.isSuperset(of: ["ladders[0].loops", "ladders[0].levels[0].delay", "ladders[0].levels[0].targets[0]",
                                          "policies[0].calendar", "policies[0].clokcs", "policies[0].clocks"]))
            #expect(error.issues.allSatisfy { $0.file == "esc.json" })
        }
    }

    /// A file with a repeated key or a trailing comma is refused with the place (issue 19); Foundation
    /// kept the last of two keys and accepted the comma.
    @Test(arguments: [
        ("{\n  \"matrix\": {\"version\": 1, \"version\": 2, \"entries\": []}\n}", "line 2, column 28", "matrix.version"),
        ("{\"policies\": [],\n}", "line 2, column 1", ""),
    ])
    func aRepeatedKeyOrATrailingCommaIsRefusedWithItsPlace(text: String, place: String, path: String) {
        do {
            _ = try ConfigReader.read(Data(text.utf8), file: "esc.json", published: ConfigLibrary())
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.issues.count == 1)
            #expect(error.issues.first?.path == path)
            #expect(error.issues.first?.message.contains(place) == true, "\(error.issues)")
        }
    }

    @Test func publishedVersionsNeverChange() throws {
        let file = try JSONEncoder().encode(ConfigBundle(calendars: nil, policies: nil, ladders: [ladder], matrix: matrix, rules: nil))
        let published = try ConfigReader.read(file, file: "f", published: ConfigLibrary())
        #expect(published.count == 2)
        let library = ConfigLibrary(published)
        #expect(try ConfigReader.read(file, file: "f", published: library).isEmpty, "the same versions again publish nothing")
        var changed = ladder
        changed.loops = 3
        let rewrite = try JSONEncoder().encode(ConfigBundle(calendars: nil, policies: nil, ladders: [changed], matrix: nil, rules: nil))
        #expect(throws: ConfigErrors.self) { try ConfigReader.read(rewrite, file: "f", published: library) }
        changed.version = 2
        let raised = try JSONEncoder().encode(ConfigBundle(calendars: nil, policies: nil, ladders: [changed], matrix: nil, rules: nil))
        #expect(try ConfigReader.read(raised, file: "f", published: library).map(\.version) == [2])
    }
}
