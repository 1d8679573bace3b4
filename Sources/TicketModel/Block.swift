import Crypto
import struct Foundation.Data
import struct Foundation.UUID

/// Bounds of one block, checked when it is made and when it is decoded.
public enum BlockLimits {
    /// Changes in one block; a bulk write becomes consecutive blocks.
    public static let maxChanges = 256
    /// Bytes of one encoded block, signature included.
    public static let maxBlockBytes = 1 << 20
    /// Bytes of an event body.
    public static let maxBodyBytes = 65_536
    /// Bytes of a field's text value.
    public static let maxTextBytes = 4_096
    /// Bytes of a set element, an actor, a custom field name.
    public static let maxNameBytes = 256
    /// Sites in a `deps` vector.
    public static let maxDeps = 4_096
    /// Observed dots in one remove.
    public static let maxObservedDots = 4_096
    /// Length of an Ed25519 signature.
    public static let signatureBytes = 64
    /// Version of the block encoding.
    public static let encodingVersion: UInt8 = 1
}

/// The signing key of a site (Ed25519).
public struct SiteKey: Sendable {
    /// The 32-byte private key; kept as bytes so the key is `Sendable`.
    public let rawRepresentation: [UInt8]
    /// The 32-byte public key.
    public let publicKey: [UInt8]
    /// The key, expanded once: making it from the raw bytes derives the public key, which took
    /// about half of each signature's time when every block did it again. swift-crypto does not
    /// mark it `Sendable`; it is an immutable value whose storage is only read after `init` (signing
    /// reads the key bytes), so sharing it across threads is safe.
    nonisolated(unsafe) private let key: Curve25519.Signing.PrivateKey

    /// Wraps a 32-byte Ed25519 private key.
    public init(rawRepresentation: [UInt8]) throws {
        key = try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
        self.rawRepresentation = rawRepresentation
        publicKey = Array(key.publicKey.rawRepresentation)
    }

