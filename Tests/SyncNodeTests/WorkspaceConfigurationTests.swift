import Foundation
import Glibc
import SyncNode
import Testing

@Suite struct WorkspaceConfigurationTests {
    /// A folder of its own with `node.json` holding `text`, and any other files given.
    func folder(_ text: String, files: [String: String] = [:]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-workspace-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/node.json"))
        for (name, content) in files { try Data(content.utf8).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        return folder
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch let error as ConfigurationError { return error.message } catch { return "\(error)" }
        return ""
    }

    @Test func defaultsWhenLeftOut() throws {
        let dir = try folder(#"{"http": "127.0.0.1:8080"}"#)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workspace = try NodeConfiguration.load(path: dir + "/node.json").workspace
        #expect(workspace == WorkspaceConfiguration())
        #expect(workspace.metricsTokenFile == nil && !workspace.secureCookies)
        #expect(workspace.idleTimeoutMillis == 60_000 && workspace.headerTimeoutMillis == 10_000 && workspace.maxConnections == 4096)
        #expect(try workspace.loadMetricsToken() == nil)
    }

    @Test func aPartialSectionKeepsTheOtherDefaults() throws {
        let dir = try folder(#"{"workspace": {"headerTimeoutMillis": 1000, "secureCookies": true, "metricsTokenFile": "metrics-token"}}"#,
                             files: ["metrics-token": "  s3cret-token-1234\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workspace = try NodeConfiguration.load(path: dir + "/node.json").workspace
        #expect(workspace.headerTimeoutMillis == 1000 && workspace.secureCookies)
        #expect(workspace.idleTimeoutMillis == 60_000 && workspace.maxConnections == 4096)
        // A relative file is the configuration file's neighbour; the token is its one word.
        #expect(workspace.metricsTokenFile == URL(fileURLWithPath: dir + "/metrics-token").standardizedFileURL.path)
        #expect(try workspace.loadMetricsToken() == "s3cret-token-1234")
    }

    @Test func unknownNamesAndBadValuesAreRefused() throws {
        let typo = try folder(#"{"workspace": {"maxConnection": 10, "headerTimeoutMilis": 5}}"#)
        defer { try? FileManager.default.removeItem(atPath: typo) }
        let both = message { _ = try NodeConfiguration.load(path: typo + "/node.json") }
        #expect(both.contains("did you mean \"maxConnections\"") && both.contains("did you mean \"headerTimeoutMillis\""), "\(both)")
        for (text, setting) in [(#"{"workspace": {"headerTimeoutMillis": 50}}"#, "headerTimeoutMillis"),
                                (#"{"workspace": {"idleTimeoutMillis": 999}}"#, "idleTimeoutMillis"),
                                (#"{"workspace": {"maxConnections": 100000}}"#, "maxConnections"),
                                (#"{"workspace": {"metricsTokenFile": ""}}"#, "metricsTokenFile"),
                                (#"{"workspace": {"secureCookies": "yes"}}"#, "secureCookies")] {
            let dir = try folder(text)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let refused = message { _ = try NodeConfiguration.load(path: dir + "/node.json") }
            #expect(refused.contains(setting), "\(text): \(refused)")
        }
    }

    @Test func aMissingOrEmptyTokenFileIsRefusedAtStart() throws {
        let dir = try folder("{}", files: ["empty": "\n", "two": "one two\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (file, words) in [("missing", "cannot read"), ("empty", "is empty"), ("two", "more than one word")] {
            let workspace = WorkspaceConfiguration { $0.metricsTokenFile = dir + "/" + file }
            let refused = message { _ = try workspace.loadMetricsToken() }
            #expect(refused.hasPrefix("workspace.metricsTokenFile") && refused.contains(words), "\(refused)")
        }
    }
}

@Suite struct OpenFileLimitTests {
    @Test func theSoftLimitIsRaisedToTheHardOne() throws {
        // Started as a service usually is: a soft limit of 1024 (or less), under a higher hard one.
        var lowered = rlimit()
        try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0)
        let hard = lowered.rlim_max
        lowered.rlim_cur = min(1024, hard)
        try #require(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0)
        #expect(OpenFileLimit.current().soft == UInt64(min(1024, hard)))
        let limit = OpenFileLimit.raiseToHard()
        #expect(limit.problem == nil)
        #expect(limit.soft == (hard == rlim_t.max ? 1 << 20 : UInt64(hard)))
        #expect(limit.raised == (limit.soft > 1024))
        // Raised once, it stays: a second call changes nothing.
        let again = OpenFileLimit.raiseToHard()
        #expect(again.soft == limit.soft && !again.raised)
        #expect(OpenFileLimit.current().soft == limit.soft)
    }
}
