import Foundation
import TicketModel

/// One protocol frame: a JSON object on one line (`Protocol/PROTOCOL.md` §2.2).
public enum Frame: Sendable, Equatable {
    case hello(Hello)
    case auth(signature: [UInt8])
    /// The sender's version vector and, for each origin it covers, the hash of the newest block (§2.2.3).
    case vector(VersionVector, heads: [SiteID: Head] = [:])
    case blocks(BlockBatch)
    case ack(Ack)
    /// The sender has sent everything it holds that the receiver lacks. `awaiting`, only from the
    /// coordinator to a restored site: the members it has not heard from since (§2.2.6).
    case synced(VersionVector, awaiting: [SiteID]? = nil)
    case ping(id: UInt64, time: UInt64)
    case pong(id: UInt64, time: UInt64)
    case bye(reason: String?)
    /// The coordinator-signed roster: its exact text and the signature (§2.2.10).
    case roster(document: String, signature: [UInt8])
    /// `code` is kept as sent: a newer peer may send codes this version does not know.
    case error(code: String, message: String, fatal: Bool)
    /// Evidence of two histories: the sender's own block at an (origin, seq) whose head differed (§2.2.11).
    case fork(Block)

    /// The `type` member.
    public var type: String {
        switch self {
        case .hello: "hello"
        case .auth: "auth"
        case .vector: "vector"
        case .blocks: "blocks"
        case .ack: "ack"
        case .synced: "synced"
        case .ping: "ping"
        case .pong: "pong"
        case .bye: "bye"
        case .roster: "roster"
        case .error: "error"
        case .fork: "fork"
        }
    }

    /// An `error` frame for `error`, fatal as its code says.
    public static func error(_ error: WireError) -> Frame {
        .error(code: error.code.rawValue, message: error.detail, fatal: error.code.isFatal)
    }
}

/// The `hello` frame: who the sender is and what it speaks.
public struct Hello: Sendable, Equatable {
    public var protocolVersion: Int
    public var minProtocol: Int
    public var schema: Int
    public var site: SiteID
    public var role: SiteRole
    public var publicKey: [UInt8]
    public var nonce: [UInt8]
    /// The sender's wall clock, ms since 1970.
    public var time: UInt64
    public var software: String?
    /// The version of the roster the sender holds; 0 for none.
    public var roster: UInt64
    /// Set while the sender, restored from a backup, may not write until its history is whole: the
    /// restore's id (when it was restored, ms since 1970), so a second restore is told apart (§2.2.6).
    public var restored: UInt64?

    public init(protocolVersion: Int = WireVersion.protocolVersion, minProtocol: Int = WireVersion.minProtocolVersion,
                schema: Int = WireVersion.schema, site: SiteID, role: SiteRole, publicKey: [UInt8], nonce: [UInt8],
                time: UInt64, software: String? = nil, roster: UInt64 = 0, restored: UInt64? = nil) {
        self.roster = roster
        self.restored = restored
        self.protocolVersion = protocolVersion
        self.minProtocol = minProtocol
        self.schema = schema
        self.site = site
        self.role = role
        self.publicKey = publicKey
        self.nonce = nonce
        self.time = time
        self.software = software
    }
}

/// The `ack` frame: a batch was applied durably, and the receiver's vector after it.
public struct Ack: Sendable, Equatable {
    public var batch: UInt64
    public var vector: VersionVector
    public var applied: UInt64
    public var held: UInt64
    public var refused: UInt64

    public init(batch: UInt64, vector: VersionVector, applied: UInt64, held: UInt64, refused: UInt64) {
        self.batch = batch
        self.vector = vector
        self.applied = applied
        self.held = held
        self.refused = refused
    }
}

/// A decoded `blocks` frame: a numbered batch of canonical blocks with their origins' keys.
public struct BlockBatch: Sendable, Equatable {
    public var batch: UInt64
    public var blocks: [Block]
    public var keys: [SiteID: [UInt8]]
    /// Inflated size of the change set.
    public var size: Int
    /// Length of the base64 text on the wire.
    public var wireBytes: Int

    public init(batch: UInt64, blocks: [Block], keys: [SiteID: [UInt8]], size: Int, wireBytes: Int) {
        self.batch = batch
        self.blocks = blocks
        self.keys = keys
        self.size = size
        self.wireBytes = wireBytes
    }
}

