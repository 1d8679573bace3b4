import Foundation
import Notify
import StrictJSON
import SyncWire
import TicketModel

/// A `HOST:PORT` address (`[::1]:7400` for IPv6 literals).
public struct Endpoint: Sendable, Hashable, CustomStringConvertible, Codable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; the error says what is wrong.
    public init(parsing text: String) throws(ConfigurationError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host: Substring
        var portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]"), trimmed[trimmed.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError("\(text.debugDescription) is not HOST:PORT; write IPv6 addresses as [::1]:7400")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portText = trimmed[trimmed.index(close, offsetBy: 2)...]
        } else {
            guard let colon = trimmed.lastIndex(of: ":"), !trimmed[..<colon].contains(":") else {
                throw ConfigurationError("\(text.debugDescription) is not HOST:PORT (for example 127.0.0.1:7400)")
            }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard !host.isEmpty else { throw ConfigurationError("\(text.debugDescription) has no host") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError("\(text.debugDescription) has no port between 0 and 65535")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(from decoder: any Decoder) throws {
        let text = try String(from: decoder)
        do { self = try Endpoint(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws { try description.encode(to: encoder) }
}

/// A bad address, option or configuration file.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A node's settings: where it listens and which peers it dials. `tierline serve --config FILE` reads
/// the same settings from JSON (see `Deploy/` and README.md).
public struct NodeConfiguration: Sendable, Codable, Equatable {
    /// Address for incoming sessions; `nil` for a node that only dials.
    public var listen: Endpoint?
    /// Peers to dial and keep connected.
    public var peers: [Endpoint] = []
    /// The store folder (the CLI's `--store` wins over it).
    public var store: String?
    /// How often the node looks for blocks written by other processes (the CLI) into its store, ms.
    public var pollMillis: Int = 250
    /// Reconnect backoff bounds, ms.
    public var reconnectMinMillis: Int = 250
    public var reconnectMaxMillis: Int = 30_000
    /// Most blocks per `blocks` frame this node sends (1…4096).
    public var batchBlocks: Int = 1024
    /// How often the escalation ticker writes due SLA and ladder records, ms; 0 turns it off.
    public var escalationMillis: Int = 1000
    /// Address of the node's HTTP server (dashboard, JSON API, `/metrics`); `nil` for none.
    public var http: Endpoint?
    /// The routing rules file applied to tickets arriving through the intake API; `nil` for none.
    public var routing: String?
    /// TLS with an organisation's certificates for every session this node accepts or dials (see
    /// ``TLSSettings``); `nil` for protocol 2's TLS with the sites' own keys, the default.
    public var tls: TLSSettings?
    /// The sites (still on protocol 1) whose plain sessions this node admits besides TLS ones, for an
    /// upgrade window (`Protocol/PROTOCOL.md` §2.12): none by default. Such a link is unprotected
    /// (logged, and shown by `status`), and a plain proof can be relayed, so only the named sites'
    /// identities are exposed, never those of upgraded sites.
    public var allowPlainSessions: [SiteID] = []
    /// Longest line this node reads, bytes (`Protocol/PROTOCOL.md` §2.9; ``minimumLineBytes``…8 MiB).
    public var maxLineBytes: Int = WireLimits.standard.maxLineBytes
    /// Largest inflated change set of one batch this node accepts, bytes (``minimumBatchBytes``…4 MiB).
    public var maxBatchBytes: Int = WireLimits.standard.maxBatchBytes
    /// Largest zlib stream of one batch this node accepts, bytes (``minimumBatchBytes``…6 MiB, what an
    /// 8 MiB line carries).
    public var maxBatchCompressedBytes: Int = WireLimits.standard.maxBatchCompressedBytes
    /// Most incoming sessions at once; further connections get an `internal` error frame and are closed.
    public var maxSessions: Int = 128
    /// Silence after which a session ends with `timeout`, ms; the node pings after a third of it.
    public var idleTimeoutMillis: Int = 45_000
    /// Where the node's dispatcher sends the outbox: the mail relay, the webhooks, retries (see
    /// ``NotificationSettings``). Secrets are in files it names, read when serve starts.
    public var notifications = NotificationSettings()
    /// How the HTTP server (``http``) treats its clients: the `/metrics` token, the session cookie,
    /// its timeouts and connection limit (see ``WorkspaceConfiguration``).
    public var workspace = WorkspaceConfiguration()
    /// A PostgreSQL mirror the node keeps current (see ``MirrorSettings``); `nil` for none.
    public var mirror: MirrorSettings?
    /// The highest protocol version the node's hellos name; not a node.json setting (tests hold a node
    /// at an older version to check that versions meet, `Protocol/PROTOCOL.md` §2.5).
    var highestProtocol = WireVersion.protocolVersion
    /// How long a peer has from its connection to an open session, ms (§2.9); not a node.json setting
    /// (tests on a loaded machine give a peer longer, so a slow proof is not refused as `timeout`).
    var handshakeMillis = 5_000

    /// The smallest `maxLineBytes` a node may be configured with: a batch of this implementation's
    /// senders (at most 1 MiB of blocks, or one block of the largest size) always fits in its line.
    public static let minimumLineBytes = 2 << 20
    /// The smallest `maxBatchBytes` and `maxBatchCompressedBytes`: such a batch, with its length
    /// prefixes and zlib's worst case, always fits, as does a compact change set of protocol 3, which
    /// senders keep within `ChangeSet.maxCompactBytes`.
    public static let minimumBatchBytes = (1 << 20) + (64 << 10)

    /// The defaults, changed by `configure`: `NodeConfiguration { $0.listen = address }`.
    public init(_ configure: (inout NodeConfiguration) -> Void = { _ in }) {
        configure(&self)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, peers, store, pollMillis, reconnectMinMillis, reconnectMaxMillis, batchBlocks, escalationMillis, http, routing
        case tls, maxLineBytes, maxBatchBytes, maxBatchCompressedBytes, maxSessions, idleTimeoutMillis, allowPlainSessions, notifications
        case workspace, mirror
    }

    /// The wire limits this node enforces on what it reads.
    public var wireLimits: WireLimits {
        var limits = WireLimits.standard
        limits.maxLineBytes = maxLineBytes
        limits.maxBatchBytes = maxBatchBytes
        limits.maxBatchCompressedBytes = maxBatchCompressedBytes
        return limits
    }

    /// The file's settings over the defaults: a setting the file leaves out, or sets to `null`, keeps
    /// its default (as node.json has always been read), so the decoder needs no list of its own.
    static func withDefaults(_ document: StrictJSON.Node) throws -> StrictJSON.Node {
        guard case .object(var members) = try StrictJSON.parse(JSONEncoder().encode(NodeConfiguration())).value,
              case .object(let given) = document.value else { return document }
        for member in given where member.value.value != .null {
            if let index = members.firstIndex(where: { $0.name == member.name }) { members[index] = member } else { members.append(member) }
        }
        return StrictJSON.Node(value: .object(members), position: document.position)
    }

    /// Reads a JSON configuration file, rejecting unknown keys so a typo is not silently ignored.
    public static func load(path: String) throws(ConfigurationError) -> NodeConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read the configuration file \(path); check the path and its permissions")
        }
        do {
            // Syntax first, with a line and a column; then every unknown name at once, each with the
            // setting it most resembles; only then the types.
            let document: StrictJSON.Node
            do { document = try StrictJSON.parse(data) } catch {
                throw ConfigurationError("\(path) is not valid JSON: \(error)")
            }
            guard case .object = document.value else { throw ConfigurationError("\(path) must hold one JSON object") }
            var known = ["": Set(CodingKeys.allCases.map(\.rawValue)), "tls": Set(TLSSettings.CodingKeys.allCases.map(\.rawValue)),
                         "workspace": Set(WorkspaceConfiguration.CodingKeys.allCases.map(\.rawValue)),
                         "mirror": Set(MirrorSettings.CodingKeys.allCases.map(\.rawValue))]
            for (place, names) in NotificationSettings.knownNames { known[place.isEmpty ? "notifications" : "notifications.\(place)"] = names }
            let unknown = StrictJSON.unknownMembers(in: document, known: known)
            if !unknown.isEmpty {
                throw ConfigurationError("\(path): " + unknown.map(\.description).joined(separator: "\n\(path): "))
            }
            if case .bool? = document["allowPlainSessions"]?.value {
                throw ConfigurationError("\(path): allowPlainSessions lists the sites still on protocol 1 whose plain sessions this node admits, for example [\"north\"]; true and false are not accepted, since admitting every site in plain text would let anyone relay an upgraded site's proof")
            }
            var config = try JSONDecoder().decode(NodeConfiguration.self, from: Data(Self.withDefaults(document).json))
            // File names in the file are relative to the file's folder, not to where serve was started.
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            config.tls = config.tls?.resolvingPaths(relativeTo: folder)
            config.notifications = config.notifications.resolvingPaths(relativeTo: folder)
            config.workspace = config.workspace.resolvingPaths(relativeTo: folder)
            config.mirror = config.mirror?.resolvingPaths(relativeTo: folder)
            do { try config.validate() } catch { throw ConfigurationError("\(path): \(error.message)") }
            return config
        } catch let error as ConfigurationError {
            throw error
        } catch let error as DecodingError {
            throw ConfigurationError("\(path): \(Self.explain(error, in: try? StrictJSON.parse(data)))")
        } catch {
            throw ConfigurationError("\(path) is not valid JSON: \(error.localizedDescription)")
        }
    }

    /// Checks bounds that JSON types alone do not.
    public func validate() throws(ConfigurationError) {
        guard pollMillis >= 10, pollMillis <= 60_000 else { throw ConfigurationError("pollMillis must be between 10 and 60000") }
        guard reconnectMinMillis >= 10, reconnectMaxMillis >= reconnectMinMillis else {
            throw ConfigurationError("reconnectMinMillis must be at least 10 and at most reconnectMaxMillis")
        }
        guard (1...4096).contains(batchBlocks) else { throw ConfigurationError("batchBlocks must be between 1 and 4096") }
        guard escalationMillis == 0 || (50...600_000).contains(escalationMillis) else {
            throw ConfigurationError("escalationMillis must be 0 (off) or between 50 and 600000")
        }
        let standard = WireLimits.standard
        guard (Self.minimumLineBytes...standard.maxLineBytes).contains(maxLineBytes) else {
            throw ConfigurationError("maxLineBytes must be between \(Self.minimumLineBytes) and \(standard.maxLineBytes)")
        }
        guard (Self.minimumBatchBytes...standard.maxBatchBytes).contains(maxBatchBytes) else {
            throw ConfigurationError("maxBatchBytes must be between \(Self.minimumBatchBytes) and \(standard.maxBatchBytes)")
        }
        guard (Self.minimumBatchBytes...standard.maxBatchCompressedBytes).contains(maxBatchCompressedBytes) else {
            throw ConfigurationError("maxBatchCompressedBytes must be between \(Self.minimumBatchBytes) and \(standard.maxBatchCompressedBytes)")
        }
        guard (1...4096).contains(maxSessions) else { throw ConfigurationError("maxSessions must be between 1 and 4096") }
        guard (3000...3_600_000).contains(idleTimeoutMillis) else {
            throw ConfigurationError("idleTimeoutMillis must be between 3000 and 3600000")
        }
        try workspace.validate()
        try mirror?.validate()
        try tls?.validate(listening: listen != nil)
        do { try notifications.validate() } catch { throw ConfigurationError(error.detail) }
    }

    /// A decoding error in the words of the file: where the value is (line and column), which
    /// setting, and what kind of value it needs.
    static func explain(_ error: DecodingError, in document: StrictJSON.Node?) -> String {
        func kind(_ type: Any.Type) -> String {
            switch type {
            case is String.Type: "a string"
            case is Int.Type: "an integer"
            case is Bool.Type: "true or false"
            case is Endpoint.Type: "a \"HOST:PORT\" string"
            default: type is any Collection.Type ? "a list" : "an object"
            }
        }
        func found(_ node: StrictJSON.Node?) -> String {
            switch node?.value {
            case .string?: "a string"
            case .number?: "a number"
            case .bool?: "true or false"
            case .null?: "null"
            case .array?: "a list"
            case .object?: "an object"
            case nil: "nothing"
            }
        }
        let context: DecodingError.Context
        var what: String
        switch error {
        case .typeMismatch(let type, let c), .valueNotFound(let type, let c):
            context = c
            what = "expected \(kind(type))"
        case .dataCorrupted(let c), .keyNotFound(_, let c):
            context = c
            what = c.debugDescription
        @unknown default:
            return "\(error)"
        }
        var node = document
        for key in context.codingPath {
            if let index = key.intValue, case .array(let elements)? = node?.value { node = index < elements.count ? elements[index] : nil } else { node = node?[key.stringValue] }
        }
        switch error {
        case .typeMismatch, .valueNotFound: what += ", found \(found(node))"
        default: break
        }
        var path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        if path.hasPrefix(".") { path.removeFirst() }
        let place = [node.map { "\($0.position)" }, path.isEmpty ? nil : "(\(path))"].compactMap { $0 }.joined(separator: " ")
        return (place.isEmpty ? "" : "\(place): ") + what
    }
}
