import Escalation
import Foundation
import Testing

/// Milliseconds since 1970 of an ISO 8601 instant such as `2026-03-27T08:00:00Z`.
private func utc(_ text: String) -> Int64 {
    guard let date = ISO8601DateFormatter().date(from: text) else {
        Issue.record("bad test instant \(text)")
        return 0
    }
    return Int64(date.timeIntervalSince1970 * 1_000)
}

private let hour: Int64 = 3_600_000
private let weekdays = ["mon", "tue", "wed", "thu", "fri"]

private func calendar(_ weekly: [String: [String]], zone: String = "Europe/Berlin",
                      holidays: [String] = []) throws -> WorkingCalendar {
    try WorkingCalendar(document: CalendarDocument(name: "test", version: 1, timezone: zone, weekly: weekly,
                                                   holidays: holidays))
}

private func nineToFive(_ zone: String = "Europe/Berlin", holidays: [String] = []) throws -> WorkingCalendar {
    try calendar(Dictionary(uniqueKeysWithValues: weekdays.map { ($0, ["09:00-17:00"]) }), zone: zone, holidays: holidays)
}

@Suite struct BusinessTimeTests {
    @Test func addingCarriesOverTheWeekend() throws {
        // Friday 2026-01-16 15:00 CET + 4h = 2h on Friday + 2h on Monday 2026-01-19 → 11:00 CET.
        let cal = try nineToFive()
        #expect(cal.add(4 * hour, to: utc("2026-01-16T14:00:00Z")) == utc("2026-01-19T10:00:00Z"))
    }

    @Test func aHolidayIsSkipped() throws {
        let cal = try nineToFive(holidays: ["2026-01-19"])
        #expect(cal.add(4 * hour, to: utc("2026-01-16T14:00:00Z")) == utc("2026-01-20T10:00:00Z"))
    }

    @Test func aRecurringHolidayIsSkippedEveryYear() throws {
        let cal = try nineToFive(holidays: ["12-25"])
        // 2026-12-25 is a Friday: Thursday 15:00 + 4h → Monday 2026-12-28 11:00 CET.
        #expect(cal.add(4 * hour, to: utc("2026-12-24T14:00:00Z")) == utc("2026-12-28T10:00:00Z"))
        // 2025-12-25 is a Thursday: Wednesday 15:00 + 4h → Friday 2025-12-26 11:00 CET.
        #expect(cal.add(4 * hour, to: utc("2025-12-24T14:00:00Z")) == utc("2025-12-26T10:00:00Z"))
        #expect(try nineToFive().add(4 * hour, to: utc("2025-12-24T14:00:00Z")) == utc("2025-12-25T10:00:00Z"))
    }

