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

    /// A peer's heads against this store. `mismatched`: the blocks this store holds at the seqs of
    /// heads whose hashes differ, each this store's evidence to send the peer in a `fork` frame
    /// (§2.2.3). `matched`: the origins whose head this store holds with the same hash (a columnar
    /// batch names held entities in those, §2.3.3). A head beyond this store's own entry is not
    /// compared (the peer compares this store's head). Nothing is recorded: a head is a claim, and
    /// only a block signed by its origin's key is proof (``recordFork(_:peer:address:now:)``).
    public func comparedHeads(_ theirs: [SiteID: Head]) throws -> (mismatched: [Block], matched: Set<SiteID>) {
        try writer.read { db in
            var out: [Block] = []
            var matched = Set<SiteID>()
            for (origin, head) in theirs.sorted(by: { $0.key < $1.key }) where head.seq > 0 {
                guard let row = try Row.fetchOne(db, sql: "SELECT hash, bytes FROM block WHERE origin = ? AND seq = ?",
                                                 arguments: [origin.rawValue, Int64(clamping: head.seq)]) else { continue }
                guard [UInt8](row["hash"] as Data) != head.hash else {
                    matched.insert(origin)
                    continue
                }
                out.append(try Self.decodeStored(row["bytes"]))
            }
            return (out, matched)
        }
    }

    /// This store's block at `origin`, `seq`, if it holds it.
    public func storedBlock(origin: SiteID, seq: UInt64) throws -> Block? {
        try writer.read { db in
            try Data.fetchOne(db, sql: "SELECT bytes FROM block WHERE origin = ? AND seq = ?", arguments: [origin.rawValue, Int64(clamping: seq)])
                .map(Self.decodeStored)
        }
    }

    /// What a peer's `fork` evidence showed.
    public enum ForkEvidence: Sendable, Equatable {
        /// Proof of a second history: recorded.
        case recorded(Divergence)
        /// This store holds no block at that seq, or the same one: nothing to record.
        case nothingHeld, sameBlock
        /// The block is not signed by the key the roster lists for its origin: not evidence of anything.
        case notSigned
    }

    /// Records a divergence if `block` — sent by a peer as evidence — is signed with the key this store
    /// holds for its origin and is not the block this store holds at that seq: two blocks signed by one
    /// site's key at one seq can only come from two stores of that site.
    public func recordFork(_ block: Block, peer: SiteID, address: String, now: UInt64) throws -> ForkEvidence {
        try writer.write { db in
            guard let key = try Self.siteKeys(db)[block.origin], block.isSignatureValid(publicKey: key) else { return .notSigned }
            guard let ours = try Data.fetchOne(db, sql: "SELECT hash FROM block WHERE origin = ? AND seq = ?",
                                               arguments: [block.origin.rawValue, Int64(clamping: block.seq)]) else { return .nothingHeld }
            guard [UInt8](ours) != block.hash else { return .sameBlock }
            let divergence = Divergence(origin: block.origin, peer: peer, seq: block.seq, ourHash: [UInt8](ours), theirHash: block.hash,
                                        address: address, detectedAt: now)
            try db.execute(sql: """
                INSERT INTO divergence (origin, peer, seq, ourHash, theirHash, address, detectedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(origin, peer) DO UPDATE SET seq = excluded.seq, ourHash = excluded.ourHash,
                  theirHash = excluded.theirHash, address = excluded.address, detectedAt = excluded.detectedAt
                WHERE excluded.seq < divergence.seq
                """, arguments: [block.origin.rawValue, peer.rawValue, Int64(clamping: block.seq), ours, Data(block.hash),
                                 address, Int64(clamping: now)])
            return .recorded(divergence)
        }
    }

    /// Every divergence this store has seen, by origin then peer.
    public func divergences() throws -> [Divergence] {
        try writer.read { db in try Self.divergences(db) }
    }

    package static func divergences(_ db: Database) throws -> [Divergence] {
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
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT peer, seq FROM divergence WHERE origin = ? ORDER BY seq LIMIT 1"),
                                         arguments: [site.rawValue]) else { return nil }
        let peer: String = row["peer"], seq = row["seq"] as Int64
        return "this store is a copy: \(peer) holds another block at seq \(seq) of this store's site \(site), written by another store of \(site) (a copied or reimaged store, or an old backup restored) that the fleet heard from first. It writes nothing more as \(site), so no second history of \(site) reaches anyone. Its tickets and the blocks the fleet lacks stay here; `tierline status` lists the divergence. To go on: make a new store with a site id of its own (`tierline init --site NEW`), have the coordinator admit it and sync it, then `tierline recover --from THIS-STORE --store NEW` re-issues this store's unsynced work there"
    }
}

