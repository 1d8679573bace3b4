import Dashboard
import Desk
import Escalation
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Intake
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// One node's store with its HTTP server (dashboard and intake) on 127.0.0.1, reached over real TCP.
struct IntakeFixture {
    let store: TicketDatabase
    let token: String
    let emailOnly: String
    let routes: IntakeRoutes

    init(routing: RoutingRules? = nil, role: SiteRole = .site) throws {
        store = try memoryStore("north", role: role)
        token = try store.addAPIToken(name: "gateway", channels: [])
        emailOnly = try store.addAPIToken(name: "mail", channels: ["email"])
        routes = IntakeRoutes(service: try IntakeService(store: store, routing: routing))
    }

    func live(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = try await DashboardServer(database: store).router()
        routes.register(on: router)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live, body)
    }
}

/// Posts `body` as JSON and hands back the status and the decoded answer.
func post(_ client: any TestClientProtocol, _ path: String, _ body: Any, token: String?,
          contentType: String = "application/json") async throws -> (HTTPResponse.Status, [String: Any]) {
    var headers = HTTPFields()
    headers[.contentType] = contentType
    if let token { headers[.authorization] = "Bearer \(token)" }
    let data = try (body as? String).map { Data($0.utf8) } ?? JSONSerialization.data(withJSONObject: body)
    return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: data)) { response in
        let json = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any] ?? [:]
        return (response.status, json)
    }
}

func ticketOf(_ answer: [String: Any]) -> [String: Any] { answer["ticket"] as? [String: Any] ?? [:] }

