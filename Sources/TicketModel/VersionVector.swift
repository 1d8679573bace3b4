/// Per origin site, the highest contiguous sequence number applied.
///
/// Two replicas compare vectors (size O(sites)) and send each other exactly the blocks the other lacks.
/// Entries at zero are never stored, so equal knowledge gives equal vectors.
public struct VersionVector: Hashable, Sendable, Codable, CustomStringConvertible {
    public private(set) var entries: [SiteID: UInt64]

    public init() { entries = [:] }
    public init(_ entries: [SiteID: UInt64]) { self.entries = entries.filter { $0.value > 0 } }

    /// The highest contiguous `seq` of `site`, 0 when none.
    public subscript(site: SiteID) -> UInt64 {
        get { entries[site] ?? 0 }
        set { entries[site] = newValue == 0 ? nil : newValue }
    }

    /// Sites in bytewise order with their sequence numbers.
    public var sorted: [(site: SiteID, seq: UInt64)] {
        entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether this vector has seen block `seq` of `origin`.
    public func covers(origin: SiteID, seq: UInt64) -> Bool { self[origin] >= seq }

    /// Whether this vector has seen everything `other` has.
    public func dominates(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    /// The entry-wise maximum.
    /// How many blocks `other` covers that this vector does not (what a peer at `self` lacks from `other`).
    /// Saturates at `Int.max`: vectors can come from peers, and a crafted one must not trap.
    public func lacking(from other: VersionVector) -> Int {
        var total: UInt64 = 0
        for (site, seq) in other.entries where seq > self[site] {
            let (sum, overflow) = total.addingReportingOverflow(seq - self[site])
            total = overflow ? .max : sum
        }
        return Int(clamping: total)
    }

    public func merging(_ other: VersionVector) -> VersionVector {
        VersionVector(entries.merging(other.entries, uniquingKeysWith: max))
    }

    public var description: String {
        "{" + sorted.map { "\($0.site):\($0.seq)" }.joined(separator: ",") + "}"
    }

    public init(from decoder: any Decoder) throws {
        let raw = try [String: UInt64](from: decoder)
        var entries: [SiteID: UInt64] = [:]
        for (key, value) in raw {
            do { entries[try SiteID(key)] = value } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
            }
        }
        self.init(entries)
    }

    public func encode(to encoder: any Encoder) throws {
        try Dictionary(uniqueKeysWithValues: entries.map { ($0.key.rawValue, $0.value) }).encode(to: encoder)
    }
}
