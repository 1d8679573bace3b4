import Foundation
import TicketModel

/// An e-mail address as SMTP and the headers carry it: checked so that it cannot change the shape of
/// a command or a header.
enum MailAddress {
    /// Checks `address` (`local@domain`, no display name).
    /// - Throws: ``NotifyError`` (`invalidMessage`, permanent) naming `field`.
    static func check(_ address: String, field: String) throws(NotifyError) {
        guard EmailAddress.isValid(address) else {
            throw NotifyError(.invalidMessage, "\(field) is not an e-mail address this sender takes (local@domain: the local part ASCII letters, digits and !#$%&'*+/=?^_`{|}~.-, the domain ASCII labels)", transient: false)
        }
    }
}

/// An e-mail in the Internet Message Format (RFC 5322), text only, ready for SMTP's DATA.
///
/// ```swift
/// let message = MailMessage(from: "Help desk <help@example.org>", to: "anna@example.org",
///                           subject: "Ticket 42 breached", body: "…", key: "breach.42", date: now)
/// let text = try message.rendered()   // CRLF lines, each at most 998 bytes
/// ```
///
/// `Message-ID` is `<KEY@tierline>` from the outbox key, so the receiving system (or the customer's
/// client) can drop a repeat of the same notice. The subject is an RFC 2047 encoded-word when it is
/// not ASCII, the body is quoted-printable UTF-8. A line break in the subject becomes a space; one in
/// an address is refused: no header value can add a header.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var subject: String
    public var body: String
    public var key: String
    public var date: Date

    public init(from: String, to: String, subject: String, body: String, key: String, date: Date) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.key = key
        self.date = date
    }

    /// The message: headers, a blank line, the body; CRLF line ends, no line over 998 bytes.
    /// - Throws: ``NotifyError`` (`invalidMessage`) for a `from` or `to` with a line break or that is
    ///   not an address.
    public func rendered() throws(NotifyError) -> String {
        try MailAddress.check(to, field: "the recipient")
        guard !from.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw NotifyError(.invalidMessage, "the sender (notifications.smtp.from) holds a control character", transient: false)
        }
        let headers = [
            "From: " + Self.encodedPhrase(from),
            "To: " + to,
            "Subject: " + Self.encodedHeaderText(subject),
            "Date: " + Self.rfc5322Date(date),
            "Message-ID: <\(Self.messageIDLocalPart(key))@tierline>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + Self.quotedPrintable(body)
    }

    /// A `From` value: ASCII as it is; else the display name before `<address>` as an encoded-word.
    static func encodedPhrase(_ from: String) -> String {
        guard !from.unicodeScalars.allSatisfy(\.isASCII), let open = from.lastIndex(of: "<") else { return from }
        let name = from[..<open].trimmingCharacters(in: .whitespaces)
        return encodedHeaderText(name) + " " + from[open...]
    }

    /// Header text: control characters (CR, LF, tabs) become spaces; non-ASCII text becomes RFC 2047
    /// `=?UTF-8?B?…?=` words of at most 75 characters, folded onto continuation lines.
    static func encodedHeaderText(_ text: String) -> String {
        let flat = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
        guard !flat.unicodeScalars.allSatisfy(\.isASCII) || flat.utf8.count > 900 else { return flat }
        // 45 bytes of UTF-8 make 60 base64 characters: 72 with the word's 12, whole characters only.
        var words: [String] = []
        var chunk = ""
        for character in flat {
            if chunk.utf8.count + character.utf8.count > 45, !chunk.isEmpty {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(character)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?" + Data($0.utf8).base64EncodedString() + "?=" }.joined(separator: "\r\n ")
    }

    /// The outbox key as a `Message-ID`'s left part (dot-atom text): letters, digits and `-_+=.`
    /// stay; every other byte becomes `=XX`, and so does a dot that would start, end or double.
    static func messageIDLocalPart(_ key: String) -> String {
        let bytes = Array(key.utf8)
        var out = ""
        for (index, byte) in bytes.enumerated() {
            let c = Character(Unicode.Scalar(byte))
            let plain = byte < 0x80 && (c.isLetter || c.isNumber || "-_+".contains(c))
            let dot = c == "." && index > 0 && index < bytes.count - 1 && bytes[index - 1] != UInt8(ascii: ".")
            out += plain || dot ? String(c) : "=" + String(format: "%02X", byte)
        }
        return out.isEmpty ? "=" : out
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// `text` as quoted-printable UTF-8 (RFC 2045 §6.7) with CRLF line ends: any line end (CR, LF,
    /// CRLF) becomes CRLF, lines are at most 76 characters with soft breaks, a space or tab before a
    /// line end is encoded.
    static func quotedPrintable(_ text: String) -> String {
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
        return lines.map { line in
            var out = ""
            var width = 0
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let last = index == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !last)
                let piece = literal ? String(UnicodeScalar(byte)) : "=" + String(format: "%02X", byte)
                // Room for the piece and, unless the line ends here, a soft break's `=`.
                if width + piece.count > (last ? 76 : 75) {
                    out += "=\r\n"
                    width = 0
                }
                out += piece
                width += piece.count
            }
            return out
        }.joined(separator: "\r\n")
    }

    /// `message` as DATA carries it: CRLF line ends, a `.` doubled at the start of a line (RFC 5321
    /// §4.5.2), ending with CRLF (the caller sends `.` CRLF after it).
    public static func dotStuffed(_ message: String) -> String {
        let normalized = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        var lines = normalized.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0 + "\r\n" }.joined()
    }
}
