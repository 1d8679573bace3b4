import Synchronization

/// The one injectable wall clock of the tests: a store, a ticker or a dashboard reads `now`, and the
/// test moves it. It never goes back, as the stores' hybrid clocks assume.
public final class TestClock: Sendable {
    private let millis: Mutex<UInt64>

    public init(_ start: UInt64 = 1_790_000_000_000) { millis = Mutex(start) }

    /// Milliseconds since 1970.
    public var now: UInt64 { millis.withLock { $0 } }

    /// Moves the clock forward by `ms`.
    public func advance(_ ms: UInt64) { millis.withLock { $0 += ms } }

    /// Moves the clock to `t`; a time before now is a mistake in the test.
    public func move(to t: UInt64) {
        millis.withLock {
            precondition(t >= $0, "a test moved its clock back, to \(t) from \($0)")
            $0 = t
        }
    }
}