    @Test func aLunchBreakIsNotWorkingTime() throws {
        let cal = try calendar(["mon": ["09:00-12:00", "13:00-17:00"]])
        // Monday 2026-01-19 10:00 CET + 4h = 10–12 and 13–15.
        #expect(cal.add(4 * hour, to: utc("2026-01-19T09:00:00Z")) == utc("2026-01-19T14:00:00Z"))
        #expect(cal.businessMillis(from: utc("2026-01-19T08:00:00Z"), to: utc("2026-01-19T16:00:00Z")) == 7 * hour)
        #expect(cal.workingSpans(from: utc("2026-01-19T00:00:00Z"), to: utc("2026-01-20T00:00:00Z")) == [
            TimeSpan(start: utc("2026-01-19T08:00:00Z"), end: utc("2026-01-19T11:00:00Z")),
            TimeSpan(start: utc("2026-01-19T12:00:00Z"), end: utc("2026-01-19T16:00:00Z")),
        ])
    }

    @Test func aDurationEndingAtTheCloseEndsThatDay() throws {
        let cal = try nineToFive()
        #expect(cal.add(8 * hour, to: utc("2026-01-16T08:00:00Z")) == utc("2026-01-16T16:00:00Z"))
    }

    @Test func aZeroDurationIsTheStart() throws {
        let saturday = utc("2026-01-17T12:00:00Z")
        #expect(try nineToFive().add(0, to: saturday) == saturday)
        #expect(ActiveTime(calendar: try nineToFive()).add(0, to: saturday) == saturday)
    }

    @Test func aWeekendCountsNoTime() throws {
        let cal = try nineToFive()
        // Friday 12:00 CET to Monday 12:00 CET: 5h + 3h.
        let from = utc("2026-01-16T11:00:00Z"), to = utc("2026-01-19T11:00:00Z")
        #expect(cal.businessMillis(from: from, to: to) == 8 * hour)
        #expect(cal.workingSpans(from: from, to: to) == [
            TimeSpan(start: from, end: utc("2026-01-16T16:00:00Z")),
            TimeSpan(start: utc("2026-01-19T08:00:00Z"), end: to),
        ])
        #expect(cal.businessMillis(from: to, to: from) == 0)
        #expect(cal.workingSpans(from: to, to: from).isEmpty)
    }

    @Test func thirtyBusinessDaysOfHoursEndNinetyWorkingDaysLater() throws {
        // 720 business hours on 09:00–17:00 are 90 working days: Monday 2026-01-05 09:00 CET
        // to Friday 2026-05-08 17:00 CEST.
        let cal = try nineToFive()
        #expect(cal.add(720 * hour, to: utc("2026-01-05T08:00:00Z")) == utc("2026-05-08T15:00:00Z"))
    }

    @Test func allTheTimeIsOneSpan() throws {
        let from = utc("2026-03-27T10:00:00Z"), to = utc("2026-04-02T10:00:00Z")
        #expect(WorkingCalendar.always.isAlways)
        #expect(WorkingCalendar.always.name == "24x7")
        #expect(WorkingCalendar.always.workingSpans(from: from, to: to) == [TimeSpan(start: from, end: to)])
        #expect(WorkingCalendar.always.add(30 * 24 * hour, to: from) == from + 30 * 24 * hour)
        #expect(try !nineToFive().isAlways)
        let split = try calendar(Dictionary(uniqueKeysWithValues: (weekdays + ["sat", "sun"]).map {
            ($0, ["00:00-12:00", "12:00-24:00"])
        }))
        #expect(split.isAlways)
        #expect(split.workingSpans(from: from, to: to) == [TimeSpan(start: from, end: to)])
    }

    @Test func nothingWithinThreeYearsIsNil() throws {
        let cal = try calendar(["mon": ["09:00-17:00"]], holidays: allMonthDays())
        let start = utc("2026-01-01T00:00:00Z")
        #expect(cal.add(hour, to: start) == nil)
        #expect(ActiveTime(calendar: cal).add(hour, to: start) == nil)
        #expect(cal.businessMillis(from: start, to: start + WorkingCalendar.horizon) == 0)
    }

    private func allMonthDays() -> [String] {
        let lengths = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return lengths.enumerated().flatMap { month, days in
            (1...days).map { String(format: "%02d-%02d", month + 1, $0) }
        }
    }
}

@Suite struct DaylightSavingTests {
    private let allDay = ["00:00-24:00"]

    @Test func berlinLocalDaysHave23And25Hours() throws {
        let cal = try calendar(Dictionary(uniqueKeysWithValues: (weekdays + ["sat", "sun"]).map { ($0, allDay) }))
        // 2026-03-29 00:00 CET to 2026-03-30 00:00 CEST; 2026-10-25 00:00 CEST to 2026-10-26 00:00 CET.
        #expect(cal.businessMillis(from: utc("2026-03-28T23:00:00Z"), to: utc("2026-03-29T22:00:00Z")) == 23 * hour)
        #expect(cal.businessMillis(from: utc("2026-10-24T22:00:00Z"), to: utc("2026-10-25T23:00:00Z")) == 25 * hour)
        let from = utc("2026-03-25T12:00:00Z"), to = utc("2026-04-02T12:00:00Z")
        #expect(cal.workingSpans(from: from, to: to) == [TimeSpan(start: from, end: to)])
    }

