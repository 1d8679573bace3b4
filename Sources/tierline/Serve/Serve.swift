import Desk
import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Mirror
import Notify
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals
import Workspace
import SyncNode
import TicketModel
import TicketStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a headless node: accept sessions, dial peers, push new blocks to them until SIGTERM or SIGINT (SIGHUP dials every peer now).",
        discussion: "Logs go to stderr. A --config FILE (JSON: listen, peers, store, pollMillis, reconnectMinMillis, reconnectMaxMillis, batchBlocks, escalationMillis, http, routing, tls, maxLineBytes, maxBatchBytes, maxBatchCompressedBytes, maxSessions, idleTimeoutMillis, allowPlainSessions, notifications, workspace, mirror) holds the same settings; flags win over it. Every session runs in TLS 1.3 with the sites' own keys (protocol 2); --tls-cert, --tls-key and --tls-ca use an organisation's CA instead, and --allow-plain (allowPlainSessions) admits plain protocol-1 sessions for an upgrade window. --http serves the node's HTTP server: agents sign in at /login with a password (`tierline agent password NAME`) or send an API token (`tierline agent token NAME`) to reach the dashboard and its JSON API (role manager, or the grant \"dashboard\"); the intake API takes its own tokens (`tierline intake token add`); /metrics is open unless workspace.metricsTokenFile names a token. The workspace section bounds it: maxConnections (4096), headerTimeoutMillis (10000: a connection must send each request head within it), idleTimeoutMillis (60000), secureCookies, hubQuietMillis (60000: open pages show a banner when the hub has been silent this long), maxEventStreams (256). The node raises its open-file limit to the hard limit at start and logs it. --routing FILE routes the tickets that arrive there; serve --check refuses (exit 2) a file that names a ladder, SLA policy, group or site the store's published configuration and roster do not have (`tierline routing check FILE --store DIR` lists them); serve itself starts and logs them as errors (the running node is what brings a newer configuration), and warns when the store has no configuration yet. The node sends its outbox (notices, replies) through notifications' mail relay and webhooks (`tierline outbox list` shows it). A mirror section (postgres: a URL as `tierline mirror --postgres` takes it, schema, passwordFile, timeoutMillis) keeps a PostgreSQL schema current from the store, its lag in /metrics (tierline_mirror_behind_blocks, tierline_mirror_behind_seconds: no sample while unknown; tierline_mirror_connected). --check reads the settings, opens the store and its key as serve does, runs SQLite's integrity_check on the database, prints the effective settings and exits without listening: exit 0 when serve would start, 2 for bad settings, 1 for a missing, unreadable or damaged store or key. Every command refuses a store that fails SQLite's quick_check, saying how to restore it.")

    @OptionGroup var options: StoreOptions
    @Option(help: "Accept sessions on HOST:PORT (for example 0.0.0.0:7400).") var listen: String?
    @Option(name: .customLong("peer"), help: "Dial and keep a session with HOST:PORT (repeatable).") var peers: [String] = []
    @Option(help: "Serve the dashboard, JSON API and /metrics on HOST:PORT (for example 127.0.0.1:8080).") var http: String?
    @Option(help: "Routing rules for tickets arriving through the intake API (JSON; `tierline routing check FILE` validates one).") var routing: String?
    @Option(help: "A JSON configuration file.") var config: String?
    @OptionGroup var tls: TLSOptions
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"
    @Flag(help: "Check the settings, the store and its key, print the effective settings (--json for JSON), and exit without listening.")
    var check = false

    /// What serve runs with, once the settings, the store and its key have been read and checked.
    struct Prepared {
        var settings: NodeConfiguration
        var level: Logger.Level
        var directory: StoreDirectory
        var store: TicketDatabase
        var key: SiteKey
        var identity: LocalIdentity
        var routing: RoutingRules?
        /// Whether the routing file's names were checked against the store (not when it has no configuration yet).
        var routingNamesChecked = true
        /// What the routing file names that this store does not have (serve logs it and starts).
        var routingNameIssues: String?
        /// The notification secrets, read from the files the settings name.
        var secrets: NotificationSecrets
        /// The `/metrics` bearer token, read from `workspace.metricsTokenFile`; `nil` for an open `/metrics`.
        var metricsToken: String?
        /// Where node.json's `mirror` section mirrors the store; `nil` for no mirror.
        var mirror: PostgresTarget?

        /// How the HTTP server treats its clients (node.json's `workspace`).
        var workspace: WorkspaceSettings {
            let w = settings.workspace
            return WorkspaceSettings(metricsToken: metricsToken, secureCookies: w.secureCookies, idleTimeoutMillis: w.idleTimeoutMillis,
                                     headerTimeoutMillis: w.headerTimeoutMillis, maxConnections: w.maxConnections,
                                     hubQuietMillis: w.hubQuietMillis, maxEventStreams: w.maxEventStreams)
        }
    }

    /// Reads the settings (file, then flags), opens the store and its key, and checks that the key is
    /// the store's: everything serve does before it binds a port. Bad settings throw a
    /// `ValidationError` (exit 2); a missing store or key, or a key of another site, exit 1.
    func prepare() throws -> Prepared {
        var settings: NodeConfiguration
        do {
            settings = try config.map(NodeConfiguration.load(path:)) ?? NodeConfiguration()
            if let listen { settings.listen = try Endpoint(parsing: listen) }
            if !peers.isEmpty { settings.peers = try peers.map { try Endpoint(parsing: $0) } }
            if let http { settings.http = try Endpoint(parsing: http) }
            if let routing { settings.routing = routing }
            settings.tls = tls.applied(to: settings.tls)
            if !tls.allowPlain.isEmpty { settings.allowPlainSessions = try tls.allowPlain.map { try SiteID($0) } }
            try settings.validate()
        } catch {
            // A setting a restart cannot fix: exit 2, without the usage text a flag error gets.
            throw CLIFailure(message: (error as? ConfigurationError)?.message ?? "\(error)", code: 2)
        }
        guard settings.listen != nil || !settings.peers.isEmpty || settings.http != nil else {
            throw ValidationError("nothing to do: give --listen HOST:PORT, --peer HOST:PORT, --http HOST:PORT or a --config file that sets them")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let secrets: NotificationSecrets
        do { secrets = try settings.notifications.loadSecrets() } catch {
            throw CLIFailure(message: (config.map { "\($0): " } ?? "") + error.detail, code: 2)
        }
        let metricsToken: String?
        do { metricsToken = try settings.workspace.loadMetricsToken() } catch {
            throw CLIFailure(message: (config.map { "\($0): " } ?? "") + error.message, code: 2)
        }
        let directory = StoreDirectory.resolve(options.store ?? settings.store)
        var store = try directory.open()
        // Opening ran SQLite's quick_check; --check runs the full integrity_check (indexes against their tables too).
        if check { try store.checkIntegrity() }
        // Blocks a peer sends may need this node to send something (a reply on one of its
        // integrations' tickets), planned in the sync's own transaction.
        store.notices = Notices.planner
        let key = try directory.loadKey()
        let identity = try store.identity()
        // The same check (and message) as SyncNode's initializer, so --check fails where serve would.
        guard identity.publicKey == key.publicKey else {
            throw CLIFailure(message: "the site key does not match the store's site \(identity.site); use the key made by `tierline init` for this store")
        }
        // Routing rules are validated on load: a file with problems stops serve before it listens.
        let rules = try settings.routing.map(readRoutingRules)
        // So are the names they use, against this store: a ladder it does not have would never start.
        // --check refuses such a file (exit 2). serve itself starts and logs every unknown name: the
        // running node is what brings a configuration published since, so a node whose copy is only
        // behind must not refuse to run. With no configuration here yet it starts and says so.
        var routingNamesChecked = true
        var routingNameIssues: String?
        if let rules, let file = settings.routing {
            do {
                routingNamesChecked = try checkRoutingNames(rules, file: file, store: store, code: 2)
            } catch let failure as CLIFailure where !check {
                routingNameIssues = failure.message
            }
        }
        var prepared = Prepared(settings: settings, level: level, directory: directory, store: store, key: key, identity: identity, routing: rules, secrets: secrets,
                                metricsToken: metricsToken)
        prepared.mirror = try settings.mirror.map(Self.mirrorTarget)
        prepared.routingNamesChecked = routingNamesChecked
        prepared.routingNameIssues = routingNameIssues
        return prepared
    }

    func run() async throws {
        let prepared = try prepare()
        if check { return try printCheck(prepared) }
        let settings = prepared.settings
        let store = prepared.store
        bootstrapLogging(prepared.level)
        let logger = Logger(label: "tierline.node")
        logOpenFileLimit(OpenFileLimit.raiseToHard(), logger: logger)
        if let issues = prepared.routingNameIssues {
            logger.error("routing rules name what this store's configuration lacks (serve started anyway: a configuration published since arrives by sync); until then no such ladder starts and no such policy applies to the tickets they route: \(issues)")
        }
        if let file = settings.routing, !prepared.routingNamesChecked {
            logger.warning("routing names not checked: the store has no configuration published yet; `tierline routing check FILE --store DIR` checks them once it has",
                           metadata: ["routing.file": "\(file)"])
        }
        // The dashboard's tables come with the dashboard: a node without --http leaves the store without them.
        let registry = PrometheusCollectorRegistry()
        let node: SyncNode
        do {
            node = try SyncNode(store: store, key: prepared.key, configuration: settings, logger: logger,
                                metrics: SyncMetrics(factory: DescribedMetricsFactory(registry: registry, help: SyncMetrics.help)))
        } catch let error as ConfigurationError {
            throw CLIFailure(message: error.message)
        }
        do { try await node.bind() } catch {
            let address = settings.listen.map { "\($0)" } ?? "?"
            throw CLIFailure(message: SocketFailure.binding(address, setting: Self.listenSetting, error) ?? "cannot listen on \(address): \(error)")
        }
        // Every write to this store, the CLI's too, addresses its notices to the webhooks named here.
        try store.setNoticeWebhooks(settings.notifications.webhooks.map(\.name))
        // The outbox's sender: after the node (started before, stopped after it), so that what the
        // node's ticker writes is sent while it runs.
        var services: [any Service] = [node, ReconnectOnHangup(node: node, logger: logger), NotificationDispatcher(store: store, settings: settings.notifications, secrets: prepared.secrets,
                                                                    logger: Logger(label: "tierline.notify"))]
        if let target = prepared.mirror {
            let limit = Duration.milliseconds(settings.mirror?.timeoutMillis ?? MirrorSettings.defaultTimeoutMillis)
            // The mirror copies the dashboard's facts too, so it attaches the dashboard's tables.
            services.append(Self.mirrorService(target, stepLimit: limit, store: store, facts: try await MetricIndex(store), registry: registry))
        }
        if let http = settings.http {
            let intake = IntakeRoutes(service: try IntakeService(store: store, routing: prepared.routing, logger: Logger(label: "tierline.intake")))
            let dashboard = try await DashboardServer(database: store, registry: registry)
            let workspace = try WorkspaceServer(store: store, dashboard: dashboard, intake: intake, settings: prepared.workspace,
                                                connectedSites: { node.connectedSites })
            services.append(workspace.application(host: http.host, port: http.port, logger: Logger(label: "tierline.http"), onRunning: { port in
                logger.info("dashboard listening", metadata: ["address": "http://\(http.host):\(port)/"])
            }))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do { try await group.run() } catch {
            // The sync listener is bound above, so a bind that fails here is the HTTP server's.
            if let message = SocketFailure.binding(settings.http.map { "\($0)" } ?? "?", setting: Self.httpSetting, error) {
                throw CLIFailure(message: message)
            }
            throw error
        }
    }

    /// The PostgreSQL target of node.json's `mirror` section; a wrong URL or an unreadable password
    /// file stops serve before it starts (exit 2), as other bad settings do.
    static func mirrorTarget(_ settings: MirrorSettings) throws -> PostgresTarget {
        do {
            // passwordFile wins over the URL's password, which wins over $PGPASSWORD.
            let password = try settings.password()
            var target = try PostgresTarget(url: settings.postgres, schema: settings.schema, environment: ProcessInfo.processInfo.environment)
            if let password { target.password = password }
            return target
        } catch let error as ConfigurationError {
            throw CLIFailure(message: error.message, code: 2)
        } catch let error as MirrorError {
            throw CLIFailure(message: "mirror.postgres: \(error.detail)", code: 2)
        }
    }

    /// The mirror's service, publishing its status to the node's `/metrics` and to the store's report.
    static func mirrorService(_ target: PostgresTarget, stepLimit: Duration, store: TicketDatabase, facts: MetricIndex,
                              registry: PrometheusCollectorRegistry) -> MirrorService {
        var mirror = PostgresMirror(store: store, target: target, logger: Logger(label: "tierline.mirror"))
        mirror.stepLimit = stepLimit
        mirror.facts = facts
        let publisher = MirrorPublisher(store: store, registry: registry)
        return MirrorService(mirror: mirror) { publisher.publish($0) }
    }

    /// The settings that choose the addresses serve binds, as a bind failure names them.
    static let listenSetting = "--listen (listen in node.json)"
    static let httpSetting = "--http (http in node.json)"

    /// The effective settings of `serve --check`. Every key is present; unset ones are `null`.
    struct CheckOutput: Encodable {
        var site: String
        var role: String
        var publicKey: String
        var store: String
        @NullEncoded var config: String?
        @NullEncoded var listen: String?
        var peers: [String]
        @NullEncoded var http: String?
        /// The routing file and its rules' version (`FILE (rules 3f2a…, 5 rules)`).
        @NullEncoded var routing: String?
        var logLevel: String
        var pollMillis: Int
        var reconnectMinMillis: Int
        var reconnectMaxMillis: Int
        var batchBlocks: Int
        var escalationMillis: Int
        @NullEncoded var tls: CheckTLS?
        var maxLineBytes: Int
        var maxBatchBytes: Int
        var maxBatchCompressedBytes: Int
        var maxSessions: Int
        var idleTimeoutMillis: Int
        var allowPlainSessions: [SiteID]
        /// The mail relay and webhooks the outbox is sent to (never the secrets).
        var notifications: String
        /// The HTTP server's limits and `/metrics` token file (never the token).
        var workspace: CheckWorkspace
    }

    /// `workspace` in `--check --json`: every key, `null` when unset.
    struct CheckWorkspace: Encodable {
        @NullEncoded var metricsTokenFile: String?
        var secureCookies: Bool
        var idleTimeoutMillis: Int
        var headerTimeoutMillis: Int
        var maxConnections: Int
        var hubQuietMillis: Int
        var maxEventStreams: Int

        init(_ w: WorkspaceConfiguration) {
            (metricsTokenFile, secureCookies) = (w.metricsTokenFile, w.secureCookies)
            (hubQuietMillis, maxEventStreams) = (w.hubQuietMillis, w.maxEventStreams)
            (idleTimeoutMillis, headerTimeoutMillis, maxConnections) = (w.idleTimeoutMillis, w.headerTimeoutMillis, w.maxConnections)
        }
    }

    /// `tls` in `--check --json`: every key, `null` when unset, and the effective client-certificate rule.
    struct CheckTLS: Encodable {
        @NullEncoded var certificateFile: String?
        @NullEncoded var keyFile: String?
        @NullEncoded var caFile: String?
        var requireClientCertificate: Bool
        @NullEncoded var serverName: String?

        init(_ settings: TLSSettings) {
            (certificateFile, keyFile, caFile) = (settings.certificateFile, settings.keyFile, settings.caFile)
            (requireClientCertificate, serverName) = (settings.requiresClientCertificate, settings.serverName)
        }
    }

    func printCheck(_ p: Prepared) throws {
        let s = p.settings
        let output = CheckOutput(site: p.identity.site.rawValue, role: p.identity.role.rawValue, publicKey: p.identity.publicKey.hexString,
                                 store: p.directory.path, config: config, listen: s.listen?.description, peers: s.peers.map(\.description),
                                 http: s.http?.description,
                                 routing: s.routing.map { path in "\(path) (rules \(p.routing?.version ?? "?"), \(p.routing?.rules.count ?? 0) rules and a fallback"
                                     + (p.routingNamesChecked ? "; names known to the store)" : "; names not checked: no configuration published here yet)") },
                                 logLevel: p.level.rawValue, pollMillis: s.pollMillis,
                                 reconnectMinMillis: s.reconnectMinMillis, reconnectMaxMillis: s.reconnectMaxMillis,
                                 batchBlocks: s.batchBlocks, escalationMillis: s.escalationMillis, tls: s.tls.map(CheckTLS.init),
                                 maxLineBytes: s.maxLineBytes, maxBatchBytes: s.maxBatchBytes,
                                 maxBatchCompressedBytes: s.maxBatchCompressedBytes, maxSessions: s.maxSessions,
                                 idleTimeoutMillis: s.idleTimeoutMillis, allowPlainSessions: s.allowPlainSessions,
                                 notifications: Self.describe(s.notifications), workspace: CheckWorkspace(s.workspace))
        if options.json { return try printJSON(output) }
        printTable(["SETTING", "VALUE"], [
            ["site", "\(output.site) (\(output.role))"],
            ["public key", output.publicKey],
            ["store", output.store],
            ["config file", output.config ?? "—"],
            ["listen", output.listen ?? "— (does not accept sessions)"],
            ["peers", output.peers.isEmpty ? "— (dials nobody)" : output.peers.joined(separator: ", ")],
            ["http", output.http ?? "— (no dashboard)"],
            ["routing", output.routing ?? "— (intake tickets are not routed)"],
            ["log level", output.logLevel],
            ["pollMillis", "\(output.pollMillis)"],
            ["reconnectMillis", "\(output.reconnectMinMillis)…\(output.reconnectMaxMillis)"],
            ["batchBlocks", "\(output.batchBlocks)"],
            ["escalationMillis", output.escalationMillis == 0 ? "0 (ticker off)" : "\(output.escalationMillis)"],
            ["tls", s.tls.map(Self.describe) ?? "on: TLS 1.3 with the sites' own keys, checked against the roster (protocol 2)"],
            ["allowPlainSessions", s.allowPlainSessions.isEmpty ? "none: plain protocol-1 sessions refused"
                : "\(s.allowPlainSessions.map(\.rawValue).joined(separator: ", ")): their plain protocol-1 sessions admitted too, unprotected (an upgrade window)"],
            ["maxLineBytes", "\(s.maxLineBytes)"],
            ["maxBatchBytes", "\(s.maxBatchBytes) inflated, \(s.maxBatchCompressedBytes) compressed"],
            ["maxSessions", "\(s.maxSessions)"],
            ["idleTimeoutMillis", "\(s.idleTimeoutMillis)"],
            ["notifications", output.notifications],
            ["workspace", Self.describe(s.workspace)],
        ], maxWidth: 80)
        print("")
        print("ok: serve would start with these settings (nothing was bound)")
    }

    static func describe(_ n: NotificationSettings) -> String {
        let smtp = n.smtp.map { "smtp \($0.host):\($0.port) (\($0.security.rawValue)\($0.username.map { ", AUTH as \($0)" } ?? ", no AUTH"))" }
            ?? "no mail relay (e-mail deliveries go to the dead letters)"
        let hooks = n.webhooks.isEmpty ? "no webhooks" : "webhooks " + n.webhooks.map(\.name).joined(separator: ", ")
        return "\(smtp); \(hooks); \(n.maxAttempts) attempts, backoff \(n.backoffMinMillis)…\(n.backoffMaxMillis) ms"
    }

    static func describe(_ w: WorkspaceConfiguration) -> String {
        let metrics = w.metricsTokenFile.map { "/metrics needs the token in \($0)" } ?? "/metrics open (no metricsTokenFile)"
        return "\(metrics); \(w.secureCookies ? "Secure" : "plain-HTTP") session cookie; at most \(w.maxConnections) connections, "
            + "request heads within \(w.headerTimeoutMillis) ms, idle ones closed after \(w.idleTimeoutMillis) ms; "
            + "hub banner after \(w.hubQuietMillis) ms without news, at most \(w.maxEventStreams) live-update streams"
    }

    static func describe(_ tls: TLSSettings) -> String {
        var parts = [tls.certificateFile.map { "certificate \($0)" } ?? "no certificate"]
        parts.append(tls.caFile.map { "peers checked against \($0)" } ?? "peers checked against the system's CAs")
        if tls.requiresClientCertificate { parts.append("client certificates required") }
        if let name = tls.serverName { parts.append("server name \(name)") }
        return parts.joined(separator: "; ")
    }
}

/// SIGHUP tells the node to dial every configured peer now, with each backoff started again from
/// `reconnectMinMillis` (after the hub came back, or a site was added to the roster), rather than
/// after the wait a run of failures built up. Sessions already open are not touched.
struct ReconnectOnHangup: Service {
    let node: SyncNode
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        logger.info("SIGHUP dials every peer now")
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: dialing every peer now")
            node.reconnectNow()
        }
    }
}
