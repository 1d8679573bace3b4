import Desk
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Logging
import TicketModel
import TicketStore

/// The intake API's routes (`Docs/intake-openapi.yaml`), added to the node's one HTTP server.
public struct IntakeRoutes: Sendable {
    public let service: IntakeService
    /// The largest request body accepted.
    public static let maxBodyBytes = 1 << 20

    public init(service: IntakeService) { self.service = service }

    public func register<Methods: RouterMethods>(on router: Methods) {
        router.post("/api/intake/tickets") { request, _ in
            try await handle(request, channel: .fromBody(default: nil)) { body, token in
                let (result, created) = try await service.create(body, integration: token.name)
                return (created ? .created : .ok, result)
            }
        }
        router.post("/api/intake/messages") { request, _ in
            try await handle(request, channel: .fromBody(default: nil)) { body, token in
                let (result, created) = try await service.append(body, token: token)
                return (created ? .created : .ok, result)
            }
        }
        router.post("/api/intake/handoffs") { request, _ in
            try await handle(request, channel: .fromBody(default: "bot")) { body, token in
                let (result, created) = try await service.handoff(body, integration: token.name)
                return (created ? .created : .ok, result)
            }
        }
        router.post("/api/intake/csat") { request, _ in
            try await handle(request, channel: .none) { body, _ in
                (.created, try await NIOThreadPool.singleton.runIfActive { try service.answerSurvey(body) })
            }
        }
        router.get("/api/kb/search") { request, _ in
            do {
                _ = try await authenticate(request)
                let parameters = request.uri.queryParameters
                if let unknown = parameters.map({ String($0.key) }).sorted().first(where: { $0 != "q" && $0 != "limit" }) {
                    throw IntakeError.bad(unknown, "unknown query parameter; known: limit, q")
                }
                guard let q = parameters.get("q").map { String($0) }, !q.isEmpty else { throw IntakeError.bad("q", "is required: the words to look for") }
                guard q.unicodeScalars.count <= 500 else { throw IntakeError.bad("q", "is \(q.unicodeScalars.count) characters; the limit is 500") }
                var limit = 10
                if let text = parameters.get("limit").map { String($0) } {
                    guard let value = Int(text), (1...50).contains(value) else { throw IntakeError.bad("limit", "must be a whole number from 1 to 50, got \(text.debugDescription)") }
                    limit = value
                }
                let store = service.store, max = limit
                let hits = try await NIOThreadPool.singleton.runIfActive { () throws -> [ArticleHit] in
                    do { return try store.searchArticles(q, limit: max) } catch let error as StoreError where error.code == .invalidInput { return [] }
                }
                return try jsonResponse(.ok, SearchAnswer(query: q, results: hits.map {
                    SearchAnswer.Hit(id: $0.article.id, ref: $0.article.ref, title: $0.article.title, summary: $0.article.summary,
                                     site: $0.article.site, score: $0.score)
                }))
            } catch let error as IntakeError {
                return error.response
            }
        }
    }

    struct SearchAnswer: Encodable {
        struct Hit: Encodable {
            var id: String
            var ref: String
            var title: String
            var summary: String
            @NullEncoded var site: String?
            var score: Double
        }
        var query: String
        var results: [Hit]
    }

    /// Where a request names its channel, for the token's channel check.
    enum ChannelSource {
        /// The body's `channel`, else `default`.
        case fromBody(default: String?)
        /// The request has no channel (a survey answer).
        case none
    }

    /// Authenticates, reads the JSON body, checks the token may deliver the body's channel, and runs
    /// `work` with the body and the token (it keeps the store's blocking reads off the event loop, and
    /// its writes go through the service's ``GroupCommit``); every refusal is a JSON error naming the
    /// field.
    private func handle(_ request: Request, channel source: ChannelSource,
                        _ work: @escaping @Sendable (JSONValue, APIToken) async throws -> (HTTPResponse.Status, any Encodable & Sendable)) async throws -> Response {
        do {
            let token = try await authenticate(request)
            guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
                throw IntakeError(.unsupportedMediaType, field: "Content-Type", "send the body as JSON with Content-Type: application/json")
            }
            var request = request
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: Self.maxBodyBytes)
            } catch is NIOTooManyBytesError {
                throw IntakeError(.contentTooLarge, field: nil, "the body is over \(Self.maxBodyBytes) bytes; send attachments' metadata, not the files")
            }
            let body = try JSONValue.parse(Array(buffer.readableBytesView))
            // An unknown channel is left to the request's own check (400 naming `channel`).
            if case .fromBody(let fallback) = source, case .object(let members) = body,
               let channel = members["channel"].map({ if case .string(let text) = $0 { text } else { "" } }) ?? fallback,
               IntakeChannel.all.contains(channel), !token.allows(channel: channel) {
                throw IntakeError(.forbidden, field: "channel", "token \(token.name) may deliver \(token.channels.joined(separator: ", ")), not \(channel)")
            }
            let answer: (status: HTTPResponse.Status, body: any Encodable & Sendable)
            do {
                answer = try await work(body, token)
            } catch let error as StoreError {
                throw IntakeError(DeskError(error), unknown: "ticket")
            } catch let error as DeskError {
                throw IntakeError(error, unknown: "ticket")
            }
            return try jsonResponse(answer.status, answer.body)
        } catch let error as IntakeError {
            return error.response
        } catch {
            // A full disk or an I/O error while writing (or while noting the token's use), a batch
            // ended by a busy store, too many requests waiting: JSON 503, and the cause in the log.
            guard let refusal = IntakeError(storage: error) else { throw error }
            service.logger.warning("intake request not stored: \(error)")
            var response = refusal.response
            if case .overloaded? = StorageFailure(error) { response.headers[.retryAfter] = "1" }
            return response
        }
    }

    /// The token of `Authorization: Bearer …`.
    private func authenticate(_ request: Request) async throws -> APIToken {
        guard let header = request.headers[.authorization] else {
            throw IntakeError(.unauthorized, field: "Authorization", "send Authorization: Bearer TOKEN (make a token with `tierline intake token add NAME`)")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw IntakeError(.unauthorized, field: "Authorization", "use the Bearer scheme: Authorization: Bearer TOKEN")
        }
        let presented = String(parts[1]).trimmingCharacters(in: .whitespaces)
        let store = service.store
        guard let token = try await NIOThreadPool.singleton.runIfActive({ try store.verifyAPIToken(presented) }) else {
            throw IntakeError(.unauthorized, field: "Authorization", "the token is unknown or revoked; `tierline intake token list` shows this node's tokens")
        }
        return token
    }
}

/// `value` as the node's APIs answer JSON: sorted keys, `/` unescaped. The intake API and the
/// workspace's ticket API both answer through it.
public func jsonResponse(_ status: HTTPResponse.Status, _ value: any Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

extension IntakeError {
    /// The refusal as JSON, `{"error": …, "field": …}` (`field` null when none is at fault): the shape
    /// of every refusal of the node's APIs.
    public var response: Response {
        struct Body: Encodable {
            var error: String
            @NullEncoded var field: String?
        }
        return (try? jsonResponse(status, Body(error: message, field: field))) ?? Response(status: status)
    }
}
