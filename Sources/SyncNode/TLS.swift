import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import SyncWire

/// TLS with an organisation's certificates (`tls` in node.json; `--tls-cert`, `--tls-key`, `--tls-ca`
/// on the CLI), instead of protocol 2's default TLS on the sites' own keys (``SiteTLS``).
///
/// TLS 1.2 or 1.3 wraps the same line protocol unchanged (`Protocol/PROTOCOL.md` §2.12.1), and the
/// session's own signed `hello`/`auth` handshake still runs inside it; the certificates are not tied
/// to site keys.
///
/// - A node that **listens** with TLS presents ``certificateFile`` (its certificate, then any
///   intermediates) with ``keyFile``. When ``caFile`` is set it also asks every connecting peer for a
///   certificate signed by that CA and refuses the connection without one (mutual TLS), unless
///   ``requireClientCertificate`` is `false`.
/// - A node that **dials** (or `tierline sync`) verifies the peer's certificate against ``caFile`` (the
///   system's trust roots when it is not set) and the name it dials (``serverName`` when set), and
///   presents ``certificateFile`` if it has one.
///
/// ```json
/// "tls": {"certificateFile": "/etc/tierline/tls/north.pem", "keyFile": "/etc/tierline/tls/north-key.pem",
///         "caFile": "/etc/tierline/tls/ca.pem"}
/// ```
public struct TLSSettings: Sendable, Codable, Equatable {
    /// PEM file: this node's certificate first, then any intermediate certificates.
    public var certificateFile: String?
    /// PEM file: the private key of ``certificateFile`` (not encrypted).
    public var keyFile: String?
    /// PEM file: the CA certificates that sign the peers' certificates.
    public var caFile: String?
    /// Whether a listening node refuses peers without a certificate signed by ``caFile``.
    /// `nil` means the default: `true` when ``caFile`` is set.
    public var requireClientCertificate: Bool?
    /// The name to check the peer's certificate for when dialing; by default the host of each peer's
    /// `HOST:PORT` (an IP address is checked against the certificate's IP addresses).
    public var serverName: String?

    public init(certificateFile: String? = nil, keyFile: String? = nil, caFile: String? = nil,
                requireClientCertificate: Bool? = nil, serverName: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.caFile = caFile
        self.requireClientCertificate = requireClientCertificate
        self.serverName = serverName
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case certificateFile, keyFile, caFile, requireClientCertificate, serverName
    }

    /// Whether a listening node asks peers for a certificate and refuses them without one.
    public var requiresClientCertificate: Bool { requireClientCertificate ?? (caFile != nil) }

    /// The same settings with relative file names taken relative to `folder` (the configuration
    /// file's folder), so a node.json can name files next to it.
    public func resolvingPaths(relativeTo folder: String) -> TLSSettings {
        func resolve(_ path: String?) -> String? {
            guard let path, !path.hasPrefix("/") else { return path }
            return URL(fileURLWithPath: folder).appendingPathComponent(path).standardizedFileURL.path
        }
        var copy = self
        copy.certificateFile = resolve(certificateFile)
        copy.keyFile = resolve(keyFile)
        copy.caFile = resolve(caFile)
        return copy
    }

    /// Checks the combination of settings and reads every file, so a bad file is reported when the
    /// configuration is loaded, not at the first connection.
    /// - Parameter listening: the node accepts sessions, so it needs a certificate and key.
    /// - Throws: ``ConfigurationError`` naming the setting and the file, and what to do.
    public func validate(listening: Bool) throws(ConfigurationError) {
        _ = try makeContexts(listening: listening)
    }

