import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Intake
import Logging
import NIOCore
import TicketModel
import TicketStore

/// The intake API under concurrent clients: `clients` connections to a node's HTTP server on
/// 127.0.0.1, each posting `requests` new tickets one after another, into a durable store
/// (`synchronous=FULL`, a node's setting). Once with a transaction per request (what intake did
/// before its group commit), then with the group commit, in the same run.
@MainActor func intakeBench(root: String, clients: Int, requests: Int) async throws {
    note("intake: \(clients) clients × \(requests) tickets, a transaction each, then grouped…")
    var rates: [Int: Double] = [:]
    for maxBatch in [1, 128] {
        let (store, pool) = try openStoreAndPool(root + "/intake-\(maxBatch)", site: "north", role: .site, key: SiteKey.generate(), synchronous: .full)
        let token = try store.addAPIToken(name: "bench", channels: [])
        let routes = IntakeRoutes(service: try IntakeService(store: store, routing: nil, maxBatch: maxBatch))
        let router = Router()
        routes.register(on: router)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        let elapsed = try await app.test(.live) { client in
            guard let port = client.port else { fatalError("intake: the test server has no port") }
            let start = DispatchTime.now().uptimeNanoseconds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in 0..<clients {
                    group.addTask {
                        // A read timeout far past any answer's time on a loaded machine (the client's own is 15 s):
                        // the rate is the figure here, and a slow answer must not end the run.
                        try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(300))) { http in
                            for r in 0..<requests {
                                var headers = HTTPFields()
                                headers[.contentType] = "application/json"
                                headers[.authorization] = "Bearer \(token)"
                                let body = #"{"channel":"chat","subject":"Printer \#(c)-\#(r) prints blank pages","message":"Every page is blank.","customer":{"id":"C-\#(c)"}}"#
                                let response = try await http.post("/api/intake/tickets", headers: headers, body: ByteBuffer(string: body))
                                guard response.status == .created else {
                                    fatalError("intake: a request was answered \(response.status): \(response.body.map { String(buffer: $0) } ?? "")")
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let stored = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket") ?? 0 }
        guard stored == clients * requests else { fatalError("intake: \(stored) tickets stored, \(clients * requests) posted") }
        let rate = Double(clients * requests) / elapsed
        rates[maxBatch] = rate
        let batches = await routes.service.commits.batches
        if maxBatch == 1 {
            emit(Figure(peer: "intake-unbatched", workload: "intake", metric: "tickets_per_s", value: rate, unit: "tickets/s"))
        } else {
            emit(Figure(workload: "intake", metric: "tickets_per_s", value: rate, unit: "tickets/s", ratio: rate / (rates[1] ?? rate)))
            emit(Figure(workload: "intake", metric: "requests_per_commit", value: Double(clients * requests) / Double(max(batches, 1)), unit: "requests"))
        }
    }
}
