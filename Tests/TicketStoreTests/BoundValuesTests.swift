import Foundation
import GRDB
import GRDBSQLite
import Testing
@testable import TicketStore

/// `Statement.execute(values:)` binds through SQLite's own calls; it must store what GRDB's
/// `execute(arguments:)` stores, and fail as GRDB does.
struct BoundValuesTests {
    private static let values: [DatabaseValue] = [
        .null, 0.databaseValue, Int64.min.databaseValue, Int64.max.databaseValue, (-2.5).databaseValue,
        "".databaseValue, "plain".databaseValue, "zwölf – 十二 – \u{1F600}".databaseValue, "nul\u{0}inside".databaseValue,
        Data().databaseValue, Data([0, 1, 2, 255]).databaseValue, true.databaseValue,
        Double.nan.databaseValue, Double.infinity.databaseValue, (-Double.infinity).databaseValue, (-0.0).databaseValue,
        Data([9, 8, 7, 6])[1...].databaseValue, Data([9, 8])[2...].databaseValue, "\u{0}".databaseValue, false.databaseValue,
    ]

    private func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in try db.execute(sql: """
                CREATE TABLE t (n INTEGER PRIMARY KEY, v UNIQUE, how TEXT NOT NULL);
                CREATE TABLE u (n INTEGER PRIMARY KEY, v, how TEXT NOT NULL);
                """) }
        return queue
    }

    @Test func storesEveryKindOfValueAsGRDBDoes() throws {
        let queue = try database()
        let rows = try queue.write { db in
            let insert = "INSERT INTO u (n, v, how) VALUES (?, ?, ?)"
            for (n, value) in Self.values.enumerated() {
                try db.cachedStatement(sql: insert).execute(values: [(2 * n).databaseValue, value, "bound".databaseValue])
                try db.execute(sql: "INSERT INTO u (n, how) VALUES (?, ?)", arguments: [2 * n + 1, "grdb"])
                try db.execute(sql: "UPDATE u SET v = ? WHERE n = ?", arguments: StatementArguments([value, 2 * n + 1] as [(any DatabaseValueConvertible)?]))
            }
            return try Row.fetchAll(db, sql: "SELECT v, typeof(v) AS kind, length(CAST(v AS BLOB)) AS length FROM u ORDER BY n")
        }
        #expect(rows.count == 2 * Self.values.count)
        for (n, value) in Self.values.enumerated() {
            let bound = rows[2 * n], grdb = rows[2 * n + 1]
            #expect(bound == grdb, "value \(n): \(bound) against GRDB's \(grdb)")
        }
        #expect(rows[14]["v"] as DatabaseValue == Self.values[7], "a text of several scripts")
        // A text ends at its first NUL, as GRDB binds it.
        #expect(rows[16]["v"] as String == "nul" && rows[16]["length"] as Int == 3)
        // The empty text is text, not NULL; the empty blob is a blob.
        #expect(rows[10]["kind"] as String == "text" && rows[10]["length"] as Int == 0)
        #expect(rows[18]["kind"] as String == "blob" && rows[18]["length"] as Int == 0)
    }

    @Test func aStatementRunsAgainWithOtherValues() throws {
        let queue = try database()
        let stored = try queue.write { db in
            for n in 0..<3 {
                try db.cachedStatement(sql: "INSERT INTO t (n, v, how) VALUES (?, ?, ?)").execute(values: [n.databaseValue, "v\(n)".databaseValue, "x".databaseValue])
            }
            return try String.fetchAll(db, sql: "SELECT v FROM t ORDER BY n")
        }
        #expect(stored == ["v0", "v1", "v2"])
    }

    /// A statement kept by its caller after a failed step (GRDB takes it out of its cache, a caller
    /// may still hold it) runs again with the next values.
    @Test func aStatementRunsAgainAfterItsStepFailed() throws {
        let queue = try database()
        let stored = try queue.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO t (n, v, how) VALUES (?, ?, ?)")
            try insert.execute(values: [1.databaseValue, "same".databaseValue, "x".databaseValue])
            #expect(throws: DatabaseError.self) { try insert.execute(values: [2.databaseValue, "same".databaseValue, "x".databaseValue]) }
            try insert.execute(values: [3.databaseValue, "other".databaseValue, "x".databaseValue])
            return try String.fetchAll(db, sql: "SELECT v FROM t ORDER BY n")
        }
        #expect(stored == ["same", "other"])
    }

    /// A value longer than the connection stores is refused before anything is bound: the statement
    /// keeps no half of the values for a later run.
    @Test func aValueTooLongIsRefusedBeforeAnythingIsBound() throws {
        let queue = try database()
        let stored = try queue.write { db in
            sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, 100)
            let insert = try db.makeStatement(sql: "INSERT INTO t (n, v, how) VALUES (?, ?, ?)")
            try insert.execute(values: [1.databaseValue, "first".databaseValue, "x".databaseValue])
            for long: DatabaseValue in [String(repeating: "a", count: 101).databaseValue, Data(count: 101).databaseValue] {
                #expect {
                    try insert.execute(values: [2.databaseValue, long, "x".databaseValue])
                } throws: { error in
                    (error as? DatabaseError)?.resultCode == .SQLITE_TOOBIG && "\(error)".contains("argument 2 holds 101 bytes")
                }
            }
            // A value within the limit is stored (the limit also bounds the whole row).
            try insert.execute(values: [3.databaseValue, String(repeating: "b", count: 50).databaseValue, "x".databaseValue])
            return try Int.fetchAll(db, sql: "SELECT n FROM t ORDER BY n")
        }
        #expect(stored == [1, 3])
    }

    @Test func theWrongNumberOfValuesIsRefusedAndNothingIsWritten() throws {
        let queue = try database()
        for values: [DatabaseValue] in [[1.databaseValue, "a".databaseValue], [1.databaseValue, "a".databaseValue, "b".databaseValue, "c".databaseValue]] {
            #expect {
                try queue.write { db in try db.cachedStatement(sql: "INSERT INTO t (n, v, how) VALUES (?, ?, ?)").execute(values: values) }
            } throws: { error in
                (error as? DatabaseError)?.resultCode == .SQLITE_MISUSE && "\(error)".contains("takes 3")
            }
        }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 0)
    }

    @Test func aConstraintFailsAsThroughGRDBAndTheNextWriteWorks() throws {
        let queue = try database()
        let insert = "INSERT INTO t (n, v, how) VALUES (?, ?, ?)"
        try queue.write { db in try db.cachedStatement(sql: insert).execute(values: [1.databaseValue, "same".databaseValue, "x".databaseValue]) }
        for values: [DatabaseValue] in [[2.databaseValue, "same".databaseValue, "x".databaseValue], [3.databaseValue, "other".databaseValue, .null]] {
            #expect {
                try queue.write { db in try db.cachedStatement(sql: insert).execute(values: values) }
            } throws: { error in
                (error as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT
            }
        }
        try queue.write { db in try db.cachedStatement(sql: insert).execute(values: [4.databaseValue, "new".databaseValue, "x".databaseValue]) }
        #expect(try queue.read { db in try String.fetchAll(db, sql: "SELECT v FROM t ORDER BY n") } == ["same", "new"])
    }
}
