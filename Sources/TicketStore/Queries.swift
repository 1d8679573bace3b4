import Foundation
import GRDB
import TicketModel

extension TicketDatabase {
    /// Finds a ticket by id or display number (`NORTH-12`, any case).
    /// - Throws: `.unknownTicket` when no ticket matches.
    public func resolve(_ ref: String) throws -> UUID {
        try writer.read { db in
            let trimmed = ref.trimmingCharacters(in: .whitespaces)
            let ids = try String.fetchAll(db, sql: "SELECT id FROM ticket WHERE (id = ? OR displayNumber = ?) AND number IS NOT NULL ORDER BY id",
                                          arguments: [trimmed.lowercased(), trimmed.uppercased()])
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
            guard let record = try Self.records(db, where: "id = ?", [id.lowercased]).first else {
                throw StoreError(.unknownTicket, "no ticket \(ref) in this store")
            }
            return record
        }
    }

    /// Tickets, newest first, filtered by status and origin site. Deleted tickets are left out.
    public func tickets(status: Status? = nil, site: SiteID? = nil, limit: Int = 10_000) throws -> [TicketRecord] {
        try writer.read { db in
            var clauses = ["NOT deleted"]
            var args: [(any DatabaseValueConvertible)?] = []
            if let status { clauses.append("status = ?"); args.append(status.rawValue) }
            if let site { clauses.append("originSite = ?"); args.append(site.rawValue) }
            return try Self.records(db, where: clauses.joined(separator: " AND "), StatementArguments(args)!, limit: limit)
        }
    }

    static func records(_ db: Database, where clause: String, _ args: StatementArguments, limit: Int = 10_000) throws -> [TicketRecord] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT t.*, (SELECT json_group_array(element) FROM (SELECT element FROM ticketElement e
                          WHERE e.ticket = t.id AND e.setName = 'tags' ORDER BY element)) AS tagList,
                        (SELECT json_group_array(element) FROM (SELECT element FROM ticketElement e
                          WHERE e.ticket = t.id AND e.setName = 'watchers' ORDER BY element)) AS watcherList
            FROM ticket t WHERE number IS NOT NULL AND (\(clause)) ORDER BY createdHLC DESC, id LIMIT \(limit)
            """, arguments: args)
        return rows.map { row in
            // Elements travel as a JSON array, so any text (even control characters) survives.
            func list(_ column: String) -> [String] {
                guard let json = row[column] as String? else { return [] }
                let items = (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
                return items.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            }
            return TicketRecord(
                id: row["id"], displayNumber: row["displayNumber"], subject: row["subject"], status: row["status"],
                priority: row["priority"], assignee: row["assignee"], group: row["group"], category: row["category"],
                customer: row["customer"], channel: row["channel"], tags: list("tagList"), watchers: list("watcherList"),
                originSite: row["originSite"], owningSite: row["owningSite"], owningEpoch: UInt64(row["owningEpoch"] as Int64),
                escalationCycle: UInt64(row["escalationCycle"] as Int64), escalationLevel: UInt64(row["escalationLevel"] as Int64),
                mergedInto: row["mergedInto"], deleted: row["deleted"],
                createdAt: (row["createdHLC"] as Int64?).map { HLC(rawValue: UInt64(bitPattern: $0)).iso8601 },
                updatedAt: (row["updatedHLC"] as Int64?).map { HLC(rawValue: UInt64(bitPattern: $0)).iso8601 },
                conflictCount: row["conflictCount"])
        }
    }

    /// A ticket with its whole history: events, field changes and conflicts as one timeline.
    public func detail(_ ref: String) throws -> TicketDetail {
        let record = try ticket(ref)
        var detail = try writer.read { db in
            let state = try Self.fold(db, try Self.uuid(record.id))
            var items: [HistoryItem] = []
            if let created = state.created, let number = state.displayNumber {
                items.append(HistoryItem(id: "created", kind: .created, stamp: created, tiebreak: "", body: "created \(number)"))
            }
            for entry in state.events {
                items.append(HistoryItem(id: entry.event.id.lowercased, kind: HistoryItem.Kind(rawValue: entry.event.kind.rawValue) ?? .internalNote,
                                         stamp: entry.stamp, tiebreak: entry.dot.sortKey, body: entry.event.body,
                                         actor: entry.event.actor, visibility: entry.event.visibility.rawValue))
            }
            for write in state.writes {
                items.append(HistoryItem(id: write.dot.description, kind: .fieldChange, stamp: write.stamp, tiebreak: write.dot.sortKey,
                                         body: "\(write.field) → \(write.value)", field: write.field.description,
                                         value: write.value == .null ? nil : write.value.description))
            }
            for write in state.elementWrites {
                items.append(HistoryItem(id: write.dot.description, kind: .fieldChange, stamp: write.stamp, tiebreak: write.dot.sortKey,
                                         body: "\(write.set.name.dropLast()) \(write.isAddition ? "+" : "−") \(write.element)",
                                         field: write.set.name, value: write.element))
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

extension Dot {
    /// Orders like the dot itself as text: origin, then seq and index as fixed-width numbers (so
    /// change 10 of a block sorts after change 9).
    var sortKey: String {
        let seq = String(seq), index = String(index)
        return "\(origin):\(String(repeating: "0", count: 20 - seq.count))\(seq):\(String(repeating: "0", count: 10 - index.count))\(index)"
    }
}
