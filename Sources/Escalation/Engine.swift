import Foundation
import TicketModel

/// Where one SLA clock stands at a moment.
public struct ClockReport: Sendable, Hashable {
    public enum State: String, Sendable {
        case running, paused, met, breached
    }
    public var kind: ClockKind
    public var cycle: Int
    public var target: Int64
    public var businessHours: Bool
    public var start: Int64
    /// When the target is (or was) reached, assuming no further pause; `nil` while paused or stopped.
    public var deadline: Int64?
    public var warnAt: Int64?
    /// Counted (business, unpaused) time so far; once the run stopped, its whole counted time.
    public var elapsed: Int64
    public var state: State
    /// When the run stopped for good (the response, the resolution), if it did.
    public var stop: Int64?

    /// Whether this run is over and its deadline was kept: stopped before any deadline was reached.
    public var isAchieved: Bool { stop != nil && (deadline.map { $0 > stop! } ?? true) }
}

/// Where one ladder cycle stands.
public struct CycleReport: Sendable, Hashable {
    public var start: StoredRecord
    public var ordinal: Int
    public var ladder: Pin
    /// The last level fired: (level, loop).
    public var fired: (level: Int, loop: Int)?
    /// When the next level fires, if the ladder still runs.
    public var next: (at: Int64, level: Int, loop: Int)?
    public var ended: String?

    public static func == (a: CycleReport, b: CycleReport) -> Bool {
        a.start == b.start && a.ordinal == b.ordinal && a.ladder == b.ladder && a.fired?.level == b.fired?.level
            && a.fired?.loop == b.fired?.loop && a.next?.at == b.next?.at && a.ended == b.ended
    }
    public func hash(into h: inout Hasher) { h.combine(start) }
}

/// A record that is due, and what it does to the ticket.
public struct DerivedEffect: Sendable, Hashable {
    public var id: UUID
    public var record: EscalationRecord
    /// Changes written with the record: priority, group, watchers, tags, the escalation register.
    public var operations: [TicketModel.Operation]

    /// The event that carries the record: identical on every replica that derives it.
    public var event: TicketEvent {
        TicketEvent(id: id, kind: .escalation, actor: "tierline", visibility: .internal, body: record.encoded())
    }
}

/// A record with the event id it is (or will be) stored under.
protocol IdentifiedRecord {
    var id: UUID { get }
    var record: EscalationRecord { get }
}

extension StoredRecord: IdentifiedRecord {}
extension DerivedEffect: IdentifiedRecord {}

extension Sequence where Element: IdentifiedRecord {
    /// Oldest first; records of one moment in the order of their ids' text, so every replica
    /// orders them alike.
    func inRecordOrder() -> [Element] {
        sorted { $0.record.at != $1.record.at ? $0.record.at < $1.record.at : $0.id.textPrecedes($1.id) }
    }
}

/// Everything the escalation rules say about one ticket at one moment.
public struct Evaluation: Sendable {
    public var pin: EscalationRecord?
    public var clocks: [ClockReport]
    public var cycles: [CycleReport]
    /// Records due by now and not yet in the ticket's log, oldest first.
    public var due: [DerivedEffect]
    /// Handoff requests nobody has answered yet.
    public var pendingHandoffs: [StoredRecord]
    /// The next time something becomes due, if any.
    public var nextDue: Int64?
}

/// The SLA and ladder rules: a pure function of (ticket, pinned configuration, now).
public enum EscalationEngine {
    /// Evaluates `state` at `now` (milliseconds) against the versions it pinned in `library`.
    public static func evaluate(_ state: TicketState, library: ConfigLibrary, now: Int64) -> Evaluation {
        evaluate(TicketFacts(state), library: library, now: now)
    }

