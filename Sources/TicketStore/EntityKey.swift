import Foundation

extension UUID {
    /// The 16 bytes the log's entity index (`entityBlock.entity`) keys an entity by: 20 bytes fewer
    /// than its 36-character text in each row, and no text to format for every entity of a block.
    package var keyBytes: Data { withUnsafeBytes(of: uuid) { Data($0) } }

    /// The id whose ``keyBytes`` are `bytes`; `nil` unless they are 16.
    package init?(keyBytes bytes: Data) {
        guard bytes.count == 16 else { return nil }
        self.init(uuid: bytes.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) })
    }
}

extension TicketDatabase {
    /// The entity an entity-index row names, or a damaged-file error.
    static func entity(keyBytes bytes: Data) throws -> UUID {
        guard let id = UUID(keyBytes: bytes) else {
            throw StoreError(.corruptFile, "the log's entity index holds a key of \(bytes.count) bytes, not 16; the database file is damaged, restore it from a backup or a peer")
        }
        return id
    }
}
