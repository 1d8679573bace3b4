import CompressNIO
import NIOCore
import TicketModel

/// Blocks as a file: a zlib stream (RFC 1950) of `TLX1`, the origins' public keys and the blocks,
/// so two stores can sync with no network at all (`Protocol/PROTOCOL.md`, export files).
///
/// Both directions stream: ``Writer`` compresses a block at a time into a sink, ``Reader`` inflates
/// a window at a time from a source, so neither ever holds more than one block and a window of
/// bytes, whatever the file's size.
public enum BlockArchive {
    static let magic = Array("TLX1".utf8)
    /// zlib level 6: the default of zlib itself.
    static let configuration = ZlibConfiguration(compressionLevel: 6)
    /// Bytes inflated or deflated per step, and read from a file per read.
    public static let window = 64 << 10

    /// Encodes and compresses `blocks` with the public keys of their origins, in memory.
    public static func encode(blocks: [Block], keys: [SiteID: [UInt8]]) throws -> [UInt8] {
        var out: [UInt8] = []
        let writer = try Writer(keys: keys, origins: Set(blocks.map(\.origin)), blockCount: blocks.count) { out += $0 }
        for block in blocks { try writer.append(block.bytes) }
        try writer.finish()
        return out
    }

    /// Decompresses and decodes an archive held in memory, strictly: any damage fails the whole file.
    /// - Throws: ``StoreError`` `.corruptFile` saying what is wrong.
    public static func decode(_ file: [UInt8]) throws -> (keys: [SiteID: [UInt8]], blocks: [Block]) {
        var rest = file[...]
        let reader = try Reader {
            defer { rest = rest.dropFirst(window) }
            return Array(rest.prefix(window))
        }
        var blocks: [Block] = []
        while let block = try reader.next() { blocks.append(block) }
        return (reader.keys, blocks)
    }

    /// Writes an archive a block at a time: the header first (the keys and how many blocks follow),
    /// then each block as it is appended, compressed in ``window``-sized steps into `sink`.
    ///
    /// ```swift
    /// let writer = try BlockArchive.Writer(keys: keys, origins: origins, blockCount: 2) { handle.write(contentsOf: $0) }
    /// try writer.append(first.bytes)
    /// try writer.append(second.bytes)
    /// try writer.finish()
    /// ```
    public final class Writer {
        let compressor: ZlibCompressor
        let sink: ([UInt8]) throws -> Void
        let blockCount: Int
        var plain = ByteWriter()
        public private(set) var appended = 0

        /// - Parameters:
        ///   - keys: public keys by site; those of `origins` are written, sorted by site.
        ///   - blockCount: how many blocks will be appended (the format states it up front).
        ///   - sink: takes each piece of the compressed file, in order.
        public init(keys: [SiteID: [UInt8]], origins: Set<SiteID>, blockCount: Int, sink: @escaping ([UInt8]) throws -> Void) throws {
            compressor = try ZlibCompressor(algorithm: .zlib, configuration: BlockArchive.configuration)
            self.sink = sink
            self.blockCount = blockCount
            plain.raw(magic)
            let listed = keys.filter { origins.contains($0.key) }.sorted { $0.key < $1.key }
            plain.uvarint(UInt64(listed.count))
            for (site, key) in listed {
                plain.string(site.rawValue)
                plain.raw(key)
            }
            plain.uvarint(UInt64(blockCount))
        }

        /// Appends one block (its body and signature, as ``Block/bytes``).
        public func append(_ block: [UInt8]) throws {
            guard appended < blockCount else { throw StoreError(.invalidInput, "more blocks appended than the \(blockCount) announced") }
            plain.uvarint(UInt64(block.count))
            plain.raw(block)
            appended += 1
            if plain.bytes.count >= BlockArchive.window { try deflate(finish: false) }
        }

        /// Compresses what is left and ends the zlib stream.
        public func finish() throws {
            guard appended == blockCount else {
                throw StoreError(.invalidInput, "\(appended) blocks appended, \(blockCount) announced; the file would be damaged")
            }
            try deflate(finish: true)
        }

        private func deflate(finish: Bool) throws {
            // Never empty: zlib needs an input pointer even when finishing with nothing left.
            var input = ByteBufferAllocator().buffer(capacity: max(16, plain.bytes.count))
            input.writeBytes(plain.bytes)
            plain = ByteWriter()
            while true {
                var output = ByteBufferAllocator().buffer(capacity: BlockArchive.window)
                var ended = false
                do {
                    try compressor.deflate(from: &input, to: &output, flush: finish ? .finish : .no)
                    ended = finish
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // The output window is full; more follows.
                }
                if output.readableBytes > 0 { try sink(Array(output.readableBytesView)) }
                if finish ? ended : input.readableBytes == 0 { return }
            }
        }
    }

    /// Reads an archive a block at a time, strictly (PROTOCOL 1.11): the keys and the block count
    /// when it is made, then each block from ``next()``, which also checks, after the last one, that
    /// the zlib stream ends whole with no byte after it.
    ///
    /// It holds at most one entry (up to ``BlockLimits/maxBlockBytes``) and a window of inflated bytes
    /// (``peakBuffered`` says how many it held at most), plus one read from its source.
    public final class Reader {
        public private(set) var keys: [SiteID: [UInt8]] = [:]
        /// How many blocks the file says it holds.
        public private(set) var blockCount = 0
        /// How many blocks ``next()`` has returned.
        public private(set) var blocksRead = 0
        /// The most inflated bytes held at once, not yet handed out as blocks.
        public private(set) var peakBuffered = 0