    /// ``evaluate(_:library:now:)`` over facts already read from the ticket (a caller that needs
    /// them too reads the ticket's records once).
    public static func evaluate(_ facts: TicketFacts, library: ConfigLibrary, now: Int64) -> Evaluation {
        var records = facts.records
        var due: [DerivedEffect] = []
        var nextDue: Int64?
        func note(_ t: Int64?) { if let t, t > now { nextDue = min(nextDue ?? t, t) } }
        func add(_ effect: DerivedEffect) {
            guard !facts.eventIDs.contains(effect.id), !due.contains(where: { $0.id == effect.id }) else { return }
            due.append(effect)
            records.append(StoredRecord(id: effect.id, record: effect.record, site: nil))
        }

        let clocks = clockRuns(facts, library: library, now: now, effects: true, add: add, note: note)

        // Ladder cycles, oldest first; a new cycle ends the one before it.
        let starts = records.filter { $0.record.type == .escalationStarted }
            .inRecordOrder()
        var cycles: [CycleReport] = []
        for (i, start) in starts.enumerated() {
            guard let ladderPin = start.record.ladder, let ladder = library.ladder(ladderPin) else { continue }
            let supersededAt = i + 1 < starts.count ? starts[i + 1].record.at : nil
            let report = ladderCycle(start, ordinal: i + 1, ladder: ladder, ladderPin: ladderPin, endedBy: supersededAt,
                                     facts: facts, records: records, library: library, now: now, add: add)
            note(report.next?.at)
            cycles.append(report)
        }

        // Only requests written to the log are pending: one derived here and not yet fired must not
        // be answered before the owning site (or the backstop) makes it.
        // A request is settled by an answer written at the site it asks (the receiver), or by a
        // withdrawal written at the site that owned the ticket when it withdrew. A record written
        // anywhere else settles nothing, so no third site, and not the requester, can answer for
        // the receiver; and a request fired by both the owner and the coordinator's backstop can
        // still be withdrawn by the owner.
        let requests = Dictionary(facts.records.filter(\.record.isHandoffRequest).map { ($0.id, $0.record) }) { first, _ in first }
        let answered = Set(facts.records.filter { record in
            guard let site = record.site, let request = record.record.refersTo.flatMap({ requests[$0] }) else { return false }
            switch record.record.type {
            case .handoffAccepted, .handoffRejected: return request.toSite == site.rawValue
            case .handoffWithdrawn: return facts.owner(at: record.record.at) == site
            default: return false
            }
        }.compactMap(\.record.refersTo))
        let pending = facts.records.filter { $0.record.isHandoffRequest && !answered.contains($0.id) && $0.record.toSite != facts.ownerSite?.rawValue }
        // A request unanswered for the pinned matrix's handoffTimeout (wall-clock time) gets one
        // record that says so; it stays pending.
        if let matrixPin = facts.pin?.matrix, let timeout = library.matrix(matrixPin)?.handoffTimeout.flatMap(DurationText.millis) {
            for request in pending {
                // A peer's record can carry any `at`: an instant past the clock's range never comes.
                let (at, overflow) = request.record.at.addingReportingOverflow(timeout)
                guard !overflow else { continue }
                guard at <= now else { note(at); continue }
                var record = EscalationRecord(type: .handoffTimedOut, at: at)
                record.refersTo = request.id
                record.toGroup = request.record.toGroup
                record.toSite = request.record.toSite
                add(DerivedEffect(id: DerivedID.record(ticket: facts.id, "handoff_timed_out", request.id.lowercaseText), record: record, operations: []))
            }
        }
        let ordered = settlePriorities(due.inRecordOrder(), facts)
        return Evaluation(pin: facts.pin, clocks: clocks, cycles: cycles, due: ordered, pendingHandoffs: pending, nextDue: nextDue)
    }

    /// The runs of the pinned policy's SLA clocks at `now`, as ``evaluate(_:library:now:)`` reports
    /// them, without the records they make due, the ladders or the handoffs (the dashboard reads
    /// only the clocks, for every ticket it derives).
    public static func clocks(_ facts: TicketFacts, library: ConfigLibrary, now: Int64) -> [ClockReport] {
        clockRuns(facts, library: library, now: now, effects: false, add: { _ in }, note: { _ in })
    }

