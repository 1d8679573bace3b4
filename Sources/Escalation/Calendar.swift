import Foundation
import Synchronization

private let minutesPerDay = 1_440
private let millisPerDay: Int64 = 86_400_000
private let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

/// A half-open interval of instants, `[start, end)`, in milliseconds since 1970 UTC.
public struct TimeSpan: Hashable, Sendable, Codable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    /// Milliseconds in the span; 0 if it is empty.
    public var length: Int64 {
        guard end > start else { return 0 }
        let (difference, overflow) = end.subtractingReportingOverflow(start)
        return overflow ? .max : difference
    }
}

/// Working time within one local day, in minutes from local midnight: `[start, end)` with
/// `0 <= start < end <= 1440`.
public struct DayInterval: Hashable, Sendable {
    public let start: Int
    public let end: Int

    /// `HH:MM-HH:MM`, as written in a calendar document.
    public var text: String { "\(clockText(start))-\(clockText(end))" }
}

/// A business calendar: weekly working hours in one time zone, minus holidays.
///
/// Days are local days of the calendar's time zone, so a day on which the clocks change has 23
/// or 25 hours. A local time that does not exist (the clocks jump past it) is placed where
/// Foundation's `Calendar` places it: moved forward by the size of the jump, so 02:30 on a day
/// that jumps from 02:00 to 03:00 means 03:30. A local time that happens twice means the first.
public struct WorkingCalendar: Sendable, Hashable {
    /// What the calendar holds, in one shared object: every SLA clock copies its calendar, and a copy
    /// of nine stored properties cost a retain each (a tenth of a clock's evaluation).
    private final class Storage: Sendable {
        let name: String
        let version: Int
        let timeZone: String
        let weekly: [Int: [DayInterval]]
        let holidays: Set<String>
        let zone: TimeZone
        let gregorian: Calendar
        let holidayDates: Set<Holiday>
        /// Each local day's working spans once computed (shared by the calendar's copies).
        let daySpans = DaySpanMemo()
        /// Working time summed by day (shared by the calendar's copies).
        let totals = Mutex(DayTotals())

        init(name: String, version: Int, timeZone: String, zone: TimeZone, weekly: [Int: [DayInterval]], holidays: Set<String>) {
            self.name = name
            self.version = version
            self.timeZone = timeZone
            self.weekly = weekly
            self.holidays = holidays
            self.zone = zone
            var gregorian = Calendar(identifier: .gregorian)
            gregorian.timeZone = zone
            self.gregorian = gregorian
            holidayDates = Set(holidays.compactMap(Holiday.init))
        }
    }

    private let storage: Storage

    public var name: String { storage.name }
    public var version: Int { storage.version }
    /// The IANA time zone identifier, e.g. `Europe/Berlin`.
    public var timeZone: String { storage.timeZone }
    /// Weekday (1 = Monday … 7 = Sunday) → that day's working intervals, sorted and disjoint.
    /// A day without working time is absent.
    public var weekly: [Int: [DayInterval]] { storage.weekly }
    /// Whole local days off: `YYYY-MM-DD` for one day, `MM-DD` for that day every year.
    public var holidays: Set<String> { storage.holidays }
    private var zone: TimeZone { storage.zone }
    private var gregorian: Calendar { storage.gregorian }
    private var holidayDates: Set<Holiday> { storage.holidayDates }
    private var daySpans: DaySpanMemo { storage.daySpans }

    /// How far `add` looks for working time before giving up: three years (1,096 days).
    public static let horizon: Int64 = 1_096 * millisPerDay

    /// Every moment is working time: named `24x7`, in UTC, without holidays.
    public static let always = WorkingCalendar(
        name: "24x7", version: 1, timeZone: "UTC", zone: .gmt,
        weekly: Dictionary(uniqueKeysWithValues: (1...7).map { ($0, [DayInterval(start: 0, end: minutesPerDay)]) }),
        holidays: [])

    private init(name: String, version: Int, timeZone: String, zone: TimeZone,
                 weekly: [Int: [DayInterval]], holidays: Set<String>) {
        storage = Storage(name: name, version: version, timeZone: timeZone, zone: zone, weekly: weekly, holidays: holidays)
    }