    /// Builds the TLS contexts for listening and dialing.
    func makeContexts(listening: Bool) throws(ConfigurationError) -> TLSContexts {
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw ConfigurationError("tls.certificateFile and tls.keyFile go together: give both (or neither, for a node that only dials without a certificate)")
        }
        if listening && certificateFile == nil {
            throw ConfigurationError("a node that listens with TLS needs tls.certificateFile and tls.keyFile (its certificate and private key)")
        }
        if requireClientCertificate == true && caFile == nil {
            throw ConfigurationError("tls.requireClientCertificate needs tls.caFile: the CA that signs the peers' certificates")
        }
        if let serverName {
            guard !serverName.isEmpty, serverName.utf8.count <= 253, !serverName.contains(":"),
                  !serverName.allSatisfy({ $0.isNumber || $0 == "." }) else {
                throw ConfigurationError("tls.serverName \(serverName.debugDescription) must be a DNS name; to check an IP address, dial that address and leave serverName out")
            }
        }
        var chain: [NIOSSLCertificate] = []
        var key: NIOSSLPrivateKey?
        if let certificateFile, let keyFile {
            chain = try Self.certificates(in: certificateFile, setting: "tls.certificateFile")
            try Self.checkDates(chain[0], file: certificateFile)
            key = try Self.privateKey(in: keyFile)
        }
        let roots = try caFile.map { path throws(ConfigurationError) in try Self.certificates(in: path, setting: "tls.caFile") }

        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv12
        client.certificateVerification = .fullVerification
        client.trustRoots = roots.map { .certificates($0) } ?? .default
        if let key {
            client.certificateChain = chain.map { .certificate($0) }
            client.privateKey = .privateKey(key)
        }
        let clientContext = try Self.context(client, what: "dialing")

        var serverContext: NIOSSLContext?
        if let key {
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                  privateKey: .privateKey(key))
            server.minimumTLSVersion = .tlsv12
            if let roots, requiresClientCertificate {
                server.trustRoots = .certificates(roots)
                server.certificateVerification = .noHostnameVerification
            } else {
                server.certificateVerification = .none
            }
            serverContext = try Self.context(server, what: "listening")
        }
        return TLSContexts(server: serverContext, client: clientContext, serverName: serverName)
    }

    static func context(_ configuration: TLSConfiguration, what: String) throws(ConfigurationError) -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: configuration) } catch {
            let text = "\(error)"
            if text.contains("KEY_VALUES_MISMATCH") || text.contains("failedToLoadPrivateKey") {
                throw ConfigurationError("tls.keyFile is not the private key of tls.certificateFile; give the key made with that certificate")
            }
            throw ConfigurationError("the TLS settings for \(what) do not work: \(text)")
        }
    }

    /// The contents of a PEM file, or an error that says whether it is missing, unreadable or not PEM.
    static func pem(_ path: String, setting: String) throws(ConfigurationError) -> [UInt8] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ConfigurationError("\(setting): \(path) does not exist; check the path")
        }
        guard !isFolder.boolValue else { throw ConfigurationError("\(setting): \(path) is a folder, not a PEM file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(setting): cannot read \(path); check its permissions (the node runs as the user tierline)")
        }
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw ConfigurationError("\(setting): \(path) is not a PEM file (no \"-----BEGIN\" line); a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem` (a key: `openssl pkey -inform der ...`)")
        }
        return Array(data)
    }

    static func certificates(in path: String, setting: String) throws(ConfigurationError) -> [NIOSSLCertificate] {
        let bytes = try pem(path, setting: setting)
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("-----BEGIN CERTIFICATE-----") else {
            throw ConfigurationError("\(setting): \(path) holds no certificate (no \"-----BEGIN CERTIFICATE-----\"); is it the key file?")
        }
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMBytes(bytes) } catch {
            throw ConfigurationError("\(setting): \(path) holds a damaged certificate (\(error)); check it with `openssl x509 -in \(path) -noout -text`")
        }
        guard !certificates.isEmpty else { throw ConfigurationError("\(setting): \(path) holds no certificate") }
        return certificates
    }

    static func privateKey(in path: String) throws(ConfigurationError) -> NIOSSLPrivateKey {
        let bytes = try pem(path, setting: "tls.keyFile")
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("ENCRYPTED") {
            throw ConfigurationError("tls.keyFile: \(path) is encrypted and the node cannot ask for a passphrase; write it unencrypted (mode 0600) with `openssl pkey -in \(path) -out PLAIN.pem`")
        }
        guard text.contains("PRIVATE KEY-----") else {
            throw ConfigurationError("tls.keyFile: \(path) holds no private key (no \"-----BEGIN ... PRIVATE KEY-----\"); is it the certificate?")
        }
        do { return try NIOSSLPrivateKey(bytes: bytes, format: .pem) } catch {
            throw ConfigurationError("tls.keyFile: \(path) holds a private key that cannot be read (\(error)); check it with `openssl pkey -in \(path) -noout`")
        }
    }

    /// A certificate outside its validity period would make every handshake fail; say so at load.
    static func checkDates(_ certificate: NIOSSLCertificate, file: String, now: Date = Date()) throws(ConfigurationError) {
        let notAfter = Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter))
        let notBefore = Date(timeIntervalSince1970: TimeInterval(certificate.notValidBefore))
        if notAfter < now {
            throw ConfigurationError("tls.certificateFile: the certificate in \(file) expired on \(notAfter.formatted(.iso8601)); make a new one")
        }
        if notBefore > now {
            throw ConfigurationError("tls.certificateFile: the certificate in \(file) is not valid before \(notBefore.formatted(.iso8601)); check this machine's clock")
        }
    }
}