    /// A new random key.
    public static func generate() -> SiteKey {
        // A fresh key's raw bytes always make a valid key.
        try! SiteKey(rawRepresentation: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    /// An Ed25519 signature of `message` by this key.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try key.signature(for: message))
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` under `publicKey`.
    public static func isValid(signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// A site key prints its public key only: the private key never reaches a log, a `dump`, or an error.
extension SiteKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SiteKey(public key \(publicKey.hexString), private key redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey.hexString, "privateKey": "redacted"], displayStyle: .struct) }
}

/// The changes of one local write, from one origin, numbered by that origin's gap-free `seq`.
///
/// A block carries one HLC stamp, the author's version vector at write time (``deps``) and the
/// origin's Ed25519 signature over its canonical body. One canonical encoding (``bytes``) is what is
/// hashed, signed, stored, exported and sent; relays forward it byte for byte. ``hash`` is the SHA-256
/// of the body: the same `(origin, seq)` under two hashes is equivocation.
public struct Block: Hashable, Sendable {
    public let origin: SiteID
    public let seq: UInt64
    public let hlc: HLC
    public let deps: VersionVector
    public let changes: [Change]
    public let signature: [UInt8]
    /// The canonical body: everything but the signature.
    public let body: [UInt8]
    /// SHA-256 of ``body``.
    public let hash: [UInt8]
    /// Where each change starts in ``body``: a store keeps an entity's offsets to decode only its
    /// changes later (``StoredBlock``).
    public let changeOffsets: [UInt32]

    /// The whole canonical encoding: body then signature.
    public var bytes: [UInt8] { body + signature }

    /// The stamp of every change in the block.
    public var stamp: Stamp { Stamp(hlc: hlc, site: origin) }

    /// Encodes, checks and signs a new block.
    ///
    /// - Throws: ``CodecError`` when the changes break a rule of the encoding (too many, a value of the
    ///   wrong kind, two sets of one field, `deps` that do not name `seq - 1` for the origin).
    public static func make(origin: SiteID, seq: UInt64, hlc: HLC, deps: VersionVector, changes: [Change],
                            key: SiteKey) throws(CodecError) -> Block {
        var writer = ByteWriter()
        BlockCodec.encodeBody(origin: origin, seq: seq, hlc: hlc, deps: deps, changes: changes, into: &writer)
        let body = writer.bytes
        guard body.count + BlockLimits.signatureBytes <= BlockLimits.maxBlockBytes else {
            throw CodecError(.tooLarge, "block would be \(body.count + BlockLimits.signatureBytes) bytes; the limit is \(BlockLimits.maxBlockBytes)")
        }
        // Decoding what we just wrote runs every structural check once, in one place.
        let checked = try Block.decodeBody(body)
        let signature: [UInt8]
        do { signature = try key.sign(body) } catch {
            throw CodecError(.invalidValue, "signing failed: \(error)")
        }
        return Block(checked, signature: signature, body: body)
    }

    init(_ parsed: Parsed, signature: [UInt8], body: [UInt8]) {
        self.init(origin: parsed.origin, seq: parsed.seq, hlc: parsed.hlc, deps: parsed.deps, changes: parsed.changes,
                  offsets: parsed.offsets, signature: signature, body: body)
    }

    init(origin: SiteID, seq: UInt64, hlc: HLC, deps: VersionVector, changes: [Change], offsets: [UInt32], signature: [UInt8], body: [UInt8]) {
        self.origin = origin
        self.seq = seq
        self.hlc = hlc
        self.deps = deps
        self.changes = changes
        self.changeOffsets = offsets
        self.signature = signature
        self.body = body
        self.hash = Array(SHA256.hash(data: body))
    }

    /// Decodes a block from its canonical encoding, strictly.
    /// - Throws: ``CodecError`` naming the first byte that is wrong. Signatures are not checked
    ///   here (see ``isSignatureValid(publicKey:)``).
    public init(decoding bytes: some Collection<UInt8>) throws(CodecError) {
        let all = Array(bytes)
        guard all.count <= BlockLimits.maxBlockBytes else {
            throw CodecError(.tooLarge, "block is \(all.count) bytes; the limit is \(BlockLimits.maxBlockBytes)")
        }
        guard all.count > BlockLimits.signatureBytes else { throw CodecError(.truncated, "block of \(all.count) bytes has no room for a signature") }
        let body = Array(all.dropLast(BlockLimits.signatureBytes))
        self.init(try Block.decodeBody(body), signature: Array(all.suffix(BlockLimits.signatureBytes)), body: body)
    }

    /// Whether ``signature`` is the Ed25519 signature of ``body`` by the key `publicKey`.
    public func isSignatureValid(publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: body)
    }

    /// Whether this block's author had seen the change `dot` (its own block counts as seen).
    public func covers(_ dot: Dot) -> Bool {
        dot.origin == origin ? dot.seq <= seq : deps[dot.origin] >= dot.seq
    }

    /// The id of the change at `index`.
    public func dot(_ index: Int) -> Dot { Dot(origin: origin, seq: seq, index: UInt32(index)) }

    /// Whether a replica with `vector` can apply this block now: its predecessor and everything its
    /// author had seen are applied.
    ///
    /// `revoked` names removed sites with the last seq of theirs that stays valid: a dependency on a
    /// later block of such a site counts as met at that seq, since every replica refuses (or takes
    /// back) those blocks, so an honest site's block that had seen them still applies everywhere.
    public func isApplicable(after vector: VersionVector, revoked: [SiteID: UInt64] = [:]) -> Bool {
        guard vector[origin] == seq - 1 else { return false }
        if revoked.isEmpty { return vector.dominates(deps) }
        return deps.entries.allSatisfy { site, needed in vector[site] >= min(needed, revoked[site] ?? needed) }
    }

    struct Parsed {
        var origin: SiteID, seq: UInt64, hlc: HLC, deps: VersionVector, changes: [Change], offsets: [UInt32]
    }

    static func decodeBody(_ body: [UInt8]) throws(CodecError) -> Parsed {
        var reader = ByteReader(body)
        let parsed = try BlockCodec.decodeBody(&reader)
        try reader.expectEnd()
        return parsed
    }
}

public extension Block {
    /// A hex rendering of ``hash``.
    var hashHex: String { hash.hexString }
}

public extension [UInt8] {
    /// Decodes hexadecimal digits (either case); `nil` for an odd length or a non-hex character.
    init?(hex: String) {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            out.append(h << 4 | l)
        }
        self = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

public extension Sequence<UInt8> {
    /// Lowercase hexadecimal.
    var hexString: String {
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for b in self {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public extension UUID {
    /// The canonical lowercase text, `8-4-4-4-12` hexadecimal digits: the form every table, frame and
    /// export names an entity by. Formatted here, as Foundation's `uuidString` goes through `sprintf`
    /// and then needs lowercasing; stores format an id for every row they touch.
    var lowercaseText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    out[at] = hexDigits[Int(byte >> 4)]
                    out[at + 1] = hexDigits[Int(byte & 15)]
                    at += 2
                }
                return at
            }
        }
    }

    /// Whether this id sorts before `other` in the order of their texts (`uuidString` and
    /// ``lowercaseText`` sort alike: digits before letters, dashes at the same places), compared as
    /// bytes without formatting either.
    func textPrecedes(_ other: UUID) -> Bool {
        withUnsafeBytes(of: uuid) { a in withUnsafeBytes(of: other.uuid) { b in a.lexicographicallyPrecedes(b) } }
    }
}

/// Cuts a write's changes into consecutive blocks that respect every bound of a block.
public enum BlockPlanner {
    /// Splits `changes` in order: a new block starts when the current one is full (count or bytes)
    /// or already sets the same field of the same entity.
    public static func split(_ changes: [Change]) -> [[Change]] {
        var blocks: [[Change]] = []
        var fill = BlockFill()
        for change in changes {
            if let full = fill.place(change) { blocks.append(full) }
        }
        if !fill.isEmpty { blocks.append(fill.take()) }
        return blocks
    }
}

/// The block a long write is filling: says when the next change must start a new block (the
/// current one is full by count or bytes, or already sets that field of that entity).
public struct BlockFill: Sendable {
    private struct Slot: Hashable {
        var entity: EntityRef
        var field: Field
    }

    public private(set) var changes: [Change] = []
    private var bytes = 0
    private var slots = Set<Slot>()

    /// Room for the changes: a block's bytes less the signature, the header and a deps vector of up
    /// to maxDeps sites of at most 43 bytes each (176 KiB). An empty block takes any change (the
    /// codec then rules on one too large by itself).
    static let budget = BlockLimits.maxBlockBytes - BlockLimits.signatureBytes - BlockLimits.maxDeps * 43 - 64

    public init() {}

    public var isEmpty: Bool { changes.isEmpty }

    /// Adds `change` to this block, or, if it does not fit (full by count or bytes, or the block
    /// already sets that field of that entity), starts a new block with it.
    /// - Returns: the changes of the block `change` did not fit in, now complete; `nil` if it fit.
    public mutating func place(_ change: Change) -> [Change]? {
        let size = Self.size(change)
        var slot: Slot?
        if case .set(let field, _) = change.operation { slot = Slot(entity: change.entity, field: field) }
        var full: [Change]?
        if !changes.isEmpty, changes.count == BlockLimits.maxChanges || bytes + size > Self.budget || slot.map(slots.contains) == true {
            full = changes
            self = BlockFill()
        }
        changes.append(change)
        bytes += size
        if let slot { slots.insert(slot) }
        return full
    }

    /// The changes so far; the block starts empty again.
    public mutating func take() -> [Change] {
        defer { self = BlockFill() }
        return changes
    }

    private static func size(_ change: Change) -> Int {
        var w = ByteWriter()
        BlockCodec.encode(change, into: &w)
        return w.bytes.count
    }
}

/// Version 7 UUIDs: 48 bits of Unix milliseconds, then random bits, so ids sort by creation time.
public enum UUIDv7 {
    /// Makes a UUIDv7 from `millis` and 10 random bytes (the caller draws them: this module does no I/O).
    public static func make(millis: UInt64, random: [UInt8]) -> UUID {
        precondition(random.count >= 10, "UUIDv7 needs 10 random bytes")
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: millis >> UInt64(40 - 8 * i)) }
        b[6] = 0x70 | (random[0] & 0x0f)
        b[7] = random[1]
        b[8] = 0x80 | (random[2] & 0x3f)
        for i in 9..<16 { b[i] = random[i - 6] }
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// Name-based version 8 UUIDs (RFC 9562, section 5.8): the first 16 bytes of the SHA-256 of a name,
/// with the version and variant bits set. The same name always gives the same id, so a writer that
/// derives its ids from what it reads (`ticket import`: the site, the file's digest and the row's
/// line) can tell on a second run which of them it already wrote. Nothing reads a time from an id
/// (lists order tickets by their created stamp, ids only break ties), so these sit beside UUIDv7s.
public enum NameUUID {
    public static func make(_ name: [UInt8]) -> UUID {
        var b = Array(SHA256.hash(data: name).prefix(16))
        b[6] = 0x80 | (b[6] & 0x0f)
        b[8] = 0x80 | (b[8] & 0x3f)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// A stored block read for some of its changes only: its header is decoded once, each change when
/// asked for, at an offset from ``Block/changeOffsets``. Nothing is verified beyond the codec's
/// rules: this reads a replica's own log.
public struct StoredBlock: Sendable {
    public let origin: SiteID
    public let seq: UInt64
    public let hlc: HLC
    public let deps: VersionVector
    let bytes: [UInt8]
    let changesStart: Int

    public init(bytes: [UInt8]) throws(CodecError) {
        var reader = ByteReader(bytes)
        let header = try BlockCodec.decodeHeader(&reader)
        _ = try reader.uvarint()
        (origin, seq, hlc, deps) = (header.origin, header.seq, header.hlc, header.deps)
        self.bytes = bytes
        changesStart = reader.offset
    }

    /// The bytes this block takes in memory.
    public var size: Int { bytes.count }

    /// The change that starts at `offset`.
    public func change(at offset: Int) throws(CodecError) -> Change {
        guard offset >= changesStart, offset < bytes.count - BlockLimits.signatureBytes else {
            throw CodecError(.invalidValue, "change offset \(offset) lies outside the block's changes")
        }
        var reader = ByteReader(bytes)
        reader.offset = offset
        return try BlockCodec.decodeChange(&reader)
    }
}
