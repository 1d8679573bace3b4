import Foundation
import GRDB
import TicketModel

/// Two different blocks for one (origin, seq): this store holds one, a peer another.
public struct Divergence: Sendable, Equatable {
    public var origin: SiteID
    public var peer: SiteID
    public var seq: UInt64
    public var ourHash: [UInt8]
    public var theirHash: [UInt8]
    public var address: String
    public var detectedAt: UInt64

    public init(origin: SiteID, peer: SiteID, seq: UInt64, ourHash: [UInt8], theirHash: [UInt8], address: String, detectedAt: UInt64) {
        self.origin = origin
        self.peer = peer
        self.seq = seq
        self.ourHash = ourHash
        self.theirHash = theirHash
        self.address = address
        self.detectedAt = detectedAt
    }
}

extension TicketDatabase {
    /// This store's version vector and, read in the same transaction, the newest block of every
    /// origin it covers: the seq the vector gives, and that block's hash.
    public func vectorAndHeads() throws -> (vector: VersionVector, heads: [SiteID: Head]) {
        try writer.read { db in
            let vector = try Self.vector(db)
            var heads: [SiteID: Head] = [:]
            let rows = try Row.fetchAll(db, sql: """
                SELECT b.origin, b.seq, b.hash FROM versionEntry v JOIN block b ON b.origin = v.site AND b.seq = v.seq
                """)
            for row in rows {
                heads[try SiteID(row["origin"] as String)] = Head(seq: UInt64(row["seq"] as Int64), hash: [UInt8](row["hash"] as Data))
            }
            return (vector, heads)
        }
    }

    /// Compares a peer's heads with the blocks this store holds, and records every origin where the
    /// peer's newest block is not the block this store holds at that seq. A head beyond this store's
    /// own is not compared here (the peer compares ours). Returns what it found, in origin order.
    public func compareHeads(_ theirs: [SiteID: Head], peer: SiteID, address: String, now: UInt64) throws -> [Divergence] {
        try writer.write { db in
            var found: [Divergence] = []
            for (origin, head) in theirs.sorted(by: { $0.key < $1.key }) where head.seq > 0 {
                guard let ours = try Data.fetchOne(db, sql: "SELECT hash FROM block WHERE origin = ? AND seq = ?",
                                                   arguments: [origin.rawValue, Int64(clamping: head.seq)]) else { continue }
                guard [UInt8](ours) != head.hash else { continue }
                let divergence = Divergence(origin: origin, peer: peer, seq: head.seq, ourHash: [UInt8](ours), theirHash: head.hash,
                                            address: address, detectedAt: now)
                try db.execute(sql: """
                    INSERT INTO divergence (origin, peer, seq, ourHash, theirHash, address, detectedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(origin, peer) DO UPDATE SET seq = excluded.seq, ourHash = excluded.ourHash,
                      theirHash = excluded.theirHash, address = excluded.address, detectedAt = excluded.detectedAt
                    """, arguments: [origin.rawValue, peer.rawValue, Int64(clamping: head.seq), Data(divergence.ourHash),
                                     Data(head.hash), address, Int64(clamping: now)])
                found.append(divergence)
            }
            return found
        }
    }

    /// Every divergence this store has seen, by origin then peer.
    public func divergences() throws -> [Divergence] {
        try writer.read { db in try Self.divergences(db) }
    }

    static func divergences(_ db: Database) throws -> [Divergence] {
        try Row.fetchAll(db, sql: "SELECT * FROM divergence ORDER BY origin, peer").map { row in
            Divergence(origin: try SiteID(row["origin"] as String), peer: try SiteID(row["peer"] as String),
                       seq: UInt64(row["seq"] as Int64), ourHash: [UInt8](row["ourHash"] as Data),
                       theirHash: [UInt8](row["theirHash"] as Data), address: row["address"],
                       detectedAt: UInt64(row["detectedAt"] as Int64))
        }
    }

    /// Why this store writes nothing (see ``copiedStoreRefusal(_:site:)``); `nil` if it may write.
    public func copiedStoreRefusal() throws -> String? {
        try writer.read { db in try Self.copiedStoreRefusal(db, site: try Self.identity(db).site) }
    }

    /// Why this store may not write: a peer holds another block at a seq of this store's own site,
    /// so this store is a copy of the store the fleet heard from first. `nil` if it may.
    static func copiedStoreRefusal(_ db: Database, site: SiteID) throws -> String? {
        guard let row = try Row.fetchOne(db, sql: "SELECT peer, seq FROM divergence WHERE origin = ? ORDER BY seq LIMIT 1",
                                         arguments: [site.rawValue]) else { return nil }
        let peer: String = row["peer"], seq = row["seq"] as Int64
        return "this store is a copy: \(peer) holds another block at seq \(seq) of this store's site \(site), written by another store of \(site) (a copied or reimaged store, or an old backup restored) that the fleet heard from first. It writes nothing more as \(site), so no second history of \(site) reaches anyone. Its tickets and the blocks the fleet lacks stay here; `tierline status` lists the divergence. Give this machine a new site (`tierline init --site NEW` in a new store, admitted by the coordinator) and re-enter its unsynced work there"
    }
}
