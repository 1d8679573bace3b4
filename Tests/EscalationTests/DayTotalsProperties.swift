@testable import Escalation
import Foundation
import TestSupport
import Testing

/// Business time from the day totals must equal the day-by-day walk it replaced, in every kind of
/// time zone (clock changes at night, at midnight, by half an hour, a day skipped), with holidays,
/// pauses, and calendars shared by many clocks that ask in any order.
@Suite struct DayTotalsProperties {
    static let zones = ["UTC", "Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe",
                        "Asia/Kathmandu", "Pacific/Apia", "America/Havana", "Asia/Tehran"]

    static func calendar(_ zone: String, _ random: inout SplitMix) throws -> WorkingCalendar {
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        let shapes = [["09:00-17:00"], ["00:00-24:00"], ["08:00-12:00", "13:00-17:30"], ["00:00-02:30", "22:00-24:00"],
                      ["01:30-03:15"], ["23:45-24:00"]]
        var weekly: [String: [String]] = [:]
        for day in days where Int.random(in: 0..<4, using: &random) > 0 {
            weekly[day] = shapes[Int.random(in: 0..<shapes.count, using: &random)]
        }
        if weekly.isEmpty { weekly["wed"] = ["09:00-17:00"] }
        let holidays = Int.random(in: 0..<2, using: &random) == 0 ? [] : ["2026-03-29", "12-25", "2011-12-29", "2024-10-06"]
        return try WorkingCalendar(document: CalendarDocument(name: "p", version: 1, timezone: zone, weekly: weekly, holidays: holidays))
    }

    @Test(arguments: zones)
    func dayTotalsEqualTheDayByDayWalk(zone: String) throws {
        var random = SplitMix(state: UInt64(zone.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        let day: Int64 = 86_400_000
        // Around clock changes and the day Samoa skipped (2011-12-30), and a plain stretch of 2026.
        let centres: [Int64] = [1_325_203_200_000, 1_711_846_800_000, 1_730_592_000_000, 1_774_656_000_000, 1_793_232_000_000]
        for _ in 0..<6 {
            let calendar = try Self.calendar(zone, &random)
            for _ in 0..<120 {
                let centre = centres[Int.random(in: 0..<centres.count, using: &random)]
                let from = centre + Int64.random(in: -40 * day ... 40 * day, using: &random)
                let to = Int64.random(in: 0..<4, using: &random) == 0 ? from - Int64.random(in: 0...day, using: &random)
                    : from + Int64.random(in: 0 ... 200 * day, using: &random)
                #expect(calendar.businessMillis(from: from, to: to) == calendar.businessMillisByDays(from: from, to: to),
                        "\(zone) \(from) \(to)")
                var pauses: [TimeSpan] = []
                for _ in 0..<Int.random(in: 0..<4, using: &random) {
                    let start = from + Int64.random(in: -5 * day ... 60 * day, using: &random)
                    let end = Int64.random(in: 0..<5, using: &random) == 0 ? Int64.max : start + Int64.random(in: 0 ... 10 * day, using: &random)
                    pauses.append(TimeSpan(start: start, end: end))
                }
                let active = ActiveTime(calendar: calendar, pauses: pauses)
                #expect(active.elapsed(from: from, to: to) == active.elapsedByDays(from: from, to: to), "\(zone) \(from) \(to) \(pauses)")
            }
        }
    }

    /// Ranges far apart, asked in turn, make the table start afresh and reach back; the answers stay.
    @Test func rangesFarApartAndBackwardsGiveTheWalksAnswers() throws {
        var random = SplitMix(state: 99)
        let calendar = try Self.calendar("Europe/Berlin", &random)
        let day: Int64 = 86_400_000
        for start in [1_774_656_000_000, 1_000_000_000_000, 1_774_656_000_000 - 9_000 * day, 1_774_656_000_000 + 20_000 * day, 1_200_000_000_000] as [Int64] {
            for length in [0, day / 3, 3 * day, 400 * day] {
                #expect(calendar.businessMillis(from: start, to: start + length) == calendar.businessMillisByDays(from: start, to: start + length))
            }
        }
        // More than the table's limit of days apart: answered by the walk.
        let far = 1_000_000_000_000 + Int64(16_384 + 10) * day  // past the table's limit of 16,384 days
        #expect(calendar.businessMillis(from: 1_000_000_000_000, to: far) == calendar.businessMillisByDays(from: 1_000_000_000_000, to: far))
    }
}
