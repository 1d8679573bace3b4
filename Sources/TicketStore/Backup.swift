import Foundation
import GRDB
import TicketModel

/// What a backup wrote, or what a restore read.
public struct BackupReport: Sendable, Encodable {
    public var file: String
    public var site: String
    public var role: String
    public var bytes: Int
    public var blocks: Int
    public var tickets: Int
    public var vector: VersionVector
    public var digest: String
}

extension TicketDatabase {
    /// Writes a consistent copy of this store's database to `file` with SQLite's online backup,
    /// while other connections (a running node, the CLI) keep reading and writing.
    ///
    /// The copy is read in one WAL snapshot, written to `FILE.partial`, checked with
    /// `PRAGMA integrity_check`, and only then renamed to `file`, so `file` is either absent or whole.
    /// An existing `file` is never overwritten. The site's private key is not part of the copy.
    public func backup(to file: String, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> BackupReport {
        let files = FileManager.default
        guard !files.fileExists(atPath: file) else {
            throw StoreError(.invalidInput, "\(file) already exists; a backup never overwrites a file, so name a new one")
        }
        let partial = file + ".partial"
        try? files.removeItem(atPath: partial)
        do {
            let copy = try DatabaseQueue(path: partial)
            try writer.backup(to: copy, pagesPerStep: 256) { step in
                progress?(Int(step.completedPageCount), Int(step.totalPageCount))
            }
            // The copy leaves WAL mode, so it opens read-only (from a backup volume) and leaves no
            // -wal or -shm files beside it.
            try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try Self.check(copy, file: file)
            let report = try TicketDatabase(copy, key: nil).report(file: file)
            try copy.close()
            try files.moveItem(atPath: partial, toPath: file)
            return report
        } catch {
            try? files.removeItem(atPath: partial)
            if error is StoreError { throw error }
            throw StoreError(.refusedWrite, "the backup to \(file) failed (\(error)); check the folder exists, is writable and has room")
        }
    }

    /// Passes when `reader` is a whole Tierline store: SQLite's integrity check, and an identity.
    @discardableResult
    static func check(_ reader: any DatabaseReader, file: String) throws -> LocalIdentity {
        try reader.read { db in
            let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            guard problems == ["ok"] else {
                throw StoreError(.corruptFile, "\(file) fails SQLite's integrity check (\(problems.prefix(3).joined(separator: "; "))); use another backup")
            }
            guard try db.tableExists("localSite"), try db.tableExists("block") else {
                throw StoreError(.corruptFile, "\(file) is an SQLite database but not a Tierline store")
            }
            return try identity(db)
        }
    }

    /// What this store holds, for a backup or restore report.
    func report(file: String) throws -> BackupReport {
        try writer.read { db in
            let me = try Self.identity(db)
            let bytes = (try Int.fetchOne(db, sql: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")) ?? 0
            return BackupReport(file: file, site: me.site.rawValue, role: me.role.rawValue, bytes: bytes,
                                blocks: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block") ?? 0,
                                tickets: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket") ?? 0,
                                vector: try Self.vector(db), digest: try Self.digest(db))
        }
    }

    /// When this store was restored from a backup and is still waiting to learn its own highest
    /// block from a peer (ms since 1970); `nil` when local writes are allowed.
    public func restoredAt() throws -> Int64? {
        try writer.read { db in try Self.restoredAt(db) }
    }

    static func restoredAt(_ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT restoredAt FROM localSite WHERE id = 1")
    }

    /// Called when a peer has sent everything it holds (its `synced` vector): a restored store that
    /// now holds every block of its own site the peer knows may write again, above them.
    ///
    /// Only a peer that can be expected to hold the site's newest blocks lifts the fence: the
    /// coordinator, through which every site syncs (for a restored coordinator, any site). A peer
    /// that has never received a block of this site never lifts it. The fence also stays up while
    /// the peer claims a block of this site that this store does not hold (held back, in flight).
    /// Returns `true` when this call lifted the fence.
    @discardableResult
    public func confirmOwnSequence(peer: VersionVector, peerRole: SiteRole) throws -> Bool {
        try writer.write { db in
            guard try Self.restoredAt(db) != nil else { return false }
            let me = try Self.identity(db)
            guard peerRole == .coordinator || me.role == .coordinator, peer[me.site] > 0 else { return false }
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pendingBlock WHERE origin = ?", arguments: [me.site.rawValue]) ?? 0
            guard try Self.vector(db)[me.site] >= peer[me.site], pending == 0 else { return false }
            try db.execute(sql: "UPDATE localSite SET restoredAt = NULL WHERE id = 1")
            return true
        }
    }

    /// Lifts the restore fence by hand: the operator vouches that no block of this site exists
    /// beyond what this store holds (for example, the site never wrote after the backup).
    public func releaseRestoreFence() throws {
        try writer.write { db in try db.execute(sql: "UPDATE localSite SET restoredAt = NULL WHERE id = 1") }
    }
}

extension StoreDirectory {
    /// Makes this folder's store from a backup file.
    ///
    /// The folder must not hold a database yet. The key comes from `keyFile`, else from the folder's
    /// `site.key`, and must be the one the backup's site signs with. The restored store refuses local
    /// writes until a sync with a peer has told it its own highest block (``TicketDatabase/confirmOwnSequence(peer:)``).
    public func restore(from file: String, keyFile: String? = nil, now: Int64) throws -> (TicketDatabase, BackupReport) {
        let files = FileManager.default
        guard files.fileExists(atPath: file) else {
            throw StoreError(.notInitialized, "no backup file at \(file)")
        }
        guard !files.fileExists(atPath: databasePath) else {
            throw StoreError(.alreadyInitialized, "\(path) already holds a database; move the folder aside (keep its site.key) and restore into an empty one")
        }
        var source = Configuration()
        source.readonly = true
        let backup: DatabaseQueue
        do { backup = try DatabaseQueue(path: file, configuration: source) } catch {
            throw StoreError(.corruptFile, "\(file) cannot be opened as an SQLite database (\(error))")
        }
        defer { try? backup.close() }
        let identity: LocalIdentity
        do { identity = try TicketDatabase.check(backup, file: file) } catch let error as StoreError { throw error } catch {
            throw StoreError(.corruptFile, "\(file) is not a readable Tierline store (\(error))")
        }
        let key: SiteKey
        if let keyFile {
            key = try Self.loadKey(from: keyFile)
        } else {
            guard FileManager.default.fileExists(atPath: keyPath) else {
                throw StoreError(.notInitialized, "\(keyPath) is missing; pass the site's key file with --key PATH (the site.key kept from `init`)")
            }
            key = try loadKey()
        }
        guard identity.publicKey == key.publicKey else {
            throw StoreError(.keyMismatch, "the key does not belong to site \(identity.site) of this backup; use that site's own site.key")
        }
        try files.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if keyFile != nil, files.fileExists(atPath: keyPath), (try? loadKey())?.publicKey != key.publicKey {
            throw StoreError(.keyMismatch, "\(keyPath) holds another key than --key; remove it or leave out --key")
        }
        if keyFile != nil, !files.fileExists(atPath: keyPath) {
            guard files.createFile(atPath: keyPath, contents: Data((key.rawRepresentation.hexString + "\n").utf8),
                                   attributes: [.posixPermissions: 0o600]) else {
                throw StoreError(.refusedWrite, "cannot write \(keyPath); check the folder's permissions")
            }
        }
        do {
            // The copy is migrated and fenced under a temporary name, then renamed into place: a crash
            // at any point leaves either no database (restore again) or a whole, fenced one.
            let staging = databasePath + ".restoring"
            for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: staging + suffix) }
            let copy = try DatabaseQueue(path: staging)
            try backup.backup(to: copy)
            _ = try TicketDatabase(copy, key: key)
            try copy.write { db in try db.execute(sql: "UPDATE localSite SET restoredAt = ? WHERE id = 1", arguments: [now]) }
            // Closing checkpoints any WAL into the file, so the rename moves the whole database.
            try copy.close()
            guard rename(staging, databasePath) == 0 else {
                throw StoreError(.refusedWrite, "cannot move the restored database into place (errno \(errno))")
            }
            let database = try TicketDatabase(TicketDatabase.openPool(path: databasePath), key: key)
            return (database, try database.report(file: databasePath))
        } catch {
            for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: databasePath + ".restoring" + suffix) }
            if files.fileExists(atPath: databasePath) {
                throw StoreError(.refusedWrite, "the store was restored into \(path), but opening it failed (\(error)); it still waits for a sync before local writes")
            }
            throw StoreError(.refusedWrite, "restoring into \(path) failed (\(error)); nothing was kept, check the folder's permissions and room")
        }
    }
}
