import Foundation
import GRDB
import TicketModel

/// The ticket states this store's writes folded (local writes, and blocks applied from peers), kept
/// from one write transaction to the next, so that a write to a ticket written a moment ago, or a
/// peer's block on it, absorbs its new block instead of folding the ticket's whole history again.
///
/// A kept state is the fold of every block the log held for its ticket, under the roster's roles,
/// when the write that kept it committed. That stays true exactly as long as the log and the roles
/// stay as they were, and three marks, read inside that write's transaction, tell whether they did:
/// - the store's vector: a block enters the log only with the next `seq` of its origin, which
///   raises the vector (a sync, another process's write, a write of this site outside the cache),
///   and leaves it only by a withdrawal, which steps the vector back;
/// - the roles by site, which decide which changes a fold skips;
/// - the removed sites and their limits: a withdrawal comes only with a new limit, and a vector
///   stepped back by one could climb to the same value again with other blocks (were this store's
///   own site to write on after the coordinator removed it, which ``TicketDatabase`` refuses).
/// Writes that touch none of them (the dashboard's facts, the outbox, session bookkeeping, a
/// transaction that rolled back) leave the kept states valid. Roles and removals change only in
/// transactions that hold no lease (a roster's adoption, a withdrawal); should a leased one ever
/// change them, it keeps nothing, as its re-folds of the tickets concerned would bypass the states.
///
/// A write transaction checks the states out at its start, inside `BEGIN IMMEDIATE` (no other
/// connection can commit until it ends): if any mark moved, it starts with none. It reads the
/// marks again at its end, still inside the transaction, so they are those of what it commits; an
/// other process's commit right after it moves them. Only a commit checks the states back in; a
/// write that fails leaves the cache empty. Bounded by ``capacity``.
final class StateCache: @unchecked Sendable {
    /// Bytes the kept states take at most (``TicketState/approximateBytes``): some thousands of
    /// recently written tickets (about 6,000 of W2's, of six changes each; half that right after a
    /// full cache drops to half), fewer with long messages. Over 8 MiB, 32 MiB raised the peak RSS
    /// of W2 (two stores of 10,000 tickets in one process) by 82 MB and W1's (one store) by 60 MB,
    /// and W2's local updates from about 5,900 to 9,400 a second (2026-12-07, `tierline-bench
    /// --only w2`, `--only w1`).
    static let capacity = 32 << 20

    fileprivate struct Marks: Equatable {
        let vector: VersionVector
        let roles: [SiteID: SiteRole]
        /// The sites removed from the roster, each with the last of its blocks the fleet keeps.
        let revoked: [SiteID: UInt64]

        init(_ db: Database) throws {
            vector = try TicketDatabase.vector(db)
            roles = try TicketDatabase.roles(db)
            revoked = try TicketDatabase.revocations(db)
        }
    }

    /// The states checked out by a write, and the marks of what it commits.
    final class Lease {
        let folds: FoldCache
        /// The marks when the write began.
        fileprivate let start: Marks
        fileprivate var marks: Marks?

        fileprivate init(folds: FoldCache, start: Marks) {
            self.folds = folds
            self.start = start
        }

        /// Reads the marks of what the write commits: the last step of its transaction. A write
        /// that changed the roles or the removals keeps no state (a guard: none does today).
        func close(_ db: Database) throws {
            let end = try Marks(db)
            marks = end.roles == start.roles && end.revoked == start.revoked ? end : nil
        }
    }

    private let lock = NSLock()
    private var folds: FoldCache?
    private var marks: Marks?
    /// How many states the last check-out handed over (for tests).
    private(set) var lastHandedOver = 0

    /// Takes the kept states for a write that has just begun its transaction on `db` (the writer):
    /// all of them if the log and the roles are as they were when they were kept, else none.
    func checkOut(_ db: Database) throws -> Lease {
        let now = try Marks(db)
        return lock.withLock {
            let held = marks == now ? folds : nil
            folds = nil
            marks = nil
            lastHandedOver = held?.states.count ?? 0
            return Lease(folds: held ?? FoldCache(capacity: Self.capacity), start: now)
        }
    }

    /// Keeps a lease's states once its transaction has committed (after ``Lease/close(_:)``).
    func checkIn(_ lease: Lease) {
        guard let marks = lease.marks else { return }
        lock.withLock {
            folds = lease.folds
            self.marks = marks
        }
    }
}
