import Foundation
import SyncNode
import Testing

/// `null` for a setting keeps its default, as node.json read it before the file was overlaid on the
/// encoded defaults (review of issue 19): a file that started a node yesterday still does.
@Suite struct ConfigurationNullTests {
    @Test func aNullSettingKeepsItsDefault() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-null-\(UUID().uuidString.prefix(8)).json").path
        try Data(#"{"listen": null, "peers": null, "pollMillis": null, "allowPlainSessions": null, "maxSessions": null, "tls": null}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try NodeConfiguration.load(path: path) == NodeConfiguration())
    }

    /// A null where a value is needed says it found null (it said only "expected a string").
    @Test func aNullInAListSaysItIsNull() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-null-\(UUID().uuidString.prefix(8)).json").path
        try Data(#"{"peers": ["hub:7400", null]}"#.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try NodeConfiguration.load(path: path)
            Issue.record("a null peer was accepted")
        } catch {
            #expect(error.message.contains("(peers[1]): expected a string, found null"), "\(error.message)")
        }
    }
}