/// What ``TicketDatabase/reissue(from:)`` re-issued.
public struct ReissueReport: Sendable, Encodable {
    /// The copied store's site, and this store's.
    public var from: String
    public var to: String
    /// The copy's own blocks the fleet does not hold as they are (its unsynced work) that this run
    /// re-issued, by seq.
    public var blocksRead: [UInt64]
    /// The copy's unsynced blocks an earlier run re-issued in this store already (one cut short), by
    /// seq: skipped.
    public var alreadyReissued: [UInt64]
    public var changes: Int
    /// This store's new blocks, by seq.
    public var blocksWritten: [UInt64]
    /// Tickets the copy created that the fleet never had, with their new display numbers.
    public var tickets: [Renumbered]

    public struct Renumbered: Sendable, Encodable {
        public var id: String
        public var was: String
        public var now: String
    }
}

extension TicketDatabase {
    /// A block of a copied store that ``reissue(from:)`` re-issued in this store.
    struct Reissued {
        var hash: [UInt8]
        /// This store's own blocks that carry its changes, in order.
        var blocks: ClosedRange<UInt64>
        var at: UInt64
    }

    /// The blocks of `origin` re-issued in this store, by their seq there.
    func reissued(of origin: SiteID) throws -> [UInt64: Reissued] {
        try writer.read { db in
            var found: [UInt64: Reissued] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM reissued WHERE origin = ?", arguments: [origin.rawValue]) {
                found[UInt64(row["seq"] as Int64)] = Reissued(hash: [UInt8](row["hash"] as Data),
                                                              blocks: UInt64(row["firstSeq"] as Int64)...UInt64(row["lastSeq"] as Int64),
                                                              at: UInt64(row["reissuedAt"] as Int64))
            }
            return found
        }
    }

    /// The blocks of `origin` this store holds, by seq.
    func ownBlocks(of origin: SiteID) throws -> [Block] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT bytes FROM block WHERE origin = ? ORDER BY seq", arguments: [origin.rawValue])
                .map { try Self.decodeStored($0["bytes"]) }
        }
    }

    /// Re-issues, as this store's own writes, the work of `copy` — a store found to be a copy of its
    /// site (``copiedStoreRefusal()``) — that the fleet never accepted: every block of the copy's site
    /// that this store does not hold with the same hash, oldest first, change by change. A ticket the
    /// copy created takes this site's next display number (its id stays); a removal that observed an
    /// addition the copy made names that addition's new position. Nothing of the copy is changed.
    ///
    /// This store must be a new site, admitted by the coordinator, and hold the fleet's blocks of the
    /// copy's site at least up to where the divergence was seen (sync it with the coordinator first),
    /// so the copy's blocks the fleet already holds are told apart from its unsynced work.
    ///
    /// Each block re-issued is recorded in this store (table `reissued`) in the transaction that writes
    /// it again, so the work is never issued twice: a later run skips those blocks (it takes up a run
    /// that was cut short), and one that finds them all re-issued already is refused.
    public func reissue(from copy: TicketDatabase) throws -> ReissueReport {
        let source = try copy.identity().site
        let me = try identity().site
        guard source != me else {
            throw StoreError(.invalidInput, "this store is \(me), like the copy: recover into a new store with a site id of its own (`tierline init --site NEW`)")
        }
        guard let diverged = try copy.divergences().filter({ $0.origin == source }).map(\.seq).min() else {
            throw StoreError(.invalidInput, "the store given is \(source) and no peer has shown it another block of its own site: it is not a copy, and its work reaches the fleet by `tierline sync`")
        }
        let held = try vector()[source]
        guard held >= diverged else {
            throw StoreError(.awaitingSync, "this store holds \(source)'s blocks up to seq \(held), and the copy was found out at seq \(diverged): sync this store with the coordinator first, so the copy's blocks the fleet holds are not issued twice")
        }
        let fleet = Dictionary(uniqueKeysWithValues: try ownBlocks(of: source).map { ($0.seq, $0.hash) })
        let unsynced = try copy.ownBlocks(of: source).filter { fleet[$0.seq] != $0.hash }
        let earlier = try reissued(of: source)
        let done = unsynced.filter { earlier[$0.seq]?.hash == $0.hash }
        if !unsynced.isEmpty && done.count == unsynced.count {
            let carriers = done.compactMap { earlier[$0.seq] }
            let first = carriers.map(\.blocks.lowerBound).min() ?? 0, last = carriers.map(\.blocks.upperBound).max() ?? 0
            let when = carriers.map(\.at).max().map { HLC(rawValue: $0 << 16).iso8601 } ?? "earlier"
            throw StoreError(.refusedWrite, "the copy's unsynced work (\(source)'s blocks seq \(done.map { String($0.seq) }.joined(separator: ", "))) was already re-issued in this store, as \(me)'s \(first == last ? "block \(first)" : "blocks \(first) to \(last)"), by a recover at \(when); running it again would issue the same tickets and changes twice, so nothing was written. Nothing more is needed from the copy: `tierline sync` sends this store's blocks to the fleet, and `tierline ticket list` shows the re-issued tickets here")
        }
        var report = ReissueReport(from: source.rawValue, to: me.rawValue, blocksRead: [], alreadyReissued: done.map(\.seq),
                                   changes: 0, blocksWritten: [], tickets: [])
        // Where each change of the copy now stands in this store: a removal that observed an addition
        // the copy made names the addition's new position, re-issued now or by an earlier run.
        var moved: [Dot: Dot] = [:]
        func note(_ block: Block, carriedBy written: [Block]) {
            let newDots = written.flatMap { b in b.changes.indices.map { b.dot($0) } }
            for (index, dot) in zip(block.changes.indices, newDots) { moved[block.dot(index)] = dot }
        }
        for block in done {
            guard let carriers = earlier[block.seq]?.blocks else { continue }
            note(block, carriedBy: try carriers.compactMap { try storedBlock(origin: me, seq: $0) })
        }
        for block in unsynced where earlier[block.seq]?.hash != block.hash {
            var created: [(UUID, UInt64, UInt64)] = []
            let written = try writeLocal { _, _, nextNumber in
                try block.changes.map { change in
                    switch change.operation {
                    case .create(let number):
                        let renumbered = try nextNumber()
                        created.append((change.entity.id, number, renumbered))
                        return Change(change.entity, .create(number: renumbered))
                    case .removeElement(let set, let value, let observed):
                        return Change(change.entity, .removeElement(set, value, observed: observed.map { moved[$0] ?? $0 }))
                    default:
                        return change
                    }
                }
            } record: { [wallClock] db, written in
                try db.execute(sql: """
                    INSERT INTO reissued (origin, seq, hash, firstSeq, lastSeq, reissuedAt) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(origin, seq) DO UPDATE SET hash = excluded.hash, firstSeq = excluded.firstSeq,
                      lastSeq = excluded.lastSeq, reissuedAt = excluded.reissuedAt
                    """, arguments: [source.rawValue, Int64(clamping: block.seq), Data(block.hash), Int64(clamping: written.first?.seq ?? 0),
                                     Int64(clamping: written.last?.seq ?? 0), Int64(clamping: wallClock())])
            }
            note(block, carriedBy: written)
            report.blocksRead.append(block.seq)
            report.changes += block.changes.count
            report.blocksWritten += written.map(\.seq)
            report.tickets += created.map {
                ReissueReport.Renumbered(id: $0.0.lowercaseText, was: "\(source.rawValue.uppercased())-\($0.1)", now: "\(me.rawValue.uppercased())-\($0.2)")
            }
        }
        return report
    }
}
