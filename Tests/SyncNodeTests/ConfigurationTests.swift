import Foundation
import Notify
import SyncNode
import SyncWire
import Testing
import TicketModel

@Suite struct ConfigurationTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-config-\(UUID().uuidString.prefix(8)).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func endpointsParse() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:7400") == Endpoint(host: "127.0.0.1", port: 7400))
        #expect(try Endpoint(parsing: "hub.example.net:1") == Endpoint(host: "hub.example.net", port: 1))
        #expect(try Endpoint(parsing: "[::1]:7400") == Endpoint(host: "::1", port: 7400))
        #expect(try Endpoint(parsing: "[::1]:7400").description == "[::1]:7400")
        for bad in ["nonsense", "host:", ":7400", "host:70000", "host:port", "::1:7400", "[::1]7400"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try Endpoint(parsing: bad) }
        }
    }

    @Test func aFileHoldsTheSettings() throws {
        let path = try write(#"{"listen": "0.0.0.0:7400", "peers": ["hub:7400", "[::1]:7401"], "store": "/var/lib/tierline", "batchBlocks": 256}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try NodeConfiguration.load(path: path)
        #expect(config.listen == Endpoint(host: "0.0.0.0", port: 7400))
        #expect(config.peers == [Endpoint(host: "hub", port: 7400), Endpoint(host: "::1", port: 7401)])
        #expect(config.store == "/var/lib/tierline")
        #expect(config.batchBlocks == 256)
        #expect(config.pollMillis == NodeConfiguration().pollMillis)
        #expect(config.maxSessions == 128 && config.idleTimeoutMillis == 45_000)
        #expect(config.wireLimits == WireLimits.standard, "the defaults are the protocol's limits")
    }

    @Test func limitsAreSettings() throws {
        let path = try write(#"{"listen": "0.0.0.0:7400", "maxLineBytes": 2097152, "maxBatchBytes": 2000000, "maxBatchCompressedBytes": 3000000, "maxSessions": 16, "idleTimeoutMillis": 9000}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try NodeConfiguration.load(path: path)
        #expect(config.wireLimits.maxLineBytes == 2_097_152)
        #expect(config.wireLimits.maxBatchBytes == 2_000_000)
        #expect(config.wireLimits.maxBatchCompressedBytes == 3_000_000)
        #expect(config.maxSessions == 16 && config.idleTimeoutMillis == 9000)
        #expect(config.allowPlainSessions.isEmpty)
        let plain = try write(#"{"allowPlainSessions": ["north", "field-2"]}"#)
        defer { try? FileManager.default.removeItem(atPath: plain) }
        #expect(try NodeConfiguration.load(path: plain).allowPlainSessions == [try SiteID("north"), try SiteID("field-2")])
    }

    @Test(arguments: [
        (#"{"listen": "0.0.0.0:7400", "peer": ["hub:7400"]}"#, "unknown setting \"peer\""),
        (#"{"listen": "nowhere"}"#, "HOST:PORT"),
        (#"{"peers": "hub:7400"}"#, "line 1, column 11 (peers): expected a list, found a string"),
        (#"{"peers": ["hub:7400", 7]}"#, "(peers[1]): expected a string, found a number"),
        (#"{"tls": {"certificateFile": true}}"#, "(tls.certificateFile): expected a string, found true or false"),
        (#"{"pollMillis": 1}"#, "pollMillis"),
        (#"{"batchBlocks": 5000}"#, "batchBlocks"),
        (#"{"maxLineBytes": 1024}"#, "maxLineBytes must be between 2097152 and 8388608"),
        (#"{"maxBatchBytes": 5000000}"#, "maxBatchBytes must be between 1114112 and 4194304"),
        (#"{"maxBatchCompressedBytes": 100}"#, "maxBatchCompressedBytes must be between 1114112 and 6291456"),
        (#"{"maxSessions": 0}"#, "maxSessions must be between 1 and 4096"),
        (#"{"idleTimeoutMillis": 500}"#, "idleTimeoutMillis must be between 3000 and 3600000"),
        (#"{"allowPlainSessions": true}"#, "lists the sites still on protocol 1"),
        ("{\n  \"listen\": \"0.0.0.0:7400\",\n}", "line 3, column 1"),
        (#"{"listen": "0.0.0.0:7400", "listen": "0.0.0.0:7401"}"#, "\"listen\" appears twice"),
        ("{\n  \"listen\": \"0.0.0.0:7400\",\n  \"peer\": [\"hub:7400\"]\n}", "line 3, column 11 (peer): unknown setting \"peer\"; did you mean \"peers\"?"),
        (#"{"allowPlainSessions": ["North"]}"#, "not a site id"),
        (#"[1, 2]"#, "one JSON object"),
        (#"{"listen": "#, "not valid JSON"),
        ("{\n  \"notifications\": {\"maxAtempts\": 3}\n}", "line 2, column 35 (notifications.maxAtempts): unknown setting \"notifications.maxAtempts\"; did you mean \"maxAttempts\"?"),
        (#"{"notifications": {"smtp": {"host": "h", "from": "a@b", "usrname": "x"}}}"#, "unknown setting \"notifications.smtp.usrname\"; did you mean \"username\"?"),
        (#"{"notifications": {"webhooks": [{"name": "a", "url": "https://x.example/h", "secretfile": "s"}]}}"#, "unknown setting \"notifications.webhooks[0].secretfile\"; did you mean \"secretFile\"?"),
        (#"{"notifications": {"smtp": {"host": "h", "from": "a@b", "security": "ssl"}}}"#, "security must be \"starttls\", \"tls\" or \"none\""),
        (#"{"notifications": {"smtp": {"host": "h", "from": "a@b", "security": "none", "username": "u", "passwordFile": "p"}}}"#, "the password would cross the network in the clear"),
        (#"{"notifications": {"pollMillis": 5000}}"#, "notifications.pollMillis must be between 10 and 1000"),
        (#"{"notifications": {"webhooks": [{"name": "a", "url": "ftp://x", "secretFile": "s"}]}}"#, "notifications.webhooks[0].url must be an http(s) URL"),
    ])
    func badFilesSayWhatIsWrong(text: String, expected: String) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try NodeConfiguration.load(path: path)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test func notificationsKeepTheirDefaultsAndNameFilesBesideTheConfiguration() throws {
        let path = try write(#"{"notifications": {"smtp": {"host": "relay.example.org", "from": "help@example.org", "username": "t", "passwordFile": "smtp-password"}, "maxAttempts": 3}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let notifications = try NodeConfiguration.load(path: path).notifications
        #expect(notifications.maxAttempts == 3 && notifications.backoffMinMillis == 1000 && notifications.pollMillis == 1000)
        #expect(notifications.smtp?.port == 587 && notifications.smtp?.security == .starttls)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("smtp-password").standardizedFileURL.path
        #expect(notifications.smtp?.passwordFile == folder)
    }

    @Test func aMissingFileSaysSo() {
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.load(path: "/nonexistent/tierline.json") }
    }
}