// MARK: - Decoding

extension Frame {
    /// Decodes one line (without its LF) strictly; every failure is a ``WireError`` with the code
    /// `Protocol/PROTOCOL.md` §2.8 gives it.
    /// - Parameter format: how a `blocks` frame's change set is laid out: the negotiated protocol's.
    public static func decode(line: some Collection<UInt8>, limits: WireLimits = .standard,
                              format: ChangeSet.Format = .plain) throws(WireError) -> Frame {
        switch try decodeDeferringBatches(line: line, limits: limits) {
        case .frame(let frame): return frame
        case .batch(let raw): return .blocks(try raw.decode(limits: limits, format: format))
        case .invalid(let error): throw error
        }
    }

    /// Like ``decode(line:limits:)``, but a `blocks` frame's payload is left undecoded (its header is
    /// checked): the session decodes it once the frame is allowed, off the event loop.
    public static func decodeDeferringBatches(line: some Collection<UInt8>, limits: WireLimits = .standard) throws(WireError) -> Inbound {
        guard line.count <= limits.maxLineBytes else {
            throw WireError(.lineTooLong, "the line is \(line.count) bytes; the limit is \(limits.maxLineBytes)")
        }
        let frame = try FrameObject(line: line)
        switch frame.type {
        case "hello": return .frame(.hello(try WireHello(frame).validated()))
        case "auth": return .frame(.auth(signature: try Field.binary(try frame.string("signature"), bytes: 64, name: "signature")))
        case "vector":
            let wire = try WireVectorHeads(frame)
            let vector = try Field.vector(wire.vector, name: "vector")
            return .frame(.vector(vector, heads: try Field.heads(wire.heads ?? [:], vector: vector)))
        case "blocks": return .batch(try WireBlocks(frame).header(limits: limits))
        case "ack":
            let ack = try WireAck(frame)
            return .frame(.ack(Ack(batch: try Field.positive(ack.batch, name: "batch"), vector: try Field.vector(ack.vector, name: "vector"),
                                   applied: try Field.count(ack.applied, name: "applied"), held: try Field.count(ack.held, name: "held"),
                                   refused: try Field.count(ack.refused, name: "refused"))))
        case "synced":
            let synced = try WireSynced(frame)
            var awaiting: [SiteID]?
            if let sites = synced.awaiting {
                guard sites.count <= RosterLimits.maxSites else {
                    throw WireError(.tooLarge, "member \"awaiting\" names \(sites.count) sites; a roster holds at most \(RosterLimits.maxSites)")
                }
                var parsed: [SiteID] = []
                for site in sites { parsed.append(try Field.site(site, name: "awaiting")) }
                guard zip(parsed, parsed.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    throw WireError(.badField, "member \"awaiting\" must list site ids in ascending order without repeats")
                }
                awaiting = parsed
            }
            return .frame(.synced(try Field.vector(synced.vector, name: "vector"), awaiting: awaiting))
        case "ping", "pong":
            let id = try Field.count(try frame.integer("id"), name: "id"), time = try Field.count(try frame.integer("time"), name: "time")
            return .frame(frame.type == "ping" ? .ping(id: id, time: time) : .pong(id: id, time: time))
        case "bye": return .frame(.bye(reason: try frame.optionalString("reason")))
        case "roster":
            let document = try frame.string("document"), signature = try frame.string("signature")
            guard document.utf8.count <= RosterLimits.maxDocumentBytes else {
                throw WireError(.tooLarge, "the roster document is \(document.utf8.count) bytes; the limit is \(RosterLimits.maxDocumentBytes)")
            }
            return .frame(.roster(document: document, signature: try Field.hex(signature, bytes: 64, name: "signature")))
        case "error":
            return .frame(.error(code: try frame.string("code"), message: try frame.string("message"), fatal: try frame.bool("fatal")))
        case "fork":
            guard let bytes = Data(base64Encoded: try frame.string("block")), bytes.count <= BlockLimits.maxBlockBytes else {
                throw WireError(.badField, "member \"block\" must be the base64 of one block of at most \(BlockLimits.maxBlockBytes) bytes")
            }
            do { return .frame(.fork(try Block(decoding: [UInt8](bytes)))) } catch {
                throw WireError(.badField, "member \"block\" is not a block: \(error)")
            }
        default:
            throw WireError(.unknownFrame, "frame type \"\(frame.type.prefix(64))\" is not known to protocol version \(WireVersion.protocolVersion); it was ignored")
        }
    }
}

