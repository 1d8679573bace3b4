import Foundation
import GRDB
import TicketModel
import TicketStore

/// How much one mirror transaction carries at most.
public struct BatchLimits: Sendable, Equatable {
    /// Blocks of the log read per batch.
    public var blocks: Int
    /// Tickets, customers and articles per batch: a batch stops taking blocks once this many are touched.
    public var entities: Int
    /// Tickets whose dashboard facts one transaction carries, at most.
    public var facts: Int

    public init(blocks: Int = 256, entities: Int = 2_000, facts: Int = 1_000) {
        self.blocks = max(1, blocks)
        self.entities = max(1, entities)
        self.facts = max(1, facts)
    }
}

/// One batch of the store's log and the current rows of what it touched, read in one SQLite read
/// transaction, so the rows are exactly those of the store with the new cursor's blocks applied
/// (and possibly later ones, which a later batch writes again: the same rows).
struct StoreBatch {
    /// Per origin that moved: the highest seq now covered, and that block's stamp.
    var cursors: [(origin: String, seq: Int64, hlc: Int64)] = []
    var blocks = 0
    var tickets: [String] = []
    var customers: [String] = []
    var articles: [String] = []
    /// Current rows by mirrored table name, in the table's column order.
    var rows: [String: [[DatabaseValue]]] = [:]
    var sites: [[DatabaseValue]] = []
    /// The store's adopted roster version (0: none) when the batch was read.
    var rosterVersion: Int64 = 0
    /// Whether the store no longer holds blocks the cursor covers (a removed site's blocks taken
    /// back): what they touched was folded again without a new block, so the mirror starts over.
    var logShrank = false

    var isEmpty: Bool { cursors.isEmpty }
    /// Whether the batch stopped at one of its limits: more blocks may wait.
    var isFull = false

