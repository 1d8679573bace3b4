import Foundation
import GRDB
import PostgresNIO
import Testing
import TestSupport
import TicketModel
import TicketStore
@testable import Mirror

/// The mirror's parts that need no PostgreSQL: reading the URL, and reading batches of the store's
/// log. The whole mirror against a real server: Tests/CLI/postgres-mirror.sh.
struct PostgresTargetTests {
    @Test func readsEveryPartOfTheURL() throws {
        let target = try PostgresTarget(url: "postgres://mirror:pw@db.example:6543/reports?sslmode=require", schema: "tl", environment: [:])
        #expect(target.host == "db.example" && target.port == 6543 && target.user == "mirror" && target.database == "reports")
        #expect(target.password == "pw" && target.sslMode == .require && target.schema == "tl")
        #expect(!target.description.contains("pw"), "the password is never shown")
    }

    @Test func takesThePasswordFromTheEnvironmentAndDefaultsToPrefer() throws {
        let target = try PostgresTarget(url: "postgresql://mirror@127.0.0.1/reports", schema: "tierline", environment: ["PGPASSWORD": "secret"])
        #expect(target.password == "secret" && target.port == 5432 && target.sslMode == .prefer)
    }

    @Test(arguments: [
        ("mysql://a@b/c", "postgres://USER@HOST"),
        ("postgres://b/c", "names no role"),
        ("postgres://a@b", "names no database"),
        ("postgres://a@b/c?sslmode=always", "sslmode 'always' is not one of"),
        ("postgres://a@b/c?sslmode=verify-full", "needs sslrootcert=FILE"),
        ("postgres://a@b/c?application_name=x", "'application_name' is not known here"),
    ])
    func refusesAWrongURLSayingWhatIsWrong(url: String, says: String) {
        #expect {
            _ = try PostgresTarget(url: url, schema: "tl", environment: [:])
        } throws: { error in
            (error as? MirrorError)?.code == .badTarget && "\(error)".contains(says)
        }
    }

    @Test(arguments: ["Tierline", "1abc", "a-b", "a;drop", "", "user", "select", "order", "pg_catalog"])
    func refusesASchemaThatIsNotAPlainName(schema: String) {
        #expect(throws: MirrorError.self) { _ = try PostgresTarget(url: "postgres://a@b/c", schema: schema, environment: [:]) }
    }
}

struct StoreBatchTests {
    @Test func batchesCoverTheLogInOrderAndEveryTouchedTicket() throws {
        let store = try memoryStore("north")
        var ids: [String] = []
        for n in 1...12 {
            let record = try store.createTicket(TicketDraft(subject: "ticket \(n)", tags: ["t\(n % 3)"]))
            ids.append(record.id.lowercased())
        }
        var cursors: [String: Int64] = [:]
        var touched = Set<String>()
        var batches = 0
        while true {
            let batch = try store.writer.read { db in try StoreBatch.read(db, after: cursors, limits: BatchLimits(blocks: 5)) }
            if batch.isEmpty { break }
            batches += 1
            #expect(batch.blocks <= 5)
            for cursor in batch.cursors {
                #expect(cursor.seq > cursors[cursor.origin] ?? 0, "a cursor only moves forward")
                cursors[cursor.origin] = cursor.seq
            }
            touched.formUnion(batch.tickets)
            // The rows are the store's current ones, every column in the table's order.
            #expect(batch.rows["ticket"]?.count == batch.tickets.count)
            #expect(batch.rows["ticket"]?.allSatisfy { $0.count == MirrorSchema.ticket.columns.count } == true)
            #expect(batch.rows["ticket_element"]?.count == batch.tickets.count, "one tag each")
        }
        #expect(batches >= 3)
        #expect(touched == Set(ids))
        let lag = try store.writer.read { db in try StoreBatch.lag(db, after: cursors) }
        #expect(lag.blocks == 0 && lag.oldestHLC == nil)
        let behind = try store.writer.read { db in try StoreBatch.lag(db, after: [:]) }
        #expect(behind.blocks == cursors.values.reduce(0, +) && behind.oldestHLC != nil)
    }

