import Escalation
import Foundation
import StrictJSON
import TicketModel
import TicketStore

/// The agents' escalation use cases: sideways, up a tier, answering a handoff, acknowledging a
/// ladder. Each writes one escalation record with the field changes it implies, in one transaction.
extension HelpDesk {
    /// Functional escalation: moves the ticket sideways to `group` at its owning site.
    @discardableResult
    /// - Parameter allowUnknown: takes a group no agent of the directory works in (with no agent
    ///   published, any group is taken).
    public func transfer(_ ref: String, group: String, reason: String?, actor: String, now: Int64,
                         allowUnknown: Bool = false) throws -> TicketEvent {
        try Self.checkGroupName(group, field: "group")
        let directory = DirectoryCheck(AgentDirectory(library: try escalation.library()))
        return try single(ref, actor: actor, now: now) { state in
            guard state.baseStatus != .closed else { throw DeskError(.wrongState, "ticket is closed; reopen it before transferring") }
            try directory.group(group, at: state.owner.site, field: "group", allowUnknown: allowUnknown)
            var record = EscalationRecord(type: .transferred, at: now)
            record.fromGroup = state.text(.group)
            record.toGroup = group
            record.reason = reason
            return (record, [.set(.group, .text(group))])
        }
    }

    /// Hierarchical escalation by an agent: one level up, to `group@site`, with a handoff note. At
    /// the owning site the group changes now; to another site it is a handoff request that the
    /// receiver accepts or rejects.
    @discardableResult
    /// - Parameter allowUnknown: takes a group no agent of the directory works in.
    public func escalate(_ ref: String, to target: String, note: HandoffNote, actor: String, now: Int64,
                         allowUnknown: Bool = false) throws -> TicketEvent {
        guard case .group(let group, let site)? = Target(target) else {
            throw DeskError(.invalidInput, field: "to", "takes GROUP@SITE, e.g. tier2@central; got \(target.debugDescription)")
        }
        try Self.checkGroupName(group, field: "to")
        try Self.check(note)
        // The site first: for a mistyped site, "no agent works there" would hide what is wrong.
        let receiver = try HandoffReceiver(site, roster: try DeskError.translating { try store.roster()?.roster })
        let library = try DeskError.translating { try escalation.library() }
        try DirectoryCheck(AgentDirectory(library: library)).group(group, at: site, field: "to", allowUnknown: allowUnknown)
        return try single(ref, actor: actor, now: now) { state in
            guard !state.baseStatus.isResolved else { throw DeskError(.wrongState, "ticket is \(state.baseStatus.rawValue); reopen it before escalating") }
            if site != state.owner.site { try receiver.checkCanAccept() }
            var record = EscalationRecord(type: .escalated, at: now)
            record.fromGroup = state.text(.group)
            record.toGroup = group
            record.toSite = site.rawValue
            record.note = note
            let level = state.escalation
            var operations: [TicketModel.Operation] = [.set(.escalation, .level(cycle: max(level.cycle, 1), level: level.level + 1))]
            if site == state.owner.site { operations.append(.set(.group, .text(group))) }
            return (record, operations)
        }
    }

    /// Accepts a pending handoff to this site: the owning site becomes this one (epoch + 1).
    @discardableResult
    public func accept(_ ref: String, actor: String, now: Int64) throws -> TicketEvent {
        try answer(ref, accept: true, reason: nil, actor: actor, now: now)
    }

