import CompressNIO
import Foundation
import NIOCore
import TicketModel

/// A `blocks` frame ready to write: its line and what it carries.
public struct EncodedBatch: Sendable {
    public var batch: UInt64
    public var line: [UInt8]
    /// How many blocks the line carries: the first `blockCount` of those given to encode.
    public var blockCount: Int
    /// Inflated size of the change set.
    public var size: Int
    /// The highest seq per origin in the batch.
    public var through: VersionVector
}

/// The change-set payload of a `blocks` frame (`Protocol/PROTOCOL.md` §2.3): length-prefixed canonical
/// blocks, compressed with zlib (RFC 1950) and written in base64.
public enum ChangeSet {
    /// How the blocks are laid out before compression: one per protocol version range.
    public enum Format: Sendable, Equatable {
        /// Protocols 1 and 2: each block's bytes behind its length (§2.3).
        case plain
        /// Protocols 3 and 4: site and entity ids once per batch (§2.3.1, ``CompactChangeSet``).
        case compact
        /// Protocol 5: columns of like bytes, and held entities named by a change the receiver
        /// holds (§2.3.3, ``ColumnarChangeSet``).
        case columnar

        /// The format a session of the negotiated `protocolVersion` uses.
        public init(protocolVersion: Int) { self = protocolVersion >= 5 ? .columnar : protocolVersion >= 3 ? .compact : .plain }

        /// Whether the blocks are taken apart (compact or columnar), so a page may not all fit.
        var takesApart: Bool { self != .plain }
    }

    /// zlib level used by senders. Level 1 deflates these batches almost as well as level 6 at a
    /// fraction of the time (see the sync benchmark); receivers accept any level.
    public static let defaultLevel: Int32 = 1

    /// Most bytes of compact or columnar change set (§2.3.1, §2.3.3) a sender puts in one batch: 1 MiB and 32 KiB, so that
    /// with zlib's worst case a batch stays within the lowest `maxBatchBytes` and
    /// `maxBatchCompressedBytes` a receiver may set (1 114 112, §2.9.1). One block of the largest size
    /// always fits: its compact form is at most 5 bytes a change longer than the block.
    public static let maxCompactBytes = (1 << 20) + (32 << 10)

    /// Encodes `blocks` (in order) as one `blocks` frame line.
    ///
    /// In the `.compact` and `.columnar` formats, when the change set of all of `blocks`, taken apart, would be longer than
    /// ``maxCompactBytes`` (or `limits.maxBatchBytes`), only the first blocks that fit are encoded:
    /// ``EncodedBatch/blockCount`` and ``EncodedBatch/through`` say which, and the caller sends the
    /// rest in a later batch.
    /// - Throws: ``WireError`` `.tooLarge` if they exceed a batch's limits.
    public static func encode(_ blocks: [Block], batch: UInt64, keys: [SiteID: [UInt8]],
                              level: Int32 = defaultLevel, limits: WireLimits = .standard, format: Format = .plain,
                              held: [UUID: Dot] = [:]) throws(WireError) -> EncodedBatch {
        guard format.takesApart else {
            return try encode(stored: blocks.map { ($0.origin, $0.seq, $0.bytes) }, batch: batch, keys: keys, level: level, limits: limits)
        }
        func takeApart(_ blocks: [Block]) throws(WireError) -> [UInt8] {
            format == .columnar ? try ColumnarChangeSet.encode(blocks, held: held) : try CompactChangeSet.encode(blocks)
        }
        let blockBytes = blocks.reduce(0) { $0 + $1.body.count + $1.signature.count }
        guard !blocks.isEmpty, blocks.count <= limits.maxBatchBlocks, blockBytes <= limits.maxBatchBytes else {
            throw WireError(.tooLarge, "a batch of \(blocks.count) blocks and \(blockBytes) bytes is outside the limits (1…\(limits.maxBatchBlocks) blocks, \(limits.maxBatchBytes) bytes)")
        }
        // A change on an entity new to the batch is a few bytes longer taken apart than in its block, so a
        // page of such changes can come out longer than the page: send the first blocks that fit.
        let budget = min(limits.maxBatchBytes, maxCompactBytes)
        var sent = blocks[...]
        var apart = try takeApart(Array(sent))
        while apart.count > budget {
            guard sent.count > 1 else {
                throw WireError(.tooLarge, "a \(format == .columnar ? "columnar" : "compact") change set of \(apart.count) bytes is over the limit of \(budget)")
            }
            sent = blocks.prefix(max(1, min(sent.count - 1, sent.count * budget / apart.count)))
            apart = try takeApart(Array(sent))
        }
        var through = VersionVector()
        for block in sent { through[block.origin] = max(through[block.origin], block.seq) }
        var raw = ByteBuffer(bytes: apart)
        return try line(&raw, blockCount: sent.count, through: through, batch: batch, keys: keys, origins: Set(sent.map(\.origin)), level: level)
    }

