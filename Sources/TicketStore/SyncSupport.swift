import Foundation
import GRDB
import TicketModel

/// What a node last learned about one peer.
public struct PeerRecord: Sendable, Equatable {
    public var site: SiteID
    public var role: SiteRole
    /// Where the session ran (`HOST:PORT` dialled, or the remote address of an accepted session).
    public var address: String
    /// Wall time of the last frame heard, ms since 1970.
    public var lastSeen: UInt64
    /// The peer's version vector as last acknowledged or announced.
    public var vector: VersionVector
    /// Peer clock minus local clock, estimated from the hellos and refined by ping round trips (ms).
    public var skewMillis: Int64?
    /// The last protocol error of a session with this peer, if any.
    public var lastError: String?
    /// Blocks received from and sent to this peer, over all sessions.
    public var blocksIn: UInt64
    public var blocksOut: UInt64
    /// How the last session was protected: `tls` (the sites' own keys), `tls-ca` (an organisation's
    /// certificates) or `plain` (a protocol-1 session, unprotected); `nil` before protocol 2.
    public var transport: String?

    public init(site: SiteID, role: SiteRole, address: String, lastSeen: UInt64, vector: VersionVector,
                skewMillis: Int64? = nil, lastError: String? = nil, blocksIn: UInt64 = 0, blocksOut: UInt64 = 0,
                transport: String? = nil) {
        self.transport = transport
        self.site = site
        self.role = role
        self.address = address
        self.lastSeen = lastSeen
        self.vector = vector
        self.skewMillis = skewMillis
        self.lastError = lastError
        self.blocksIn = blocksIn
        self.blocksOut = blocksOut
    }
}

extension TicketDatabase {
    /// The oldest applied blocks a peer with `peer` lacks, in stamp order, at most `limit` of them and
    /// about `maxBytes` (always at least one block when any is lacking), as stored: each block's origin,
    /// `seq` and canonical bytes, not decoded.
    ///
    /// A sender forwards a block byte for byte (`Protocol/PROTOCOL.md` §2.3), so it needs no more than
    /// this: parsing and hashing every block only to write its bytes again cost the sender more than
    /// reading them. A block damaged on disk is sent as it is, and the receiver refuses the batch
    /// (`bad-batch`); ``blocks(after:)`` and the backup check are where a store finds its own damage.
    ///
    /// Starts at the oldest lacking block of each origin (found by primary key), so a peer that is
    /// nearly in sync costs a short index scan, not a pass over the whole log.
    ///
    /// ```swift
    /// let page = try store.storedBlocks(after: peerVector, limit: 1024, maxBytes: 1 << 20)
    /// ```
    public func storedBlocks(after peer: VersionVector, limit: Int,
                             maxBytes: Int) throws -> [(origin: SiteID, seq: UInt64, bytes: [UInt8])] {
        try writer.read { db in
            var start: Int64?
            for (site, seq) in try Self.vector(db).entries where seq > peer[site] {
                if let hlc = try Int64.fetchOne(db, sql: "SELECT hlc FROM block WHERE origin = ? AND seq = ?",
                                                arguments: [site.rawValue, Int64(peer[site] + 1)]) {
                    start = min(start ?? hlc, hlc)
                }
            }
            guard let start else { return [] }
            var out: [(origin: SiteID, seq: UInt64, bytes: [UInt8])] = []
            var bytes = 0
            var origins: [String: SiteID] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT origin, seq, bytes FROM block WHERE hlc >= ? ORDER BY hlc, origin, seq",
                                           arguments: [start])
            while let row = try rows.next() {
                let name: String = row["origin"]
                let origin = try origins[name] ?? SiteID(name)
                origins[name] = origin
                let seq = UInt64(row["seq"] as Int64)
                guard seq > peer[origin] else { continue }
                let data: Data = row["bytes"]
                if !out.isEmpty && bytes + data.count > maxBytes { break }
                out.append((origin, seq, [UInt8](data)))
                bytes += data.count
                if out.count >= limit { break }
            }
            return out
        }
    }

    /// Number of open conflicts over all tickets.
    public func conflictCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticketConflict") ?? 0 }
    }

    /// Merges what a session learned about a peer into its record, in one transaction: the vector is
    /// merged with the stored one, `blocksIn`/`blocksOut` are added (they are this session's new
    /// counts), the rest replaces what was stored. Two sessions with one site lose no update.
    public func recordPeer(_ peer: PeerRecord) throws {
        try writer.write { db in
            var vector = peer.vector
            if let stored = try String.fetchOne(db, sql: "SELECT vector FROM peer WHERE site = ?", arguments: [peer.site.rawValue]),
               let previous = try? JSONDecoder().decode(VersionVector.self, from: Data(stored.utf8)) {
                vector = vector.merging(previous)
            }
            let text = String(decoding: try JSONEncoder().encode(vector), as: UTF8.self)
            try db.execute(sql: """
                INSERT INTO peer (site, role, address, lastSeen, vector, skewMillis, lastError, blocksIn, blocksOut, transport)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(site) DO UPDATE SET role = excluded.role, address = excluded.address,
                  lastSeen = max(lastSeen, excluded.lastSeen), vector = excluded.vector,
                  skewMillis = coalesce(excluded.skewMillis, skewMillis), lastError = excluded.lastError,
                  blocksIn = blocksIn + excluded.blocksIn, blocksOut = blocksOut + excluded.blocksOut,
                  transport = coalesce(excluded.transport, transport)
                """, arguments: [peer.site.rawValue, peer.role.rawValue, peer.address, Int64(clamping: peer.lastSeen), text,
                                 peer.skewMillis, peer.lastError, Int64(clamping: peer.blocksIn), Int64(clamping: peer.blocksOut),
                                 peer.transport])
        }
    }

    /// Every peer this store has synced with, by site.
    public func peers() throws -> [PeerRecord] {
        try writer.read { db in try Self.peers(db) }
    }

    package static func peers(_ db: Database) throws -> [PeerRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM peer ORDER BY site").map { row in
            PeerRecord(site: try SiteID(row["site"] as String), role: SiteRole(rawValue: row["role"]) ?? .site,
                       address: row["address"], lastSeen: UInt64(row["lastSeen"] as Int64),
                       vector: try JSONDecoder().decode(VersionVector.self, from: Data((row["vector"] as String).utf8)),
                       skewMillis: row["skewMillis"], lastError: row["lastError"],
                       blocksIn: UInt64(row["blocksIn"] as Int64), blocksOut: UInt64(row["blocksOut"] as Int64),
                       transport: row["transport"])
        }
    }

    /// Held-back blocks with the reason each waits.
    public func pendingBlocks() throws -> [(origin: SiteID, seq: UInt64, reason: String)] {
        try writer.read { db in try Self.pendingBlocks(db) }
    }

    package static func pendingBlocks(_ db: Database) throws -> [(origin: SiteID, seq: UInt64, reason: String)] {
        try Row.fetchAll(db, sql: "SELECT origin, seq, reason FROM pendingBlock ORDER BY origin, seq").map {
            (try SiteID($0["origin"] as String), UInt64($0["seq"] as Int64), $0["reason"] as String)
        }
    }
}