    /// The next batch after `cursors` (per origin, the highest seq mirrored).
    static func read(_ db: Database, after cursors: [String: Int64], limits: BatchLimits) throws -> StoreBatch {
        var batch = StoreBatch()
        var tickets = Set<String>(), customers = Set<String>(), articles = Set<String>()
        let heads = try Row.fetchAll(db, sql: "SELECT site, seq FROM versionEntry ORDER BY site")
        batch.rosterVersion = try Int64.fetchOne(db, sql: "SELECT version FROM roster WHERE id = 1") ?? 0
        let held = Dictionary(heads.map { ($0["site"] as String, $0["seq"] as Int64) }, uniquingKeysWith: max)
        batch.logShrank = cursors.contains { origin, seq in seq > held[origin] ?? 0 }
        for head in heads {
            let origin: String = head["site"], top: Int64 = head["seq"]
            let from = cursors[origin] ?? 0
            guard top > from else { continue }
            let room = limits.blocks - batch.blocks
            guard room > 0, tickets.count + customers.count + articles.count < limits.entities else { break }
            var last: (seq: Int64, hlc: Int64)?
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, hlc, bytes FROM block WHERE origin = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                                           arguments: [origin, from, top, room])
            while let row = try rows.next() {
                let bytes: Data = row["bytes"]
                let block: Block
                do { block = try Block(decoding: bytes) } catch {
                    throw MirrorError(.postgres, "block \(origin) \(row["seq"] as Int64) of the store does not decode (\(error)); check the store with `tierline status`")
                }
                for change in block.changes {
                    let id = change.entity.id.lowercaseText
                    switch change.entity.kind {
                    case .ticket: tickets.insert(id)
                    case .customer: customers.insert(id)
                    case .article: articles.insert(id)
                    case .config: break
                    }
                }
                last = (row["seq"], row["hlc"])
                batch.blocks += 1
                if tickets.count + customers.count + articles.count >= limits.entities { break }
            }
            // No row in the range (a log that starts later, after a restore): the head covers it.
            let headStamp = try Int64.fetchOne(db, sql: "SELECT hlc FROM block WHERE origin = ? AND seq = ?", arguments: [origin, top]) ?? 0
            let covered = last ?? (top, headStamp)
            batch.cursors.append((origin, covered.seq, covered.hlc))
        }
        guard !batch.isEmpty else { return batch }
        batch.isFull = batch.blocks >= limits.blocks || tickets.count + customers.count + articles.count >= limits.entities
        batch.tickets = tickets.sorted()
        batch.customers = customers.sorted()
        batch.articles = articles.sorted()
        // A merge resolves over the tickets its requests link, so a block touching one ticket can
        // change the mergedInto, mergeRejected and status of another in its merge graph: those rows
        // come along (an unchanged row is not rewritten), their child rows only when touched.
        let merging = try Self.mergeNeighbours(db, of: Set(batch.tickets))
        batch.rows[MirrorSchema.ticket.name] = try fetch(db, MirrorSchema.ticket, keyColumn: "id", ids: batch.tickets + merging)
        for child in MirrorSchema.ticketChildren {
            batch.rows[child.name] = try fetch(db, child, keyColumn: "ticket", ids: batch.tickets)
        }
        batch.rows[MirrorSchema.customer.name] = try fetch(db, MirrorSchema.customer, keyColumn: "id", ids: batch.customers)
        batch.rows[MirrorSchema.article.name] = try fetch(db, MirrorSchema.article, keyColumn: "id", ids: batch.articles)
        batch.sites = try Row.fetchAll(db, sql: MirrorSchema.siteQuery).map { row in row.databaseValues.map { $0 } }
        return batch
    }

    /// The tickets linked to `touched` by merge requests and merges, either way and transitively
    /// (their merge graph components), `touched` left out. The store's merge resolution decides a
    /// ticket's merge from the requests of its component alone, so these are the only rows a write
    /// to `touched` can change besides their own. Read through the store's partial indexes on
    /// `mergeCandidate` and `mergedInto`: a fleet's many merged tickets are not read every batch.
    static func mergeNeighbours(_ db: Database, of touched: Set<String>) throws -> [String] {
        var seen = touched, frontier = Array(touched), found: [String] = []
        // A component is a chain of requests; 64 steps is far past any real one.
        for _ in 0..<64 where !frontier.isEmpty {
            var next: [String] = []
            var start = 0
            while start < frontier.count {
                let chunk = Array(frontier[start..<min(frontier.count, start + 300)])
                start += chunk.count
                let marks = chunk.map { _ in "?" }.joined(separator: ",")
                let linked = try String.fetchAll(db, sql: """
                    SELECT id FROM ticket WHERE mergeCandidate IN (\(marks))
                    UNION SELECT id FROM ticket WHERE mergedInto IN (\(marks))
                    UNION SELECT mergeCandidate FROM ticket WHERE id IN (\(marks)) AND mergeCandidate IS NOT NULL
                    UNION SELECT mergedInto FROM ticket WHERE id IN (\(marks)) AND mergedInto IS NOT NULL
                    """, arguments: StatementArguments(chunk + chunk + chunk + chunk))
                for id in linked where seen.insert(id).inserted { next.append(id) }
            }
            found += next
            frontier = next
        }
        return found.sorted()
    }

    /// The rows of `table` whose `keyColumn` is one of `ids`, in chunks the SQLite bind limit allows.
    static func fetch(_ db: Database, _ table: MirrorSchema.Table, keyColumn: String, ids: [String]) throws -> [[DatabaseValue]] {
        var out: [[DatabaseValue]] = []
        var start = 0
        while start < ids.count {
            let chunk = Array(ids[start..<min(ids.count, start + 500)])
            start += chunk.count
            let marks = chunk.map { _ in "?" }.joined(separator: ",")
            let rows = try Row.fetchCursor(db, sql: "SELECT \(table.selectList) FROM \"\(table.source)\" WHERE \"\(keyColumn)\" IN (\(marks))",
                                           arguments: StatementArguments(chunk))
            while let row = try rows.next() { out.append(Array(row.databaseValues)) }
        }
        return out
    }

    /// How far the mirror at `cursors` is behind the store: blocks, and the stamp of the oldest
    /// block not mirrored (`nil`: none).
    static func lag(_ db: Database, after cursors: [String: Int64]) throws -> (blocks: Int64, oldestHLC: Int64?) {
        var blocks: Int64 = 0
        var oldest: Int64?
        for head in try Row.fetchAll(db, sql: "SELECT site, seq FROM versionEntry") {
            let origin: String = head["site"], top: Int64 = head["seq"]
            let from = cursors[origin] ?? 0
            guard top > from else { continue }
            blocks += top - from
            if let hlc = try Int64.fetchOne(db, sql: "SELECT hlc FROM block WHERE origin = ? AND seq > ? ORDER BY seq LIMIT 1", arguments: [origin, from]) {
                oldest = min(oldest ?? hlc, hlc)
            }
        }
        return (blocks, oldest)
    }
}
