import Foundation
import Testing
@testable import TicketModel

/// The hand-written text paths of the codec against Foundation and the standard library's own.
@Suite struct TextCodecTests {
    @Test func aUUIDsLowercaseTextIsFoundationsTextLowercased() {
        var ids = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                   UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)),
                   UUID(uuid: (0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe))]
        ids += (0..<2_000).map { _ in UUID() }
        for id in ids {
            #expect(id.lowercaseText == id.uuidString.lowercased())
        }
    }

    /// The escalation engine orders records of one moment by id as bytes; it used to by `uuidString`.
    @Test func idsSortAsBytesAsTheirTextsSort() {
        // Ids that differ in one byte, high and low digits, letters and numbers: each pair both ways.
        var ids = (0..<16).flatMap { index in [0x00, 0x09, 0x0a, 0x90, 0xa0, 0xff].map { byte -> UUID in
            var bytes = [UInt8](repeating: 0x5a, count: 16)
            bytes[index] = UInt8(byte)
            return bytes.withUnsafeBytes { UUID(uuid: $0.load(as: uuid_t.self)) }
        } }
        ids += (0..<500).map { _ in UUID() }
        for a in ids.prefix(120) {
            for b in ids { #expect(a.textPrecedes(b) == (a.uuidString < b.uuidString), "\(a) \(b)") }
        }
        #expect(ids.sorted { $0.textPrecedes($1) } == ids.sorted { $0.uuidString < $1.uuidString })
    }

    /// Every string of the codec is read as UTF-8 that must come back byte for byte; these are the
    /// ways bytes fail to be UTF-8, and valid text in each length of sequence.
    @Test(arguments: [
        ([0xff], false), ([0x80], false), ([0xc0, 0x80], false), ([0xe0, 0x80, 0x80], false),
        ([0xed, 0xa0, 0x80], false), ([0xf0, 0x90, 0x80], false), ([0xf4, 0x90, 0x80, 0x80], false),
        ([0x61, 0xc3], false), ([0xef, 0xbf, 0xbd, 0xff], false), ([0x00], true), ([0x61, 0x62], true),
        ([0xc3, 0xa9], true), ([0xe2, 0x82, 0xac], true), ([0xef, 0xbf, 0xbd], true), ([0xf0, 0x9f, 0x98, 0x80], true),
    ] as [([UInt8], Bool)])
    func aStringIsReadOnlyWhenItsBytesAreUTF8(bytes: [UInt8], valid: Bool) throws {
        var writer = ByteWriter()
        writer.uvarint(UInt64(bytes.count))
        var reader = ByteReader(writer.bytes + bytes)
        let read = try? reader.string(max: 64)
        #expect((read != nil) == valid)
        #expect((read != nil) == (String(validating: bytes, as: UTF8.self) != nil))
        if let read { #expect(Array(read.utf8) == bytes) }
    }

    @Test func aDotIsWrittenAsItsDescription() throws {
        let dots = [Dot(origin: try SiteID("a"), seq: 0, index: 0), Dot(origin: try SiteID("east"), seq: 1, index: 7),
                    Dot(origin: try SiteID("site-with-a-long-name-0123456789"), seq: .max, index: .max)]
        #expect(dots.map(\.description) == ["a:0:0", "east:1:7", "site-with-a-long-name-0123456789:18446744073709551615:4294967295"])
        for dot in dots {
            var text: [UInt8] = []
            dot.appendText(to: &text)
            #expect(text == Array(dot.description.utf8))
            #expect(dot.textCount == dot.description.utf8.count)
            var fast = ByteWriter(), plain = ByteWriter()
            fast.dotText(dot)
            plain.string(dot.description)
            #expect(fast.bytes == plain.bytes)
        }
    }

    /// A conflict's id is the first 12 bytes of SHA-256 over `first|second` (figures from Python's hashlib).
    @Test func aConflictsIDIsTheHashOfItsTwoChangeIDs() throws {
        let east = Dot(origin: try SiteID("east"), seq: 1, index: 0), west = Dot(origin: try SiteID("west"), seq: 2, index: 3)
        #expect(Conflict.makeID(west, east) == "f4ae82cba22815a9c6668bd3")
        #expect(Conflict.makeID(east, west) == "f4ae82cba22815a9c6668bd3")
        let long = Dot(origin: try SiteID("site-with-a-long-name-0123456789"), seq: .max, index: .max)
        #expect(Conflict.makeID(Dot(origin: try SiteID("zz"), seq: 1, index: 0), long) == "1c3bd1fdb13ff34b53e0ae87")
    }
}
