import Crypto
import TicketModel
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
        NameBasedID.make(parts, namespace: namespace)
    }

    /// The id of a derived record of `ticket`: kind, clock or ladder path, cycle, level, loop.
    public static func record(ticket: UUID, _ parts: String...) -> UUID {
        make([ticket.lowercaseText] + parts)
    }
}
