import Foundation
import SyncNode
import Testing

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
    }

    @Test(arguments: [
        (#"{"listen": "0.0.0.0:7400", "peer": ["hub:7400"]}"#, "unknown setting \"peer\""),
        (#"{"listen": "nowhere"}"#, "HOST:PORT"),
        (#"{"peers": "hub:7400"}"#, "peers"),
        (#"{"pollMillis": 1}"#, "pollMillis"),
        (#"{"batchBlocks": 5000}"#, "batchBlocks"),
        (#"[1, 2]"#, "one JSON object"),
        (#"{"listen": "#, "not valid JSON"),
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

    @Test func aMissingFileSaysSo() {
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.load(path: "/nonexistent/tierline.json") }
    }
}
