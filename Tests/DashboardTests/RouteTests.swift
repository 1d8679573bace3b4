import Dashboard
import Foundation
import GRDB
import CoreMetrics
import Hummingbird
import HummingbirdTesting
import Prometheus
import Synchronization
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A store of one site with a few tickets, and a dashboard over it at a fixed time.
struct RouteFixture {
    static let start: UInt64 = 1_790_000_000_000
    let store: TicketDatabase
    let server: DashboardServer
    let now: Int64

    init() async throws {
        let clock = TestClock(Self.start)
        store = try memoryStore("north", role: .coordinator, clock: clock)
        let printer = try store.createTicket(TicketDraft(subject: "Printer offline", priority: .high))
        clock.advance(60_000)
        _ = try store.comment(printer.displayNumber, body: "Restarted the spooler.", kind: .agentReply, visibility: .public, actor: "anna")
        _ = try store.update(printer.displayNumber, [(.status, .text("solved"))])
        clock.advance(60_000)
        _ = try store.createTicket(TicketDraft(subject: "VPN <drops> & \"reconnects\"", priority: .urgent))
        let now = Int64(clock.now) + 1000
        self.now = now
        server = try await DashboardServer(database: store, now: { now })
        try await MetricIndex(store).refresh(now: now)
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: server.router()).test(.router, body)
    }
}

func object(_ buffer: ByteBuffer) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
}

