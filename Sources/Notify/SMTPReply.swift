/// One SMTP reply (RFC 5321 §4.2): a three-digit code and one or more lines of text.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    /// The text of each line, after the code and its separator.
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4xx: the server may take the same command later.
    public var isTransientFailure: Bool { (400..<500).contains(code) }

    /// The reply as one line for an error message: `550 5.1.1 no such user`, control characters
    /// dropped (``printable(_:)``) and at most 300 characters, as the server's text lands in logs and
    /// `outbox list`.
    public var summary: String {
        String(Self.printable("\(code) " + lines.joined(separator: " / ")).prefix(300))
    }

    /// `text` without the characters that could rewrite a terminal or a log line: C0 and C1 controls
    /// (U+0000–U+001F, U+007F–U+009F, so ESC and CSI), and the bidirectional controls that reorder
    /// what is shown (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
    public static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { scalar in
            switch scalar.value {
            case 0..<0x20, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: false
            default: true
            }
        }))
    }

    /// The EHLO reply's extensions (the lines after the greeting), upper-cased keywords with their
    /// parameters: `["STARTTLS": [], "AUTH": ["PLAIN", "LOGIN"], "SIZE": ["35882577"]]`.
    public var extensions: [String: [String]] {
        var out: [String: [String]] = [:]
        for line in lines.dropFirst() {
            let words = line.split(separator: " ").map { String($0).uppercased() }
            guard let keyword = words.first else { continue }
            out[keyword, default: []] += words.dropFirst()
        }
        return out
    }
}

/// Gathers reply lines, as the connection reads them (without their CRLF), into ``SMTPReply``s.
///
/// `250-first` continues a reply, `250 last` (or a bare `250`) ends it; every line of a reply must
/// carry the same code.
public struct SMTPReplyReader: Sendable {
    var code: Int?
    var lines: [String] = []
    /// Most lines one reply may have.
    public static let maxLines = 128

    public init() {}

    /// Takes one line; returns the reply it completes, if it does.
    /// - Throws: ``NotifyError`` (`smtpProtocol`) for a line that is not part of a reply.
    public mutating func consume(_ line: String) throws(NotifyError) -> SMTPReply? {
        let bytes = Array(line.utf8)
        func bad(_ why: String) -> NotifyError {
            NotifyError(.smtpProtocol, "the SMTP server sent a line that is not a reply (\(why)): \(SMTPReply(code: 0, lines: [String(line.prefix(80))]).summary.dropFirst(2))", transient: true)
        }
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let code = Int(String(decoding: bytes[0...2], as: UTF8.self)), (200...599).contains(code) else {
            throw bad("no 3-digit code between 200 and 599")
        }
        let separator = bytes.count > 3 ? bytes[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { throw bad("no space or dash after the code") }
        if let current = self.code, current != code { throw bad("a continued reply changed its code from \(current) to \(code)") }
        self.code = code
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        guard lines.count <= Self.maxLines else { throw bad("more than \(Self.maxLines) lines in one reply") }
        guard separator == UInt8(ascii: " ") else { return nil }
        defer { self = SMTPReplyReader() }
        return SMTPReply(code: code, lines: lines)
    }
}
