import Escalation
import Foundation
import Synchronization
import TicketModel
import TicketStore

/// The escalation side of a store: publishing configuration, applying policies, the agents'
/// transfer/escalate/handoff commands, and the ticker that writes due records.
///
/// Decisions read only the replicated, version-pinned configuration (``ConfigLibrary``); time is
/// passed in.
public struct EscalationDesk: Sendable {
    public let store: TicketDatabase
    public let identity: LocalIdentity

    public init(store: TicketDatabase) throws {
        self.store = store
        identity = try store.identity()
    }

    public func library() throws -> ConfigLibrary { ConfigLibrary(bodies: try store.configBodies()) }

    // MARK: Configuration

    /// Validates a configuration file and publishes the documents that are new, in one write.
    /// Only a coordinator publishes.
    /// - Returns: the documents published (already-published identical versions are skipped).
    public func publish(_ data: Data, file: String, actor: String) throws -> [ConfigDocument] {
        guard identity.role == .coordinator else {
            throw EscalationError("this store is a \(identity.role.rawValue) (\(identity.site)); configuration is published by the coordinator, where it replicates to every site")
        }
        let documents = try ConfigReader.read(data, file: file, published: try library())
        try store.publish(documents.map {
            ConfigVersionDraft(entity: ConfigDocument.entityID(key: $0.key), versionID: $0.versionID, body: $0.encoded())
        }, actor: actor)
        return documents
    }

    // MARK: Evaluation

    public func evaluate(_ ref: String, now: Int64) throws -> (TicketState, Evaluation) {
        let state = try store.ticketState(ref)
        return (state, EscalationEngine.evaluate(state, library: try library(), now: now))
    }

    /// Every active ticket with its evaluation at `now`, by id: what `sla`, `handoff list` and the
    /// dashboard read.
    public func evaluations(now: Int64) throws -> [(state: TicketState, evaluation: Evaluation)] {
        let library = try library()
        return try store.activeTicketIDs().map { id in
            let state = try store.ticketState(id.uuidString)
            return (state, EscalationEngine.evaluate(state, library: library, now: now))
        }
    }

    /// Pins the matching policy and starts the ladders of matching proactive rules: what a site
    /// does when it opens a ticket (and its ticker does for tickets opened before any policy).
    @discardableResult
    public func applyPolicy(_ id: UUID, now: Int64) throws -> [TicketEvent] {
        let library = try library()
        guard !library.isEmpty else { return [] }
        return try store.writeRecords(id, policy(library, now: now))
    }

    /// Opens a ticket from `draft` and pins its SLA policy (and starts its proactive ladders) in the
    /// same transaction: no crash leaves it opened without them.
    /// - Returns: the ticket as stored, its policy records included.
    @discardableResult
    public func openTicket(_ draft: TicketDraft, now: Int64) throws -> TicketRecord {
        let library = try library()
        return try store.createTicket(draft, follow: library.isEmpty ? nil : policy(library, now: now))
    }

    /// Opens a ticket that arrived through a channel, with its policy, in one transaction (see
    /// ``openTicket(_:now:)``); a redelivery is left as it is.
    public func openIntakeTicket(_ intake: IntakeTicket, now: Int64) throws -> (ticket: TicketRecord, duplicate: Bool) {
        let library = try library()
        return try store.intakeCreate(intake, follow: library.isEmpty ? nil : policy(library, now: now))
    }

    /// The records that pin a ticket's matching policy and start the ladders of matching proactive
    /// rules (or of the ladder routing chose), derived from the ticket as it stands in the write.
    private func policy(_ library: ConfigLibrary, now: Int64) -> RecordDerivation {
        { state in
            let id = state.id
            let facts = TicketFacts(state)
            guard facts.pin == nil, let record = library.apply(to: facts.match, at: now) else { return [] }
            var out = [(event: event(DerivedID.record(ticket: id, "sla_applied", record.policy?.description ?? ""), record, actor: "tierline"), operations: [TicketModel.Operation]())]
            var started = Set<String>()
            func start(_ ladderName: String, reason: String, _ idParts: String...) {
                // One cycle per ladder: a rule and routing naming the same ladder start it once.
                guard case .ladder(let ladder)? = library.latest(.ladder, ladderName), started.insert(ladder.name).inserted else { return }
                var start = EscalationRecord(type: .escalationStarted, at: facts.created)
                start.ladder = Pin(name: ladder.name, version: ladder.version)
                start.ladderCalendar = library.currentPin(calendar: ladder.calendar ?? WorkingCalendar.always.name)
                start.matrix = record.matrix
                start.reason = reason
                out.append((event(DerivedID.make([id.uuidString.lowercased(), "escalation_started"] + idParts), start, actor: "tierline"), []))
            }
            // Proactive rules run once, when the policy is first applied.
            for rule in library.rules(matching: facts.match) { start(rule.ladder, reason: "rule \(rule.name) v\(rule.version)", "rule", rule.name) }
            // A ladder routing chose at intake starts the same way.
            if let name = state.customFields[RoutedEscalation.ladderField] {
                start(name, reason: "routing at intake: \(state.customFields["routing"] ?? "rule")", "routing", name)
            }
            return out
        }
    }

