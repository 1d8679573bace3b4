import Foundation
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// `export --out PATH` replaces only an earlier export: a folder, a store's files, any other file, a
/// pipe or a link at PATH is refused and left exactly as it was.
@Suite struct ExportDestinationTests {
    let folder = NSTemporaryDirectory() + "tl-export-out-\(UUID().uuidString)"

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    func store() throws -> TicketDatabase {
        let north = try memoryStore("north")
        try north.createTicket(TicketDraft(subject: "Printer offline"))
        return north
    }

    func refusal(_ path: String) throws -> String {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = #expect(throws: StoreError.self) { try store().exportArchive(to: path) }
        return error?.detail ?? ""
    }

    @Test func aFolderIsRefusedAndKeepsItsFiles() throws {
        let out = folder + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: out + "/keep.txt"))
        let store = try store()
        let error = #expect(throws: StoreError.self) { try store.exportArchive(to: out) }
        #expect(error?.detail.contains("is a folder") == true)
        #expect(try String(contentsOfFile: out + "/keep.txt", encoding: .utf8) == "precious")
        try? FileManager.default.removeItem(atPath: folder)
    }

    @Test func aFileThatIsNotAnExportIsLeftAlone() throws {
        let file = folder + "/tierline.sqlite"
        let bytes = Data("SQLite format 3\u{0}".utf8 + [UInt8](repeating: 7, count: 4096))
        try bytes.write(to: URL(fileURLWithPath: file))
        let store = try store()
        let error = #expect(throws: StoreError.self) { try store.exportArchive(to: file) }
        #expect(error?.detail.contains("not an export file") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == bytes)
        #expect(try leftovers(beside: file).isEmpty)
        try? FileManager.default.removeItem(atPath: folder)
    }

    @Test func aPipeAndALinkAreRefused() throws {
        let pipe = folder + "/pipe"
        #expect(mkfifo(pipe, 0o600) == 0)
        #expect(try refusal(pipe).contains("not a regular file"))
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let target = folder + "/target.txt"
        try Data("kept".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: target)
        #expect(try refusal(folder + "/link").contains("not a regular file"))
    }

    @Test func anEarlierExportIsReplacedWhole() throws {
        let file = folder + "/fleet.tlx"
        let store = try store()
        _ = try store.exportArchive(to: file)
        try store.createTicket(TicketDraft(subject: "VPN drops"))
        #expect(try store.exportArchive(to: file).blocks == 2)
        #expect(try BlockArchive.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: file)))).blocks.count == 2)
        // An empty file (made by `touch`, say) may be written over too.
        let empty = folder + "/empty.tlx"
        FileManager.default.createFile(atPath: empty, contents: nil)
        #expect(try store.exportArchive(to: empty).blocks == 2)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The file an export writes before its rename has a name of its own: a file that happens to be
    /// called `FILE.partial` is not the export's to remove. The export is readable by its owner only.
    @Test func aFileNamedLikeTheExportsPartialIsLeftAlone() throws {
        let file = folder + "/fleet.tlx"
        let bystander = Data("someone's notes".utf8)
        try bystander.write(to: URL(fileURLWithPath: file + ".partial"))
        let store = try store()
        #expect(try store.exportArchive(to: file).blocks == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file + ".partial")) == bystander)
        #expect(try leftovers(beside: file) == [file + ".partial"])
        #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// The files next to `file` whose names start with its name and `.partial`.
func leftovers(beside file: String) throws -> [String] {
    let folder = (file as NSString).deletingLastPathComponent, name = (file as NSString).lastPathComponent
    return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(name + ".partial") }.map { folder + "/" + $0 }.sorted()
}
