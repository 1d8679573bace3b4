import Desk
import Escalation
import Foundation
import HTTPTypes
import Hummingbird
import Intake
import HummingbirdAuth
import NIOCore
import NIOPosix
import TicketStore

/// The request context of the node's HTTP server: who is signed in, if anyone.
public typealias AgentContext = BasicAuthRequestContext<SignedIn>

/// The browser session's cookie.
public enum SessionCookie {
    public static let name = "tierline_session"
}

/// A refusal of the workspace or its API: the HTTP status, the field at fault and what to do. API
/// requests get it as JSON (`{"error": …, "field": …}`, the intake API's shape); pages as HTML.
public struct WorkspaceError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var field: String?
    public var message: String

    public init(_ status: HTTPResponse.Status, field: String? = nil, _ message: String) {
        self.status = status
        self.field = field
        self.message = message
    }

    /// A Desk refusal as an HTTP answer, mapped as the intake API maps it; a reference that finds
    /// nothing names `unknown`.
    public init(_ error: DeskError, unknown: String? = nil) {
        let answer = IntakeError(error, unknown: unknown)
        self.init(answer.status, field: answer.field, answer.message)
    }

    /// SQLite's failure to write the store (a full disk, an I/O error) as the intake API answers it:
    /// 503 with JSON, nothing stored, retry later. `nil` for any other error.
    public init?(storage error: any Error) {
        guard let answer = IntakeError(storage: error) else { return nil }
        self.init(answer.status, field: answer.field, answer.message)
    }

    public var description: String { "\(status.code) \(field.map { "\($0): " } ?? "")\(message)" }

    /// The JSON answer.
    public var response: Response {
        var response = IntakeError(status, field: field, message).response
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer realm=\"tierline\"" }
        return response
    }
}


/// Runs blocking store work off the event loops and the cooperative pool.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}

/// Finds who is asking: an API token (`Authorization: Bearer tla_…`) or the session cookie. Sets
/// the context's identity and lets every request through; ``RequireAgent`` decides.
struct Authenticate: RouterMiddleware {
    typealias Context = AgentContext
    let access: AccessDesk
    let now: @Sendable () -> Int64

    func handle(_ request: Request, context: AgentContext, next: (Request, AgentContext) async throws -> Response) async throws -> Response {
        var context = context
        let access = access, now = now()
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
                // An intake token is the intake routes' own business: not an agent, not refused here.
                if token.hasPrefix("tla_") {
                    guard let agent = try await offload({ try access.agent(token: token, now: now) }) else {
                        return WorkspaceError(.unauthorized, field: "Authorization",
                                              "the agent token is unknown or revoked; `tierline agent token NAME` issues one").response
                    }
                    context.identity = agent
                }
            }
        } else if let secret = request.cookies[SessionCookie.name]?.value, !secret.isEmpty {
            context.identity = try await offload { try access.session(secret, now: now) }
        }
        return try await next(request, context)
    }
}

/// How a route answers a request it refuses: JSON for the API and the event stream, a redirect to
/// the sign-in page (or an HTML page) for the workspace's pages.
public enum Audience: Sendable {
    case api
    case page
}

/// Lets through only a signed-in agent with `permission`; on writes made with a browser session,
/// also requires the session's anti-forgery token (header `X-CSRF-Token`, or form field `csrf`) and
/// a same-origin `Origin` when the browser sends one.
struct RequireAgent: RouterMiddleware {
    typealias Context = AgentContext
    let permission: Permission?
    let pages: Pages
    /// The largest form body read for the anti-forgery check.
    static let maxFormBytes = 1 << 20

    func handle(_ request: Request, context: AgentContext, next: (Request, AgentContext) async throws -> Response) async throws -> Response {
        // The JSON API and the event stream answer in JSON; pages redirect or show HTML.
        let audience: Audience = request.uri.path.hasPrefix("/api/") || request.uri.path == "/export.csv" ? .api : .page
        guard let agent = context.identity else {
            switch audience {
            case .api:
                return WorkspaceError(.unauthorized, field: "Authorization",
                                      "sign in first: send Authorization: Bearer TOKEN (`tierline agent token NAME`) or a session cookie from /login").response
            case .page:
                let target = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                return redirect(to: "/login?next=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"))
            }
        }
        if let permission, !agent.may(permission) {
            do { try agent.require(permission) } catch {
                let refusal = WorkspaceError(error)
                return audience == .api ? refusal.response : pages.errorPage(refusal, agent: agent)
            }
        }
        var request = request
        if request.method != .get && request.method != .head, case .session(let csrf) = agent.proof {
            if let origin = request.headers[.origin], let host = request.head.authority, !Self.sameOrigin(origin, host: host) {
                return WorkspaceError(.forbidden, field: "Origin", "the request comes from another site (\(origin)); use the workspace's own pages").response
            }
            var presented = request.headers[.csrfToken]
            if presented == nil, request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
                let body = try await request.collectBody(upTo: Self.maxFormBytes)
                presented = FormBody(body).values["csrf"]
            }
            guard let presented, constantTimeEqual(presented, csrf) else {
                return WorkspaceError(.forbidden, field: "csrf",
                                      "the form's anti-forgery token is missing or stale; reload the page and send it again").response
            }
        }
        return try await next(request, context)
    }

    /// Whether `origin` (`http://host:port`) names the same host and port as the `Host` header.
    static func sameOrigin(_ origin: String, host: String) -> Bool {
        guard let url = URL(string: origin), let originHost = url.host else { return false }
        let originAuthority = originHost + (url.port.map { ":\($0)" } ?? "")
        return originAuthority.lowercased() == host.lowercased()
    }
}

extension HTTPField.Name {
    static let csrfToken = HTTPField.Name("X-CSRF-Token")!
    static let origin = HTTPField.Name("Origin")!
}

/// Compares two secrets in time that depends only on their lengths.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for i in x.indices { difference |= x[i] ^ y[i] }
    return difference == 0
}

/// A `303 See Other` to `location` (after a form post, or to the sign-in page).
func redirect(to location: String) -> Response {
    var headers = HTTPFields()
    headers[.location] = location
    return Response(status: .seeOther, headers: headers)
}

/// An `application/x-www-form-urlencoded` body's fields (the last of a repeated name wins, except
/// through ``all(_:)``).
struct FormBody {
    var pairs: [(String, String)] = []

    init(_ buffer: ByteBuffer) {
        let text = String(buffer: buffer)
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            pairs.append((decode(kv[0]), kv.count > 1 ? decode(kv[1]) : ""))
        }
    }

    var values: [String: String] { Dictionary(pairs, uniquingKeysWith: { _, last in last }) }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
}

/// Security headers on every answer: no framing, no type sniffing, nothing loaded from elsewhere,
/// no caching of signed-in pages.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    static var policy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do { response = try await next(request, context) } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

extension HTTPField.Name {
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
