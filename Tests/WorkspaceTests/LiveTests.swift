import Dashboard
import Desk
import Escalation
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore
import Workspace

/// A coordinator's store with one agent, Ana, signed in by a token and by a browser session, and
/// the node's HTTP server over it at a fixed time. The feed is polled by hand.
private struct LiveFixture: Sendable {
    static let start: UInt64 = 1_790_000_000_000
    let store: TicketDatabase
    let server: WorkspaceServer
    let token: String
    let cookie: String

    init(settings: WorkspaceSettings = WorkspaceSettings()) async throws {
        store = try memoryStore("hq", role: .coordinator, clock: TestClock(Self.start))
        try AgentDesk(store: store).add(AgentDocument(name: "ana", version: 1, displayName: "Ana Silva", site: "hq"), actor: "admin")
        let now = Int64(Self.start)
        server = try WorkspaceServer(store: store, dashboard: try await DashboardServer(database: store, now: { now }), intake: nil,
                                     settings: settings, bcryptCost: 4, now: { now })
        token = try server.access.issueToken("ana", label: "live tests", now: now)
        try server.access.setPassword("ana", password: "correct horse battery", now: now)
        cookie = "\(SessionCookie.name)=\(try server.access.signIn("ana", password: "correct horse battery", now: now).secret)"
    }

    var bearer: HTTPFields { [.authorization: "Bearer \(token)"] }
}

/// The events of a stream's text, in order: each event's name and its data decoded.
private func events(_ text: String) throws -> [(name: String, data: [String: Any])] {
    try text.components(separatedBy: "\n\n").compactMap { block in
        let lines = block.split(separator: "\n").map(String.init)
        guard let name = lines.first(where: { $0.hasPrefix("event: ") })?.dropFirst(7),
              let data = lines.first(where: { $0.hasPrefix("data: ") })?.dropFirst(6) else { return nil }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
        return (String(name), object)
    }
}

@Suite struct LiveTests {
    @Test func streamSendsHelloThenTheChangedTicket() async throws {
        let fixture = try await LiveFixture()
        let feed = fixture.server.feed
        try await feed.poll()
        let before = Int(try #require(feed.version))
        try await Application(router: fixture.server.router()).test(.router) { client in
            let response = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                group.addTask { try await client.execute(uri: "/api/events", method: .get, headers: fixture.bearer) }
                try await eventually(10, "the stream subscribed to the feed") { feed.subscriberCount == 1 }
                let ticket = try fixture.store.createTicket(TicketDraft(subject: "Printer offline"))
                try await feed.poll()
                // The feed ending (the server shutting down) ends the stream, after what it holds.
                feed.finish()
                let response = try #require(try await group.next())
                let sent = try events(String(buffer: response.body))
                #expect(sent.map(\.name) == ["hello", "change"])
                #expect((sent.first?.data["version"] as? Int).map { $0 >= before } == true)
                #expect(sent.last?.data["tickets"] as? [String] == [ticket.id.lowercased()])
                #expect(sent.last?.data["many"] as? Bool == false)
                #expect(sent.last?.data["version"] as? Int == feed.version.map { Int($0) })
                return response
            }
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream; charset=utf-8")
            #expect(response.headers[.cacheControl] == "no-store")
            #expect(feed.subscriberCount == 0)
        }
    }

    @Test func signedOutGets401() async throws {
        let fixture = try await LiveFixture()
        try await Application(router: fixture.server.router()).test(.router) { client in
            try await client.execute(uri: "/api/events", method: .get) { response in
                #expect(response.status == .unauthorized)
                let answer = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(answer?["field"] as? String == "Authorization")
            }
            try await client.execute(uri: "/api/events", method: .get, headers: [.authorization: "Bearer tla_not-a-token"]) { response in
                #expect(response.status == .unauthorized)
            }
        }
        #expect(fixture.server.feed.subscriberCount == 0)
    }

    @Test func aFullFeedAnswers503WithRetryAfter() async throws {
        let fixture = try await LiveFixture(settings: WorkspaceSettings(maxEventStreams: 1))
        let held = try #require(fixture.server.feed.subscribe())
        defer { held.cancel() }
        try await Application(router: fixture.server.router()).test(.router) { client in
            try await client.execute(uri: "/api/events", method: .get, headers: fixture.bearer) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "30")
            }
        }
    }

    /// A page carries the feed's version as its request began, which the script compares with `hello`.
    @Test func pagesCarryTheVersionTheyWereRenderedAt() async throws {
        let fixture = try await LiveFixture()
        _ = try fixture.store.createTicket(TicketDraft(subject: "Printer offline"))
        try await fixture.server.feed.poll()
        let version = try #require(fixture.server.feed.version)
        try await Application(router: fixture.server.router()).test(.router) { client in
            try await client.execute(uri: "/desk", method: .get, headers: [.cookie: fixture.cookie]) { response in
                #expect(response.status == .ok)
                let page = String(buffer: response.body)
                #expect(page.contains("<body data-version=\"\(version)\" data-csrf="))
                #expect(page.contains("<div id=\"banner\" class=\"banner\" role=\"status\" aria-live=\"polite\" hidden>"))
            }
        }
    }

    /// Over a real socket: a graceful shutdown of the server ends an open stream (else the shutdown
    /// would wait for it forever). A watchdog ends the feed after a minute, so a failure cannot hang.
    @Test func serverShutdownEndsAnOpenStream() async throws {
        let fixture = try await LiveFixture()
        let feed = fixture.server.feed
        let app = Application(router: fixture.server.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let watchdogFired = Atomic<Bool>(false)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            watchdogFired.store(true, ordering: .relaxed)
            feed.finish()
        }
        defer { watchdog.cancel() }
        let stream = Mutex<Task<TestResponse, any Error>?>(nil)
        // The test client is shut down before the server, so the stream's own answer is not read
        // here (the router test reads it): what counts is that the server's shutdown finishes.
        try await app.test(.live) { client in
            stream.withLock { $0 = Task { try await client.execute(uri: "/api/events", method: .get, headers: fixture.bearer) } }
            try await eventually(10, "the stream subscribed to the feed") { feed.subscriberCount == 1 }
        }
        _ = try? await stream.withLock { $0 }?.value
        let fired = watchdogFired.load(ordering: .relaxed)
        #expect(!fired, "the stream outlived the server's graceful shutdown")
        #expect(feed.subscriberCount == 0)
    }

    /// The page script parses (`node --check`), where node is installed; the browser test runs it.
    @Test func theScriptParses() async throws {
        let fixture = try await LiveFixture()
        let script = try await Application(router: fixture.server.router()).test(.router) { client in
            try await client.execute(uri: "/static/app.js", method: .get) { String(buffer: $0.body) }
        }
        #expect(script.contains("new EventSource(\"/api/events\")"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-app-\(UUID().uuidString).js")
        try Data(script.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let node = Process()
        node.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        node.arguments = ["node", "--check", file.path]
        node.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        node.standardError = errors
        try node.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        node.waitUntilExit()
        // 127: env found no node; the browser test checks the script instead.
        guard node.terminationStatus != 127 else { return }
        #expect(node.terminationStatus == 0, "node --check: \(message)")
    }
}