    /// Checks `document` and builds the calendar it describes.
    ///
    /// Throws the first problem found; the issue's `path` names the key within the document,
    /// e.g. `weekly.mon[1]`, `timezone` or `holidays[2]`.
    public init(document: CalendarDocument) throws(ConfigIssue) {
        try checkName(document.name)
        guard document.version >= 1 else {
            throw ConfigIssue(path: "version", "version is \(document.version); it must be at least 1")
        }
        let zone = try parseZone(document.timezone)
        let weekly = try parseWeekly(document.weekly)
        try checkHolidays(document.holidays)
        self.init(name: document.name, version: document.version, timeZone: document.timezone, zone: zone,
                  weekly: weekly, holidays: Set(document.holidays))
    }

    /// The calendar as a document in canonical form: days without working time left out,
    /// times written `HH:MM`, holidays sorted.
    public var document: CalendarDocument {
        let days = weekly.map { day, intervals in (dayNames[day - 1], intervals.map(\.text)) }
        return CalendarDocument(name: name, version: version, timezone: timeZone,
                                weekly: Dictionary(uniqueKeysWithValues: days), holidays: holidays.sorted())
    }

    /// Whether every moment is working time: every day fully worked and no holidays.
    public var isAlways: Bool {
        holidays.isEmpty && (1...7).allSatisfy { day in
            (weekly[day] ?? []).reduce(0) { $0 + $1.end - $1.start } == minutesPerDay
        }
    }

    /// The working time within `[from, to)`, in order, adjacent intervals joined.
    ///
    /// The cost grows with the number of local days in the range.
    public func workingSpans(from: Int64, to: Int64) -> [TimeSpan] {
        var joined: [TimeSpan] = []
        forEachSpan(in: TimeSpan(start: from, end: to)) { span in
            if let last = joined.last, last.end == span.start {
                joined[joined.count - 1].end = span.end
            } else {
                joined.append(span)
            }
            return true
        }
        return joined
    }

    /// Milliseconds of working time within `[from, to)`; 0 if `to <= from`.
    public func businessMillis(from: Int64, to: Int64) -> Int64 {
        guard from < to else { return 0 }
        if let before = workingBefore([from, to]) { return before[1] - before[0] }
        return businessMillisByDays(from: from, to: to)
    }

    /// ``businessMillis(from:to:)`` walked day by day: the reference, and what a calendar the
    /// day totals cannot hold (below) uses.
    func businessMillisByDays(from: Int64, to: Int64) -> Int64 {
        var total: Int64 = 0
        forEachSpan(in: TimeSpan(start: from, end: to)) { span in
            total += span.length
            return true
        }
        return total
    }

    /// The instant at which `duration` milliseconds of working time after `start` have passed, or
    /// `nil` if that is more than `horizon` after `start`.
    ///
    /// A duration that ends exactly where working time stops gives that stop (8 hours from
    /// 09:00 on a 09:00–17:00 day is 17:00 the same day). A duration of 0 or less gives `start`,
    /// whether or not `start` is in working time.
    public func add(_ duration: Int64, to start: Int64) -> Int64? {
        guard duration > 0 else { return start }
        var countdown = Countdown(remaining: duration)
        forEachSpan(in: TimeSpan(start: start, end: horizonEnd(after: start))) { countdown.consume($0) }
        return countdown.reached
    }

    /// Calls `body` with each working interval clipped to `range`, in order and without overlaps;
    /// intervals that touch are passed separately. Stops when `body` returns false.
    fileprivate func forEachSpan(in range: TimeSpan, _ body: (TimeSpan) -> Bool) {
        guard range.start < range.end else { return }
        var cursor = range.start
        for day in stride(from: localDay(of: range.start) - 1, through: localDay(of: range.end - 1) + 1, by: 1) {
            for span in spans(onDay: day) {
                let clipped = TimeSpan(start: max(span.start, cursor), end: min(span.end, range.end))
                guard clipped.start < clipped.end else { continue }
                guard body(clipped) else { return }
                cursor = clipped.end
            }
        }
    }