    /// The clock runs; with `effects`, also the warnings and breaches due by `now` (to `add`) and the
    /// next one to come (to `note`).
    private static func clockRuns(_ facts: TicketFacts, library: ConfigLibrary, now: Int64, effects: Bool,
                                  add: (DerivedEffect) -> Void, note: (Int64?) -> Void) -> [ClockReport] {
        var clocks: [ClockReport] = []
        // A replica that lacks a pinned version (not replicated yet, or from a newer release) derives
        // nothing from it rather than guessing.
        if let pin = facts.pin, let policyPin = pin.policy, let policy = library.policy(policyPin),
           let calendarPin = pin.calendar, let calendar = library.calendar(calendarPin) {
            // Clocks count from the pin, not from before it: a policy applied late does not backdate breaches.
            let floor = max(facts.created, pin.at)
            for kind in ClockKind.allCases {
                guard let doc = policy.clocks[kind] else { continue }
                let clockCalendar = doc.businessHours == false ? WorkingCalendar.always : calendar
                let pauseWhen = Set(doc.pauseWhen ?? [])
                for var run in runs(kind, facts) {
                    run.start = max(run.start, floor)
                    if let stop = run.stop, stop < run.start { continue }
                    // The target is the one for the priority the run started with, whenever it is evaluated.
                    guard let text = doc.targets[facts.priority(at: run.start).rawValue], let target = DurationText.millis(text) else { continue }
                    var pauses = facts.spans { pauseWhen.contains($0.rawValue) }
                    pauses += run.pauses
                    let active = ActiveTime(calendar: clockCalendar, pauses: pauses)
                    let deadline = active.add(target, to: run.start)
                    let warnAt = doc.warnAt.flatMap { active.add(target * Int64($0) / 100, to: run.start) }
                    let elapsed = active.elapsed(from: run.start, to: max(run.start, now))
                    let state: ClockReport.State
                    if let deadline, deadline <= now { state = .breached }
                    else if run.stop.map({ $0 <= now }) ?? false { state = .met }
                    else if pauses.contains(where: { $0.start <= now && now < $0.end }) { state = .paused }
                    else { state = .running }
                    clocks.append(ClockReport(kind: kind, cycle: run.cycle, target: target, businessHours: doc.businessHours != false,
                                              start: run.start, deadline: deadline, warnAt: warnAt, elapsed: elapsed, state: state,
                                              stop: run.stop))
                    guard effects else { continue }
                    for (type, at, actions) in [(RecordType.slaWarning, warnAt, doc.onWarn), (.slaBreach, deadline, doc.onBreach)] {
                        guard let at else { continue }
                        guard at <= now else { note(at); continue }
                        var record = EscalationRecord(type: type, at: at)
                        record.clock = kind
                        record.clockCycle = run.cycle
                        record.policy = policyPin
                        let phase = type == .slaWarning ? "warning" : "breach"
                        var operations: [TicketModel.Operation] = []
                        if actions?.contains(SLAAction.raisePriority.rawValue) == true {
                            operations.append(.set(.priority, .text(Priority.urgent.rawValue)))  // settled in `settlePriorities`
                        }
                        add(DerivedEffect(id: DerivedID.record(ticket: facts.id, type.rawValue, kind.rawValue, String(run.cycle)),
                                          record: record, operations: operations))
                        if actions?.contains(SLAAction.escalate.rawValue) == true, let ladder = pin.ladder {
                            var start = EscalationRecord(type: .escalationStarted, at: at)
                            start.ladder = ladder
                            start.ladderCalendar = pin.ladderCalendar
                            start.matrix = pin.matrix
                            start.clock = kind
                            start.clockCycle = run.cycle
                            start.reason = "\(kind.rawValue) \(phase)"
                            add(DerivedEffect(id: DerivedID.record(ticket: facts.id, "escalation_started", "sla", kind.rawValue, String(run.cycle), phase),
                                              record: start, operations: []))
                        }
                    }
                }
            }
        }
        return clocks
    }

    /// Each `raise_priority` raises one step from the priority at its record's time, counting the
    /// raises before it in this pass: one late pass and many punctual ones end at the same priority.
    static func settlePriorities(_ due: [DerivedEffect], _ facts: TicketFacts) -> [DerivedEffect] {
        var raisedTo: Priority?
        return due.map { effect in
            var effect = effect
            effect.operations = effect.operations.compactMap { operation in
                guard case .set(.priority, _) = operation else { return operation }
                let base = max(facts.priority(at: effect.record.at), raisedTo ?? .low)
                guard base != .urgent else { return nil }
                raisedTo = base.raised
                return .set(.priority, .text(base.raised.rawValue))
            }
            return effect
        }
    }

