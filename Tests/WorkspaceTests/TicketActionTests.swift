import Dashboard
import Desk
import Escalation
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing
import TicketModel
import TicketStore
import Workspace

/// A coordinator `hub` in a fleet with `north` and `south`, with a published directory — ana
/// (agent, tier1), lena (lead, tier1 and tier2), sol at `south` (tier2) — an API token for ana and one for lena, a browser session for
/// lena, and a workspace server over it at a fixed time.
struct ActionFixture {
    static let now: Int64 = 1_790_000_000_000
    let store: TicketDatabase
    /// A site of the same fleet, to hand tickets over from.
    let north: TicketDatabase
    let server: WorkspaceServer
    let ana: String
    let lena: String
    let session: NewSession
    let ticket: TicketRecord

    init() async throws {
        let key = SiteKey.generate(), northKey = SiteKey.generate(), southKey = SiteKey.generate()
        store = try memoryStore("hub", role: .coordinator, key: key)
        north = try memoryStore("north", key: northKey)
        try admit([(store, key), (north, northKey), (try memoryStore("south", key: southKey), southKey)])
        let agents = try AgentDesk(store: store)
        try agents.add(AgentDocument(name: "ana", version: 1, displayName: "Ana", site: "hub", groups: ["tier1"], role: .agent), actor: "root")
        try agents.add(AgentDocument(name: "lena", version: 1, displayName: "Lena", site: "hub", groups: ["tier1", "tier2"], role: .lead), actor: "root")
        try agents.add(AgentDocument(name: "sol", version: 1, displayName: "Sol", site: "south", groups: ["tier2"]), actor: "root")
        let access = try AccessDesk(store: store, cost: 4)
        ana = try access.issueToken("ana", label: "tests", now: Self.now)
        lena = try access.issueToken("lena", label: "tests", now: Self.now)
        try access.setPassword("lena", password: "a long enough password", now: Self.now)
        session = try access.signIn("lena", password: "a long enough password", now: Self.now)
        ticket = try HelpDesk(store: store).open(TicketDraft(subject: "Printer offline", group: "tier1"), now: Self.now)
        let now = Self.now
        server = try WorkspaceServer(store: store, dashboard: try await DashboardServer(database: store, now: { now }), intake: nil,
                                     bcryptCost: 4, now: { now })
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: server.router()).test(.router, body)
    }
}

/// How a test request proves who sends it.
enum Credential {
    case token(String)
    /// The session cookie, with the anti-forgery token in the header when given.
    case session(NewSession, csrf: Bool)
    case none

    var headers: HTTPFields {
        var fields = HTTPFields()
        switch self {
        case .token(let token): fields[.authorization] = "Bearer \(token)"
        case .session(let session, let csrf):
            fields[.cookie] = "tierline_session=\(session.secret)"
            if csrf { fields[HTTPField.Name("X-CSRF-Token")!] = session.csrf }
        case .none: break
        }
        return fields
    }
}

extension TestClientProtocol {
    /// POSTs `json` (a JSON text) to `path`.
    func post(_ path: String, json: String, as who: Credential) async throws -> TestResponse {
        var headers = who.headers
        headers[.contentType] = "application/json"
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: json))
    }

    /// POSTs `form` (already encoded) to `path` as a browser's form does.
    func post(_ path: String, form: String, as who: Credential) async throws -> TestResponse {
        var headers = who.headers
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: form))
    }
}

