import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Intake
import TestSupport
import Testing
import TicketModel
import TicketStore

/// Posts `body` on a connection of its own (so requests run side by side, as separate integrations'
/// would), and hands back the status and the answer's bytes.
private func postAlone(port: Int, _ path: String, _ body: Data, token: String) async throws -> (HTTPResponse.Status, Data) {
    let headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(token)"]
    let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
        try await client.post(path, headers: headers, body: ByteBuffer(bytes: body))
    }
    return (response.status, response.body.map { Data($0.readableBytesView) } ?? Data())
}

private func json(_ data: Data) -> [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }

private func ticketBody(_ n: Int, subject: Bool = true, message: String? = nil) throws -> Data {
    var body: [String: Any] = ["channel": "chat", "message": message ?? "Help with \(n)", "customer": ["id": "C-\(n)"], "externalMessageId": "m-\(n)"]
    if subject { body["subject"] = "Request \(n)" }
    return try JSONSerialization.data(withJSONObject: body)
}

/// Concurrent intake requests commit in shared transactions (``GroupCommit``); each is answered
/// with its own result once its transaction committed.
@Suite struct IntakeGroupCommitTests {
    @Test func fiftyConcurrentRequestsAreEachStoredOnceAndABadOneGetsItsOwnError() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            let port = try #require(client.port)
            let token = fixture.token
            // 50 tickets, one redelivery of ticket 0 racing it, and one request without a subject.
            var bodies = try (0..<50).map { try ticketBody($0) }
            bodies.append(try ticketBody(0))
            bodies.append(try ticketBody(99, subject: false))
            let replies = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status, Data).self) { group in
                for (n, body) in bodies.enumerated() {
                    group.addTask { let (status, data) = try await postAlone(port: port, "/api/intake/tickets", body, token: token); return (n, status, data) }
                }
                var out: [Int: (HTTPResponse.Status, Data)] = [:]
                for try await (n, status, data) in group { out[n] = (status, data) }
                return out
            }
            let answers = replies.mapValues { ($0.0, json($0.1)) }
            for n in 1..<50 {
                #expect(answers[n]?.0 == .created, "request \(n): \(String(describing: answers[n]))")
                #expect(ticketOf(answers[n]?.1 ?? [:])["subject"] as? String == "Request \(n)")
            }
            // The first delivery of ticket 0 and its redelivery: one created it, the other found it.
            let zero = [answers[0], answers[50]].compactMap { $0 }
            #expect(Set(zero.map(\.0)) == [.created, .ok], "\(zero)")
            #expect(Set(zero.compactMap { $0.1["duplicate"] as? Bool }) == [false, true])
            #expect(Set(zero.map { ticketOf($0.1)["id"] as? String }).count == 1)
            #expect(answers[51]?.0 == .badRequest && answers[51]?.1["field"] as? String == "subject", "\(String(describing: answers[51]))")
            let subjects = try fixture.store.tickets().map(\.subject)
            #expect(subjects.count == 50 && Set(subjects) == Set((0..<50).map { "Request \($0)" }))
            let numbers = try fixture.store.tickets().map(\.displayNumber)
            #expect(Set(numbers).count == 50)
        }
    }

    /// A full disk (the page limit stands in for it) answers every concurrent request with the JSON
    /// 503, and stores nothing of any of them.
    @Test func aFullDiskAnswersEveryConcurrentRequestWith503() async throws {
        let fixture = try IntakeFixture()
        try await fixture.live { client in
            // Once the server made its tables: the store cannot grow from here on.
            try await fillDisk(fixture.store)
            let port = try #require(client.port)
            let token = fixture.token
            let long = String(repeating: "A long message that needs new pages. ", count: 200)
            let bodies = try (0..<12).map { try ticketBody($0, message: long) }
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, Data).self) { group in
                for body in bodies { group.addTask { try await postAlone(port: port, "/api/intake/tickets", body, token: token) } }
                var out: [(HTTPResponse.Status, Data)] = []
                for try await reply in group { out.append(reply) }
                return out
            }.map { ($0.0, json($0.1)) }
            #expect(statuses.count == 12)
            for (status, answer) in statuses {
                #expect(status == .serviceUnavailable && (answer["error"] as? String)?.contains("disk is full") == true, "\(status) \(answer)")
            }
        }
        #expect(try fixture.store.tickets().isEmpty)
    }
}
