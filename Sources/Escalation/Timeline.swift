import Foundation
import TicketModel

/// A record of a ticket's log with the event id it is stored under and the site that wrote it.
public struct StoredRecord: Sendable, Hashable {
    public var id: UUID
    public var record: EscalationRecord
    /// Who wrote (or fired) it: the origin of the block that carried it; `nil` for a record derived
    /// now and not yet written.
    public var site: SiteID?
    /// The agent who wrote it (`--actor`), or `nil` for a record automation derived (`tierline`).
    public var actor: String? = nil
    /// The stamp (hybrid clock, then site) of the event that carries it: its causal position among
    /// records written at one instant; `nil` for a record derived now and not yet written.
    public var stamp: Stamp? = nil
}

/// What the SLA and ladder rules read of a ticket: when things happened, in milliseconds.
///
/// Times are the physical part of the HLC stamps of the blocks (derived deadlines use event HLCs,
/// so every replica computes the same ones), except for records, which carry their own `at`.
public struct TicketFacts: Sendable {
    public let id: UUID
    public let created: Int64
    public let priority: Priority
    public let category: String?
    public let ownerSite: SiteID?
    public let ownerEpoch: UInt64
    public let status: Status
    /// Status changes, oldest first; the first entry is the status at creation.
    public let statuses: [(at: Int64, status: Status)]
    public let publicReplies: [Int64]
    public let customerMessages: [Int64]
    /// When an assignee was first set.
    public let ownedAt: Int64?
    public let records: [StoredRecord]
    /// Stamped writes, oldest first, so rules can ask what a field was at a moment.
    let priorities: [(at: Int64, value: Priority)]
    let categories: [(at: Int64, value: String?)]
    let owners: [(at: Int64, value: (UInt64, SiteID))]
    let origin: SiteID?
    public let eventIDs: Set<UUID>
    public let match: MatchFacts

    public init(_ state: TicketState) {
        id = state.id
        created = Int64(state.created?.hlc.millis ?? 0)
        priority = state.priority
        category = state.text(.category)
        ownerSite = state.owner.site
        ownerEpoch = state.owner.epoch
        status = state.baseStatus
        func ms(_ stamp: Stamp) -> Int64 { Int64(stamp.hlc.millis) }
        publicReplies = state.events.filter { $0.event.kind == .agentReply && $0.event.visibility == .public }.map { ms($0.stamp) }
        customerMessages = state.events.filter { $0.event.kind == .customerMessage }.map { ms($0.stamp) }
        ownedAt = state.writes.filter { $0.field == .assignee && $0.value != .null }.map { ms($0.stamp) }.min()
        records = state.events.compactMap { entry in
            guard entry.event.kind == .escalation, let record = EscalationRecord.decode(entry.event.body) else { return nil }
            return StoredRecord(id: entry.event.id, record: record, site: entry.stamp.site,
                                actor: entry.event.actor == "tierline" || entry.event.actor.isEmpty ? nil : entry.event.actor,
                                stamp: entry.stamp)
        }.inRecordOrder()
        eventIDs = Set(state.events.map(\.event.id))
        statuses = TicketFacts.timeline(state)
        func history<T>(_ field: Field, _ value: (FieldValue) -> T?) -> [(at: Int64, value: T)] {
            state.writes.filter { $0.field == field }.sorted { ($0.stamp, $0.dot) < ($1.stamp, $1.dot) }
                .compactMap { write in value(write.value).map { (ms(write.stamp), $0) } }
        }
        priorities = history(.priority) { $0.text.flatMap(Priority.init(rawValue:)) }
        categories = history(.category) { value -> String?? in value == .null ? .some(nil) : value.text.map { .some($0) } }
        owners = history(.owner) { value -> (UInt64, SiteID)? in
            if case .owner(let epoch, let site) = value { return (epoch, site) } else { return nil }
        }
        origin = state.originSite
        match = MatchFacts(priority: state.priority, customerTier: state.customFields["customer_tier"],
                           channel: state.text(.channel), site: state.owner.site, category: state.text(.category),
                           slaPolicy: state.customFields[RoutedEscalation.policyField])
    }

    /// The priority at `t` by the writes stamped up to then (`normal` before any, as for the ticket).
    public func priority(at t: Int64) -> Priority { priorities.last { $0.at <= t }?.value ?? .normal }

    /// The category at `t`.
    public func category(at t: Int64) -> String? { categories.last { $0.at <= t }?.value ?? nil }

    /// The owning site at `t`: the largest (epoch, site) written up to then, else the origin.
    public func owner(at t: Int64) -> SiteID? {
        owners.filter { $0.at <= t }.map(\.value).max { ($0.0, $0.1.rawValue) < ($1.0, $1.1.rawValue) }?.1 ?? origin
    }

    /// Status writes in stamp order; a customer message while solved opens the ticket again.
    private static func timeline(_ state: TicketState) -> [(at: Int64, status: Status)] {
        var changes: [(at: Int64, order: Int, status: Status?)] = state.writes.filter { $0.field == .status }.map {
            (Int64($0.stamp.hlc.millis), 0, $0.value.text.flatMap(Status.init(rawValue:)))
        }
        changes += state.events.filter { $0.event.kind == .customerMessage }.map { (Int64($0.stamp.hlc.millis), 1, nil) }
        changes.sort { ($0.at, $0.order) < ($1.at, $1.order) }
        var out: [(at: Int64, status: Status)] = [(Int64(state.created?.hlc.millis ?? 0), .new)]
        for change in changes {
            let current = out.last!.status
            let next: Status
            if let status = change.status { next = status } else if current == .solved { next = .open } else { continue }
            if next != current { out.append((change.at, next)) }
        }
        // Concurrent writes are ordered by the merge rule, not by time: where the two disagree about
        // the present, the merged status holds from the latest change on.
        if let last = out.last, last.status != state.baseStatus, state.baseStatus != .merged {
            out.append((max(last.at, Int64(state.updated?.hlc.millis ?? 0)), state.baseStatus))
        }
        return out
    }

    /// The spans during which the status satisfies `predicate`; the last may be open (`end = .max`).
    public func spans(where predicate: (Status) -> Bool) -> [TimeSpan] {
        var out: [TimeSpan] = []
        for (i, entry) in statuses.enumerated() where predicate(entry.status) {
            let end = i + 1 < statuses.count ? statuses[i + 1].at : Int64.max
            if end > entry.at { out.append(TimeSpan(start: entry.at, end: end)) }
        }
        return out
    }

    /// The first time at or after `from` that the ticket was resolved.
    public func resolved(after from: Int64) -> Int64? {
        statuses.first { $0.status.isResolved && $0.at >= from }?.at
            ?? (statuses.last { $0.at <= from }.map { $0.status.isResolved ? from : nil } ?? nil)
    }

    /// The newest `sla_applied` record: the pinned versions.
    public var pin: EscalationRecord? { records.last { $0.record.type == .slaApplied }?.record }
}
