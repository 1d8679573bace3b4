import Foundation

/// The `workspace` section of node.json: how the node's HTTP server (`http`) treats its clients.
///
/// ```json
/// "workspace": {"metricsTokenFile": "/etc/tierline/metrics-token", "secureCookies": true,
///               "idleTimeoutMillis": 60000, "headerTimeoutMillis": 10000, "maxConnections": 4096,
///               "hubQuietMillis": 60000, "maxEventStreams": 256}
/// ```
///
/// Every setting left out keeps its default. The metrics token itself is never in the file:
/// `metricsTokenFile` names a file only the node's user can read, read once when serve starts.
public struct WorkspaceConfiguration: Sendable, Codable, Equatable {
    /// A file holding the bearer token `/metrics` requires; `nil` leaves `/metrics` open (for a
    /// Prometheus on the same host).
    public var metricsTokenFile: String?
    /// Marks the session cookie `Secure`: set it when agents reach the node through an HTTPS proxy.
    public var secureCookies = false
    /// A connection with no request for this long is closed, ms (1000…3600000).
    public var idleTimeoutMillis = 60_000
    /// A connection whose request head has not fully arrived this long after it opened, or after the
    /// previous response, is closed, ms (100…600000): a client trickling a header byte by byte (slowloris)
    /// holds a connection no longer than this.
    public var headerTimeoutMillis = 10_000
    /// The most connections served at once (16…65536); past it, new ones wait in the listen backlog.
    /// Keep it well under the node's open-file limit, which the sync port shares.
    public var maxConnections = 4_096
    /// How long the node may go without hearing from the hub (the coordinator) before open pages show
    /// a banner saying so, ms (1000…86400000).
    public var hubQuietMillis = 60_000
    /// The most live-update streams (`/api/events`) open at once (1…65536); past it, 503.
    public var maxEventStreams = 256

    public init(_ configure: (inout WorkspaceConfiguration) -> Void = { _ in }) { configure(&self) }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case metricsTokenFile, secureCookies, idleTimeoutMillis, headerTimeoutMillis, maxConnections, hubQuietMillis, maxEventStreams
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = WorkspaceConfiguration()
        metricsTokenFile = try c.decodeIfPresent(String.self, forKey: .metricsTokenFile)
        secureCookies = try c.decodeIfPresent(Bool.self, forKey: .secureCookies) ?? defaults.secureCookies
        idleTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMillis) ?? defaults.idleTimeoutMillis
        headerTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .headerTimeoutMillis) ?? defaults.headerTimeoutMillis
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? defaults.maxConnections
        hubQuietMillis = try c.decodeIfPresent(Int.self, forKey: .hubQuietMillis) ?? defaults.hubQuietMillis
        maxEventStreams = try c.decodeIfPresent(Int.self, forKey: .maxEventStreams) ?? defaults.maxEventStreams
    }

    /// Checks bounds that JSON types alone do not (the token file is read by ``loadMetricsToken()``).
    public func validate() throws(ConfigurationError) {
        guard (1000...3_600_000).contains(idleTimeoutMillis) else {
            throw ConfigurationError("workspace.idleTimeoutMillis must be between 1000 and 3600000")
        }
        guard (100...600_000).contains(headerTimeoutMillis) else {
            throw ConfigurationError("workspace.headerTimeoutMillis must be between 100 and 600000")
        }
        guard (16...65_536).contains(maxConnections) else {
            throw ConfigurationError("workspace.maxConnections must be between 16 and 65536")
        }
        guard (1000...86_400_000).contains(hubQuietMillis) else {
            throw ConfigurationError("workspace.hubQuietMillis must be between 1000 and 86400000")
        }
        guard (1...65_536).contains(maxEventStreams) else {
            throw ConfigurationError("workspace.maxEventStreams must be between 1 and 65536")
        }
        if let metricsTokenFile, metricsTokenFile.isEmpty {
            throw ConfigurationError("workspace.metricsTokenFile is empty; name a file holding the token, or leave it out for an open /metrics")
        }
    }

    /// The same settings with a relative `metricsTokenFile` taken relative to `folder` (the
    /// configuration file's folder).
    public func resolvingPaths(relativeTo folder: String) -> WorkspaceConfiguration {
        var copy = self
        if let file = metricsTokenFile, !file.isEmpty, !file.hasPrefix("/") {
            copy.metricsTokenFile = URL(fileURLWithPath: folder).appendingPathComponent(file).standardizedFileURL.path
        }
        return copy
    }

    /// The longest metrics token read, bytes: a token is a line, not a document.
    static let maxTokenBytes = 4096

    /// Reads the `/metrics` token from ``metricsTokenFile``: its text without surrounding white space.
    /// Runs once when serve starts, so a missing or empty file stops serve instead of locking
    /// Prometheus out later.
    /// - Returns: `nil` when no file is named (an open `/metrics`).
    /// - Throws: ``ConfigurationError`` naming the setting and the file.
    public func loadMetricsToken() throws(ConfigurationError) -> String? {
        guard let path = metricsTokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("workspace.metricsTokenFile: cannot read \(path); the token lives in that file, readable by the node's user only")
        }
        guard data.count <= Self.maxTokenBytes else {
            throw ConfigurationError("workspace.metricsTokenFile: \(path) is \(data.count) bytes; a token is one line of at most \(Self.maxTokenBytes)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw ConfigurationError("workspace.metricsTokenFile: \(path) is empty; make a token with: openssl rand -hex 32 > \(path)")
        }
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) else {
            throw ConfigurationError("workspace.metricsTokenFile: \(path) holds more than one word or a control character; keep one token on one line")
        }
        return token
    }
}
