import Crypto
import Foundation
import GRDB
import TicketModel

/// The SQLite store of one replica: the replication log, the version vector and the materialized tickets.
///
/// A `Sendable` value over a GRDB writer; every method is one transaction. Local writes run in
/// `BEGIN IMMEDIATE` transactions, so the CLI and a running node can share a store file: each write
/// allocates the next `seq`, advances the persisted clock, signs its block, appends it to the log and
/// updates the materialized state, all or nothing. Methods block the calling thread on SQLite; call
/// them off event loops.
///
/// ```swift
/// let db = try TicketDatabase(DatabaseQueue(), key: key)
/// try db.initialize(site: SiteID("north"), role: .site)
/// let ticket = try db.createTicket(TicketDraft(subject: "Printer offline"))
/// ```
///
/// ## Topics
/// - Local writes: ``createTicket(_:)``, ``update(_:_:)``, ``comment(_:body:kind:visibility:actor:)``,
///   ``tag(_:add:remove:)``, ``reopen(_:)``
/// - Replication: ``apply(_:)``, ``blocks(after:)``, ``vector()``, ``digest()``
public struct TicketDatabase: Sendable {
    /// The database itself: visible to this package's targets (the dashboard's fact tables, tests,
    /// the benchmark), not to code outside it, which goes through the store's API.
    package let writer: any DatabaseWriter
    let key: SiteKey?
    let wallClock: @Sendable () -> UInt64
    /// How far ahead of local time a remote block's stamp may be before it is held back (ms).
    public var maxDrift: UInt64 = 300_000
    /// Called at named points inside write transactions; tests throw from it to prove atomicity.
    public var faultHook: (@Sendable (String) throws -> Void)?
    /// Derives the notices of each local write, which go to the outbox in the write's transaction:
    /// installed by the application layer (the Desk), absent in a bare store.
    public var notices: NoticePlanner?
    /// The ticket states of this store's recent local writes (shared by copies of this value).
    let foldStates = StateCache()

    /// Opens a store over `writer`, migrating its schema.
    /// - Parameters:
    ///   - key: the site's signing key; without it the store is read-only for local writes.
    ///   - wallClock: milliseconds since 1970 (injected so tests fix time).
    public init(_ writer: any DatabaseWriter, key: SiteKey?,
                wallClock: @escaping @Sendable () -> UInt64 = TicketDatabase.systemMillis) throws {
        self.writer = writer
        self.key = key
        self.wallClock = wallClock
        let migrator = Schema.migrator
        // A store a newer Tierline has migrated may hold tables and rules this binary does not know:
        // writing to it could break them, so an older binary refuses it instead of going back.
        let unknown = try writer.read { db in try Self.unknownMigrations(db, migrator) { Schema.isOwnMigration($0) } }
        guard unknown.isEmpty else { throw Self.newerStore(unknown) }
        try migrator.migrate(writer)
    }

