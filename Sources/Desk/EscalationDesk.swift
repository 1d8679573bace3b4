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
        var store = store
        store.notices = Notices.planner
        self.store = store
        identity = try store.identity()
    }

    public func library() throws -> ConfigLibrary { try DeskError.translating { ParsedLibraries.library(try store.configBodies()) } }

    /// What `rules` name that this store does not have: a ladder or SLA policy its published
    /// configuration lacks, a group no published agent works in, a site its roster does not list
    /// (such a ladder never starts, such a policy never applies). `nil` when nothing is published
    /// here yet, so the names cannot be checked; empty when every name is known.
    public func unknownRoutingNames(_ rules: RoutingRules, file: String) throws -> [ConfigIssue]? {
        let library = try library()
        guard !library.isEmpty else { return nil }
        let sites = try DeskError.translating { try store.roster()?.roster.activeMembers.map(\.site) }
        return rules.unknownNames(library: library, file: file, sites: sites)
    }

    // MARK: Configuration

    /// Validates a configuration file and publishes the documents that are new, in one write.
    /// Only a coordinator publishes.
    /// - Parameter allowUnknownTargets: takes ladder targets that name nobody in the agent directory.
    /// - Returns: the documents published (already-published identical versions are skipped).
    public func publish(_ data: Data, file: String, actor: String, allowUnknownTargets: Bool = false) throws -> [ConfigDocument] {
        guard identity.role == .coordinator else {
            throw DeskError(.notPermitted, "this store is a \(identity.role.rawValue) (\(identity.site)); configuration is published by the coordinator, where it replicates to every site")
        }
        return try DeskError.translating {
            let documents = try ConfigReader.read(data, file: file, published: try library(), allowUnknownTargets: allowUnknownTargets)
            try store.publish(documents.map {
                ConfigVersionDraft(entity: ConfigDocument.entityID(key: $0.key), versionID: $0.versionID, body: $0.encoded())
            }, actor: actor)
            return documents
        }
    }

    // MARK: Evaluation

    public func evaluate(_ ref: String, now: Int64) throws -> (TicketState, Evaluation) {
        let state = try DeskError.translating { try store.ticketState(ref) }
        return (state, EscalationEngine.evaluate(state, library: try library(), now: now))
    }

    /// Every active ticket with its evaluation at `now`, by id: what `sla`, `handoff list` and the
    /// dashboard read.
    public func evaluations(now: Int64) throws -> [(state: TicketState, evaluation: Evaluation)] {
        let library = try library()
        return try DeskError.translating {
            try store.activeTicketIDs().map { id in
                let state = try store.ticketState(id.uuidString)
                return (state, EscalationEngine.evaluate(state, library: library, now: now))
            }
        }
    }

    /// Pins the matching policy and starts the ladders of matching proactive rules: what a site
    /// does when it opens a ticket (and its ticker does for tickets opened before any policy).
    @discardableResult
    public func applyPolicy(_ id: UUID, now: Int64) throws -> [TicketEvent] {
        let library = try library()
        guard !library.isEmpty else { return [] }
        return try DeskError.translating { try store.writeRecords(id, policy(library, now: now)) }
    }

    /// The records that pin a ticket's matching policy and start the ladders of matching proactive
    /// rules (or of the ladder routing chose), derived from the ticket as it stands in the write.
    func policy(_ library: ConfigLibrary, now: Int64) -> RecordDerivation {
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
                out.append((event(DerivedID.make([id.lowercaseText, "escalation_started"] + idParts), start, actor: "tierline"), []))
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

    // MARK: Helpers

    func event(_ id: UUID, _ record: EscalationRecord, actor: String) -> TicketEvent {
        TicketEvent(id: id, kind: .escalation, actor: actor, visibility: .internal, body: record.encoded())
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

/// Configuration libraries parsed once per distinct set of document versions. Every write plans its
/// notices, and every workspace request checks its agent, against the library: parsing every body each
/// time would cost each of them the whole configuration, agents included.
enum ParsedLibraries {
    static func library(_ bodies: [String]) -> ConfigLibrary {
        var hasher = Hasher()
        hasher.combine(bodies)
        let key = hasher.finalize()
        // The bodies are compared too: a hash alone could, however rarely, hand out another library.
        if let cached = cache.withLock({ $0[key] }), cached.bodies == bodies { return cached.library }
        let made = ConfigLibrary(bodies: bodies)
        cache.withLock { cache in
            if cache.count > 16 { cache.removeAll() }
            cache[key] = (bodies, made)
        }
        return made
    }

    private static let cache = Mutex<[Int: (bodies: [String], library: ConfigLibrary)]>([:])
}
