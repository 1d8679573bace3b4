import GRDB

/// SQLite's own failures that say the store cannot be written now, read for an edge that must answer
/// with its own words (the intake API answers 503 with JSON, never an empty 500).
public enum StorageFailure: Sendable, Equatable {
    /// The disk or the file system quota is full (`SQLITE_FULL`).
    case full
    /// The operating system refused a read or write (`SQLITE_IOERR`).
    case io
    /// The transaction a write shared with others (``GroupCommit``) ended before its commit for a
    /// transient reason (the store busy or locked, an interrupt): nothing of it was stored.
    case aborted
    /// More writes wait for the store than ``GroupCommit/maxWaiting``: this one was not taken.
    case overloaded

    /// What `error` says about the store, or `nil` when it is not one of these failures.
    public init?(_ error: any Error) {
        if let refusal = error as? GroupCommit.Refusal {
            switch refusal {
            case .aborted: self = .aborted
            case .overloaded: self = .overloaded
            }
            return
        }
        guard let error = error as? DatabaseError else { return nil }
        switch error.resultCode {
        case .SQLITE_FULL: self = .full
        case .SQLITE_IOERR: self = .io
        default: return nil
        }
    }
}