/// The TLS contexts a node uses: one to accept with (when it has a certificate), one to dial with.
struct TLSContexts: Sendable {
    var server: NIOSSLContext?
    var client: NIOSSLContext
    var serverName: String?
    /// The certificates are the sites' own keys (``SiteTLS``): each end's key is judged against the
    /// roster by the session, not by a CA.
    var siteKeys = false
    /// Plain protocol-1 sessions are admitted too (`allowPlainSessions`, for an upgrade window): a
    /// listener takes a peer that speaks plain TCP, and a dialer whose peer answers in plain text
    /// dials it again without TLS.
    var allowPlain = false

    /// The name sent in SNI and checked in the peer's certificate: ``TLSSettings/serverName``, else the
    /// dialed host; `nil` for an IP address, which NIOSSL checks against the certificate's IP addresses.
    func expectedName(dialing host: String) -> String? {
        if let serverName { return serverName }
        var v4 = in_addr(), v6 = in6_addr()
        let isAddress = host.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
        return isAddress ? nil : host
    }
}

// MARK: - Pipeline

/// Puts TLS between the socket and the byte counter that `SyncPipeline.install` added (so the
/// counter sees the protocol's own bytes), and a ``PeerErrorWatch`` after that pipeline's frame
/// decoder. Call on the channel's event loop, after `SyncPipeline.install`.
enum SyncTransport {
    enum Side { case accepting, dialing(host: String) }