/// Field checks shared by the frame decoders; each names the member at fault.
enum Field {

    static func count(_ value: Int64, name: String) throws(WireError) -> UInt64 {
        guard value >= 0 else { throw WireError(.badField, "member \"\(name)\" is \(value); it must not be negative") }
        return UInt64(value)
    }

    static func positive(_ value: Int64, name: String) throws(WireError) -> UInt64 {
        guard value >= 1 else { throw WireError(.badField, "member \"\(name)\" is \(value); it must be at least 1") }
        return UInt64(value)
    }

    static func site(_ text: String, name: String) throws(WireError) -> SiteID {
        do { return try SiteID(text) } catch {
            throw WireError(.badField, "member \"\(name)\" is not a site id: \(error.detail)")
        }
    }

    static func hex(_ text: String, bytes: Int, name: String) throws(WireError) -> [UInt8] {
        guard text.utf8.count == bytes * 2, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              let value = [UInt8](hex: text) else {
            throw WireError(.badField, "member \"\(name)\" must be \(bytes * 2) lowercase hex digits (\(bytes) bytes)")
        }
        return value
    }

    /// A binary member after the handshake's hello: hex (protocols 1 and 2) or, as protocol 3 writes
    /// it, standard padded base64 (§2.5). The two forms have different lengths, so either is read
    /// whatever the session's version.
    static func binary(_ text: String, bytes: Int, name: String) throws(WireError) -> [UInt8] {
        let base64Length = (bytes + 2) / 3 * 4
        guard text.utf8.count == base64Length else { return try hex(text, bytes: bytes, name: name) }
        guard let data = Data(base64Encoded: text), data.count == bytes, data.base64EncodedString() == text else {
            throw WireError(.badField, "member \"\(name)\" must be \(bytes * 2) lowercase hex digits or \(base64Length) characters of padded base64 (\(bytes) bytes)")
        }
        return [UInt8](data)
    }

    /// The `heads` member: for sites of `vector` only, each with the seq the vector gives it.
    static func heads(_ raw: [String: WireHead], vector: VersionVector) throws(WireError) -> [SiteID: Head] {
        var heads: [SiteID: Head] = [:]
        for (key, head) in raw {
            let site = try Field.site(key, name: "heads.\(key.prefix(40))")
            let seq = try Field.positive(head.seq, name: "heads.\(site).seq")
            guard seq == vector[site] else {
                throw WireError(.badField, "member \"heads.\(site).seq\" is \(seq) but the vector gives \(site) \(vector[site]); a head is the block the vector's entry names")
            }
            heads[site] = Head(seq: seq, hash: try Field.binary(head.hash, bytes: 32, name: "heads.\(site).hash"))
        }
        return heads
    }

    static func vector(_ raw: [String: Int64], name: String) throws(WireError) -> VersionVector {
        var entries: [SiteID: UInt64] = [:]
        for (key, value) in raw {
            let site = try Field.site(key, name: "\(name).\(key.prefix(40))")
            entries[site] = try Field.count(value, name: "\(name).\(key)")
        }
        return VersionVector(entries)
    }
}

struct WireHello: Encodable {
    var type = "hello"
    var `protocol`: Int64
    var minProtocol: Int64
    var schema: Int64
    var site: String
    var role: String
    var publicKey: String
    var nonce: String
    var time: Int64
    var software: String?
    var roster: Int64?
    var restored: Int64?

    func validated() throws(WireError) -> Hello {
        guard self.protocol >= 1 else { throw WireError(.badField, "member \"protocol\" must be at least 1") }
        guard minProtocol >= 1, minProtocol <= self.protocol else {
            throw WireError(.badField, "member \"minProtocol\" must be between 1 and \"protocol\" (\(self.protocol))")
        }
        guard schema >= 1 else { throw WireError(.badField, "member \"schema\" must be at least 1") }
        guard let role = SiteRole(rawValue: role) else {
            throw WireError(.badField, "member \"role\" must be site, coordinator or laptop")
        }
        if let software, software.utf8.count > 64 { throw WireError(.badField, "member \"software\" is longer than 64 bytes") }
        var restore: UInt64?
        if let restored { restore = try Field.positive(restored, name: "restored") }
        return Hello(protocolVersion: Int(self.protocol), minProtocol: Int(minProtocol), schema: Int(schema),
                     site: try Field.site(site, name: "site"), role: role,
                     publicKey: try Field.hex(publicKey, bytes: 32, name: "publicKey"),
                     nonce: try Field.hex(nonce, bytes: 32, name: "nonce"),
                     time: try Field.count(time, name: "time"), software: software,
                     roster: try Field.count(roster ?? 0, name: "roster"), restored: restore)
    }
}

