import ArgumentParser
import Dashboard
import Foundation
import Logging
import ServiceLifecycle
import SyncNode
import UnixSignals
import Workspace

struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the dashboard over a store, without syncing, until SIGTERM or SIGINT.",
        discussion: """
            Pages: / (fleet overview, charts, metrics; ?site=NAME drills down), /api/summary, /api/sites, /api/metrics, \
            /api/series, /export.csv, /metrics (Prometheus). Every page but /metrics needs an agent signed in with the dashboard permission (role manager, or the grant \
            "dashboard"): a password (`tierline agent password NAME`) at /login, or a token (`tierline agent token NAME`) as Authorization: Bearer. \
            Query parameters: days, from, to, site, tier, channel, priority, \
            customer_tier, group, category. Identical queries within 2 s share one computation and at most 2 run at once \
            (more wait, then get 503 with Retry-After); a connection must send each request head within 10 s, and at most \
            4096 are served at once. The open-file limit is raised to the hard limit at start. A node that syncs serves the \
            same pages with `tierline serve --http HOST:PORT` (its node.json's workspace section sets these limits and a \
            /metrics token).
            """)

    @OptionGroup var options: StoreOptions
    @Option(help: "Serve on HOST:PORT (for example 127.0.0.1:8080; port 0 picks a free one).") var listen: String
    @Option(help: "How often to count changed tickets into the dashboard's figures, ms (100-600000).") var refreshMillis = 1000
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"

    func validate() throws {
        do { _ = try Endpoint(parsing: listen) } catch { throw ValidationError("--listen: \(error.message)") }
        guard (100...600_000).contains(refreshMillis) else { throw ValidationError("--refresh-millis must be between 100 and 600000") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let endpoint = try Endpoint(parsing: listen)
        let store = try options.open()
        bootstrapLogging(Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "tierline.dashboard")
        logOpenFileLimit(OpenFileLimit.raiseToHard(), logger: logger)
        let server = try WorkspaceServer(store: store, dashboard: try await DashboardServer(database: store), intake: nil)
        let app = server.application(host: endpoint.host, port: endpoint.port, refreshMillis: refreshMillis, logger: logger) { port in
            logger.info("dashboard listening", metadata: ["address": "http://\(endpoint.host):\(port)/"])
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