    public static func == (a: WorkingCalendar, b: WorkingCalendar) -> Bool {
        a.name == b.name && a.version == b.version && a.timeZone == b.timeZone
            && a.weekly == b.weekly && a.holidays == b.holidays
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(version)
        hasher.combine(timeZone)
        hasher.combine(weekly)
        hasher.combine(holidays)
    }
}

private extension WorkingCalendar {
    /// The working intervals of one local day (days counted from 1970-01-01) as UTC spans.
    func spans(onDay day: Int) -> [TimeSpan] {
        daySpans.spans(day, computeSpans(onDay:))
    }

    /// ``spans(onDay:)`` worked out through Foundation's calendar, the costly part of every clock.
    func computeSpans(onDay day: Int) -> [TimeSpan] {
        guard let intervals = weekly[weekday(daysSince1970: day)], !isHoliday(day) else { return [] }
        return intervals.compactMap { interval in
            guard let start = instant(day: day, minute: interval.start),
                  let end = instant(day: day, minute: interval.end) else { return nil }
            return TimeSpan(start: start, end: end)
        }
    }

    func isHoliday(_ day: Int) -> Bool {
        let date = CivilDate(daysSince1970: day)
        return holidayDates.contains(.dated(year: date.year, month: date.month, day: date.day))
            || holidayDates.contains(.yearly(month: date.month, day: date.day))
    }

    /// The local day, counted from 1970-01-01, that contains `instant`.
    func localDay(of instant: Int64) -> Int {
        let seconds = floorDivide(instant, 1_000)
        let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds)))
        return Int(floorDivide(seconds + Int64(offset), 86_400))
    }

    /// The instant of local wall time `minute` (0…1440) on local `day`, as Foundation resolves it.
    func instant(day: Int, minute: Int) -> Int64? {
        let date = CivilDate(daysSince1970: day + minute / minutesPerDay)
        let minuteOfDay = minute % minutesPerDay
        let parts = DateComponents(year: date.year, month: date.month, day: date.day,
                                   hour: minuteOfDay / 60, minute: minuteOfDay % 60)
        return gregorian.date(from: parts).map { Int64(($0.timeIntervalSince1970 * 1_000).rounded()) }
    }
}

/// The working spans of a calendar's local days, each worked out once: the tickets of a fleet share a
/// few calendars and the same days, and resolving local wall times through Foundation costs far more
/// than the rest of a clock's arithmetic. A cache of a pure function, so it changes no answer; bounded
/// by ``limit`` days (it starts afresh past it).
private final class DaySpanMemo: Sendable {
    static let limit = 16_384
    private let table = Mutex<[Int: [TimeSpan]]>([:])

    func spans(_ day: Int, _ compute: (Int) -> [TimeSpan]) -> [TimeSpan] {
        if let held = table.withLock({ $0[day] }) { return held }
        let spans = compute(day)
        table.withLock { table in
            if table.count >= Self.limit { table.removeAll(keepingCapacity: true) }
            table[day] = spans
        }
        return spans
    }
}

/// A calendar's working time summed over consecutive local days, so that the working time between
/// two instants costs a look-up at each end instead of a walk over every day between them (an SLA
/// clock open for a month walked 30 days at every evaluation).
///
/// `workingBefore(t)` is the working time of the days held that lies before `t`: the sum of the
/// whole days before `t`'s day less one, plus the parts before `t` of the three days around it (a
/// local day's spans can reach into its neighbours' UTC days). Two such values subtract to the
/// working time between them when each day's spans are sorted and disjoint and every day's spans
/// lie after the previous day's, as a calendar's are: every span is then counted once. A
/// calendar whose resolved spans break that (Samoa's skipped 2011-12-30 resolves onto the next
/// day) is marked and walked day by day, as before. The spans are the day memo's arrays, shared,
/// not copies.
struct DayTotals {
    /// The first day held.
    var first = 0
    /// The spans of day `first + i`.
    var spans: [[TimeSpan]] = []
    /// `before[i]`: the working time of days `first ..< first + i`; one more entry than `spans`.
    var before: [Int64] = [0]
    var irregular = false