@Suite struct IntakeHTTPTests {
    @Test func everyChannelOpensATicketWithItsChannelAndFirstMessage() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            for channel in IntakeChannel.all {
                let (status, answer) = try await post(client, "/api/intake/tickets", [
                    "channel": channel, "subject": "Help via \(channel)", "message": "First words by \(channel)",
                    "customer": ["email": "\(channel)@example.com"],
                ], token: fixture.token)
                #expect(status == .created, "\(channel): \(answer)")
                let number = try #require(ticketOf(answer)["displayNumber"] as? String)
                #expect(ticketOf(answer)["channel"] as? String == channel)
                let detail = try fixture.store.detail(number)
                #expect(detail.ticket.channel == channel)
                let messages = detail.events.filter { $0.kind == .customerMessage }
                #expect(messages.map(\.body) == ["First words by \(channel)"])
            }
            #expect(try fixture.store.tickets().count == IntakeChannel.all.count)
        }
    }

    /// An attack review of issue 20: a caller made a customer keyed by the victim's address with its
    /// own as the e-mail, and the victim's replies went to it. Such a customer is refused, and an
    /// e-mail ticket's copy goes to the address the mail came from.
    @Test func aCustomerKeyedByAnotherAddressIsRefusedAndRepliesGoWhereTheMailCameFrom() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let (refused, why) = try await post(client, "/api/intake/tickets", [
                "channel": "portal", "subject": "x", "message": "x",
                "customer": ["id": "victim@corp.example", "email": "attacker@evil.example"],
            ], token: fixture.token)
            #expect(refused == .badRequest && why["field"] as? String == "customer.id", "\(why)")
            #expect(try fixture.store.customer("victim@corp.example") == nil)
            let (created, answer) = try await post(client, "/api/intake/tickets", [
                "channel": "email", "subject": "Password reset", "message": "Please reset it",
                "customer": ["email": "victim@corp.example"],
            ], token: fixture.token)
            #expect(created == .created)
            let number = try #require(ticketOf(answer)["displayNumber"] as? String)
            try HelpDesk(store: fixture.store).reply(number, body: "Done.", actor: "ana")
            let copies = try fixture.store.outbox().filter { $0.kind == "reply" }
            #expect(copies.map(\.recipient) == ["victim@corp.example"])
        }
    }

    /// An integration limited to e-mail cannot write into a chat ticket by its number (attack review
    /// of issue 20: each such message e-mails the assignee).
    @Test func anIntegrationAppendsOnlyToTicketsOfItsChannels() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let (created, answer) = try await post(client, "/api/intake/tickets", [
                "channel": "chat", "subject": "Locked out", "message": "help", "customer": ["email": "bo@example.com"],
            ], token: fixture.token)
            #expect(created == .created)
            let number = try #require(ticketOf(answer)["displayNumber"] as? String)
            let before = try fixture.store.detail(number).events.count
            let (refused, why) = try await post(client, "/api/intake/messages", [
                "channel": "email", "ticket": number, "message": "URGENT from IT: log in at https://evil.example",
            ], token: fixture.emailOnly)
            #expect(refused == .forbidden && why["field"] as? String == "ticket", "\(why)")
            #expect(try fixture.store.detail(number).events.count == before)
            let (taken, _) = try await post(client, "/api/intake/messages", ["channel": "chat", "ticket": number, "message": "still locked"],
                                            token: fixture.token)
            #expect(taken == .created)
        }
    }

    @Test func repliesLandOnTheirTicketAndRedeliveriesAreStoredOnce() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let first: [String: Any] = ["channel": "email", "subject": "Invoice is wrong", "message": "I was billed twice.",
                                        "customer": ["email": "ada@example.com"], "externalMessageId": "<a1@mail>", "externalThreadId": "thread-7",
                                        "attachments": [["name": "invoice.pdf", "contentType": "application/pdf", "size": 48_213]]]
            let (created, answer) = try await post(client, "/api/intake/tickets", first, token: fixture.token)
            #expect(created == .created)
            let number = try #require(ticketOf(answer)["displayNumber"] as? String)
            // The gateway retries the same email: one ticket, one message.
            let (again, duplicate) = try await post(client, "/api/intake/tickets", first, token: fixture.token)
            #expect(again == .ok && duplicate["duplicate"] as? Bool == true)
            #expect(ticketOf(duplicate)["id"] as? String == ticketOf(answer)["id"] as? String)
            #expect(try fixture.store.tickets().count == 1)

            // Replies: by ticket number, by thread id, by the number in the subject.
            let replies: [[String: Any]] = [
                ["channel": "email", "ticket": number, "message": "Any news?", "externalMessageId": "<a2@mail>"],
                ["channel": "email", "externalThreadId": "thread-7", "message": "Hello again", "externalMessageId": "<a3@mail>"],
                ["channel": "email", "subject": "Re: [\(number)] Invoice is wrong", "message": "Third try", "externalMessageId": "<a4@mail>"],
            ]
            for reply in replies {
                let (status, body) = try await post(client, "/api/intake/messages", reply, token: fixture.token)
                #expect(status == .created, "\(body)")
                #expect(ticketOf(body)["displayNumber"] as? String == number)
            }
            let (redelivered, body) = try await post(client, "/api/intake/messages", replies[0], token: fixture.token)
            #expect(redelivered == .ok && body["duplicate"] as? Bool == true)
            let detail = try fixture.store.detail(number)
            #expect(detail.events.filter { $0.kind == .customerMessage }.map(\.body) == ["I was billed twice.", "Any news?", "Hello again", "Third try"])
            let attachment = try #require(detail.events.first { $0.kind == .attachment })
            #expect(attachment.body.contains("\"name\":\"invoice.pdf\"") && attachment.body.contains("\"size\":48213"))

            // A thread id is the channel's own: the same id from chat finds no email ticket (an
            // integration that refuses unmatched messages says so).
            let strict = try fixture.store.addAPIToken(name: "strict", channels: [], unmatchedReplies: .refuse)
            let (otherChannel, miss) = try await post(client, "/api/intake/messages", ["channel": "chat", "externalThreadId": "thread-7", "message": "hi"],
                                                     token: strict)
            #expect(otherChannel == .notFound && miss["field"] as? String == "externalThreadId")
            let (unknown, refusal) = try await post(client, "/api/intake/messages", ["channel": "email", "ticket": "NORTH-99", "message": "x"], token: fixture.token)
            #expect(unknown == .notFound && refusal["field"] as? String == "ticket")
            let (unmatched, why) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "x"], token: strict)
            #expect(unmatched == .badRequest && why["field"] as? String == "ticket")
            #expect(try fixture.store.tickets().count == 1)
        }
    }

    /// A mail gateway expects a reply it cannot place to open a ticket (issue 22): by default it
    /// does, for the message's `customer` (or `from`, its old name); an integration may refuse them.
    @Test func aMessageThatMatchesNoTicketOpensOneUnlessItsIntegrationRefuses() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let reply: [String: Any] = ["channel": "email", "externalThreadId": "<lost@mail>", "message": "\n  Still waiting for the refund\nthanks",
                                        "externalMessageId": "<r1@mail>", "customer": ["email": "dana@example.com"]]
            let (status, answer) = try await post(client, "/api/intake/messages", reply, token: fixture.token)
            #expect(status == .created && answer["openedTicket"] as? Bool == true && answer["duplicate"] as? Bool == false, "\(answer)")
            let number = try #require(ticketOf(answer)["displayNumber"] as? String)
            let detail = try fixture.store.detail(number)
            #expect(detail.ticket.subject == "Still waiting for the refund" && detail.ticket.customer == "dana@example.com")
            // The next message of the thread finds that ticket; a redelivery stores nothing.
            let (next, appended) = try await post(client, "/api/intake/messages", ["channel": "email", "externalThreadId": "<lost@mail>", "message": "Hello?",
                                                                                  "from": ["email": "dana@example.com"]], token: fixture.token)
            #expect(next == .created && ticketOf(appended)["displayNumber"] as? String == number && appended["openedTicket"] as? Bool == false)
            let (again, duplicate) = try await post(client, "/api/intake/messages", reply, token: fixture.token)
            #expect(again == .ok && duplicate["duplicate"] as? Bool == true && ticketOf(duplicate)["displayNumber"] as? String == number)
            #expect(try fixture.store.tickets().count == 1)
            // A new ticket needs its customer: without one the message is refused as unplaced.
            let (noCustomer, why) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "x"], token: fixture.token)
            #expect(noCustomer == .badRequest && why["field"] as? String == "ticket", "\(why)")
            #expect((why["error"] as? String)?.contains("give customer") == true)
            let (lost, unknownThread) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "x", "externalThreadId": "<gone@mail>"],
                                                      token: fixture.token)
            #expect(lost == .notFound && unknownThread["field"] as? String == "externalThreadId")
            // A thread id this node never recorded, with the ticket's number in the subject (a reply
            // to another node's notification): the subject places it, no second ticket is opened.
            let (placed, bySubject) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "Any news?", "externalThreadId": "<other-node@mail>",
                                                                                     "subject": "Re: [\(number)] refund", "customer": ["email": "dana@example.com"]],
                                                    token: fixture.token)
            #expect(placed == .created && bySubject["openedTicket"] as? Bool == false && ticketOf(bySubject)["displayNumber"] as? String == number, "\(bySubject)")
            #expect(try fixture.store.tickets().count == 1)
            // customer and from together are one too many.
            let (both, twice) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "x", "customer": ["id": "C-1"],
                                                                               "from": ["id": "C-1"]], token: fixture.token)
            #expect(both == .badRequest && twice["field"] as? String == "from")
            // The integration's choice: refuse.
            try fixture.store.setUnmatchedReplies(integration: "gateway", .refuse)
            #expect(try fixture.store.apiTokens().first { $0.name == "gateway" }?.unmatchedReplies == .refuse)
            let (refused, refusal) = try await post(client, "/api/intake/messages", ["channel": "email", "message": "x", "customer": ["id": "C-1"]],
                                                   token: fixture.token)
            #expect(refused == .badRequest && refusal["field"] as? String == "ticket")
            #expect(try fixture.store.tickets().count == 1)
        }
    }

    /// An e-mail that came before the CRM import made a tierless customer; once the CRM record with
    /// that address is imported, the sender's new tickets are the CRM customer's, with its tier.
    @Test func aSenderMetBeforeTheCRMImportGetsTheCRMCustomersTier() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let mail: (Int) -> [String: Any] = { n in
                ["channel": "email", "subject": "Printer \(n)", "message": "It jams", "customer": ["email": "Dana@Example.com"], "externalMessageId": "<p\(n)@mail>"]
            }
            let (_, before) = try await post(client, "/api/intake/tickets", mail(1), token: fixture.token)
            #expect(ticketOf(before)["customer"] as? String == "dana@example.com" && ticketOf(before)["customerTier"] is NSNull)
            _ = try HelpDesk(store: fixture.store).importCustomers(csv: Data("id,email,tier\nC-9,dana@example.com,platinum\n".utf8), file: "crm.csv")
            let (_, after) = try await post(client, "/api/intake/tickets", mail(2), token: fixture.token)
            #expect(ticketOf(after)["customer"] as? String == "C-9" && ticketOf(after)["customerTier"] as? String == "platinum", "\(after)")
            let number = try #require(ticketOf(after)["displayNumber"] as? String)
            #expect(try fixture.store.ticketState(number).customFields["customer_tier"] == "platinum")
        }
    }

    /// SQLite's "disk full" while writing answers JSON 503, not an empty 500 (issue 22); a full
    /// disk itself is tested on a small tmpfs by Tests/CLI/intake-api.py.
    @Test func aFullDiskIsAJSONServiceUnavailable() throws {
        let full = try #require(IntakeError(storage: DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full")))
        #expect(full.status == .serviceUnavailable && full.field == nil && full.message.contains("disk is full"))
        #expect(IntakeError(storage: DatabaseError(resultCode: .SQLITE_IOERR))?.status == .serviceUnavailable)
        #expect(IntakeError(storage: DatabaseError(resultCode: .SQLITE_CONSTRAINT)) == nil)
        #expect(IntakeError(storage: CancellationError()) == nil)
    }

    @Test func requestsWithoutAValidTokenAreRefused() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let body: [String: Any] = ["channel": "chat", "subject": "s", "message": "m", "customer": ["id": "C-1"]]
            for token in [nil, "tl_wrong", fixture.token + "x"] as [String?] {
                let (status, answer) = try await post(client, "/api/intake/tickets", body, token: token)
                #expect(status == .unauthorized && answer["field"] as? String == "Authorization")
            }
            let (forbidden, answer) = try await post(client, "/api/intake/tickets", body, token: fixture.emailOnly)
            #expect(forbidden == .forbidden && answer["field"] as? String == "channel")
            try fixture.store.revokeAPIToken(name: "gateway")
            let (revoked, _) = try await post(client, "/api/intake/tickets", body, token: fixture.token)
            #expect(revoked == .unauthorized)
            // The name can carry a new token once the old one is revoked; the old one stays refused.
            let renewed = try fixture.store.addAPIToken(name: "gateway", channels: [])
            #expect(throws: StoreError.self) { try fixture.store.addAPIToken(name: "gateway", channels: []) }
            let (again, _) = try await post(client, "/api/intake/tickets", body, token: fixture.token)
            #expect(again == .unauthorized)
            let (accepted, _) = try await post(client, "/api/intake/tickets", body, token: renewed)
            #expect(accepted == .created)
            #expect(try fixture.store.tickets().count == 1)
        }
    }

    @Test(arguments: [
        (#"{"channel":"chat","message":"m","customer":{"id":"c"}}"#, "subject"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"id":"c"},"priorty":"high"}"#, "priorty"),
        (#"{"channel":"fax","subject":"s","message":"m","customer":{"id":"c"}}"#, "channel"),
        (#"{"channel":"chat","subject":"   ","message":"m","customer":{"id":"c"}}"#, "subject"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"name":"Ada"}}"#, "customer"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"id":"c","mail":"x"}}"#, "customer.mail"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"id":"c"},"attachments":[{"name":"a","contentType":"b","size":"9"}]}"#, "attachments[0].size"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"id":"c"},"attachments":[{"name":"a","contentType":"b","size":-1}]}"#, "attachments[0].size"),
        (#"{"channel":"chat","subject":"s","message":"m","customer":{"id":"c"},"tags":["ok",3]}"#, "tags[1]"),
        (#"{"channel":"chat","subject":"s","message":null,"customer":{"id":"c"}}"#, "message"),
        (#"[1,2]"#, nil),  // the body as a whole: field is null
    ])
    func aBadRequestNamesTheField(body: String, field: String?) async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let (status, answer) = try await post(client, "/api/intake/tickets", body, token: fixture.token)
            #expect(status == .badRequest)
            if let field { #expect(answer["field"] as? String == field, "\(answer)") } else { #expect(answer["field"] is NSNull, "\(answer)") }
            #expect((answer["error"] as? String)?.isEmpty == false)
        }
        #expect(try fixture.store.tickets().isEmpty)
    }

    @Test func notJSONAndTooLargeAreRefused() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let (notJSON, _) = try await post(client, "/api/intake/tickets", "channel=chat", token: fixture.token)
            #expect(notJSON == .badRequest)
            let (wrongType, answer) = try await post(client, "/api/intake/tickets", "{}", token: fixture.token, contentType: "text/plain")
            #expect(wrongType == .unsupportedMediaType && answer["field"] as? String == "Content-Type")
            let huge = "{\"channel\":\"chat\",\"subject\":\"s\",\"message\":\"" + String(repeating: "x", count: IntakeRoutes.maxBodyBytes) + "\"}"
            let (tooLarge, _) = try await post(client, "/api/intake/tickets", huge, token: fixture.token)
            #expect(tooLarge == .contentTooLarge)
        }
    }

    @Test func aBotHandoffStartsTheHumanClock() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let (status, answer) = try await post(client, "/api/intake/handoffs", [
                "bot": "helpbot", "customer": ["id": "C-9"], "subject": "Refund for order 1142", "reason": "asked for a person",
                "transcript": [["from": "customer", "text": "I want a refund"], ["from": "bot", "text": "Our policy allows 30 days."],
                               ["from": "customer", "text": "A person, please"]],
            ], token: fixture.token)
            #expect(status == .created, "\(answer)")
            #expect(ticketOf(answer)["channel"] as? String == "bot")
            let started = try #require(answer["firstResponseClockStartedAt"] as? String)
            let detail = try fixture.store.detail(try #require(ticketOf(answer)["displayNumber"] as? String))
            #expect(detail.ticket.createdAt == started)
            #expect(detail.events.filter { $0.kind == .customerMessage }.map(\.body) == ["I want a refund", "A person, please"])
            #expect(detail.events.filter { $0.kind == .autoReply }.map(\.body) == ["Our policy allows 30 days."])
            #expect(detail.events.contains { $0.kind == .internalNote && $0.body.contains("helpbot") })
        }
    }

    @Test func aSurveyAnswerIsAcceptedOnce() async throws {
        let fixture = try IntakeFixture()
        let ticket = try fixture.store.createTicket(TicketDraft(subject: "Password reset"))
        let token = try #require(try fixture.store.updateIssuingSurvey(ticket.id, [(.status, .text("solved"))]).surveyToken)
        try await fixture.live { client in
            let (first, answer) = try await post(client, "/api/intake/csat", ["token": token, "score": 5, "comment": "Fast"], token: fixture.token)
            #expect(first == .created && answer["ticket"] as? String == ticket.displayNumber)
            let (second, refusal) = try await post(client, "/api/intake/csat", ["token": token, "score": 1], token: fixture.token)
            #expect(second == .conflict && refusal["field"] as? String == "token")
            let (unknown, why) = try await post(client, "/api/intake/csat", ["token": "cs_nope", "score": 3], token: fixture.token)
            #expect(unknown == .notFound && why["field"] as? String == "token")
            let (bad, score) = try await post(client, "/api/intake/csat", ["token": token, "score": 6], token: fixture.token)
            #expect(bad == .badRequest && score["field"] as? String == "score")
        }
        #expect(try fixture.store.detail(ticket.id).csat?.score == 5)
    }
}
