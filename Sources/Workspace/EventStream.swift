import Desk
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import NIOCore
import ServiceLifecycle
import Synchronization

/// `GET /api/events`: the ``ChangeFeed`` as server-sent events, for the page script
/// (`Docs/workspace-live.md` describes the events and their data).
///
/// The stream opens with `event: hello` (the version and the hub's health), then sends `change`,
/// `health` and a comment line as heartbeat. It ends when the server shuts down gracefully, when the
/// feed finishes, and, for a client that went away, at the next write (a heartbeat at the latest).
struct EventStream: Sendable {
    let feed: ChangeFeed
    /// Streams open per agent: one agent's tabs (or a script) must not take every stream of the node.
    let open = OpenStreams()
    /// The most streams one agent holds at once.
    static let maxPerAgent = 16

    /// The header that asks a buffering proxy (nginx) to pass the stream through as it comes.
    static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!

    func register(on group: RouterGroup<AgentContext>) {
        group.get("/api/events") { _, context in response(agent: context.identity?.name ?? "") }
    }

    func response(agent: String) -> Response {
        guard open.take(agent, max: Self.maxPerAgent) else {
            var refusal = WorkspaceError(.tooManyRequests, field: nil,
                                         "agent \(agent) already has \(Self.maxPerAgent) live pages open at this node; close some tabs").response
            refusal.headers[.retryAfter] = "30"
            return refusal
        }
        let open = open
        var handedOver = false
        defer { if !handedOver { open.give(agent) } }
        if feed.isFull {
            var refusal = WorkspaceError(.serviceUnavailable, field: nil,
                                         "too many live pages are open at this node (\(feed.settings.maxStreams)); close some tabs, or reload later").response
            refusal.headers[.retryAfter] = "30"
            return refusal
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[Self.accelBuffering] = "no"
        let feed = feed
        handedOver = true
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { open.give(agent) }
            // Subscribed inside the body: a response never written leaves no subscription behind.
            guard let subscription = feed.subscribe() else {
                // Filled up meanwhile: the browser tries again after `retry`.
                try await writer.write(ByteBuffer(string: "retry: 30000\n: full\n\n"))
                try await writer.finish(nil)
                return
            }
            defer { subscription.cancel() }
            let (version, health) = try await feed.snapshot()
            try await writer.write(ByteBuffer(string: "retry: 3000\n\n" + Self.hello(version: version, health: health)))
            try await withGracefulShutdownHandler {
                for await events in subscription {
                    try await writer.write(ByteBuffer(string: events.map(Self.text).joined()))
                }
            } onGracefulShutdown: {
                subscription.cancel()
            }
            try await writer.finish(nil)
        })
    }

    // MARK: The events' text

    struct Hello: Encodable {
        var version: Int64
        var health: HubHealth?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encode(health, forKey: .health)
        }
        enum CodingKeys: String, CodingKey { case version, health }
    }

    struct Change: Encodable {
        var version: Int64
        var tickets: [String]
        var many: Bool
    }

    static func hello(version: Int64, health: HubHealth?) -> String {
        event("hello", Hello(version: version, health: health))
    }

    static func text(_ event: FeedEvent) -> String {
        switch event {
        case .change(let change):
            Self.event("change", Change(version: change.version, tickets: change.tickets ?? [], many: change.tickets == nil))
        case .health(let health):
            Self.event("health", health)
        case .heartbeat:
            ": keep-alive\n\n"
        }
    }

    /// One event: its name and its data as one line of JSON (sorted keys; JSON has no raw line breaks).
    static func event(_ name: String, _ data: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        return "event: \(name)\ndata: \(json)\n\n"
    }
}

/// The feed's version when the request began, for the page it renders (`<body data-version>`): the
/// page script compares it with the stream's `hello` and refreshes its live regions when they
/// differ, so a change between the page's reads and the stream's start is not missed. Read before
/// the page's own reads, it is never newer than what the page shows.
enum LivePage {
    @TaskLocal static var version: Int64?
}

/// Sets ``LivePage/version`` for the rest of the request.
struct LiveVersion: RouterMiddleware {
    typealias Context = AgentContext
    let feed: ChangeFeed

    func handle(_ request: Request, context: AgentContext, next: (Request, AgentContext) async throws -> Response) async throws -> Response {
        try await LivePage.$version.withValue(feed.version) { try await next(request, context) }
    }
}

/// How many event streams each agent has open.
final class OpenStreams: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Takes a stream for `agent` unless it holds `max` already.
    func take(_ agent: String, max: Int) -> Bool {
        counts.withLock { counts in
            guard counts[agent, default: 0] < max else { return false }
            counts[agent, default: 0] += 1
            return true
        }
    }

    func give(_ agent: String) {
        counts.withLock { counts in
            let left = counts[agent, default: 1] - 1
            counts[agent] = left > 0 ? left : nil
        }
    }
}