    /// One pass of the ticker over every active ticket: writes the records due by `now`.
    ///
    /// - Parameter backstop: for a ticket owned by another site, whether this node should fire for
    ///   it (the coordinator, when that site has been silent past the matrix's grace).
    /// - Returns: the records written, per ticket.
    public func tick(now: Int64, schedule: TickSchedule? = nil,
                     backstop: (SiteID, Int64) -> Bool = { _, _ in false }) throws -> [UUID: [TicketEvent]] {
        let bodies = try store.configBodies()
        let library = ConfigLibrary(bodies: bodies)
        guard !library.isEmpty else { return [:] }
        let grace = library.matrix.flatMap { DurationText.millis($0.grace) } ?? 300_000
        schedule?.configuration(count: bodies.count)
        var written: [UUID: [TicketEvent]] = [:]
        for (id, updated) in try store.activeTickets() {
            // A ticket that has not changed since its last evaluation waits until its next due time.
            if let schedule, !schedule.isDue(id, updated: updated, now: now) { continue }
            var state = try store.ticketState(id.uuidString)
            let owner = state.owner.site
            let mine = owner == identity.site
            guard mine || (owner.map { backstop($0, grace) } ?? false) else {
                // Not ours to fire now: look again on every pass while something is due.
                let evaluation = EscalationEngine.evaluate(state, library: library, now: now)
                schedule?.remember(id, updated: updated, next: evaluation.due.isEmpty ? evaluation.nextDue : now)
                continue
            }
            let facts = TicketFacts(state)
            if mine, facts.pin == nil, library.apply(to: facts.match, at: now) != nil {
                try applyPolicy(id, now: now)
                continue  // its clocks count from creation; the next pass evaluates them
            }
            // The backstop fires only what is overdue by the grace period.
            func due(_ evaluation: Evaluation) -> [DerivedEffect] { evaluation.due.filter { mine || $0.record.at + grace <= now } }
            var evaluation = EscalationEngine.evaluate(state, library: library, now: now)
            // Most tickets have nothing due: decide on a read, and open a write transaction only when
            // there is something to write (it derives again inside, from the locked state).
            if !due(evaluation).isEmpty {
                let events = try store.writeRecords(id) { locked in
                    due(EscalationEngine.evaluate(locked, library: library, now: now)).map { ($0.event, $0.operations) }
                }
                if !events.isEmpty { written[id] = events }
                state = try store.ticketState(id.uuidString)
                evaluation = EscalationEngine.evaluate(state, library: library, now: now)
            }
            // Records held back by the grace period come due when it has passed.
            let held = evaluation.due.filter { !mine && $0.record.at + grace > now }.map { $0.record.at + grace }.min()
            schedule?.remember(id, updated: state.updated.map { Int64(bitPattern: $0.hlc.rawValue) } ?? 0,
                               next: due(evaluation).isEmpty ? [held, evaluation.nextDue].compactMap { $0 }.min() : now)
        }
        return written
    }

    // MARK: Agents' commands

    /// Functional escalation: moves the ticket sideways to `group` at its owning site.
    public func transfer(_ ref: String, group: String, reason: String?, actor: String, now: Int64) throws -> TicketEvent {
        try checkName(group, "group")
        let id = try store.resolve(ref)
        return try single(id) { state in
            guard state.baseStatus != .closed else { throw EscalationError("ticket is closed; reopen it before transferring") }
            var record = EscalationRecord(type: .transferred, at: now)
            record.fromGroup = state.text(.group)
            record.toGroup = group
            record.reason = reason
            return [(event(UUIDv7.make(millis: UInt64(now), random: TicketDatabase.randomBytes(10)), record, actor: actor), [.set(.group, .text(group))])]
        }
    }