        let source: () throws -> [UInt8]
        let decompressor: ZlibDecompressor
        var input = ByteBufferAllocator().buffer(capacity: 16)
        var plain: [UInt8] = []
        var start = 0
        var sourceEnded = false
        var streamEnded = false
        var inflated = 0

        /// - Parameter source: returns the file's next bytes, empty at its end.
        public init(source: @escaping () throws -> [UInt8]) throws {
            self.source = source
            decompressor = try ZlibDecompressor(algorithm: .zlib)
            guard try readSource() else {
                throw StoreError(.corruptFile, "the file is empty (0 bytes): it is not an export; export it again, or check you named the right file")
            }
            guard try fill(1) else { throw StoreError(.corruptFile, "the file is empty (or its zlib stream holds nothing); export it again") }
            try readHeader()
        }

        /// The next block, or `nil` after the last one (the end of the file is checked then).
        /// - Throws: ``StoreError`` `.corruptFile` saying what is wrong and where.
        public func next() throws -> Block? {
            guard blocksRead < blockCount else {
                if try fill(1) { throw damaged(CodecError(.trailingBytes, "bytes follow the last of \(blockCount) blocks")) }
                return nil
            }
            let index = blocksRead
            let length = try parse(limit: 10) { r in try r.uvarint() }
            guard length <= UInt64(BlockLimits.maxBlockBytes) else { throw damaged(CodecError(.tooLarge, "block \(index) is \(length) bytes")) }
            guard try fill(Int(length)) else { throw damaged(CodecError(.truncated, "block \(index) is cut short")) }
            let block: Block
            do { block = try Block(decoding: plain[start..<start + Int(length)]) } catch {
                throw damaged(CodecError(error.code, "block \(index): \(error.detail)"))
            }
            start += Int(length)
            blocksRead += 1
            return block
        }

        private func readHeader() throws {
            guard try fill(4), Array(plain[start..<start + 4]) == magic else {
                throw StoreError(.corruptFile, "the file is not a Tierline export (its content does not start with TLX1)")
            }
            start += 4
            keys = try parse(limit: .max) { r in
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
                return keys
            }
            let count = try parse(limit: 10) { r in try r.uvarint() }
            guard count <= UInt64(Int.max) else { throw damaged(CodecError(.tooLarge, "\(count) blocks")) }
            blockCount = Int(count)
        }

        /// Runs `body` over the next `limit` bytes held at most, inflating more while it runs out of them.
        private func parse<T>(limit: Int, _ body: (inout ByteReader) throws -> T) throws -> T {
            while true {
                let end = plain.count - start > limit ? start + limit : plain.count
                var r = ByteReader(Array(plain[start..<end]))
                let failure: CodecError
                do {
                    let value = try body(&r)
                    start += r.offset
                    return value
                } catch let error as CodecError {
                    failure = error
                }
                // Cut short where more may follow: inflate more and parse again.
                guard failure.code == .truncated, end - start < limit, try pump() else { throw damaged(failure) }
            }
        }

        /// Whether `count` bytes are held (inflating more as needed); `false` when the stream ends first.
        private func fill(_ count: Int) throws -> Bool {
            while plain.count - start < count {
                guard try pump() else { return false }
            }
            return true
        }

        /// Inflates up to a window more. Returns `false` once the stream has ended whole.
        private func pump() throws -> Bool {
            if start > 0 && start >= plain.count / 2 {
                plain.removeFirst(start)
                start = 0
            }
            while true {
                if streamEnded {
                    guard input.readableBytes == 0, try readSource() == false else {
                        throw damaged(CodecError(.trailingBytes, "bytes follow the end of its zlib stream"))
                    }
                    return false
                }
                if input.readableBytes == 0, !sourceEnded { _ = try readSource() }
                let hadInput = input.readableBytes > 0
                var output = ByteBufferAllocator().buffer(capacity: BlockArchive.window)
                var needsInput = false
                var returned = false
                do {
                    try decompressor.inflate(from: &input, to: &output)
                    returned = true
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // The window is full; more follows.
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    needsInput = true
                } catch {
                    throw StoreError(.corruptFile, "the file is not a Tierline export or is damaged: its zlib stream does not inflate (\(error)); export it again")
                }
                // zlib returns without an error at the stream's end, or when it used all its input and
                // made progress: input left over, or a return that took and gave nothing, is the end.
                if returned && (input.readableBytes > 0 || (!hadInput && output.readableBytes == 0)) { streamEnded = true }
                if output.readableBytes > 0 {
                    plain.append(contentsOf: output.readableBytesView)
                    inflated += output.readableBytes
                    peakBuffered = max(peakBuffered, plain.count - start)
                    return true
                }
                if needsInput && sourceEnded {
                    throw damaged(CodecError(.truncated, "the file ends inside its zlib stream (\(inflated) bytes inflated)"))
                }
            }
        }

        /// Reads the source's next piece into `input`; `false` at its end.
        private func readSource() throws -> Bool {
            guard !sourceEnded else { return false }
            let bytes = try source()
            guard !bytes.isEmpty else {
                sourceEnded = true
                return false
            }
            input.discardReadBytes()
            input.writeBytes(bytes)
            return true
        }

        private func damaged(_ error: CodecError) -> StoreError {
            StoreError(.corruptFile, "the export file is damaged: \(error); export it again")
        }
    }
}
