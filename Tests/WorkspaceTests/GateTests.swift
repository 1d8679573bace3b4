import Dashboard
import Desk
import Escalation
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Intake
import TestSupport
import Testing
import TicketModel
import TicketStore
@testable import Workspace

/// A coordinator's store with agents of each role, their passwords and tokens, and the node's
/// HTTP server over it at a fixed time (bcrypt at cost 4, so that the tests stay quick).
struct GateFixture {
    static let password = "correct horse battery"
    static let start: UInt64 = 1_790_000_000_000
    let store: TicketDatabase
    let server: WorkspaceServer
    let access: AccessDesk
    let now: Int64
    /// API tokens by agent name.
    let tokens: [String: String]
    let intakeToken: String

    init(settings: WorkspaceSettings = WorkspaceSettings()) async throws {
        let clock = TestClock(Self.start)
        store = try memoryStore("hq", role: .coordinator, clock: clock)
        let agents = try AgentDesk(store: store)
        for (name, role) in [("mia", AgentRole.manager), ("ada", .agent), ("leo", .lead)] {
            try agents.add(AgentDocument(name: name, version: 1, displayName: name.capitalized, site: "hq", role: role), actor: "root")
        }
        let now = Int64(clock.now)
        self.now = now
        access = try AccessDesk(store: store, cost: 4)
        var tokens: [String: String] = [:]
        for name in ["mia", "ada", "leo"] {
            try access.setPassword(name, password: Self.password, now: now)
            tokens[name] = try access.issueToken(name, label: "tests", now: now)
        }
        self.tokens = tokens
        intakeToken = try store.addAPIToken(name: "gateway", channels: [])
        let intake = IntakeRoutes(service: try IntakeService(store: store, routing: nil))
        let dashboard = try await DashboardServer(database: store, now: { now })
        server = try WorkspaceServer(store: store, dashboard: dashboard, intake: intake, settings: settings, bcryptCost: 4, now: { now })
    }

    /// Runs `body` against the server's router, with one more route: `POST /probe` behind the gate
    /// for agents who work tickets (the foundation has no other write behind it yet).
    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = server.router()
        router.group().add(middleware: RequireAgent(permission: .work, pages: server.pages)).post("/probe") { _, _ in "done" }
        try await Application(router: router).test(.router, body)
    }

    /// A browser session of `name`, opened as the sign-in form does: (cookie secret, anti-forgery token).
    func session(_ name: String) throws -> (secret: String, csrf: String) {
        let session = try access.signIn(name, password: Self.password, now: now)
        return (session.secret, session.csrf)
    }
}

func headers(_ fields: [HTTPField.Name: String]) -> HTTPFields {
    var headers = HTTPFields()
    for (name, value) in fields { headers[name] = value }
    return headers
}

