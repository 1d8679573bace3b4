import Foundation
import GRDB
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
    ///
    /// Refuses, saying what is wrong, a store this user cannot read and write (permissions, a read-only
    /// file system) and a database that fails SQLite's `quick_check`: a damaged store is neither
    /// served nor synced, so its damage cannot spread to peers. Blocks on SQLite; the check reads
    /// every page of the database once (0.1 s for a store of 100 000 tickets, 150 MB, in the page cache).
    public func open() throws -> TicketDatabase {
        // The folder first: one this user cannot enter hides the database, which is then not "missing".
        if let problem = Self.accessProblem(path, write: true) { throw StoreError(.refusedWrite, problem) }
        guard FileManager.default.fileExists(atPath: databasePath) else {
            throw StoreError(.notInitialized, "no store at \(path); run `tierline init --site NAME --store \(path)` first")
        }
        for file in [databasePath, databasePath + "-wal", databasePath + "-shm"] {
            if let problem = Self.accessProblem(file, write: true) { throw StoreError(.refusedWrite, problem) }
        }
        let key = try loadKey()
        let pool: DatabasePool
        do {
            // Checked through a read-only connection of its own before the pool opens: opening a pool
            // writes to the file (GRDB makes sure of a write-ahead log), which a damaged one must not get.
            var readOnly = Configuration()
            readOnly.readonly = true
            // Waits for other processes' writes as the store's own connections do (`openPool`).
            readOnly.busyMode = .timeout(10)
            let check = try DatabaseQueue(path: databasePath, configuration: readOnly)
            defer { try? check.close() }
            try TicketDatabase.checkIntegrity(check)
            pool = try TicketDatabase.openPool(path: databasePath)
        } catch let error as DatabaseError {
            throw TicketDatabase.openFailure(error, path: databasePath)
        }
        let database = try TicketDatabase(pool, key: key)
        // A coordinator made before the roster existed founds it now, from the sites it has met.
        if try database.identity().role == .coordinator, try database.rosterVersion() == 0 { try database.foundRoster() }
        return database
    }

    /// The site's signing key from `site.key`.
    public func loadKey() throws -> SiteKey { try Self.loadKey(from: keyPath) }

    /// A site's signing key from a key file (64 hex digits).
    public static func loadKey(from keyPath: String) throws -> SiteKey {
        if let problem = accessProblem(keyPath, write: false) { throw StoreError(.refusedWrite, problem) }
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

extension StoreDirectory {
    /// Why this process cannot read (and, with `write`, write) `path`, for an error message; `nil` when
    /// it can, or when nothing is there (the caller says what is missing).
    ///
    /// The message names the path, the user and the owner, or the read-only file system: a key that
    /// cannot be read is not "missing", and a store that cannot be written is not "damaged".
    static func accessProblem(_ path: String, write: Bool) -> String? {
        guard access(path, write ? R_OK | W_OK : R_OK) != 0 else { return nil }
        let code = errno
        switch code {
        case ENOENT:
            return nil
        case EROFS:
            return "\(path) is on a read-only file system; Tierline writes to its store even to read it (SQLite's write-ahead log), "
                + "so remount it read-write, or copy the store folder to a writable place and pass that with --store"
        case EACCES, EPERM:
            let need = write ? "read and write" : "read"
            var owner = ""
            var info = stat()
            if stat(path, &info) == 0, info.st_uid == getuid() {
                return "permission denied: \(path) has mode \(String(info.st_mode & 0o777, radix: 8)), so its owner (this user, \(userName(info.st_uid))) cannot \(need) it"
                    + (write ? "; Tierline writes to its store even to read it (SQLite's write-ahead log)" : "")
                    + "; give the modes back with chmod: the store folder 0700, its files 0600"
            }
            if stat(path, &info) == 0 {
                owner = "; it belongs to \(userName(info.st_uid)) with mode \(String(info.st_mode & 0o777, radix: 8))"
            } else if stat((path as NSString).deletingLastPathComponent, &info) == 0 {
                owner = "; its folder belongs to \(userName(info.st_uid)) with mode \(String(info.st_mode & 0o777, radix: 8))"
            }
            return "permission denied: this user (\(userName(getuid()))) cannot \(need) \(path)\(owner); run the command as the store's owner "
                + "(sudo -u OWNER tierline …) or fix the permissions (the store folder 0700, its files 0600, all owned by one user)"
        default:
            return "cannot use \(path): \(String(cString: strerror(code)))"
        }
    }

    static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }
}

extension TicketDatabase {
    /// Refuses a damaged database: SQLite's `quick_check` (every page and record, without comparing
    /// indexes with their tables), or with `thorough` its full `integrity_check`.
    ///
    /// Runs on the calling thread, reading the whole file once.
    /// - Throws: ``StoreError`` `corruptFile` saying how to restore the store.
    public static func checkIntegrity(_ reader: any DatabaseReader, thorough: Bool = false) throws {
        let pragma = thorough ? "integrity_check" : "quick_check"
        let problems: [String]
        do {
            problems = try reader.read { db in try String.fetchAll(db, sql: "PRAGMA \(pragma)(5)") }
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode.primaryResultCode) {
            problems = [error.message ?? "\(error.resultCode)"]
        }
        guard problems != ["ok"] else { return }
        // SQLite's report has lines of its own ("*** in database main ***" before the first problem).
        let lines = problems.flatMap { $0.split(separator: "\n") }.filter { !$0.hasPrefix("***") }
        throw damaged(reader.path, "SQLite's \(pragma) found: " + lines.prefix(3).joined(separator: "; "))
    }

    /// Runs SQLite's full `integrity_check` on this store (what `serve --check` does).
    public func checkIntegrity() throws { try Self.checkIntegrity(writer, thorough: true) }

    static func damaged(_ path: String, _ finding: String) -> StoreError {
        StoreError(.corruptFile, "the database \(path) is damaged (\(finding)); it is not served or synced, so the damage cannot spread to peers. "
            + "Stop the node, move the store folder aside (keep its site.key) and restore the newest backup into an empty folder: "
            + "`tierline restore BACKUP --store DIR --key SAVED/site.key` (Deploy/OPERATOR.md, \"Backup and restore\"); it then catches up by sync")
    }

    /// What opening a store's database failed on, as a store error that says what to do.
    static func openFailure(_ error: DatabaseError, path: String) -> any Error {
        switch error.resultCode.primaryResultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return damaged(path, error.message ?? "\(error.resultCode)")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
            return StoreError(.refusedWrite, "cannot open \(path) for reading and writing (\(error.message ?? "\(error.resultCode)")); "
                + "check that the store folder and its files belong to this user and that the file system is not read-only")
        default:
            return error
        }
    }
}
