import Crypto
import struct Foundation.UUID

/// Name-based (version 5) UUIDs (RFC 9562 §5.5): ids every replica computes alike from the same
/// name — derived records, configuration documents, customers from a CRM id, messages from a
/// channel's message id.
public enum NameBasedID {
    /// The namespace of entities named from outside Tierline (customers, channel messages).
    public static let intake = UUID(uuidString: "3d6f9a2e-51c4-4b7a-9e08-7c2d4f1b8a63")!

    /// UUIDv5 of `parts` joined by `|` in `namespace`.
    public static func make(_ parts: [String], namespace: UUID = NameBasedID.intake) -> UUID {
        var input = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        input.append(contentsOf: Array(parts.joined(separator: "|").utf8))
        var b = Array(Insecure.SHA1.hash(data: input).prefix(16))
        b[6] = (b[6] & 0x0f) | 0x50
        b[8] = (b[8] & 0x3f) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}
