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
    /// The copy is read in one WAL snapshot, written to a new ``PartialFile`` (owner-only), checked
    /// with `PRAGMA integrity_check`, and only then renamed to `file`, so `file` is either absent or
    /// whole. An existing `file` is never overwritten, nor any other file removed. The site's private
    /// key is not part of the copy.
    public func backup(to file: String, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> BackupReport {
        let files = FileManager.default
        guard !files.fileExists(atPath: file) else {
            throw StoreError(.invalidInput, "\(file) already exists; a backup never overwrites a file, so name a new one")
        }
        let (partial, descriptor) = try PartialFile.create(beside: file)
        // SQLite opens the empty file by its name and writes the copy into it.
        close(descriptor)
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
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT restoredAt FROM localSite WHERE id = 1"))
    }

    /// Records that `member` has sent this store everything it holds that this store lacked (its
    /// `synced` frame arrived, and the session left nothing out): for every site whose restore this
    /// store watches, one more replica whose blocks of that site are now here too. Not for a site of
    /// which this store holds a block it could not apply: such a block is here but not counted, so
    /// the member does not yet prove anything about that site.
    /// - Returns: whether that made `member` a witness of a restore it had not yet witnessed.
    @discardableResult
    public func witness(member: SiteID) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO restoreWitness (site, member)
                SELECT w.site, ? FROM restoreWatch w
                WHERE w.site <> ? AND NOT EXISTS (SELECT 1 FROM pendingBlock p WHERE p.origin = w.site)
                """, arguments: [member.rawValue, member.rawValue])
            return db.changesCount > 0
        }
    }

    /// Coordinator: starts (or stops) watching the restore of `site`, as its hello names a restore (or
    /// none). A restore with another id than the one watched (the site was restored again) starts
    /// afresh: witnesses of an earlier restore prove nothing about blocks written since.
    /// - Returns: whether a new watch began.
    @discardableResult
    public func watchRestore(of site: SiteID, restore id: UInt64?) throws -> Bool {
        try writer.write { db in
            let watched = try Int64.fetchOne(db, sql: "SELECT restoreID FROM restoreWatch WHERE site = ?", arguments: [site.rawValue])
            if let id, watched == Int64(clamping: id) { return false }
            try db.execute(sql: "DELETE FROM restoreWatch WHERE site = ?", arguments: [site.rawValue])
            try db.execute(sql: "DELETE FROM restoreWitness WHERE site = ?", arguments: [site.rawValue])
            guard let id else { return false }
            try db.execute(sql: "INSERT INTO restoreWatch (site, restoreID) VALUES (?, ?)", arguments: [site.rawValue, Int64(clamping: id)])
            return true
        }
    }

    /// Coordinator: the members that have not sent it everything they hold since it began watching
    /// the restore of `site` (every active roster member but `site` and this store), sorted; `nil`
    /// when it is not watching `site`.
    public func awaitingWitnesses(for site: SiteID) throws -> [SiteID]? {
        try writer.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM restoreWatch WHERE site = ?", arguments: [site.rawValue]) == true else { return nil }
            return try Self.unwitnessed(db, site: site, excluding: [site, try Self.identity(db).site])
        }
    }

    /// Active roster members, other than `excluding`, that have not witnessed the restore of `site`.
    static func unwitnessed(_ db: Database, site: SiteID, excluding: Set<SiteID>) throws -> [SiteID] {
        let seen = Set(try String.fetchAll(db, sql: "SELECT member FROM restoreWitness WHERE site = ?", arguments: [site.rawValue]))
        let members = try Self.roster(db)?.roster.activeMembers.map(\.site) ?? []
        return try members.filter { !seen.contains($0) }.map(SiteID.init).filter { !excluding.contains($0) }.sorted()
    }

    /// Who a restored store still waits for before it may write: the members that must send it (or
    /// the coordinator) what they hold of its site. `nil` when no fence is up; empty once only the
    /// coordinator's own session is missing.
    public func restoreAwaiting() throws -> [SiteID]? {
        try writer.read { db in
            guard try Self.restoredAt(db) != nil else { return nil }
            return try Self.missingWitnesses(db)
        }
    }

    static func missingWitnesses(_ db: Database) throws -> [SiteID] {
        let me = try Self.identity(db)
        if me.role == .coordinator { return try unwitnessed(db, site: me.site, excluding: [me.site]) }
        guard let text = try String.fetchOne(db, sql: "SELECT restoreAwaiting FROM localSite WHERE id = 1"),
              let named = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            // Nothing heard from the coordinator yet: it is the first to wait for.
            let coordinator = try Self.roster(db)?.roster.sites.first { $0.role == .coordinator }?.site
            return try coordinator.map { [try SiteID($0)] } ?? []
        }
        let seen = Set(try String.fetchAll(db, sql: "SELECT member FROM restoreWitness WHERE site = ?", arguments: [me.site.rawValue]))
        return try named.filter { !seen.contains($0) }.map(SiteID.init)
    }

    /// Called when a peer has sent everything it holds (its `synced` vector, after ``witness(member:)``):
    /// lifts a restored store's fence once its own history is proved whole (PROTOCOL 2.2.6).
    ///
    /// Any block of this site that survived the loss is held by some replica, and each replica keeps
    /// what it holds. So the history is whole once every active roster member has sent everything it
    /// holds, since the restore, to this store or to the coordinator, and this store holds everything
    /// of its site the coordinator then held. A site's fence therefore waits for a session with the
    /// coordinator whose `synced` names no member it has not heard from since it learned of the restore
    /// (`awaiting`), other than members that synced with this store directly; a restored coordinator's
    /// waits for every member. The fence also stays up while this store holds a block of its own site
    /// it cannot apply, or the peer claims one it does not hold.
    /// - Parameter awaiting: the coordinator's list, as its `synced` frame gave it (`nil` from others).
    /// - Returns: `true` when this call lifted the fence.
    @discardableResult
    public func confirmOwnSequence(peer: VersionVector, peerRole: SiteRole, awaiting: [SiteID]? = nil) throws -> Bool {
        try writer.write { db in
            guard try Self.restoredAt(db) != nil else { return false }
            let me = try Self.identity(db)
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pendingBlock WHERE origin = ?", arguments: [me.site.rawValue]) ?? 0
            let whole = try Self.vector(db)[me.site] >= peer[me.site] && pending == 0
            // The coordinator's list counts only from a session that gave this store all it held.
            if peerRole == .coordinator, me.role != .coordinator, let awaiting, whole {
                let text = String(decoding: try JSONEncoder().encode(awaiting.map(\.rawValue)), as: UTF8.self)
                try db.execute(sql: "UPDATE localSite SET restoreAwaiting = ? WHERE id = 1", arguments: [text])
            }
            guard whole, try Self.missingWitnesses(db).isEmpty else { return false }
            try Self.liftFence(db)
            return true
        }
    }

    static func liftFence(_ db: Database) throws {
        try db.execute(sql: "UPDATE localSite SET restoredAt = NULL, restoreAwaiting = NULL WHERE id = 1")
        let me = try Self.identity(db).site.rawValue
        try db.execute(sql: "DELETE FROM restoreWatch WHERE site = ?", arguments: [me])
        try db.execute(sql: "DELETE FROM restoreWitness WHERE site = ?", arguments: [me])
    }

    /// Lifts the restore fence by hand: the operator vouches that no block of this site exists
    /// beyond what this store holds (for example, the site never wrote after the backup).
    public func releaseRestoreFence() throws {
        try writer.write { db in try Self.liftFence(db) }
    }
}

extension StoreDirectory {
    /// Makes this folder's store from a backup file.
    ///
    /// The folder must not hold a database yet. The key comes from `keyFile`, else from the folder's
    /// `site.key`, and must be the one the backup's site signs with. The restored store refuses local
    /// writes until its own history is proved whole (``TicketDatabase/confirmOwnSequence(peer:peerRole:awaiting:)``).
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
            try copy.write { db in
                // Witnesses and watches in the backup are from before the loss: none of them counts.
                try db.execute(sql: "DELETE FROM restoreWatch")
                try db.execute(sql: "DELETE FROM restoreWitness")
                try db.execute(sql: "UPDATE localSite SET restoredAt = ?, restoreAwaiting = NULL WHERE id = 1", arguments: [now])
                try db.execute(sql: "INSERT INTO restoreWatch (site, restoreID) SELECT site, ? FROM localSite WHERE id = 1", arguments: [now])
            }
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