    @Test func aSundayOnlyCalendarHasTheChangedDaysLength() throws {
        let cal = try calendar(["sun": allDay])
        #expect(cal.workingSpans(from: utc("2026-03-23T00:00:00Z"), to: utc("2026-04-01T00:00:00Z")) == [
            TimeSpan(start: utc("2026-03-28T23:00:00Z"), end: utc("2026-03-29T22:00:00Z")),
        ])
        #expect(cal.workingSpans(from: utc("2026-10-19T00:00:00Z"), to: utc("2026-10-28T00:00:00Z")) == [
            TimeSpan(start: utc("2026-10-24T22:00:00Z"), end: utc("2026-10-25T23:00:00Z")),
        ])
        #expect(cal.businessMillis(from: utc("2026-10-19T00:00:00Z"), to: utc("2026-10-28T00:00:00Z")) == 25 * hour)
    }

    @Test func intervalsAcrossTheChangeCountRealHours() throws {
        let cal = try calendar(["sun": ["01:00-04:00"]])
        // Spring: 01:00 CET (00:00Z) to 04:00 CEST (02:00Z). Autumn: 01:00 CEST (23:00Z) to 04:00 CET (03:00Z).
        #expect(cal.businessMillis(from: utc("2026-03-28T00:00:00Z"), to: utc("2026-03-30T00:00:00Z")) == 2 * hour)
        #expect(cal.businessMillis(from: utc("2026-10-24T00:00:00Z"), to: utc("2026-10-26T00:00:00Z")) == 4 * hour)
    }

    @Test func aStartInsideTheGapMovesForwardByTheGap() throws {
        // 02:30 does not exist on 2026-03-29 in Berlin; Foundation reads it as 03:30 CEST (01:30Z).
        let cal = try calendar(["sun": ["02:30-04:00"]])
        #expect(cal.workingSpans(from: utc("2026-03-28T00:00:00Z"), to: utc("2026-03-30T00:00:00Z")) == [
            TimeSpan(start: utc("2026-03-29T01:30:00Z"), end: utc("2026-03-29T02:00:00Z")),
        ])
    }

    @Test func addingOverBerlinSpringAndAutumnChanges() throws {
        let cal = try nineToFive()
        // Friday 2026-03-27 15:00 CET + 10h = 2h Friday + 8h Monday → 17:00 CEST.
        #expect(cal.add(10 * hour, to: utc("2026-03-27T14:00:00Z")) == utc("2026-03-30T15:00:00Z"))
        // Friday 2026-10-23 15:00 CEST + 10h → Monday 2026-10-26 17:00 CET.
        #expect(cal.add(10 * hour, to: utc("2026-10-23T13:00:00Z")) == utc("2026-10-26T16:00:00Z"))
        // Friday 09:00 CET to Monday 17:00 CEST is two working days.
        #expect(cal.businessMillis(from: utc("2026-03-27T08:00:00Z"), to: utc("2026-03-30T15:00:00Z")) == 16 * hour)
    }

    @Test func newYorkSpringForward() throws {
        let cal = try nineToFive("America/New_York")
        // Friday 2026-03-06 15:00 EST (20:00Z) + 10h → Monday 2026-03-09 17:00 EDT (21:00Z).
        #expect(cal.add(10 * hour, to: utc("2026-03-06T20:00:00Z")) == utc("2026-03-09T21:00:00Z"))
        let sunday = try calendar(["sun": allDay], zone: "America/New_York")
        #expect(sunday.workingSpans(from: utc("2026-03-05T00:00:00Z"), to: utc("2026-03-12T00:00:00Z")) == [
            TimeSpan(start: utc("2026-03-08T05:00:00Z"), end: utc("2026-03-09T04:00:00Z")),
        ])
    }
}

@Suite struct ActiveTimeTests {
    // Monday 2026-01-19, 09:00–17:00 CET = 08:00Z–16:00Z.
    private let nine = utc("2026-01-19T08:00:00Z")

    @Test func aPauseDelaysTheTargetByItsLength() throws {
        let cal = try nineToFive()
        let pause = TimeSpan(start: utc("2026-01-19T09:00:00Z"), end: utc("2026-01-19T10:00:00Z"))
        #expect(ActiveTime(calendar: cal).add(4 * hour, to: nine) == utc("2026-01-19T12:00:00Z"))
        #expect(ActiveTime(calendar: cal, pauses: [pause]).add(4 * hour, to: nine) == utc("2026-01-19T13:00:00Z"))
    }

    @Test func anOpenPauseStopsTheClock() throws {
        let pause = TimeSpan(start: utc("2026-01-19T11:00:00Z"), end: .max)
        let active = ActiveTime(calendar: try nineToFive(), pauses: [pause])
        #expect(active.add(4 * hour, to: nine) == nil)
        #expect(active.add(3 * hour, to: nine) == utc("2026-01-19T11:00:00Z"))
        #expect(active.add(2 * hour, to: nine) == utc("2026-01-19T10:00:00Z"))
        #expect(active.elapsed(from: nine, to: utc("2026-01-23T00:00:00Z")) == 3 * hour)
    }

