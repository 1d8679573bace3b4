import Foundation
import GRDB
import TicketModel

/// How an import is sized: each transaction applies at most ``blocks`` blocks or about ``bytes``
/// bytes of them, whichever comes first.
public struct ImportBatching: Sendable, Equatable {
    public var blocks: Int
    public var bytes: Int
    public init(blocks: Int = 500, bytes: Int = 2 << 20) {
        self.blocks = max(1, blocks)
        self.bytes = max(1, bytes)
    }
}

extension TicketDatabase {
    /// Writes an export file of the blocks a peer with `vector` lacks (all blocks for an empty vector),
    /// streaming: blocks are read from one snapshot of the log in stamp order and compressed as they
    /// go, so memory stays bounded whatever the store's size.
    ///
    /// The file is written as a new ``PartialFile`` (owner-only; no file already there is touched)
    /// and renamed to `path` once whole, so no reader ever sees half a file. Runs on the calling
    /// thread and holds a read transaction (never the write lock).
    /// - Parameter progress: blocks written so far and the total, every few hundred blocks.
    /// - Returns: how many blocks the file holds and its size in bytes.
    public func exportArchive(to path: String, after vector: VersionVector = VersionVector(),
                              progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> (blocks: Int, bytes: Int) {
        let files = FileManager.default
        try Self.checkExportDestination(path)
        let (partial, descriptor) = try PartialFile.create(beside: path)
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            var bytes = 0
            let blocks = try exportArchive(after: vector, progress: progress) { piece in
                try handle.write(contentsOf: piece)
                bytes += piece.count
            }
            try handle.synchronize()
            try handle.close()
            // rename(2) replaces an earlier export in one step; a folder or other file was refused above.
            guard rename(partial, path) == 0 else {
                throw StoreError(.refusedWrite, "cannot rename \(partial) to \(path): \(String(cString: strerror(errno)))")
            }
            return (blocks, bytes)
        } catch {
            try? handle.close()
            try? files.removeItem(atPath: partial)
            if error is StoreError { throw error }
            throw StoreError(.refusedWrite, "writing \(path) failed (\(error)); check the folder is writable and has room")
        }
    }

    enum FileKind: Equatable { case none, regular, other(mode_t) }

