import Foundation

/// How many dashboard computations may run, wait, and how long an answer is shared.
public struct ComputationLimits: Sendable, Equatable {
    /// How long an answer is given again to the same query, ms (0: never shared after it is done).
    public var shareMillis: Int64
    /// The most computations running at once.
    public var maxRunning: Int
    /// The most requests waiting for a free computation; past it, ``ComputationsBusy`` (a 503).
    public var maxWaiting: Int
    /// The most answers kept for sharing.
    public var maxKept: Int

    public init(shareMillis: Int64 = 2000, maxRunning: Int = 2, maxWaiting: Int = 16, maxKept: Int = 256) {
        self.shareMillis = shareMillis
        self.maxRunning = max(1, maxRunning)
        self.maxWaiting = max(0, maxWaiting)
        self.maxKept = max(1, maxKept)
    }
}

/// Every computation slot is taken and the waiting line is full: try again shortly (`503` with
/// `Retry-After`).
public struct ComputationsBusy: Error, Sendable, CustomStringConvertible {
    public var running: Int
    public var waiting: Int
    public var description: String {
        "the dashboard is busy (\(running) computations running, \(waiting) waiting); try again in a second"
    }
}

/// Shares and bounds expensive computations of the dashboard, so that heavy requests (ten years of
/// facts, asked by many clients at once) cannot take every core from intake and sync.
///
/// - Requests for the same key (route and query) share one computation: one in progress is awaited
///   by all of them, and its answer is given again for ``ComputationLimits/shareMillis`` after it
///   is done, or until ``invalidate()`` (the facts changed).
/// - At most ``ComputationLimits/maxRunning`` computations run at once; up to
///   ``ComputationLimits/maxWaiting`` more wait their turn in arrival order, and further ones are
///   refused with ``ComputationsBusy`` at once.
///
/// Errors are not shared beyond the requests that awaited the failed computation.
///
/// ```swift
/// let shared = SharedComputations<Response>()
/// let answer = try await shared.value(for: "/api/summary?days=30") { try await summary() }
/// ```
public actor SharedComputations<Value: Sendable> {
    public let limits: ComputationLimits
    let now: @Sendable () -> Int64

    private var kept: [String: (value: Value, at: Int64)] = [:]
    private var inProgress: [String: Task<Value, any Error>] = [:]
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextWaiter: UInt64 = 0
    /// Computations running now.
    public private(set) var running = 0
    /// Computations started so far (for tests and metrics).
    public private(set) var started = 0
    /// Requests waiting for a slot now.
    public var waiting: Int { waiters.count }

    /// - Parameter now: a monotonic time in ms; by default the process's continuous clock.
    public init(limits: ComputationLimits = ComputationLimits(), now: @escaping @Sendable () -> Int64 = monotonicMillis) {
        self.limits = limits
        self.now = now
    }

    /// The answer for `key`: shared when one is in progress or fresh, else computed by `compute` in a
    /// free slot.
    /// - Parameter fresh: computes anew even when an answer could be shared (a client that asks
    ///   for `Cache-Control: no-cache`); the limits still apply, and the answer is kept for others.
    /// - Throws: ``ComputationsBusy`` when no slot is free and the waiting line is full;
    ///   `CancellationError` when the calling task is cancelled while waiting; `compute`'s errors.
    public func value(for key: String, fresh: Bool = false, _ compute: @escaping @Sendable () async throws -> Value) async throws -> Value {
        if !fresh, let shared = try await existing(key) { return shared }
        try await takeSlot()
        // Another request may have computed or started the same while this one waited.
        if !fresh, let shared = try await existing(key, releasing: true) { return shared }
        let task = Task { try await compute() }
        inProgress[key] = task
        started += 1
        defer {
            inProgress[key] = nil
            releaseSlot()
        }
        let value = try await task.value
        keep(value, for: key)
        return value
    }

    /// Forgets every kept answer (the facts changed); computations in progress are still shared.
    public func invalidate() {
        kept.removeAll()
    }

    /// A fresh kept answer, or the value of a computation in progress, for `key`; `nil` for none.
    /// With `releasing`, the caller's slot is given back before a shared answer is returned.
    private func existing(_ key: String, releasing: Bool = false) async throws -> Value? {
        if let entry = kept[key], now() - entry.at < limits.shareMillis {
            if releasing { releaseSlot() }
            return entry.value
        }
        if let task = inProgress[key] {
            if releasing { releaseSlot() }
            return try await task.value
        }
        return nil
    }

    private func keep(_ value: Value, for key: String) {
        guard limits.shareMillis > 0 else { return }
        let at = now()
        if kept.count >= limits.maxKept {
            kept = kept.filter { at - $0.value.at < limits.shareMillis }
            if kept.count >= limits.maxKept, let oldest = kept.min(by: { $0.value.at < $1.value.at })?.key { kept[oldest] = nil }
        }
        kept[key] = (value, at)
    }

    private func takeSlot() async throws {
        if running < limits.maxRunning {
            running += 1
            return
        }
        guard waiters.count < limits.maxWaiting else { throw ComputationsBusy(running: running, waiting: waiters.count) }
        nextWaiter += 1
        let id = nextWaiter
        // The slot is handed over by `releaseSlot` (true), or the wait is given up on cancellation (false).
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled { continuation.resume(returning: false) } else { waiters.append((id, continuation)) }
            }
        } onCancel: {
            Task { await self.giveUp(id) }
        }
        guard granted else { throw CancellationError() }
    }

    private func giveUp(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(returning: false)
    }

    /// Hands the slot to the first waiter, or frees it.
    private func releaseSlot() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().continuation.resume(returning: true)
        }
    }
}

/// Milliseconds of the process's continuous clock since it first asked: for durations, never for dates.
public func monotonicMillis() -> Int64 {
    let elapsed = ContinuousClock.now - monotonicOrigin
    return elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
}

private let monotonicOrigin = ContinuousClock.now
