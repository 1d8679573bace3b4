import Notify
import Testing

@Suite struct SMTPReplyTests {
    func read(_ lines: [String]) throws -> [SMTPReply] {
        var reader = SMTPReplyReader()
        return try lines.compactMap { try reader.consume($0) }
    }

    @Test func readsAMultiLineEHLOReply() throws {
        let replies = try read(["250-mail.example.org Hello", "250-SIZE 35882577", "250-STARTTLS", "250-auth plain LOGIN", "250 8BITMIME"])
        #expect(replies.count == 1)
        let ehlo = try #require(replies.first)
        #expect(ehlo.code == 250 && ehlo.lines.count == 5)
        #expect(ehlo.extensions["STARTTLS"] == [])
        #expect(ehlo.extensions["AUTH"] == ["PLAIN", "LOGIN"])
        #expect(ehlo.extensions["SIZE"] == ["35882577"])
    }

    @Test func readsSingleAndBareReplies() throws {
        let replies = try read(["220 ready", "250", "354 End data with <CR><LF>.<CR><LF>"])
        #expect(replies.map(\.code) == [220, 250, 354])
        #expect(replies[1].lines == [""])
    }

    @Test func refusesWhatIsNotAReply() {
        #expect(throws: NotifyError.self) { try read(["hello"]) }
        #expect(throws: NotifyError.self) { try read(["25"]) }
        #expect(throws: NotifyError.self) { try read(["250x"]) }
        #expect(throws: NotifyError.self) { try read(["999 no"]) }
        #expect(throws: NotifyError.self) { try read(["250-one", "251 two"]) }
        #expect(throws: NotifyError.self) { try read(Array(repeating: "250-more", count: 200)) }
    }

    @Test func summaryDropsControlCharactersAndIsBounded() throws {
        let reply = try #require(try read(["535-5.7.8 bad\u{1b}[31m", "535 credentials " + String(repeating: "x", count: 500)]).first)
        #expect(!reply.summary.contains("\u{1b}"))
        #expect(reply.summary.hasPrefix("535 5.7.8 bad[31m / credentials"))
        #expect(reply.summary.count <= 300)
        #expect(reply.isTransientFailure == false)
    }
}