    /// One run of a clock: when it started, when it stopped for good, and spans it does not count.
    public struct Run: Sendable {
        public var cycle: Int
        public var start: Int64
        public var stop: Int64?
        public var pauses: [TimeSpan]
    }

    /// The runs of clock `kind` on a ticket, in calendar time, whether or not a policy is pinned
    /// (the dashboard measures response and resolution times of every ticket with them).
    public static func runs(_ kind: ClockKind, _ facts: TicketFacts) -> [Run] {
        let resolvedSpans = facts.spans { $0.isResolved }
        func stopped(_ start: Int64, _ times: [Int64?]) -> Run {
            let stop = times.compactMap { $0 }.filter { $0 >= start }.min()
            return Run(cycle: 1, start: start, stop: stop, pauses: stop.map { [TimeSpan(start: $0, end: .max)] } ?? [])
        }
        switch kind {
        case .firstResponse:
            return [stopped(facts.created, [facts.publicReplies.first, facts.resolved(after: facts.created)])]
        case .timeToOwn:
            return [stopped(facts.created, [facts.ownedAt, facts.resolved(after: facts.created)])]
        case .resolution:
            // Runs while unresolved; a reopened ticket carries on counting from where it stopped.
            let stop = facts.status.isResolved ? facts.statuses.last?.at : nil
            return [Run(cycle: 1, start: facts.created, stop: stop, pauses: resolvedSpans)]
        case .nextResponse:
            // After the first public reply, each customer message that finds no reply pending starts
            // a cycle; the next public reply (or resolving the ticket) ends it.
            guard let first = facts.publicReplies.first else { return [] }
            var out: [Run] = []
            var timeline = facts.customerMessages.filter { $0 > first }.map { ($0, true) } + facts.publicReplies.filter { $0 > first }.map { ($0, false) }
            timeline.sort { ($0.0, $0.1 ? 1 : 0) < ($1.0, $1.1 ? 1 : 0) }
            for (at, isCustomer) in timeline {
                if isCustomer, out.last.map({ $0.stop != nil }) ?? true {
                    out.append(Run(cycle: out.count + 1, start: at, stop: nil, pauses: []))
                } else if !isCustomer, let last = out.indices.last, out[last].stop == nil {
                    out[last].stop = at
                }
            }
            return out.map { run in
                let stop = [run.stop, facts.resolved(after: run.start)].compactMap { $0 }.min()
                return Run(cycle: run.cycle, start: run.start, stop: stop, pauses: stop.map { [TimeSpan(start: $0, end: .max)] } ?? [])
            }
        }
    }

    static func ladderCycle(_ start: StoredRecord, ordinal: Int, ladder: LadderDocument, ladderPin: Pin, endedBy superseded: Int64?,
                            facts: TicketFacts, records: [StoredRecord], library: ConfigLibrary, now: Int64,
                            add: (DerivedEffect) -> Void) -> CycleReport {
        var report = CycleReport(start: start, ordinal: ordinal, ladder: ladderPin)
        let mine = records.filter { $0.record.cycle == start.id }
        let levelIDs = Set(mine.filter { $0.record.type == .levelFired }.map(\.id))
        var ends: [(Int64, String)] = []
        if let superseded { ends.append((superseded, "superseded by a new cycle")) }
        if let resolved = facts.resolved(after: start.record.at) { ends.append((resolved, "ticket resolved")) }
        if let stop = mine.first(where: { $0.record.type == .escalationStopped }) { ends.append((stop.record.at, "stopped by an agent")) }
        let end = ends.min { $0.0 < $1.0 }

        // Timers freeze in pause statuses and for the ack timeout after an acknowledgement or an
        // accepted handoff of this cycle (without an ack timeout, an acknowledgement holds for good).
        var pauses = facts.spans { Set(ladder.pauseWhen ?? []).contains($0.rawValue) }
        let holdFor = ladder.ackTimeout.flatMap(DurationText.millis)
        for r in records where (r.record.type == .acknowledged && r.record.cycle == start.id)
            || (r.record.type == .handoffAccepted && r.record.refersTo.map(levelIDs.contains) == true) {
            let (hold, overflow) = r.record.at.addingReportingOverflow(holdFor ?? .max)
            pauses.append(TimeSpan(start: r.record.at, end: overflow ? .max : hold))
        }
        var calendar = WorkingCalendar.always
        if let pin = start.record.ladderCalendar {
            guard let pinned = library.calendar(pin) else {
                report.ended = "waiting for calendar \(pin) to replicate"
                return report
            }
            calendar = pinned
        }
        let active = ActiveTime(calendar: calendar, pauses: pauses)

        var t = start.record.at
        for loop in 0...ladder.loops {
            for (index, level) in ladder.levels.enumerated() {
                guard let delay = DurationText.millis(level.delay), let at = active.add(delay, to: t) else {
                    // Held open-ended (paused, or acknowledged without an ack timeout) or beyond the horizon.
                    return report
                }
                if let end, at >= end.0 {
                    report.ended = end.1
                    return report
                }
                if at > now {
                    report.next = (at, index + 1, loop)
                    return report
                }
                add(fire(level, number: index + 1, loop: loop, at: at, start: start, ordinal: ordinal, facts: facts, library: library))
                report.fired = (index + 1, loop)
                t = at
            }
        }
        var exhausted = EscalationRecord(type: .escalationExhausted, at: t)
        exhausted.cycle = start.id
        add(DerivedEffect(id: DerivedID.record(ticket: facts.id, "escalation_exhausted", start.id.lowercaseText),
                          record: exhausted, operations: []))
        report.ended = "exhausted after \(ladder.loops + 1) pass(es)"
        return report
    }

