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
            // A prepared statement: every write that answers with its ticket resolves it first.
            let ids = try String.fetchAll(db.cachedStatement(sql: """
                SELECT id FROM ticket WHERE (id = ? OR displayNumber = ?) AND number IS NOT NULL ORDER BY id
                """), arguments: [trimmed.lowercased(), trimmed.uppercased()])
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
            guard let row = try TicketRow.fetch(db, TicketRow.Columns.id == id.lowercaseText).first else {
                throw StoreError(.unknownTicket, "no ticket \(ref) in this store")
            }
            return row.record
        }
    }

    /// Tickets, newest first, filtered by status and origin site. Deleted tickets are left out.
    public func tickets(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000) throws -> [TicketRecord] {
        let request = Self.ticketsRequest(status: status, site: site, limit: limit)
        return try writer.read { db in try request.fetchAll(db).map(\.record) }
    }

    /// The tickets ``tickets(status:site:limit:)`` returns, handed to `body` one at a time, read in
    /// pages of `pageSize`: memory stays bounded whatever `limit`.
    ///
    /// Each page is its own short read, and `body` runs between them, outside any transaction: a
    /// reader that stops (a pager left open on `ticket list | less`) holds no snapshot that would
    /// keep SQLite from checkpointing the log. Pages continue after the last ticket handed out (its
    /// creation stamp and id), so a ticket created meanwhile is not listed and none is listed twice.
    /// Blocks the calling thread.
    /// ```swift
    /// try store.forEachTicket(status: .open, limit: 1_000_000) { print($0.displayNumber) }
    /// ```
    public func forEachTicket(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000, pageSize: Int = 500,
                              _ body: (TicketRecord) throws -> Void) throws {
        var remaining = limit, after: TicketListPosition? = nil
        while remaining > 0 {
            let size = min(max(1, pageSize), remaining)
            let request = Self.ticketsRequest(status: status, site: site, after: after, limit: size)
            let rows = try writer.read { db in try request.fetchAll(db) }
            for row in rows { try body(row.record) }
            remaining -= rows.count
            guard let last = rows.last, rows.count == size else {
                // A short page ends the stamped tickets; a ticket without a creation stamp sorts after them.
                guard case .created = after else { return }
                after = .unstamped(afterID: nil)
                continue
            }
            after = last.createdHLC.map { .created($0, last.id) } ?? .unstamped(afterID: last.id)
        }
    }

    /// The statement behind ``tickets(status:site:limit:)``, and each page of
    /// ``forEachTicket(status:site:limit:pageSize:_:)``: those after `after`.
    static func ticketsRequest(status: Status? = nil, site: SiteID? = nil, after: TicketListPosition? = nil, limit: Int = 10_000) -> SQLRequest<TicketRow> {
        var filter = !TicketRow.Columns.deleted
        if let status { filter = filter && TicketRow.Columns.status == status.rawValue }
        if let site { filter = filter && TicketRow.Columns.originSite == site.rawValue }
        let created = TicketRow.Columns.createdHLC, id = TicketRow.Columns.id
        switch after {
        case nil: break
        // `created <= stamp` repeats what the OR implies, so SQLite starts the index read at the
        // cursor instead of walking from the newest ticket and skipping every row listed before.
        case let .created(stamp, last): filter = filter && created <= stamp && (created < stamp || (created == stamp && id < last))
        case let .unstamped(last): filter = filter && created == nil && (last.map { id < $0 } ?? true.sqlExpression)
        }
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
                var item = HistoryItem(id: entry.event.id.lowercaseText, kind: HistoryItem.Kind(rawValue: entry.event.kind.rawValue) ?? .internalNote,
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
                                         body: "merge into \(candidate.target.lowercaseText) refused: an earlier merge makes it a cycle",
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

/// Where a page of ``TicketDatabase/forEachTicket(status:site:limit:pageSize:_:)`` ended, newest
/// created first: after a creation stamp and id, or among the tickets without a stamp (listed last).
enum TicketListPosition {
    case created(Int64, String)
    case unstamped(afterID: String?)
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
