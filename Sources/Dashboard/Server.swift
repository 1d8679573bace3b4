import Escalation
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import TicketStore

/// What a dashboard request asks for: a period and a filter, read from the query string.
///
/// `days` (1–3650, default 30) counts back from now; `from` and `to` (`YYYY-MM-DD` or ISO 8601, UTC)
/// override it. Filters: `site`, `tier`, `channel`, `priority`, `customer_tier`, `group`, `category`.
public struct DashboardQuery: Sendable {
    public var period: Period
    public var filter: MetricFilter
    public var days: Int
    /// `from` and `to` as given, kept for links.
    var custom: (from: String?, to: String?)?

    public init(period: Period, filter: MetricFilter = MetricFilter(), days: Int = 30) {
        self.period = period
        self.filter = filter
        self.days = days
    }

    /// Reads the query string; a bad value is a ``DashboardQueryError`` naming the parameter.
    public init(_ given: [String: String], now: Int64) throws(DashboardQueryError) {
        // An empty field of the page's form means "any".
        let parameters = given.filter { !$0.value.isEmpty }
        let known: Set = ["days", "from", "to", "site", "tier", "channel", "priority", "customer_tier", "group", "category", "table"]
        if let unknown = parameters.keys.sorted().first(where: { !known.contains($0) }) {
            throw DashboardQueryError(parameter: unknown, message: "unknown parameter; known: \(known.sorted().joined(separator: ", "))")
        }
        days = 30
        if let text = parameters["days"] {
            guard let value = Int(text), (1...3650).contains(value) else {
                throw DashboardQueryError(parameter: "days", message: "expected a whole number of days from 1 to 3650, got '\(text)'")
            }
            days = value
        }
        period = Period.last(days: days, now: now)
        if let text = parameters["from"] { period.from = try Self.time(text, "from") }
        if let text = parameters["to"] { period.to = try Self.time(text, "to") }
        guard period.from < period.to else {
            throw DashboardQueryError(parameter: "from", message: "the period must start before it ends")
        }
        guard period.to - period.from <= 3650 * 86_400_000 else {
            throw DashboardQueryError(parameter: "from", message: "the period is longer than 3650 days; choose a shorter one")
        }
        if parameters["from"] != nil || parameters["to"] != nil { custom = (parameters["from"], parameters["to"]) }
        var tier: Int?
        if let text = parameters["tier"] {
            guard let value = Int(text), value >= 0 else {
                throw DashboardQueryError(parameter: "tier", message: "expected a support tier (0 = first line, 1, 2, …), got '\(text)'")
            }
            tier = value
        }
        if let text = parameters["priority"], !["low", "normal", "high", "urgent"].contains(text) {
            throw DashboardQueryError(parameter: "priority", message: "expected low, normal, high or urgent, got '\(text)'")
        }
        filter = MetricFilter(site: parameters["site"], tier: tier, channel: parameters["channel"], priority: parameters["priority"],
                              customerTier: parameters["customer_tier"], group: parameters["group"], category: parameters["category"])
    }

    static func time(_ text: String, _ name: String) throws(DashboardQueryError) -> Int64 {
        let full = ISO8601DateFormatter()
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = full.date(from: text) ?? day.date(from: text) else {
            throw DashboardQueryError(parameter: name, message: "expected a date (YYYY-MM-DD) or an ISO 8601 time, got '\(text)'")
        }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    /// The query string that reproduces this query (for links), with `changes` applied.
    func link(_ changes: [String: String?] = [:]) -> String {
        var items: [String: String] = ["days": String(days)]
        if let v = custom?.from { items["from"] = v }
        if let v = custom?.to { items["to"] = v }
        if let v = filter.site { items["site"] = v }
        if let v = filter.tier { items["tier"] = String(v) }
        if let v = filter.channel { items["channel"] = v }
        if let v = filter.priority { items["priority"] = v }
        if let v = filter.customerTier { items["customer_tier"] = v }
        if let v = filter.group { items["group"] = v }
        if let v = filter.category { items["category"] = v }
        for (key, value) in changes { items[key] = value }
        var components = URLComponents()
        components.queryItems = items.keys.sorted().map { URLQueryItem(name: $0, value: items[$0]) }
        return components.percentEncodedQuery ?? ""
    }
}

public struct DashboardQueryError: Error, Sendable, CustomStringConvertible {
    public var parameter: String
    public var message: String
    public var description: String { "query parameter '\(parameter)': \(message)" }
}

/// Everything `/api/metrics` answers.
public struct MetricsReply: Sendable, Encodable {
    public var generatedAt: String
    public var asOf: String?
    public var pendingFacts: Int
    public var metrics: MetricSet
}

/// The charts' data: `/api/series`.
public struct SeriesReply: Sendable, Encodable {
    public var generatedAt: String
    public var backlog: [SeriesPoint]
    public var escalationRate: [SeriesPoint]
}

/// The node's one HTTP server: the dashboard page, its JSON API, a CSV export and `/metrics`.
///
/// Every route reads through ``FleetQueries``, awaiting SQLite with GRDB's async API: no request
/// blocks an event loop or a cooperative thread.
public struct DashboardServer: Sendable {
    public let database: TicketDatabase
    /// Holds the sync counters (given to the node) and the help-desk gauges set at each scrape.
    public let registry: PrometheusCollectorRegistry
    public let queries: FleetQueries
    let index: MetricIndex
    let now: @Sendable () -> Int64
    /// Every answer of the dashboard's routes and `/metrics` is computed through it: identical
    /// queries share one computation, and only a few run at once (``ComputationLimits``).
    public let computations: SharedComputations<Response>

