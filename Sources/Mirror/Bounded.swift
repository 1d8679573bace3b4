import Synchronization

/// Runs `work` and returns its result, or throws `timeout` after `limit` without waiting for it.
///
/// A query whose answer never comes (a connection that vanished without a reset, so TCP never tells)
/// must not stop a live mirror for good: the caller drops the connection and reconnects. The work
/// left behind is cancelled; it ends when its connection is closed. Cancelling the caller cancels
/// the work and throws `CancellationError` at once.
func bounded<T: Sendable>(_ limit: Duration, timeout: @escaping @Sendable () -> any Error,
                          _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let gate = BoundedGate<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            // Cancelled before the continuation was in place: nothing is started.
            let cancelled = gate.state.withLock { state in
                if state.done { return true }
                state.continuation = continuation
                return false
            }
            if cancelled { return continuation.resume(throwing: CancellationError()) }
            let doing = Task { do { gate.finish(.success(try await work())) } catch { gate.finish(.failure(error)) } }
            let timer = Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled { gate.finish(.failure(timeout())) }
            }
            // Finished before the tasks were recorded: the other one is cancelled here.
            let late = gate.state.withLock { state in
                if state.done { return true }
                state.tasks = [doing, timer]
                return false
            }
            if late {
                doing.cancel()
                timer.cancel()
            }
        }
    } onCancel: {
        gate.finish(.failure(CancellationError()))
    }
}

/// The one way out of ``bounded(_:timeout:_:)``: the first result wins, later ones are dropped.
final class BoundedGate<T: Sendable>: Sendable {
    let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, tasks: [Task<Void, Never>], done: Bool)>((nil, [], false))
    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            defer { state.continuation = nil; state.done = true }
            return (state.continuation, state.tasks)
        }
        guard let continuation else { return }
        for task in tasks { task.cancel() }
        continuation.resume(with: result)
    }
}
