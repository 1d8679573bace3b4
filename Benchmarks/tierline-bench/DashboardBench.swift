import Desk
import Dashboard
import Escalation
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import SyncNode
import TicketModel
import TicketStore
import Workspace

/// The dashboard's figures at `sizes` tickets: deriving the facts, then the summary the page and
/// `/api/summary` answer, the full metric set, the charts' series; beside a plain SQLite GROUP BY
/// over the materialized ticket table in the same store (what a dashboard without facts would scan).
///
/// The tickets come from three sites as signed blocks, applied as a sync would apply them: created over
/// the last 90 days, each with a customer message and a pinned SLA policy; most get a public reply and
/// an assignee later, half are solved.
@MainActor func dashboardBench(sizes: [Int], root: String) async throws {
    for size in sizes {
        let folder = root + "/dashboard-\(size)"
        let coordinatorKey = SiteKey.generate()
        let (store, pool) = try openStoreAndPool(folder, site: "hub", role: .coordinator, key: coordinatorKey, synchronous: .off)
        let desk = try EscalationDesk(store: store)
        _ = try desk.publish(Data(benchConfig.utf8), file: "bench", actor: "bench")
        // The agent the workspace's pages are read as: published before the facts are derived (a new
        // configuration version has every ticket's facts derived again).
        _ = try AgentDesk(store: store).add(AgentDocument(name: "bench", version: 1, displayName: "Bench", site: "hub", role: .manager), actor: "bench")
        let library = try desk.library()
        let now = Int64(TicketDatabase.systemMillis())
        note("dashboard: writing \(size) tickets from 3 sites…")
        var generators = try ["north", "south", "east"].map { try SiteWriter(site: $0) }
        // A coordinator takes keys from its roster only (`learn(keys:)` is ignored once one is pinned):
        // the hub admits the three sites as `tierline roster add` does, or it refuses their blocks.
        for g in generators { try store.admit(site: g.site, key: g.key.publicKey, role: .site) }
        let perBlock = 20
        var written = 0
        var held = 0
        let fillSeconds = try timed {
            while written < size {
                let count = min(perBlock, size - written)
                var blocks: [Block] = []
                for g in generators.indices {
                    // Creation times spread over 90 days, oldest first, per site; the last solves (a day
                    // after creation) are still in the past, or the store would hold them as stamped ahead.
                    let created = now - 92 * 86_400_000 + Int64(Double(written) / Double(size) * 90 * 86_400_000)
                    blocks += try generators[g].tickets(count: count / 3 + (g < count % 3 ? 1 : 0), created: created, library: library)
                }
                // A refused block would only show later as tickets the facts never see: stop at the first.
                let report = try store.apply(blocks)
                if let refused = report.refused.first {
                    fatalError("dashboard: the hub refused \(refused.origin) seq \(refused.seq) (\(refused.code)): \(refused.reason)")
                }
                held = report.held
                written += count
            }
        }
        guard held == 0 else { fatalError("dashboard: the hub holds \(held) blocks back instead of applying them") }
        note("dashboard: deriving facts for \(size) tickets…")
        let index = try await MetricIndex(store)
        let queries = try await FleetQueries(store)
        var derived = 0
        let deriveSeconds = try await seconds { derived = try await index.refresh(now: now, batch: 1000).derived }
        let pending = try await index.pending()
        guard derived == size, pending == 0 else { fatalError("dashboard: derived \(derived) of \(size) tickets (\(pending) still pending)") }
        let period = Period.last(days: 30, now: now)
        func best(_ runs: Int = 5, _ work: () async throws -> Void) async throws -> Double {
            var times: [Double] = []
            for _ in 0..<runs { times.append(try await seconds { try await work() }) }
            return times.min()!
        }
        var summary: FleetSummary?
        let summarySeconds = try await best { summary = try await queries.summary(period: period, now: now) }
        let all = try await queries.metrics(period: Period(from: 0, to: now + 1), now: now)
        guard let summary, summary.totals.backlog == all.backlog.total, all.created == size else {
            fatalError("the summary's backlog does not add up to \(size) tickets")
        }
        let metricsSeconds = try await best { _ = try await queries.metrics(period: period, now: now) }
        let siteSeconds = try await best { _ = try await queries.metrics(MetricFilter(site: "north", priority: "high"), period: period, now: now) }
        let seriesSeconds = try await best { _ = try await queries.series(period: Period.last(days: 90, now: now)) }
        let plainSeconds = try await best {
            _ = try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT owningSite, status, COUNT(*) FROM ticket GROUP BY owningSite, status")
            }
        }
        // `tierline ticket list`'s first page (its default of 500 rows), newest first, over the whole
        // store and filtered by status and by site: through indexes, it should barely grow with the store.
        var listed = 0
        let listSeconds = try await best { listed = 0; try store.forEachTicket(limit: 500) { _ in listed += 1 } }
        let listStatusSeconds = try await best { try store.forEachTicket(status: .open, limit: 500) { _ in } }
        let listSiteSeconds = try await best { try store.forEachTicket(site: try SiteID("north"), limit: 500) { _ in } }
        guard listed == min(500, size) else { fatalError("ticket list gave \(listed) rows of \(min(500, size))") }
        // The workspace's first page: an agent's queue over the whole store, as the browser asks for it.
        let dashboard = try await DashboardServer(database: store)
        let workspace = try WorkspaceServer(store: store, dashboard: dashboard, intake: nil, bcryptCost: 4)
        let token = try AccessDesk(store: store, cost: 4).issueToken("bench", label: "bench", now: now)
        let app = Application(router: workspace.router())
        // The best of 5 of each page, timed inside the test client (its closure is @Sendable).
        let pageSeconds: [String: Double] = try await app.test(.router) { client in
            var out: [String: Double] = [:]
            for (name, path) in [("all", "/desk?view=all&site=all"), ("breached", "/desk?view=breached&site=all"), ("api", "/api/tickets?view=all&site=all")] {
                var runs: [Double] = []
                for _ in 0..<5 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                        guard response.status == .ok else { fatalError("\(path) answered \(response.status)") }
                    }
                    runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                out[name] = runs.min()
            }
            return out
        }
        // One ticket changes: what keeping the facts current costs per change.
        let one = try await pool.read { db in try String.fetchOne(db, sql: "SELECT displayNumber FROM ticket WHERE status != 'solved' LIMIT 1") } ?? ""
        _ = try store.comment(one, body: "Any news?", kind: .customerMessage, visibility: .public, actor: "customer")
        let incrementalSeconds = try await seconds { _ = try await index.refresh(now: now) }
        let w = "dashboard_\(size)"
        emit(Figure(workload: w, metric: "fill_tickets_per_s", value: Double(size) / fillSeconds, unit: "tickets/s"))
        emit(Figure(workload: w, metric: "derive_facts_tickets_per_s", value: Double(size) / deriveSeconds, unit: "tickets/s"))
        emit(Figure(workload: w, metric: "refresh_after_one_change_ms", value: incrementalSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "summary_ms", value: summarySeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "metrics_fleet_30d_ms", value: metricsSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "metrics_site_priority_30d_ms", value: siteSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "series_90d_ms", value: seriesSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "ticket_list_first_page_ms", value: listSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "ticket_list_open_first_page_ms", value: listStatusSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "ticket_list_site_first_page_ms", value: listSiteSeconds * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "workspace_first_page_ms", value: (pageSeconds["all"] ?? 0) * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "workspace_breached_page_ms", value: (pageSeconds["breached"] ?? 0) * 1000, unit: "ms"))
        emit(Figure(workload: w, metric: "workspace_api_list_ms", value: (pageSeconds["api"] ?? 0) * 1000, unit: "ms"))
        emit(Figure(peer: "sqlite", workload: w, metric: "group_by_site_status_ms", value: plainSeconds * 1000, unit: "ms"))
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// Seconds `work` takes.
func timed(_ work: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try work()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// One site writing signed blocks of new tickets and, later, their replies and solves.
struct SiteWriter {
    let site: SiteID
    let key = SiteKey.generate()
    var seq: UInt64 = 0
    var number: UInt64 = 0
    var clock = HybridClock(last: .zero)
    var vector = VersionVector()

    init(site: String) throws { self.site = try SiteID(site) }

    mutating func block(_ changes: [Change], at millis: Int64) throws -> Block {
        seq += 1
        let hlc = try clock.now(wall: UInt64(millis))
        let block = try Block.make(origin: site, seq: seq, hlc: hlc, deps: vector, changes: changes, key: key)
        vector[site] = seq
        return block
    }

    /// `count` tickets created at `created`: one block of creations, one of replies an hour later,
    /// one of solves a day later.
    mutating func tickets(count: Int, created: Int64, library: ConfigLibrary) throws -> [Block] {
        guard count > 0 else { return [] }
        var creations: [Change] = [], replies: [Change] = [], solves: [Change] = []
        let priorities: [Priority] = [.low, .normal, .normal, .high, .urgent]
        let tiers = ["bronze", "silver", "gold", "platinum"]
        for _ in 0..<count {
            number += 1
            let id = UUIDv7.make(millis: UInt64(created), random: TicketDatabase.randomBytes(10))
            let ref = EntityRef.ticket(id)
            let priority = priorities[Int(number) % priorities.count]
            let tier = tiers[Int(number / 3) % tiers.count]
            creations += [Change(ref, .create(number: number)), Change(ref, .set(.subject, .text("Ticket \(number) at \(site)"))),
                          Change(ref, .set(.status, .text("new"))), Change(ref, .set(.priority, .text(priority.rawValue))),
                          Change(ref, .set(.channel, .text(["email", "chat", "phone"][Int(number) % 3]))),
                          Change(ref, .set(.custom("customer_tier"), .text(tier))),
                          Change(ref, .event(TicketEvent(id: UUID(), kind: .customerMessage, actor: "customer", visibility: .public, body: "Help")))]
            if let pin = library.apply(to: MatchFacts(priority: priority, customerTier: tier, site: site), at: created) {
                creations.append(Change(ref, .event(TicketEvent(id: UUID(), kind: .escalation, actor: "tierline", visibility: .internal, body: pin.encoded()))))
            }
            if number % 5 != 0 {
                replies += [Change(ref, .event(TicketEvent(id: UUID(), kind: .agentReply, actor: "agent", visibility: .public, body: "On it"))),
                            Change(ref, .set(.assignee, .text("agent-\(number % 40)")))]
            }
            if number % 2 == 0 { solves.append(Change(ref, .set(.status, .text("solved")))) }
        }
        var out: [Block] = []
        for (changes, at) in [(creations, created), (replies, created + 3_600_000), (solves, created + 86_400_000)] {
            for part in BlockPlanner.split(changes) where !part.isEmpty { out.append(try block(part, at: at)) }
        }
        return out
    }
}

/// The SLA configuration the escalation and dashboard workloads publish: a business calendar, a ladder
/// and a policy with three clocks.
let benchConfig = #"""
{"calendars": [{"name": "office", "version": 1, "timezone": "Europe/Berlin",
                "weekly": {"mon": ["08:00-12:30", "13:30-17:00"], "tue": ["08:00-17:00"], "wed": ["08:00-17:00"], "thu": ["08:00-17:00"], "fri": ["08:00-16:00"]},
                "holidays": ["12-25", "12-26", "01-01"]}],
 "ladders": [{"name": "std", "version": 1, "loops": 1, "ackTimeout": "30m", "calendar": "office", "pauseWhen": ["pending_customer"],
              "levels": [{"delay": "0", "targets": ["role:lead"], "assignment": "notify"},
                         {"delay": "30m", "targets": ["tier2@central"], "assignment": "reassign", "actions": ["raise_priority"]}]}],
 "policies": [{"name": "std", "version": 1, "position": 1, "calendar": "office", "ladder": "std",
               "clocks": {"firstResponse": {"targets": {"low": "16h", "normal": "8h", "high": "2h", "urgent": "30m"}, "warnAt": 75, "onBreach": ["escalate"]},
                          "resolution": {"targets": {"low": "80h", "normal": "40h", "high": "16h", "urgent": "8h"}, "pauseWhen": ["pending_customer"]},
                          "timeToOwn": {"targets": {"low": "8h", "normal": "4h", "high": "1h", "urgent": "15m"}}}}]}
"""#
