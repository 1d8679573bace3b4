import Foundation
import Testing
@testable import TicketStore

/// The write path's text checks, which avoid Foundation's copies, decide as Foundation would.
@Suite struct TextCheckTests {
    /// An empty-looking subject is refused for exactly the characters `.whitespacesAndNewlines` holds.
    @Test func blankMeansWhatFoundationCallsWhitespace() throws {
        let store = try makeStore("north")
        for value in 0..<0x1_0000 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = String(scalar) + String(scalar)
            let blank = text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            let refused = (try? store.checkText(text, "subject", max: 100, allowEmpty: false)) == nil
            if blank != refused { Issue.record("U+\(String(value, radix: 16)): Foundation blank \(blank), refused \(refused)") }
        }
    }

    /// A tag is stored composed (NFC) whether or not it needed composing.
    @Test func tagsAreStoredComposed() {
        for tag in ["hardware", "cafe\u{301}", "caf\u{e9}", "Ångström", "A\u{30a}ngstro\u{308}m", ""] {
            #expect(tag.canonicalTag == tag.precomposedStringWithCanonicalMapping)
            #expect(Array(tag.canonicalTag.utf8) == Array(tag.precomposedStringWithCanonicalMapping.utf8))
        }
    }
}
