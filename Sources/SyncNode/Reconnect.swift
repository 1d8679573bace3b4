/// How long a dialer waits before its next attempt to reach a peer: capped exponential backoff with
/// jitter, shortened when the peer's host answers.
///
/// Backoff protects a peer, and the network, from a node that dials in a tight loop. It only needs
/// to grow to `reconnectMaxMillis` while nobody answers (timeouts, no route, a name that does not
/// resolve). A host that answers, with a refused TCP connection (a node restarting) or with a
/// handshake and then a refusal (a site not yet in the hub's roster), costs next to nothing to try
/// again, and is the case where an operator waits for the link: those attempts start again from
/// `reconnectMinMillis` and grow to at most ``answeredMaxMillis``. A session that opened, a change of
/// this node's roster and SIGHUP (``SyncNode/reconnectNow()``) start from the minimum too.
///
/// Pure: the caller measures time and supplies the randomness.
///
/// ```swift
/// var backoff = ReconnectBackoff(minMillis: 250, maxMillis: 30_000)
/// let wait = backoff.delay(after: .silent) { Int.random(in: $0) }
/// ```
struct ReconnectBackoff: Sendable, Equatable {
    /// What the last attempt showed about the peer.
    enum Outcome: Sendable, Equatable {
        /// A session opened (or ran long): the link works.
        case progressed
        /// The peer's host answered but no session opened: a refused connection, or a handshake
        /// that the peer refused.
        case answered
        /// Nobody answered: a timeout, no route, a host name that does not resolve.
        case silent
    }

    /// The longest wait after an attempt the peer's host answered: a few seconds, or the minimum
    /// if that is longer.
    static let answeredCapMillis = 5_000

    let minMillis: Int
    let maxMillis: Int
    /// The un-jittered wait the next attempt without progress will use.
    private(set) var nextMillis: Int

    init(minMillis: Int, maxMillis: Int) {
        self.minMillis = minMillis
        self.maxMillis = max(minMillis, maxMillis)
        nextMillis = minMillis
    }

    var answeredMaxMillis: Int { max(minMillis, min(maxMillis, Self.answeredCapMillis)) }

    /// Starts again from the minimum (the roster changed, an operator sent SIGHUP).
    mutating func reset() { nextMillis = minMillis }

    /// The wait before the next attempt, after one that ended with `outcome`: between half and all
    /// of the current backoff, which then doubles.
    /// - Parameter random: a number in the range it is given (tests pass a fixed choice).
    mutating func delay(after outcome: Outcome, random: (ClosedRange<Int>) -> Int) -> Int {
        let base = switch outcome {
        case .progressed: minMillis
        case .answered: min(nextMillis, answeredMaxMillis)
        case .silent: nextMillis
        }
        nextMillis = min(base * 2, maxMillis)
        return base / 2 + random(0...max(1, base / 2))
    }
}
