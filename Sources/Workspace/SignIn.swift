import Desk
import Escalation
import Foundation
import Synchronization
import HTTPTypes
import HummingbirdAuth
import Hummingbird
import NIOCore

/// Slows password guessing: at most `maxFailures` failed sign-ins per agent name in `windowMillis`,
/// and at most `maxConcurrent` bcrypt checks at once, so that a flood of guesses cannot take every
/// core from the rest of the node. Kept in memory: a restart forgets it, which costs a guesser a
/// restart's worth of tries, not more.
final class SignInThrottle: Sendable {
    let maxFailures: Int
    let windowMillis: Int64
    let maxConcurrent: Int
    /// The most names whose failures are remembered: a flood of invented names must not grow the
    /// table without bound. Past it, the names whose last failure is oldest are forgotten first.
    let maxNames: Int
    /// Names are counted by their first characters only (agent ids have at most 64), so that a
    /// guesser's long names cost no memory.
    static let keyLength = 64
    private let state = Mutex<(failures: [String: [Int64]], running: Int)>(([:], 0))

    init(maxFailures: Int = 10, windowMillis: Int64 = 300_000, maxConcurrent: Int = 2, maxNames: Int = 10_000) {
        self.maxFailures = maxFailures
        self.windowMillis = windowMillis
        self.maxConcurrent = maxConcurrent
        self.maxNames = maxNames
    }

    static func key(_ name: String) -> String { String(name.prefix(keyLength)) }

    /// Whether `name` may try now; when it may, a check slot is taken and must be given back with ``finish(_:failed:now:)``.
    func begin(_ name: String, now: Int64) -> Bool {
        let key = Self.key(name)
        return state.withLock { state in
            let recent = (state.failures[key] ?? []).filter { $0 > now - windowMillis }
            state.failures[key] = recent.isEmpty ? nil : recent
            guard recent.count < maxFailures, state.running < maxConcurrent else { return false }
            state.running += 1
            return true
        }
    }

    /// Whether `name` has used up its failures for now (whatever the checks running).
    func isStopped(_ name: String, now: Int64) -> Bool {
        let key = Self.key(name)
        return state.withLock { state in (state.failures[key] ?? []).filter { $0 > now - windowMillis }.count >= maxFailures }
    }

    /// What ``enter(_:now:maxWaitMillis:)`` decided.
    enum Entry: Equatable {
        /// A check slot is taken: give it back with ``finish(_:failed:now:)``.
        case go
        /// The name has failed too often lately.
        case stopped
        /// Every slot stayed busy for the whole wait.
        case busy
    }

    /// Takes a check slot for `name`, waiting up to `maxWaitMillis` for one to free up: others' checks
    /// running (a guesser's flood) make a sign-in wait its turn, not fail at once.
    func enter(_ name: String, now: Int64, maxWaitMillis: Int = 10_000) async -> Entry {
        var waited = 0
        while true {
            if begin(name, now: now) { return .go }
            if isStopped(name, now: now) { return .stopped }
            guard waited < maxWaitMillis else { return .busy }
            try? await Task.sleep(for: .milliseconds(20))
            waited += 20
        }
    }

    func finish(_ name: String, failed: Bool, now: Int64) {
        let key = Self.key(name)
        state.withLock { state in
            state.running -= 1
            guard failed else { return }
            // Only the failures within the window count, so no name keeps more than maxFailures of them.
            state.failures[key, default: []].append(now)
            state.failures[key] = Array(state.failures[key, default: []].suffix(maxFailures))
            if state.failures.count > maxNames {
                state.failures = state.failures.filter { $0.value.contains { $0 > now - windowMillis } }
                if state.failures.count > maxNames {
                    let oldestFirst = state.failures.sorted { ($0.value.last ?? 0) < ($1.value.last ?? 0) }
                    for (name, _) in oldestFirst.prefix(state.failures.count - maxNames) { state.failures[name] = nil }
                }
            }
        }
    }

