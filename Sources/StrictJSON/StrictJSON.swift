/// The strict JSON reader: for the files people write (node.json, escalation configuration, routing
/// files), intake bodies, rosters and every line of the sync wire. It reads RFC 8259 JSON and nothing
/// more, and says where a problem is.
///
/// Foundation's `JSONSerialization` accepts a trailing comma, keeps the last of two members with one
/// name, and reports a syntax error without a line. This reader refuses both, gives every problem a
/// line, a column and a key path, and checks member names against the ones a document may hold,
/// reporting every unknown name at once, each with the known name it most resembles.
public enum StrictJSON {
    /// Where a value starts: 1-based line and column (columns count UTF-8 bytes).
    public struct Position: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var description: String { "line \(line), column \(column)" }
        public init(line: Int, column: Int) { (self.line, self.column) = (line, column) }
    }

    /// One problem: where, which member, and what is wrong.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var position: Position
        /// The member's path (`tls.caFile`, `peers[2]`); empty for the document itself.
        public var path: String
        public var message: String
        public var description: String { "\(position)\(path.isEmpty ? "" : " (\(path))"): \(message)" }
    }

    /// A parsed value with where it starts.
    public indirect enum Value: Sendable, Equatable {
        case object([Member])
        case array([Node])
        case string(String)
        /// The number's text as written (integers stay exact).
        case number(String)
        case bool(Bool)
        case null

        /// The number as a 64-bit integer, when it is written as one: digits with an optional minus,
        /// no fraction, no exponent, not `-0`, and within `Int64`'s range. `nil` for anything else,
        /// so `1.0`, `1e3` and `9223372036854775808` are not integers here.
        ///
        /// ```swift
        /// try StrictJSON.parse(Array("42".utf8)).value.integer  // 42
        /// ```
        public var integer: Int64? {
            guard case .number(let text) = self, text != "-0" else { return nil }
            return Int64(text)
        }
    }

    public struct Member: Sendable, Equatable {
        public var name: String
        public var value: Node
    }

    public struct Node: Sendable, Equatable {
        public var value: Value
        public var position: Position
        public init(value: Value, position: Position) { (self.value, self.position) = (value, position) }

        /// The member named `name`, if this is an object that has it.
        public subscript(name: String) -> Node? {
            guard case .object(let members) = value else { return nil }
            return members.first { $0.name == name }?.value
        }
    }

    /// Parses one JSON document. Refused, with the position: anything RFC 8259 does not allow (a
    /// trailing comma, a comment, a single-quoted string, a leading zero, a control character in a
    /// string, a lone surrogate), a byte order mark, nesting deeper than 64, text after the value, and
    /// a member name used twice in one object.
    /// - Parameter maxValues: the most values (of any kind, containers included) the text may hold:
    ///   each costs a node in memory, so a reader of untrusted text (the wire) bounds the tree it
    ///   builds, not only the bytes it reads.
    public static func parse(_ bytes: some Collection<UInt8>, maxValues: Int = .max) throws(Problem) -> Node {
        var parser = Parser(bytes: Array(bytes), maxValues: maxValues)
        return try parser.document()
    }

    /// Every member name in `node` that `known` does not list for its object, with a did-you-mean.
    /// - Parameter known: the names each object may hold, by the object's path (`""` for the
    ///   document, `tls` for a member, `peers[]` for the elements of an array). Objects at a path
    ///   `known` does not name are not checked.
    public static func unknownMembers(in node: Node, known: [String: Set<String>]) -> [Problem] {
        var problems: [Problem] = []
        func visit(_ node: Node, path: String, pattern: String) {
            switch node.value {
            case .object(let members):
                let allowed = known[pattern]
                for member in members {
                    let shown = Self.printable(member.name)
                    let memberPath = path.isEmpty ? shown : "\(path).\(shown)"
                    if let allowed, !allowed.contains(member.name) {
                        var message = "unknown setting \"\(memberPath)\""
                        if let near = nearest(member.name, in: allowed) { message += "; did you mean \"\(near)\"?" }
                        message += "; known here: \(allowed.sorted().joined(separator: ", "))"
                        problems.append(Problem(position: member.value.position, path: memberPath, message: message))
                    } else {
                        visit(member.value, path: memberPath, pattern: pattern.isEmpty ? member.name : "\(pattern).\(member.name)")
                    }
                }
            case .array(let elements):
                for (index, element) in elements.enumerated() { visit(element, path: "\(path)[\(index)]", pattern: pattern + "[]") }
            default:
                break
            }
        }
        visit(node, path: "", pattern: "")
        return problems
    }

    /// `text` with control characters written as `\u{…}`: member names from a hostile document end up
    /// in paths and messages that reach a terminal or a log.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The known name closest to `name` by edit distance (case-insensitive), if it is close: at most
    /// a third of the name's length, and at least one edit.
    /// - Parameter within: the most edits that still count as close (default: a third of the name).
    public static func nearest(_ name: String, in known: Set<String>, within: Int? = nil) -> String? {
        let target = Array(name.lowercased())
        let scored = known.map { (candidate: $0, distance: distance(target, Array($0.lowercased()))) }
        guard let best = scored.min(by: { ($0.distance, $0.candidate) < ($1.distance, $1.candidate) }) else { return nil }
        return best.distance <= (within ?? max(1, target.count / 3)) ? best.candidate : nil
    }

    /// The Levenshtein distance between two short names.
    public static func distance(_ a: String, _ b: String) -> Int { distance(Array(a), Array(b)) }

    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        var line = 1
        var lineStart = 0
        var depth = 0
        let maxValues: Int
        var values = 0

        init(bytes: [UInt8], maxValues: Int = .max) {
            self.bytes = bytes
            self.maxValues = maxValues
        }

        var position: Position { Position(line: line, column: i - lineStart + 1) }

        func fail(_ why: String, path: String = "") -> Problem { Problem(position: position, path: path, message: why) }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let byte = peek {
                switch byte {
                case 0x20, 0x09, 0x0D: i += 1
                case 0x0A:
                    i += 1
                    line += 1
                    lineStart = i
                default: return
                }
            }
        }

        mutating func document() throws(Problem) -> Node {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { throw fail("the text starts with a byte order mark; save it as UTF-8 without one") }
            skipSpace()
            guard peek != nil else { throw fail("the text is empty; it must hold one JSON object") }
            let node = try value(path: "")
            skipSpace()
            guard peek == nil else { throw fail("text after the JSON value (a second object, or a stray character)") }
            return node
        }

        mutating func value(path: String) throws(Problem) -> Node {
            skipSpace()
            let start = position
            values += 1
            guard values <= maxValues else { throw fail("the text holds more than \(maxValues) values", path: path) }
            guard let byte = peek else { throw fail("the text ends where a value should be", path: path) }
            switch byte {
            case UInt8(ascii: "{"): return Node(value: try object(path: path), position: start)
            case UInt8(ascii: "["): return Node(value: try array(path: path), position: start)
            case UInt8(ascii: "\""): return Node(value: .string(try string(path: path)), position: start)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return Node(value: .number(try number(path: path)), position: start)
            case UInt8(ascii: "t"): try literal("true", path: path); return Node(value: .bool(true), position: start)
            case UInt8(ascii: "f"): try literal("false", path: path); return Node(value: .bool(false), position: start)
            case UInt8(ascii: "n"): try literal("null", path: path); return Node(value: .null, position: start)
            case UInt8(ascii: "T"), UInt8(ascii: "F"), UInt8(ascii: "N"):
                throw fail("unexpected word; JSON writes true, false and null in lower case", path: path)
            case UInt8(ascii: "'"): throw fail("strings are written in double quotes, not single ones", path: path)
            case UInt8(ascii: "/"): throw fail("JSON has no comments", path: path)
            default: throw fail("unexpected character \(Self.describe(byte)) where a value should be", path: path)
            }
        }

        mutating func literal(_ word: String, path: String) throws(Problem) {
            let expected = Array(word.utf8)
            guard bytes.count - i >= expected.count, Array(bytes[i..<i + expected.count]) == expected else {
                throw fail("unexpected word; did you mean \(word)? (JSON writes true, false and null in lower case)", path: path)
            }
            i += expected.count
        }

        /// Steps into an object or array (past its opening bracket), at most 64 deep.
        mutating func enter(path: String) throws(Problem) {
            depth += 1
            guard depth <= 64 else { throw fail("nesting deeper than 64", path: path) }
            i += 1
        }

        mutating func object(path: String) throws(Problem) -> Value {
            try enter(path: path)
            defer { depth -= 1 }
            var members: [Member] = []
            var names = Set<String>()
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return .object([]) }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else {
                    throw fail(peek == UInt8(ascii: "}") ? "a comma before \"}\": JSON allows no trailing comma" : "a member name in double quotes should be here", path: path)
                }
                let namePosition = position
                let name = try string(path: path)
                let shown = StrictJSON.printable(name)
                let memberPath = path.isEmpty ? shown : "\(path).\(shown)"
                guard names.insert(name).inserted else {
                    throw Problem(position: namePosition, path: memberPath, message: "\"\(shown)\" appears twice in one object; keep one")
                }
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw fail("a colon should follow the member name \"\(shown)\"", path: memberPath) }
                i += 1
                members.append(Member(name: name, value: try value(path: memberPath)))
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "}"): i += 1; return .object(members)
                case nil: throw fail("the text ends inside an object; a \"}\" is missing", path: path)
                default: throw fail("a comma or \"}\" should follow the value of \"\(shown)\"", path: memberPath)
                }
            }
        }

        mutating func array(path: String) throws(Problem) -> Value {
            try enter(path: path)
            defer { depth -= 1 }
            var elements: [Node] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return .array([]) }
            while true {
                skipSpace()
                if peek == UInt8(ascii: "]") { throw fail("a comma before \"]\": JSON allows no trailing comma", path: path) }
                elements.append(try value(path: "\(path)[\(elements.count)]"))
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "]"): i += 1; return .array(elements)
                case nil: throw fail("the text ends inside an array; a \"]\" is missing", path: path)
                default: throw fail("a comma or \"]\" should follow an element", path: path)
                }
            }
        }

        mutating func number(path: String) throws(Problem) -> String {
            let start = i
            if peek == UInt8(ascii: "-") { i += 1 }
            guard let first = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw fail("a digit should follow \"-\"", path: path) }
            if first == UInt8(ascii: "0"), i + 1 < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i + 1]) {
                throw fail("a number may not start with 0 (write 7, not 07)", path: path)
            }
            digits()
            if peek == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw fail("a digit should follow the decimal point", path: path) }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw fail("a digit should follow the exponent", path: path) }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        @discardableResult
        mutating func digits() -> Int {
            let start = i
            while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { i += 1 }
            return i - start
        }

        mutating func string(path: String) throws(Problem) -> String {
            i += 1
            // Most strings (a frame's base64 payload above all) hold no escape: find the closing
            // quote and take the bytes in one piece.
            let start = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
            if peek == UInt8(ascii: "\"") {
                i += 1
                guard let text = String(validating: bytes[start..<i - 1], as: UTF8.self) else { throw fail("the string is not valid UTF-8", path: path) }
                return text
            }
            var out = Array(bytes[start..<i])
            while true {
                guard let byte = peek else { throw fail("the text ends inside a string; a closing \" is missing", path: path) }
                i += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw fail("the string is not valid UTF-8", path: path) }
                    return text
                case UInt8(ascii: "\\"):
                    guard let escape = peek else { throw fail("the text ends inside an escape", path: path) }
                    i += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4(path: path)
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard peek == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                                throw fail("a lone surrogate in a \\u escape", path: path)
                            }
                            i += 2
                            let low = try hex4(path: path)
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate in a \\u escape", path: path) }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw fail("a lone surrogate in a \\u escape", path: path)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw fail("an invalid \\u escape", path: path) }
                        out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        throw fail("\"\\\(Self.describe(escape))\" is not a JSON escape", path: path)
                    }
                case 0x00..<0x20:
                    i -= 1
                    throw fail("a control character (\(Self.describe(byte))) inside a string; write it as an escape such as \\n", path: path)
                default:
                    out.append(byte)
                }
            }
        }

        mutating func hex4(path: String) throws(Problem) -> UInt32 {
            let isHex: (UInt8) -> Bool = { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
            guard bytes.count - i >= 4, bytes[i..<i + 4].allSatisfy(isHex),
                  let value = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                throw fail("\\u must be followed by four hex digits", path: path)
            }
            i += 4
            return value
        }

        static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "\"\(Character(Unicode.Scalar(byte)))\"" : "0x" + String(byte, radix: 16, uppercase: true)
        }
    }
}
