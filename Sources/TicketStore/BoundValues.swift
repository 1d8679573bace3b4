import Foundation
import GRDB
import GRDBSQLite

/// SQLite's "copy the value before the call returns" destructor.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

package extension Statement {
    /// Runs this statement once with `values` bound to its parameters in order.
    ///
    /// Stores what `execute(arguments:)` stores, and runs through the same GRDB execution (its
    /// checks, its transaction tracking, its errors and its statement cache), without building
    /// `StatementArguments`: GRDB boxes each value as an existential, converts it back and binds it
    /// inside one nested closure per value, which was two fifths of a first fact derivation's writer
    /// stage in `perf` (`tierline-bench --dashboard`). SQLite's own calls bind the values, each
    /// copied by SQLite; a text ends at its first NUL, as GRDB binds it.
    ///
    /// Where it differs from GRDB: the statement's `arguments` stay empty (an error names the SQL, not
    /// the values), the values stay bound after it runs, so a later `execute()` without arguments
    /// would run them again (use this or `execute(arguments:)` every time), and a statement whose
    /// last step failed runs again where GRDB would throw that failure once more.
    /// - Throws: `DatabaseError`: `SQLITE_MISUSE` when `values` does not hold one value per parameter,
    ///   `SQLITE_TOOBIG` when a text or blob is longer than the connection allows, both before
    ///   anything is bound; and whatever executing the statement throws.
    func execute(values: [DatabaseValue]) throws {
        let statement = sqliteStatement
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard values.count == expected else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE,
                                message: "wrong number of statement arguments: \(values.count), where the statement takes \(expected)",
                                sql: sql)
        }
        // Checked before GRDB's state changes below, so that no bind can fail after it (but for
        // memory): a statement left half bound would run its NULLs under a later `execute()`.
        let limit = Int(sqlite3_limit(sqlite3_db_handle(statement), SQLITE_LIMIT_LENGTH, -1))
        for (offset, value) in values.enumerated() {
            let length: Int
            switch value.storage {
            case .string(let text): length = text.utf8.count
            case .blob(let data): length = data.count
            default: continue
            }
            guard length <= min(limit, Int(CInt.max)) else {
                throw DatabaseError(resultCode: .SQLITE_TOOBIG,
                                    message: "statement argument \(offset + 1) holds \(length) bytes, more than the \(limit) this connection stores",
                                    sql: sql)
            }
        }
        // A statement whose last step failed returns that step's error from its reset, and is reset
        // all the same: the error was thrown then. (GRDB's reset below would stop the process on it.)
        _ = sqlite3_reset(statement)
        // Resets the statement, clears its bindings and marks its (empty) arguments as bound, so that
        // `execute()` below keeps the bindings made here.
        setUncheckedArguments(StatementArguments())
        for (offset, value) in values.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch value.storage {
            case .null:
                code = sqlite3_bind_null(statement, index)
            case .int64(let number):
                code = sqlite3_bind_int64(statement, index, number)
            case .double(let number):
                code = sqlite3_bind_double(statement, index, number)
            case .string(var text):
                // A text ends at its first NUL, as GRDB binds it (a C string); an empty text has no
                // storage, and a null pointer would bind NULL. (Lengths were checked above.)
                code = text.withUTF8 { bytes in
                    guard let start = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_text(statement, index, "", 0, transient) }
                    var length = bytes.count
                    if let nul = memchr(start, 0, bytes.count) { length = UnsafeRawPointer(nul) - UnsafeRawPointer(start) }
                    return sqlite3_bind_text(statement, index, start, CInt(length), transient)
                }
            case .blob(let data):
                code = data.withUnsafeBytes { bytes in
                    guard let start = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_zeroblob(statement, index, 0) }
                    return sqlite3_bind_blob(statement, index, start, CInt(bytes.count), transient)
                }
            }
            guard code == SQLITE_OK else {
                let reason = String(cString: sqlite3_errmsg(sqlite3_db_handle(statement)))
                // No half-bound statement is left for a later `execute()`: every value goes back to NULL.
                sqlite3_clear_bindings(statement)
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "could not bind statement argument \(index): \(reason)", sql: sql)
            }
        }
        try execute()
    }
}