    /// How many names have failures remembered now (for tests).
    var trackedNames: Int { state.withLock { $0.failures.count } }
}

/// `GET /login`, `POST /login` and `POST /logout`.
struct SignInRoutes: Sendable {
    let access: AccessDesk
    let pages: Pages
    let throttle: SignInThrottle
    /// Whether the cookie is marked `Secure` (the node is reached over HTTPS through a proxy).
    let secureCookies: Bool
    let now: @Sendable () -> Int64

    func register(on router: Router<AgentContext>) {
        router.get("/login") { request, context in
            if context.identity != nil { return redirect(to: Self.safeNext(request.uri.queryParameters.get("next"))) }
            return pages.render("login", agent: nil, ["next": Self.safeNext(request.uri.queryParameters.get("next"))])
        }
        router.post("/login") { request, _ in try await signIn(request) }
        router.post("/logout") { request, context in
            // Signing out needs the session's anti-forgery token: a foreign page must not sign an agent out.
            if let agent = context.identity, case .session(let csrf) = agent.proof {
                if let origin = request.headers[.origin], let host = request.head.authority, !RequireAgent.sameOrigin(origin, host: host) {
                    return WorkspaceError(.forbidden, field: "Origin", "sign out from this node's own page").response
                }
                var request = request
                let form = FormBody(try await request.collectBody(upTo: 1 << 16))
                guard constantTimeEqual(form.values["csrf"] ?? request.headers[.csrfToken] ?? "", csrf) else {
                    return WorkspaceError(.forbidden, field: "csrf", "the anti-forgery token is missing or stale; reload the page and sign out again").response
                }
                if let secret = request.cookies[SessionCookie.name]?.value {
                    let access = access
                    try await offload { try access.signOut(secret) }
                }
            }
            var response = redirect(to: "/login")
            response.setCookie(Cookie(name: SessionCookie.name, value: "", maxAge: 0, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict))
            return response
        }
    }

    func signIn(_ request: Request) async throws -> Response {
        var request = request
        let form = FormBody(try await request.collectBody(upTo: 1 << 16))
        let name = (form.values["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form.values["password"] ?? ""
        let next = Self.safeNext(form.values["next"])
        if let origin = request.headers[.origin], let host = request.head.authority, !RequireAgent.sameOrigin(origin, host: host) {
            return WorkspaceError(.forbidden, field: "Origin", "sign in from this node's own page").response
        }
        func again(_ status: HTTPResponse.Status, _ message: String) -> Response {
            pages.render("login", agent: nil, status: status, ["next": next, "name": name, "error": message])
        }
        guard !name.isEmpty, !password.isEmpty else { return again(.badRequest, "Give your agent name and your password.") }
        let started = now()
        switch await throttle.enter(name, now: started) {
        case .go: break
        case .stopped: return again(.tooManyRequests, "Too many sign-in attempts for \(name) just now; wait a few minutes and try again.")
        case .busy: return again(.serviceUnavailable, "The node is busy checking other sign-ins; try again in a moment.")
        }
        let access = access
        do {
            let session = try await offload { try access.signIn(name, password: password, now: started) }
            throttle.finish(name, failed: false, now: started)
            var response = redirect(to: next)
            response.setCookie(Cookie(name: SessionCookie.name, value: session.secret, maxAge: Int(AccessDesk.sessionMillis / 1000), path: "/",
                                      secure: secureCookies, httpOnly: true, sameSite: .strict))
            return response
        } catch let error as DeskError {
            throttle.finish(name, failed: true, now: started)
            return again(error.code == .notPermitted ? .unauthorized : WorkspaceError(error).status, error.message)
        } catch {
            throttle.finish(name, failed: false, now: started)
            throw error
        }
    }

    /// Where to go after signing in: a path on this node only (never `//host` or a full URL).
    static func safeNext(_ given: String?) -> String {
        guard let given, given.hasPrefix("/"), !given.hasPrefix("//"), !given.contains("\\"),
              !given.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return "/desk" }
        return given
    }
}