    /// - Returns: the gate a session waits on: open at once for plain TCP, after the handshake for TLS.
    static func install(on pipeline: ChannelPipeline.SynchronousOperations, after counter: WireCounter,
                        tls: TLSContexts?, side: Side, eventLoop: any EventLoop) throws -> TransportGate {
        let gate = TransportGate(eventLoop: eventLoop, mode: tls.map { $0.siteKeys ? .siteKeys : .certificates } ?? .plain)
        try pipeline.addHandler(PeerErrorWatch(gate: gate))
        if case .dialing = side { try pipeline.addHandler(HTTPAnswerSniffer(gate: gate), position: .first) }
        // Next to the socket, before anything TLS adds or takes away.
        try pipeline.addHandler(gate.socket, position: .first)
        // Without contexts: a plain protocol-1 connection this side dials (a listener always has them).
        guard let tls else {
            gate.open()
            return gate
        }
        switch side {
        case .accepting:
            guard let server = tls.server else { throw ConfigurationError("a node that listens with TLS needs tls.certificateFile and tls.keyFile") }
            // TLS sits between the socket and the byte counter, so the counter sees the protocol's own
            // bytes (the TLS records' overhead and handshake are not counted).
            if tls.allowPlain {
                // The first byte decides: a TLS record (22) gets TLS, anything else a plain session.
                try pipeline.addHandler(TransportSelector(gate: gate) { pipeline, selector in
                    try pipeline.addHandler(TLSFailureGuard(gate: gate), position: .after(selector))
                    try pipeline.addHandler(Self.serverHandler(server, tls: tls), position: .after(selector))
                }, position: .before(counter))
            } else {
                try pipeline.addHandler(PlaintextRefuser(siteKeys: tls.siteKeys), position: .before(counter))
                try pipeline.addHandler(Self.serverHandler(server, tls: tls), position: .before(counter))
                try pipeline.addHandler(TLSFailureGuard(gate: gate), position: .before(counter))
            }
        case .dialing(let host):
            let handler = tls.siteKeys
                ? try NIOSSLClientHandler(context: tls.client, serverHostname: nil) { certificates, promise in
                    promise.succeed(SiteTLS.verify(certificates))
                }
                : try NIOSSLClientHandler(context: tls.client, serverHostname: tls.expectedName(dialing: host))
            try pipeline.addHandler(handler, position: .before(counter))
            try pipeline.addHandler(TLSFailureGuard(gate: gate), position: .before(counter))
        }
        return gate
    }

    static func serverHandler(_ server: NIOSSLContext, tls: TLSContexts) -> NIOSSLServerHandler {
        guard tls.siteKeys else { return NIOSSLServerHandler(context: server) }
        return NIOSSLServerHandler(context: server) { certificates, promise in
            promise.succeed(SiteTLS.verify(certificates))
        }
    }
}

/// Whether a connection's transport is ready for the line protocol, and why not.
///
/// A session starts only once the gate is open, so a TLS handshake that fails (an untrusted
/// certificate, a plain peer) is reported as that, never as a write on a closed channel.
final class TransportGate: Sendable {
    /// How the connection is protected.
    enum Mode: Sendable, Equatable {
        /// TLS with the sites' own keys: the session checks the peer's key against its hello and the roster.
        case siteKeys
        /// TLS with certificates of an organisation's CA (`tls` in node.json).
        case certificates
        /// Plain TCP: protocol 1, admitted only with `allowPlainSessions`.
        case plain
    }

    /// Bytes as they cross the TCP socket, outside TLS: the protocol's own bytes, each TLS record's
    /// framing and the TLS handshake (the session's ``WireCounter`` sees the protocol's bytes only).
    let socket = WireCounter()
    private let promise: EventLoopPromise<Void>
    private let reason = NIOLockedValueBox<WireError?>(nil)
    private let parting = NIOLockedValueBox<WireError?>(nil)
    private let state: NIOLockedValueBox<(mode: Mode, peerKey: [UInt8]?)>

    init(eventLoop: any EventLoop, mode: Mode = .plain) {
        promise = eventLoop.makePromise(of: Void.self)
        state = NIOLockedValueBox((mode, nil))
    }

    /// How the connection is protected (a listener that admits plain sessions decides at the first byte).
    var mode: Mode { state.withLockedValue { $0.mode } }

    /// The Ed25519 key the peer's TLS certificate carries, which TLS proved it holds (``SiteTLS``): set
    /// when the handshake completes, from its outcome, whether it was a full or a resumed one.
    var peerKey: [UInt8]? { state.withLockedValue { $0.peerKey } }

    func notePeerKey(_ key: [UInt8]) { state.withLockedValue { $0.peerKey = key } }

    /// The peer spoke plain TCP to a listener that admits it.
    func openPlain() {
        state.withLockedValue { $0.mode = .plain }
        open()
    }

