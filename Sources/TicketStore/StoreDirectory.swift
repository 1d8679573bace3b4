import Foundation
import TicketModel

/// A store on disk: a folder with the SQLite database and the site's private key.
///
/// ```
/// DIR/tierline.sqlite    the database (WAL)
/// DIR/site.key           the Ed25519 private key, hex, mode 0600
/// ```
public struct StoreDirectory: Sendable {
    public let path: String
    public var databasePath: String { path + "/tierline.sqlite" }
    public var keyPath: String { path + "/site.key" }

    public init(path: String) { self.path = path }

    /// The folder from `--store`, else `$TIERLINE_STORE`, else `~/.tierline`.
    public static func resolve(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> StoreDirectory {
        if let option, !option.isEmpty { return StoreDirectory(path: option) }
        if let env = environment["TIERLINE_STORE"], !env.isEmpty { return StoreDirectory(path: env) }
        return StoreDirectory(path: (environment["HOME"] ?? NSHomeDirectory()) + "/.tierline")
    }

    /// Creates the folder, the site's key pair (private key file mode 0600) and the database.
    public func create(site: SiteID, role: SiteRole) throws -> TicketDatabase {
        let files = FileManager.default
        if files.fileExists(atPath: databasePath) || files.fileExists(atPath: keyPath) {
            throw StoreError(.alreadyInitialized, "a store already exists at \(path); use another --store or remove it first")
        }
        try files.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = SiteKey.generate()
        // Create the key file with mode 0600 from the start, so the key is never readable by others.
        guard files.createFile(atPath: keyPath, contents: Data((key.rawRepresentation.hexString + "\n").utf8),
                               attributes: [.posixPermissions: 0o600]) else {
            throw StoreError(.refusedWrite, "cannot write \(keyPath); check the folder's permissions")
        }
        let database = try TicketDatabase(TicketDatabase.openPool(path: databasePath), key: key)
        try database.initialize(site: site, role: role)
        return database
    }

    /// Opens an initialized store with its key.
    public func open() throws -> TicketDatabase {
        guard FileManager.default.fileExists(atPath: databasePath) else {
            throw StoreError(.notInitialized, "no store at \(path); run `tierline init --site NAME --store \(path)` first")
        }
        let key = try loadKey()
        let database = try TicketDatabase(TicketDatabase.openPool(path: databasePath), key: key)
        // A coordinator made before the roster existed founds it now, from the sites it has met.
        if try database.identity().role == .coordinator, try database.rosterVersion() == 0 { try database.foundRoster() }
        return database
    }

    /// The site's signing key from `site.key`.
    public func loadKey() throws -> SiteKey { try Self.loadKey(from: keyPath) }

    /// A site's signing key from a key file (64 hex digits).
    public static func loadKey(from keyPath: String) throws -> SiteKey {
        guard let data = FileManager.default.contents(atPath: keyPath) else {
            throw StoreError(.notInitialized, "the site key \(keyPath) is missing; restore it from the site's backup")
        }
        let hex = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == 64, let bytes = [UInt8](hex: hex), let key = try? SiteKey(rawRepresentation: bytes) else {
            throw StoreError(.corruptFile, "the site key \(keyPath) is not 64 hex digits; restore it from the site's backup")
        }
        return key
    }
}

extension TicketDatabase {
    /// An export of the blocks a peer with `vector` lacks (all blocks for an empty vector).
    public func exportArchive(after vector: VersionVector = VersionVector()) throws -> (bytes: [UInt8], blockCount: Int) {
        let blocks = try blocks(after: vector)
        return (try BlockArchive.encode(blocks: blocks, keys: try siteKeys()), blocks.count)
    }

    /// Imports an export file: learns the keys of new sites and applies the blocks, in one transaction.
    public func importArchive(_ file: [UInt8]) throws -> ApplyReport {
        let archive = try BlockArchive.decode(file)
        return try apply(archive.blocks, learning: archive.keys)
    }
}
