import Foundation

/// node.json's `mirror` section: `serve` keeps a PostgreSQL schema current from the store as one of
/// its services (`tierline mirror` run inside the node; Docs/postgres-mirror.md).
///
/// ```json
/// "mirror": {"postgres": "postgres://tierline_mirror@db.example/reports?sslmode=verify-full&sslrootcert=pg-ca.pem",
///            "passwordFile": "pg-password", "schema": "tierline"}
/// ```
public struct MirrorSettings: Sendable, Codable, Equatable {
    /// The PostgreSQL URL, as `tierline mirror --postgres` takes it (a relative `sslrootcert` is
    /// relative to the configuration file's folder).
    public var postgres: String
    /// The schema the mirror owns.
    public var schema: String
    /// A file holding the role's password, read when serve starts; it wins over the URL's password,
    /// which wins over `$PGPASSWORD`.
    public var passwordFile: String?
    /// Longest wait, in ms, for PostgreSQL to answer one batch, or a connection with its migration:
    /// past it the mirror drops the connection and tries again (`tierline mirror --timeout-millis`).
    public var timeoutMillis: Int

    /// The range ``timeoutMillis`` takes, and its default.
    public static let timeoutRange = 1000...3_600_000
    public static let defaultTimeoutMillis = 120_000

    public init(postgres: String, schema: String = "tierline", passwordFile: String? = nil, timeoutMillis: Int = Self.defaultTimeoutMillis) {
        self.postgres = postgres
        self.schema = schema
        self.passwordFile = passwordFile
        self.timeoutMillis = timeoutMillis
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case postgres, schema, passwordFile, timeoutMillis
    }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        postgres = try values.decode(String.self, forKey: .postgres)
        schema = try values.decodeIfPresent(String.self, forKey: .schema) ?? "tierline"
        passwordFile = try values.decodeIfPresent(String.self, forKey: .passwordFile)
        timeoutMillis = try values.decodeIfPresent(Int.self, forKey: .timeoutMillis) ?? Self.defaultTimeoutMillis
    }

    /// - Throws: ``ConfigurationError`` for a ``timeoutMillis`` out of range.
    public func validate() throws(ConfigurationError) {
        guard Self.timeoutRange.contains(timeoutMillis) else {
            throw ConfigurationError("mirror.timeoutMillis must be between \(Self.timeoutRange.lowerBound) and \(Self.timeoutRange.upperBound) (the default is \(Self.defaultTimeoutMillis)), not \(timeoutMillis)")
        }
    }

    /// The same settings with the password file, and the URL's `sslrootcert`, taken relative to `folder`.
    public func resolvingPaths(relativeTo folder: String) -> MirrorSettings {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: folder).appendingPathComponent(path).standardizedFileURL.path
        }
        var copy = self
        copy.passwordFile = passwordFile.map(resolve)
        if var parts = URLComponents(string: postgres), let items = parts.queryItems {
            parts.queryItems = items.map { $0.name == "sslrootcert" ? URLQueryItem(name: $0.name, value: $0.value.map(resolve)) : $0 }
            copy.postgres = parts.string ?? postgres
        }
        return copy
    }

    /// The role's password from ``passwordFile`` (its first line), `nil` without one.
    /// - Throws: ``ConfigurationError`` when the file cannot be read.
    public func password() throws(ConfigurationError) -> String? {
        guard let file = passwordFile else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError("mirror.passwordFile \(file) cannot be read; check the path and its permissions")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    }
}
