import Foundation
import GRDB
import StrictJSON
import TicketModel

extension TicketDatabase {
    /// Finds a ticket by id or display number (`NORTH-12`, any case).
    /// - Throws: `.unknownTicket` when no ticket matches.
    public func resolve(_ ref: String) throws -> UUID {
        try writer.read { db in
            let trimmed = ref.trimmingCharacters(in: .whitespaces)
            let columns = TicketRow.Columns.self
            let ids = try String.fetchAll(db, TicketRow.select(columns.id)
                .filter((columns.id == trimmed.lowercased() || columns.displayNumber == trimmed.uppercased()) && columns.number != nil)
                .order(columns.id))
            guard let text = ids.first else {
                throw StoreError(.unknownTicket, "no ticket \(trimmed.debugDescription) in this store; `tierline ticket list` shows ids and display numbers")
            }
            guard ids.count == 1 else {
                throw StoreError(.unknownTicket, "\(trimmed) names \(ids.count) tickets (\(ids.joined(separator: ", "))); use the id")
            }
            return try Self.uuid(text)
        }
    }

    /// One ticket's materialized record.
    public func ticket(_ ref: String) throws -> TicketRecord {
        let id = try resolve(ref)
        return try writer.read { db in
            guard let row = try TicketRow.fetch(db, TicketRow.Columns.id == id.lowercased).first else {
                throw StoreError(.unknownTicket, "no ticket \(ref) in this store")
            }
            return row.record
        }
    }

    /// Tickets, newest first, filtered by status and origin site. Deleted tickets are left out.
    public func tickets(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000) throws -> [TicketRecord] {
        try scanTickets(status: status, site: site, limit: limit) { scan in
            var records: [TicketRecord] = []
            try scan.forEach { records.append($0) }
            return records
        }
    }

    /// The tickets ``tickets(status:site:limit:)`` returns, read as `body` walks them: a row is
    /// decoded when `body` asks for it and dropped after, so memory stays bounded whatever `limit`.
    ///
    /// `body` runs inside one read transaction, on the calling thread: every walk of the
    /// ``TicketScan`` it gets (a table printer walks twice, to size its columns and then to print)
    /// reads the same snapshot, while writers of other connections go on (WAL).
    /// ```swift
    /// try store.scanTickets(status: .open, limit: 1_000_000) { scan in
    ///     try scan.forEach { print($0.displayNumber) }
    /// }
    /// ```
    public func scanTickets<T>(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000, _ body: (TicketScan) throws -> T) throws -> T {
        let request = Self.ticketsRequest(status: status, site: site, limit: limit)
        return try writer.read { db in try body(TicketScan(db: db, request: request)) }
    }

    /// The statement behind ``tickets(status:site:limit:)``.
    static func ticketsRequest(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000) -> SQLRequest<TicketRow> {
        var filter = !TicketRow.Columns.deleted
        if let status { filter = filter && TicketRow.Columns.status == status.rawValue }
        if let site { filter = filter && TicketRow.Columns.originSite == site.rawValue }
        return TicketRow.request(filter, limit: limit)
    }

