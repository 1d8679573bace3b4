/// The wait before the next attempt of a failed delivery: exponential, with jitter, within bounds.
///
/// The ceiling doubles from `minMillis` each attempt up to `maxMillis`; the wait is drawn between
/// half the ceiling and the ceiling (never below `minMillis`), so deliveries that failed together do
/// not come back together.
public struct Backoff: Sendable, Equatable {
    public var minMillis: Int
    public var maxMillis: Int

    public init(minMillis: Int, maxMillis: Int) {
        self.minMillis = minMillis
        self.maxMillis = max(minMillis, maxMillis)
    }

    /// The wait after failed attempt `attempt` (1 for the first), ms.
    public func delay(afterAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Int {
        let doublings = min(max(attempt - 1, 0), 40)
        let ceiling = min(Double(maxMillis), Double(minMillis) * Double(1 << UInt64(doublings)))
        let floor = max(Double(minMillis), ceiling / 2)
        return Int(floor + (ceiling - floor) * Double.random(in: 0...1, using: &random))
    }
}
