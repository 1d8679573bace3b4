import Foundation
import GRDB
import TicketModel

/// A refused block or a skipped change, as `tierline status` lists it.
public struct RefusalRecord: Sendable, Equatable, Encodable {
    public var origin: String
    public var seq: UInt64
    public var hash: String
    /// `badSignature`, `unknownSite`, `equivocation`, `revoked` or `unauthorized`.
    public var code: String
    public var reason: String
    public var firstAt: Int64
    public var lastAt: Int64
    public var count: Int
}

/// A block held back because its stamp is too far ahead of this node's clock.
public struct QuarantinedBlock: Sendable, Equatable, Encodable {
    public var origin: String
    public var seq: UInt64
    public var hash: String
    /// How far the block's stamp is ahead of this node's clock now, ms.
    public var aheadMillis: Int64
}

extension TicketDatabase {
    // MARK: Pinning and reading

    /// The coordinator key this store accepts rosters under; `nil` until pinned.
    public func pinnedCoordinatorKey() throws -> [UInt8]? {
        try writer.read { db in try Self.pinnedKey(db) }
    }

    static func pinnedKey(_ db: Database) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT coordinatorKey FROM localSite WHERE id = 1").map { [UInt8]($0) }
    }

    /// Pins the coordinator's public key (a site or laptop, at setup). Pinning the same key again is a
    /// no-op. Another key replaces the pinned one only while this store has adopted no roster: until
    /// then nothing was judged by the first, and a key pinned by mistake (a site's, not the
    /// coordinator's) would otherwise refuse every roster for life. Once a roster is adopted, another
    /// key is refused.
    ///
    /// A key this store knows as a site's (its own, or a non-coordinator entry of the roster it
    /// holds) is refused with that reason: it is the most common wrong key to paste.
    public func pinCoordinator(key: [UInt8]) throws {
        guard key.count == 32 else { throw StoreError(.invalidInput, "a coordinator key is 64 hex digits (32 bytes); got \(key.count) bytes") }
        try writer.write { db in
            let me = try Self.identity(db)
            if me.role == .coordinator && key != me.publicKey {
                throw StoreError(.invalidInput, "this store is the coordinator; its own key is the pinned one")
            }
            if me.role != .coordinator && key == me.publicKey {
                throw StoreError(.invalidInput, "that is this store's own key (site \(me.site)), not the coordinator's; pin the public key `tierline status` prints at the coordinator")
            }
            let roster = try Self.roster(db)
            if let member = roster?.roster.sites.first(where: { $0.key == key.hexString && $0.role != .coordinator }) {
                throw StoreError(.invalidInput, "that is the key of site \(member.site) (\(member.role.rawValue)) in the roster this store holds, not the coordinator's (\(roster?.roster.coordinator ?? "?")); pin the public key `tierline status` prints at the coordinator")
            }
            if let pinned = try Self.pinnedKey(db) {
                guard pinned != key else { return }
                guard roster == nil else {
                    throw StoreError(.keyMismatch, "this store already pinned another coordinator key (\(pinned.hexString.prefix(16))…) and adopted roster version \(roster?.roster.version ?? 0) under it; a store trusts one coordinator for life; make a new store for another fleet")
                }
            }
            try db.execute(sql: "UPDATE localSite SET coordinatorKey = ? WHERE id = 1", arguments: [Data(key)])
        }
    }

    /// The adopted roster, if any.
    public func roster() throws -> SignedRoster? {
        try writer.read { db in try Self.roster(db) }
    }

    static func roster(_ db: Database) throws -> SignedRoster? {
        guard let row = try Row.fetchOne(db, sql: "SELECT document, signature FROM roster WHERE id = 1"),
              let pinned = try pinnedKey(db) else { return nil }
        do {
            return try SignedRoster(document: row["document"], signature: [UInt8](row["signature"] as Data), pinnedKey: pinned)
        } catch {
            throw StoreError(.corruptFile, "the stored roster no longer verifies (\(error)); the database file is damaged, restore it from a backup")
        }
    }

    /// The adopted roster's version; 0 when none.
    public func rosterVersion() throws -> UInt64 {
        try writer.read { db in UInt64(try Int64.fetchOne(db, sql: "SELECT version FROM roster WHERE id = 1") ?? 0) }
    }

    /// Roles by site from the roster (an entry without a role counts as an office site).
    static func roles(_ db: Database) throws -> [SiteID: SiteRole] {
        var roles: [SiteID: SiteRole] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT site, role FROM siteKey WHERE role IS NOT NULL")) {
            roles[try SiteID(row["site"] as String)] = SiteRole(rawValue: row["role"]) ?? .site
        }
        return roles
    }

    /// Highest valid `seq` of each removed site.
    static func revocations(_ db: Database) throws -> [SiteID: UInt64] {
        var out: [SiteID: UInt64] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT site, revokedAfter FROM siteKey WHERE revokedAfter IS NOT NULL")) {
            out[try SiteID(row["site"] as String)] = UInt64(row["revokedAfter"] as Int64)
        }
        return out
    }

    /// Why this store may not write because the coordinator removed its own site; `nil` if it was not.
    /// Every replica keeps the site's blocks up to the limit and refuses later ones, and this store
    /// took its own later blocks back when it adopted the removal: a new block would reuse a seq the
    /// fleet saw withdrawn, a second history of the site under the same key.
    static func removedSiteRefusal(_ db: Database, site: SiteID) throws -> String? {
        guard let limit = try Int64.fetchOne(db.cachedStatement(sql: "SELECT revokedAfter FROM siteKey WHERE site = ?"),
                                             arguments: [site.rawValue]) else { return nil }
        let kept = limit == 0 ? "refuses every block of it" : "keeps its blocks up to seq \(limit) and refuses later ones"
        return "the coordinator removed this store's site \(site) from the fleet: every replica that holds that roster \(kept), so this store writes nothing more as \(site). What it holds stays readable here (without its blocks after that seq, which it took back). To write at this place again, make a new store with a site id of its own (`tierline init --site NEW`), have the coordinator admit it (`tierline roster add NEW --key KEY` there), and sync it"
    }

    /// Why this store writes nothing because its own site was removed (``removedSiteRefusal(_:site:)``);
    /// `nil` if it was not.
    public func removedSiteRefusal() throws -> String? {
        try writer.read { db in try Self.removedSiteRefusal(db, site: try Self.identity(db).site) }
    }

    /// The removed sites, each with the last valid `seq` and its key.
    static func removedMembers(_ db: Database) throws -> [SiteID: (limit: UInt64, key: [UInt8])] {
        var out: [SiteID: (limit: UInt64, key: [UInt8])] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT site, revokedAfter, publicKey FROM siteKey WHERE revokedAfter IS NOT NULL")) {
            out[try SiteID(row["site"] as String)] = (UInt64(row["revokedAfter"] as Int64), [UInt8](row["publicKey"] as Data))
        }
        return out
    }

    // MARK: Adopting

    /// Adopts a roster received from a peer if it verifies under the pinned key and is newer.
    /// - Returns: whether it was adopted (`false`: this store already holds that version or a newer one).
    /// - Throws: ``StoreError`` `.keyMismatch` when nothing is pinned or the signature is not the
    ///   coordinator's; `.invalidInput` when the document is malformed. Nothing changes then.
    @discardableResult
    public func adopt(document: String, signature: [UInt8]) throws -> Bool {
        guard let pinned = try writer.read({ try Self.pinnedKey($0) }) else {
            throw StoreError(.keyMismatch, "this store has no pinned coordinator key, so it cannot judge a roster; run `tierline roster pin KEY` with the coordinator's public key")
        }
        // Verified and read before the write lock is taken: a peer's megabyte roster never holds up
        // the store's writers.
        let signed: SignedRoster
        do { signed = try SignedRoster(document: document, signature: signature, pinnedKey: pinned) } catch {
            if try rosterVersion() == 0, let hint = Self.wrongPinHint(document: document, signature: signature, pinned: pinned) {
                throw StoreError(.keyMismatch, hint)
            }
            throw StoreError(.keyMismatch, "\(error)")
        }
        return try writer.writeWithoutTransaction { db in
            var adopted = false
            try db.inTransaction(.immediate) {
                // A key pinned once never changes, but a store without one may have pinned it meanwhile.
                guard try Self.pinnedKey(db) == pinned else { throw StoreError(.keyMismatch, "the pinned coordinator key changed while the roster was read; try again") }
                adopted = try adopt(db, signed)
                return .commit
            }
            return adopted
        }
    }

    /// For a store that has adopted no roster yet: when a roster's signature fails under the pinned
    /// key but verifies under the key of one of its own entries, the pinned key is probably wrong
    /// (a site's key pasted for the coordinator's). Says so, with the start of the key that signed
    /// it to compare, and how to re-pin. It never offers the peer's key as the one to pin: anyone
    /// can sign a roster that lists their own key, so the key to pin is read at the coordinator.
    /// `nil` when no entry's key verifies (then the roster is not that fleet's, and the usual
    /// refusal stands). At most ``RosterLimits`` entries are tried, once per session.
    static func wrongPinHint(document: String, signature: [UInt8], pinned: [UInt8]) -> String? {
        guard document.utf8.count <= RosterLimits.maxDocumentBytes,
              let roster = try? JSONDecoder().decode(Roster.self, from: Data(document.utf8)) else { return nil }
        let message = Roster.signedMessage(document)
        guard let signer = roster.sites.first(where: { member in
            [UInt8](hex: member.key).map { SiteKey.isValid(signature: signature, of: message, publicKey: $0) } == true
        }) else { return nil }
        // Names from a peer's document reach a terminal and a log: only a valid site name is repeated.
        func name(_ site: String) -> String { (try? SiteID(site))?.rawValue ?? "(an invalid site name)" }
        let pinnedAs = roster.sites.first { $0.key == pinned.hexString }.map { " (the roster lists it as the key of site \(name($0.site)), a \($0.role.rawValue))" } ?? ""
        return "the peer's roster is not signed by the pinned coordinator key \(pinned.hexString)\(pinnedAs), but by a key beginning \(signer.key.prefix(16)) that it lists for \(name(signer.site)); the pinned key is probably wrong. This store has adopted no roster yet, so it may be pinned again: read the coordinator's key at the coordinator (`tierline status` there prints it), compare its start, and run `tierline roster pin KEY` with it"
    }

    /// Stores `signed` if newer, rebuilds the key table from it, re-folds what a role change affects and
    /// applies blocks it released.
    func adopt(_ db: Database, _ signed: SignedRoster) throws -> Bool {
        let current = UInt64(try Int64.fetchOne(db, sql: "SELECT version FROM roster WHERE id = 1") ?? 0)
        guard signed.roster.version > current else { return false }
        let oldRoles = try Self.roles(db)
        let me = try Self.identity(db)
        // A removal is for good (PROTOCOL.md §2.6.1): a roster that lifted one would let the removed
        // site sign blocks again at numbers the fleet saw withdrawn, and one that changed its key
        // would make its kept blocks fail to verify where they have not arrived yet.
        for (site, removed) in try Self.removedMembers(db).sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let member = signed.roster.member(site)
            guard member?.revokedAfter != removed.limit || member?.key != removed.key.hexString else { continue }
            throw StoreError(.refusedWrite, "roster version \(signed.roster.version) does not keep the removal of site \(site) (its blocks after seq \(removed.limit) refused, key \(removed.key.hexString.prefix(16))…) that this store's roster holds; a removal is for good, so that roster is refused and this store keeps the one it has. A coordinator restored from an older backup signs the removal again: `tierline roster remove \(site) --after \(removed.limit)` there (after `tierline roster add \(site) --key \(removed.key.hexString)` if its roster no longer lists \(site))")
        }
        try db.execute(sql: """
            INSERT INTO roster (id, version, document, signature) VALUES (1, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET version = excluded.version, document = excluded.document, signature = excluded.signature
            """, arguments: [Int64(signed.roster.version), signed.document, Data(signed.signature)])
        let oldRevocations = try Self.revocations(db)
        try db.execute(sql: "DELETE FROM siteKey")
        var newRoles: [SiteID: SiteRole] = [:]
        var withdrawals: [(SiteID, UInt64)] = []
        for member in signed.roster.sites {
            let site = try SiteID(member.site)
            newRoles[site] = member.role
            try db.execute(sql: "INSERT INTO siteKey (site, publicKey, role, revokedAfter) VALUES (?, ?, ?, ?)",
                           arguments: [member.site, Data([UInt8](hex: member.key) ?? []), member.role.rawValue,
                                       member.revokedAfter.map { Int64($0) }])
            if let limit = member.revokedAfter {
                try db.execute(sql: "DELETE FROM pendingBlock WHERE origin = ? AND seq > ?", arguments: [member.site, Int64(limit)])
                if oldRevocations[site] != limit { withdrawals.append((site, limit)) }
            }
        }
        if signed.roster.member(me.site) == nil {
            // Not (yet) listed: this store still verifies and folds its own blocks.
            try db.execute(sql: "INSERT INTO siteKey (site, publicKey, role) VALUES (?, ?, ?)",
                           arguments: [me.site.rawValue, Data(me.publicKey), me.role.rawValue])
            newRoles[me.site] = me.role
        }
        let changed = Set(oldRoles.keys).union(newRoles.keys).filter { (oldRoles[$0] ?? .site) != (newRoles[$0] ?? .site) }
        if !changed.isEmpty {
            let ids = try Data.fetchAll(db, sql: "SELECT DISTINCT entity FROM entityBlock WHERE origin IN (\(changed.map { _ in "?" }.joined(separator: ",")))",
                                        arguments: StatementArguments(changed.map(\.rawValue))).map(Self.entity(keyBytes:))
            try Self.materialize(db, try Self.entityRefs(db, ids))
        }
        for (site, limit) in withdrawals { try Self.withdraw(db, site: site, above: limit) }
        // Blocks held back for a dependency on a removed site's withdrawn blocks now apply.
        if !signed.roster.released.isEmpty || !withdrawals.isEmpty { _ = try drain(db) }
        return true
    }

    /// The kinds of the entities `ids`, from the tables their folds fill (configuration otherwise).
    static func entityRefs(_ db: Database, _ ids: [UUID]) throws -> Set<EntityRef> {
        var out = Set<EntityRef>()
        let kinds: [(String, EntityKind)] = [("ticket", .ticket), ("customer", .customer), ("article", .article)]
        for id in ids {
            let text = id.lowercaseText
            var kind = EntityKind.config
            for (table, candidate) in kinds where try Bool.fetchOne(db, sql: "SELECT 1 FROM \(table) WHERE id = ?", arguments: [text]) == true {
                kind = candidate
                break
            }
            out.insert(EntityRef(kind: kind, id: id))
        }
        return out
    }

    /// Takes back the blocks of a removed `site` above `limit` that this store applied before it
    /// learned of the removal, so that it ends with exactly the blocks every other replica keeps
    /// (`Protocol/PROTOCOL.md` §2.6.1, "Removal converges"): the blocks leave the log, the vector steps back to `limit`, and
    /// what they touched is folded again from what remains. An entity left with no change at all
    /// disappears; one that other sites' blocks still touch is folded from those, as on a replica that
    /// never held the withdrawn blocks.
    static func withdraw(_ db: Database, site: SiteID, above limit: UInt64) throws {
        let held = try Self.vector(db)[site]
        guard held > limit else { return }
        var touched = Set<EntityRef>()
        let rows = try Row.fetchCursor(db, sql: "SELECT bytes FROM block WHERE origin = ? AND seq > ?", arguments: [site.rawValue, Int64(limit)])
        while let row = try rows.next() { touched.formUnion(try Self.decodeStored(row["bytes"]).changes.map(\.entity)) }
        try db.execute(sql: "DELETE FROM entityBlock WHERE origin = ? AND seq > ?", arguments: [site.rawValue, Int64(limit)])
        try db.execute(sql: "DELETE FROM block WHERE origin = ? AND seq > ?", arguments: [site.rawValue, Int64(limit)])
        if limit == 0 {
            try db.execute(sql: "DELETE FROM versionEntry WHERE site = ?", arguments: [site.rawValue])
        } else {
            try db.execute(sql: "UPDATE versionEntry SET seq = ? WHERE site = ?", arguments: [Int64(limit), site.rawValue])
        }
        var remaining = Set<EntityRef>()
        for entity in touched {
            let key = entity.id.lowercaseText
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM entityBlock WHERE entity = ? LIMIT 1", arguments: [entity.id.keyBytes]) == true {
                remaining.insert(entity)
                continue
            }
            switch entity.kind {
            case .ticket:
                for table in ["ticketElement", "ticketEvent", "ticketLookup", "ticketConflict"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE ticket = ?", arguments: [key])
                }
                // A dashboard attached to this store lists the deleted row (its trigger) and drops its facts.
                try db.execute(sql: "DELETE FROM ticket WHERE id = ?", arguments: [key])
            case .customer:
                try db.execute(sql: "DELETE FROM customer WHERE id = ?", arguments: [key])
            case .article:
                try db.execute(sql: "DELETE FROM articleText WHERE id = ?", arguments: [key])
                try db.execute(sql: "DELETE FROM article WHERE id = ?", arguments: [key])
            case .config:
                remaining.insert(entity)
            }
        }
        try Self.materialize(db, remaining)
        try Self.resolveMerges(db)
    }

    // MARK: Editing (coordinator)

    /// Edits the roster on the coordinator: applies `edit` to the current one, raises the version,
    /// signs it with this store's key and adopts it. Peers learn it at their next session or within a
    /// second on an open one.
    @discardableResult
    public func editRoster(_ edit: (inout Roster) throws -> Void) throws -> SignedRoster {
        guard let key else { throw StoreError(.refusedWrite, "editing the roster needs the coordinator's site key") }
        return try writer.writeWithoutTransaction { db in
            var result: SignedRoster?
            try db.inTransaction(.immediate) {
                let me = try Self.identity(db)
                guard me.role == .coordinator else {
                    throw StoreError(.refusedWrite, "only the coordinator edits the roster; this store is \(me.site), a \(me.role.rawValue). Ask the coordinator's operator (run `tierline roster …` there)")
                }
                guard me.publicKey == key.publicKey else {
                    throw StoreError(.keyMismatch, "the key file does not match this store's site key; restore the store's own site.key")
                }
                if try Self.restoredAt(db) != nil {
                    throw StoreError(.awaitingSync, "this coordinator was restored from a backup; sync with a site first so it learns the newest roster, then edit it (or `tierline restore --release`)")
                }
                guard var roster = try Self.roster(db)?.roster else {
                    throw StoreError(.notInitialized, "this coordinator has no roster yet; `tierline init --role coordinator` founds it")
                }
                let before = roster
                try edit(&roster)
                guard roster != before else { return .rollback }
                roster.version = before.version + 1
                roster.issued = wallClock()
                roster.sites.sort { $0.site < $1.site }
                if roster.released.count > RosterLimits.maxReleases { roster.released.removeFirst(roster.released.count - RosterLimits.maxReleases) }
                let signed: SignedRoster
                do { signed = try SignedRoster.sign(roster, key: key) } catch {
                    throw StoreError(.invalidInput, "\(error)")
                }
                _ = try adopt(db, signed)
                result = signed
                return .commit
            }
            if let result { return result }
            guard let current = try Self.roster(db) else { throw StoreError(.invalidInput, "the roster is empty") }
            return current
        }
    }

    /// Adds a site to the roster, or changes an active site's role (coordinator only).
    @discardableResult
    public func admit(site: SiteID, key: [UInt8], role: SiteRole) throws -> SignedRoster {
        guard role != .coordinator else {
            throw StoreError(.invalidInput, "a fleet has one coordinator, the store that signs the roster; add sites as site or laptop")
        }
        guard key.count == 32 else { throw StoreError(.invalidInput, "a site key is 64 hex digits (32 bytes)") }
        return try editRoster { roster in
            guard let index = roster.sites.firstIndex(where: { $0.site == site.rawValue }) else {
                roster.sites.append(Roster.Member(site: site, key: key, role: role))
                return
            }
            let member = roster.sites[index]
            if let limit = member.revokedAfter {
                throw StoreError(.refusedWrite, "\(site) was removed from the roster; a removed site id is not reused (its old blocks stay valid up to seq \(limit)). Give the new store another site id")
            }
            guard member.key == key.hexString else {
                throw StoreError(.keyMismatch, "\(site) is already in the roster with another key (\(member.key.prefix(16))…); a site keeps its key for life. `tierline roster remove \(site)` and add the new store under a new site id")
            }
            guard member.role != .coordinator else { throw StoreError(.refusedWrite, "\(site) is the coordinator; its role does not change") }
            roster.sites[index].role = role
        }
    }

    /// Removes a site (coordinator only): its blocks up to the newest one this store holds stay valid
    /// everywhere, later ones are refused, and its sessions end.
    /// - Returns: the new roster and the last valid `seq`.
    /// - Parameter after: the last valid `seq`, when the operator gives it (a removal the fleet
    ///   already holds, which a coordinator restored from an older backup must sign again with the
    ///   same limit); by default the newest block of the site this store holds.
    public func removeFromRoster(_ site: SiteID, after: UInt64? = nil) throws -> (roster: SignedRoster, validThrough: UInt64) {
        let limit = try after ?? vector()[site]
        let signed = try editRoster { roster in
            guard let index = roster.sites.firstIndex(where: { $0.site == site.rawValue }) else {
                throw StoreError(.invalidInput, "\(site) is not in the roster; `tierline roster list` shows who is (to sign again a removal the fleet holds for a site this roster lost, add it first with `tierline roster add \(site) --key KEY`, the key `tierline roster list` shows at a site)")
            }
            guard roster.sites[index].role != .coordinator else { throw StoreError(.refusedWrite, "the coordinator cannot remove itself") }
            if let standing = roster.sites[index].revokedAfter {
                if let after, after != standing {
                    throw StoreError(.refusedWrite, "\(site) was removed already with its blocks after seq \(standing) refused; a removal is for good, and its limit does not change")
                }
            } else {
                roster.sites[index].revokedAfter = limit
            }
        }
        return (signed, signed.roster.member(site)?.revokedAfter ?? limit)
    }

    /// Releases a quarantined block through the roster (coordinator only): every replica that holds
    /// the new roster applies exactly that block, whatever its stamp.
    public func releaseQuarantined(site: SiteID, seq: UInt64) throws -> (roster: SignedRoster, block: QuarantinedBlock) {
        guard let block = try quarantined().first(where: { $0.origin == site.rawValue && $0.seq == seq }),
              let hash = [UInt8](hex: block.hash) else {
            throw StoreError(.invalidInput, "no quarantined block \(site) seq \(seq) here; `tierline quarantine list` shows what is held")
        }
        let signed = try editRoster { roster in roster.released.append(Roster.Release(site: site, seq: seq, hash: hash)) }
        return (signed, block)
    }

    /// Makes a coordinator's founding roster and pins its own key. Idempotent; a no-op on other roles.
    ///
    /// A new coordinator's roster lists itself alone. A coordinator upgraded from a version that trusted
    /// keys on first use lists the sites it had already met, with the role they last announced, so the
    /// fleet keeps syncing; `tierline roster list` shows them for review.
    public func foundRoster() throws {
        guard let key else { throw StoreError(.refusedWrite, "founding the roster needs the coordinator's site key") }
        try writer.write { db in
            let me = try Self.identity(db)
            guard me.role == .coordinator, try Self.roster(db) == nil else { return }
            guard me.publicKey == key.publicKey else {
                throw StoreError(.keyMismatch, "the key file does not match this store's site key; restore the store's own site.key")
            }
            try db.execute(sql: "UPDATE localSite SET coordinatorKey = ? WHERE id = 1", arguments: [Data(me.publicKey)])
            var founding = Roster.founding(coordinator: me.site, key: me.publicKey, issued: wallClock())
            for row in try Row.fetchAll(db, sql: """
                SELECT k.site, k.publicKey, p.role FROM siteKey k LEFT JOIN peer p ON p.site = k.site WHERE k.site != ?
                """, arguments: [me.site.rawValue]) {
                let role = (row["role"] as String?).flatMap(SiteRole.init(rawValue:)).flatMap { $0 == .coordinator ? nil : $0 } ?? .site
                founding.sites.append(.init(site: try SiteID(row["site"] as String), key: [UInt8](row["publicKey"] as Data), role: role))
            }
            founding.sites.sort { $0.site < $1.site }
            do { _ = try adopt(db, try SignedRoster.sign(founding, key: key)) } catch let error as RosterError {
                throw StoreError(.invalidInput, error.detail)
            }
        }
    }

    // MARK: Reports

    /// Refused blocks and skipped changes, newest first.
    public func refusals(limit: Int = 50) throws -> [RefusalRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM refusal ORDER BY lastAt DESC, origin, seq LIMIT ?", arguments: [limit]).map { row in
                RefusalRecord(origin: row["origin"], seq: UInt64(row["seq"] as Int64), hash: [UInt8](row["hash"] as Data).hexString,
                              code: row["code"], reason: row["reason"], firstAt: row["firstAt"], lastAt: row["lastAt"], count: row["count"])
            }
        }
    }

    /// Blocks held back because they are stamped too far ahead, with how far.
    public func quarantined() throws -> [QuarantinedBlock] {
        let now = Int64(wallClock())
        return try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT origin, seq, hash, bytes FROM pendingBlock WHERE reason LIKE 'stamped too far ahead%' ORDER BY origin, seq").map { row in
                let block = try Self.decodeStored(row["bytes"])
                return QuarantinedBlock(origin: row["origin"], seq: UInt64(row["seq"] as Int64), hash: [UInt8](row["hash"] as Data).hexString,
                                        aheadMillis: Int64(block.hlc.millis) - now)
            }
        }
    }

    /// Applies quarantined blocks this node's clock has caught up with (a node calls it as it polls).
    /// - Returns: how many blocks were applied.
    @discardableResult
    public func retryQuarantined() throws -> Int {
        try writer.writeWithoutTransaction { db in
            let waiting = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pendingBlock WHERE reason LIKE 'stamped too far ahead%')") ?? false
            guard waiting else { return 0 }
            var applied = 0
            try db.inTransaction(.immediate) {
                applied = try drain(db).applied
                return .commit
            }
            return applied
        }
    }

    /// Refusals kept for `status`; the oldest go first.
    static let maxRefusals = 10_000

    /// Records a refusal (or counts it again).
    static func recordRefusal(_ db: Database, origin: SiteID, seq: UInt64, hash: [UInt8], code: String, reason: String, at now: UInt64) throws {
        try db.execute(sql: """
            INSERT INTO refusal (origin, seq, hash, code, reason, firstAt, lastAt, count) VALUES (?, ?, ?, ?, ?, ?, ?, 1)
            ON CONFLICT(origin, seq, hash, code) DO UPDATE SET lastAt = excluded.lastAt, count = count + 1, reason = excluded.reason
            """, arguments: [origin.rawValue, Int64(seq), Data(hash), code, reason, Int64(now), Int64(now)])
        // A peer that keeps sending distinct forged blocks must not grow the store without bound;
        // pruning in steps of a thousand keeps the usual refusal at one insert.
        guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM refusal") ?? 0 > maxRefusals + 1_000 else { return }
        try db.execute(sql: """
            DELETE FROM refusal WHERE rowid IN (
              SELECT rowid FROM refusal ORDER BY lastAt DESC, rowid DESC LIMIT -1 OFFSET ?)
            """, arguments: [maxRefusals])
    }

    /// Records the changes of `block` its origin's role may not make (they are skipped when folding).
    static func recordUnauthorized(_ db: Database, _ block: Block, at now: UInt64) throws {
        let suspicious = block.changes.contains { change in
            if change.entity.kind == .config { return true }
            if case .set(.owner, _) = change.operation { return true }
            return false
        }
        guard suspicious else { return }
        let role = try String.fetchOne(db, sql: "SELECT role FROM siteKey WHERE site = ?", arguments: [block.origin.rawValue])
            .flatMap(SiteRole.init(rawValue:)) ?? .site
        let reasons = block.changes.enumerated().compactMap { index, change in
            Authorization.refusal(change.operation, on: change.entity, by: role).map { "change \(index): \($0)" }
        }
        guard let first = reasons.first else { return }
        try recordRefusal(db, origin: block.origin, seq: block.seq, hash: block.hash, code: "unauthorized",
                          reason: reasons.count == 1 ? first : "\(first) (and \(reasons.count - 1) more)", at: now)
    }
}
