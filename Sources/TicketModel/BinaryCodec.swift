import Foundation

/// Why bytes are not a valid canonical encoding.
public typealias CodecError = CodedError<CodecErrorCode>

/// The codes of ``CodecError``.
public enum CodecErrorCode: String, Sendable {
    case truncated, trailingBytes, nonCanonical, badVersion, badTag, tooLarge, invalidValue, unsorted
}

/// Appends the primitives of the canonical encoding (see `Protocol/PROTOCOL.md`, section 1).
public struct ByteWriter {
    public var bytes: [UInt8] = []
    public init() {}

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    /// Unsigned LEB128, shortest form.
    public mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zig-zag signed integer as uvarint.
    public mutating func svarint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    public mutating func string(_ s: String) {
        uvarint(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    public mutating func uuid(_ id: UUID) {
        withUnsafeBytes(of: id.uuid) { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
}

/// Reads the canonical encoding strictly: minimal varints, bounded lengths, valid UTF-8.
public struct ByteReader {
    public let bytes: [UInt8]
    public var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }
    public var remaining: Int { bytes.count - offset }

    public mutating func u8() throws(CodecError) -> UInt8 {
        guard offset < bytes.count else { throw CodecError(.truncated, "input ends at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func uvarint() throws(CodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            let b = try u8()
            if shift == 63 && b > 1 { throw CodecError(.nonCanonical, "varint at byte \(start) overflows 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 {
                if b == 0 && offset - start > 1 { throw CodecError(.nonCanonical, "varint at byte \(start) is not in shortest form") }
                return result
            }
            shift += 7
            if shift > 63 { throw CodecError(.nonCanonical, "varint at byte \(start) is longer than 10 bytes") }
        }
    }

    /// A uvarint that must fit a signed 64-bit integer (sequence numbers, counters, levels, epochs),
    /// so stores that keep it in an SQLite INTEGER never overflow.
    public mutating func count63() throws(CodecError) -> UInt64 {
        let start = offset
        let v = try uvarint()
        guard v <= UInt64(Int64.max) else { throw CodecError(.invalidValue, "number at byte \(start) exceeds 2^63-1") }
        return v
    }

    public mutating func svarint() throws(CodecError) -> Int64 {
        let u = try uvarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    public mutating func u64() throws(CodecError) -> UInt64 {
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(try u8()) }
        return v
    }

    public mutating func take(_ n: Int) throws(CodecError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw CodecError(.truncated, "needs \(n) bytes at byte \(offset), \(remaining) left") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func string(max: Int) throws(CodecError) -> String {
        let start = offset
        let length = try uvarint()
        guard length <= UInt64(max) else { throw CodecError(.tooLarge, "string at byte \(start) is \(length) bytes; the limit is \(max)") }
        let slice = try take(Int(length))
        // Decoding repairs what is not UTF-8, so the bytes come back unchanged exactly when they
        // were valid (the generic `String(validating:as:)` costs a type lookup on every call).
        let s = slice.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        guard s.utf8.elementsEqual(slice) else {
            throw CodecError(.invalidValue, "string at byte \(start) is not valid UTF-8")
        }
        return s
    }

    /// A name (custom field, set element): like ``string(max:)``, and it must be in Unicode NFC, so that
    /// byte equality and Swift's canonical-equivalence equality agree on every replica.
    public mutating func name(max: Int) throws(CodecError) -> String {
        let start = offset
        let s = try string(max: max)
        guard s.isNFC else { throw CodecError(.invalidValue, "name at byte \(start) is not in Unicode NFC") }
        return s
    }

    public mutating func uuid() throws(CodecError) -> UUID {
        guard remaining >= 16 else { throw CodecError(.truncated, "a UUID at byte \(offset) needs 16 bytes; \(remaining) remain") }
        let o = offset, b = bytes
        offset += 16
        return UUID(uuid: (b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7], b[o + 8], b[o + 9], b[o + 10],
                           b[o + 11], b[o + 12], b[o + 13], b[o + 14], b[o + 15]))
    }

    public mutating func siteID() throws(CodecError) -> SiteID {
        let start = offset
        let raw = try string(max: 32)
        do { return try SiteID(raw) } catch { throw CodecError(.invalidValue, "site id at byte \(start): \(error.detail)") }
    }

    public func expectEnd() throws(CodecError) {
        guard isAtEnd else { throw CodecError(.trailingBytes, "\(remaining) bytes after the end at byte \(offset)") }
    }
}

extension String {
    /// Whether the text is already in Unicode Normalization Form C.
    /// ASCII text is NFC as it stands; only other text is normalized to compare.
    public var isNFC: Bool { utf8.allSatisfy { $0 < 0x80 } || precomposedStringWithCanonicalMapping.utf8.elementsEqual(utf8) }
}
