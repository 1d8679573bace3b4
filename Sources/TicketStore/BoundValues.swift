import Foundation
import GRDB
import GRDBSQLite

/// SQLite's "copy the value before the call returns" destructor.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

package extension Statement {
    /// Runs this statement once with `values` bound to its parameters in order.
    ///
    /// The same as `execute(arguments:)`, and through the same GRDB execution (its checks, its
    /// transaction tracking, its error), without building `StatementArguments`: GRDB boxes each value
    /// as an existential, converts it back and binds it inside one nested closure per value, which
    /// was two fifths of a first fact derivation's writer stage in `perf` (`tierline-bench
    /// --dashboard`). The values are bound by SQLite's own calls, each copied by SQLite.
    /// - Throws: `DatabaseError` (`SQLITE_MISUSE`) when `values` does not hold one value per
    ///   parameter, and whatever executing the statement throws.
    func execute(values: [DatabaseValue]) throws {
        let statement = sqliteStatement
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard values.count == expected else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE,
                                message: "wrong number of statement arguments: \(values.count), where the statement takes \(expected)",
                                sql: sql)
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
                // storage, and a null pointer would bind NULL.
                code = text.withUTF8 { bytes in
                    guard let length = CInt(exactly: bytes.firstIndex(of: 0) ?? bytes.count) else { return SQLITE_TOOBIG }
                    return length == 0 ? sqlite3_bind_text(statement, index, "", 0, transient)
                        : sqlite3_bind_text(statement, index, bytes.baseAddress, length, transient)
                }
            case .blob(let data):
                code = data.withUnsafeBytes { bytes in
                    guard let length = CInt(exactly: bytes.count) else { return SQLITE_TOOBIG }
                    return length == 0 ? sqlite3_bind_zeroblob(statement, index, 0)
                        : sqlite3_bind_blob(statement, index, bytes.baseAddress, length, transient)
                }
            }
            guard code == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "could not bind statement argument \(index)", sql: sql)
            }
        }
        try execute()
    }
}