    /// Applies the migrations of a module that keeps its own tables in this store (the dashboard's
    /// facts), each named `namespace/NAME` so it cannot clash with the store's own or another module's.
    ///
    /// Waits for the writer without blocking the calling thread (GRDB's barrier write, so no read runs
    /// meanwhile); a store whose `namespace/` migrations include one `migrator` does not know (a newer
    /// Tierline's) is refused, as ``init(_:key:wallClock:)`` refuses one of the store's own.
    /// - Throws: ``StoreError`` `refusedWrite` for a newer store; what the migrations throw.
    package func migrate(_ migrator: DatabaseMigrator, namespace: String) async throws {
        let prefix = namespace + "/"
        precondition(migrator.migrations.allSatisfy { $0.hasPrefix(prefix) }, "every migration of \(namespace) is named \(prefix)NAME")
        let unknown = try await writer.read { db in try Self.unknownMigrations(db, migrator) { $0.hasPrefix(prefix) } }
        guard unknown.isEmpty else { throw Self.newerStore(unknown) }
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            migrator.asyncMigrate(writer) { result in done.resume(with: result.map { _ in () }) }
        }
    }

    /// Applied migrations of one owner (`owns`) that `migrator` does not know.
    static func unknownMigrations(_ db: Database, _ migrator: DatabaseMigrator, owns: (String) -> Bool) throws -> [String] {
        try migrator.appliedIdentifiers(db).filter(owns).subtracting(migrator.migrations).sorted()
    }

    static func newerStore(_ unknown: [String]) -> StoreError {
        StoreError(.refusedWrite, "this store was upgraded by a newer Tierline (migration \(unknown.joined(separator: ", "))); run that version or newer (`tierline --version` shows this one's)")
    }

    /// The system's wall time in milliseconds.
    public static func systemMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    /// How a commit waits for the disk (SQLite's `PRAGMA synchronous`).
    public enum Synchronous: String, Sendable {
        /// On disk when the commit returns: a store's setting.
        case full = "FULL"
        /// On disk at the next checkpoint (the peers' setting in the benchmarks).
        case normal = "NORMAL"
        /// Left to the operating system (benchmarks that fill a store to read it).
        case off = "OFF"
    }

    /// Opens (or creates) a WAL database file with `synchronous=FULL`: a write is on disk when it
    /// returns. (Another `synchronous` is for benchmarks that say so.)
    public static func openPool(path: String, synchronous: Synchronous = .full) throws -> DatabasePool {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in try Self.prepare(db, synchronous: synchronous) }
        let pool = try DatabasePool(path: path, configuration: config)
        // GRDB sets up WAL on a pool's writer after `prepareDatabase`, and with it `synchronous =
        // NORMAL`, under which a commit is not on disk until the next checkpoint: the writer, the
        // only connection that commits, gets the store's setting again.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)") }
        return pool
    }

    /// The settings of every connection to a store: `synchronous` as given, a page cache of up to
    /// 16 MiB (SQLite's default of 2 MiB spills a large write to the WAL and reads it back), and a
    /// checkpoint once the WAL holds ``checkpointPages`` pages.
    public static func prepare(_ db: Database, synchronous: Synchronous) throws {
        try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
        try db.execute(sql: "PRAGMA cache_size = \(-pageCacheKiB)")
        try db.execute(sql: "PRAGMA wal_autocheckpoint = \(checkpointPages)")
    }

    /// WAL pages after which a commit copies the WAL into the database (32 MiB of 4 KiB pages;
    /// SQLite's default is 1,000). One write of a ticket dirties a dozen pages (its row, its list
    /// indexes, its block and links, the site's clock and vector), many of them the same pages every
    /// write: a checkpoint copies each page once however often it was written since the last, so
    /// fewer, larger checkpoints copy less. Single writes ran 1.2× faster (`tierline-bench --only w1`).
    static let checkpointPages = 8_192

    /// The page cache of a store's connections, KiB (a large batch grows its own: ``PageCacheBudget``).
    static let pageCacheKiB = 16_384

    // MARK: Identity

    /// Records this store's site, role and public key. Fails if the store already has an identity.
    public func initialize(site: SiteID, role: SiteRole) throws {
        guard let key else { throw StoreError(.refusedWrite, "initializing a store needs the site's key") }
        try writer.write { db in
            if try Row.fetchOne(db, sql: "SELECT site FROM localSite") != nil {
                throw StoreError(.alreadyInitialized, "this store already belongs to a site")
            }
            try db.execute(sql: "INSERT INTO localSite (id, site, role, publicKey, hlc, nextNumber) VALUES (1, ?, ?, ?, 0, 1)",
                           arguments: [site.rawValue, role.rawValue, Data(key.publicKey)])
            try db.execute(sql: "INSERT INTO siteKey (site, publicKey, role) VALUES (?, ?, ?)",
                           arguments: [site.rawValue, Data(key.publicKey), role.rawValue])
        }
        // A coordinator founds the fleet's roster and trusts its own key.
        if role == .coordinator { try foundRoster() }
    }

    /// This store's site, role and public key.
    public func identity() throws -> LocalIdentity {
        try writer.read { db in try Self.identity(db) }
    }

    package static func identity(_ db: Database) throws -> LocalIdentity {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT site, role, publicKey FROM localSite WHERE id = 1")) else {
            throw StoreError(.notInitialized, "this store has no site yet; run `tierline init --site NAME` first")
        }
        return LocalIdentity(site: try SiteID(row["site"]), role: SiteRole(rawValue: row["role"]) ?? .site,
                             publicKey: [UInt8](row["publicKey"] as Data))
    }

    // MARK: Local writes

    /// Appends `changes` as one or more consecutive blocks in one `BEGIN IMMEDIATE` transaction.
    ///
    /// `makeChanges` runs inside the transaction with this site's id and a display-number allocator, so
    /// it sees the state it writes over. `record`, when given, runs in the same transaction once the
    /// blocks are written, to note them elsewhere.
    @discardableResult
    /// - Parameter followUp: changes derived from the state the first changes made (a new ticket's
    ///   SLA policy), written in further blocks of the same transaction.
    /// - Parameter group: the connection of a ``GroupCommit`` batch: the write runs in the savepoint
    ///   the batch opened for it, and commits with the batch, instead of in a transaction of its own.
    func writeLocal(_ makeChanges: (Database, SiteID, () throws -> UInt64) throws -> [Change],
                    followUp: ((Database) throws -> [Change])? = nil,
                    record: ((Database, [Block]) throws -> Void)? = nil,
                    within group: Database? = nil) throws -> [Block] {
        guard let key else { throw StoreError(.refusedWrite, "this store was opened without its site key; local writes need it") }
        return try GroupCommit.writing(writer, within: group) { db in
            var blocks: [Block] = []
            // A grouped write commits with others, or not, after it returns: it keeps no states.
            var lease: StateCache.Lease?
            try GroupCommit.transaction(db, grouped: group != nil) {
                blocks = []
                lease = group == nil ? try foldStates.checkOut(db) : nil
                let me = try Self.checkLocalWrite(db, key: key)
                let changes = try makeChanges(db, me.site) {
                    let number = try Self.nextNumber(db, site: me.site)
                    try Self.setNextNumber(db, number + 1)
                    return number
                }
                var clock = try Self.clock(db, maxDrift: maxDrift)
                let cache = BlockCache()
                // A follow-up write absorbs its blocks into the states the first write folded, and
                // the first into those of earlier writes (``StateCache``).
                let folds = lease?.folds ?? FoldCache()
                func write(_ changes: [Change]) throws {
                    var written: [Block] = []
                    for chunk in BlockPlanner.split(changes) {
                        let vector = try Self.vector(db)
                        let hlc = try clock.now(wall: wallClock())
                        let block: Block
                        do {
                            block = try Block.make(origin: me.site, seq: vector[me.site] + 1, hlc: hlc, deps: vector, changes: chunk, key: key)
                        } catch {
                            throw StoreError(.invalidInput, "the write does not fit a block: \(error)")
                        }
                        try Self.insert(db, block)
                        try faultHook?("afterBlockInsert")
                        cache.insert(block)
                        written.append(block)
                    }
                    let entities = Set(written.flatMap { $0.changes.map(\.entity) })
                    try Self.materialize(db, entities, cache: cache, fresh: try Self.opened(db, by: written), folds: folds, written: written)
                    blocks += written
                }
                try write(changes)
                if let followUp, !blocks.isEmpty {
                    let more = try followUp(db)
                    if !more.isEmpty { try write(more) }
                }
                try Self.saveClock(db, clock)
                try record?(db, blocks)
                if let notices, !blocks.isEmpty {
                    let now = wallClock()
                    try Self.enqueue(db, try notices(WriteContext(db: db, blocks: blocks, site: me.site, now: now)), now: now)
                    try faultHook?("afterOutbox")
                }
                try faultHook?("beforeCommit")
                try lease?.close(db)
                return .commit
            }
            if let lease { foldStates.checkIn(lease) }
            return blocks
        }
    }

    /// The tickets `written` opens that no other block of the log touches: their state is folded
    /// from these blocks alone. (A re-issued copy's create may name a ticket the log already holds.)
    static func opened(_ db: Database, by written: [Block]) throws -> Set<UUID> {
        var carriers: [UUID: Int] = [:]
        for block in written {
            for id in Set(block.changes.lazy.filter { $0.entity.kind == .ticket }.map(\.entity.id)) { carriers[id, default: 0] += 1 }
        }
        var opened = Set<UUID>()
        for block in written {
            for change in block.changes where change.entity.kind == .ticket {
                guard case .create = change.operation, !opened.contains(change.entity.id) else { continue }
                let held = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM entityBlock WHERE entity = ?"),
                                            arguments: [change.entity.id.keyBytes]) ?? 0
                if held == carriers[change.entity.id] { opened.insert(change.entity.id) }
            }
        }
        return opened
    }

    /// The checks every local write makes inside its transaction: the key is this store's, no restore
    /// fence is up, no peer showed that this store is a copy, and none of this site's own blocks
    /// waits for earlier ones.
    /// Why a local write would be refused now (a restore that waits, a copy, a removed site, a
    /// stranded block of this site, another key), read without writing; `nil` when it may write.
    /// For writers that run unattended (the escalation ticker), which skip a round rather than fail it.
    public func localWriteRefusal() throws -> StoreError? {
        guard let key else { return StoreError(.refusedWrite, "this store was opened without its site key; local writes need it") }
        return try writer.read { db in
            do {
                _ = try Self.checkLocalWrite(db, key: key)
                return nil
            } catch let error as StoreError {
                return error
            }
        }
    }

    static func checkLocalWrite(_ db: Database, key: SiteKey) throws -> LocalIdentity {
        let me = try Self.identity(db)
        guard me.publicKey == key.publicKey else {
            throw StoreError(.keyMismatch, "the key file does not match this store's site key; restore the store's own site.key")
        }
        // Removed is for good: said before the restore's wait, which could otherwise send the
        // operator to lift that wait first.
        if let refusal = try removedSiteRefusal(db, site: me.site) {
            throw StoreError(.refusedWrite, refusal)
        }
        if try Self.restoredAt(db) != nil {
            let missing = try Self.missingWitnesses(db).map(\.rawValue)
            let waiting = missing.isEmpty ? "the coordinator to confirm it holds nothing newer of this site" : "news from \(missing.joined(separator: ", "))"
            throw StoreError(.awaitingSync, "this store was restored from a backup and may not write until every block of its own site that survived elsewhere is back, so no sequence number is reused; it waits for \(waiting). Each of those sites syncs with the coordinator (or with this store), then this store syncs with the coordinator: `tierline sync HUB:PORT`, or `tierline serve` dialing it. `tierline status` shows who is still awaited; `tierline restore --release` lifts the wait by hand if you know no block of this site exists beyond what it holds")
        }
        if let refusal = try copiedStoreRefusal(db, site: me.site) {
            throw StoreError(.refusedWrite, refusal)
        }
        if let held = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(seq) FROM pendingBlock WHERE origin = ?"), arguments: [me.site.rawValue]) {
            throw StoreError(.refusedWrite, "this store holds its own site's block \(held) but not the ones before it (a restore from backup?); import or sync the missing blocks from a peer before writing, so no sequence number is reused")
        }
        return me
    }

    /// The next display number of this site. Never below a number it already used: a restored store
    /// learns its own tickets from peers, and its counter must move past them.
    static func nextNumber(_ db: Database, site: SiteID) throws -> UInt64 {
        UInt64(try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT MAX(nextNumber, COALESCE((SELECT MAX(number) + 1 FROM ticket WHERE originSite = ?), 1))
            FROM localSite WHERE id = 1
            """), arguments: [site.rawValue]) ?? 1)
    }

    static func setNextNumber(_ db: Database, _ number: UInt64) throws {
        try db.cachedStatement(sql: "UPDATE localSite SET nextNumber = ? WHERE id = 1").execute(arguments: [Int64(number)])
    }

    /// The persisted clock of this site.
    static func clock(_ db: Database, maxDrift: UInt64) throws -> HybridClock {
        HybridClock(last: HLC(rawValue: UInt64(bitPattern: try Int64.fetchOne(db.cachedStatement(sql: "SELECT hlc FROM localSite WHERE id = 1")) ?? 0)),
                    maxDrift: maxDrift)
    }

    static func saveClock(_ db: Database, _ clock: HybridClock) throws {
        try db.cachedStatement(sql: "UPDATE localSite SET hlc = ? WHERE id = 1").execute(arguments: [Int64(bitPattern: clock.last.rawValue)])
    }

    // MARK: Replication

    /// This store's version vector.
    public func vector() throws -> VersionVector {
        try writer.read { db in try Self.vector(db) }
    }

    package static func vector(_ db: Database) throws -> VersionVector {
        var vector = VersionVector()
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT site, seq FROM versionEntry")) {
            vector[try SiteID(row["site"])] = UInt64(row["seq"] as Int64)
        }
        return vector
    }

    /// Public keys known to this store, by site.
    public func siteKeys() throws -> [SiteID: [UInt8]] {
        try writer.read { db in try Self.siteKeys(db) }
    }

    static func siteKeys(_ db: Database) throws -> [SiteID: [UInt8]] {
        var keys: [SiteID: [UInt8]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT site, publicKey FROM siteKey") {
            keys[try SiteID(row["site"])] = [UInt8](row["publicKey"] as Data)
        }
        return keys
    }

    /// Learns site keys on first use. A key that differs from the one already known is refused.
    public func learn(keys: [SiteID: [UInt8]]) throws {
        try writer.write { db in try Self.learn(db, keys: keys) }
    }

    static func learn(_ db: Database, keys: [SiteID: [UInt8]]) throws {
        // With a pinned coordinator, keys come from the signed roster only.
        guard try pinnedKey(db) == nil else { return }
        let known = try siteKeys(db)
        for (site, key) in keys.sorted(by: { $0.key < $1.key }) {
            if let existing = known[site] {
                guard existing == key else {
                    throw StoreError(.keyMismatch, "site \(site) is known here with another public key; nothing was imported. Check where this file came from")
                }
            } else {
                guard key.count == 32 else { throw StoreError(.corruptFile, "the public key of \(site) is \(key.count) bytes, not 32") }
                try db.execute(sql: "INSERT INTO siteKey (site, publicKey) VALUES (?, ?)", arguments: [site.rawValue, Data(key)])
            }
        }
    }

    /// Applies remote blocks in one transaction: atomically, idempotently, in causal order.
    ///
    /// A block whose predecessor or deps are missing is held back and applied once they arrive; one
    /// stamped more than ``maxDrift`` ahead waits until local time catches up. A block with a bad
    /// signature, from a site with no known key, or under an `(origin, seq)` already held with another
    /// hash (equivocation) is refused and reported; the others still apply.
    /// - Parameters:
    ///   - keys: public keys to learn first, in the same transaction (from an export file).
    ///   - verified: the key each origin's blocks were already verified against, outside the
    ///     transaction (a session checks signatures on every core before it takes the write lock). A
    ///     block's signature is checked again here unless the store's key for its origin is exactly
    ///     that key, so a roster change in between cannot let a block through unchecked.
    public func apply(_ blocks: [Block], learning keys: [SiteID: [UInt8]] = [:],
                      verified: [SiteID: [UInt8]] = [:]) throws -> ApplyReport {
        try writer.writeWithoutTransaction { db in
            var report = ApplyReport()
            // The states earlier writes kept: a block on a ticket held there is absorbed into it.
            var lease: StateCache.Lease?
            try db.inTransaction(.immediate) {
                report = ApplyReport()
                lease = try foldStates.checkOut(db)
                try Self.learn(db, keys: keys)
                report.received = blocks.count
                let keys = try Self.siteKeys(db)
                let revoked = try Self.revocations(db)
                var accepted: [Block] = []
                var acceptedHashes: [Dot: [UInt8]] = [:]
                // A block past the vector can only be held in the pending table; when that is empty
                // (the usual case) it is not looked up at all.
                let vector = try Self.vector(db)
                let nothingPending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pendingBlock") == 0
                for block in blocks {
                    do {
                        let slot = Dot(origin: block.origin, seq: block.seq, index: 0)
                        let unseen = nothingPending && block.seq > vector[block.origin]
                        let known = try acceptedHashes[slot] ?? (unseen ? nil : Self.storedHash(db, block))
                        if try Self.check(block, known: known, keys: keys, revoked: revoked, verified: verified) {
                            accepted.append(block)
                            acceptedHashes[slot] = block.hash
                        } else {
                            report.duplicates += 1
                        }
                    } catch let error as ApplyError {
                        report.refused.append(.init(origin: block.origin.rawValue, seq: block.seq, code: error.code.rawValue, reason: error.detail))
                        try Self.recordRefusal(db, origin: block.origin, seq: block.seq, hash: block.hash, code: error.code.rawValue,
                                               reason: error.detail, at: wallClock())
                    }
                }
                let drained = try drain(db, arriving: accepted, folds: lease?.folds)
                (report.applied, report.held) = (drained.applied, drained.held)
                // What this node alone must send for blocks written elsewhere (a reply on a ticket
                // of one of its intake integrations), in the same transaction as the blocks: only
                // for blocks applied now (an arriving one held back, or one released from the held
                // ones, counts when it applies).
                if let notices, !drained.blocks.isEmpty {
                    let now = wallClock()
                    var context = WriteContext(db: db, blocks: drained.blocks, site: try Self.identity(db).site, now: now)
                    context.remote = true
                    try Self.enqueue(db, try notices(context), now: now)
                }
                try faultHook?("beforeCommit")
                try lease?.close(db)
                return .commit
            }
            if let lease { foldStates.checkIn(lease) }
            return report
        }
    }

    /// The hash stored (applied or held back) under the block's `(origin, seq)`, if any.
    static func storedHash(_ db: Database, _ block: Block) throws -> [UInt8]? {
        let args: StatementArguments = [block.origin.rawValue, Int64(block.seq), block.origin.rawValue, Int64(block.seq)]
        return try Data.fetchOne(db.cachedStatement(sql: """
            SELECT hash FROM block WHERE origin = ? AND seq = ?
            UNION ALL SELECT hash FROM pendingBlock WHERE origin = ? AND seq = ?
            """), arguments: args).map { [UInt8]($0) }
    }

    /// Decides whether a received block is new: `false` for a duplicate; throws for equivocation, an
    /// unknown site or a bad signature.
    static func check(_ block: Block, known: [UInt8]?, keys: [SiteID: [UInt8]], revoked: [SiteID: UInt64] = [:],
                      verified: [SiteID: [UInt8]] = [:]) throws -> Bool {
        if let known {
            guard known == block.hash else {
                throw ApplyError(.equivocation, "\(block.origin) seq \(block.seq) is already held with hash \(known.prefix(8).hexString); this block has \(block.hashHex.prefix(16))")
            }
            return false
        }
        guard let key = keys[block.origin] else {
            throw ApplyError(.unknownSite, "site \(block.origin) is not in this store's roster (no public key is known for it); the coordinator adds sites with `tierline roster add`")
        }
        if let limit = revoked[block.origin], block.seq > limit {
            throw ApplyError(.revoked, "site \(block.origin) was removed from the roster after its block \(limit); its later blocks are refused")
        }
        guard verified[block.origin] == key || block.isSignatureValid(publicKey: key) else {
            throw ApplyError(.badSignature, "the signature of \(block.origin) seq \(block.seq) does not match its content")
        }
        return true
    }

    /// Applies every block, newly `arriving` or held back earlier, that can be applied now; the rest
    /// wait in the pending table with a reason.
    ///
    /// Blocks are decoded once and visited in stamp order, which respects causality, so a backlog
    /// usually applies in one pass; an arriving block that applies at once is written to the log only,
    /// never to the pending table; touched tickets are re-folded once at the end (those the blocks open,
    /// from the blocks in hand).
    /// - Returns: how many blocks were applied, and how many wait.
    /// - Parameter folds: states earlier writes kept, which the applied blocks are absorbed into and
    ///   which stay up to date; no state is added (a first sync of a million changes would fill it).
    func drain(_ db: Database, arriving: [Block] = [], folds: FoldCache? = nil) throws -> (applied: Int, held: Int, blocks: [Block]) {
        var clock = try Self.clock(db, maxDrift: maxDrift)
        let stored = try Row.fetchAll(db, sql: "SELECT bytes FROM pendingBlock").map { try Self.decodeStored($0["bytes"]) }
        var waiting = (stored.map { ($0, true) } + arriving.map { ($0, false) })
            .sorted { ($0.0.hlc, $0.0.origin, $0.0.seq) < ($1.0.hlc, $1.0.origin, $1.0.seq) }
        var vector = try Self.vector(db)
        let revoked = try Self.revocations(db)
        // Read (and its signature checked) only when a block is stamped too far ahead.
        var releases: Roster??
        var touched = Set<EntityRef>()
        let cache = BlockCache()
        var tooFarAhead: [Dot: String] = [:]
        var count = 0
        var appliedBlocks: [Block] = []
        var progress = true
        while progress && !waiting.isEmpty {
            progress = false
            var stillWaiting: [(Block, Bool)] = []
            for (block, isStored) in waiting {
                guard block.isApplicable(after: vector, revoked: revoked) else {
                    stillWaiting.append((block, isStored))
                    continue
                }
                do { _ = try clock.receive(block.hlc, wall: wallClock()) } catch {
                    // A block the coordinator released applies without moving this node's clock ahead.
                    if releases == nil { releases = .some(try Self.roster(db)?.roster) }
                    if releases??.isReleased(site: block.origin, seq: block.seq, hash: block.hash) != true {
                        tooFarAhead[block.dot(0)] = "stamped too far ahead: \(error.detail)"
                        stillWaiting.append((block, isStored))
                        continue
                    }
                }
                if isStored {
                    try db.execute(sql: "DELETE FROM pendingBlock WHERE origin = ? AND seq = ?", arguments: [block.origin.rawValue, Int64(block.seq)])
                }
                try Self.insert(db, block)
                cache.insert(block)
                try Self.recordUnauthorized(db, block, at: wallClock())
                vector[block.origin] = block.seq
                touched.formUnion(block.changes.map(\.entity))
                count += 1
                appliedBlocks.append(block)
                progress = true
            }
            waiting = stillWaiting
        }
        for (block, _) in waiting {
            try db.execute(sql: """
                INSERT INTO pendingBlock (origin, seq, hash, bytes, reason) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(origin, seq) DO UPDATE SET reason = excluded.reason
                """, arguments: [block.origin.rawValue, Int64(block.seq), Data(block.hash), Data(block.bytes),
                                 tooFarAhead[block.dot(0)] ?? "waiting for earlier blocks"])
        }
        try faultHook?("afterApplyBatch")
        // A ticket these blocks open (a laptop's offline work, a first sync) is folded from its
        // blocks in hand, as a local write's is, and its rows inserted without reading any back.
        try Self.materialize(db, touched, cache: cache, fresh: try Self.opened(db, by: appliedBlocks), folds: folds, growing: false,
                             written: appliedBlocks)
        try Self.saveClock(db, clock)
        return (count, waiting.count, appliedBlocks)
    }

    static func decodeStored(_ bytes: Data) throws -> Block {
        do { return try Block(decoding: [UInt8](bytes)) } catch {
            throw StoreError(.corruptFile, "a stored block does not decode (\(error)); the database file is damaged, restore it from a backup or a peer")
        }
    }

    /// Appends a block to the log and advances the vector. The caller materializes its entities.
    static func insert(_ db: Database, _ block: Block) throws {
        let origin = block.origin.rawValue.databaseValue, seq = Int64(block.seq).databaseValue
        try db.cachedStatement(sql: "INSERT INTO block (origin, seq, hlc, hash, bytes) VALUES (?, ?, ?, ?, ?)")
            .execute(values: [origin, seq, Int64(bitPattern: block.hlc.rawValue).databaseValue, Data(block.hash).databaseValue, Data(block.bytes).databaseValue])
        try db.cachedStatement(sql: "INSERT INTO versionEntry (site, seq) VALUES (?, ?) ON CONFLICT(site) DO UPDATE SET seq = excluded.seq")
            .execute(values: [origin, seq])
        let link = try db.cachedStatement(sql: "INSERT OR IGNORE INTO entityBlock (entity, origin, seq, offsets) VALUES (?, ?, ?, ?)")
        var positions: [UUID: ByteWriter] = [:]
        var order: [UUID] = []
        for (index, change) in block.changes.enumerated() {
            if positions[change.entity.id] == nil { order.append(change.entity.id) }
            positions[change.entity.id, default: ByteWriter()].uvarint(UInt64(index))
            positions[change.entity.id]!.uvarint(UInt64(block.changeOffsets[index]))
        }
        for entity in order {
            try link.execute(values: [entity.keyBytes.databaseValue, origin, seq, Data(positions[entity]!.bytes).databaseValue])
        }
    }

    /// Exactly the applied blocks a peer with `peer` lacks, in causal order (by stamp).
    public func blocks(after peer: VersionVector) throws -> [Block] {
        try writer.read { db in
            var out: [Block] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT origin, seq, bytes FROM block ORDER BY hlc, origin, seq")
            while let row = try rows.next() {
                let origin = try SiteID(row["origin"] as String)
                guard UInt64(row["seq"] as Int64) > peer[origin] else { continue }
                out.append(try Self.decodeStored(row["bytes"]))
            }
            return out
        }
    }

    /// Number of held-back blocks.
    public func pendingCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pendingBlock") ?? 0 }
    }

    /// The state digest: equal on two replicas exactly when they hold the same tickets, configuration
    /// versions, customers and articles (a local diagnostic; `tierline digest`).
    public func digest() throws -> String {
        try writer.read { db in try Self.digest(db) }
    }

    static func digest(_ db: Database) throws -> String {
            let rows = try Row.fetchAll(db, sql: "SELECT id, stateHash, mergedInto FROM ticket")
            var entries = try rows.map { row in
                (id: try Self.uuid(row["id"]), stateHash: [UInt8](row["stateHash"] as Data),
                 mergedInto: try (row["mergedInto"] as String?).map(Self.uuid))
            }
            // Configuration versions count too: replicas that hold different versions differ.
            for row in try Row.fetchAll(db, sql: "SELECT id, hlc, origin, body FROM configVersion") {
                let text = "\(row["hlc"] as Int64)|\(row["origin"] as String)|\(row["body"] as String)"
                entries.append((id: try Self.uuid(row["id"]), stateHash: Array(SHA256.hash(data: Array(text.utf8))), mergedInto: nil))
            }
            // So do customers and knowledge articles (schema 3).
            for row in try Row.fetchAll(db, sql: "SELECT id, stateHash FROM customer UNION ALL SELECT id, stateHash FROM article") {
                entries.append((id: try Self.uuid(row["id"]), stateHash: [UInt8](row["stateHash"] as Data), mergedInto: nil))
            }
            return TicketView.digest(entries: entries)
    }

    static func uuid(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw StoreError(.corruptFile, "a stored ticket id is not a UUID") }
        return id
    }
}

/// A store prints what it is, never its site key (which signs every block) nor its rows: services
/// holding a store are logged with `String(describing:)` by ServiceLifecycle.
extension TicketDatabase: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "TicketDatabase(a SQLite store, \(key == nil ? "no site key" : "site key redacted"))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["store": description], displayStyle: .struct) }
}
