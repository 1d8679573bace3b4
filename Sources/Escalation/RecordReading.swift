import Foundation

extension EscalationRecord {
    /// Reads a body in the canonical form ``encoded()`` writes, without `JSONDecoder`; `nil` when the
    /// body is anything else, and then only `JSONDecoder` decides.
    ///
    /// Deriving the dashboard's facts reads every record of every ticket, and `JSONDecoder` took a
    /// sixth of it. This reader takes only what it can read exactly as `JSONDecoder` reads it: one
    /// object with no whitespace, known members each at most once, strings without escapes or control
    /// characters, integers without fraction or exponent, no `null`. Every other body, valid or not,
    /// goes to `JSONDecoder`, so ``decode(_:)`` answers as `JSONDecoder` does for every body (a test
    /// compares the two over random and altered bodies).
    package static func decodeCanonical(_ body: String) -> EscalationRecord? {
        var body = body
        return body.withUTF8 { bytes in
            var reader = CanonicalReader(bytes: bytes)
            guard let record = reader.record(), reader.isAtEnd else { return nil }
            return record
        }
    }
}

/// A cursor over a canonical record body; every method returns `nil` at the first byte outside the
/// subset ``EscalationRecord/decodeCanonical(_:)`` takes.
private struct CanonicalReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func take(_ byte: UInt8) -> Bool {
        guard offset < bytes.count, bytes[offset] == byte else { return false }
        offset += 1
        return true
    }

    /// A string without escapes or control characters.
    mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = offset
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset - 1]), as: UTF8.self)
            }
            guard byte >= 0x20, byte != UInt8(ascii: "\\") else { return nil }
            offset += 1
        }
        return nil
    }

    /// `-?(0|[1-9][0-9]*)` within Int64.
    mutating func integer() -> Int64? {
        let negative = take(UInt8(ascii: "-"))
        let start = offset
        var value: Int64 = 0
        while offset < bytes.count, bytes[offset] >= UInt8(ascii: "0"), bytes[offset] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[offset] - UInt8(ascii: "0"))
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = sum
            offset += 1
        }
        let digits = offset - start
        guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        // A fraction or an exponent is not this subset's.
        if offset < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[offset]) { return nil }
        return value
    }

    mutating func int() -> Int? { integer().flatMap { Int(exactly: $0) } }

    /// `{"name":…,"value":…}` members in any order, each at most once, through `member`, which
    /// returns false for a name it does not know or a value it cannot read.
    mutating func object(_ member: (inout CanonicalReader, String) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        if take(UInt8(ascii: "}")) { return true }
        var seen = Set<String>()
        repeat {
            guard let name = string(), seen.insert(name).inserted, take(UInt8(ascii: ":")), member(&self, name) else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    mutating func pin() -> Pin? {
        var name: String?, version: Int?
        guard object({ reader, key in
            switch key {
            case "name": name = reader.string()
            case "version": version = reader.int()
            default: return false
            }
            return true
        }), let name, let version else { return nil }
        return Pin(name: name, version: version)
    }

    mutating func note() -> HandoffNote? {
        var summary: String?, facts: String?, steps: String?, action: String?
        guard object({ reader, key in
            switch key {
            case "summary": summary = reader.string()
            case "verifiedFacts": facts = reader.string()
            case "stepsTried": steps = reader.string()
            case "requestedAction": action = reader.string()
            default: return false
            }
            return true
        }), let summary, let facts, let steps, let action else { return nil }
        return HandoffNote(summary: summary, verifiedFacts: facts, stepsTried: steps, requestedAction: action)
    }

    mutating func strings() -> [String]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var out: [String] = []
        if take(UInt8(ascii: "]")) { return out }
        repeat {
            guard let text = string() else { return nil }
            out.append(text)
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]")) ? out : nil
    }

    mutating func record() -> EscalationRecord? {
        var type: RecordType?, at: Int64?
        var record = EscalationRecord(type: .slaApplied, at: 0)
        func set<T>(_ value: T?, _ path: WritableKeyPath<EscalationRecord, T?>) -> Bool {
            guard let value else { return false }
            record[keyPath: path] = value
            return true
        }
        guard object({ reader, key in
            switch key {
            case "type":
                type = reader.string().flatMap(RecordType.init(rawValue:))
                return type != nil
            case "at":
                at = reader.integer()
                return at != nil
            case "clock": return set(reader.string().flatMap(ClockKind.init(rawValue:)), \.clock)
            case "clockCycle": return set(reader.int(), \.clockCycle)
            case "policy": return set(reader.pin(), \.policy)
            case "calendar": return set(reader.pin(), \.calendar)
            case "ladder": return set(reader.pin(), \.ladder)
            case "ladderCalendar": return set(reader.pin(), \.ladderCalendar)
            case "matrix": return set(reader.pin(), \.matrix)
            case "cycle": return set(reader.string().flatMap(UUID.init(uuidString:)), \.cycle)
            case "level": return set(reader.int(), \.level)
            case "loop": return set(reader.int(), \.loop)
            case "targets": return set(reader.strings(), \.targets)
            case "assignment": return set(reader.string().flatMap(Assignment.init(rawValue:)), \.assignment)
            case "fromGroup": return set(reader.string(), \.fromGroup)
            case "toGroup": return set(reader.string(), \.toGroup)
            case "toSite": return set(reader.string(), \.toSite)
            case "refersTo": return set(reader.string().flatMap(UUID.init(uuidString:)), \.refersTo)
            case "reason": return set(reader.string(), \.reason)
            case "note": return set(reader.note(), \.note)
            default: return false
            }
        }), let type, let at else { return nil }
        record.type = type
        record.at = at
        return record
    }
}
