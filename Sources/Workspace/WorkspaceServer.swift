import Dashboard
import Desk
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import HummingbirdCore
import Intake
import Logging
import NIOCore
import ServiceLifecycle
import TicketModel
import TicketStore

/// How the node's HTTP server treats its clients (node.json's `workspace` section).
public struct WorkspaceSettings: Sendable, Equatable {
    /// A bearer token `/metrics` requires; `nil` leaves it open (for a Prometheus on the same host).
    public var metricsToken: String?
    /// Marks the session cookie `Secure`: set it when agents reach the node through an HTTPS proxy.
    public var secureCookies: Bool
    /// A connection with no request for this long is closed.
    public var idleTimeoutMillis: Int
    /// A connection whose request head has not fully arrived this long after it opened, or after
    /// the previous response, or whose body has not this long after its head, is closed (``HeaderTimeoutHandler``).
    public var headerTimeoutMillis: Int
    /// The most connections served at once; past it, new ones wait in the listen backlog.
    public var maxConnections: Int
    /// How long the node may go without news from its hub before the workspace's banner says so.
    public var hubQuietMillis: Int
    /// The most live pages (event streams, `/api/events`) open at once; past it the stream answers 503.
    public var maxEventStreams: Int

    public init(metricsToken: String? = nil, secureCookies: Bool = false, idleTimeoutMillis: Int = 60_000, headerTimeoutMillis: Int = 10_000,
                maxConnections: Int = 4_096, hubQuietMillis: Int = 60_000, maxEventStreams: Int = 256) {
        self.metricsToken = metricsToken
        self.secureCookies = secureCookies
        self.idleTimeoutMillis = idleTimeoutMillis
        self.headerTimeoutMillis = headerTimeoutMillis
        self.maxConnections = maxConnections
        self.hubQuietMillis = hubQuietMillis
        self.maxEventStreams = maxEventStreams
    }
}

/// The node's one HTTP server: the agent workspace and its ticket API, the dashboard, the intake API
/// and `/metrics`, behind one gate.
///
/// | routes | who |
/// |---|---|
/// | `/login`, `/logout`, `/static/*` | anyone |
/// | `/api/intake/*`, `/api/kb/search` | an integration token (`tierline intake token add`) |
/// | `/metrics` | anyone, or the `metricsToken` when set |
/// | `/desk*`, `/api/tickets*`, `/api/events` | a signed-in agent |
/// | `/`, `/api/summary`, `/api/sites`, `/api/metrics`, `/api/series`, `/export.csv` | an agent with the `dashboard` permission |
public struct WorkspaceServer: Sendable {
    public let store: TicketDatabase
    public let dashboard: DashboardServer
    public let intake: IntakeRoutes?
    public let access: AccessDesk
    public let settings: WorkspaceSettings
    /// What tells open pages that tickets changed (`/api/events`); ``application(host:port:refreshMillis:logger:onRunning:)`` runs it.
    public let feed: ChangeFeed
    let pages: Pages
    let now: @Sendable () -> Int64

    /// - Parameter connectedSites: the sites a sync session is open with now (`SyncNode.connectedSites`),
    ///   so that a quiet session with the hub counts as hearing from it.
    public init(store: TicketDatabase, dashboard: DashboardServer, intake: IntakeRoutes?, settings: WorkspaceSettings = WorkspaceSettings(),
                bcryptCost: UInt8 = 12, now: @escaping @Sendable () -> Int64 = { Int64(TicketDatabase.systemMillis()) },
                connectedSites: @escaping @Sendable () -> Set<SiteID> = { [] }) throws {
        self.store = store
        self.dashboard = dashboard
        self.intake = intake
        self.settings = settings
        self.access = try AccessDesk(store: store, cost: bcryptCost)
        self.pages = Pages(site: try store.identity().site.rawValue)
        self.now = now
        self.feed = ChangeFeed(store: store, settings: ChangeFeed.Settings(hubQuietMillis: settings.hubQuietMillis, maxStreams: settings.maxEventStreams),
                               connectedSites: connectedSites, now: now)
    }

    public func router() -> Router<AgentContext> {
        let router = Router(context: AgentContext.self)
        router.add(middleware: SecurityHeaders())
        router.add(middleware: LiveVersion(feed: feed))
        router.add(middleware: Authenticate(access: access, now: now))
        SignInRoutes(access: access, pages: pages, throttle: SignInThrottle(), secureCookies: settings.secureCookies, now: now).register(on: router)
        StaticFiles.register(on: router)
        intake?.register(on: router)
        router.get("/metrics") { request, _ in
            if let expected = settings.metricsToken {
                let presented = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
                guard constantTimeEqual(presented, expected) else {
                    return WorkspaceError(.unauthorized, field: "Authorization", "send Authorization: Bearer with the node's metrics token (node.json workspace.metricsTokenFile)").response
                }
            }
            return try await dashboard.metricsResponse()
        }
        let managers = router.group().add(middleware: RequireAgent(permission: .dashboard, pages: pages))
        dashboard.register(on: managers)
        let agents = router.group().add(middleware: RequireAgent(permission: .work, pages: pages))
        let queues = Queues(store: store, facts: dashboard.queries, site: pages.site)
        ReadRoutes(queues: queues, now: now).register(on: agents)
        DeskPages(queues: queues, pages: pages, now: now).register(on: agents)
        EventStream(feed: feed).register(on: agents)
        TicketActions(store: store, now: now).register(on: agents)
        return router
    }

    /// An application serving ``router()`` on `host:port`, with the dashboard's fact refresher and the change feed.
    ///
    /// Bounded by ``settings``: at most `maxConnections` connections are accepted at once (the
    /// rest wait in the kernel's backlog, so the HTTP port cannot take every file descriptor the
    /// sync port needs), a connection must send each request head within `headerTimeoutMillis`,
    /// and one idle for `idleTimeoutMillis` is closed.
    public func application(host: String, port: Int, refreshMillis: Int = 1000, logger: Logger,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "tierline",
                                                     availableConnectionsDelegate: MaximumAvailableConnections(settings.maxConnections, logger: logger))
        let headerTimeout = TimeAmount.milliseconds(Int64(settings.headerTimeoutMillis))
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [HeaderTimeoutHandler(timeout: headerTimeout, logger: logger)],
                                               idleTimeout: .milliseconds(Int64(settings.idleTimeoutMillis)))
        return Application(router: router(),
                           server: .http1(configuration: http1),
                           configuration: configuration,
                           services: [dashboard.refresher(everyMillis: refreshMillis, logger: logger, onDerived: { [feed] in feed.factsDerived($0) }), feed],
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
