import CompressNIO
import NIOCore
import TicketModel

/// Blocks as a file: a zlib stream (RFC 1950) of `TLX1`, the origins' public keys and the blocks,
/// so two stores can sync with no network at all (`Protocol/PROTOCOL.md`, export files).
public enum BlockArchive {
    static let magic = Array("TLX1".utf8)
    /// Largest decompressed archive read back; a larger one is refused, never inflated without bound.
    public static let maxDecompressedBytes = 1 << 30
    /// zlib level 6: the default of zlib itself.
    static let compression = CompressionAlgorithm.zlib(configuration: .init(compressionLevel: 6))

    /// Encodes and compresses `blocks` with the public keys of their origins.
    public static func encode(blocks: [Block], keys: [SiteID: [UInt8]]) throws -> [UInt8] {
        var w = ByteWriter()
        w.raw(magic)
        let origins = Set(blocks.map(\.origin))
        let listed = keys.filter { origins.contains($0.key) }.sorted { $0.key < $1.key }
        w.uvarint(UInt64(listed.count))
        for (site, key) in listed {
            w.string(site.rawValue)
            w.raw(key)
        }
        w.uvarint(UInt64(blocks.count))
        for block in blocks {
            let bytes = block.bytes
            w.uvarint(UInt64(bytes.count))
            w.raw(bytes)
        }
        var buffer = ByteBuffer(bytes: w.bytes)
        let compressed = try buffer.compress(with: compression)
        return Array(compressed.readableBytesView)
    }

    /// Decompresses and decodes an archive, strictly: any damage fails the whole file before
    /// anything is stored.
    /// - Throws: ``StoreError`` `.corruptFile` saying what is wrong.
    public static func decode(_ file: [UInt8]) throws -> (keys: [SiteID: [UInt8]], blocks: [Block]) {
        guard !file.isEmpty else { throw StoreError(.corruptFile, "the file is empty; export it again") }
        var buffer = ByteBuffer(bytes: file)
        let raw: ByteBuffer
        do {
            raw = try buffer.decompress(with: compression, maxSize: maxDecompressedBytes)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw StoreError(.corruptFile, "the file inflates beyond \(maxDecompressedBytes >> 20) MiB; split the export with --since-vector")
        } catch {
            throw StoreError(.corruptFile, "the file is not a Tierline export or is damaged: its zlib stream does not inflate (\(error)); export it again")
        }
        var r = ByteReader(Array(raw.readableBytesView))
        do {
            guard Array(try r.take(4)) == magic else {
                throw StoreError(.corruptFile, "the file is not a Tierline export (its content does not start with TLX1)")
            }
            var keys: [SiteID: [UInt8]] = [:]
            let keyCount = try r.uvarint()
            guard keyCount <= UInt64(BlockLimits.maxDeps) else { throw CodecError(.tooLarge, "\(keyCount) keys") }
            var previous: SiteID?
            for _ in 0..<keyCount {
                let site = try r.siteID()
                if let previous, !(previous < site) { throw CodecError(.unsorted, "site keys must be sorted by site id without repeats (\(site))") }
                keys[site] = Array(try r.take(32))
                previous = site
            }
            let count = try r.uvarint()
            var blocks: [Block] = []
            for index in 0..<count {
                let length = try r.uvarint()
                guard length <= UInt64(BlockLimits.maxBlockBytes) else { throw CodecError(.tooLarge, "block \(index) is \(length) bytes") }
                do {
                    blocks.append(try Block(decoding: try r.take(Int(length))))
                } catch {
                    throw CodecError(error.code, "block \(index): \(error.detail)")
                }
            }
            try r.expectEnd()
            return (keys, blocks)
        } catch let error as CodecError {
            throw StoreError(.corruptFile, "the export file is damaged: \(error); nothing was imported")
        }
    }
}