    /// Encodes blocks given as their canonical bytes (in stamp order) as one `blocks` frame line,
    /// without decoding them: what a sender relays from its store (§2.3 sends them byte for byte).
    ///
    /// ```swift
    /// let line = try ChangeSet.encode(stored: try store.storedBlocks(after: peer, limit: 1024, maxBytes: 1 << 20),
    ///                                 batch: 1, keys: [:])
    /// ```
    /// - Parameter stored: each block's origin, `seq` and bytes; the origin and `seq` make the batch's
    ///   ``EncodedBatch/through`` vector and must be those the bytes hold.
    ///   In the `.compact` and `.columnar` formats, as for ``encode(_:batch:keys:level:limits:format:held:)``, only the
    ///   first blocks may be encoded; ``EncodedBatch/through`` covers those.
    /// - Throws: ``WireError`` `.tooLarge` if they exceed a batch's limits.
    public static func encode(stored blocks: [(origin: SiteID, seq: UInt64, bytes: [UInt8])], batch: UInt64, keys: [SiteID: [UInt8]],
                              level: Int32 = defaultLevel, limits: WireLimits = .standard, format: Format = .plain,
                              held: [UUID: Dot] = [:]) throws(WireError) -> EncodedBatch {
        if format.takesApart {
            return try encode(try decodeStored(blocks), batch: batch, keys: keys, level: level, limits: limits, format: format, held: held)
        }
        var raw = ByteBuffer()
        raw.reserveCapacity(blocks.reduce(0) { $0 + $1.bytes.count + 3 })
        var through = VersionVector()
        var length = ByteWriter()
        for block in blocks {
            length.bytes.removeAll(keepingCapacity: true)
            length.uvarint(UInt64(block.bytes.count))
            raw.writeBytes(length.bytes)
            raw.writeBytes(block.bytes)
            through[block.origin] = max(through[block.origin], block.seq)
        }
        let size = raw.readableBytes
        guard blocks.count <= limits.maxBatchBlocks, size <= limits.maxBatchBytes, !blocks.isEmpty else {
            throw WireError(.tooLarge, "a batch of \(blocks.count) blocks and \(size) bytes is outside the limits (1…\(limits.maxBatchBlocks) blocks, \(limits.maxBatchBytes) bytes)")
        }
        return try line(&raw, blockCount: blocks.count, through: through, batch: batch, keys: keys, origins: Set(blocks.map(\.origin)), level: level)
    }

    /// Decodes blocks a sender read from its store, to take them apart.
    /// - Throws: ``WireError`` `.internal` naming the first that does not decode: the store is damaged.
    public static func decodeStored(_ blocks: [(origin: SiteID, seq: UInt64, bytes: [UInt8])]) throws(WireError) -> [Block] {
        var parsed: [Block] = []
        parsed.reserveCapacity(blocks.count)
        for block in blocks {
            do { parsed.append(try Block(decoding: block.bytes)) } catch {
                throw WireError(.internal, "a stored block of \(block.origin) seq \(block.seq) does not decode (\(error)); the store is damaged")
            }
        }
        return parsed
    }

