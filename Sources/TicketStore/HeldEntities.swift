import Foundation
import GRDB
import TicketModel

/// The store's side of naming an entity by one of its changes (`Protocol/PROTOCOL.md` §2.3.3): a
/// sender finds, for each entity of a batch, a change in a block the receiver holds; a receiver finds
/// the entity of such a change in its own log.
extension TicketDatabase {
    /// For each of `ids` that has a change in a block `peer` holds, that change: the smallest by
    /// origin (bytewise), seq and index. An entity that has none is left out (it goes by its id).
    ///
    /// Blocks of a removed site past its limit are never named: a receiver that adopted the removal
    /// no longer holds them (§2.6.1).
    public func heldChanges(for ids: some Collection<UUID>, within peer: VersionVector) throws -> [UUID: Dot] {
        guard !peer.entries.isEmpty, !ids.isEmpty else { return [:] }
        return try writer.read { db in
            var within = peer
            for (site, removal) in try Self.removedMembers(db) where within[site] > removal.limit { within[site] = removal.limit }
            var found: [UUID: Dot] = [:]
            var origins: [String: SiteID] = [:]
            // The first rows only: an entity with a long history in origins the peer lacks is sent by
            // its id rather than scanned again for every batch.
            let statement = try db.cachedStatement(sql: "SELECT origin, seq, offsets FROM entityBlock WHERE entity = ? ORDER BY origin, seq LIMIT 16")
            for id in ids {
                let rows = try Row.fetchCursor(statement, arguments: [id.keyBytes])
                while let row = try rows.next() {
                    let originText: String = row[0]
                    guard let origin = origins[originText] ?? (try? SiteID(originText)) else { continue }
                    origins[originText] = origin
                    let seq = UInt64(row[1] as Int64)
                    // The first uvarint of `offsets` is the index of the entity's first change in the
                    // block; a row written before offsets were kept is passed over.
                    guard seq <= within[origin], !row.hasNull(atIndex: 2) else { continue }
                    var reader = ByteReader([UInt8](row[2] as Data))
                    guard let index = try? reader.uvarint(), index < UInt64(BlockLimits.maxChanges) else { continue }
                    found[id] = Dot(origin: origin, seq: seq, index: UInt32(index))
                    break
                }
            }
            return found
        }
    }

    /// The entity id of each change of `dots`, from this store's log: `nil` where the store does not
    /// hold the block, or the block has no change at that index.
    public func entityIDs(at dots: [Dot]) throws -> [UUID?] {
        guard !dots.isEmpty else { return [] }
        return try writer.read { db in
            // Each block is read once, and only its changes' entity ids are kept.
            var entities: [String: [UUID]] = [:]
            let statement = try db.cachedStatement(sql: "SELECT bytes FROM block WHERE origin = ? AND seq = ?")
            return try dots.map { dot -> UUID? in
                let key = "\(dot.origin.rawValue) \(dot.seq)"
                if entities[key] == nil {
                    let bytes = try Data.fetchOne(statement, arguments: [dot.origin.rawValue, Int64(dot.seq)])
                    entities[key] = try bytes.map { try Block(decoding: [UInt8]($0)).changes.map(\.entity.id) } ?? []
                }
                guard let ids = entities[key], Int(dot.index) < ids.count else { return nil }
                return ids[Int(dot.index)]
            }
        }
    }
}
