import Foundation
import GRDB
import TicketModel

/// A knowledge article written from a ticket's resolution. Every key is always present in JSON.
public struct ArticleRecord: Sendable, Equatable, Encodable {
    public var id: String
    /// `KB-` and the last 8 hex digits of the id (its random part; the first ones are a time): what agents type.
    public var ref: String
    public var title: String
    public var summary: String
    public var rootCause: String
    public var steps: String
    /// The display number of the ticket whose resolution this is.
    @NullEncoded public var sourceTicket: String?
    @NullEncoded public var author: String?
    /// The site that wrote the article.
    @NullEncoded public var site: String?
    @NullEncoded public var createdAt: String?
    @NullEncoded public var updatedAt: String?
    /// How many tickets link to the article (first line used it).
    public var uses: Int

    static func ref(_ id: String) -> String { "KB-" + id.suffix(8).lowercased() }
}

/// A resolution to record as an article.
public struct ArticleDraft: Sendable {
    public var title: String
    public var summary: String
    public var rootCause: String
    public var steps: String
    public var author: String

    public init(title: String, summary: String, rootCause: String, steps: String, author: String) {
        self.title = title
        self.summary = summary
        self.rootCause = rootCause
        self.steps = steps
        self.author = author
    }
}

/// One search hit, best first.
public struct ArticleHit: Sendable, Encodable {
    public var article: ArticleRecord
    /// How the text matched: `phrase` (the exact phrase), `all` (every word) or `any` (some word).
    public var match: String
    /// FTS5's bm25 rank within its match class (lower is better), negated so that higher is better.
    public var score: Double
    /// How well the article matches, 1 to 100, for people: 100 for the first hit, the others by their
    /// ``score`` against it, never more than a hit ranked before them.
    public var relevance: Int
}

/// The element of a ticket's `links` set that records a knowledge article used on it.
enum ArticleLink {
    static let prefix = "kb:"
    static func element(_ article: UUID) -> String { prefix + article.lowercaseText }
}

extension TicketDatabase {
    /// Records the resolution of a solved ticket as a knowledge article.
    @discardableResult
    public func recordResolution(_ ticketRef: String, _ draft: ArticleDraft) throws -> ArticleRecord {
        for (text, what) in [(draft.title, "title"), (draft.summary, "summary"), (draft.rootCause, "root cause"), (draft.steps, "steps")] {
            // Each is one replicated text field (4 KiB).
            try checkText(text, what, max: BlockLimits.maxTextBytes, allowEmpty: false)
        }
        try checkText(draft.author, "author", max: BlockLimits.maxNameBytes, allowEmpty: true)
        let ticket = try resolve(ticketRef)
        let id = UUIDv7.make(millis: wallClock(), random: Self.randomBytes(10))
        try writeLocal { db, _, _ in
            let state = try Self.fold(db, ticket)
            guard state.baseStatus.isResolved else {
                throw StoreError(.refusedWrite, "ticket \(state.displayNumber ?? ticketRef) is \(state.baseStatus.rawValue); record its resolution once it is solved")
            }
            let ref = EntityRef(kind: .article, id: id)
            let fields = [("title", draft.title), ("summary", draft.summary), ("root_cause", draft.rootCause), ("steps", draft.steps),
                          ("source_ticket", state.displayNumber ?? ticket.lowercaseText), ("author", draft.author)]
            // The source ticket is named by the article, not linked: links count the tickets that used it.
            return fields.map { Change(ref, .set(.custom($0.0), .text($0.1))) }
        }
        return try article(id.lowercaseText)
    }

    /// Records that first line used an article on a ticket (a `kb:` link in the ticket's links).
    /// Linking twice changes nothing.
    /// - Parameter actor: who linked it, attributed with the link.
    public func linkArticle(_ ticketRef: String, _ articleRef: String, actor: String? = nil) throws -> (ticket: TicketRecord, article: ArticleRecord) {
        let ticket = try resolve(ticketRef)
        let article = try article(articleRef)
        let articleID = try Self.uuid(article.id)
        try writeLocal { db, _, _ in
            let linked = try Bool.fetchOne(db, sql: "SELECT 1 FROM ticketElement WHERE ticket = ? AND setName = 'links' AND element = ?",
                                           arguments: [ticket.lowercaseText, ArticleLink.element(articleID)]) ?? false
            return linked ? [] : attributed([Change(.ticket(ticket), .addElement(.links, ArticleLink.element(articleID)))], to: ticket, actor: actor)
        }
        return (try self.ticket(ticket.lowercaseText), try self.article(article.id))
    }