    /// Hierarchical escalation by an agent: one level up, to `group@site`, with a handoff note. At
    /// the owning site the group changes now; to another site it is a handoff request that the
    /// receiver accepts or rejects.
    public func escalate(_ ref: String, to target: String, note: HandoffNote, actor: String, now: Int64) throws -> TicketEvent {
        guard case .group(let group, let site)? = Target(target) else {
            throw EscalationError("\"\(target)\" is not GROUP@SITE (e.g. tier2@central)")
        }
        for (text, what) in [(note.summary, "--summary"), (note.verifiedFacts, "--verified-facts"), (note.stepsTried, "--steps-tried"), (note.requestedAction, "--requested-action")]
            where text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw EscalationError("\(what) must not be empty: the next tier reads the handoff note instead of asking the customer again")
        }
        let id = try store.resolve(ref)
        return try single(id) { state in
            guard !state.baseStatus.isResolved else { throw EscalationError("ticket is \(state.baseStatus.rawValue); reopen it before escalating") }
            var record = EscalationRecord(type: .escalated, at: now)
            record.fromGroup = state.text(.group)
            record.toGroup = group
            record.toSite = site.rawValue
            record.note = note
            let level = state.escalation
            var operations: [TicketModel.Operation] = [.set(.escalation, .level(cycle: max(level.cycle, 1), level: level.level + 1))]
            if site == state.owner.site { operations.append(.set(.group, .text(group))) }
            return [(event(UUIDv7.make(millis: UInt64(now), random: TicketDatabase.randomBytes(10)), record, actor: actor), operations)]
        }
    }

    /// Accepts a pending handoff to this site: the owning site becomes this one (epoch + 1).
    public func accept(_ ref: String, actor: String, now: Int64) throws -> TicketEvent {
        try answer(ref, accept: true, reason: nil, actor: actor, now: now)
    }

    /// Rejects a pending handoff to this site; the origin keeps the ticket and its ladder goes on.
    public func reject(_ ref: String, reason: String, actor: String, now: Int64) throws -> TicketEvent {
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw EscalationError("--reason must not be empty: the origin needs to know why")
        }
        return try answer(ref, accept: false, reason: reason, actor: actor, now: now)
    }

    private func answer(_ ref: String, accept: Bool, reason: String?, actor: String, now: Int64) throws -> TicketEvent {
        let id = try store.resolve(ref)
        let library = try library()
        let me = identity.site
        return try single(id) { state in
            let pending = EscalationEngine.evaluate(state, library: library, now: now).pendingHandoffs
            guard let request = pending.last(where: { $0.record.toSite == me.rawValue }) else {
                let elsewhere = pending.map { "\($0.record.toGroup ?? "?")@\($0.record.toSite ?? "?")" }
                throw EscalationError(elsewhere.isEmpty
                    ? "ticket has no pending handoff; `tierline ticket show` lists its escalation history"
                    : "the pending handoff is for \(elsewhere.joined(separator: ", ")), not this site (\(me)); answer it there")
            }
            var record = EscalationRecord(type: accept ? .handoffAccepted : .handoffRejected, at: now)
            record.refersTo = request.id
            record.cycle = request.record.cycle
            record.toGroup = request.record.toGroup
            record.toSite = request.record.toSite
            record.reason = reason
            var operations: [TicketModel.Operation] = []
            if accept {
                operations.append(.set(.owner, .owner(epoch: state.owner.epoch + 1, site: me)))
                if let group = request.record.toGroup { operations.append(.set(.group, .text(group))) }
            }
            return [(event(UUIDv7.make(millis: UInt64(now), random: TicketDatabase.randomBytes(10)), record, actor: actor), operations)]
        }
    }

    /// Acknowledges the running ladder cycle: it holds until the ladder's ack timeout.
    public func acknowledge(_ ref: String, actor: String, now: Int64) throws -> TicketEvent {
        let id = try store.resolve(ref)
        let library = try library()
        return try single(id) { state in
            let evaluation = EscalationEngine.evaluate(state, library: library, now: now)
            guard let cycle = evaluation.cycles.last(where: { $0.ended == nil }) else {
                throw EscalationError("ticket has no running escalation ladder to acknowledge")
            }
            var record = EscalationRecord(type: .acknowledged, at: now)
            record.cycle = cycle.start.id
            return [(event(UUIDv7.make(millis: UInt64(now), random: TicketDatabase.randomBytes(10)), record, actor: actor), [])]
        }
    }

    // MARK: Helpers

    private func single(_ id: UUID, _ make: @escaping (TicketState) throws -> [(event: TicketEvent, operations: [TicketModel.Operation])]) throws -> TicketEvent {
        guard let event = try store.writeRecords(id, make).first else { throw EscalationError("nothing was written") }
        return event
    }

    private func event(_ id: UUID, _ record: EscalationRecord, actor: String) -> TicketEvent {
        TicketEvent(id: id, kind: .escalation, actor: actor, visibility: .internal, body: record.encoded())
    }

    private func checkName(_ name: String, _ what: String) throws {
        if name.isEmpty || name.utf8.count > 64 || name.contains("@") || name.contains(where: \.isWhitespace) {
            throw EscalationError("\"\(name)\" is not a \(what) name: 1-64 characters, no spaces and no @")
        }
    }
}

/// What the ticker learned on its last pass: per ticket, the stamp of its latest change and when
/// something next falls due, so unchanged tickets are not evaluated again before then.
public final class TickSchedule: Sendable {
    private let entries = Mutex<(configCount: Int, byTicket: [UUID: (updated: Int64, next: Int64?)])>((0, [:]))

    public init() {}

    /// Forgets everything when the configuration changes.
    func configuration(count: Int) {
        entries.withLock { if $0.configCount != count { $0 = (count, [:]) } }
    }

    func isDue(_ id: UUID, updated: Int64, now: Int64) -> Bool {
        entries.withLock { entries in
            guard let known = entries.byTicket[id], known.updated == updated else { return true }
            return known.next.map { $0 <= now } ?? false
        }
    }

    func remember(_ id: UUID, updated: Int64, next: Int64?) {
        entries.withLock { $0.byTicket[id] = (updated, next) }
    }
}

/// A refused escalation command: what was wrong and what to do.
public struct EscalationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
