/// Durations in configuration files: `90s`, `30m`, `2h`, `1h30m`, `3d` (a day is 24 hours of the
/// clock's time: 24 business hours on a business calendar), or `0`.
public enum DurationText {
    /// Milliseconds of `text`, or `nil` if it is not a duration.
    /// The longest duration accepted: ten years.
    public static let maximum: Int64 = 3_650 * 86_400_000

    public static func millis(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        guard text.utf8.count <= 32 else { return nil }
        var total: Int64 = 0
        var digits = ""
        var sawUnit = false
        for ch in text {
            if ch.isASCII, ch.isNumber {
                digits.append(ch)
                guard digits.count <= 7 else { return nil }
                continue
            }
            let unit: Int64
            switch ch {
            case "s": unit = 1_000
            case "m": unit = 60_000
            case "h": unit = 3_600_000
            case "d": unit = 86_400_000
            default: return nil
            }
            guard let n = Int64(digits) else { return nil }
            total += n * unit
            guard total <= maximum else { return nil }
            digits = ""
            sawUnit = true
        }
        return digits.isEmpty && sawUnit ? total : nil
    }

    /// A short rendering of `ms`: `2h 5m`, `45s`, `3d 4h`.
    public static func render(_ ms: Int64) -> String {
        let sign = ms < 0 ? "-" : ""
        var s = abs(ms) / 1000
        let d = s / 86_400; s %= 86_400
        let h = s / 3_600; s %= 3_600
        let m = s / 60; s %= 60
        var parts: [String] = []
        if d > 0 { parts.append("\(d)d") }
        if h > 0 { parts.append("\(h)h") }
        if m > 0 && d == 0 { parts.append("\(m)m") }
        if s > 0 && d == 0 && h == 0 { parts.append("\(s)s") }
        return sign + (parts.isEmpty ? "0s" : parts.joined(separator: " "))
    }
}
