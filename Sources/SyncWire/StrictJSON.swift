import TicketModel

/// A strict pass over a frame's JSON before it is decoded (`Protocol/PROTOCOL.md` §2.1).
///
/// Foundation's decoders accept what the protocol refuses: repeated member names (the last one
/// silently wins, so two implementations could read one line differently), a byte order mark, and
/// numbers such as `1.0`, `1e3` or `-0` for integer members. This scanner checks the structure once,
/// and reports which top-level members hold a non-integer number or `null`, so the frame decoder can
/// refuse exactly the members it knows.
enum StrictJSON {
    struct Findings {
        /// Top-level members whose value is, or contains, a number that is not a plain integer.
        var nonIntegers: Set<String> = []
        /// Top-level members whose value is `null`.
        var nulls: Set<String> = []
    }

    static func scan(_ bytes: some Collection<UInt8>) throws(WireError) -> Findings {
        var scanner = Scanner(bytes: Array(bytes))
        return try scanner.document()
    }

    struct Scanner {
        let bytes: [UInt8]
        var i = 0
        var findings = Findings()
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ why: String) -> WireError { WireError(.badJSON, "the line is not one valid JSON object: \(why) at byte \(i)") }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        }

        mutating func document() throws(WireError) -> Findings {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { throw fail("a byte order mark") }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { throw fail("no object") }
            try object(topLevel: true)
            skipSpace()
            guard i == bytes.count else { throw fail("text after the object") }
            return findings
        }

        mutating func object(topLevel: Bool) throws(WireError) {
            depth += 1
            guard depth <= 16 else { throw fail("nesting deeper than 16") }
            i += 1
            var names = Set<[UInt8]>()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("a member name must be a string") }
                let name = try string()
                guard names.insert(name).inserted else { throw fail("the member name \(String(decoding: name, as: UTF8.self).debugDescription) appears twice") }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("a colon is missing") }
                i += 1
                skipSpace()
                let member = topLevel ? String(decoding: name, as: UTF8.self) : nil
                try value(member: member)
                skipSpace()
                guard i < bytes.count else { throw fail("the object is not closed") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                guard bytes[i] == UInt8(ascii: "}") else { throw fail("a comma or } is missing") }
                i += 1
                depth -= 1
                return
            }
        }

        /// Scans one value; `member` is the top-level member it belongs to, if any.
        mutating func value(member: String?) throws(WireError) {
            guard i < bytes.count else { throw fail("a value is missing") }
            switch bytes[i] {
            case UInt8(ascii: "{"): try nested(member) { (s: inout Scanner) throws(WireError) in try s.object(topLevel: false) }
            case UInt8(ascii: "["): try nested(member) { (s: inout Scanner) throws(WireError) in try s.array() }
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"):
                try literal("null")
                if let member { findings.nulls.insert(member) }
            default:
                if !(try number()) { findings.nonIntegers.insert(member ?? currentMember ?? "") }
            }
        }

        var currentMember: String?

        mutating func nested(_ member: String?, _ body: (inout Scanner) throws(WireError) -> Void) throws(WireError) {
            let saved = currentMember
            if let member { currentMember = member }
            try body(&self)
            currentMember = saved
        }

        mutating func array() throws(WireError) {
            depth += 1
            guard depth <= 16 else { throw fail("nesting deeper than 16") }
            i += 1
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return }
            while true {
                skipSpace()
                try value(member: nil)
                skipSpace()
                guard i < bytes.count else { throw fail("the array is not closed") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                guard bytes[i] == UInt8(ascii: "]") else { throw fail("a comma or ] is missing") }
                i += 1
                depth -= 1
                return
            }
        }

        mutating func literal(_ word: StaticString) throws(WireError) {
            let text = word.withUTF8Buffer { Array($0) }
            guard bytes[i...].starts(with: text) else { throw fail("an unknown literal") }
            i += text.count
        }

        /// A string's raw content (escapes kept). Checks escapes and control characters; UTF-8 validity
        /// is left to the decoder that follows.
        /// Scans a string and returns its content unescaped (UTF-8), so member names compare as the
        /// decoder will read them (`"t\u0069me"` is `time`). A lone surrogate escape is refused.
        mutating func string() throws(WireError) -> [UInt8] {
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return out
                }
                if c < 0x20 { throw fail("a control character inside a string") }
                guard c == UInt8(ascii: "\\") else {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 1
                guard i < bytes.count else { break }
                switch bytes[i] {
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"), bytes[i + 2] == UInt8(ascii: "u") else {
                            throw fail("a lone surrogate escape")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("a lone surrogate escape")
                    }
                    // A valid scalar here: surrogates were paired or refused above.
                    out += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(bytes[i])
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                default: throw fail("a bad escape")
                }
                i += 1
            }
            throw fail("a string is not closed")
        }

        /// Reads the four hex digits after `\u` (at `i`), leaving `i` on the last one.
        mutating func hex4() throws(WireError) -> UInt32 {
            guard i + 4 < bytes.count, bytes[(i + 1)...(i + 4)].allSatisfy(Self.isHex) else { throw fail("a bad \\u escape") }
            var value: UInt32 = 0
            for c in bytes[(i + 1)...(i + 4)] {
                value = value << 4 | UInt32(c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10)
            }
            i += 4
            return value
        }

        static func isHex(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
        }

        /// Scans a JSON number; `true` when it is a plain integer (no fraction, no exponent, not -0) that
        /// fits in 64 bits signed.
        mutating func number() throws(WireError) -> Bool {
            let start = i
            var integer = true
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("an invalid value") }
            if bytes[i] == 0x30 {
                i += 1
                if i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { throw fail("a number with a leading zero") }
            } else {
                while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                integer = false
                i += 1
                guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("a fraction without digits") }
                while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                integer = false
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("an exponent without digits") }
                while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            }
            if bytes[start..<i].elementsEqual("-0".utf8) { integer = false }
            // Beyond 64 bits signed: not an integer the protocol can hold.
            let digits = bytes[start..<i].filter { $0 != UInt8(ascii: "-") }
            if integer && (digits.count > 19 || (digits.count == 19 && !digits.lexicographicallyPrecedes(Array("9223372036854775808".utf8)))) {
                integer = false
            }
            return integer
        }
    }
}