    /// A ticket with its whole history: events, field changes and conflicts as one timeline.
    public func detail(_ ref: String) throws -> TicketDetail {
        let record = try ticket(ref)
        var detail = try writer.read { db in
            let state = try Self.fold(db, try Self.uuid(record.id))
            var items: [HistoryItem] = []
            if let created = state.created, let number = state.displayNumber {
                // The opener: the attribution written with the create, in the same block.
                let opener = state.events.first { $0.event.kind == .attribution && $0.stamp == created }?.event.actor
                items.append(HistoryItem(id: "created", kind: .created, stamp: created, tiebreak: "", body: "created \(number)", actor: opener))
            }
            // Who made a block's field and tag changes: its `attribution` event (PROTOCOL §1.5.4; the
            // lowest change index counts), else the agent's escalation record that implied them (a
            // transfer, an accepted handoff). The attribution itself is not a history item.
            var byBlock: [String: String] = [:]
            for entry in state.events.sorted(by: { $0.dot.index < $1.dot.index }) where entry.event.kind == .attribution {
                if byBlock[entry.dot.blockKey] == nil { byBlock[entry.dot.blockKey] = entry.event.actor }
            }
            for entry in state.events where entry.event.kind == .escalation && entry.event.actor != "tierline" {
                if byBlock[entry.dot.blockKey] == nil { byBlock[entry.dot.blockKey] = entry.event.actor }
            }
            for entry in state.events where entry.event.kind != .attribution {
                var item = HistoryItem(id: entry.event.id.lowercased, kind: HistoryItem.Kind(rawValue: entry.event.kind.rawValue) ?? .internalNote,
                                       stamp: entry.stamp, tiebreak: entry.dot.sortKey, body: entry.event.body,
                                       actor: entry.event.actor, visibility: entry.event.visibility.rawValue)
                if entry.event.kind == .escalation { item.record = try? StrictJSON.parse(Array(entry.event.body.utf8)) }
                items.append(item)
            }
            for write in state.writes {
                items.append(HistoryItem(id: write.dot.description, kind: .fieldChange, stamp: write.stamp, tiebreak: write.dot.sortKey,
                                         body: "\(write.field) → \(write.value)", actor: byBlock[write.dot.blockKey], field: write.field.description,
                                         value: write.value == .null ? nil : write.value.description))
            }
            for write in state.elementWrites {
                items.append(HistoryItem(id: write.dot.description, kind: .fieldChange, stamp: write.stamp, tiebreak: write.dot.sortKey,
                                         body: "\(write.set.name.dropLast()) \(write.isAddition ? "+" : "−") \(write.element)",
                                         actor: byBlock[write.dot.blockKey], field: write.set.name, value: write.element))
            }
            for conflict in state.conflicts {
                let kept = [conflict.first, conflict.second].first { $0.dot == conflict.winner }
                let body = "conflict on \(conflict.field): \(conflict.first.value) (\(conflict.first.stamp.site)) vs "
                    + "\(conflict.second.value) (\(conflict.second.stamp.site))" + (kept.map { "; kept \($0.value)" } ?? "")
                items.append(HistoryItem(id: conflict.id, kind: .conflict, stamp: max(conflict.first.stamp, conflict.second.stamp),
                                         tiebreak: "~" + conflict.id, body: body, field: conflict.field.description,
                                         value: kept?.value.description))
            }
            let rejected = try Bool.fetchOne(db, sql: "SELECT mergeRejected FROM ticket WHERE id = ?", arguments: [record.id]) ?? false
            if rejected, let candidate = state.mergeCandidate {
                items.append(HistoryItem(id: "merge-" + candidate.dot.description, kind: .conflict, stamp: candidate.stamp, tiebreak: "~merge",
                                         body: "merge into \(candidate.target.lowercased) refused: an earlier merge makes it a cycle",
                                         field: Field.mergedInto.description))
            }
            items.sort { $0.order < $1.order }
            let custom = state.customFields
            var detail = TicketDetail(ticket: record, customFields: custom, events: items, statusNote: state.statusNote)
            detail.routing = custom["routing"]
            detail.csat = custom["csat_score"].flatMap(Int.init).map { TicketDetail.Satisfaction(score: $0, comment: custom["csat_comment"]) }
            return detail
        }
        detail.customer = try customerHistory(ofTicket: record.id)
        detail.articles = try articles(linkedTo: record.id)
        return detail
    }
}

/// The tickets of a ``TicketDatabase/scanTickets(status:site:limit:_:)`` call; valid only inside it.
public struct TicketScan {
    let db: Database
    let request: SQLRequest<TicketRow>

    /// Reads the tickets in order, handing each to `body` as it is read.
    public func forEach(_ body: (TicketRecord) throws -> Void) throws {
        let rows = try request.fetchCursor(db)
        while let row = try rows.next() { try body(row.record) }
    }
}

extension Dot {
    /// The block that carries the change: its origin and seq.
    var blockKey: String { "\(origin):\(seq)" }

    /// Orders like the dot itself as text: origin, then seq and index as fixed-width numbers (so
    /// change 10 of a block sorts after change 9).
    var sortKey: String {
        let seq = String(seq), index = String(index)
        return "\(origin):\(String(repeating: "0", count: 20 - seq.count))\(seq):\(String(repeating: "0", count: 10 - index.count))\(index)"
    }
}
