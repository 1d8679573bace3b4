import GRDB

/// Writes that arrive together, committed together: one transaction (and one WAL sync) for many
/// requests instead of one each.
///
/// A write submitted while a commit is in flight waits; when that commit ends, the next one takes
/// every waiting write, up to ``maxBatch``. Each write runs in a savepoint of its own inside the
/// batch's transaction, so a write that throws (a refusal of its own data) is rolled back alone and
/// its caller gets its error while the others commit. A failure of the store itself (a full disk,
/// an I/O error: ``StorageFailure``) rolls the whole batch back and every caller in it gets that
/// error; a transient end of the batch's transaction (the store busy or locked, an interrupt)
/// reaches every caller as ``Refusal/aborted``, any other as SQLite's error: nothing of the batch
/// is stored either way. Each caller resumes
/// only once its batch has committed (or failed). At most ``maxWaiting`` writes wait; a write past
/// that is refused at once (``Refusal/overloaded``) rather than queued without bound.
///
/// ```swift
/// let commits = GroupCommit(store: store)
/// let duplicate = try await commits.commit { db in try store.writeIntake(intake, follow: nil, within: db) }
/// ```
///
/// The transaction runs on GRDB's writer queue (`BEGIN IMMEDIATE`, like every local write); callers
/// await it without blocking a thread.
public actor GroupCommit {
    /// The most writes one transaction takes.
    public let maxBatch: Int
    /// The most writes that wait for the next batch.
    public let maxWaiting: Int
    let writer: any DatabaseWriter
    private var waiting: [Entry] = []
    private var isCommitting = false
    /// Batches committed and the writes they held, for tests and logs.
    public private(set) var batches = 0
    public private(set) var largestBatch = 0
    /// Writes waiting for the next batch.
    public var waitingWrites: Int { waiting.count }

    private struct Entry {
        let write: @Sendable (Database) throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    /// Why a write was not committed, though its own data was not at fault: nothing of it is stored,
    /// and the same write may be tried again later.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// The batch's transaction ended before its commit for a transient reason (`reason`:
        /// SQLite's words): the store was busy or locked, or the statement was interrupted.
        case aborted(reason: String)
        /// `waiting` writes already wait for the store.
        case overloaded(waiting: Int)

        public var description: String {
            switch self {
            case .aborted(let reason): "the transaction this write shared with others ended before its commit (\(reason)); nothing of it was stored"
            case .overloaded(let waiting): "\(waiting) writes already wait for the store; this one was not taken"
            }
        }
    }

    public init(store: TicketDatabase, maxBatch: Int = 128, maxWaiting: Int = 4_096) {
        writer = store.writer
        self.maxBatch = max(1, maxBatch)
        self.maxWaiting = max(1, maxWaiting)
    }

    /// Runs `write` in the next batch, in a savepoint of its own, and returns what it returned once
    /// the batch committed.
    /// - Throws: what `write` threw (its savepoint rolled back, the rest of the batch unharmed), or the
    ///   batch's failure (SQLite's ``StorageFailure`` errors, ``Refusal/aborted``) when nothing of the
    ///   batch was stored; ``Refusal/overloaded`` when ``maxWaiting`` writes wait already.
    public func commit<Value: Sendable>(_ write: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        guard waiting.count < maxWaiting else { throw Refusal.overloaded(waiting: waiting.count) }
        let value = try await withCheckedThrowingContinuation { continuation in
            waiting.append(Entry(write: { try write($0) }, continuation: continuation))
            if !isCommitting {
                isCommitting = true
                Task { await drain() }
            }
        }
        guard let value = value as? Value else { preconditionFailure("a group commit answered with another write's value") }
        return value
    }

    /// Commits batches until no write waits. Writes submitted during a commit join the next batch.
    private func drain() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            batches += 1
            largestBatch = max(largestBatch, batch.count)
            let outcomes = await Self.run(batch.map(\.write), writer: writer)
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(with: outcome) }
        }
        isCommitting = false
    }

    /// One transaction over `writes`, each in its own savepoint.
    private static func run(_ writes: [@Sendable (Database) throws -> any Sendable],
                            writer: any DatabaseWriter) async -> [Result<any Sendable, any Error>] {
        do {
            return try await writer.writeWithoutTransaction { db in
                var outcomes: [Result<any Sendable, any Error>] = []
                try db.inTransaction(.immediate) {
                    outcomes = []
                    for write in writes {
                        do {
                            var value: (any Sendable)?
                            try db.inSavepoint {
                                value = try write(db)
                                return .commit
                            }
                            outcomes.append(.success(value!))
                        } catch let error where StorageFailure(error) != nil {
                            // SQLite may have rolled the whole transaction back already: the batch fails.
                            throw error
                        } catch {
                            // A failure SQLite answered by ending the transaction fails the batch too.
                            guard db.isInsideTransaction else { throw error }
                            outcomes.append(.failure(error))
                        }
                    }
                    return .commit
                }
                return outcomes
            }
        } catch {
            // A transient end (the store busy or locked, the statement interrupted) is the batch's,
            // not a fault of each write's data: retry. Anything else (a full disk, a corrupt or
            // read-only file, a write that broke the transaction) reaches every caller as it is.
            return writes.map { _ in .failure(Self.isTransient(error) ? Refusal.aborted(reason: "\(error)") : error) }
        }
    }

    /// Whether SQLite ended a transaction for a reason that passes: another connection holding the
    /// store (`SQLITE_BUSY`, `SQLITE_LOCKED`) or an interrupt.
    static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return [.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_INTERRUPT].contains(error.resultCode)
    }

    /// `body` over the writer's connection, or over `group`'s when a batch runs it.
    static func writing<T>(_ writer: any DatabaseWriter, within group: Database?, _ body: (Database) throws -> T) throws -> T {
        if let group { return try body(group) }
        return try writer.writeWithoutTransaction(body)
    }

    /// `body` in a `BEGIN IMMEDIATE` transaction of its own, or as it is when the batch's savepoint
    /// holds it.
    static func transaction(_ db: Database, grouped: Bool, _ body: () throws -> Database.TransactionCompletion) throws {
        if grouped {
            _ = try body()
        } else {
            try db.inTransaction(.immediate, body)
        }
    }
}