    /// What is at `path`, without following a symbolic link.
    static func fileKind(_ path: String) throws -> FileKind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .none }
        return info.st_mode & S_IFMT == S_IFREG ? .regular : .other(info.st_mode & S_IFMT)
    }

    /// Refuses a destination an export must not replace: a folder, anything that is not a regular
    /// file (a device, pipe, socket or symbolic link), or a file that is not an earlier export (a
    /// store's database or key, any other file). An export replaces only an export.
    static func checkExportDestination(_ path: String) throws {
        switch try fileKind(path) {
        case .none:
            return
        case .other(let kind) where kind == S_IFDIR:
            throw StoreError(.invalidInput, "\(path) is a folder; give the export a file name, such as \(path)/fleet.tlx")
        case .other:
            throw StoreError(.invalidInput, "\(path) is not a regular file (a device, pipe, socket or symbolic link); give the export a new file name")
        case .regular:
            let handle = FileHandle(forReadingAtPath: path)
            defer { try? handle?.close() }
            let isEmpty = (try? handle?.seekToEnd()) == 0
            try? handle?.seek(toOffset: 0)
            let isExport = handle.map { handle in
                (try? BlockArchive.Reader(source: { try handle.read(upToCount: BlockArchive.window).map { [UInt8]($0) } ?? [] })) != nil
            } ?? false
            guard isEmpty || isExport else {
                throw StoreError(.invalidInput, "\(path) exists and is not an export file, so it is left alone; give a new file name, or move that file away first")
            }
        }
    }

    /// An export of the blocks a peer with `vector` lacks (all blocks for an empty vector), in memory.
    public func exportArchive(after vector: VersionVector = VersionVector()) throws -> (bytes: [UInt8], blockCount: Int) {
        var out: [UInt8] = []
        let count = try exportArchive(after: vector, progress: { _, _ in }) { out += $0 }
        return (out, count)
    }

    /// Streams the export into `sink`: the count and the keys first (read in the same snapshot), then
    /// the stored bytes of each block, never decoding or holding more than one.
    func exportArchive(after vector: VersionVector, progress: (Int, Int) -> Void, sink: @escaping ([UInt8]) throws -> Void) throws -> Int {
        try writer.read { db in
            var counts: [SiteID: Int] = [:]
            for text in try String.fetchAll(db, sql: "SELECT DISTINCT origin FROM block") {
                let origin = try SiteID(text)
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block WHERE origin = ? AND seq > ?",
                                             arguments: [text, Int64(clamping: vector[origin])]) ?? 0
                if count > 0 { counts[origin] = count }
            }
            let total = counts.values.reduce(0, +)
            let archive = try BlockArchive.Writer(keys: try Self.siteKeys(db), origins: Set(counts.keys), blockCount: total, sink: sink)
            let rows = try Row.fetchCursor(db, sql: "SELECT origin, seq, bytes FROM block ORDER BY hlc, origin, seq")
            while let row = try rows.next() {
                guard UInt64(row["seq"] as Int64) > vector[try SiteID(row["origin"] as String)] else { continue }
                try archive.append([UInt8](row["bytes"] as Data))
                if archive.appended % 500 == 0 { progress(archive.appended, total) }
            }
            try archive.finish()
            progress(total, total)
            return total
        }
    }

    /// Imports an export file, streaming: the file is read twice, a window at a time. The first pass
    /// checks all of it (the zlib stream, every entry decodes as a block, nothing after the last), so
    /// a damaged file is refused before anything is stored; the second applies the blocks in
    /// transactions of at most `batching` blocks, learning the file's keys in the first.
    ///
    /// Each transaction is a whole ``apply(_:learning:verified:)``: a crash between two leaves a
    /// consistent store holding the blocks of the transactions before it, and importing the same file
    /// again applies the rest (blocks already held count as duplicates). A block that comes before its
    /// predecessor is held back and applied by the transaction that brings the predecessor.
    /// - Parameter progress: blocks checked or applied so far, the file's total, and which pass.
    public func importArchive(from path: String, batching: ImportBatching = ImportBatching(),
                              progress: (_ pass: ImportPass, _ done: Int, _ total: Int) -> Void = { _, _, _ in }) throws -> ApplyReport {
        try importArchive(batching: batching, progress: progress) {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
                throw StoreError(.invalidInput, "\(path) is a folder; give the export file (written by `tierline export --out FILE`)")
            }
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw StoreError(.notInitialized, "cannot read \(path); check the path and its permissions")
            }
            return { try handle.read(upToCount: BlockArchive.window).map { [UInt8]($0) } ?? [] }
        }
    }

    /// Imports an export file held in memory (see ``importArchive(from:batching:progress:)``).
    public func importArchive(_ file: [UInt8], batching: ImportBatching = ImportBatching()) throws -> ApplyReport {
        try importArchive(batching: batching, progress: { _, _, _ in }) {
            var rest = file[...]
            return {
                defer { rest = rest.dropFirst(BlockArchive.window) }
                return Array(rest.prefix(BlockArchive.window))
            }
        }
    }

    /// Which pass of an import a progress report is about.
    public enum ImportPass: String, Sendable { case check, apply }

    func importArchive(batching: ImportBatching, progress: (ImportPass, Int, Int) -> Void,
                       open: () throws -> (() throws -> [UInt8])) throws -> ApplyReport {
        do {
            let check = try BlockArchive.Reader(source: open())
            while try check.next() != nil {
                if check.blocksRead % 1_000 == 0 { progress(.check, check.blocksRead, check.blockCount) }
            }
        } catch let error as StoreError where error.code == .corruptFile {
            throw StoreError(.corruptFile, error.detail + "; nothing was imported")
        }
        let reader = try BlockArchive.Reader(source: open())
        var report = ApplyReport()
        var batch: [Block] = []
        var size = 0
        var applied = 0
        func flush() throws {
            let part = try apply(batch, learning: reader.keys)
            report.received += part.received
            report.applied += part.applied
            report.duplicates += part.duplicates
            report.held = part.held
            report.refused += part.refused
            applied += batch.count
            batch.removeAll(keepingCapacity: true)
            size = 0
            progress(.apply, applied, reader.blockCount)
        }
        do {
            while let block = try reader.next() {
                batch.append(block)
                size += block.bytes.count
                if batch.count >= batching.blocks || size >= batching.bytes { try flush() }
            }
        } catch let error as StoreError where error.code == .corruptFile && applied > 0 {
            // The file changed since the check: what was applied stays (whole, signed blocks).
            throw StoreError(.corruptFile, "\(error.detail) (the first \(applied) blocks were applied; they stay, and an import of a whole file applies the rest)")
        }
        // A file of no blocks still teaches its keys, as one with blocks does.
        if !batch.isEmpty || applied == 0 { try flush() }
        return report
    }
}