    var last: Int { first + spans.count - 1 }

    /// Holds days `low ... high`: appends what is missing above, or starts afresh from `low`
    /// (keeping the days held above it while the whole stays within the limit). A range that
    /// starts more than a year past the days held starts afresh too, rather than resolving every
    /// day of the gap while other clocks of the calendar wait for the lock.
    mutating func cover(_ low: Int, _ high: Int, _ spansOf: (Int) -> [TimeSpan]) {
        if !spans.isEmpty, low >= first, low - last <= 366, high - first < DaySpanMemo.limit {
            while last < high { append(spansOf(last + 1)) }
            return
        }
        let top = !spans.isEmpty && last > high && last - low < DaySpanMemo.limit ? last : high
        self = DayTotals()
        first = low
        for day in low ... top { append(spansOf(day)) }
    }

    private mutating func append(_ day: [TimeSpan]) {
        var previousEnd = spans.last(where: { !$0.isEmpty })?.last?.end ?? .min
        for span in day {
            if span.start > span.end || span.start < previousEnd { irregular = true }
            previousEnd = span.end
        }
        spans.append(day)
        before.append(before[before.count - 1] + day.reduce(0) { $0 + $1.length })
    }

    /// The working time held before `instant`, whose local day is `day` (held with both neighbours).
    func workingBefore(_ instant: Int64, day: Int) -> Int64 {
        var total = before[day - 1 - first]
        for index in day - 1 - first ... day + 1 - first {
            for span in spans[index] where span.start < instant { total += TimeSpan(start: span.start, end: min(span.end, instant)).length }
        }
        return total
    }
}

extension WorkingCalendar {
    /// The working time before each of `instants`, counted from one origin (so only differences
    /// mean anything), or nil when the day totals cannot answer: the instants lie more than
    /// ``DaySpanMemo/limit`` days apart, or the calendar's spans are irregular (``DayTotals``).
    fileprivate func workingBefore(_ instants: [Int64]) -> [Int64]? {
        let days = instants.map(localDay(of:))
        guard let low = days.min(), let high = days.max(), high - low + 2 < DaySpanMemo.limit else { return nil }
        return storage.totals.withLock { totals -> [Int64]? in
            totals.cover(low - 1, high + 1) { spans(onDay: $0) }
            guard !totals.irregular else { return nil }
            return zip(instants, days).map { totals.workingBefore($0, day: $1) }
        }
    }
}

/// Working time of a calendar minus paused spans: the time an SLA clock runs.
public struct ActiveTime: Sendable {
    public let calendar: WorkingCalendar
    /// The pauses, sorted and merged. An open-ended pause ends at `Int64.max`.
    public let pauses: [TimeSpan]

    /// `pauses` may overlap and come in any order; empty ones are dropped.
    public init(calendar: WorkingCalendar, pauses: [TimeSpan] = []) {
        self.calendar = calendar
        self.pauses = merged(pauses)
    }

    /// Milliseconds of working time within `[from, to)` that fall in no pause.
    public func elapsed(from: Int64, to: Int64) -> Int64 {
        guard from < to else { return 0 }
        // The working time in the range less the working time in each pause within it: the
        // pauses are merged, so none is counted twice.
        var points = [from, to]
        for pause in pauses where pause.end > from && pause.start < to {
            points.append(max(pause.start, from))
            points.append(min(pause.end, to))
        }
        if let before = calendar.workingBefore(points) {
            var total = before[1] - before[0]
            for pause in stride(from: 2, to: points.count, by: 2) { total -= before[pause + 1] - before[pause] }
            return total
        }
        return elapsedByDays(from: from, to: to)
    }

    /// ``elapsed(from:to:)`` walked day by day: the reference, and what a calendar the day
    /// totals cannot hold uses.
    func elapsedByDays(from: Int64, to: Int64) -> Int64 {
        var total: Int64 = 0
        calendar.forEachSpan(in: TimeSpan(start: from, end: to)) { span in
            total += unpaused(span).reduce(0) { $0 + $1.length }
            return true
        }
        return total
    }

