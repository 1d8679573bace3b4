import Escalation
import Foundation
import Testing

/// A file with a document that cannot be read still reports every other problem at its own place
/// (review of issue 19's per-document reading).
@Suite struct ConfigReaderPlaceTests {
    func issues(_ text: String) -> [ConfigIssue] {
        do {
            _ = try ConfigReader.read(Data(text.utf8), file: "esc.json", published: ConfigLibrary())
            Issue.record("the file was accepted")
            return []
        } catch {
            return error.issues
        }
    }

    /// A document after an unreadable one was reported at its neighbour's index: the checks counted
    /// the documents that could be read, not the file's.
    @Test func aProblemAfterAnUnreadableDocumentNamesItsOwnIndex() {
        let found = issues("""
            {"policies": [
              {"name": "broken", "version": "one", "position": 1, "calendar": "24x7", "clocks": {}},
              {"name": "good", "version": 1, "position": 2, "calendar": "nowhere", "clocks": {"resolution": {"targets": {"normal": "4h"}}}}
            ]}
            """)
        let paths = found.map(\.path)
        #expect(paths.contains("policies[0].version"), "\(found)")
        #expect(paths.contains("policies[1].calendar"), "\(found)")
        #expect(!paths.contains("policies[0].calendar"), "policies[0] names no calendar that is missing: \(found)")
    }

    /// Only references to the unreadable document itself are left out: a calendar that cannot be
    /// read does not hide a missing ladder that happens to share its name.
    @Test func anUnreadableDocumentHidesOnlyReferencesToItself() {
        let found = issues("""
            {"calendars": [{"name": "support", "version": "one", "timezone": "UTC", "weekly": {}, "holidays": []}],
             "policies": [{"name": "p", "version": 1, "position": 1, "calendar": "support", "ladder": "support",
                           "clocks": {"resolution": {"targets": {"normal": "4h"}}}}]}
            """)
        let paths = found.map(\.path)
        #expect(paths.contains("calendars[0].version"), "\(found)")
        #expect(!paths.contains("policies[0].calendar"), "the calendar's own problem is the one to fix: \(found)")
        #expect(paths.contains("policies[0].ladder"), "no ladder named support exists anywhere: \(found)")
    }
}
