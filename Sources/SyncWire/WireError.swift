/// A protocol error with its stable code (`Protocol/PROTOCOL.md` §2.8).
///
/// The code is what travels in an `error` frame; the detail says what was wrong in words.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Stable error codes. Never renumbered or renamed: peers and scripts match on them.
    public enum Code: String, Sendable, CaseIterable, Codable {
        case lineTooLong = "line-too-long"
        case badJSON = "bad-json"
        case unknownFrame = "unknown-frame"
        case badField = "bad-field"
        case badBase64 = "bad-base64"
        case badZlib = "bad-zlib"
        case tooLarge = "too-large"
        case badBatch = "bad-batch"
        case unexpectedFrame = "unexpected-frame"
        case unsupportedProtocol = "unsupported-protocol"
        case unsupportedSchema = "unsupported-schema"
        case authFailed = "auth-failed"
        case duplicateSite = "duplicate-site"
        case blockRefused = "block-refused"
        /// The two ends hold different blocks under one (origin, seq): two histories of one site
        /// (§2.2.3). Fatal when that site is one of the two ends; otherwise only that origin stops.
        case diverged = "diverged"
        case timeout = "timeout"
        case `internal` = "internal"
        /// One side uses TLS and the other does not (§2.12).
        case tlsRequired = "tls-required"
        /// The TLS handshake failed: an untrusted or missing certificate, a wrong name. Never in a
        /// frame, since no frame can cross a failed handshake; it names the failure in logs and `status`.
        case tlsFailed = "tls-failed"
        /// The connection broke or the peer closed it without `bye` or an error frame: a reset, a cut
        /// cable, a killed process. Never in a frame; it names the ending in logs and `status`.
        case connectionLost = "connection-lost"

        /// Whether the session ends after this error. Only an unknown frame type and refused blocks
        /// leave it open: the first so newer peers can probe, the second so one bad block does not
        /// stall every other origin.
        public var isFatal: Bool { self != .unknownFrame && self != .blockRefused }
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The error a peer reported in an `error` frame: its code, or `internal` for a code this version
    /// does not know, with that code kept in the detail.
    public init(reported code: String, _ message: String) {
        let known = Code(rawValue: code)
        self.init(known ?? .internal, known == nil ? "\(code): \(message)" : message)
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}

/// The protocol's bounds (`Protocol/PROTOCOL.md` §2.9). Receivers enforce them; senders stay within them.
public struct WireLimits: Sendable, Hashable {
    /// Longest line in bytes, the terminating LF excluded.
    public var maxLineBytes = 8 << 20
    /// Largest inflated change set of one `blocks` frame.
    public var maxBatchBytes = 4 << 20
    /// Largest zlib stream (the bytes `data` stands for) of one `blocks` frame. The default is the
    /// most an 8 MiB line can carry, so only the line limit applies unless a node is configured lower.
    public var maxBatchCompressedBytes = 6 << 20
    /// Most blocks in one `blocks` frame.
    public var maxBatchBlocks = 4096
    /// Unacknowledged `blocks` frames a sender may have in flight.
    public var window = 4

    public init() {}

    /// The limits of protocol version 1.
    public static let standard = WireLimits()
}

/// Versions this implementation speaks.
public enum WireVersion {
    /// Highest protocol version spoken: 5, protocol 4 with columnar change sets (`Protocol/PROTOCOL.md`
    /// §2.3.3). Protocol 4 is protocol 3 without `auth` frames where TLS on the sites' keys already
    /// proved them (§2.5); protocol 3 is protocol 2 with compact change sets (§2.3.1); protocol 2 is
    /// protocol 1's frames inside TLS with the sites' keys.
    public static let protocolVersion = 5
    /// Lowest protocol version spoken.
    public static let minProtocolVersion = 1
    /// The block encoding schema written and read (`Protocol/PROTOCOL.md` §1).
    public static let schema = 4
}
