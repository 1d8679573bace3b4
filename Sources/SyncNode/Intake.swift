import Foundation
import SyncWire
import TicketModel

/// A received batch made ready for the store off the write lock: decoded, and its signatures checked.
struct PreparedBatch: Sendable {
    var batch: BlockBatch
    /// The key each origin's blocks verified with, for the origins whose every block in the batch did:
    /// what `TicketDatabase.apply(_:learning:verified:)` may skip checking again.
    var verified: [SiteID: [UInt8]]
}

/// Received batches on their way into the store, in batch order.
///
/// Each batch is prepared (``PreparedBatch``: decoded, signatures checked on every core) once the one
/// before it is prepared, while the batches before it are still being applied; applies, acks and
/// errors happen one batch at a time, in order. Preparing one batch at a time gives the oldest batch
/// every core, so the store gets its next batch as early as it can. The read loop drains the intake before it handles any other frame, so the session still
/// handles every frame in the order it arrived (a `ping` after three batches is answered after their
/// three acks). At most `depth` batches wait here: a peer that overruns the window is then held back
/// by TCP, and memory stays bounded by the window as `Protocol/PROTOCOL.md` §2.9 counts it.
///
/// Owned by one read loop (not `Sendable`); the work it starts runs in tasks of its own, which
/// ``cancel()`` stops and waits for, so no apply outlives the session.
struct BatchIntake<Prepared: Sendable> {
    let depth: Int
    /// Every batch not yet handled, oldest first; each task applies its batch after the one before.
    private var waiting: [Task<Void, any Error>] = []
    /// The newest batch's preparation; the next one starts when it ends.
    private var preparing: Task<Prepared, Never>?

    init(depth: Int) { self.depth = max(1, depth) }

    /// Starts preparing a batch once the one before it is prepared, and queues its `apply` behind the
    /// batches already waiting. `prepare` learns how many batches were waiting ahead of it: with none,
    /// no apply competes with it for the cores.
    ///
    /// `apply` runs only once every earlier batch was applied without error; after a failure the later
    /// batches are dropped with it. Waits first for the oldest batch if `depth` are waiting, and throws
    /// its error if it failed.
    mutating func enqueue(prepare: @escaping @Sendable (_ ahead: Int) async -> Prepared,
                          apply: @escaping @Sendable (Prepared) async throws -> Void) async throws {
        if waiting.count >= depth { try await finishOldest() }
        let before = preparing
        let ahead = waiting.count
        let prepared = Task {
            _ = await before?.value
            return await prepare(ahead)
        }
        preparing = prepared
        let previous = waiting.last
        waiting.append(Task {
            do { try await previous?.value } catch {
                prepared.cancel()
                throw error
            }
            let ready = await prepared.value
            try Task.checkCancellation()
            try await apply(ready)
        })
    }

    /// Waits until every queued batch is handled; throws the first failure (the batches after it were
    /// dropped).
    mutating func drain() async throws {
        while !waiting.isEmpty { try await finishOldest() }
    }

    /// Waits for the oldest batch; if it failed, drops the rest and throws its error.
    private mutating func finishOldest() async throws {
        do { try await waiting.removeFirst().value } catch {
            _ = await cancel()
            throw error
        }
    }

    /// Cancels the batches not yet applied (one being applied finishes) and waits for all of them.
    /// - Returns: the first failure among them that is not a cancellation, if any.
    mutating func cancel() async -> (any Error)? {
        for task in waiting { task.cancel() }
        preparing?.cancel()
        preparing = nil
        var failure: (any Error)?
        for task in waiting {
            if case .failure(let error) = await task.result, failure == nil, !(error is CancellationError) { failure = error }
        }
        waiting = []
        return failure
    }
}

/// Ed25519 checks of a batch's blocks, spread over every core.
enum SignatureCheck {
    /// Blocks verified by one task: small enough that cores share a batch evenly.
    static let chunk = 64

    /// The key each origin's blocks verify with, for the origins whose every block in `blocks` has a
    /// valid signature under `keys`. An origin with no key, or with one block that fails, is left out,
    /// so the store checks its blocks itself and refuses (and records) exactly the bad ones.
    ///
    /// Runs on the cooperative pool, in at most `width` tasks at a time: pure computation, about 50 µs
    /// a block. Cancelled, it stops early and vouches for no origin.
    static func verifiedKeys(_ blocks: [Block], keys: [SiteID: [UInt8]], width: Int) async -> [SiteID: [UInt8]] {
        let failed = await withTaskGroup(of: Set<SiteID>.self) { group in
            var starts = stride(from: 0, to: blocks.count, by: chunk).makeIterator()
            func addChunk() {
                guard let start = starts.next() else { return }
                let part = blocks[start..<min(start + chunk, blocks.count)]
                group.addTask {
                    var failed = Set<SiteID>()
                    for block in part where !failed.contains(block.origin) {
                        if Task.isCancelled { return Set(part.map(\.origin)) }
                        guard let key = keys[block.origin], block.isSignatureValid(publicKey: key) else {
                            failed.insert(block.origin)
                            continue
                        }
                    }
                    return failed
                }
            }
            for _ in 0..<max(1, width) { addChunk() }
            var failed = Set<SiteID>()
            for await part in group {
                failed.formUnion(part)
                addChunk()
            }
            return failed
        }
        var verified: [SiteID: [UInt8]] = [:]
        for block in blocks where verified[block.origin] == nil && !failed.contains(block.origin) {
            verified[block.origin] = keys[block.origin]
        }
        return verified
    }
}