    @Test func elapsedLeavesOutPauses() throws {
        let pause = TimeSpan(start: utc("2026-01-19T09:00:00Z"), end: utc("2026-01-19T10:00:00Z"))
        let active = ActiveTime(calendar: try nineToFive(), pauses: [pause])
        #expect(active.elapsed(from: nine, to: utc("2026-01-19T16:00:00Z")) == 7 * hour)
        #expect(active.elapsed(from: utc("2026-01-19T16:00:00Z"), to: nine) == 0)
    }

    @Test func overlappingPausesCountOnce() throws {
        let pauses = [
            TimeSpan(start: utc("2026-01-19T09:30:00Z"), end: utc("2026-01-19T10:30:00Z")),
            TimeSpan(start: utc("2026-01-19T09:00:00Z"), end: utc("2026-01-19T10:00:00Z")),
            TimeSpan(start: utc("2026-01-19T15:00:00Z"), end: utc("2026-01-19T19:00:00Z")),
        ]
        let active = ActiveTime(calendar: try nineToFive(), pauses: pauses)
        #expect(active.pauses.count == 2)
        // 8h minus 1.5h in the morning minus the one working hour of the evening pause.
        #expect(active.elapsed(from: nine, to: utc("2026-01-20T00:00:00Z")) == 5 * hour + hour / 2)
        // 09:00–10:00 and 11:30–16:00 CET make 5.5h; the next 0.5h is Tuesday 09:00–09:30 CET.
        #expect(active.add(6 * hour, to: nine) == utc("2026-01-20T08:30:00Z"))
    }
}

