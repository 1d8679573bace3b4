import Foundation
import GRDB
import TicketModel

/// The ticket states this store's local writes folded, kept from one write transaction to the next,
/// so that a write to a ticket written a moment ago absorbs its new block instead of folding the
/// ticket's whole history again.
///
/// A kept state is that of every block the log held for its ticket at the commit that kept it. It
/// stays true only while nothing else writes the store, and two marks taken at that commit tell
/// whether anything did:
/// - SQLite's `PRAGMA data_version`, which changes when another connection (another process: the
///   CLI beside `tierline serve`, a restore) commits;
/// - the writer connection's count of changed rows (`sqlite3_total_changes`), which changes when
///   this connection writes anything else: an applied sync, a withdrawal, a rebuild, a batch of
///   grouped intake writes, or a transaction that rolled back.
///
/// A write transaction checks the states out at its start, inside `BEGIN IMMEDIATE` (no other
/// connection can commit until it ends); if either mark moved, it starts with none. Only a commit
/// checks them back in, with this connection's count of changed rows read then and the
/// `data_version` read at the start: read after the commit, outside any transaction, it could take
/// in a commit another process made in between, which the next check would then miss. A write
/// that fails leaves the cache empty. Bounded by ``capacity``.
final class StateCache: @unchecked Sendable {
    /// Bytes the kept states take at most (``TicketState/approximateBytes``): some thousands of
    /// recently written tickets, fewer with long messages.
    static let capacity = 8 << 20

    private struct Marks: Equatable {
        let dataVersion: Int64
        let changedRows: Int
    }

    /// The states checked out by a write, with the `data_version` read at its start.
    struct Lease {
        let folds: FoldCache
        fileprivate let dataVersion: Int64
    }

    private let lock = NSLock()
    private var folds: FoldCache?
    private var marks: Marks?

    /// Takes the kept states for a write that has just begun its transaction on `db` (the writer):
    /// all of them if nothing wrote the store since they were kept, else none.
    func checkOut(_ db: Database) throws -> Lease {
        let now = Marks(dataVersion: try Self.dataVersion(db), changedRows: db.totalChangesCount)
        return lock.withLock {
            let held = marks == now ? folds : nil
            folds = nil
            marks = nil
            return Lease(folds: held ?? FoldCache(capacity: Self.capacity), dataVersion: now.dataVersion)
        }
    }

    /// Keeps a lease's states once its transaction has committed on `db`.
    func checkIn(_ lease: Lease, _ db: Database) {
        let now = Marks(dataVersion: lease.dataVersion, changedRows: db.totalChangesCount)
        lock.withLock {
            folds = lease.folds
            marks = now
        }
    }

    private static func dataVersion(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0
    }
}
