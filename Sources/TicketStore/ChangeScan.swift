import Foundation
import GRDB
import TicketModel

/// Where a store's replication log stands, for a watcher that wants to know whether anything changed.
///
/// Every block the store takes in, written here or applied from a peer, by this process or another
/// one on the same file (the CLI), is a new row of the `block` table, so the log's highest row id
/// moves with every change. A roster adoption can re-fold tickets (a site's role changed) or take
/// blocks back (a site was removed) without a new row, so the roster's version is part of the mark.
public struct StoreVersion: Sendable, Hashable {
    /// The highest row id of the block log (0 for an empty log).
    public var block: Int64
    /// The adopted roster's version (0: none).
    public var roster: Int64

    public init(block: Int64, roster: Int64) {
        self.block = block
        self.roster = roster
    }
}

/// What changed in a store since an earlier ``StoreVersion``: see ``TicketDatabase/changes(since:limit:)``.
public struct ChangeScan: Sendable, Equatable {
    /// Where the log stands now.
    public var version: StoreVersion
    /// The tickets that blocks since the earlier version touched, as lowercase UUIDs, sorted; `nil`
    /// when there are more than the limit or the store cannot tell which (blocks taken back).
    public var tickets: [String]?

    public init(version: StoreVersion, tickets: [String]?) {
        self.version = version
        self.tickets = tickets
    }
}

/// The hub of a site's fleet and when this store last heard from it: see ``TicketDatabase/hubContact()``.
public struct HubContact: Sendable, Equatable {
    /// The coordinator site.
    public var hub: SiteID
    /// Milliseconds since 1970 of the last news from the hub: a frame of a sync session with it, or
    /// the stamp of its newest block here, whichever is later; `nil` when nothing came from it yet.
    public var lastHeard: UInt64?

    public init(hub: SiteID, lastHeard: UInt64?) {
        self.hub = hub
        self.lastHeard = lastHeard
    }
}

extension TicketDatabase {
    /// How many new blocks ``changes(since:limit:)`` decodes to find the tickets they touch; past
    /// this it answers "many" without reading them.
    public static let maxScannedBlocks: Int64 = 512

    /// Where the log stands: one index lookup on the block log and one on the roster.
    ///
    /// Blocks the calling thread on a read; call it off event loops.
    public func changeVersion() throws -> StoreVersion {
        try writer.read { db in try Self.changeVersion(db) }
    }

    static func changeVersion(_ db: Database) throws -> StoreVersion {
        StoreVersion(block: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(rowid), 0) FROM block") ?? 0,
                     roster: try Int64.fetchOne(db, sql: "SELECT version FROM roster WHERE id = 1") ?? 0)
    }

    /// Where the log stands now and which tickets changed since `earlier`, in one read transaction.
    ///
    /// The tickets are read from the blocks added since `earlier` (decoded, at most
    /// ``maxScannedBlocks`` of them). The list is `nil` ("many") when more than `limit` tickets
    /// changed, when more blocks came than are decoded, or when the roster changed (its adoption may
    /// re-fold any ticket). With `earlier` `nil` nothing is listed: the first call only finds the mark.
    ///
    /// ```swift
    /// var mark = try store.changeVersion()
    /// // … later …
    /// let scan = try store.changes(since: mark, limit: 200)
    /// if scan.version != mark { mark = scan.version; notify(scan.tickets) }
    /// ```
    ///
    /// Blocks the calling thread on a read; call it off event loops.
    public func changes(since earlier: StoreVersion?, limit: Int) throws -> ChangeScan {
        try writer.read { db in
            let now = try Self.changeVersion(db)
            guard let earlier else { return ChangeScan(version: now, tickets: []) }
            guard now != earlier else { return ChangeScan(version: now, tickets: []) }
            // Blocks taken back can lower the highest row id (a later one may reuse it): the rows no
            // longer tell what changed.
            guard now.roster == earlier.roster, now.block > earlier.block, now.block - earlier.block <= Self.maxScannedBlocks else {
                return ChangeScan(version: now, tickets: nil)
            }
            var tickets = Set<String>()
            let rows = try Row.fetchCursor(db, sql: "SELECT bytes FROM block WHERE rowid > ? AND rowid <= ?", arguments: [earlier.block, now.block])
            while let row = try rows.next() {
                for change in try Self.decodeStored(row["bytes"]).changes where change.entity.kind == .ticket {
                    tickets.insert(change.entity.id.lowercaseText)
                }
                if tickets.count > limit { return ChangeScan(version: now, tickets: nil) }
            }
            return ChangeScan(version: now, tickets: tickets.sorted())
        }
    }

    /// The hub (coordinator) of this store's fleet and when this store last heard from it; `nil` on
    /// the coordinator itself, and on a store that knows no coordinator yet (no roster, no session
    /// with one).
    ///
    /// The hub is the roster's coordinator, else the coordinator peer of the latest session. A sync
    /// session records the time of its peer's frames only when something was exchanged, at its start
    /// and at its end: a session that stays open and quiet is not seen here, so a node that keeps one
    /// should also ask its sync node whether the session is up.
    ///
    /// Blocks the calling thread on a read; call it off event loops.
    public func hubContact() throws -> HubContact? {
        try writer.read { db in
            guard try Self.identity(db).role != .coordinator else { return nil }
            let name = try String.fetchOne(db, sql: "SELECT site FROM siteKey WHERE role = ? ORDER BY site LIMIT 1",
                                           arguments: [SiteRole.coordinator.rawValue])
                ?? String.fetchOne(db, sql: "SELECT site FROM peer WHERE role = ? ORDER BY lastSeen DESC LIMIT 1",
                                   arguments: [SiteRole.coordinator.rawValue])
            guard let name, let hub = try? SiteID(name) else { return nil }
            // A site's stamps grow with its seq, so its newest block is its last.
            let stamp = try Int64.fetchOne(db, sql: "SELECT hlc FROM block WHERE origin = ? ORDER BY seq DESC LIMIT 1", arguments: [name])
                .map { HLC(rawValue: UInt64(bitPattern: $0)).millis }
            let seen = try Int64.fetchOne(db, sql: "SELECT lastSeen FROM peer WHERE site = ?", arguments: [name]).map { UInt64(max(0, $0)) }
            let heard: UInt64? = switch (stamp, seen) {
            case let (a?, b?): max(a, b)
            case let (a?, nil): a
            case let (nil, b?): b
            case (nil, nil): nil
            }
            return HubContact(hub: hub, lastHeard: heard)
        }
    }
}