@Suite struct CalendarDocumentTests {
    private let sample = #"""
        {"name": "emea", "version": 3, "timezone": "Europe/Berlin",
         "weekly": {"mon": ["09:00-12:30", "13:30-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
                    "thu": ["09:00-17:00"], "fri": ["09:00-15:00"], "sat": [], "sun": []},
         "holidays": ["2026-12-25", "12-24"]}
        """#

    private func decode(_ json: String) throws -> CalendarDocument {
        try JSONDecoder().decode(CalendarDocument.self, from: Data(json.utf8))
    }

    private func issue(_ document: CalendarDocument) -> ConfigIssue? {
        do {
            _ = try WorkingCalendar(document: document)
            return nil
        } catch {
            return error
        }
    }

    private func decodingIssue(_ json: String) -> ConfigIssue? {
        do {
            _ = try decode(json)
            return nil
        } catch {
            return error as? ConfigIssue
        }
    }

    private func document(timezone: String = "Europe/Berlin", version: Int = 1, name: String = "emea",
                          weekly: [String: [String]] = ["mon": ["09:00-17:00"]],
                          holidays: [String] = []) -> CalendarDocument {
        CalendarDocument(name: name, version: version, timezone: timezone, weekly: weekly, holidays: holidays)
    }

    @Test func aValidDocumentIsParsed() throws {
        let cal = try WorkingCalendar(document: try decode(sample))
        #expect(cal.name == "emea")
        #expect(cal.version == 3)
        #expect(cal.timeZone == "Europe/Berlin")
        #expect(cal.weekly[1]?.map(\.text) == ["09:00-12:30", "13:30-17:00"])
        #expect(cal.weekly[1]?.first?.start == 9 * 60)
        #expect(cal.weekly[5]?.map(\.text) == ["09:00-15:00"])
        #expect(cal.weekly[6] == nil)
        #expect(cal.holidays == ["2026-12-25", "12-24"])
    }

    @Test func aDocumentRoundTrips() throws {
        let cal = try WorkingCalendar(document: try decode(sample))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(cal.document), as: UTF8.self)
        let again = try decode(text)
        #expect(again == cal.document)
        #expect(try WorkingCalendar(document: again) == cal)
        #expect(text.contains(#""holidays":["12-24","2026-12-25"]"#))
        #expect(!text.contains("sat"))
    }

    @Test func holidaysMayBeLeftOutAndEndsMayBeMidnight() throws {
        let cal = try WorkingCalendar(document: try decode(
            #"{"name": "late", "version": 1, "timezone": "UTC", "weekly": {"sun": ["18:00-24:00"]}}"#))
        #expect(cal.holidays.isEmpty)
        #expect(cal.weekly[7]?.map(\.text) == ["18:00-24:00"])
        #expect(cal.weekly[7]?.first?.end == 1_440)
    }

    @Test(arguments: [
        (["mon": ["09:00-12:30", "13:30-25:00"]], "weekly.mon[1]", #""25:00" is not a time"#),
        (["mon": ["09:00-12:30", "24:30-24:45"]], "weekly.mon[1]", "is not a time"),
        (["mon": ["09:00-12:30", "12:00-17:00"]], "weekly.mon[1]", "intervals overlap"),
        (["mon": ["13:00-17:00", "09:00-12:00"]], "weekly.mon[1]", "in order"),
        (["tue": ["17:00-09:00"]], "weekly.tue[0]", "does not end after it starts"),
        (["wed": ["9-17"]], "weekly.wed[0]", #""9" is not a time"#),
        (["wed": ["09:00"]], "weekly.wed[0]", "write HH:MM-HH:MM"),
        (["wed": ["9:00-17:00"]], "weekly.wed[0]", "is not a time"),
        (["mon2": ["09:00-17:00"]], "weekly.mon2", #"unknown day "mon2"; use mon, tue, wed, thu, fri, sat, sun"#),
        (["mon": [], "sun": []], "weekly", "no working time"),
    ])
    func badWeeksNameTheInterval(weekly: [String: [String]], path: String, message: String) {
        let found = issue(document(weekly: weekly))
        #expect(found?.path == path)
        #expect(found?.message.contains(message) == true, "\(String(describing: found))")
    }

    @Test func badHeadersNameTheKey() {
        #expect(issue(document(timezone: "Europe/Berln"))?.path == "timezone")
        #expect(issue(document(timezone: "Europe/Berln"))?.message.contains(#"unknown time zone "Europe/Berln""#) == true)
        #expect(issue(document(timezone: "UTC+1"))?.path == "timezone")
        #expect(issue(document(version: 0))?.path == "version")
        #expect(issue(document(version: 0))?.message.contains("at least 1") == true)
        for name in ["EMEA", "", "-emea", "emea team", String(repeating: "a", count: 65)] {
            #expect(issue(document(name: name))?.path == "name", "\(name)")
        }
        #expect(issue(document(name: String(repeating: "a", count: 64))) == nil)
        #expect(issue(document(name: "24x7_b-2")) == nil)
    }

    @Test(arguments: ["2026-02-30", "12-32", "13-01", "2026-1-05", "christmas", "2027-02-29", "12-24"])
    func badHolidaysNameTheEntry(holiday: String) {
        let found = issue(document(holidays: ["2026-12-25", "12-24", holiday]))
        #expect(found?.path == "holidays[2]", "\(String(describing: found))")
    }

    @Test func leapDaysAreHolidays() {
        #expect(issue(document(holidays: ["2028-02-29", "02-29"])) == nil)
    }

    @Test func decodingRejectsUnknownMissingAndMistypedKeys() {
        let unknown = decodingIssue(
            #"{"name": "emea", "version": 1, "timezone": "UTC", "weekly": {}, "colour": "blue"}"#)
        #expect(unknown?.path == "colour")
        #expect(unknown?.message.contains(#"unknown key "colour""#) == true)
        #expect(decodingIssue(#"{"name": "emea", "version": 1, "weekly": {}}"#)?.path == "timezone")
        #expect(decodingIssue(#"{"name": "emea", "version": "3", "timezone": "UTC", "weekly": {}}"#)?.path
                == "version")
        #expect(decodingIssue(#"{"name": "emea", "version": 1, "timezone": "UTC", "weekly": {"mon": [9]}}"#)?.path
                == "weekly.mon[0]")
    }

    @Test func decodingIssuesNameThePathFromTheRoot() {
        struct Bundle: Decodable { var calendars: [CalendarDocument] }
        let json = #"{"calendars": [{"name": "emea", "version": 1, "timezone": "UTC", "weekly": {}, "colour": 1}]}"#
        do {
            _ = try JSONDecoder().decode(Bundle.self, from: Data(json.utf8))
            Issue.record("accepted")
        } catch {
            #expect((error as? ConfigIssue)?.path == "calendars[0].colour", "\(error)")
        }
    }
}
