@testable import FaultProxy
import Testing

/// The fault model as arithmetic: no sockets, no clocks.
@Suite struct FaultScheduleTests {
    static func profile(latency: Int = 0, jitter: Int = 0, loss: Double = 0, retransmit: Int = 200,
                        maxRetransmissions: Int = 6) -> FaultProfile {
        var profile = FaultProfile()
        profile.latencyMillis = latency
        profile.jitterMillis = jitter
        profile.loss = loss
        profile.retransmitMillis = retransmit
        profile.maxRetransmissions = maxRetransmissions
        return profile
    }

    static let ms: UInt64 = 1_000_000

    @Test func noFaultsMeansDueAtOnce() {
        var schedule = FaultSchedule(profile: Self.profile(), random: SeededGenerator(seed: 1))
        for t: UInt64 in [5, 6, 100, 100, 2_000] {
            #expect(schedule.plan(readAt: t * Self.ms) == .init(due: t * Self.ms, retransmissions: 0))
        }
    }

    @Test func latencyIsAddedToEveryChunk() {
        var schedule = FaultSchedule(profile: Self.profile(latency: 50), random: SeededGenerator(seed: 1))
        #expect(schedule.plan(readAt: 0).due == 50 * Self.ms)
        #expect(schedule.plan(readAt: 10 * Self.ms).due == 60 * Self.ms)
    }

    @Test func sameSeedSamePlans() {
        let profile = Self.profile(latency: 5, jitter: 40, loss: 0.3, retransmit: 20)
        var a = FaultSchedule(profile: profile, random: SeededGenerator(seed: 42, connection: 3, stream: 1))
        var b = FaultSchedule(profile: profile, random: SeededGenerator(seed: 42, connection: 3, stream: 1))
        var other = FaultSchedule(profile: profile, random: SeededGenerator(seed: 42, connection: 3, stream: 2))
        let times = (0..<200).map { UInt64($0) * 7 * Self.ms }
        let planA = times.map { a.plan(readAt: $0) }
        #expect(planA == times.map { b.plan(readAt: $0) })
        #expect(planA != times.map { other.plan(readAt: $0) })
    }

    /// Jitter and loss delay chunks but never reorder them: due times never decrease, and no chunk
    /// is due before its read time plus the latency.
    @Test func neverReorders() {
        var schedule = FaultSchedule(profile: Self.profile(latency: 10, jitter: 100, loss: 0.5, retransmit: 30),
                                     random: SeededGenerator(seed: 9))
        var last: UInt64 = 0
        for i in 0..<1_000 {
            let read = UInt64(i) * Self.ms
            let plan = schedule.plan(readAt: read)
            #expect(plan.due >= last)
            #expect(plan.due >= read + 10 * Self.ms)
            last = plan.due
        }
    }

    /// Each loss of a chunk costs the current timeout, which doubles: 1, 2, 3 losses cost
    /// 200, 600, 1400 ms; the count stops at `maxRetransmissions`.
    @Test func retransmissionTimeoutsDouble() {
        var schedule = FaultSchedule(profile: Self.profile(loss: 0.999_999, retransmit: 200, maxRetransmissions: 3),
                                     random: SeededGenerator(seed: 5))
        let plan = schedule.plan(readAt: 0)
        #expect(plan == .init(due: (200 + 400 + 800) * Self.ms, retransmissions: 3))

        var none = FaultSchedule(profile: Self.profile(loss: 0.999_999, maxRetransmissions: 0), random: SeededGenerator(seed: 5))
        #expect(none.plan(readAt: 0) == .init(due: 0, retransmissions: 0))
    }

    @Test func lossRateIsRoughlyTheProbability() {
        var schedule = FaultSchedule(profile: Self.profile(loss: 0.1, retransmit: 1), random: SeededGenerator(seed: 77))
        let lost = (0..<20_000).filter { schedule.plan(readAt: UInt64($0) * 1_000 * Self.ms).retransmissions > 0 }.count
        #expect((1_600...2_400).contains(lost), "\(lost) of 20000 chunks lost at p = 0.1")
    }

    @Test func cutLifetimesAreBoundedAndAverageTheMean() {
        var random = SeededGenerator(seed: 3)
        let lifetimes = (0..<10_000).map { _ in FaultSchedule.cutAfter(meanMillis: 100, random: &random) }
        #expect(lifetimes.allSatisfy { $0 >= Self.ms && $0 <= 2_000 * Self.ms })
        let mean = Double(lifetimes.reduce(0, +)) / Double(lifetimes.count) / Double(Self.ms)
        #expect((90...110).contains(mean), "mean lifetime \(mean) ms, want about 100")
    }

    @Test func addressesParse() throws {
        #expect(try ProxyAddress(parsing: "10.77.1.2:7400") == ProxyAddress(host: "10.77.1.2", port: 7400))
        #expect(try ProxyAddress(parsing: "[::1]:0") == ProxyAddress(host: "::1", port: 0))
        #expect(ProxyAddress(host: "::1", port: 9).description == "[::1]:9")
        for bad in ["", "7400", "host:", ":7400", "host:99999", "::1:80", "[::1]80"] {
            #expect(throws: FaultProxyError.self, "\(bad.debugDescription)") { try ProxyAddress(parsing: bad) }
        }
    }

    @Test func settingsOutOfRangeAreRefusedByName() {
        func problem(_ change: (inout FaultProfile) -> Void) -> String? {
            var profile = FaultProfile()
            change(&profile)
            do { try profile.validate() } catch { return error.detail }
            return nil
        }
        #expect(problem { _ in } == nil)
        #expect(problem { $0.loss = 1 }?.hasPrefix("loss") == true)
        #expect(problem { $0.loss = -0.1 }?.hasPrefix("loss") == true)
        #expect(problem { $0.latencyMillis = -1 }?.hasPrefix("latency") == true)
        #expect(problem { $0.jitterMillis = 70_000 }?.hasPrefix("jitter") == true)
        #expect(problem { $0.retransmitMillis = 0 }?.hasPrefix("retransmit") == true)
        #expect(problem { $0.cutEveryMillis = -5 }?.hasPrefix("cut-every") == true)
    }
}
