import CompressNIO
import Foundation
import NIOCore
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// Export files are written and read a block at a time, and imports apply them in bounded
/// transactions that a crash between two leaves consistent (PROTOCOL 1.11 is unchanged).
@Suite struct ArchiveStreamTests {
    /// A temporary folder, removed when the test ends.
    final class Folder {
        let path = NSTemporaryDirectory() + "tl-archive-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func file(_ name: String) -> String { path + "/" + name }
    }

    /// A store with `count` tickets, each opened in its own block, with a first message of `body` bytes.
    func source(_ count: Int, body: Int = 0) throws -> TicketDatabase {
        let north = try memoryStore("north")
        for index in 0..<count {
            try north.createTicket(TicketDraft(subject: "ticket \(index)", tags: ["t\(index % 5)"],
                                               firstMessage: body > 0 ? String(repeating: "message \(index) ", count: body / 12) : nil))
        }
        return north
    }

    @Test func anExportImportedInSmallBatchesGivesTheSameStore() throws {
        let folder = try Folder()
        let north = try source(60)
        let file = folder.file("north.tlx")
        var exported: [(Int, Int)] = []
        let written = try north.exportArchive(to: file) { exported.append(($0, $1)) }
        #expect(written.blocks == 60)
        #expect(written.bytes == (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int))
        #expect(exported.last.map { $0 == (60, 60) } == true)
        #expect(try leftovers(beside: file).isEmpty)

        let south = try memoryStore("south")
        var steps: [Int] = []
        let report = try south.importArchive(from: file, batching: ImportBatching(blocks: 7)) { pass, done, _ in
            if pass == .apply { steps.append(done) }
        }
        #expect(report.received == 60 && report.applied == 60 && report.duplicates == 0 && report.held == 0 && report.refused.isEmpty)
        #expect(try south.digest() == north.digest())
        #expect(try south.vector() == north.vector())
        // Nine transactions of at most seven blocks each.
        #expect(steps == [7, 14, 21, 28, 35, 42, 49, 56, 60])

        let again = try south.importArchive(from: file, batching: ImportBatching(blocks: 7))
        #expect(again.applied == 0 && again.duplicates == 60)
        #expect(try south.digest() == north.digest())
    }

    @Test func theStreamedFileIsTheFormatOfProtocolSection1_11() throws {
        let north = try source(3)
        let (file, count) = try north.exportArchive()
        #expect(count == 3)
        var buffer = ByteBuffer(bytes: file)
        let plain = Array(try buffer.decompress(with: .zlib(), maxSize: 1 << 24).readableBytesView)
        var expected = ByteWriter()
        expected.raw(Array("TLX1".utf8))
        expected.uvarint(1)
        expected.string("north")
        expected.raw(try north.identity().publicKey)
        let blocks = try north.blocks(after: VersionVector())
        expected.uvarint(UInt64(blocks.count))
        for block in blocks {
            expected.uvarint(UInt64(block.bytes.count))
            expected.raw(block.bytes)
        }
        #expect(plain == expected.bytes)
        #expect(try BlockArchive.decode(file).blocks.map(\.hash) == blocks.map(\.hash))
    }

    @Test func theReaderHoldsOneBlockAndAWindowHoweverLargeTheFile() throws {
        let north = try source(40, body: 30_000)
        let (file, _) = try north.exportArchive()
        var rest = file[...]
        let reader = try BlockArchive.Reader {
            defer { rest = rest.dropFirst(4_096) }
            return Array(rest.prefix(4_096))
        }
        var largest = 0, total = 0
        while let block = try reader.next() {
            largest = max(largest, block.bytes.count)
            total += block.bytes.count
        }
        #expect(reader.blocksRead == 40)
        let bound = largest + 2 * BlockArchive.window
        #expect(total > 4 * bound, "the file must be far larger than what the reader may hold for this to prove anything")
        #expect(reader.peakBuffered <= bound, "held \(reader.peakBuffered) bytes; bound \(bound)")
    }

    @Test func anImportStoppedBetweenTwoTransactionsLeavesAPrefixAndFinishesWhenRunAgain() throws {
        let folder = try Folder()
        let north = try source(30)
        let file = folder.file("north.tlx")
        _ = try north.exportArchive(to: file)
        let south = try memoryStore("south")
        var crashing = south
        let commits = Counter()
        crashing.faultHook = { point in
            guard point == "beforeCommit" else { return }
            if commits.next() == 3 { throw StoreError(.refusedWrite, "power lost") }
        }
        #expect(throws: StoreError.self) { try crashing.importArchive(from: file, batching: ImportBatching(blocks: 8)) }
        // The first two transactions stay: the blocks of north up to 16, folded.
        #expect(try south.vector()[SiteID("north")] == 16)
        #expect(try south.tickets().count == 16)
        #expect(try south.pendingCount() == 0)

        let rest = try south.importArchive(from: file, batching: ImportBatching(blocks: 8))
        #expect(rest.applied == 14 && rest.duplicates == 16)
        #expect(try south.digest() == north.digest())
    }

    @Test(arguments: ["truncated", "flipped", "trailing", "empty", "text"])
    func aDamagedFileIsRefusedWholeAndNothingIsImported(_ damage: String) throws {
        let folder = try Folder()
        let north = try source(20, body: 2_000)
        var (bytes, _) = try north.exportArchive()
        switch damage {
        case "truncated": bytes = Array(bytes.prefix(bytes.count - 9))
        case "flipped": bytes[bytes.count / 2] ^= 0xFF
        case "trailing": bytes += [0]
        case "empty": bytes = []
        default: bytes = Array("Dear help desk, this is a letter.\n".utf8)
        }
        let file = folder.file("damaged.tlx")
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        let south = try memoryStore("south")
        #expect {
            try south.importArchive(from: file, batching: ImportBatching(blocks: 2))
        } throws: { error in
            (error as? StoreError)?.code == .corruptFile
        }
        #expect(try south.vector() == VersionVector())
        #expect(try south.siteKeys().count == 1)
    }

    /// A 0-byte file and a folder are named for what they are, not as a damaged stream or a raw
    /// system error (issue 23).
    @Test func anEmptyFileOrAFolderIsRefusedForWhatItIs() throws {
        let folder = try Folder()
        let empty = folder.file("empty.tlx")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let south = try memoryStore("south")
        #expect {
            try south.importArchive(from: empty)
        } throws: { error in
            (error as? StoreError)?.detail.contains("the file is empty (0 bytes)") == true
        }
        #expect {
            try south.importArchive(from: folder.path)
        } throws: { error in
            (error as? StoreError).map { $0.code == .invalidInput && $0.detail.contains("is a folder; give the export file") } == true
        }
        #expect(try south.vector() == VersionVector())
    }
}

/// Counts calls from a `@Sendable` hook.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}