func bearer(_ token: String) -> HTTPFields { headers([.authorization: "Bearer \(token)"]) }
func cookie(_ secret: String) -> HTTPFields { headers([.cookie: "tierline_session=\(secret)"]) }
func form(_ fields: [(String, String)]) -> ByteBuffer {
    ByteBuffer(string: fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&"))
}

/// The JSON object of an answer; empty when the body is not one (the checks on its keys then fail).
func errorBody(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
}

@Suite struct GateTests {
    @Test(arguments: ["/api/summary", "/api/metrics", "/api/sites", "/api/series", "/export.csv"])
    func signedOutAPIRequestsGet401JSON(_ path: String) async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                #expect(response.headers[.wwwAuthenticate] == "Bearer realm=\"tierline\"")
                #expect(errorBody(response)["field"] as? String == "Authorization")
            }
        }
    }

    @Test(arguments: [("/", "%2F"), ("/desk", "%2Fdesk"), ("/?days=7", "%2F%3Fdays%3D7")])
    func signedOutPagesRedirectToSignIn(_ path: String, _ next: String) async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/login?next=\(next)")
                // Every answer carries the security headers, refusals too.
                #expect(response.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(response.headers[.cacheControl] == "no-store")
            }
        }
    }

    @Test func metricsIsOpenByDefault() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("tierline_backlog_tickets"))
            }
        }
    }

    @Test func metricsWithATokenNeedsIt() async throws {
        let fixture = try await GateFixture(settings: WorkspaceSettings(metricsToken: "scrape-secret-1234"))
        try await fixture.test { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: bearer("scrape-secret-9999")) { response in
                #expect(response.status == .unauthorized)
            }
            // An agent's token is not the metrics token.
            try await client.execute(uri: "/metrics", method: .get, headers: bearer(fixture.tokens["mia"]!)) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: bearer("scrape-secret-1234")) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("tierline_backlog_tickets"))
            }
        }
    }

    @Test func aWrongPasswordAndAnUnknownNameGetTheSameRefusal() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            var pages: [String] = []
            for (name, password) in [("mia", "not the password"), ("nobody", "not the password"), ("nobody", GateFixture.password)] {
                try await client.execute(uri: "/login", method: .post, headers: headers([.contentType: "application/x-www-form-urlencoded"]),
                                         body: form([("name", name), ("password", password), ("next", "/")])) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.setCookie] == nil)
                    let page = String(buffer: response.body)
                    #expect(page.contains("wrong agent name or password"))
                    // The page names the name given back (escaped), and nothing else differs.
                    pages.append(page.replacingOccurrences(of: "value=\"\(name)\"", with: "value=\"NAME\""))
                }
            }
            #expect(Set(pages).count == 1)
        }
    }

    @Test(arguments: [("/", "/"), ("/api/summary?days=7", "/api/summary?days=7"), ("//evil.com", "/desk"), ("https://evil.com", "/desk"),
                      ("/\\evil.com", "/desk"), ("", "/desk")])
    func aGoodPasswordSetsAStrictCookieAndGoesToASafeNext(_ next: String, _ expected: String) async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/login", method: .post, headers: headers([.contentType: "application/x-www-form-urlencoded"]),
                                     body: form([("name", "mia"), ("password", GateFixture.password), ("next", next)])) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == expected)
                let cookie = try #require(response.headers[.setCookie])
                #expect(cookie.hasPrefix("tierline_session="))
                #expect(cookie.contains("HttpOnly"))
                #expect(cookie.contains("SameSite=Strict"))
                #expect(cookie.contains("Path=/"))
                #expect(!cookie.contains("Secure"))
            }
        }
    }

    @Test func secureCookiesMarksTheCookieSecure() async throws {
        let fixture = try await GateFixture(settings: WorkspaceSettings(secureCookies: true))
        try await fixture.test { client in
            try await client.execute(uri: "/login", method: .post, headers: headers([.contentType: "application/x-www-form-urlencoded"]),
                                     body: form([("name", "mia"), ("password", GateFixture.password)])) { response in
                #expect(response.headers[.setCookie]?.contains("Secure") == true)
            }
        }
    }

    @Test func theCookieFromSignInOpensTheDashboard() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            let setCookie = try await client.execute(uri: "/login", method: .post, headers: headers([.contentType: "application/x-www-form-urlencoded"]),
                                                     body: form([("name", "mia"), ("password", GateFixture.password), ("next", "/")])) { response in
                try #require(response.headers[.setCookie])
            }
            let pair = String(setCookie.split(separator: ";")[0])
            try await client.execute(uri: "/", method: .get, headers: headers([.cookie: pair])) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: headers([.cookie: pair])) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func theDashboardNeedsItsPermission() async throws {
        let fixture = try await GateFixture()
        let agent = try fixture.session("ada")
        try await fixture.test { client in
            // Role agent: 403, as JSON for the API and as a page for the dashboard.
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer(fixture.tokens["ada"]!)) { response in
                #expect(response.status == .forbidden)
                #expect(errorBody(response)["error"] as? String != nil)
            }
            try await client.execute(uri: "/", method: .get, headers: cookie(agent.secret)) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
            }
            try await client.execute(uri: "/export.csv", method: .get, headers: bearer(fixture.tokens["leo"]!)) { response in
                #expect(response.status == .forbidden)
            }
            // Every agent works tickets.
            try await client.execute(uri: "/desk", method: .get, headers: cookie(agent.secret)) { response in
                #expect(response.status == .ok)
            }
            for path in ["/", "/api/summary", "/api/metrics", "/export.csv"] {
                try await client.execute(uri: path, method: .get, headers: bearer(fixture.tokens["mia"]!)) { response in
                    #expect(response.status == .ok, "\(path)")
                }
            }
        }
    }

    @Test func aGrantInRolesGivesThePermission() async throws {
        let fixture = try await GateFixture()
        try AgentDesk(store: fixture.store).add(AgentDocument(name: "ada", version: 2, displayName: "Ada", site: "hq", role: .agent, roles: ["dashboard"]),
                                                actor: "root")
        try await fixture.test { client in
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer(fixture.tokens["ada"]!)) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func aDeactivatedAgentIsShutOut() async throws {
        let fixture = try await GateFixture()
        let session = try fixture.session("mia")
        try await fixture.test { client in
            try await client.execute(uri: "/api/summary", method: .get, headers: cookie(session.secret)) { response in
                #expect(response.status == .ok)
            }
            try AgentDesk(store: fixture.store).deactivate("mia", actor: "root")
            try await client.execute(uri: "/api/summary", method: .get, headers: cookie(session.secret)) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer(fixture.tokens["mia"]!)) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/login", method: .post, headers: headers([.contentType: "application/x-www-form-urlencoded"]),
                                     body: form([("name", "mia"), ("password", GateFixture.password)])) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func aSessionWriteNeedsTheAntiForgeryToken() async throws {
        let fixture = try await GateFixture()
        let session = try fixture.session("mia")
        try await fixture.test { client in
            // Sign-out without the token: refused, and the session still works.
            try await client.execute(uri: "/logout", method: .post, headers: cookie(session.secret)) { response in
                #expect(response.status == .forbidden)
                #expect(errorBody(response)["field"] as? String == "csrf")
            }
            var wrong = cookie(session.secret)
            wrong[.contentType] = "application/x-www-form-urlencoded"
            try await client.execute(uri: "/logout", method: .post, headers: wrong, body: form([("csrf", "not-the-token")])) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: cookie(session.secret)) { response in
                #expect(response.status == .ok)
            }
            // With it (the form field): signed out, the cookie cleared, the session gone.
            try await client.execute(uri: "/logout", method: .post, headers: wrong, body: form([("csrf", session.csrf)])) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/login")
                #expect(response.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: cookie(session.secret)) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func aCrossOriginWriteIsRefused() async throws {
        let fixture = try await GateFixture()
        let session = try fixture.session("mia")
        try await fixture.test { client in
            // Even with the right anti-forgery token, a write from another site's page is refused.
            var fields = cookie(session.secret)
            fields[.csrfHeader] = session.csrf
            fields[.origin] = "https://evil.example"
            try await client.execute(uri: "/probe", method: .post, headers: fields) { response in
                #expect(response.status == .forbidden)
                #expect(errorBody(response)["field"] as? String == "Origin")
            }
            // Sign-in from another site's page is refused too (login CSRF).
            var login = headers([.contentType: "application/x-www-form-urlencoded"])
            login[.origin] = "https://evil.example"
            try await client.execute(uri: "/login", method: .post, headers: login,
                                     body: form([("name", "mia"), ("password", GateFixture.password)])) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.setCookie] == nil)
            }
            // Sign-out from another site's page too, even with the token.
            var logout = cookie(session.secret)
            logout[.csrfHeader] = session.csrf
            logout[.origin] = "https://evil.example"
            try await client.execute(uri: "/logout", method: .post, headers: logout) { response in
                #expect(response.status == .forbidden)
            }
            // The same write from this node's own origin, or with no Origin (an older browser), passes.
            fields[.origin] = "http://localhost"
            try await client.execute(uri: "/probe", method: .post, headers: fields) { response in
                #expect(response.status == .ok)
            }
            fields[.origin] = nil
            try await client.execute(uri: "/probe", method: .post, headers: fields) { response in
                #expect(response.status == .ok)
            }
            // Without the anti-forgery token, the same-origin write is refused.
            fields[.csrfHeader] = nil
            try await client.execute(uri: "/probe", method: .post, headers: fields) { response in
                #expect(response.status == .forbidden)
                #expect(errorBody(response)["field"] as? String == "csrf")
            }
        }
    }

    @Test func aBearerTokenNeedsNoAntiForgeryToken() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            // A token is not sent by a browser on its own, so it needs no anti-forgery token.
            try await client.execute(uri: "/probe", method: .post, headers: bearer(fixture.tokens["ada"]!)) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer("tla_" + String(repeating: "A", count: 43))) { response in
                #expect(response.status == .unauthorized)
                #expect(errorBody(response)["field"] as? String == "Authorization")
            }
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer("tla_short")) { response in
                #expect(response.status == .unauthorized)
            }
            // A revoked token stops working.
            try fixture.store.revokeAgentTokens(of: "mia", id: nil)
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer(fixture.tokens["mia"]!)) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func intakeRoutesStillTakeIntakeTokens() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            let body = ByteBuffer(string: #"{"channel": "email", "subject": "Printer offline", "message": "It says PC LOAD LETTER.", "customer": {"email": "kim@example.com"}}"#)
            var fields = bearer(fixture.intakeToken)
            fields[.contentType] = "application/json"
            try await client.execute(uri: "/api/intake/tickets", method: .post, headers: fields, body: body) { response in
                #expect(response.status == .created)
            }
            // An agent's token is not an intake token, and no token is no token.
            fields[.authorization] = "Bearer \(fixture.tokens["mia"]!)"
            try await client.execute(uri: "/api/intake/tickets", method: .post, headers: fields, body: body) { response in
                #expect(response.status == .unauthorized)
            }
            fields[.authorization] = nil
            try await client.execute(uri: "/api/intake/tickets", method: .post, headers: fields, body: body) { response in
                #expect(response.status == .unauthorized)
            }
            // The intake token opens nothing else.
            try await client.execute(uri: "/api/summary", method: .get, headers: bearer(fixture.intakeToken)) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func publicRoutesAnswerWithSecurityHeaders() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            for path in ["/login", "/static/app.css"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok, "\(path)")
                    #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                    #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
                }
            }
        }
    }
}

extension HTTPField.Name {
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let origin = HTTPField.Name("Origin")!
}