    /// The transport is ready: plain TCP at once, TLS once its handshake completed.
    func open() { promise.succeed() }

    /// The transport refused the connection (or TLS failed later); the first reason is kept.
    func refuse(_ error: WireError) {
        reason.withLockedValue { if $0 == nil { $0 = error } }
        promise.fail(error)
    }

    /// Why the transport refused or failed, if it did.
    var refusal: WireError? { reason.withLockedValue { $0 } }

    /// The first fatal `error` frame the peer sent on this connection (``PeerErrorWatch``), whether or
    /// not the session got to read it.
    var peerError: WireError? { parting.withLockedValue { $0 } }

    func notePeerError(_ error: WireError) { parting.withLockedValue { if $0 == nil { $0 = error } } }

    /// Waits until the gate opens; throws the ``WireError`` that refused the connection.
    func ready() async throws { try await promise.futureResult.get() }
}

/// After the frame decoder: notes on the connection's gate the first fatal `error` frame the peer
/// sent, as it is decoded. A node that closes a connection writes its reason first (a stranger closed
/// to make room, `Protocol/PROTOCOL.md` §2.9.2), but the session may not get to read it: a write of its
/// own (its hello, when the connection was closed before its session started) can fail first on the
/// closed connection. The session then reports the peer's reason rather than a lost connection.
final class PeerErrorWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Inbound
    typealias InboundOut = Inbound

    private let gate: TransportGate

    init(gate: TransportGate) { self.gate = gate }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .frame(.error(let code, let message, true)) = unwrapInboundIn(data) {
            gate.notePeerError(WireError(reported: code, message))
        }
        context.fireChannelRead(data)
    }
}

/// On a dialing connection, below everything: a peer whose first bytes are `HTTP/` is a web server,
/// most often a node's own `--http` port dialed by mistake for its sync port. TLS would call that
/// "plain text" and the line protocol a bad frame; this says what it is, refuses the gate with it,
/// and closes the connection. It steps aside after the first bytes.
final class HTTPAnswerSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gate: TransportGate

    init(gate: TransportGate) { self.gate = gate }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes > 0 else { return context.fireChannelRead(data) }
        if buffer.readableBytesView.starts(with: "HTTP/".utf8.prefix(buffer.readableBytes)) {
            gate.refuse(WireError(.connectionLost, "the peer answered HTTP; that is a node's dashboard/API port (--http), use its sync port (--listen, listen in node.json)"))
            return context.close(promise: nil)
        }
        // The bytes go on before this handler leaves: a context that left the pipeline forwards nothing.
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// On a TLS listener, below TLS: a peer whose first byte cannot start a TLS handshake (a record of
/// type 22) spoke plain TCP. It gets one plain `error` frame, `tls-required`, that an older or
/// misconfigured node can read and report, and the connection closes.
final class PlaintextRefuser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var decided = false
    /// The listener runs protocol 2's TLS with site keys (else an organisation's certificates).
    private let siteKeys: Bool

    init(siteKeys: Bool = false) { self.siteKeys = siteKeys }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !decided, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            context.fireChannelRead(data)
            return
        }
        decided = true
        guard first != 0x16 else {
            context.fireChannelRead(data)
            return
        }
        let told = siteKeys
            ? WireError(.tlsRequired, "this node speaks protocol 2: every session runs in TLS with the sites' own keys, and plain protocol-1 sessions are refused; upgrade the connecting node (Tierline 0.7 or later), or, for an upgrade window, list that site in this node's node.json: \"allowPlainSessions\": [\"SITE\"] (serve --allow-plain SITE)")
            : WireError(.tlsRequired, "this node accepts only TLS sessions; configure TLS on the connecting side (tls in node.json, or --tls-ca, --tls-cert and --tls-key)")
        var line = context.channel.allocator.buffer(capacity: 256)
        line.writeBytes(Frame.error(told).encodeLine())
        line.writeInteger(UInt8(ascii: "\n"))
        context.fireErrorCaught(WireError(.tlsRequired, "the peer spoke plain TCP to this TLS listener; it was told to use TLS"))
        context.writeAndFlush(wrapOutboundOut(line)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// On a listener that admits plain sessions besides TLS ones (`allowPlainSessions`): the first byte
/// decides. A TLS handshake record (type 22) gets the TLS handlers `addTLS` puts after this one; any
/// other byte, or none within ``grace``, opens the gate for a plain protocol-1 session. Either way
/// the bytes go on.
final class TransportSelector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gate: TransportGate
    private let addTLS: (ChannelPipeline.SynchronousOperations, TransportSelector) throws -> Void
    private var decided = false

    private var deadline: Scheduled<Void>?

    init(gate: TransportGate, addTLS: @escaping (ChannelPipeline.SynchronousOperations, TransportSelector) throws -> Void) {
        self.gate = gate
        self.addTLS = addTLS
    }

    /// A TLS client writes its ClientHello as soon as it connects; a peer that has sent nothing after a
    /// second is taken for a plain protocol-1 peer waiting for this node's hello (which protocol 1
    /// lets a dialer do), and the session's own handshake limit applies from then on.
    static let grace = TimeAmount.seconds(1)

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: Self.grace) { [self] in
            guard !decided else { return }
            decided = true
            gate.openPlain()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if !decided { gate.refuse(WireError(.connectionLost, "the peer closed the connection before it sent anything")) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !decided, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            return context.fireChannelRead(data)
        }
        decided = true
        deadline?.cancel()
        if first == 0x16 {
            do { try addTLS(context.pipeline.syncOperations, self) } catch {
                gate.refuse(WireError(.tlsFailed, "could not start TLS: \(error)"))
                return context.close(promise: nil)
            }
        } else {
            gate.openPlain()
        }
        context.fireChannelRead(data)
    }
}