    /// The instant at which `duration` milliseconds of active time after `start` have passed, or
    /// `nil` if that is not before an open-ended pause nor within `WorkingCalendar.horizon`.
    /// A duration of 0 or less gives `start`.
    public func add(_ duration: Int64, to start: Int64) -> Int64? {
        guard duration > 0 else { return start }
        var countdown = Countdown(remaining: duration)
        let openPause = pauses.last { $0.end == .max }?.start ?? .max
        let range = TimeSpan(start: start, end: min(horizonEnd(after: start), openPause))
        calendar.forEachSpan(in: range) { span in
            for piece in unpaused(span) {
                guard countdown.consume(piece) else { return false }
            }
            return true
        }
        return countdown.reached
    }

    /// The parts of `span` outside every pause.
    private func unpaused(_ span: TimeSpan) -> [TimeSpan] {
        var pieces: [TimeSpan] = []
        var cursor = span.start
        for pause in pauses where pause.end > cursor && pause.start < span.end {
            if pause.start > cursor { pieces.append(TimeSpan(start: cursor, end: pause.start)) }
            cursor = pause.end
        }
        if cursor < span.end { pieces.append(TimeSpan(start: cursor, end: span.end)) }
        return pieces
    }
}

/// Counts down a duration over spans taken in order.
private struct Countdown {
    var remaining: Int64
    var reached: Int64?

    /// Uses up `span`; returns false once the duration is reached, at `reached`.
    mutating func consume(_ span: TimeSpan) -> Bool {
        guard span.length < remaining else {
            reached = span.start + remaining
            return false
        }
        remaining -= span.length
        return true
    }
}

/// `spans` sorted, with overlapping and touching ones joined and empty ones dropped.
private func merged(_ spans: [TimeSpan]) -> [TimeSpan] {
    var result: [TimeSpan] = []
    for span in spans.sorted(by: { $0.start < $1.start }) where span.start < span.end {
        if let last = result.last, span.start <= last.end {
            result[result.count - 1].end = max(last.end, span.end)
        } else {
            result.append(span)
        }
    }
    return result
}

private func horizonEnd(after start: Int64) -> Int64 {
    let (end, overflow) = start.addingReportingOverflow(WorkingCalendar.horizon)
    return overflow ? .max : end
}

private func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    let quotient = value / divisor
    return value % divisor < 0 ? quotient - 1 : quotient
}

// MARK: - Dates

/// A date of the proleptic Gregorian calendar.
private struct CivilDate {
    let year: Int
    let month: Int
    let day: Int

    /// The date `days` days after 1970-01-01 (H. Hinnant's `civil_from_days`).
    init(daysSince1970 days: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }
}

/// 1 = Monday … 7 = Sunday; 1970-01-01 was a Thursday.
private func weekday(daysSince1970 days: Int) -> Int {
    ((days % 7 + 7) % 7 + 3) % 7 + 1
}