func json(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

/// The `field` and `error` of a refusal, after checking its status.
func refusal(_ response: TestResponse, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws -> (field: String?, error: String) {
    #expect(response.status == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    let body = try json(response)
    #expect(body.keys.sorted() == ["error", "field"], sourceLocation: sourceLocation)
    return (body["field"] as? String, body["error"] as? String ?? "")
}

@Suite struct TicketActionTests {
    @Test func replyNoteFieldsAndTagsWriteWhatTheySayAsTheSignedInAgent() async throws {
        let fixture = try await ActionFixture()
        let ref = fixture.ticket.displayNumber
        try await fixture.test { client in
            let reply = try await client.post("/api/tickets/\(ref)/replies", json: #"{"body": "We are on it."}"#, as: .token(fixture.ana))
            #expect(reply.status == .created)
            let ticket = try #require(try json(reply)["ticket"] as? [String: Any])
            #expect(ticket["displayNumber"] as? String == ref)
            #expect(Set(ticket.keys) == ["id", "displayNumber", "subject", "status", "priority", "assignee", "group", "owningSite", "tags",
                                         "conflictCount", "updatedAt"])
            let note = try await client.post("/api/tickets/\(ref)/notes", json: #"{"body": "Customer is on the 3rd floor."}"#, as: .token(fixture.ana))
            #expect(note.status == .created)
            let fields = try await client.post("/api/tickets/\(ref)/fields",
                                               json: #"{"priority": "urgent", "assignee": "lena", "category": "hardware", "custom": {"floor": "3"}}"#,
                                               as: .token(fixture.ana))
            #expect(fields.status == .ok)
            let answer = try json(fields)
            #expect(answer["surveyToken"] is NSNull)
            #expect((answer["ticket"] as? [String: Any])?["assignee"] as? String == "lena")
            let tags = try await client.post("/api/tickets/\(ref)/tags", json: #"{"add": ["vip", "printer"]}"#, as: .token(fixture.ana))
            #expect(tags.status == .ok)
            let untag = try await client.post("/api/tickets/\(ref)/tags", json: #"{"remove": ["vip"]}"#, as: .token(fixture.ana))
            #expect((try json(untag)["ticket"] as? [String: Any])?["tags"] as? [String] == ["printer"])
        }
        let detail = try fixture.store.detail(ref)
        #expect(detail.ticket.priority == "urgent")
        #expect(detail.ticket.assignee == "lena")
        #expect(detail.ticket.category == "hardware")
        #expect(detail.customFields["floor"] == "3")
        #expect(detail.ticket.tags == ["printer"])
        let replies = detail.events.filter { $0.kind == .agentReply }
        #expect(replies.map(\.body) == ["We are on it."])
        #expect(replies.first?.visibility == "public")
        let notes = detail.events.filter { $0.kind == .internalNote }
        #expect(notes.map(\.body) == ["Customer is on the 3rd floor."])
        #expect(notes.first?.visibility == "internal")
        // Every write is the signed-in agent's: the reply, the note, the field changes.
        #expect((replies + notes).allSatisfy { $0.actor == "ana" })
        let changes = detail.events.filter { $0.kind == .fieldChange && $0.field == "priority" && $0.value == "urgent" }
        #expect(!changes.isEmpty && changes.allSatisfy { $0.actor == "ana" })
    }

    /// A store that cannot grow (SQLite's page limit stands in for a full disk: the same
    /// SQLITE_FULL) answers an action as the intake API does: JSON 503, nothing stored.
    @Test func aFullStoreAnswersJSON503AndStoresNothing() async throws {
        let fixture = try await ActionFixture()
        try await fillDisk(fixture.store)
        let body = String(repeating: "A long note that needs new pages. ", count: 400)
        try await fixture.test { client in
            let response = try await client.post("/api/tickets/\(fixture.ticket.displayNumber)/notes",
                                                 json: #"{"body": "\#(body)"}"#, as: .token(fixture.ana))
            let answer = try refusal(response, .serviceUnavailable)
            #expect(answer.error.contains("disk is full"), "\(answer.error)")
        }
        #expect(try fixture.store.detail(fixture.ticket.id).events.allSatisfy { $0.kind != .internalNote })
    }

    @Test func aBodyCannotNameAnotherActor() async throws {
        let fixture = try await ActionFixture()
        try await fixture.test { client in
            let response = try await client.post("/api/tickets/\(fixture.ticket.displayNumber)/replies",
                                                 json: #"{"body": "Done.", "actor": "lena"}"#, as: .token(fixture.ana))
            #expect(try refusal(response, .badRequest).field == "actor")
        }
        #expect(try fixture.store.detail(fixture.ticket.id).events.allSatisfy { $0.kind != .agentReply })
    }

    @Test(arguments: [
        (#"{"bdy": "x"}"#, "replies", "bdy"),
        (#"{"body": 5}"#, "replies", "body"),
        (#"{"body": null}"#, "replies", "body"),
        (#"{"body": "   "}"#, "replies", "body"),
        (#"{}"#, "replies", "body"),
        (#"{"status": "merged"}"#, "fields", "status"),
        (#"{"assignee": "nobody"}"#, "fields", "assignee"),
        (#"{"group": "tier 2"}"#, "fields", "group"),
        (#"{"custom": {"csat_token": "x"}}"#, "fields", "custom.csat_token"),
        (#"{"custom": {"floor": 3}}"#, "fields", "custom.floor"),
        (#"{"add": ["ok", 7]}"#, "tags", "add[1]"),
        (#"{"add": []}"#, "tags", "add"),
        (#"{"group": "nowhere"}"#, "transfer", "group"),
        (#"{"to": "tier2@south", "summary": "s", "verifiedFacts": "v", "stepsTried": "t"}"#, "escalate", "requestedAction"),
        (#"{"to": "tier:2", "summary": "s", "verifiedFacts": "v", "stepsTried": "t", "requestedAction": "r"}"#, "escalate", "to"),
        (#"{"why": "x"}"#, "reopen", "why"),
    ])
    func badBodiesAreRefusedNamingTheMember(body: String, action: String, field: String) async throws {
        let fixture = try await ActionFixture()
        let before = try fixture.store.vector()
        try await fixture.test { client in
            let response = try await client.post("/api/tickets/\(fixture.ticket.displayNumber)/\(action)", json: body, as: .token(fixture.lena))
            let (named, error) = try refusal(response, .badRequest)
            #expect(named == field)
            #expect(!error.isEmpty)
        }
        #expect(try fixture.store.vector() == before, "a refusal writes nothing")
    }

    /// A handoff to a site the roster does not list would wait for ever: the API refuses it as the
    /// CLI does, naming the known sites, and writes nothing (issue 22).
    @Test func anEscalationToASiteOutsideTheRosterIsRefused() async throws {
        let fixture = try await ActionFixture()
        let before = try fixture.store.vector()
        try await fixture.test { client in
            let response = try await client.post("/api/tickets/\(fixture.ticket.displayNumber)/escalate", json: """
                {"to": "tier2@hbu", "summary": "s", "verifiedFacts": "v", "stepsTried": "t", "requestedAction": "r"}
                """, as: .token(fixture.ana))
            let (field, error) = try refusal(response, .badRequest)
            #expect(field == "to")
            #expect(error.contains("hbu is not a site of the roster (known: hub, north, south)"))
        }
        #expect(try fixture.store.vector() == before, "a refusal writes nothing")
    }

    @Test func anUnknownMemberIsNamedWithTheNearestKnownOne() async throws {
        let fixture = try await ActionFixture()
        try await fixture.test { client in
            let response = try await client.post("/api/tickets/\(fixture.ticket.displayNumber)/escalate",
                                                 json: #"{"to": "tier2@south", "sumary": "s"}"#, as: .token(fixture.ana))
            let (field, error) = try refusal(response, .badRequest)
            #expect(field == "sumary")
            #expect(error.contains("\"summary\""))
        }
    }

    @Test func anUnknownTicketIsA404NamingRef() async throws {
        let fixture = try await ActionFixture()
        try await fixture.test { client in
            for action in ["replies", "reopen", "handoff/withdraw"] {
                let body = action == "replies" ? #"{"body": "x"}"# : "{}"
                let response = try await client.post("/api/tickets/HUB-99/\(action)", json: body, as: .token(fixture.lena))
                #expect(try refusal(response, .notFound).field == "ref")
            }
        }
    }

    @Test func otherBodiesAreRefusedByStatus() async throws {
        let fixture = try await ActionFixture()
        let path = "/api/tickets/\(fixture.ticket.displayNumber)/replies"
        try await fixture.test { client in
            var headers = Credential.token(fixture.ana).headers
            headers[.contentType] = "text/plain"
            let plain = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: "hello"))
            #expect(try refusal(plain, .unsupportedMediaType).field == "Content-Type")
            let huge = try await client.post(path, json: #"{"body": ""# + String(repeating: "a", count: 1 << 20) + #""}"#, as: .token(fixture.ana))
            #expect(try refusal(huge, .contentTooLarge).field == nil)
            let broken = try await client.post(path, json: #"{"body": "x",}"#, as: .token(fixture.ana))
            #expect(try refusal(broken, .badRequest).field == nil)
            let signedOut = try await client.post(path, json: #"{"body": "x"}"#, as: .none)
            #expect(try refusal(signedOut, .unauthorized).field == "Authorization")
        }
    }

    @Test func anAgentMayNotAnswerHandoffsOrWriteArticles() async throws {
        let fixture = try await ActionFixture()
        let ref = fixture.ticket.displayNumber
        let before = try fixture.store.vector()
        try await fixture.test { client in
            let accept = try await client.post("/api/tickets/\(ref)/handoff/accept", json: "{}", as: .token(fixture.ana))
            #expect(try refusal(accept, .forbidden).error.contains("lead"))
            let article = try await client.post("/api/tickets/\(ref)/articles/new",
                                                json: #"{"title": "t", "summary": "s", "rootCause": "r", "steps": "x"}"#, as: .token(fixture.ana))
            _ = try refusal(article, .forbidden)
        }
        #expect(try fixture.store.vector() == before)
    }

    @Test func aSessionWriteNeedsTheAntiForgeryToken() async throws {
        let fixture = try await ActionFixture()
        let path = "/api/tickets/\(fixture.ticket.displayNumber)/notes"
        try await fixture.test { client in
            let without = try await client.post(path, json: #"{"body": "forged"}"#, as: .session(fixture.session, csrf: false))
            #expect(try refusal(without, .forbidden).field == "csrf")
            let with = try await client.post(path, json: #"{"body": "mine"}"#, as: .session(fixture.session, csrf: true))
            #expect(with.status == .created)
        }
        let notes = try fixture.store.detail(fixture.ticket.id).events.filter { $0.kind == .internalNote }
        #expect(notes.map(\.body) == ["mine"])
        #expect(notes.first?.actor == "lena")
    }

    @Test func aFormPostIsSentBackToTheTicketsPage() async throws {
        let fixture = try await ActionFixture()
        let ref = fixture.ticket.displayNumber
        let csrf = fixture.session.csrf.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        try await fixture.test { client in
            let reply = try await client.post("/api/tickets/\(ref.lowercased())/replies", form: "csrf=\(csrf)&body=Fixed+it%21",
                                              as: .session(fixture.session, csrf: false))
            #expect(reply.status == .seeOther)
            #expect(reply.headers[.location] == "/desk/tickets/\(ref)?done=reply")
            let tags = try await client.post("/api/tickets/\(ref)/tags", form: "csrf=\(csrf)&add=billing%2C+vip&remove=", as: .session(fixture.session, csrf: false))
            #expect(tags.headers[.location] == "/desk/tickets/\(ref)?done=tags")
            // Empty inputs of a form leave their fields as they are; an empty assignee clears it.
            let fields = try await client.post("/api/tickets/\(ref)/fields", form: "csrf=\(csrf)&subject=&status=&priority=high&assignee=&custom.floor=2",
                                               as: .session(fixture.session, csrf: false))
            #expect(fields.headers[.location] == "/desk/tickets/\(ref)?done=fields")
            let refused = try await client.post("/api/tickets/\(ref)/transfer", form: "csrf=\(csrf)&group=nowhere", as: .session(fixture.session, csrf: false))
            #expect(refused.status == .seeOther)
            let location = try #require(refused.headers[.location])
            #expect(location.hasPrefix("/desk/tickets/\(ref)?error="))
            #expect(location.hasSuffix("&field=group"))
            #expect(!location.contains(" ") && !location.contains("\""))
            let forged = try await client.post("/api/tickets/\(ref)/notes", form: "body=forged", as: .session(fixture.session, csrf: false))
            #expect(try refusal(forged, .forbidden).field == "csrf")
        }
        let detail = try fixture.store.detail(ref)
        #expect(detail.ticket.subject == "Printer offline")
        #expect(detail.ticket.priority == "high")
        #expect(detail.ticket.assignee == nil)
        #expect(detail.customFields["floor"] == "2")
        #expect(detail.ticket.tags == ["billing", "vip"])
        #expect(detail.ticket.group == "tier1")
        #expect(detail.events.filter { $0.kind == .agentReply }.map(\.body) == ["Fixed it!"])
    }

    @Test func transferEscalateAndWithdrawWriteTheirRecords() async throws {
        let fixture = try await ActionFixture()
        let ref = fixture.ticket.displayNumber
        try await fixture.test { client in
            let transfer = try await client.post("/api/tickets/\(ref)/transfer", json: #"{"group": "tier2", "reason": "needs a printer expert"}"#,
                                                 as: .token(fixture.ana))
            #expect(transfer.status == .created)
            let answer = try json(transfer)
            #expect((answer["ticket"] as? [String: Any])?["group"] as? String == "tier2")
            let event = try #require(answer["event"] as? [String: Any])
            #expect(event["actor"] as? String == "ana")
            #expect((event["record"] as? [String: Any])?["type"] as? String == "transferred")
            let escalate = try await client.post("/api/tickets/\(ref)/escalate", json: """
                {"to": "tier2@south", "summary": "Printer offline", "verifiedFacts": "Cable is in", "stepsTried": "Restarted the spooler",
                 "requestedAction": "Replace the fuser"}
                """, as: .token(fixture.ana))
            #expect(escalate.status == .created)
            let record = try #require((try json(escalate)["event"] as? [String: Any])?["record"] as? [String: Any])
            #expect(record["type"] as? String == "escalated")
            #expect(record["toSite"] as? String == "south")
            #expect((record["note"] as? [String: Any])?["requestedAction"] as? String == "Replace the fuser")
            let withdraw = try await client.post("/api/tickets/\(ref)/handoff/withdraw", json: #"{"reason": "south is closed today"}"#, as: .token(fixture.lena))
            #expect(withdraw.status == .created)
            #expect(((try json(withdraw)["event"] as? [String: Any])?["record"] as? [String: Any])?["type"] as? String == "handoff_withdrawn")
            // Nothing left to withdraw or to acknowledge: the ticket's state refuses.
            let again = try await client.post("/api/tickets/\(ref)/handoff/withdraw", json: "{}", as: .token(fixture.lena))
            _ = try refusal(again, .conflict)
            let ack = try await client.execute(uri: "/api/tickets/\(ref)/ack", method: .post, headers: Credential.token(fixture.ana).headers)
            _ = try refusal(ack, .conflict)
        }
        let (_, evaluation) = try HelpDesk(store: fixture.store).escalation.evaluate(ref, now: ActionFixture.now + 1)
        #expect(evaluation.pendingHandoffs.isEmpty)
        let escalations = try fixture.store.detail(ref).events.filter { $0.kind == .escalation }
        #expect(escalations.map(\.actor) == ["ana", "ana", "lena"])
    }

    @Test func aLeadAcceptsAHandoffFromAnotherSite() async throws {
        let fixture = try await ActionFixture()
        let north = fixture.north
        let note = HandoffNote(summary: "s", verifiedFacts: "v", stepsTried: "t", requestedAction: "r")
        let ticket = try HelpDesk(store: north).open(TicketDraft(subject: "Payroll export fails"), now: ActionFixture.now)
        try HelpDesk(store: north).escalate(ticket.id, to: "tier2@hub", note: note, actor: "nia", now: ActionFixture.now)
        _ = try fixture.store.apply(try north.blocks(after: try fixture.store.vector()))
        try await fixture.test { client in
            let reject = try await client.post("/api/tickets/\(ticket.displayNumber)/handoff/reject", json: "{}", as: .token(fixture.lena))
            #expect(try refusal(reject, .badRequest).field == "reason")
            let accept = try await client.post("/api/tickets/\(ticket.displayNumber)/handoff/accept", json: "", as: .token(fixture.lena))
            #expect(accept.status == .created)
            let answer = try json(accept)
            #expect((answer["ticket"] as? [String: Any])?["owningSite"] as? String == "hub")
            #expect((answer["event"] as? [String: Any])?["actor"] as? String == "lena")
        }
        #expect(try fixture.store.ticket(ticket.id).owningSite == "hub")
        #expect(try fixture.store.ticket(ticket.id).group == "tier2")
    }

    @Test func articlesAreLinkedAndWrittenFromSolvedTickets() async throws {
        let fixture = try await ActionFixture()
        let ref = fixture.ticket.displayNumber
        let draft = #"{"title": "Printer offline after update", "summary": "The spooler stopped.", "rootCause": "A driver update.", "steps": "Restart the spooler."}"#
        try await fixture.test { client in
            let early = try await client.post("/api/tickets/\(ref)/articles/new", json: draft, as: .token(fixture.lena))
            _ = try refusal(early, .conflict)
            let solved = try await client.post("/api/tickets/\(ref)/fields", json: #"{"status": "solved"}"#, as: .token(fixture.lena))
            #expect(try json(solved)["surveyToken"] is String)
            let written = try await client.post("/api/tickets/\(ref)/articles/new", json: draft, as: .token(fixture.lena))
            #expect(written.status == .created)
            let article = try #require(try json(written)["article"] as? [String: Any])
            #expect(article["author"] as? String == "lena")
            #expect(article["sourceTicket"] as? String == ref)
            let articleRef = try #require(article["ref"] as? String)
            let missing = try await client.post("/api/tickets/\(ref)/articles", json: #"{"article": "KB-00000000"}"#, as: .token(fixture.ana))
            #expect(try refusal(missing, .notFound).field == "article")
            let link = try await client.post("/api/tickets/\(ref)/articles", json: #"{"article": "\#(articleRef)"}"#, as: .token(fixture.ana))
            #expect(link.status == .ok)
            #expect((try json(link)["article"] as? [String: Any])?["uses"] as? Int == 1)
            // A closed ticket's status moves only through reopen.
            _ = try await client.post("/api/tickets/\(ref)/fields", json: #"{"status": "closed"}"#, as: .token(fixture.ana))
            let open = try await client.post("/api/tickets/\(ref)/fields", json: #"{"status": "open"}"#, as: .token(fixture.ana))
            #expect(try refusal(open, .conflict).field == "status")
            let reopen = try await client.post("/api/tickets/\(ref)/reopen", json: "", as: .token(fixture.ana))
            #expect((try json(reopen)["ticket"] as? [String: Any])?["status"] as? String == "open")
        }
        #expect(try fixture.store.detail(ref).articles.count == 1)
    }
}
