import Foundation
import Testing
@testable import TicketModel

/// Checks the Swift block codec against `Protocol/vectors/blocks.json`, the test vectors written by
/// `Protocol/tools/make_vectors.py`, an independent implementation of `Protocol/PROTOCOL.md` section 1.
@Suite struct ProtocolVectorTests {
    struct ValidVector: Decodable {
        var name: String
        var description: String
        var hex: String
        var publicKey: String
        var signatureValid: Bool
        var hash: String
        var origin: String
        var seq: UInt64
        var hlc: UInt64
        var deps: [String: UInt64]
        var changeCount: Int
    }

    struct InvalidVector: Decodable {
        var name: String
        var description: String
        var hex: String
        var error: String
    }

    struct Vectors: Decodable {
        var valid: [ValidVector]
        var invalid: [InvalidVector]
    }

    /// The repository root: this file is `Tests/TicketModelTests/ProtocolVectorTests.swift`.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func load() throws -> Vectors {
        let url = root.appendingPathComponent("Protocol/vectors/blocks.json")
        return try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }

    static func bytes(hex: String) throws -> [UInt8] {
        let digits = Array(hex.utf8)
        guard digits.count.isMultiple(of: 2) else { throw VectorFileError(detail: "odd hex length") }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw VectorFileError(detail: "bad hex digit \(c)")
            }
        }
        return try stride(from: 0, to: digits.count, by: 2).map { try nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
    }

    struct VectorFileError: Error { var detail: String }

    static func vector(named name: String) throws -> ValidVector {
        guard let v = try load().valid.first(where: { $0.name == name }) else {
            throw VectorFileError(detail: "no valid vector named \(name)")
        }
        return v
    }

    // MARK: - Decoding the vectors

    @Test func vectorFileCoversTheRequiredCases() throws {
        let vectors = try Self.load()
        #expect(vectors.valid.count >= 6)
        #expect(vectors.valid.contains { !$0.signatureValid })
        let codes = Set(vectors.invalid.map(\.error))
        for code in ["truncated", "trailingBytes", "nonCanonical", "badVersion", "badTag", "tooLarge", "invalidValue", "unsorted"] {
            #expect(codes.contains(code), "no invalid vector expects \(code)")
            #expect(CodecError.Code(rawValue: code) != nil)
        }
    }

    @Test func validVectorsDecodeAndRoundTrip() throws {
        for v in try Self.load().valid {
            let comment = Comment(rawValue: v.name)
            let data = try Self.bytes(hex: v.hex)
            let block: Block
            do { block = try Block(decoding: data) } catch {
                Issue.record("\(v.name): \(error)")
                continue
            }
            #expect(block.origin.rawValue == v.origin, comment)
            #expect(block.seq == v.seq, comment)
            #expect(block.hlc.rawValue == v.hlc, comment)
            let expectedDeps = try VersionVector(Dictionary(uniqueKeysWithValues: v.deps.map { (try SiteID($0.key), $0.value) }))
            #expect(block.deps == expectedDeps, comment)
            #expect(block.changes.count == v.changeCount, comment)
            #expect(block.hashHex == v.hash, comment)
            #expect(block.bytes.hexString == v.hex, comment)
            #expect(block.signature.count == BlockLimits.signatureBytes, comment)
            #expect(block.isSignatureValid(publicKey: try Self.bytes(hex: v.publicKey)) == v.signatureValid, comment)
        }
    }

    @Test func validVectorsReencodeFromTheirChanges() throws {
        // Encoding the decoded content again gives the same body: the Swift encoder agrees with the
        // Python one on every valid vector, not only the two rebuilt by hand below.
        for v in try Self.load().valid {
            let block = try Block(decoding: try Self.bytes(hex: v.hex))
            var writer = ByteWriter()
            BlockCodec.encodeBody(origin: block.origin, seq: block.seq, hlc: block.hlc, deps: block.deps,
                                  changes: block.changes, into: &writer)
            #expect(writer.bytes == block.body, Comment(rawValue: v.name))
        }
    }

    @Test func invalidVectorsAreRejectedWithTheirCode() throws {
        for v in try Self.load().invalid {
            let data = try Self.bytes(hex: v.hex)
            do {
                let block = try Block(decoding: data)
                Issue.record("\(v.name) decoded as \(block.origin) seq \(block.seq); expected \(v.error)")
            } catch {
                #expect(error.code.rawValue == v.error, "\(v.name): \(error)")
            }
        }
    }

    // MARK: - Encoding the same content in Swift

    static let fixedKey: [UInt8] = Array(0..<32)

    @Test func makeReproducesTheTicketVector() throws {
        let v = try Self.vector(named: "ticket-create-and-sets")
        let t1 = try #require(UUID(uuidString: "3f2a8c10-5b7e-4c1d-9a6f-0e1d2c3b4a59"))
        let t2 = try #require(UUID(uuidString: "6c0ffee0-0000-4000-8000-000000000002"))
        let north = try SiteID("north")
        let ticket = EntityRef.ticket(t1)
        let changes: [Change] = [
            Change(ticket, .create(number: 1)),
            Change(ticket, .set(.subject, .text("Printer offline on floor 3"))),
            Change(ticket, .set(.status, .text("new"))),
            Change(ticket, .set(.priority, .text("high"))),
            Change(ticket, .set(.assignee, .null)),
            Change(ticket, .set(.group, .text("it-support"))),
            Change(ticket, .set(.category, .text("hardware"))),
            Change(ticket, .set(.customer, .text("ACME Corp"))),
            Change(ticket, .set(.channel, .text("email"))),
            Change(ticket, .set(.pendingUntil, .integer(-1_234_567_890_123))),
            Change(ticket, .set(.escalation, .level(cycle: 1, level: 2))),
            Change(ticket, .set(.owner, .owner(epoch: 3, site: north))),
            Change(ticket, .set(.mergedInto, .ticket(t2))),
            Change(ticket, .set(.deleted, .flag(false))),
            Change(ticket, .set(.custom("r\u{E9}gion"), .text("\u{CE}le-de-France"))),
            Change(ticket, .set(.custom("sla-tier"), .null)),
        ]
        let key = try SiteKey(rawRepresentation: Self.fixedKey)
        let block = try Block.make(origin: north, seq: 1, hlc: HLC(millis: 1_700_000_000_000, counter: 0),
                                   deps: VersionVector(), changes: changes, key: key)
        #expect(key.publicKey.hexString == v.publicKey)
        #expect(block.bytes.hexString == v.hex)
        #expect(block.hashHex == v.hash)
        #expect(try Block(decoding: block.bytes) == block)
    }

    @Test func makeReproducesTheTagVector() throws {
        let v = try Self.vector(named: "tags-add-remove")
        let t1 = try #require(UUID(uuidString: "3f2a8c10-5b7e-4c1d-9a6f-0e1d2c3b4a59"))
        let north = try SiteID("north"), south = try SiteID("south")
        let ticket = EntityRef.ticket(t1)
        let changes: [Change] = [
            Change(ticket, .addElement(.tags, "printer")),
            Change(ticket, .addElement(.watchers, "alice@north")),
            Change(ticket, .addElement(.links, "https://kb.example/printers#floor-3")),
            // Out of order and repeated on purpose: the encoder sorts and deduplicates.
            Change(ticket, .removeElement(.tags, "urgent", observed: [
                Dot(origin: south, seq: 2, index: 0), Dot(origin: north, seq: 2, index: 4),
                Dot(origin: north, seq: 1, index: 3), Dot(origin: north, seq: 2, index: 4),
            ])),
            Change(ticket, .removeElement(.watchers, "bob@south", observed: [])),
            Change(ticket, .addElement(.tags, "urgent")),
        ]
        let block = try Block.make(origin: south, seq: 3, hlc: HLC(millis: 1_700_000_060_000, counter: 7),
                                   deps: VersionVector([north: 2, south: 2]), changes: changes,
                                   key: try SiteKey(rawRepresentation: Self.fixedKey))
        #expect(block.bytes.hexString == v.hex)
        #expect(block.hashHex == v.hash)
    }
}
