import Logging
import NIOCore
import Notify
import TestSupport
import Testing
import TicketStore

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

@Suite struct HostileTextTests {
    static let hostile: [Character] = ["\u{1B}", "\u{7F}", "\u{85}", "\u{9B}", "\u{202A}", "\u{202E}", "\u{2066}", "\u{2069}", "\u{200E}", "\u{200F}", "\u{061C}"]

    @Test func aReplySummaryDropsC0C1AndBidiControls() {
        let reply = SMTPReply(code: 550, lines: ["no such \u{202E}resu\u{2066} user", "\u{9B}31mred\u{1B}[0m \u{85}\u{200F}end"])
        #expect(reply.summary == "550 no such resu user / 31mred[0m end")
        for character in Self.hostile { #expect(!reply.summary.contains(character)) }
    }

    /// What a hostile relay says reaches `lastError` (and `outbox list`) without its control characters.
    @Test(.timeLimit(.minutes(1))) func lastErrorKeepsNoControlCharacterFromTheServer() async throws {
        let relay = try await ScriptedRelay(greeting: "554 go \u{202E}yawa\u{2069} \u{9B}2J\u{85}\u{200F}\r\n")
        let store = try memoryStore("north")
        try store.enqueue([OutboxDraft(key: "k", channel: "email", recipient: "anna@example.org", kind: "test", ticket: nil,
                                       subject: "s", body: "b", notBefore: 0)])
        let settings = NotificationSettings {
            $0.smtp = SMTPSettings(host: "127.0.0.1", port: relay.port, security: .none, from: "help@example.org", timeoutMillis: 5000)
        }
        let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: NotificationSecrets(),
                                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        _ = try await dispatcher.drain(until: .nothingDue)
        let error = try #require(try store.outbox().first?.lastError)
        #expect(error.contains("554 go yawa 2J"), "\(error)")
        for character in Self.hostile { #expect(!error.contains(character), "\(error.debugDescription)") }
        try await relay.channel.close()
    }
}