    /// Rewrites an article's row and its full-text entry from its fold.
    static func materializeArticle(_ db: Database, _ state: TicketState) throws {
        let f = state.customFields
        let key = state.id.lowercaseText
        let created = state.writes.map(\.stamp).min()
        // The full-text row shares the article row's rowid, so it is replaced through an index, not a scan.
        if let old = try Int64.fetchOne(db, sql: "SELECT rowid FROM article WHERE id = ?", arguments: [key]) {
            try db.execute(sql: "DELETE FROM articleText WHERE rowid = ?", arguments: [old])
        }
        try db.execute(sql: """
            INSERT OR REPLACE INTO article (id, title, summary, rootCause, steps, sourceTicket, author, site, createdHLC, updatedHLC, stateHash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [key, f["title"] ?? "", f["summary"] ?? "", f["root_cause"] ?? "", f["steps"] ?? "", f["source_ticket"],
                             f["author"], created?.site.rawValue, created.map { Int64(bitPattern: $0.hlc.rawValue) },
                             state.updated.map { Int64(bitPattern: $0.hlc.rawValue) }, Data(state.stateHash)])
        try db.execute(sql: "INSERT INTO articleText (rowid, id, title, summary, rootCause, steps) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [db.lastInsertedRowID, key, f["title"] ?? "", f["summary"] ?? "", f["root_cause"] ?? "", f["steps"] ?? ""])
    }

    private static let articleColumns = """
        a.*, (SELECT COUNT(*) FROM ticketElement e WHERE e.setName = 'links' AND e.element = 'kb:' || a.id) AS uses
        """

    static func articleRecord(_ row: Row) -> ArticleRecord {
        let id: String = row["id"]
        func iso(_ column: String) -> String? { (row[column] as Int64?).map { HLC(rawValue: UInt64(bitPattern: $0)).iso8601 } }
        return ArticleRecord(id: id, ref: ArticleRecord.ref(id), title: row["title"], summary: row["summary"], rootCause: row["rootCause"],
                             steps: row["steps"], sourceTicket: row["sourceTicket"], author: row["author"], site: row["site"],
                             createdAt: iso("createdHLC"), updatedAt: iso("updatedHLC"), uses: row["uses"])
    }

    /// The article `ref` names: its id, or `KB-` and the end of its id (at least 4 hex digits).
    public func article(_ ref: String) throws -> ArticleRecord {
        let text = ref.trimmingCharacters(in: .whitespaces).lowercased()
        let suffix = text.hasPrefix("kb-") ? String(text.dropFirst(3)) : text
        guard suffix.count >= 4, suffix.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
            throw StoreError(.unknownTicket, "\(ref.debugDescription) is not an article reference; give KB- and at least 4 hex digits (`tierline kb list` shows them)")
        }
        return try writer.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT \(Self.articleColumns) FROM article a WHERE a.id LIKE '%' || ? ORDER BY a.id LIMIT 2",
                                        arguments: [suffix])
            guard let row = rows.first else {
                throw StoreError(.unknownTicket, "no knowledge article \(ref) in this store; `tierline kb list` shows them (articles from other sites arrive with sync)")
            }
            guard rows.count == 1 else { throw StoreError(.unknownTicket, "\(ref) names more than one article; give its whole id (`tierline kb list --json`)") }
            return Self.articleRecord(row)
        }
    }

    /// The statement behind ``articles(limit:)``, read in `article_on_created`'s order; an article's
    /// uses are counted in `ticketElement_links`.
    static let articlesSQL = "SELECT \(articleColumns) FROM article a ORDER BY a.createdHLC DESC, a.id DESC LIMIT ?"

    /// Every article, newest first.
    public func articles(limit: Int = 1_000) throws -> [ArticleRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: Self.articlesSQL, arguments: [limit]).map(Self.articleRecord)
        }
    }

    /// The articles linked to a ticket.
    public func articles(linkedTo ticketRef: String) throws -> [ArticleRecord] {
        let id = try resolve(ticketRef)
        return try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.articleColumns) FROM article a JOIN ticketElement l ON l.element = 'kb:' || a.id
                WHERE l.ticket = ? AND l.setName = 'links' ORDER BY a.createdHLC
                """, arguments: [id.lowercaseText]).map(Self.articleRecord)
        }
    }

    /// Full-text search over articles (SQLite FTS5, bm25 with the title weighted most). Articles
    /// holding the exact phrase come first, then those holding every word, then those holding some.
    public func searchArticles(_ text: String, limit: Int = 10) throws -> [ArticleHit] {
        // Words only, split on Unicode scalars (a grapheme may join a letter to a quote or an
        // operator), each a quoted FTS5 string with any quote doubled: the query language never
        // reaches FTS5 from the user.
        var words: [String] = []
        var word = String.UnicodeScalarView()
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                word.append(scalar)
            } else if !word.isEmpty {
                words.append(String(word))
                word = String.UnicodeScalarView()
            }
        }
        if !word.isEmpty { words.append(String(word)) }
        words = Array(words.prefix(32))
        guard !words.isEmpty else { throw StoreError(.invalidInput, "the search text has no words; give words to look for") }
        func quote(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let quoted = words.map(quote)
        var classes: [(String, String)] = [("phrase", quote(words.joined(separator: " ")))]
        if words.count > 1 { classes += [("all", quoted.joined(separator: " AND ")), ("any", quoted.joined(separator: " OR "))] }
        return try writer.read { db in
            var seen = Set<String>()
            var hits: [ArticleHit] = []
            for (match, query) in classes where hits.count < limit {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT \(Self.articleColumns), bm25(articleText, 0.0, 10.0, 4.0, 2.0, 1.0) AS rank
                    FROM articleText t JOIN article a ON a.rowid = t.rowid
                    WHERE articleText MATCH ? ORDER BY rank, a.id LIMIT ?
                    """, arguments: [query, limit + seen.count])
                for row in rows where hits.count < limit && seen.insert(row["id"]).inserted {
                    hits.append(ArticleHit(article: Self.articleRecord(row), match: match, score: -(row["rank"] as Double), relevance: 100))
                }
            }
            // bm25's raw figures (often tiny, like 1e-06 in a small knowledge base) mean nothing to a reader.
            let top = hits.first?.score ?? 0
            var ceiling = 100
            for index in hits.indices {
                let share = top > 0 ? Int((100 * hits[index].score / top).rounded()) : 100
                ceiling = max(1, min(ceiling, share))
                hits[index].relevance = ceiling
            }
            return hits
        }
    }
}
