import Desk
import Dashboard
import FaultProxy
import Foundation
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import SyncNode
import TicketModel
import TicketStore
import Workspace

/// One site of the demo fleet: its store on disk and, while it runs, its node.
struct Member {
    var name: String
    var directory: StoreDirectory
    var db: TicketDatabase
    var key: SiteKey
    var node: SyncNode?
    var task: Task<Void, any Error>?

    /// The help desk over this member's store: how the demo's agents work.
    var desk: HelpDesk { get throws { try HelpDesk(store: db) } }
}

/// The running parts of the demo fleet, stopped in one place whatever happens.
///
/// All of it is real: SQLite files, TCP on 127.0.0.1, zlib change sets, signed blocks, the
/// project's fault-injecting proxy on south's link, and the dashboard's HTTP server.
final class Fleet: @unchecked Sendable {
    var hub: Member
    var north: Member
    var south: Member
    var laptop: Member
    var hubAddress = Endpoint(host: "127.0.0.1", port: 0)
    /// South's link to the hub runs through this proxy, so the demo can cut it while both sides run.
    var southLink: FaultProxy?
    var dashboardGroup: ServiceGroup?
    var dashboardTask: Task<Void, any Error>?
    let logger: Logger
    /// The folder holding the four stores.
    let folder: String

    init(folder: String) throws {
        self.folder = folder
        func make(_ site: String, _ role: SiteRole) throws -> Member {
            let directory = StoreDirectory(path: folder + "/" + site)
            let db = try directory.create(site: try SiteID(site), role: role)
            return Member(name: site, directory: directory, db: db, key: try directory.loadKey())
        }
        hub = try make("hub", .coordinator)
        north = try make("north", .site)
        south = try make("south", .site)
        laptop = try make("laptop-anna", .laptop)
        // The hub's roster admits the other three; each pins the hub's key, as an operator would at setup.
        let hubKey = try hub.db.identity().publicKey
        let others = [north, south, laptop]
        try hub.db.editRoster { roster in
            for member in others {
                let me = try member.db.identity()
                roster.sites.append(Roster.Member(site: me.site, key: me.publicKey, role: me.role))
            }
        }
        for member in others { try member.db.pinCoordinator(key: hubKey) }
        var logger = Logger(label: "tierline.demo")
        logger.logLevel = .critical
        self.logger = logger
    }

    var running: [Member] { [hub, north, south] }

    /// Starts the hub (listening on a free port, with the dashboard's registry for its counters),
    /// the proxy for south's link, and north and south dialing the hub.
    func start(registry: PrometheusCollectorRegistry?) async throws {
        let metrics = registry.map { SyncMetrics(factory: DescribedMetricsFactory(registry: $0, help: SyncMetrics.help)) }
        guard let address = try await launch(&hub, listen: true, peers: [], metrics: metrics) else {
            throw ConfigurationError("the hub did not bind a port")
        }
        hubAddress = address
        let proxy = try FaultProxy(configuration: FaultProxyConfiguration(listen: ProxyAddress(host: "127.0.0.1", port: 0),
                                                                      upstream: ProxyAddress(host: address.host, port: address.port)),
                                   logger: logger)
        let proxyAddress = try await proxy.start()
        southLink = proxy
        _ = try await launch(&north, listen: false, peers: [address], metrics: nil)
        _ = try await launch(&south, listen: false, peers: [Endpoint(host: "127.0.0.1", port: proxyAddress.port ?? 0)], metrics: nil)
    }

    func launch(_ member: inout Member, listen: Bool, peers: [Endpoint], metrics: SyncMetrics?) async throws -> Endpoint? {
        let config = NodeConfiguration {
            $0.listen = listen ? Endpoint(host: "127.0.0.1", port: 0) : nil
            $0.peers = peers
            ($0.pollMillis, $0.reconnectMinMillis, $0.reconnectMaxMillis, $0.escalationMillis) = (100, 100, 500, 200)
        }
        let node = try SyncNode(store: member.db, key: member.key, configuration: config, logger: logger,
                                metrics: metrics ?? SyncMetrics())
        member.node = node
        let address = try await node.bind()
        member.task = Task { try await node.run() }
        return address?.port.map { Endpoint(host: "127.0.0.1", port: $0) }
    }

    /// Serves the hub's workspace (sign-in, the dashboard behind it, `/metrics`) on `endpoint`; if
    /// that port is taken, on a free one. Returns the address it serves on.
    func startDashboard(_ server: WorkspaceServer, at endpoint: Endpoint, say: (String) -> Void) async throws -> String {
        do {
            return try await serveDashboard(server, at: endpoint)
        } catch let error as DashboardBindError where endpoint.port != 0 {
            say("   (\(endpoint) is taken: \(error.message); serving the dashboard on a free port instead)")
            return try await serveDashboard(server, at: Endpoint(host: endpoint.host, port: 0))
        }
    }

    private func serveDashboard(_ server: WorkspaceServer, at endpoint: Endpoint) async throws -> String {
        let port = Mutex<Int?>(nil)
        let app = server.application(host: endpoint.host, port: endpoint.port, refreshMillis: 1000, logger: logger) { bound in
            port.withLock { $0 = bound }
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        // A bind failure ends the group's run with the error.
        let failure = Mutex<String?>(nil)
        let task = Task {
            do { try await group.run() } catch {
                failure.withLock { $0 = "\(error)" }
                throw error
            }
        }
        // Kept at once, so `shutdown()` stops it whatever happens next (a cancel, a timeout).
        dashboardGroup = group
        dashboardTask = task
        // A bound, not a wait: the dashboard binds in milliseconds; a machine with every core busy
        // must not fail the demo.
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(60) {
            if let bound = port.withLock({ $0 }) {
                return "http://\(endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host):\(bound)/"
            }
            if let failure = failure.withLock({ $0 }) {
                dashboardGroup = nil
                dashboardTask = nil
                throw DashboardBindError(message: failure)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw DashboardBindError(message: "the dashboard did not start within 60 s")
    }

    func stop(_ member: inout Member) async {
        member.node?.shutdown()
        _ = try? await member.task?.value
        member.node = nil
        member.task = nil
    }

    /// Stops every node, the proxy and the dashboard; safe to call more than once.
    func shutdown() async {
        await stop(&north)
        await stop(&south)
        await stop(&hub)
        await southLink?.stop()
        southLink = nil
        if let group = dashboardGroup {
            await group.triggerGracefulShutdown()
            _ = try? await dashboardTask?.value
            dashboardGroup = nil
        }
    }

    /// Waits until `members` hold equal digests, up to `seconds` (a generous bound: it returns as soon as
    /// they agree, within a second or two on an idle machine); returns how long it took.
    func converge(_ members: [Member], within seconds: Double = 180) async throws -> Int {
        let started = Date()
        while Date().timeIntervalSince(started) < seconds {
            if Set(try members.map { try $0.db.digest() }).count == 1 {
                return Int(Date().timeIntervalSince(started) * 1000)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ConfigurationError("the demo sites \(members.map(\.name).joined(separator: ", ")) did not converge within \(Int(seconds)) s")
    }
}

struct DashboardBindError: Error {
    var message: String
}