    /// Rejects a pending handoff to this site; the origin keeps the ticket and its ladder goes on.
    @discardableResult
    public func reject(_ ref: String, reason: String, actor: String, now: Int64) throws -> TicketEvent {
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DeskError(.invalidInput, field: "reason", "must not be empty: the origin needs to know why")
        }
        return try answer(ref, accept: false, reason: reason, actor: actor, now: now)
    }

    private func answer(_ ref: String, accept: Bool, reason: String?, actor: String, now: Int64) throws -> TicketEvent {
        // Every replica skips a laptop's change of the owning site (PROTOCOL 1.5.5): its accept would
        // settle the request and leave the ticket where it was.
        // Replicas judge by the role the roster gives this site, which may differ from the one it
        // was initialised with (a site the coordinator made a laptop).
        if accept {
            let listed = try DeskError.translating { try store.roster()?.roster.activeMembers.first { $0.site == identity.site.rawValue }?.role }
            let role = listed ?? identity.role
            if let refusal = HandoffReceiver.refusal(role: role, site: identity.site) {
                throw DeskError(.notPermitted, "this store is a \(role.rawValue) (\(identity.site)) and every replica would skip its accept: \(refusal). Reject the handoff, or accept it at a site")
            }
        }
        let library = try DeskError.translating { try escalation.library() }
        let me = identity.site
        return try single(ref, actor: actor, now: now) { state in
            let pending = EscalationEngine.evaluate(state, library: library, now: now).pendingHandoffs
            guard let request = pending.last(where: { $0.record.toSite == me.rawValue }) else {
                let elsewhere = pending.map { "\($0.record.toGroup ?? "?")@\($0.record.toSite ?? "?")" }
                throw DeskError(.wrongState, elsewhere.isEmpty
                    ? "ticket has no pending handoff; `tierline ticket show` lists its escalation history"
                    : "the pending handoff is for \(elsewhere.joined(separator: ", ")), not this site (\(me)); answer it there"
                        // The owning site cannot answer its own request, but it may take it back.
                        + (state.owner.site == me ? ", or take it back here with `tierline handoff withdraw \(ref)`" : ""))
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
            return (record, operations)
        }
    }

    /// Takes back the newest handoff request of a ticket this site owns that is not answered yet: a
    /// request to a wrong or silent site no longer waits for ever. A concurrent accept still moves the
    /// ticket. Only the owning site may (PROTOCOL §3).
    @discardableResult
    public func withdraw(_ ref: String, reason: String?, actor: String, now: Int64) throws -> TicketEvent {
        let library = try DeskError.translating { try escalation.library() }
        let me = identity.site
        return try single(ref, actor: actor, now: now) { state in
            let pending = EscalationEngine.evaluate(state, library: library, now: now).pendingHandoffs
            guard let owner = state.owner.site, owner == me else {
                throw DeskError(.notPermitted, "the ticket is owned by \(state.owner.site?.rawValue ?? "another site"), not this site (\(me)); only the owning site may withdraw its handoff requests")
            }
            guard let request = pending.last else {
                throw DeskError(.wrongState, "ticket has no pending handoff; `tierline ticket show` lists its escalation history")
            }
            var record = EscalationRecord(type: .handoffWithdrawn, at: now)
            record.refersTo = request.id
            record.cycle = request.record.cycle
            record.toGroup = request.record.toGroup
            record.toSite = request.record.toSite
            record.reason = reason
            return (record, [])
        }
    }

    /// Acknowledges the running ladder cycle: it holds until the ladder's ack timeout.
    @discardableResult
    public func acknowledge(_ ref: String, actor: String, now: Int64) throws -> TicketEvent {
        let library = try DeskError.translating { try escalation.library() }
        return try single(ref, actor: actor, now: now) { state in
            let evaluation = EscalationEngine.evaluate(state, library: library, now: now)
            guard let cycle = evaluation.cycles.last(where: { $0.ended == nil }) else {
                throw DeskError(.wrongState, "ticket has no running escalation ladder to acknowledge")
            }
            var record = EscalationRecord(type: .acknowledged, at: now)
            record.cycle = cycle.start.id
            return (record, [])
        }
    }

    // MARK: Rules an edge may check before it calls

    /// A group name: 1–64 bytes, no spaces, no control characters and no `@` (`@` separates a group
    /// from its site).
    public static func checkGroupName(_ name: String, field: String) throws(DeskError) {
        if name.isEmpty || name.utf8.count > 64 || name.contains("@") || name.contains(where: \.isWhitespace)
            || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw DeskError(.invalidInput, field: field, "takes a group name: 1-64 characters, no spaces, no control characters and no @; got \(name.debugDescription)")
        }
    }

    /// A handoff note needs all four parts: the next tier reads it instead of asking the customer again.
    public static func check(_ note: HandoffNote) throws(DeskError) {
        for (text, field) in [(note.summary, "summary"), (note.verifiedFacts, "verifiedFacts"), (note.stepsTried, "stepsTried"),
                              (note.requestedAction, "requestedAction")]
            where text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw DeskError(.invalidInput, field: field, "must not be empty: the next tier reads the handoff note instead of asking the customer again")
        }
    }

    /// Writes the one record `make` derives from the ticket as it stands inside the write.
    private func single(_ ref: String, actor: String, now: Int64,
                        _ make: @escaping (TicketState) throws -> (EscalationRecord, [TicketModel.Operation])) throws -> TicketEvent {
        let events = try DeskError.translating {
            let id = try store.resolve(ref)
            return try store.writeRecords(id) { state in
                let (record, operations) = try make(state)
                let event = escalation.event(UUIDv7.make(millis: UInt64(now), random: TicketDatabase.randomBytes(10)), record, actor: actor)
                return [(event, operations)]
            }
        }
        guard let event = events.first else { throw DeskError(.wrongState, "nothing was written") }
        return event
    }
}

/// The site a handoff goes to, checked against the adopted roster before anything is written: a
/// request to a site the roster does not list, or to one whose accept every replica would skip,
/// would stay pending for ever. Without a roster (a store that never joined a fleet) sites are free.
struct HandoffReceiver {
    let site: SiteID
    let role: SiteRole?

    init(_ site: SiteID, roster: Roster?) throws(DeskError) {
        self.site = site
        guard let roster else { role = nil; return }
        let members = roster.activeMembers
        guard let member = members.first(where: { $0.site == site.rawValue }) else {
            let known = members.map(\.site).sorted()
            let near = StrictJSON.nearest(site.rawValue, in: Set(known), within: 2).map { " Did you mean \"\($0)\"?" } ?? ""
            throw DeskError(.invalidInput, field: "to", "\(site) is not a site of the roster (known: \(known.joined(separator: ", "))).\(near)"
                            + " `tierline roster list` shows them; a site that was removed takes no handoff.")
        }
        role = member.role
    }

    /// Why a store with `role` cannot accept a handoff: the rule by which every replica skips the
    /// change of the owning site that an accept writes (``Authorization``), or `nil`.
    static func refusal(role: SiteRole, site: SiteID) -> String? {
        Authorization.refusal(.set(.owner, .owner(epoch: 1, site: site)), on: .ticket(UUID()), by: role)
    }

    /// Refuses a request that the receiver could never accept.
    func checkCanAccept() throws(DeskError) {
        guard let role, let refusal = Self.refusal(role: role, site: site) else { return }
        throw DeskError(.notPermitted, field: "to", "\(site) is a \(role.rawValue), which could never accept the handoff: \(refusal). Escalate to a site or the coordinator")
    }
}
