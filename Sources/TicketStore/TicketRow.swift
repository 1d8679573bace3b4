import Foundation
import GRDB
import TicketModel

/// A row of the materialized `ticket` table as GRDB reads it, with its tags and watchers, and its
/// columns by name for queries (`TicketRow.Columns.status == "open"`).
struct TicketRow: Decodable, FetchableRecord, TableRecord {
    static let databaseTableName = "ticket"

    enum Columns {
        static let id = Column(CodingKeys.id)
        static let displayNumber = Column(CodingKeys.displayNumber)
        static let number = Column("number")
        static let status = Column(CodingKeys.status)
        static let originSite = Column(CodingKeys.originSite)
        static let deleted = Column(CodingKeys.deleted)
        static let createdHLC = Column(CodingKeys.createdHLC)
    }

    var id: String
    var displayNumber: String
    var subject: String
    var status: String
    var priority: String
    var assignee: String?
    var group: String?
    var category: String?
    var customer: String?
    var channel: String?
    var originSite: String
    var owningSite: String
    var owningEpoch: Int64
    var escalationCycle: Int64
    var escalationLevel: Int64
    var mergedInto: String?
    var deleted: Bool
    var createdHLC: Int64?
    var updatedHLC: Int64?
    var conflictCount: Int
    /// The ticket's tags and watchers as JSON arrays (any text, control characters too, survives).
    var tagList: String
    var watcherList: String

    /// Tickets that have been created (a row made only by a stray change has no number), matching
    /// `filter`, newest first, with their tags and watchers.
    static func fetch(_ db: Database, _ filter: SQLExpression, limit: Int = 10_000) throws -> [TicketRow] {
        try request(filter, limit: limit).fetchAll(db)
    }

    /// The statement ``fetch(_:_:limit:)`` runs. Its order is served by `ticket_on_created` (or, with
    /// an equality on status or origin site, `ticket_on_status_created` / `ticket_on_originSite_created`),
    /// so a page reads its rows in order instead of sorting the table (`TicketListPlanTests`); those
    /// indexes hold the stamp alone, and SQLite sorts the few tickets of one stamp by id as it walks.
    ///
    /// Its statement is kept prepared (the values are arguments, so each filter's shape is one
    /// statement): a write that answers with its ticket read it back through a statement compiled
    /// anew each time, and compiling it was a tenth of a single-ticket write.
    static func request(_ filter: SQLExpression, limit: Int = 10_000) -> SQLRequest<TicketRow> {
        SQLRequest(literal: """
            SELECT \(columns) FROM ticket t WHERE \(Columns.number) IS NOT NULL AND \(filter)
            ORDER BY \(Columns.createdHLC.desc), \(Columns.id.desc) LIMIT \(limit)
            """, cached: true)
    }

    /// What a row is read from, over `ticket t`: its columns, and its tags and watchers as JSON arrays.
    static var columns: SQL {
        func elements(_ set: String) -> SQL {
            """
            (SELECT json_group_array(element) FROM (SELECT element FROM ticketElement e
              WHERE e.ticket = t.id AND e.setName = \(set) ORDER BY element))
            """
        }
        return "t.*, \(elements("tags")) AS tagList, \(elements("watchers")) AS watcherList"
    }

    var record: TicketRecord {
        func list(_ json: String) -> [String] {
            let items = (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
            return items.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        func iso(_ stamp: Int64?) -> String? { stamp.map { HLC(rawValue: UInt64(bitPattern: $0)).iso8601 } }
        return TicketRecord(
            id: id, displayNumber: displayNumber, subject: subject, status: status, priority: priority, assignee: assignee,
            group: group, category: category, customer: customer, channel: channel, tags: list(tagList), watchers: list(watcherList),
            originSite: originSite, owningSite: owningSite, owningEpoch: UInt64(owningEpoch), escalationCycle: UInt64(escalationCycle),
            escalationLevel: UInt64(escalationLevel), mergedInto: mergedInto, deleted: deleted, createdAt: iso(createdHLC),
            updatedAt: iso(updatedHLC), conflictCount: conflictCount)
    }
}
