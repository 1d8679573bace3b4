import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import SyncNode
import TicketModel
import TicketStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a headless node: accept sessions, dial peers, push new blocks to them until SIGTERM or SIGINT.",
        discussion: "Logs go to stderr. A --config FILE (JSON: listen, peers, store, pollMillis, reconnectMinMillis, reconnectMaxMillis, batchBlocks, escalationMillis, http, routing, tls, maxLineBytes, maxBatchBytes, maxBatchCompressedBytes, maxSessions, idleTimeoutMillis, allowPlainSessions) holds the same settings; flags win over it. Every session runs in TLS 1.3 with the sites' own keys (protocol 2); --tls-cert, --tls-key and --tls-ca use an organisation's CA instead, and --allow-plain (allowPlainSessions) admits plain protocol-1 sessions for an upgrade window. --http serves the dashboard, its JSON API, the intake API (tokens: `tierline intake token add`) and /metrics; --routing FILE routes the tickets that arrive there. --check reads the settings, opens the store and its key as serve does, prints the effective settings and exits without listening: exit 0 when serve would start, 2 for bad settings, 1 for a missing or unreadable store or key.")

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
            throw ValidationError((error as? ConfigurationError)?.message ?? "\(error)")
        }
        guard settings.listen != nil || !settings.peers.isEmpty || settings.http != nil else {
            throw ValidationError("nothing to do: give --listen HOST:PORT, --peer HOST:PORT, --http HOST:PORT or a --config file that sets them")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let directory = StoreDirectory.resolve(options.store ?? settings.store)
        let store = try directory.open()
        let key = try directory.loadKey()
        let identity = try store.identity()
        // The same check (and message) as SyncNode's initializer, so --check fails where serve would.
        guard identity.publicKey == key.publicKey else {
            throw CLIFailure(message: "the site key does not match the store's site \(identity.site); use the key made by `tierline init` for this store")
        }
        // Routing rules are validated on load: a file with problems stops serve before it listens.
        var rules: RoutingRules?
        if let path = settings.routing {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the routing file \(path); check the path and its permissions")
            }
            do { rules = try RoutingRules.load(data, file: path) } catch { throw ValidationError("\(error)") }
        }
        return Prepared(settings: settings, level: level, directory: directory, store: store, key: key, identity: identity, routing: rules)
    }

    func run() async throws {
        let prepared = try prepare()
        if check { return try printCheck(prepared) }
        let settings = prepared.settings
        let store = prepared.store
        bootstrapLogging(prepared.level)
        let logger = Logger(label: "tierline.node")
        let dashboard = DashboardServer(database: store)
        let node: SyncNode
        do {
            node = try SyncNode(store: store, key: prepared.key, configuration: settings, logger: logger,
                                metrics: SyncMetrics(factory: PrometheusMetricsFactory(registry: dashboard.registry)))
        } catch let error as ConfigurationError {
            throw CLIFailure(message: error.message)
        }
        do { try await node.bind() } catch {
            throw CLIFailure(message: "cannot listen on \(settings.listen.map { "\($0)" } ?? "?"): \(error); is another node using the port?")
        }
        var services: [any Service] = [node]
        if let http = settings.http {
            let intake = IntakeRoutes(service: try IntakeService(store: store, routing: prepared.routing, logger: Logger(label: "tierline.intake")))
            services.append(dashboard.application(host: http.host, port: http.port, logger: Logger(label: "tierline.http"), onRunning: { port in
                logger.info("dashboard listening", metadata: ["address": "http://\(http.host):\(port)/"])
            }, extend: intake.register(on:)))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    /// The effective settings of `serve --check`. Every key is present; unset ones are `null`.
    struct CheckOutput: Encodable {
        var site: String
        var role: String
        var publicKey: String
        var store: String
        var config: String?
        var listen: String?
        var peers: [String]
        var http: String?
        /// The routing file and its rules' version (`FILE (rules 3f2a…, 5 rules)`).
        var routing: String?
        var logLevel: String
        var pollMillis: Int
        var reconnectMinMillis: Int
        var reconnectMaxMillis: Int
        var batchBlocks: Int
        var escalationMillis: Int
        var tls: TLSSettings?
        var maxLineBytes: Int
        var maxBatchBytes: Int
        var maxBatchCompressedBytes: Int
        var maxSessions: Int
        var idleTimeoutMillis: Int
        var allowPlainSessions: [SiteID]

        enum CodingKeys: String, CodingKey {
            case site, role, publicKey, store, config, listen, peers, http, routing, logLevel, pollMillis, reconnectMinMillis,
                 reconnectMaxMillis, batchBlocks, escalationMillis, tls, maxLineBytes, maxBatchBytes, maxBatchCompressedBytes,
                 maxSessions, idleTimeoutMillis, allowPlainSessions
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(site, forKey: .site)
            try c.encode(role, forKey: .role)
            try c.encode(publicKey, forKey: .publicKey)
            try c.encode(store, forKey: .store)
            try c.encode(config, forKey: .config)
            try c.encode(listen, forKey: .listen)
            try c.encode(peers, forKey: .peers)
            try c.encode(http, forKey: .http)
            try c.encode(routing, forKey: .routing)
            try c.encode(logLevel, forKey: .logLevel)
            try c.encode(pollMillis, forKey: .pollMillis)
            try c.encode(reconnectMinMillis, forKey: .reconnectMinMillis)
            try c.encode(reconnectMaxMillis, forKey: .reconnectMaxMillis)
            try c.encode(batchBlocks, forKey: .batchBlocks)
            try c.encode(escalationMillis, forKey: .escalationMillis)
            try c.encode(tls.map(CheckTLS.init), forKey: .tls)
            try c.encode(maxLineBytes, forKey: .maxLineBytes)
            try c.encode(maxBatchBytes, forKey: .maxBatchBytes)
            try c.encode(maxBatchCompressedBytes, forKey: .maxBatchCompressedBytes)
            try c.encode(maxSessions, forKey: .maxSessions)
            try c.encode(idleTimeoutMillis, forKey: .idleTimeoutMillis)
            try c.encode(allowPlainSessions, forKey: .allowPlainSessions)
        }
    }

    /// `tls` in `--check --json`: every key, `null` when unset, and the effective client-certificate rule.
    struct CheckTLS: Encodable {
        var settings: TLSSettings

        enum CodingKeys: String, CodingKey { case certificateFile, keyFile, caFile, requireClientCertificate, serverName }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(settings.certificateFile, forKey: .certificateFile)
            try c.encode(settings.keyFile, forKey: .keyFile)
            try c.encode(settings.caFile, forKey: .caFile)
            try c.encode(settings.requiresClientCertificate, forKey: .requireClientCertificate)
            try c.encode(settings.serverName, forKey: .serverName)
        }
    }

    func printCheck(_ p: Prepared) throws {
        let s = p.settings
        let output = CheckOutput(site: p.identity.site.rawValue, role: p.identity.role.rawValue, publicKey: p.identity.publicKey.hexString,
                                 store: p.directory.path, config: config, listen: s.listen?.description, peers: s.peers.map(\.description),
                                 http: s.http?.description,
                                 routing: s.routing.map { path in "\(path) (rules \(p.routing?.version ?? "?"), \(p.routing?.rules.count ?? 0) rules and a fallback)" },
                                 logLevel: p.level.rawValue, pollMillis: s.pollMillis,
                                 reconnectMinMillis: s.reconnectMinMillis, reconnectMaxMillis: s.reconnectMaxMillis,
                                 batchBlocks: s.batchBlocks, escalationMillis: s.escalationMillis, tls: s.tls,
                                 maxLineBytes: s.maxLineBytes, maxBatchBytes: s.maxBatchBytes,
                                 maxBatchCompressedBytes: s.maxBatchCompressedBytes, maxSessions: s.maxSessions,
                                 idleTimeoutMillis: s.idleTimeoutMillis, allowPlainSessions: s.allowPlainSessions)
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
        ], maxWidth: 80)
        print("")
        print("ok: serve would start with these settings (nothing was bound)")
    }

    static func describe(_ tls: TLSSettings) -> String {
        var parts = [tls.certificateFile.map { "certificate \($0)" } ?? "no certificate"]
        parts.append(tls.caFile.map { "peers checked against \($0)" } ?? "peers checked against the system's CAs")
        if tls.requiresClientCertificate { parts.append("client certificates required") }
        if let name = tls.serverName { parts.append("server name \(name)") }
        return parts.joined(separator: "; ")
    }
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-server-name` of `serve` and `sync`.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("TLS: this side's certificate chain, a PEM file (with --tls-key).", valueName: "PEM"))
    var certificate: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("TLS: the private key of --tls-cert, a PEM file.", valueName: "PEM"))
    var key: String?
    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("TLS: the CA certificates that sign the peers' certificates, a PEM file (a listener then requires client certificates).", valueName: "PEM"))
    var ca: String?
    @Option(name: .customLong("tls-server-name"), help: ArgumentHelp("TLS: the name to check in the certificate of the node dialed (default: its HOST).", valueName: "NAME"))
    var serverName: String?
    @Option(name: .customLong("allow-plain"), help: ArgumentHelp("Admit plain protocol-1 sessions with SITE (a site not yet upgraded) besides TLS ones, for an upgrade window: unprotected; repeat for more sites (node.json: allowPlainSessions).", valueName: "SITE"))
    var allowPlain: [String] = []

    var isSet: Bool { certificate != nil || key != nil || ca != nil || serverName != nil }

    /// `base` (the file's `tls`) with the flags laid over it; `nil` when neither turns TLS on.
    func applied(to base: TLSSettings?) -> TLSSettings? {
        guard isSet else { return base }
        var tls = base ?? TLSSettings()
        if let certificate { tls.certificateFile = certificate }
        if let key { tls.keyFile = key }
        if let ca { tls.caFile = ca }
        if let serverName { tls.serverName = serverName }
        return tls
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Exchange blocks with a node once, both ways, then exit.",
        discussion: "Shows progress on stderr. Exit code 0 when both sides caught up, 1 when the exchange did not finish (what was applied stays applied; run it again to resume). Any --tls-* option connects with TLS: --tls-ca checks the node's certificate (else the system's CAs), --tls-cert and --tls-key present this side's certificate to a node that requires one.")

    @OptionGroup var options: StoreOptions
    @Argument(help: "The node's HOST:PORT.") var peer: String
    @OptionGroup var tls: TLSOptions
    @Flag(help: "No progress on stderr.") var quiet = false

    struct Output: Encodable {
        var peer: String
        var peerSite: String?
        var sent: Direction
        var received: Direction
        var applied: Int
        var held: Int
        var refused: Int
        var duplicates: Int
        var conflicts: Int
        var durationMillis: Int
        var skewMillis: Int64?
        var completed: Bool
        var error: String?
        var vector: VersionVector
    }

    struct Direction: Encodable {
        var blocks: Int
        var batches: Int?
        var wireBytes: Int
        var changeSetBytes: Int
    }

    func validate() throws {
        do { _ = try Endpoint(parsing: peer) } catch { throw ValidationError(error.message) }
        do { try tls.applied(to: nil)?.validate(listening: false) } catch { throw ValidationError(error.message) }
    }

    func run() async throws {
        let endpoint = try Endpoint(parsing: peer)
        let directory = options.directory
        let store = try directory.open()
        let key = try directory.loadKey()
        let bar = ProgressBar(enabled: !quiet)
        var summary: SessionSummary
        var failure: String?
        do {
            summary = try await SyncClient.exchange(store: store, key: key, with: endpoint, logger: Logger(label: "tierline.sync", factory: { _ in SwiftLogNoOpLogHandler() }),
                                                    tls: tls.applied(to: nil), allowPlain: try tls.allowPlain.map { try SiteID($0) }, onProgress: { bar.update($0) })
        } catch let error as SyncFailure {
            summary = error.summary
            failure = error.message
        }
        bar.finish()
        let output = Output(peer: endpoint.description, peerSite: summary.peerSite,
                            sent: Direction(blocks: summary.sentBlocks, batches: summary.sentBatches, wireBytes: summary.bytesOut,
                                            changeSetBytes: summary.changeSetBytesOut),
                            received: Direction(blocks: summary.receivedBlocks, batches: nil, wireBytes: summary.bytesIn,
                                                changeSetBytes: summary.changeSetBytesIn),
                            applied: summary.applied, held: summary.held, refused: summary.refused, duplicates: summary.duplicates,
                            conflicts: summary.newConflicts, durationMillis: summary.durationMillis, skewMillis: summary.skewMillis,
                            completed: failure == nil, error: failure, vector: try store.vector())
        if options.json {
            try printJSON(output)
        } else {
            printTable(["", "BLOCKS", "ON THE WIRE", "CHANGE SETS"], [
                ["sent", "\(output.sent.blocks)", byteText(output.sent.wireBytes), byteText(output.sent.changeSetBytes)],
                ["received", "\(output.received.blocks)", byteText(output.received.wireBytes), byteText(output.received.changeSetBytes)],
            ])
            print("")
            print("peer \(output.peerSite ?? "?") at \(output.peer): applied \(output.applied), held back \(output.held), refused \(output.refused), new conflicts \(output.conflicts), \(output.durationMillis) ms"
                  + (output.skewMillis.map { ", clock skew \($0) ms" } ?? ""))
        }
        if let failure { throw CLIFailure(message: failure) }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "This store's peers: when each was last seen, what each lacks from us and we from it, clock skew.")

    @OptionGroup var options: StoreOptions

    struct Output: Encodable {
        var site: String
        var role: String
        /// This site's public key, for the coordinator's `roster add`.
        var publicKey: String
        var vector: VersionVector
        /// Set while a store restored from a backup waits for a sync to learn its own highest block.
        @NullEncoded var restoredAt: Date?
        /// While restored: the sites still to be heard from before local writes resume.
        @NullEncoded var restoreAwaiting: [String]?
        var pendingBlocks: [Pending]
        var peers: [Peer]
        /// The roster version held (0: none) and whether a coordinator key is pinned.
        var rosterVersion: UInt64
        var coordinatorPinned: Bool
        /// Blocks stamped too far ahead, with how far.
        var quarantined: [QuarantinedBlock]
        /// Refused blocks and skipped changes, newest first.
        var refusals: [RefusalRecord]
        /// Origins a peer holds another history of (different blocks at one seq).
        var divergences: [Diverged]
        /// Set when a peer holds another block at a seq of this store's own site: the store is a
        /// copy and writes nothing more; the text says what to do.
        @NullEncoded var copiedStore: String?

        // Every key is present, `null` when empty, so scripts need not guess.
    }

    struct Diverged: Encodable {
        var origin: String
        var peer: String
        var seq: UInt64
        var ourHash: String
        var theirHash: String
        var address: String
        var detectedAt: Date
    }

    struct Pending: Encodable {
        var origin: String
        var seq: UInt64
        var reason: String
    }

    struct Peer: Encodable {
        var site: String
        var role: String
        var address: String
        var lastSeen: Date
        var theyLack: Int
        var weLack: Int
        @NullEncoded var skewMillis: Int64?
        var blocksIn: UInt64
        var blocksOut: UInt64
        @NullEncoded var lastError: String?
        /// `tls`, `tls-ca` or `plain` (unprotected), as the last session ran.
        @NullEncoded var transport: String?

    }

    func run() throws {
        let store = try options.open()
        let identity = try store.identity()
        let vector = try store.vector()
        let peers = try store.peers().map { p in
            Peer(site: p.site.rawValue, role: p.role.rawValue, address: p.address,
                 lastSeen: Date(timeIntervalSince1970: Double(p.lastSeen) / 1000),
                 theyLack: p.vector.lacking(from: vector), weLack: vector.lacking(from: p.vector),
                 skewMillis: p.skewMillis, blocksIn: p.blocksIn, blocksOut: p.blocksOut, lastError: p.lastError,
                 transport: p.transport)
        }
        let pending = try store.pendingBlocks().map { Pending(origin: $0.origin.rawValue, seq: $0.seq, reason: $0.reason) }
        let restored = try store.restoredAt().map { Date(timeIntervalSince1970: Double($0) / 1000) }
        let output = Output(site: identity.site.rawValue, role: identity.role.rawValue, publicKey: identity.publicKey.hexString, vector: vector, restoredAt: restored,
                            restoreAwaiting: try store.restoreAwaiting()?.map(\.rawValue),
                            pendingBlocks: pending, peers: peers, rosterVersion: try store.rosterVersion(),
                            coordinatorPinned: try store.pinnedCoordinatorKey() != nil, quarantined: try store.quarantined(),
                            refusals: try store.refusals(),
                            divergences: try store.divergences().map {
                                Diverged(origin: $0.origin.rawValue, peer: $0.peer.rawValue, seq: $0.seq, ourHash: $0.ourHash.hexString,
                                         theirHash: $0.theirHash.hexString, address: $0.address,
                                         detectedAt: Date(timeIntervalSince1970: Double($0.detectedAt) / 1000))
                            },
                            copiedStore: try store.copiedStoreRefusal())
        if options.json { return try printJSON(output) }
        print("site \(output.site) (\(output.role)), vector \(vector)")
        print("public key \(output.publicKey)")
        if !output.coordinatorPinned {
            print("no coordinator key pinned: this store syncs with nobody (`tierline roster pin KEY`)")
        } else {
            print(output.rosterVersion == 0 ? "coordinator pinned; no roster yet (the first sync brings it)" : "roster version \(output.rosterVersion) (`tierline roster list`)")
        }
        if let restored {
            let awaited = output.restoreAwaiting ?? []
            let who = awaited.isEmpty ? "a sync with the coordinator that confirms nothing newer of this site exists"
                : "news of \(awaited.joined(separator: ", ")): each must sync with the coordinator (or with this store), then this store with the coordinator"
            print("restored from a backup \(ageText(Date().timeIntervalSince(restored))); local writes wait for \(who) (`tierline sync HUB:PORT` or `tierline serve` dialing it; `tierline restore --release` lifts the wait by hand)")
        }
        print("")
        if peers.isEmpty {
            print("no peers yet; run `tierline sync HOST:PORT` or `tierline serve --peer HOST:PORT`")
        } else {
            let now = Date()
            printTable(["PEER", "ROLE", "ADDRESS", "LINK", "LAST SEEN", "THEY LACK", "WE LACK", "SKEW", "LAST ERROR"], peers.map { p in
                [p.site, p.role, p.address, p.transport.map { $0 == "plain" ? "PLAIN: unprotected" : $0 } ?? "—",
                 ageText(now.timeIntervalSince(p.lastSeen)), "\(p.theyLack)", "\(p.weLack)",
                 p.skewMillis.map { "\($0) ms" } ?? "—", p.lastError ?? "—"]
            })
        }
        if !pending.isEmpty {
            print("\n\(pending.count) blocks held back:")
            printTable(["ORIGIN", "SEQ", "REASON"], pending.prefix(20).map { [$0.origin, "\($0.seq)", $0.reason] }, maxWidth: 80)
        }
        if !output.quarantined.isEmpty {
            print("\n\(output.quarantined.count) blocks quarantined for clock drift (retried as time passes; the coordinator can `tierline quarantine release SITE SEQ`):")
            printTable(["SITE", "SEQ", "AHEAD"], output.quarantined.prefix(20).map { [$0.origin, "\($0.seq)", durationText(millis: $0.aheadMillis)] })
        }
        if let copied = output.copiedStore {
            print("\nTHIS STORE WRITES NOTHING: \(copied)")
        }
        if !output.divergences.isEmpty {
            print("\ntwo histories of a site (different blocks at one seq; those origins are not exchanged with that peer):")
            printTable(["ORIGIN", "SEQ", "PEER", "HERE", "THERE", "SEEN"], output.divergences.map { d in
                [d.origin, "\(d.seq)", "\(d.peer) (\(d.address))", d.ourHash, d.theirHash,
                 ageText(Date().timeIntervalSince(d.detectedAt))]
            })
        }
        if !output.refusals.isEmpty {
            print("\nrefused (nothing of these was applied):")
            printTable(["ORIGIN", "SEQ", "CODE", "TIMES", "LAST", "REASON"], output.refusals.prefix(20).map { r in
                [r.origin, "\(r.seq)", r.code, "\(r.count)", ageText(Date().timeIntervalSince1970 - Double(r.lastAt) / 1000), r.reason]
            }, maxWidth: 90)
        }
    }
}

func byteText(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1 << 20 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
    return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
}

func ageText(_ seconds: TimeInterval) -> String {
    if seconds < 60 { return "\(max(0, Int(seconds))) s ago" }
    if seconds < 3600 { return "\(Int(seconds / 60)) min ago" }
    if seconds < 86400 { return "\(Int(seconds / 3600)) h ago" }
    return "\(Int(seconds / 86400)) d ago"
}

/// A one-line progress bar on stderr when it is a terminal; a line every two seconds otherwise.
final class ProgressBar: @unchecked Sendable {
    let enabled: Bool
    let tty = isatty(2) == 1
    let lock = NSLock()
    var lastDraw = Date.distantPast
    var drawn = false
    var last: SyncProgress?

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: SyncProgress) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        last = p
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= (tty ? 0.1 : 2.0) else { return }
        lastDraw = now
        draw(p)
    }

    /// Draws the final state (when anything was shown), then ends the line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard drawn, let last else { return }
        draw(last)
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ p: SyncProgress) {
        let total = max(1, p.toSend + p.toReceive)
        let fraction = min(1, Double(p.sent + p.received) / Double(total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = "[\(bar)] \(Int(fraction * 100))%  ↑ \(p.sent)/\(p.toSend) blocks \(byteText(p.bytesOut))  ↓ \(p.received)/\(p.toReceive) blocks \(byteText(p.bytesIn))"
        FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + text + (tty ? "" : "\n")).utf8))
        drawn = true
    }
}

/// Logs of a long-running command go to stderr at `level`.
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