    static func fire(_ level: LevelDocument, number: Int, loop: Int, at: Int64, start: StoredRecord, ordinal: Int,
                     facts: TicketFacts, library: ConfigLibrary) -> DerivedEffect {
        let matrix = start.record.matrix.flatMap(library.matrix)
        // The body depends only on what held when the cycle started, so every replica writes the
        // same one; the changes follow the owner as this replica knows it.
        let site = facts.owner(at: start.record.at)
        let targets = level.targets.compactMap(Target.init).map { resolve($0, site: site, category: facts.category(at: start.record.at), matrix: matrix) }
        var record = EscalationRecord(type: .levelFired, at: at)
        record.cycle = start.id
        record.level = number
        record.loop = loop
        record.ladder = start.record.ladder
        record.targets = targets.map(\.description)
        record.assignment = level.assignment
        var operations: [TicketModel.Operation] = [.set(.escalation, .level(cycle: UInt64(ordinal), level: UInt64(number)))]
        if level.assignment != .notify {
            if case .group(let group, let target)? = targets.first {
                record.toGroup = group
                if level.assignment == .transferSite { record.toSite = target.rawValue }
                // At the site that owns the ticket the group changes now; elsewhere it is a handoff request.
                if target == facts.ownerSite { operations.append(.set(.group, .text(group))) }
            } else {
                record.assignment = .notify  // an unresolved tier: nobody to hand the ticket to
            }
        }
        for action in (level.actions ?? []).compactMap(LevelAction.init) {
            switch action {
            case .notify: break
            case .raisePriority: operations.append(.set(.priority, .text(Priority.urgent.rawValue)))  // settled later
            case .watch(let who): operations.append(.addElement(.watchers, who))
            case .tag(let tag): operations.append(.addElement(.tags, tag))
            }
        }
        let id = DerivedID.record(ticket: facts.id, "level_fired", start.id.lowercaseText, String(number), String(loop))
        return DerivedEffect(id: id, record: record, operations: operations)
    }

    /// `tier:N` becomes the matrix's group@site for the owning site and category (exact entries
    /// before `*`); other targets stay as written.
    static func resolve(_ target: Target, site: SiteID?, category: String?, matrix: MatrixDocument?) -> Target {
        guard case .tier(let tier) = target, let matrix else { return target }
        let site = site?.rawValue ?? ""
        let category = category ?? ""
        let candidates = matrix.entries.filter { $0.tier == tier && ($0.site == site || $0.site == "*") && ($0.category == category || $0.category == "*") }
        let best = candidates.min { ($0.site == "*" ? 1 : 0, $0.category == "*" ? 1 : 0) < ($1.site == "*" ? 1 : 0, $1.category == "*" ? 1 : 0) }
        return best.flatMap { Target($0.target) } ?? target
    }
}