@Suite struct RouteTests {
    @Test func summaryCountsTheSiteTickets() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/api/summary", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let json = try object(response.body)
                let totals = try #require(json["totals"] as? [String: Any])
                #expect(totals["created"] as? Int == 2)
                #expect(totals["solved"] as? Int == 1)
                #expect(totals["backlog"] as? Int == 1)
                let sites = try #require(json["sites"] as? [[String: Any]])
                #expect(sites.map { $0["site"] as? String } == ["north"])
                #expect(sites.first?["isLocal"] as? Bool == true)
                #expect(json["pendingFacts"] as? Int == 0)
            }
        }
    }

    @Test func metricsHonourFiltersAndPeriod() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/api/metrics?priority=urgent", method: .get) { response in
                #expect(response.status == .ok)
                let metrics = try #require(try object(response.body)["metrics"] as? [String: Any])
                #expect(metrics["created"] as? Int == 1)
                #expect(metrics["solved"] as? Int == 0)
                #expect((metrics["filter"] as? [String: Any])?["priority"] as? String == "urgent")
            }
            // A period that ends before the tickets were created counts none of them.
            try await client.execute(uri: "/api/metrics?from=2020-01-01&to=2020-02-01", method: .get) { response in
                let metrics = try #require(try object(response.body)["metrics"] as? [String: Any])
                #expect(metrics["created"] as? Int == 0)
                #expect(metrics["from"] as? String == "2020-01-01T00:00:00Z")
            }
            try await client.execute(uri: "/api/metrics", method: .get) { response in
                let metrics = try #require(try object(response.body)["metrics"] as? [String: Any])
                let speed = try #require(metrics["speed"] as? [String: Any])
                let frt = try #require((speed["firstResponse"] as? [String: Any])?["calendar"] as? [String: Any])
                // One reply, 60 s after creation.
                #expect(frt["count"] as? Int == 1)
                #expect(frt["medianMillis"] as? Int == 60_000)
            }
        }
    }

    @Test(arguments: [
        ("/api/metrics?days=0", "days"), ("/api/metrics?days=ten", "days"), ("/api/summary?tier=-1", "tier"),
        ("/api/metrics?priority=critical", "priority"), ("/?from=yesterday", "from"), ("/api/sites?colour=red", "colour"),
        ("/api/metrics?from=2025-02-01&to=2025-01-01", "from"),
    ])
    func badQueriesAreRefusedNamingTheParameter(uri: String, parameter: String) async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .badRequest)
                let json = try object(response.body)
                #expect(json["parameter"] as? String == parameter)
                #expect((json["error"] as? String)?.isEmpty == false)
            }
        }
    }

    /// `?site=nrth` used to show zeros everywhere, as if the site had no tickets (issue 22).
    @Test(arguments: ["/api/summary?site=nrth", "/api/metrics?site=nrth", "/api/series?site=nrth", "/export.csv?site=nrth", "/?site=nrth"])
    func anUnknownSiteIsRefusedListingTheKnownOnes(uri: String) async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .badRequest)
                let json = try object(response.body)
                #expect(json["parameter"] as? String == "site")
                let message = try #require(json["error"] as? String)
                #expect(message.contains("'nrth'") && message.contains("known sites: north"))
            }
            // A site the replica knows is shown.
            try await client.execute(uri: uri.replacingOccurrences(of: "nrth", with: "north"), method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// A browser gets a page saying what was wrong, not raw JSON; the API stays JSON whatever it accepts.
    @Test(arguments: [("/?site=nrth", "site", "known sites: north"), ("/?days=0", "days", "from 1 to 3650"),
                      ("/export.csv?priority=critical", "priority", "got &#39;critical&#39;")])
    func aBrowserGetsAPageForABadFilter(uri: String, parameter: String, says: String) async throws {
        let fixture = try await RouteFixture()
        let headers: HTTPFields = [.accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]
        try await fixture.test { client in
            try await client.execute(uri: uri, method: .get, headers: headers) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let html = String(buffer: response.body)
                #expect(html.contains("id=\"error\" data-parameter=\"\(parameter)\""))
                #expect(html.contains(says))
                #expect(html.contains("<a href=\"/\" id=\"whole-fleet\">"))
            }
            try await client.execute(uri: "/api/metrics?site=nrth", method: .get, headers: headers) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.contentType] == "application/json")
            }
        }
    }

    @Test func pageShowsSitesChartsAndEscapedText() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/?site=north&channel=%3Cscript%3E", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let html = String(buffer: response.body)
                #expect(html.contains("<tr data-site=\"north\">"))
                #expect(html.contains("id=\"chart-backlog\""))
                #expect(html.contains("id=\"chart-sla\""))
                #expect(html.filter { $0 == "<" }.count > 100)
                // A filter value is shown escaped, never as markup.
                #expect(html.contains("value=\"&lt;script&gt;\""))
                #expect(!html.contains("<script>\""))
            }
        }
    }

    @Test func pageShowsTheMirrorsLagWhenTheNodeRunsOne() async throws {
        let fixture = try await RouteFixture()
        // A server of its own per look: the page is shared between requests for a moment.
        func page() async throws -> String {
            let server = try await DashboardServer(database: fixture.store, now: { fixture.now })
            let html = Mutex("")
            try await Application(router: server.router()).test(.router) { client in
                try await client.execute(uri: "/", method: .get) { response in html.withLock { $0 = String(buffer: response.body) } }
            }
            return html.withLock { $0 }
        }
        #expect(try await !page().contains("id=\"mirror\""), "no mirror, no line")
        // What the Mirror module writes for a node's mirror 42 blocks behind, reported 2 s ago.
        try fixture.store.setLocalSetting(.mirror, to: """
            {"writtenAt": \(fixture.now - 2000), "status": {"target": "postgres://m@db:5432/r (schema tl, sslmode verify-full)",
             "connected": true, "behindBlocks": 42, "behindSeconds": 3.5, "cursors": {}, "batches": 1, "blocks": 2, "tickets": 3,
             "events": 4, "customers": 0, "articles": 0}}
            """)
        #expect(try await page().contains("id=\"mirror\">PostgreSQL mirror postgres://m@db:5432/r (schema tl, sslmode verify-full): 42 blocks (3 s) behind</p>"))
        // A report older than three heartbeats: the node stopped.
        try fixture.store.setLocalSetting(.mirror, to: """
            {"writtenAt": \(fixture.now - 60_000), "status": {"target": "postgres://m@db/r", "connected": true, "behindBlocks": 0, "behindSeconds": 0,
             "cursors": {}, "batches": 0, "blocks": 0, "tickets": 0, "events": 0, "customers": 0, "articles": 0}}
            """)
        #expect(try await page().contains("class=\"bad\" id=\"mirror\">PostgreSQL mirror postgres://m@db/r: not running"))
        // Not connected yet and nothing to count from: the lag is unknown (no behind keys), neither
        // 0 nor every block.
        try fixture.store.setLocalSetting(.mirror, to: """
            {"writtenAt": \(fixture.now - 1000), "status": {"target": "postgres://m@db/r", "connected": false, "lastError": "cannot connect",
             "cursors": {}, "batches": 0, "blocks": 0, "tickets": 0, "events": 0, "customers": 0, "articles": 0}}
            """)
        #expect(try await page().contains("class=\"bad\" id=\"mirror\">PostgreSQL mirror postgres://m@db/r: not connected (lag unknown): cannot connect</p>"))
    }

    @Test func csvHasOneLinePerSiteAndQuotesFields() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/export.csv", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/csv; charset=utf-8")
                let lines = String(buffer: response.body).split(separator: "\r\n")
                #expect(lines.count == 2)
                #expect(lines.first?.hasPrefix("site,role,backlog,created,solved") == true)
                #expect(lines.last?.hasPrefix("north,coordinator,1,2,1,") == true)
            }
            try await client.execute(uri: "/export.csv?table=metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("\r\ncreated,2\r\n"))
                #expect(text.contains("\r\nquality.firstContactResolution.part,1\r\n"))
            }
        }
    }

    @Test func prometheusTextHasOneGaugePerSite() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains("# TYPE tierline_backlog_tickets gauge"))
                #expect(text.contains("tierline_backlog_tickets{site=\"north\"} 1.0"))
                // Every sample line is `name{labels} value`.
                for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                    let parts = line.split(separator: " ")
                    #expect(parts.count == 2 && Double(parts[1]) != nil, "not a sample line: \(line)")
                }
            }
        }
    }

    @Test func seriesEndsWithTheBacklogOfToday() async throws {
        let fixture = try await RouteFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/api/series?days=7", method: .get) { response in
                let json = try object(response.body)
                let backlog = try #require(json["backlog"] as? [[String: Any]])
                #expect(backlog.count == 7 || backlog.count == 8)
                #expect(backlog.last?["value"] as? Double == 1)
                #expect(backlog.first?["value"] as? Double == 0)
            }
        }
    }
}

/// `promtool check metrics` refuses a family without `# HELP`: swift-metrics families made through
/// the described factory carry their text (issue 22: the ten sync counters had none).
@Suite struct DescribedMetricsFactoryTests {
    @Test func familiesWithHelpTextEmitIt() {
        let registry = PrometheusCollectorRegistry()
        let factory = DescribedMetricsFactory(registry: registry, help: ["demo_sessions_total": "Sessions started", "demo_open": "Sessions open now"])
        CoreMetrics.Counter(label: "demo_sessions_total", factory: factory).increment(by: 2)
        CoreMetrics.Meter(label: "demo_open", factory: factory).set(3)
        CoreMetrics.Counter(label: "demo_plain_total", factory: factory).increment()
        let text = registry.emitToString()
        #expect(text.contains("# HELP demo_sessions_total Sessions started\n# TYPE demo_sessions_total counter\ndemo_sessions_total 2"))
        #expect(text.contains("# HELP demo_open Sessions open now\n# TYPE demo_open gauge\ndemo_open 3"))
        // A label without text is made as swift-prometheus makes it.
        #expect(text.contains("# TYPE demo_plain_total counter"))
    }
}
