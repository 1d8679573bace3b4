import Foundation
import GRDB
import TicketModel

/// Which tickets a queue shows: every filter given must hold. Pages of `limit`, newest activity
/// first, continued with the `cursor` the previous page returned.
public struct TicketListQuery: Sendable, Equatable {
    /// Only these statuses (`nil`: any).
    public var statuses: [Status]?
    public var group: String?
    public var groups: [String]?
    public var assignee: String?
    /// Only tickets with no assignee.
    public var unassigned: Bool
    /// Only tickets owned by this site.
    public var owningSite: String?
    /// Only tickets with (true) or without (false) a conflict to review.
    public var conflicted: Bool?
    /// Words in the subject, or a display number or id.
    public var text: String?
    /// Only these ticket ids (a queue narrowed by another index: SLA state, pending handoffs).
    public var ids: [String]?
    public var limit: Int
    public var cursor: String?

    public init(statuses: [Status]? = nil, group: String? = nil, groups: [String]? = nil, assignee: String? = nil, unassigned: Bool = false,
                owningSite: String? = nil, conflicted: Bool? = nil, text: String? = nil, ids: [String]? = nil, limit: Int = 50, cursor: String? = nil) {
        (self.statuses, self.group, self.groups, self.assignee, self.unassigned) = (statuses, group, groups, assignee, unassigned)
        (self.owningSite, self.conflicted, self.text, self.ids, self.limit, self.cursor) = (owningSite, conflicted, text, ids, limit, cursor)
    }

    /// The statuses of work not yet done.
    public static let unresolved: [Status] = Status.allCases.filter { !$0.isResolved }
}

/// One page of a queue.
public struct TicketPage: Sendable {
    public var tickets: [TicketRecord]
    /// Continues the list after the last ticket of this page; `nil` when it was the last page.
    public var next: String?
}

extension TicketDatabase {
    /// A page of the tickets `query` selects, most recently changed first, and tickets changed at the
    /// same stamp in descending order of their rows here (rowid: for a batch's new tickets, the last
    /// created first; another replica may order such a tie differently).
    /// - Throws: `.invalidInput` for a cursor this store did not make.
    public func listTickets(_ query: TicketListQuery) throws -> TicketPage {
        let limit = Self.pageSize(query)
        let request = try Self.listRequest(query)
        let rows: [TicketRow] = try writer.read { db in try request.fetchAll(db) }
        let page = rows.prefix(limit)
        let next = rows.count > limit ? page.last.map { "\($0.updatedHLC ?? 0).\($0.id)" } : nil
        return TicketPage(tickets: page.map(\.record), next: next)
    }

    static func pageSize(_ query: TicketListQuery) -> Int { max(1, min(query.limit, 1_000)) }

    /// The statement ``listTickets(_:)`` runs: one row more than the page, to tell whether another follows.
    ///
    /// Every page is read in the order of an index, never sorted whole (`TicketListPlanTests` checks
    /// the plans): `ticket_on_updated`, or its per-assignee, per-group, per-owner and per-status
    /// forms for an equality on one of those, or `ticket_conflicted_updated` for the conflicts queue.
    /// A list of several statuses or groups would make SQLite look each value up and sort what it
    /// found, so those terms are written `+t.status IN …` (the `+` keeps SQLite from using an index
    /// for the term) and the order's index is walked, filtered, up to the page's end. Only a list
    /// of ids sorts: at most as many rows as ids given.
    /// - Throws: `.invalidInput` for a cursor this store did not make.
    static func listRequest(_ query: TicketListQuery) throws -> SQLRequest<TicketRow> {
        var conditions: [SQL] = ["t.number IS NOT NULL", "NOT t.deleted"]
        if let statuses = query.statuses {
            let values = statuses.map(\.rawValue)
            conditions.append(values.count > 1 ? "+t.status IN \(values)" : "t.status IN \(values)")
        }
        if let group = query.group { conditions.append("t.\"group\" = \(group)") }
        if let groups = query.groups { conditions.append(groups.count > 1 ? "+t.\"group\" IN \(groups)" : "t.\"group\" IN \(groups)") }
        if let assignee = query.assignee { conditions.append("t.assignee = \(assignee)") }
        // No assignee: NULL or empty. One term, not an OR that SQLite would answer with two lookups and a sort.
        if query.unassigned { conditions.append("COALESCE(t.assignee, '') = ''") }
        if let site = query.owningSite { conditions.append("t.owningSite = \(site)") }
        // Written as `ticket_conflicted_updated`'s condition, so that partial index serves it.
        if let conflicted = query.conflicted { conditions.append(conflicted ? "t.conflictCount > 0" : "t.conflictCount = 0") }
        if let ids = query.ids { conditions.append("t.id IN \(ids.map { $0.lowercased() })") }
        if let text = query.text?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            // LIKE's wildcards in the words are matched as themselves.
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            conditions.append("(t.subject LIKE \("%" + escaped + "%") ESCAPE '\\' OR t.displayNumber = \(text.uppercased()) OR t.id = \(text.lowercased()))")
        }
        if let cursor = query.cursor {
            guard let (stamp, id) = Self.parseCursor(cursor) else {
                throw StoreError(.invalidInput, "is not a cursor this node gave out; start again without it")
            }
            // The first term repeats what the OR implies, so SQLite starts the index read at the
            // cursor instead of walking from the top and skipping every row of the pages before.
            // Among tickets with the cursor's stamp, those after its ticket in rowid order follow (the
            // subquery is read once). A cursor whose ticket is gone (a withdrawn site's, 2.6.1) lists
            // that stamp's tickets again from the first: a page may repeat, none is skipped.
            conditions.append("COALESCE(t.updatedHLC, 0) <= \(stamp)")
            conditions.append("""
                (COALESCE(t.updatedHLC, 0) < \(stamp) OR (COALESCE(t.updatedHLC, 0) = \(stamp) \
                AND t.rowid < COALESCE((SELECT rowid FROM ticket WHERE id = \(id)), \(Int64.max))))
                """)
        }
        let filter = conditions.joined(operator: .and)
        return """
            SELECT \(TicketRow.columns) FROM ticket t WHERE \(filter)
            ORDER BY COALESCE(t.updatedHLC, 0) DESC, t.rowid DESC LIMIT \(pageSize(query) + 1)
            """
    }

    static func parseCursor(_ text: String) -> (Int64, String)? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let stamp = Int64(parts[0]), parts[1].count == 36,
              parts[1].allSatisfy({ $0.isHexDigit || $0 == "-" }) else { return nil }
        return (stamp, String(parts[1]))
    }
}
