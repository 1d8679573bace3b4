import Dashboard
import Synchronization
import TestSupport
import Testing

/// A computation that waits until the test opens it, counting how often it ran.
final class Valve: Sendable {
    private let state = Mutex<(open: Bool, runs: Int)>((false, 0))

    var runs: Int { state.withLock { $0.runs } }
    func open() { state.withLock { $0.open = true } }

    func run(_ value: Int) async throws -> Int {
        state.withLock { $0.runs += 1 }
        while !state.withLock({ $0.open }) { try await Task.sleep(for: .milliseconds(5)) }
        return value
    }
}

@Suite struct SharedComputationsTests {
    @Test func identicalQueriesShareOneComputation() async throws {
        let clock = TestClock(0)
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 2000, maxRunning: 2, maxWaiting: 0)) { Int64(clock.now) }
        let valve = Valve()
        // Ten requests for one key while its computation runs: one computation, even with no slot
        // to wait for (maxWaiting 0), since joining one in progress takes no slot.
        let answers = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<10 { group.addTask { try await shared.value(for: "/api/summary?days=3650") { try await valve.run(42) } } }
            try await eventually(60, "the computation started") { valve.runs == 1 }
            valve.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers == Array(repeating: 42, count: 10))
        #expect(valve.runs == 1)
        #expect(await shared.started == 1)
        // Within the window the answer is given again without computing.
        clock.advance(1999)
        #expect(try await shared.value(for: "/api/summary?days=3650") { try await valve.run(7) } == 42)
        #expect(valve.runs == 1)
        // Past it, or for other parameters, it is computed again.
        clock.advance(1)
        #expect(try await shared.value(for: "/api/summary?days=3650") { try await valve.run(7) } == 7)
        #expect(try await shared.value(for: "/api/summary?days=30") { try await valve.run(8) } == 8)
        #expect(valve.runs == 3)
    }

    @Test func invalidateForgetsKeptAnswers() async throws {
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 60_000)) { 0 }
        #expect(try await shared.value(for: "k") { 1 } == 1)
        #expect(try await shared.value(for: "k") { 2 } == 1)
        await shared.invalidate()
        #expect(try await shared.value(for: "k") { 3 } == 3)
    }

    @Test func errorsAreNotKept() async throws {
        struct Failure: Error {}
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 60_000)) { 0 }
        await #expect(throws: Failure.self) { try await shared.value(for: "k") { throw Failure() } }
        #expect(try await shared.value(for: "k") { 5 } == 5)
        #expect(await shared.running == 0)
    }

    @Test func atMostMaxRunningThenWaitThenBusy() async throws {
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 0, maxRunning: 2, maxWaiting: 1)) { 0 }
        let valve = Valve()
        let first = Task { try await shared.value(for: "a") { try await valve.run(1) } }
        let second = Task { try await shared.value(for: "b") { try await valve.run(2) } }
        try await eventually(60, "two computations run") { await shared.running == 2 }
        let third = Task { try await shared.value(for: "c") { try await valve.run(3) } }
        try await eventually(60, "the third waits for a slot") { await shared.waiting == 1 }
        #expect(valve.runs == 2)
        // The line is full: a fourth is refused at once, whatever its key.
        await #expect(throws: ComputationsBusy.self) { try await shared.value(for: "d") { try await valve.run(4) } }
        valve.open()
        #expect(try await [first.value, second.value, third.value] == [1, 2, 3])
        #expect(valve.runs == 3)
        #expect(await shared.running == 0)
        #expect(await shared.waiting == 0)
    }

    @Test func aCancelledWaiterLeavesTheLine() async throws {
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 0, maxRunning: 1, maxWaiting: 1)) { 0 }
        let valve = Valve()
        let first = Task { try await shared.value(for: "a") { try await valve.run(1) } }
        try await eventually(60, "one computation runs") { await shared.running == 1 }
        let waiter = Task { try await shared.value(for: "b") { 2 } }
        try await eventually(60, "the second waits") { await shared.waiting == 1 }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(await shared.waiting == 0)
        valve.open()
        #expect(try await first.value == 1)
        #expect(await shared.running == 0)
    }
}

@Suite struct FreshComputationTests {
    @Test func aFreshRequestComputesAnewAndIsKeptForOthers() async throws {
        let shared = SharedComputations<Int>(limits: ComputationLimits(shareMillis: 60_000)) { 0 }
        #expect(try await shared.value(for: "k") { 1 } == 1)
        #expect(try await shared.value(for: "k", fresh: true) { 2 } == 2)
        #expect(try await shared.value(for: "k") { 3 } == 2)
        #expect(await shared.started == 2)
    }
}
