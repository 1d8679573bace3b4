import Foundation
import SyncWire
import Testing
import TicketModel

/// Replays `Protocol/vectors/regressions/`: inputs the fuzz targets of `Fuzz/` found to crash, hang
/// or exhaust a decoder, and a few they found that reach deep into one. Each must now give the
/// outcome its entry names, a decoded value (`ok`) or an error code, and none may trap.
@Suite struct FuzzRegressionTests {
    struct Vector: Decodable, Sendable, CustomTestStringConvertible {
        enum Target: String, Decodable, Sendable { case frame, changeSet, block }

        var name: String
        /// Which decoder the file goes to.
        var decoder: Target
        var file: String
        /// For `changeSet`: the `count` and `size` the decoder is given with the file's text.
        var count: Int?
        var size: Int?
        /// `ok`, or the code of the error the decoder throws (`WireError.Code` or `CodecError.Code`).
        var expect: String

        var testDescription: String { name }
    }

    struct Index: Decodable {
        var vectors: [Vector]
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocol/vectors/regressions")

    static func vectors() throws -> [Vector] {
        try JSONDecoder().decode(Index.self, from: Data(contentsOf: folder.appendingPathComponent("index.json"))).vectors
    }

    /// What the decoder makes of `bytes`: `ok` or the error's code.
    static func outcome(of vector: Vector, _ bytes: [UInt8]) -> String {
        switch vector.decoder {
        case .frame:
            do { _ = try Frame.decode(line: bytes) } catch { return error.code.rawValue }
        case .changeSet:
            do {
                _ = try ChangeSet.decode(base64: String(decoding: bytes, as: UTF8.self), count: vector.count ?? 0, size: vector.size ?? 0)
            } catch {
                return error.code.rawValue
            }
        case .block:
            do { _ = try Block(decoding: bytes) } catch { return error.code.rawValue }
        }
        return "ok"
    }

    @Test(arguments: try vectors())
    func decodesAsRecorded(_ vector: Vector) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.folder.appendingPathComponent(vector.file)))
        #expect(Self.outcome(of: vector, bytes) == vector.expect)
    }

    /// A file that the index does not list would never be replayed.
    @Test func everyFileIsListed() throws {
        let listed = Set(try Self.vectors().map(\.file))
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path)
            .filter { $0 != "index.json" && $0 != "README.md" }
        #expect(Set(files) == listed)
        #expect(listed.count == (try Self.vectors().count), "two entries name one file")
    }
}