    @Test func everyBatchCarriesTheRowsOfMergingTicketsItDidNotTouch() throws {
        let store = try memoryStore("north")
        let a = try store.createTicket(TicketDraft(subject: "a")).id
        let b = try store.createTicket(TicketDraft(subject: "b")).id
        _ = try store.update(a, [(.mergedInto, .ticket(UUID(uuidString: b)!))])
        var cursors: [String: Int64] = [:]
        while true {
            let batch = try store.writer.read { db in try StoreBatch.read(db, after: cursors, limits: BatchLimits()) }
            if batch.isEmpty { break }
            for cursor in batch.cursors { cursors[cursor.origin] = cursor.seq }
        }
        // A later block touches only b, asking to merge it back into a: the store's merge
        // resolution rewrites a's row too, so the batch must carry a's current row.
        _ = try store.update(b, [(.mergedInto, .ticket(UUID(uuidString: a)!))])
        let batch = try store.writer.read { db in try StoreBatch.read(db, after: cursors, limits: BatchLimits()) }
        #expect(batch.tickets == [b.lowercased()])
        let rows = batch.rows["ticket"] ?? []
        let current = try store.writer.read { db in try StoreBatch.fetch(db, MirrorSchema.ticket, keyColumn: "id", ids: [a.lowercased(), b.lowercased()]) }
        #expect(Set(rows.map { $0.map(\.description) }) == Set(current.map { $0.map(\.description) }))
    }

    /// Only the touched tickets' merge graphs come along: another merged pair is not read again.
    @Test func aBatchCarriesTheMergeGraphOfWhatItTouchedOnly() throws {
        let store = try memoryStore("north")
        let ids = try (0..<5).map { try store.createTicket(TicketDraft(subject: "t\($0)")).id.lowercased() }
        // 0 → 1 → 2 in one graph; 3 → 4 in another.
        _ = try store.update(ids[0], [(.mergedInto, .ticket(UUID(uuidString: ids[1])!))])
        _ = try store.update(ids[1], [(.mergedInto, .ticket(UUID(uuidString: ids[2])!))])
        _ = try store.update(ids[3], [(.mergedInto, .ticket(UUID(uuidString: ids[4])!))])
        let linked = try store.writer.read { db in try StoreBatch.mergeNeighbours(db, of: [ids[2]]) }
        #expect(linked == [ids[0], ids[1]].sorted())
        #expect(try store.writer.read { db in try StoreBatch.mergeNeighbours(db, of: [ids[4]]) } == [ids[3]])
        // The lookups read the partial indexes, not the whole table.
        let plan = try store.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT id FROM ticket WHERE mergeCandidate IN (?, ?) UNION SELECT id FROM ticket WHERE mergedInto IN (?)",
                             arguments: ["x", "y", "z"]).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("ticket_on_mergeCandidate") } && plan.contains { $0.contains("ticket_on_mergedInto") }, "\(plan)")
    }

    @Test func aBatchStopsAtTheEntityLimit() throws {
        let store = try memoryStore("north")
        for n in 1...6 { _ = try store.createTicket(TicketDraft(subject: "ticket \(n)")) }
        let batch = try store.writer.read { db in try StoreBatch.read(db, after: [:], limits: BatchLimits(blocks: 100, entities: 2)) }
        #expect(batch.tickets.count == 2 && batch.blocks == 2)
    }

    @Test(arguments: [Double.infinity, -.infinity, 1e300, -1e19])
    func refusesADoubleThatIsNoBigint(value: Double) {
        var binds = PostgresBindings()
        #expect(throws: MirrorError.self) { try PostgresMirror.bind(value.databaseValue, as: .bigint, into: &binds) }
    }

    @Test func textWithNULIsStoredWithAReplacementCharacter() {
        #expect(PostgresMirror.clean("a\u{0}b") == "a\u{FFFD}b")
        #expect(PostgresMirror.clean("plain") == "plain")
    }
}

struct BoundedTests {
    struct Late: Error {}

    @Test func returnsTheWorksResult() async throws {
        let value = try await bounded(.seconds(60), timeout: { Late() }) { 42 }
        #expect(value == 42)
    }

    @Test func givesUpOnWorkThatNeverAnswers() async {
        // The work waits for an answer nobody sends, as a query on a vanished connection does.
        let never = AsyncStream<Int> { _ in }
        await #expect(throws: Late.self) {
            _ = try await bounded(.milliseconds(50), timeout: { Late() }) {
                for await value in never { return value }
                return 0
            }
        }
    }

    @Test func cancellingTheCallerEndsItAtOnce() async {
        let task = Task { try await bounded(.seconds(600), timeout: { Late() }) { try await Task.sleep(for: .seconds(600)) } }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