    /// Attaches to `database`, applying the dashboard's migrations.
    /// - Parameter limits: how many computations run or wait at once, and how long an answer is shared.
    /// - Throws: a `StoreError` if a newer Tierline's dashboard migrated the store; SQLite errors.
    public init(database: TicketDatabase, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                limits: ComputationLimits = ComputationLimits(),
                now: @escaping @Sendable () -> Int64 = { Int64(TicketDatabase.systemMillis()) }) async throws {
        self.database = database
        self.registry = registry
        self.index = try await MetricIndex(database)
        self.queries = try await FleetQueries(database)
        self.now = now
        self.computations = SharedComputations(limits: limits)
    }

    /// The dashboard's routes on a router of its own (for tests).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        register(on: router)
        router.get("/metrics") { _, _ in try await self.metricsResponse() }
        return router
    }

    /// The Prometheus scrape as a response (shared and bounded like the dashboard's answers).
    public func metricsResponse() async throws -> Response {
        try await bounded(key: "/metrics") {
            let text = try await self.scrape()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// `compute`'s answer through ``computations``; a `503` with `Retry-After` when they are all busy.
    /// - Parameter fresh: not a shared answer (the request said `Cache-Control: no-cache` or `max-age=0`).
    func bounded(key: String, fresh: Bool = false, _ compute: @escaping @Sendable () async throws -> Response) async throws -> Response {
        do {
            return try await computations.value(for: key, fresh: fresh, compute)
        } catch let busy as ComputationsBusy {
            var response = errorResponse(.serviceUnavailable, parameter: nil, message: busy.description)
            response.headers[.retryAfter] = "1"
            return response
        }
    }

    /// Adds the dashboard page, its JSON API and the CSV export to `router` (a group behind the
    /// workspace's sign-in in a node). `/metrics` is the caller's to mount.
    public func register<Methods: RouterMethods>(on router: Methods) {
        router.get("/") { request, _ in try await self.page(request) }
        router.get("/api/summary") { request, _ in
            try await self.answer(request) { query, now in
                try json(try await self.queries.summary(period: query.period, now: now, site: query.filter.site))
            }
        }
        router.get("/api/sites") { request, _ in
            try await self.answer(request) { query, now in
                try json(try await self.queries.summary(period: query.period, now: now, site: query.filter.site).sites)
            }
        }
        router.get("/api/metrics") { request, _ in
            try await self.answer(request) { query, now in try json(try await self.metrics(query, now: now)) }
        }
        router.get("/api/series") { request, _ in
            try await self.answer(request) { query, now in
                let series = try await self.queries.series(period: query.period, site: query.filter.site)
                return try json(SeriesReply(generatedAt: SLAReport.iso(now), backlog: series.backlog, escalationRate: series.escalationRate))
            }
        }
        router.get("/export.csv") { request, _ in
            try await self.answer(request) { query, now in
                let csv = request.uri.queryParameters.get("table") == "metrics"
                    ? CSVExport.metrics(try await self.metrics(query, now: now))
                    : CSVExport.sites(try await self.queries.summary(period: query.period, now: now, site: query.filter.site))
                var headers = HTTPFields()
                headers[.contentType] = "text/csv; charset=utf-8"
                headers[.contentDisposition] = "attachment; filename=\"tierline-\(request.uri.queryParameters.get("table") == "metrics" ? "metrics" : "sites").csv\""
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: csv)))
            }
        }
    }

    func metrics(_ query: DashboardQuery, now: Int64) async throws -> MetricsReply {
        let overview = try await queries.overview(query.filter, period: query.period, now: now, series: false)
        let summary = overview.summary
        return MetricsReply(generatedAt: summary.generatedAt, asOf: summary.asOf, pendingFacts: summary.pendingFacts, metrics: overview.metrics)
    }

    /// Parses the query and runs `body` through ``bounded(key:_:)``, keyed by the route and its
    /// parameters; a bad query, or a site this replica does not know, is a 400 naming the parameter:
    /// JSON for the API (and for clients that do not ask for HTML), a page for a browser.
    func answer(_ request: Request, _ body: @escaping @Sendable (DashboardQuery, Int64) async throws -> Response) async throws -> Response {
        let now = now()
        let given = parameters(request)
        let wantsPage = !request.uri.path.hasPrefix("/api/") && (request.headers[.accept] ?? "").contains("text/html")
        let query: DashboardQuery
        do {
            query = try DashboardQuery(given, now: now)
        } catch {
            return badQuery(error, page: wantsPage)
        }
        let key = request.uri.path + "?" + given.sorted { $0.key < $1.key }.map { "\($0.key.debugDescription)=\($0.value.debugDescription)" }.joined(separator: "&")
            + (wantsPage ? "#page" : "")
        let cacheControl = request.headers[.cacheControl]?.lowercased() ?? ""
        let fresh = cacheControl.contains("no-cache") || cacheControl.contains("max-age=0")
        return try await bounded(key: key, fresh: fresh) {
            if let site = query.filter.site {
                // A site nobody knows would show zeros everywhere, as if it had no tickets.
                let known = try await self.queries.sites(now: now)
                guard known.contains(site) else {
                    let listed = known.isEmpty ? "none yet" : known.joined(separator: ", ")
                    return self.badQuery(DashboardQueryError(parameter: "site", message: "no site '\(site)' is known here; known sites: \(listed)"),
                                         page: wantsPage)
                }
            }
            return try await body(query, now)
        }
    }

    /// A 400 for a bad query: the JSON error, or for a browser a page saying what was wrong.
    func badQuery(_ error: DashboardQueryError, page: Bool) -> Response {
        guard page else { return errorResponse(.badRequest, parameter: error.parameter, message: error.message) }
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .badRequest, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPage.badQuery(error))))
    }

    func page(_ request: Request) async throws -> Response {
        try await answer(request) { query, now in
            let o = try await self.queries.overview(query.filter, period: query.period, now: now)
            let outbox = try await self.database.outboxSummary()
            let mirror = try await self.database.writer.read { db in try MirrorReport.read(db) }
            let html = DashboardPage(query: query, summary: o.summary, metrics: o.metrics, backlog: o.backlog, trend: o.escalationRate,
                                     outbox: outbox, mirror: mirror, now: now).render()
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }

    /// The Prometheus text: the registry's sync counters plus help-desk gauges set from the facts now.
    public func scrape() async throws -> String {
        let now = now()
        let summary = try await queries.summary(period: Period.last(days: 1, now: now), now: now)
        for site in summary.sites {
            let labels = [("site", site.site)]
            registry.makeGauge(name: "tierline_backlog_tickets", labels: labels, help: "Open tickets owned by the site").set(Double(site.backlog))
            registry.makeGauge(name: "tierline_sla_breached_now", labels: labels, help: "Running SLA clocks past their deadline").set(Double(site.breachedNow))
            registry.makeGauge(name: "tierline_sla_at_risk_now", labels: labels, help: "Running SLA clocks past their warning point").set(Double(site.atRiskNow))
            if let lag = site.lagMillis {
                registry.makeGauge(name: "tierline_replication_lag_seconds", labels: labels, help: "Now minus the newest block stamp from the site")
                    .set(Double(lag) / 1000)
            }
            registry.makeGauge(name: "tierline_blocks_pending_in", labels: labels, help: "Blocks from the site held back here").set(Double(site.blocksPendingIn))
            registry.makeGauge(name: "tierline_blocks_quarantined", labels: labels, help: "Blocks from the site stamped too far ahead")
                .set(Double(site.quarantined))
            registry.makeGauge(name: "tierline_sync_diverged", labels: labels,
                               help: "1 when a peer showed this replica another block at one seq of the site (two histories), else 0")
                .set(Double(site.divergedAtSeq == nil ? 0 : 1))
        }
        registry.makeGauge(name: "tierline_metric_facts_pending", help: "Tickets whose dashboard facts wait to be derived")
            .set(Double(summary.pendingFacts))
        let outbox = try await database.outboxSummary()
        for (state, count) in [("pending", outbox.pending), ("sent", outbox.sent), ("dead", outbox.dead)] {
            registry.makeGauge(name: "tierline_outbox_deliveries", labels: [("state", state)],
                               help: "Deliveries (e-mails, webhooks) in this node's outbox by state; dead ones wait for `tierline outbox retry`")
                .set(Double(count))
        }
        return registry.emitToString()
    }

    func parameters(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { out[String(key)] = String(value) }
        return out
    }

    func errorResponse(_ status: HTTPResponse.Status, parameter: String?, message: String) -> Response {
        let body = (try? JSONEncoder().encode(["error": message, "parameter": parameter].compactMapValues { $0 })) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The service that keeps the dashboard's facts current, for a server that mounts ``register(on:)``.
    /// - Parameter onDerived: told the tickets whose facts were derived (`nil`: too many to list), so that
    ///   pages listing tickets by their facts (the SLA queues) can refresh.
    public func refresher(everyMillis: Int, logger: Logger, onDerived: @escaping @Sendable ([String]?) -> Void = { _ in }) -> MetricRefresher {
        let computations = computations
        return MetricRefresher(index: index, everyMillis: everyMillis, logger: logger, now: now, onDerived: { tickets in
            await computations.invalidate()
            onDerived(tickets)
        })
    }

    /// An application serving ``router()`` on `host:port`, refreshing the facts every `refreshMillis`.
    /// - Parameter extend: adds further routes to the same server (the intake API).
    public func application(host: String, port: Int, refreshMillis: Int = 1000, logger: Logger,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
                            extend: (Router<BasicRequestContext>) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = router()
        extend(router)
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "tierline"),
                    services: [refresher(everyMillis: refreshMillis, logger: logger)],
                    onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }
}