    /// Compresses a change set and writes the `blocks` line around it.
    private static func line(_ raw: inout ByteBuffer, blockCount: Int, through: VersionVector, batch: UInt64, keys: [SiteID: [UInt8]],
                             origins: Set<SiteID>, level: Int32) throws(WireError) -> EncodedBatch {
        let size = raw.readableBytes
        let compressed: ByteBuffer
        do { compressed = try raw.compress(with: .zlib(configuration: .init(compressionLevel: level))) } catch {
            throw WireError(.internal, "zlib failed to compress a batch: \(error)")
        }
        var keyText: [String: String] = [:]
        for (site, key) in keys where origins.contains(site) { keyText[site.rawValue] = key.hexString }
        // Hand-built JSON: the members are fixed and the base64 text needs no escaping, so the large
        // payload is written once instead of going through an encoder.
        var line: [UInt8] = []
        let data = Data(compressed.readableBytesView).base64EncodedString()
        line.reserveCapacity(data.utf8.count + 128 + keyText.count * 100)
        line += Array("{\"batch\":\(batch),\"count\":\(blockCount),\"data\":\"".utf8)
        line += Array(data.utf8)
        line += Array("\",\"keys\":{".utf8)
        line += Array(keyText.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",").utf8)
        line += Array("},\"size\":\(size),\"type\":\"blocks\"}".utf8)
        return EncodedBatch(batch: batch, line: line, blockCount: blockCount, size: size, through: through)
    }

    /// Decodes the `data` member: base64, then zlib inflated to exactly `size` bytes, then exactly
    /// `count` canonical blocks.
    ///
    /// `count` and `size` are checked against `limits` first (`Protocol/PROTOCOL.md` §2.3 steps 3
    /// and 4), as the frame header already was: `size` is how much the inflater sets aside.
    /// - Parameter resolve: in the `.columnar` format, the entity id of each change given, as this
    ///   node holds it (`nil` where it does not); without it the node holds none.
    public static func decode(base64 text: String, count: Int, size: Int,
                              limits: WireLimits = .standard, format: Format = .plain,
                              resolve: ([Dot]) throws(WireError) -> [UUID?] = { $0.map { _ in nil } }) throws(WireError) -> [Block] {
        var raw = try inflated(base64: text, count: count, size: size, limits: limits)
        switch format {
        case .compact: return try CompactChangeSet.decode(Array(raw.readableBytesView), count: count, limits: limits)
        case .columnar: return try ColumnarChangeSet.decode(Array(raw.readableBytesView), count: count, limits: limits, resolve: resolve)
        case .plain: break
        }
        var reader = ByteReader(Array(raw.readBytes(length: raw.readableBytes) ?? []))
        var blocks: [Block] = []
        blocks.reserveCapacity(count)
        do {
            for index in 0..<count {
                let length = try reader.uvarint()
                guard length <= UInt64(BlockLimits.maxBlockBytes) else {
                    throw WireError(.badBatch, "block \(index) claims \(length) bytes; a block is at most \(BlockLimits.maxBlockBytes)")
                }
                do { blocks.append(try Block(decoding: try reader.take(Int(length)))) } catch {
                    throw WireError(.badBatch, "block \(index) does not decode: \(error.code.rawValue): \(error.detail)")
                }
            }
            try reader.expectEnd()
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(.badBatch, "the change set does not hold \(count) whole blocks and nothing else (\(error))")
        }
        return blocks
    }

    /// Reads a `.columnar` `data` member up to the look-up of its held entities (§2.3.3).
    public static func parseColumnar(base64 text: String, count: Int, size: Int,
                                     limits: WireLimits = .standard) throws(WireError) -> ColumnarChangeSet.Parsed {
        let raw = try inflated(base64: text, count: count, size: size, limits: limits)
        return try ColumnarChangeSet.parse(Array(raw.readableBytesView), count: count, limits: limits)
    }

    /// Steps 3, 4 and 7 to 10 of §2.3: `count` and `size` within `limits`, then base64, then zlib
    /// inflated to exactly `size` bytes.
    private static func inflated(base64 text: String, count: Int, size: Int, limits: WireLimits) throws(WireError) -> ByteBuffer {
        guard count >= 1 else { throw WireError(.badField, "a batch holds at least 1 block, not \(count)") }
        guard count <= limits.maxBatchBlocks else {
            throw WireError(.tooLarge, "the batch holds \(count) blocks; the limit is \(limits.maxBatchBlocks)")
        }
        guard size >= 1 else { throw WireError(.badField, "a change set holds at least 1 byte, not \(size)") }
        guard size <= limits.maxBatchBytes else {
            throw WireError(.tooLarge, "the batch inflates to \(size) bytes; the limit is \(limits.maxBatchBytes)")
        }
        var compressed = try Self.base64(text)
        return try inflate(&compressed, size: size)
    }

    /// How many bytes the base64 `text` stands for, counted without decoding it: three per four
    /// characters, less one per `=` of padding (exact for valid base64, an upper bound otherwise).
    public static func decodedLength(base64 text: String) -> Int {
        let utf8 = text.utf8
        let padding = utf8.reversed().prefix(2).prefix(while: { $0 == UInt8(ascii: "=") }).count
        return max(0, utf8.count / 4 * 3 + (utf8.count % 4) * 3 / 4 - padding)
    }

    /// Strict standard base64 with padding: no whitespace, no URL alphabet, canonical final bits.
    static func base64(_ text: String) throws(WireError) -> ByteBuffer {
        guard text.utf8.count % 4 == 0, let data = Data(base64Encoded: text) else {
            throw WireError(.badBase64, "member \"data\" is not standard base64 with padding (RFC 4648 §4)")
        }
        // Foundation ignores the unused low bits of the last group; a canonical encoder writes zeros.
        let tailBytes = data.count % 3 == 0 ? 3 : data.count % 3
        let tail = data.suffix(tailBytes).base64EncodedString()
        guard text.utf8.suffix(4).elementsEqual(tail.utf8) else {
            throw WireError(.badBase64, "member \"data\" ends in a non-canonical base64 group")
        }
        return ByteBuffer(bytes: data)
    }

    /// Inflates a whole zlib stream into exactly `size` bytes at most, so a small line can never
    /// make the receiver allocate more than the declared (and bounded) size.
    static func inflate(_ input: inout ByteBuffer, size: Int) throws(WireError) -> ByteBuffer {
        guard input.readableBytes > 0 else { throw WireError(.badZlib, "member \"data\" is empty; a change set is a zlib stream") }
        let decompressor = CompressionAlgorithm.zlib().decompressor
        do { try decompressor.startStream() } catch {
            throw WireError(.internal, "zlib failed to start: \(error)")
        }
        defer { try? decompressor.finishStream() }
        var output = ByteBufferAllocator().buffer(capacity: size + 1)
        do {
            try decompressor.streamInflate(from: &input, to: &output)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw WireError(.tooLarge, "the change set inflates past its declared size of \(size) bytes")
        } catch let error as CompressNIOError where error == .inputBufferOverflow {
            throw WireError(.badZlib, "the zlib stream ends early")
        } catch {
            throw WireError(.badZlib, "the data is not a valid zlib stream (\(error))")
        }
        guard output.readableBytes <= size else {
            throw WireError(.tooLarge, "the change set inflates past its declared size of \(size) bytes")
        }
        guard input.readableBytes == 0 else {
            throw WireError(.badZlib, "\(input.readableBytes) bytes follow the end of the zlib stream")
        }
        // inflate() may stop with all input used but the stream unfinished (a cut trailer). A finished
        // stream leaves one more byte unread; an unfinished one takes it as data or fails on it.
        var probe = ByteBuffer(bytes: [0])
        var spare = ByteBufferAllocator().buffer(capacity: 64)
        do { try decompressor.streamInflate(from: &probe, to: &spare) } catch {
            throw WireError(.badZlib, "the zlib stream ends early")
        }
        guard probe.readableBytes == 1, spare.readableBytes == 0 else {
            throw WireError(.badZlib, "the zlib stream ends early")
        }
        guard output.readableBytes == size else {
            throw WireError(.badBatch, "the change set inflates to \(output.readableBytes) bytes, not the declared \(size)")
        }
        return output
    }
}