struct WireRoster: Encodable {
    var type = "roster"
    var document: String
    var signature: String
}

struct WireFork: Encodable {
    var type = "fork"
    var block: String
}

struct WireAuth: Encodable {
    var type = "auth"
    var signature: String
}

struct WireSynced: Encodable {
    var type = "synced"
    var vector: [String: Int64]
    var awaiting: [String]?
}

struct WireHead: Encodable {
    var seq: Int64
    var hash: String
}

struct WireVectorHeads: Encodable {
    var type = "vector"
    var vector: [String: Int64]
    var heads: [String: WireHead]?
}

struct WireAck: Encodable {
    var type = "ack"
    var batch: Int64
    var vector: [String: Int64]
    var applied: Int64
    var held: Int64
    var refused: Int64
}

struct WirePing: Encodable {
    var type: String
    var id: Int64
    var time: Int64
}

struct WireBye: Encodable {
    var type = "bye"
    var reason: String?
}

struct WireErrorFrame: Encodable {
    var type = "error"
    var code: String
    var message: String
    var fatal: Bool
}

struct WireBlocks {
    var type = "blocks"
    var batch: Int64
    var count: Int64
    var size: Int64
    var keys: [String: String]?
    var data: String

    /// Checks everything but the payload.
    func header(limits: WireLimits) throws(WireError) -> RawBatch {
        let batch = try Field.positive(batch, name: "batch")
        guard count >= 1 else { throw WireError(.badField, "member \"count\" must be at least 1") }
        guard count <= Int64(limits.maxBatchBlocks) else {
            throw WireError(.tooLarge, "the batch holds \(count) blocks; the limit is \(limits.maxBatchBlocks)")
        }
        guard size >= 1 else { throw WireError(.badField, "member \"size\" must be at least 1") }
        guard size <= Int64(limits.maxBatchBytes) else {
            throw WireError(.tooLarge, "the batch inflates to \(size) bytes; the limit is \(limits.maxBatchBytes)")
        }
        var decodedKeys: [SiteID: [UInt8]] = [:]
        for (site, key) in keys ?? [:] {
            decodedKeys[try Field.site(site, name: "keys.\(site.prefix(40))")] = try Field.hex(key, bytes: 32, name: "keys.\(site)")
        }
        let compressed = ChangeSet.decodedLength(base64: data)
        guard compressed <= limits.maxBatchCompressedBytes else {
            throw WireError(.tooLarge, "the batch's zlib stream is \(compressed) bytes; the limit is \(limits.maxBatchCompressedBytes)")
        }
        return RawBatch(batch: batch, count: Int(count), size: Int(size), keys: decodedKeys, data: data)
    }
}

/// A `blocks` frame whose header is checked and whose payload is not yet decoded.
public struct RawBatch: Sendable, Equatable {
    public var batch: UInt64
    public var count: Int
    public var size: Int
    public var keys: [SiteID: [UInt8]]
    var data: String

    /// Decodes the payload (base64, zlib, blocks) and checks it against the header.
    /// - Parameter resolve: in the `.columnar` format, the entity id of each change given, as this
    ///   node holds it (`nil` where it does not); without it the node holds none.
    public func decode(limits: WireLimits = .standard, format: ChangeSet.Format = .plain,
                       resolve: ([Dot]) throws(WireError) -> [UUID?] = { $0.map { _ in nil } }) throws(WireError) -> BlockBatch {
        try batch(of: try ChangeSet.decode(base64: data, count: count, size: size, limits: limits, format: format, resolve: resolve))
    }

    /// Reads a `.columnar` payload up to the look-up of its held entities (``ColumnarChangeSet/Parsed/heldChanges``),
    /// which the caller does in its store; ``batch(of:)`` then checks the blocks put back together.
    public func parseColumnar(limits: WireLimits = .standard) throws(WireError) -> ColumnarChangeSet.Parsed {
        try ChangeSet.parseColumnar(base64: data, count: count, size: size, limits: limits)
    }