/// Above TLS: opens the connection's ``TransportGate`` when the handshake completes, and refuses it
/// with a ``WireError`` (`tls-failed`, `tls-required`) that says in words what went wrong, for the
/// log, `tierline sync` and `status`. Writes that TLS drops fail with that reason instead of "I/O on
/// closed channel". A handshake that has not finished after `handshakeTimeout` closes the connection.
///
/// A peer that closes TCP without TLS's close_notify is treated like a plain TCP close: the line
/// protocol has its own ends (`bye`, acks), so a cut is noticed by them, not by TLS.
final class TLSFailureGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let handshakeTimeout = TimeAmount.seconds(10)

    private let gate: TransportGate
    private var failure: WireError?
    private var handshakeDone = false
    private var deadline: Scheduled<Void>?

    init(gate: TransportGate) { self.gate = gate }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let gate = gate
        deadline = context.eventLoop.scheduleTask(in: Self.handshakeTimeout) {
            gate.refuse(WireError(.tlsFailed, "the TLS handshake did not finish within \(Self.handshakeTimeout.nanoseconds / 1_000_000_000) s"))
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        if !handshakeDone { gate.refuse(failure ?? WireError(.tlsFailed, "the connection closed before the TLS handshake finished")) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            handshakeDone = true
            deadline?.cancel()
            if gate.mode == .siteKeys {
                // Read from the handshake's outcome, so a resumed TLS session knows it too (``SiteTLS/peerKey(in:)``).
                guard let key = SiteTLS.peerKey(in: context.pipeline.syncOperations) else {
                    let refusal = WireError(.tlsFailed, "the TLS handshake ended without an Ed25519 certificate of the peer; refusing the connection")
                    failure = refusal
                    gate.refuse(refusal)
                    return context.close(promise: nil)
                }
                gate.notePeerKey(key)
            }
            gate.open()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if !handshakeDone {
            gate.refuse(failure ?? WireError(.tlsFailed, Self.closedDuringHandshake))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let nio = error as? NIOSSLError, nio == .uncleanShutdown { return }
        guard let translated = Self.translate(error) else {
            context.fireErrorCaught(error)
            return
        }
        if failure == nil {
            failure = translated
            gate.refuse(translated)
            context.fireErrorCaught(translated)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let promise else { return context.write(data, promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(data, promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success: promise.succeed()
            case .failure(let error): promise.fail(self.failure ?? Self.translate(error) ?? error)
            }
        }
    }

    static let closedDuringHandshake = "the peer closed the connection during the TLS handshake: it may not use TLS, "
        + "or it refused this node's certificate (its log says which), or it is not a Tierline sync port"

    /// A TLS error in words, or `nil` for an error that is not about TLS.
    static func translate(_ error: any Error) -> WireError? {
        if let wire = error as? WireError { return wire }
        if let extra = error as? NIOSSLExtraError {
            let text = "\(extra)"
            if text.contains("failedToValidateHostname") {
                return WireError(.tlsFailed, "the peer's certificate is not made out to the name or address dialed (\(text)); dial the name in its certificate, or set tls.serverName (--tls-server-name)")
            }
            return WireError(.tlsFailed, "TLS failed: \(text)")
        }
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        // A peer that accepts and closes at once (a full node, a firewall, a port forwarder with
        // nothing behind it) ends the handshake so; its description is NIO's, not words.
        if let nio = error as? NIOSSLError, case .handshakeFailed(.sslError(let stack)) = nio, stack.contains(.eofDuringHandshake) {
            return WireError(.tlsFailed, Self.closedDuringHandshake)
        }
        let text = "\(error)"
        let reason: String
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            reason = "the peer's certificate is not trusted here: it is not signed by a CA in tls.caFile (--tls-ca), or it has expired; refusing the session"
        } else if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || (text.contains("CERTIFICATE_REQUIRED") && !text.contains("ALERT")) {
            reason = "the peer sent no certificate and this node requires one (tls.requireClientCertificate); give the peer a certificate signed by this node's CA"
        } else if text.contains("ALERT_CERTIFICATE_REQUIRED") {
            reason = "the peer requires a certificate from this side; give this node tls.certificateFile and tls.keyFile (--tls-cert, --tls-key) signed by the CA the peer trusts"
        } else if text.contains("ALERT_UNKNOWN_CA") || text.contains("ALERT_BAD_CERTIFICATE") || text.contains("ALERT_CERTIFICATE_UNKNOWN")
                    || text.contains("ALERT_DECRYPT_ERROR") || text.contains("ALERT_CERTIFICATE_EXPIRED") || text.contains("ALERT_HANDSHAKE_FAILURE") {
            reason = "the peer refused this node's certificate (\(Self.alert(in: text))): it does not trust the CA that signed tls.certificateFile, or the certificate has expired"
        } else if text.contains("WRONG_VERSION_NUMBER") || text.contains("HTTP_REQUEST") || text.contains("PACKET_LENGTH_TOO_LONG") {
            reason = "the peer does not speak TLS (it answered in plain text); connect without TLS, or give the peer a tls setting"
        } else if text.contains("eofDuringHandshake") || text.contains("UNEXPECTED_EOF") {
            reason = closedDuringHandshake
        } else if text.contains("UNSUPPORTED_PROTOCOL") || text.contains("ALERT_PROTOCOL_VERSION") {
            reason = "the peer offers no TLS version this node accepts (TLS 1.2 or 1.3)"
        } else {
            reason = "TLS failed: \(text)"
        }
        return WireError(.tlsFailed, reason)
    }

    /// The first alert name BoringSSL reports in `text`, such as `TLSV1_ALERT_UNKNOWN_CA`.
    static func alert(in text: String) -> String {
        let words = text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
        return words.first(where: { $0.contains("ALERT_") }).map(String.init) ?? "a TLS alert"
    }
}