/// Days in `month` of `year`; February has 29 when the year is not given.
private func daysIn(month: Int, year: Int?) -> Int {
    let leap = year.map { $0 % 4 == 0 && ($0 % 100 != 0 || $0 % 400 == 0) } ?? true
    switch month {
    case 2: return leap ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

/// A holiday: one date, or a month and day every year.
private enum Holiday: Hashable {
    case dated(year: Int, month: Int, day: Int)
    case yearly(month: Int, day: Int)

    /// Parses `YYYY-MM-DD` or `MM-DD`; `nil` if `text` is neither or not a real date.
    init?(_ text: String) {
        let fields = text.split(separator: "-", omittingEmptySubsequences: false)
        let year = fields.count == 3 ? digits(fields[0], count: 4) : nil
        guard fields.count == 2 || year != nil,
              let month = digits(fields[fields.count - 2], count: 2),
              let day = digits(fields[fields.count - 1], count: 2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        self = year.map { .dated(year: $0, month: month, day: day) } ?? .yearly(month: month, day: day)
    }
}

private func clockText(_ minutes: Int) -> String {
    let hours = minutes / 60, rest = minutes % 60
    return (hours < 10 ? "0" : "") + "\(hours):" + (rest < 10 ? "0" : "") + "\(rest)"
}

/// The value of exactly `count` ASCII digits, or `nil`.
private func digits(_ text: Substring, count: Int) -> Int? {
    guard text.utf8.count == count, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
    return Int(text)
}

// MARK: - Checking a document

private func checkName(_ name: String) throws(ConfigIssue) {
    let bytes = Array(name.utf8)
    let isLetterOrDigit = { (byte: UInt8) in (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
    guard let first = bytes.first, isLetterOrDigit(first), bytes.count <= 64,
          bytes.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
        throw ConfigIssue(path: "name", "\"\(name)\" is not a calendar name; use 1-64 characters a-z, 0-9, \"_\" "
                          + "and \"-\", starting with a letter or digit")
    }
}

private func parseZone(_ identifier: String) throws(ConfigIssue) -> TimeZone {
    if ["UTC+", "UTC-", "GMT+", "GMT-"].contains(where: identifier.hasPrefix) {
        throw ConfigIssue(path: "timezone", "\"\(identifier)\" is a fixed offset without daylight saving time; "
                          + "use an IANA name such as \"Europe/Berlin\"")
    }
    guard let zone = TimeZone(identifier: identifier) else {
        throw ConfigIssue(path: "timezone", "unknown time zone \"\(identifier)\"; use an IANA name such as "
                          + "\"Europe/Berlin\" or \"UTC\"")
    }
    return zone
}

private func parseWeekly(_ weekly: [String: [String]]) throws(ConfigIssue) -> [Int: [DayInterval]] {
    if let unknown = weekly.keys.sorted().first(where: { !dayNames.contains($0) }) {
        throw ConfigIssue(path: "weekly.\(unknown)", "unknown day \"\(unknown)\"; use \(dayNames.joined(separator: ", "))")
    }
    var result: [Int: [DayInterval]] = [:]
    for (index, day) in dayNames.enumerated() {
        let intervals = try parseDay(weekly[day] ?? [], path: "weekly.\(day)")
        if !intervals.isEmpty { result[index + 1] = intervals }
    }
    guard !result.isEmpty else {
        throw ConfigIssue(path: "weekly", "the calendar has no working time; give at least one day an interval "
                          + "such as \"09:00-17:00\"")
    }
    return result
}

private func parseDay(_ texts: [String], path: String) throws(ConfigIssue) -> [DayInterval] {
    var intervals: [DayInterval] = []
    for (index, text) in texts.enumerated() {
        let place = "\(path)[\(index)]"
        let interval = try parseInterval(text, path: place)
        if let previous = intervals.last, interval.start < previous.end {
            throw ConfigIssue(path: place, interval.end > previous.start
                ? "intervals overlap: \"\(text)\" starts before \"\(previous.text)\" ends"
                : "\"\(text)\" comes before \"\(previous.text)\"; list a day's intervals in order")
        }
        intervals.append(interval)
    }
    return intervals
}

private func parseInterval(_ text: String, path: String) throws(ConfigIssue) -> DayInterval {
    let ends = text.split(separator: "-", omittingEmptySubsequences: false)
    guard ends.count == 2 else {
        throw ConfigIssue(path: path, "\"\(text)\" is not an interval; write HH:MM-HH:MM, e.g. \"09:00-17:00\"")
    }
    let start = try parseClock(ends[0], path: path)
    let end = try parseClock(ends[1], path: path)
    guard start < end else {
        throw ConfigIssue(path: path, "\"\(text)\" does not end after it starts; the end must be later than the start")
    }
    return DayInterval(start: start, end: end)
}

private func parseClock(_ text: Substring, path: String) throws(ConfigIssue) -> Int {
    let fields = text.split(separator: ":", omittingEmptySubsequences: false)
    guard fields.count == 2, let hour = digits(fields[0], count: 2), let minute = digits(fields[1], count: 2),
          hour < 24 && minute < 60 || hour == 24 && minute == 0 else {
        throw ConfigIssue(path: path, "\"\(text)\" is not a time; write HH:MM with HH 00-24 and MM 00-59 "
                          + "(24 only as 24:00)")
    }
    return hour * 60 + minute
}

private func checkHolidays(_ holidays: [String]) throws(ConfigIssue) {
    var seen: Set<Holiday> = []
    for (index, text) in holidays.enumerated() {
        guard let holiday = Holiday(text) else {
            throw ConfigIssue(path: "holidays[\(index)]", "\"\(text)\" is not a date; write YYYY-MM-DD for one day "
                              + "or MM-DD for the same day every year")
        }
        guard seen.insert(holiday).inserted else {
            throw ConfigIssue(path: "holidays[\(index)]", "\"\(text)\" is listed twice")
        }
    }
}

// MARK: - The document

/// A calendar as written in a configuration file, unchecked; `WorkingCalendar(document:)` checks it.
///
/// ```json
/// {"name": "emea", "version": 3, "timezone": "Europe/Berlin",
///  "weekly": {"mon": ["09:00-12:30", "13:30-17:00"], "sun": []},
///  "holidays": ["2026-12-25", "12-24"]}
/// ```
///
/// Decoding rejects unknown keys, missing keys and values of the wrong type with a `ConfigIssue`
/// whose `path` starts from the root of the decoded data, e.g. `calendars[0].colour`.
public struct CalendarDocument: VersionedDocument {
    public var name: String
    public var version: Int
    /// An IANA time zone identifier.
    public var timezone: String
    /// Day (`mon` … `sun`) → intervals `"HH:MM-HH:MM"`; a day left out has no working time.
    public var weekly: [String: [String]]
    /// `"YYYY-MM-DD"` for one day, `"MM-DD"` for the same day every year. Optional when decoding.
    public var holidays: [String]

    private static let keys = ["name", "version", "timezone", "weekly", "holidays"]

    public init(name: String, version: Int, timezone: String, weekly: [String: [String]], holidays: [String] = []) {
        self.name = name
        self.version = version
        self.timezone = timezone
        self.weekly = weekly
        self.holidays = holidays
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: DynamicKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !Self.keys.contains($0) }) {
            throw ConfigIssue(path: render(decoder.codingPath + [DynamicKey(unknown)]),
                              "unknown key \"\(unknown)\"; expected \(Self.keys.joined(separator: ", "))")
        }
        name = try container.field("name", expected: "a string")
        version = try container.field("version", expected: "a whole number")
        timezone = try container.field("timezone", expected: "a string such as \"Europe/Berlin\"")
        weekly = try container.field("weekly", expected: "an object from day (mon … sun) to a list of \"HH:MM-HH:MM\"")
        holidays = try container.field("holidays", expected: "a list of \"YYYY-MM-DD\" or \"MM-DD\"", default: [])
    }
}

private struct DynamicKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }

    init(_ stringValue: String) { self.stringValue = stringValue }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private extension KeyedDecodingContainer where Key == DynamicKey {
    /// The value at `key`; a `ConfigIssue` if it is missing (and has no default) or of the wrong type.
    func field<Value: Decodable>(_ key: String, expected: String, default fallback: Value? = nil) throws -> Value {
        let codingKey = DynamicKey(key)
        guard contains(codingKey) else {
            guard let fallback else {
                throw ConfigIssue(path: render(codingPath + [codingKey]), "missing; expected \(expected)")
            }
            return fallback
        }
        do {
            return try decode(Value.self, forKey: codingKey)
        } catch let error as DecodingError {
            throw ConfigIssue(path: render(error.failurePath ?? codingPath + [codingKey]), "expected \(expected)")
        }
    }
}

private extension DecodingError {
    /// Where decoding failed, from the root of the decoded data.
    var failurePath: [any CodingKey]? {
        switch self {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath
        case .keyNotFound(let key, let context):
            context.codingPath + [key]
        @unknown default:
            nil
        }
    }
}

/// `weekly.mon[1]`-style text for a coding path.
private func render(_ keys: [any CodingKey]) -> String {
    keys.reduce(into: "") { path, key in
        if let index = key.intValue {
            path += "[\(index)]"
        } else {
            path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
}