    /// Checks decoded blocks against the header (stamp order, `keys`): the steps after the change set's own.
    public func batch(of blocks: [Block]) throws(WireError) -> BlockBatch {
        for (earlier, later) in zip(blocks, blocks.dropFirst()) {
            guard (earlier.hlc, earlier.origin, earlier.seq) < (later.hlc, later.origin, later.seq) else {
                throw WireError(.badBatch, "blocks must be in stamp order without repeats (\(later.origin) seq \(later.seq) follows \(earlier.origin) seq \(earlier.seq))")
            }
        }
        let origins = Set(blocks.map(\.origin))
        if let stray = keys.keys.sorted().first(where: { !origins.contains($0) }) {
            throw WireError(.badField, "member \"keys\" names \(stray), which wrote no block of this batch")
        }
        return BlockBatch(batch: batch, blocks: blocks, keys: keys, size: size, wireBytes: data.utf8.count)
    }
}

// MARK: - Encoding

extension Frame {
    /// How binary members after the hello are written: hex in protocols 1 and 2, base64 in protocol 3.
    public enum Binary: Sendable { case hex, base64 }

    /// The frame as one line of JSON with sorted keys, without the LF.
    /// - Parameter binary: how `auth`'s signature and the `heads` hashes are written (§2.5); the
    ///   `hello`, written before versions are known, is hex in every version. It does not choose a
    ///   `blocks` frame's layout: that is always the change set of §2.3 here; a protocol-3 sender writes
    ///   its batches with `ChangeSet.encode(…, format: .compact)`.
    public func encodeLine(binary: Binary = .hex) -> [UInt8] {
        func text(_ bytes: [UInt8]) -> String { binary == .hex ? bytes.hexString : Data(bytes).base64EncodedString() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func vector(_ v: VersionVector) -> [String: Int64] {
            Dictionary(uniqueKeysWithValues: v.entries.map { ($0.key.rawValue, Int64($0.value)) })
        }
        // Encoding these plain structs cannot fail.
        func json(_ value: some Encodable) -> [UInt8] { Array(try! encoder.encode(value)) }
        switch self {
        case .hello(let h):
            return json(WireHello(protocol: Int64(h.protocolVersion), minProtocol: Int64(h.minProtocol), schema: Int64(h.schema),
                                  site: h.site.rawValue, role: h.role.rawValue, publicKey: h.publicKey.hexString,
                                  nonce: h.nonce.hexString, time: Int64(h.time), software: h.software,
                                  roster: h.roster == 0 ? nil : Int64(clamping: h.roster), restored: h.restored.map { Int64(clamping: $0) }))
        case .auth(let signature): return json(WireAuth(signature: text(signature)))
        case .vector(let v, let heads):
            return json(WireVectorHeads(vector: vector(v), heads: heads.isEmpty ? nil : Dictionary(uniqueKeysWithValues: heads.map {
                ($0.key.rawValue, WireHead(seq: Int64(clamping: $0.value.seq), hash: text($0.value.hash)))
            })))
        case .synced(let v, let awaiting): return json(WireSynced(vector: vector(v), awaiting: awaiting?.map(\.rawValue)))
        case .blocks(let batch):
            // A batch that was decoded within the limits re-encodes within them. Senders build their
            // lines with ChangeSet.encode directly and never come through here.
            // swiftlint:disable:next force_try
            return try! ChangeSet.encode(batch.blocks, batch: batch.batch, keys: batch.keys).line
        case .ack(let a):
            return json(WireAck(batch: Int64(a.batch), vector: vector(a.vector), applied: Int64(a.applied),
                                held: Int64(a.held), refused: Int64(a.refused)))
        case .ping(let id, let time): return json(WirePing(type: "ping", id: Int64(id), time: Int64(time)))
        case .pong(let id, let time): return json(WirePing(type: "pong", id: Int64(id), time: Int64(time)))
        case .bye(let reason): return json(WireBye(reason: reason))
        case .roster(let document, let signature): return json(WireRoster(document: document, signature: signature.hexString))
        case .error(let code, let message, let fatal): return json(WireErrorFrame(code: code, message: message, fatal: fatal))
        case .fork(let block): return json(WireFork(block: Data(block.bytes).base64EncodedString()))
        }
    }
}
