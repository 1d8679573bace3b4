import Foundation
import NIOSSL
import PostgresNIO

/// Where the mirror writes: a PostgreSQL server, database, role and schema, read from a
/// `postgres://` URL as libpq reads one (the parts the mirror uses).
///
/// ```swift
/// let target = try PostgresTarget(url: "postgres://mirror@db.example:5432/reports?sslmode=verify-full&sslrootcert=/etc/ca.pem",
///                                 schema: "tierline", environment: ProcessInfo.processInfo.environment)
/// ```
///
/// The password comes from the URL, else `$PGPASSWORD`; ``description`` never shows it.
public struct PostgresTarget: Sendable, CustomStringConvertible {
    /// How the connection uses TLS: libpq's `sslmode` values.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// Plain TCP only.
        case disable
        /// TLS when the server offers it, else plain TCP (libpq's default).
        case prefer
        /// TLS, without checking the server's certificate.
        case require
        /// TLS, the server's certificate signed by `sslrootcert`.
        case verifyCA = "verify-ca"
        /// TLS, the certificate signed by `sslrootcert` and naming the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// The CA file (PEM) for `verify-ca` and `verify-full`.
    public var rootCertificate: String?
    /// The PostgreSQL schema the mirror owns: its tables, views and cursor.
    public var schema: String

    /// Parses `url` (`postgres://` or `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`).
    /// - Throws: ``MirrorError`` `badTarget`, saying which part is wrong.
    public init(url: String, schema: String, environment: [String: String]) throws(MirrorError) {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw MirrorError(.badTarget, "--postgres takes a URL like postgres://USER@HOST:PORT/DATABASE?sslmode=require")
        }
        guard let host = parts.host, !host.isEmpty else { throw MirrorError(.badTarget, "the PostgreSQL URL names no host") }
        guard let user = parts.user, !user.isEmpty else {
            throw MirrorError(.badTarget, "the PostgreSQL URL names no role: write it as postgres://ROLE@HOST/DATABASE")
        }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw MirrorError(.badTarget, "the PostgreSQL URL names no database: write it as postgres://ROLE@HOST/DATABASE")
        }
        guard Self.isIdentifier(schema) else {
            throw MirrorError(.badTarget, "schema '\(schema)' is not a plain PostgreSQL name: use lowercase letters, digits and _, starting with a letter or _")
        }
        guard !Self.reservedWords.contains(schema), !schema.hasPrefix("pg_") else {
            throw MirrorError(.badTarget, "schema '\(schema)' is a word PostgreSQL reserves (or starts with pg_, which it keeps for itself): choose another --schema, such as tierline")
        }
        self.host = host
        self.port = parts.port ?? 5432
        self.user = user
        self.password = parts.password ?? environment["PGPASSWORD"]
        self.database = database
        self.schema = schema
        var mode = SSLMode.prefer
        for item in parts.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    throw MirrorError(.badTarget, "sslmode '\(item.value ?? "")' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                mode = value
            case "sslrootcert": rootCertificate = item.value
            default:
                throw MirrorError(.badTarget, "the PostgreSQL URL's parameter '\(item.name)' is not known here: only sslmode and sslrootcert are")
            }
        }
        sslMode = mode
        if mode == .verifyCA || mode == .verifyFull {
            guard let file = rootCertificate, FileManager.default.isReadableFile(atPath: file) else {
                throw MirrorError(.badTarget, "sslmode=\(mode.rawValue) needs sslrootcert=FILE, a readable PEM file of the CA that signed the server's certificate")
            }
        }
    }

    /// Lowercase letters, digits and `_`, not starting with a digit, at most 63 bytes.
    /// PostgreSQL's keywords that cannot name a schema unquoted (reserved, and reserved except as a
    /// function or type name).
    static let reservedWords: Set<String> = [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary", "both",
        "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create", "cross",
        "current_catalog", "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
        "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch",
        "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in", "initially", "inner",
        "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime",
        "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer",
        "overlaps", "placing", "primary", "references", "returning", "right", "select", "session_user", "similar",
        "some", "symmetric", "system_user", "table", "tablesample", "then", "to", "trailing", "true", "union", "unique",
        "user", "using", "variadic", "verbose", "when", "where", "window", "with",
    ]

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// The target without its password.
    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database) (schema \(schema), sslmode \(sslMode.rawValue))"
    }

    /// The connection settings for postgres-nio.
    func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            let context = try NIOSSLContext(configuration: config)
            tls = sslMode == .prefer ? .prefer(context) : .require(context)
        case .verifyCA, .verifyFull:
            var config = TLSConfiguration.makeClientConfiguration()
            config.trustRoots = .file(rootCertificate ?? "")
            config.certificateVerification = sslMode == .verifyFull ? .fullVerification : .noHostnameVerification
            tls = .require(try NIOSSLContext(configuration: config))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password,
                                                             database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = [("application_name", "tierline-mirror")]
        return configuration
    }
}

/// Why the mirror stopped or refused to start.
public struct MirrorError: Error, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        /// The URL, schema or an option is wrong: fix the command.
        case badTarget
        /// PostgreSQL refused or lost the connection, or a statement failed.
        case postgres
        /// The PostgreSQL schema was made by a newer Tierline.
        case newerSchema
        /// A value of the store that PostgreSQL's column cannot hold: retrying does not help.
        case badValue
        /// Another mirror holds the schema's lock: it writes there, this one does not.
        case schemaBusy
        /// The server is older than the mirror needs (``PostgresMirror/minimumServerVersion``).
        case oldServer
    }

    /// Whether the error may go away without anyone acting: a lost or refused connection, a
    /// statement that failed, the schema's lock held by a mirror that may stop. A wrong setting, a
    /// newer schema, an old server or a value PostgreSQL cannot take stays until someone acts.
    public var mayHealByItself: Bool { code == .postgres || code == .schemaBusy }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { detail }
    public var errorDescription: String? { detail }
}