func json(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

/// Keeps the dashboard's facts current: derives listed tickets, then waits `everyMillis`.
public struct MetricRefresher: Service {
    let index: MetricIndex
    let everyMillis: Int
    let logger: Logger
    let now: @Sendable () -> Int64
    /// Called after a refresh that derived facts (the dashboard's shared answers are stale), with the
    /// tickets derived (`nil`: too many to list).
    let onDerived: @Sendable ([String]?) async -> Void

    public init(index: MetricIndex, everyMillis: Int, logger: Logger, now: @escaping @Sendable () -> Int64,
                onDerived: @escaping @Sendable ([String]?) async -> Void = { _ in }) {
        self.index = index
        self.everyMillis = everyMillis
        self.logger = logger
        self.now = now
        self.onDerived = onDerived
    }

    public func run() async throws {
        let stopping = Atomic<Bool>(false)
        // What the facts feed held when this started: later changes are told to `onDerived`, whoever
        // derived them (this refresher, or a mirror deriving on the same store).
        var told = (try? await index.feedHead()) ?? 0
        // Told once until it changes: a refresh every second would repeat it every second.
        var indexError: String?
        try await withGracefulShutdownHandler {
            while !Task.isCancelled && !stopping.load(ordering: .relaxed) {
                do {
                    let report = try await index.refresh(now: now(), shouldContinue: { !stopping.load(ordering: .relaxed) })
                    if report.derived > 0 {
                        logger.debug("dashboard facts derived", metadata: ["tickets": "\(report.derived)"])
                    }
                    let changed = try await index.changedTickets(after: told, limit: MetricIndex.RefreshReport.listedLimit)
                    if changed.cursor != told {
                        told = changed.cursor
                        await onDerived(changed.tickets)
                    }
                    for failure in report.failed.prefix(5) {
                        logger.error("dashboard facts of ticket \(failure.id) could not be derived: \(failure.error)")
                    }
                    if let problem = report.indexError, problem != indexError {
                        logger.error("dashboard fact indexes could not be built again; the dashboard's queries scan until they are: \(problem)")
                    }
                    indexError = report.indexError
                } catch is CancellationError {
                    // The node is stopping (or failed to start): not a failure of the facts.
                    break
                } catch {
                    logger.error("dashboard facts could not be derived: \(error)")
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(self.everyMillis)) }
            }
        } onGracefulShutdown: {
            stopping.store(true, ordering: .relaxed)
        }
    }
}
