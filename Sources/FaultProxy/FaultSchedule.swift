#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64: a small, fast generator whose whole sequence follows from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for one stream of decisions: the proxy's seed, a connection's number and a
    /// purpose (a direction, or cuts), mixed so that neighbouring streams do not correlate.
    init(seed: UInt64, connection: Int, stream: UInt64) {
        var mixer = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: connection) &* 0x9E37_79B9_7F4A_7C15) ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = mixer.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<1`.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// When each chunk of one direction of one connection is delivered: pure arithmetic on times in
/// nanoseconds, so it is tested without sockets or clocks.
///
/// A chunk read at `t` is due at `t + latency + jitter + retransmission delay`, but never before the
/// chunk ahead of it: a lost chunk holds back the ones behind it, as TCP's in-order delivery does
/// (head-of-line blocking).
struct FaultSchedule {
    struct Plan: Equatable {
        /// When the chunk may be written to the other side.
        var due: UInt64
        /// How many transmissions of it were lost (0 if it got through at once).
        var retransmissions: Int
    }

    let profile: FaultProfile
    var random: SeededGenerator
    /// The due time of the previous chunk.
    var last: UInt64 = 0

    init(profile: FaultProfile, random: SeededGenerator) {
        self.profile = profile
        self.random = random
    }

    mutating func plan(readAt now: UInt64) -> Plan {
        let millisecond: UInt64 = 1_000_000
        var delay = UInt64(profile.latencyMillis) * millisecond
        if profile.jitterMillis > 0 {
            delay += UInt64(random.unit() * Double(profile.jitterMillis) * Double(millisecond))
        }
        // Each transmission is lost with probability `loss`; the sender notices after its
        // retransmission timeout, which doubles for each further loss of the same data.
        var retransmissions = 0
        var timeout = UInt64(profile.retransmitMillis) * millisecond
        if profile.loss > 0 {
            while retransmissions < profile.maxRetransmissions && random.unit() < profile.loss {
                delay += timeout
                timeout *= 2
                retransmissions += 1
            }
        }
        let due = max(now + delay, last)
        last = due
        return Plan(due: due, retransmissions: retransmissions)
    }

    /// A connection's lifetime before a random cut: exponential with mean `cutEveryMillis`
    /// (so cuts arrive as a Poisson process), at least 1 ms and at most 20 means.
    static func cutAfter(meanMillis: Int, random: inout SeededGenerator) -> UInt64 {
        let u = 1 - random.unit()  // (0, 1]
        let mean = Double(meanMillis) * 1_000_000
        let nanos = min(-mean * log(u), 20 * mean)
        return max(1_000_000, UInt64(nanos))
    }
}

