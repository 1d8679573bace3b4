import Foundation
import Notify
import Testing

@Suite struct MailMessageTests {
    let date = Date(timeIntervalSince1970: 1_764_930_000)  // Fri, 05 Dec 2025 10:20:00 UTC

    func message(to: String = "anna@example.org", subject: String = "Ticket 42 breached", body: String = "Hello\n") -> MailMessage {
        MailMessage(from: "Help desk <help@example.org>", to: to, subject: subject, body: body, key: "breach.42.anna", date: date)
    }

    func headers(_ text: String) -> [String] {
        let head = text.components(separatedBy: "\r\n\r\n")[0]
        return head.components(separatedBy: "\r\n")
    }

    @Test func headersCarryTheKeyAsMessageID() throws {
        let lines = headers(try message().rendered())
        #expect(lines.contains("From: Help desk <help@example.org>"))
        #expect(lines.contains("To: anna@example.org"))
        #expect(lines.contains("Subject: Ticket 42 breached"))
        #expect(lines.contains("Date: Fri, 05 Dec 2025 10:20:00 +0000"))
        #expect(lines.contains("Message-ID: <breach.42.anna@tierline>"))
        #expect(lines.contains("MIME-Version: 1.0"))
        #expect(lines.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(lines.contains("Content-Transfer-Encoding: quoted-printable"))
    }

    @Test func aKeyOutsideDotAtomTextIsEscapedInTheMessageID() throws {
        var m = message()
        m.key = ".a b<c>..d."
        let id = headers(try m.rendered()).first { $0.hasPrefix("Message-ID: ") }
        #expect(id == "Message-ID: <=2Ea=20b=3Cc=3E.=2Ed=2E@tierline>")
    }

    @Test func aLineBreakInTheRecipientIsRefused() {
        #expect(throws: NotifyError.self) { try message(to: "anna@example.org\r\nBcc: eve@example.org").rendered() }
        #expect(throws: NotifyError.self) { try message(to: "anna@example.org>\nRCPT TO:<eve@example.org").rendered() }
        #expect(throws: NotifyError.self) { try message(to: "no-at-sign").rendered() }
    }

    @Test func aLineBreakInTheSubjectCannotAddAHeader() throws {
        let lines = headers(try message(subject: "Printer\r\nBcc: eve@example.org\nX: y").rendered())
        #expect(!lines.contains { $0.hasPrefix("Bcc:") || $0.hasPrefix("X:") })
        #expect(lines.contains("Subject: Printer  Bcc: eve@example.org X: y"))
    }

    @Test func aNonASCIISubjectIsAnEncodedWord() throws {
        let subject = "Café – the printer on the 3rd floor is offline again, and the spare is missing ☕"
        let text = try message(subject: subject).rendered()
        let head = text.components(separatedBy: "\r\n\r\n")[0]
        let start = try #require(head.range(of: "Subject: "))
        let rest = head[start.upperBound...]
        // The subject is the header up to the next line that does not start with a space (folding).
        var words: [Substring] = []
        for (index, line) in rest.split(separator: "\r\n", omittingEmptySubsequences: false).enumerated() {
            if index > 0 && !line.hasPrefix(" ") { break }
            words.append(line.drop(while: { $0 == " " }))
        }
        #expect(words.count > 1)
        var decoded = ""
        for word in words {
            #expect(word.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = word.dropFirst(10).dropLast(2)
            decoded += String(decoding: try #require(Data(base64Encoded: String(payload))), as: UTF8.self)
        }
        #expect(decoded == subject)
    }

    @Test func everyLineEndsInCRLFAndIsShort() throws {
        let body = String(repeating: "é", count: 600) + "\n" + String(repeating: "x", count: 2000) + "\rend \n"
        let text = try message(body: body).rendered()
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        for line in text.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 998) }
        // Quoted-printable: 76 at most, a trailing space encoded.
        let bodyLines = text.components(separatedBy: "\r\n\r\n")[1].components(separatedBy: "\r\n")
        for line in bodyLines { #expect(line.count <= 76) }
        #expect(bodyLines.contains("end=20"))
    }

    @Test func quotedPrintableDecodesToTheBody() throws {
        let body = "Grüße = 100 %\n.leading dot\nTabs\tand spaces  \n"
        let text = try message(body: body).rendered()
        let encoded = text.components(separatedBy: "\r\n\r\n")[1]
        #expect(decodeQuotedPrintable(encoded) == body.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    @Test func dotStuffingDoublesALeadingDotAndNormalisesLineEnds() {
        #expect(MailMessage.dotStuffed(".\r\n..x\nplain\r.end") == "..\r\n...x\r\nplain\r\n..end\r\n")
        #expect(MailMessage.dotStuffed("a\r\n") == "a\r\n")
        // The end-of-data line never appears inside the data.
        #expect(!("\r\n" + MailMessage.dotStuffed("one\r\n.\r\ntwo")).contains("\r\n.\r\n"))
    }
}

/// Quoted-printable decoding written independently of the encoder, for the round trip.
func decodeQuotedPrintable(_ text: String) -> String {
    var bytes: [UInt8] = []
    let input = Array(text.utf8)
    var i = 0
    while i < input.count {
        if input[i] == UInt8(ascii: "="), i + 2 < input.count, input[i + 1] == 13, input[i + 2] == 10 {
            i += 3
        } else if input[i] == UInt8(ascii: "="), i + 2 < input.count, let byte = UInt8(String(decoding: input[i + 1...i + 2], as: UTF8.self), radix: 16) {
            bytes.append(byte)
            i += 3
        } else {
            bytes.append(input[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
