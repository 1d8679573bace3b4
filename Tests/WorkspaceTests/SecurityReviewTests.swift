@testable import Dashboard
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Workspace

/// Findings of the security review of the workspace, each pinned by a test.
@Suite struct SecurityReviewTests {
    /// The dashboard's filter form echoes its query parameters into `value="…"`. A quote followed by
    /// a combining mark is one Character that equals no `"`: escaped per Character, it ended the
    /// attribute and let the link's author add attributes of their own.
    @Test func theDashboardFilterFormEscapesAQuoteFollowedByACombiningMark() async throws {
        let fixture = try await GateFixture()
        let attack = "x\"\u{301} autofocus onfocus=alert(1) x=\"\u{301}"
        let query = attack.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        try await fixture.test { client in
            try await client.execute(uri: "/?channel=\(query)", method: .get, headers: bearer(fixture.tokens["mia"]!)) { response in
                #expect(response.status == .ok)
                let page = String(buffer: response.body)
                let broken = "\"\u{301} autofocus", escaped = "&quot;\u{301} autofocus"
                #expect(!page.contains(broken))
                #expect(page.contains(escaped))
            }
        }
    }

    /// A CSV cell holding a line break as `\r\n` (one Character), or a comma followed by a combining
    /// mark, was left unquoted: it split the row or the cell.
    @Test(arguments: ["a\r\nb", "a,\u{301}b", "a\"\u{301}b"])
    func csvQuotesSeparatorsHiddenInOneCharacter(_ text: String) {
        #expect(CSVExport.quote(text).hasPrefix("\""))
    }

    /// Two guesses at a time kept both bcrypt slots busy, and every other sign-in was refused at once
    /// (429, "too many attempts for NAME") although that name had never failed: a stranger with two
    /// connections locked every agent out. A sign-in now waits for a slot.
    @Test func aSignInWaitsForASlotInsteadOfFailingWhileOthersAreChecked() async throws {
        let throttle = SignInThrottle(maxConcurrent: 1)
        #expect(throttle.begin("guesser", now: 0))
        async let entry = throttle.enter("mia", now: 0, maxWaitMillis: 60_000)
        // Lets mia start waiting; if she starts later she finds the slot free: .go either way. The
        // bound (a minute) only ends a test that would hang.
        try await Task.sleep(for: .milliseconds(100))
        throttle.finish("guesser", failed: true, now: 0)
        #expect(await entry == .go)
        throttle.finish("mia", failed: false, now: 0)
    }

    @Test func aSignInThatWaitsTooLongIsBusyAndAStoppedNameIsStopped() async {
        let throttle = SignInThrottle(maxFailures: 1, maxConcurrent: 1)
        #expect(throttle.begin("guesser", now: 0))
        #expect(await throttle.enter("mia", now: 0, maxWaitMillis: 50) == .busy)
        throttle.finish("guesser", failed: true, now: 0)
        #expect(await throttle.enter("guesser", now: 1, maxWaitMillis: 50) == .stopped)
    }
}
