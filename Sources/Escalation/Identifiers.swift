import Crypto
import struct Foundation.UUID

/// Name-based (version 5) UUIDs: the ids of derived records and configuration documents.
///
/// Every replica that derives the same fact computes the same id, so the grow-only event log holds
/// it once however many nodes derived it.
public enum DerivedID {
    /// The namespace of every Tierline name-based id.
    public static let namespace = UUID(uuidString: "6f1c3a52-9e0b-4d5e-8a47-2c9b1f7d3e10")!

    /// UUIDv5 (RFC 9562 §5.5) of `parts` joined by `|` in `namespace`.
    public static func make(_ parts: [String], namespace: UUID = DerivedID.namespace) -> UUID {
        var input = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        input.append(contentsOf: Array(parts.joined(separator: "|").utf8))
        var b = Array(Insecure.SHA1.hash(data: input).prefix(16))
        b[6] = (b[6] & 0x0f) | 0x50
        b[8] = (b[8] & 0x3f) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// The id of a derived record of `ticket`: kind, clock or ladder path, cycle, level, loop.
    public static func record(ticket: UUID, _ parts: String...) -> UUID {
        make([ticket.uuidString.lowercased()] + parts)
    }
}
