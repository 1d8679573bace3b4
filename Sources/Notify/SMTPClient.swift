import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import NIOTLS

/// A small SMTP client (RFC 5321) for the organisation's mail relay: one connection per message.
///
/// The session: connect (within the timeout), the 220 greeting, EHLO, STARTTLS and EHLO again (or TLS
/// from the first byte), AUTH PLAIN or LOGIN as the server offers (only inside TLS), MAIL FROM, RCPT
/// TO for each recipient, DATA with the message dot-stuffed, QUIT. Every reply must be complete within
/// `timeoutMillis` of its command (4 times it after DATA), and the whole session within 8 times it,
/// however the server paces its bytes (``ReplyDeadlineHandler``); a reply that is not positive ends
/// the session with an error that names the command and quotes the server.
///
/// ```swift
/// let client = SMTPClient(settings: smtp, password: secrets.smtpPassword)
/// try await client.send(message)
/// ```
///
/// Runs on NIO's singleton event loop group; the caller's task waits for the session and nothing
/// blocks a loop. The server's certificate is verified against ``SMTPSettings/caFile`` or the system's
/// trust roots, and the host name (or the IP address dialed); verification cannot be turned off.
public struct SMTPClient: Sendable {
    public var settings: SMTPSettings
    var password: String?
    /// The name this client gives in EHLO.
    public var heloName: String

    public init(settings: SMTPSettings, password: String?, heloName: String = "tierline") {
        self.settings = settings
        self.password = password
        self.heloName = heloName
    }

    /// Sends `message` to `recipients` (by default its `To`).
    /// - Throws: ``NotifyError``; its `isTransient` says whether a later attempt may succeed.
    public func send(_ message: MailMessage, recipients: [String]? = nil) async throws(NotifyError) {
        let data = try MailMessage.dotStuffed(message.rendered())
        let recipients = recipients ?? [message.to]
        for recipient in recipients { try MailAddress.check(recipient, field: "the recipient") }
        if settings.username != nil, settings.security == .none {
            throw NotifyError(.settings, "notifications.smtp: AUTH needs TLS; set security to starttls or tls", transient: false)
        }
        let tls = try makeTLSContext()
        var step = "connect to \(settings.host):\(settings.port)"
        do {
            let channel = try await connect(tls: settings.security == .tls ? tls : nil)
            try await channel.executeThenClose { inbound, outbound in
                var lines = inbound.makeAsyncIterator()
                var reader = SMTPReplyReader()
                func reply(to command: String) async throws -> SMTPReply {
                    step = command
                    while true {
                        let line: ByteBuffer?
                        do { line = try await lines.next() } catch let error as NotifyError where error.code == .timeout {
                            throw NotifyError(.timeout, "\(command) timed out: \(error.detail)", transient: true)
                        }
                        guard let buffer = line else {
                            throw NotifyError(.connection, "the SMTP server closed the connection while \(command) waited for its reply", transient: true)
                        }
                        if let reply = try reader.consume(String(buffer: buffer)) { return reply }
                    }
                }
                func command(_ line: String, shown: String? = nil, expect: Int) async throws -> SMTPReply {
                    try await outbound.write(ByteBuffer(string: line + "\r\n"))
                    let name = shown ?? line
                    let answer = try await reply(to: name)
                    guard answer.code == expect || (expect == 250 && answer.code == 251) else {
                        throw NotifyError(.smtpReply, "\(name) failed: the server answered \(answer.summary)",
                                          transient: answer.isTransientFailure || !Self.isMessageCommand(name))
                    }
                    return answer
                }
                let greeting = try await reply(to: "the greeting")
                guard greeting.code == 220 else {
                    throw NotifyError(.smtpReply, "the SMTP server refused the session: \(greeting.summary)", transient: true)
                }
                var ehlo = try await command("EHLO \(heloName)", expect: 250)
                if settings.security == .starttls {
                    guard ehlo.extensions["STARTTLS"] != nil else {
                        throw NotifyError(.smtpUnsupported, "the SMTP server \(settings.host):\(settings.port) does not offer STARTTLS, which security \"starttls\" requires; nothing was sent in plain text (use a relay that offers it, or security \"tls\" on its TLS port)", transient: true)
                    }
                    try await armStartTLSGuard(on: channel.channel)
                    _ = try await command("STARTTLS", expect: 220)
                    step = "the TLS handshake after STARTTLS"
                    try await startTLS(on: channel.channel, context: tls)
                    ehlo = try await command("EHLO \(heloName)", expect: 250)
                }
                if let username = settings.username {
                    try await authenticate(username: username, offered: ehlo.extensions["AUTH"] ?? [], command: command)
                }
                _ = try await command("MAIL FROM:<\(settings.fromAddress)>", expect: 250)
                for recipient in recipients { _ = try await command("RCPT TO:<\(recipient)>", expect: 250) }
                _ = try await command("DATA", expect: 354)
                try await outbound.write(ByteBuffer(string: data + ".\r\n"))
                let accepted = try await reply(to: "the end of DATA")
                guard accepted.code == 250 else {
                    throw NotifyError(.smtpReply, "DATA failed: the server answered \(accepted.summary)", transient: accepted.isTransientFailure)
                }
                // The relay has the message: a failing QUIT changes nothing.
                _ = try? await command("QUIT", expect: 221)
            }
        } catch let error as NotifyError {
            throw error
        } catch let error as ChannelError {
            if case .connectTimeout = error {
                throw NotifyError(.timeout, "\(step) timed out after \(settings.timeoutMillis) ms", transient: true)
            }
            throw NotifyError(.connection, "\(step) failed: \(error)", transient: true)
        } catch let error as NIOSSLError {
            throw tlsFailure("\(error)")
        } catch let error as NIOSSLExtraError {
            throw tlsFailure("\(error)")
        } catch {
            throw NotifyError(.connection, "\(step) failed: \(error)", transient: true)
        }
    }

    /// A failed TLS handshake, in words: the certificate check, else BoringSSL's error.
    func tlsFailure(_ text: String) -> NotifyError {
        let why = text.contains("CERTIFICATE_VERIFY_FAILED") ? "the relay's certificate did not verify"
            : text.contains("failedToValidateHostname") ? "the relay's certificate is not for \(settings.host)" : text
        return NotifyError(.connection, "the TLS handshake with \(settings.host):\(settings.port) failed: \(why); the certificate must be valid for \(settings.host) and signed by \(settings.caFile.map { "the CA in \($0)" } ?? "a CA the system trusts (notifications.smtp.caFile names your own)"); nothing was sent", transient: true)
    }

    /// AUTH PLAIN, else LOGIN, as the server offers.
    func authenticate(username: String, offered: [String],
                      command: (String, String?, Int) async throws -> SMTPReply) async throws {
        let password = password ?? ""
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        if offered.contains("PLAIN") {
            _ = try await command("AUTH PLAIN " + b64("\0\(username)\0\(password)"), "AUTH PLAIN", 235)
        } else if offered.contains("LOGIN") {
            _ = try await command("AUTH LOGIN", nil, 334)
            _ = try await command(b64(username), "AUTH LOGIN (username)", 334)
            _ = try await command(b64(password), "AUTH LOGIN (password)", 235)
        } else {
            throw NotifyError(.smtpUnsupported, "AUTH failed: the SMTP server offers \(offered.isEmpty ? "no AUTH" : "AUTH " + offered.joined(separator: " ")), and this client speaks PLAIN and LOGIN", transient: true)
        }
    }

    /// Commands whose permanent failure is about this message (a recipient refused), not the relay or
    /// the settings: those deliveries go to the dead letters at once.
    static func isMessageCommand(_ name: String) -> Bool { name.hasPrefix("MAIL FROM") || name.hasPrefix("RCPT TO") }

    func makeTLSContext() throws(NotifyError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            do { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) } catch {
                throw NotifyError(.settings, "notifications.smtp.caFile: \(caFile) holds no PEM certificate (\(error))", transient: false)
            }
        }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw NotifyError(.settings, "notifications.smtp: cannot set up TLS: \(error)", transient: false)
        }
    }

    /// The name the certificate is checked for; an IP address is checked against the address dialed.
    var serverHostname: String? {
        settings.host.contains(":") || settings.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : settings.host
    }

    func connect(tls: NIOSSLContext?) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let timeout = TimeAmount.milliseconds(Int64(settings.timeoutMillis))
        let hostname = serverHostname
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname)) }
                    if tls == nil, settings.security == .starttls { try channel.pipeline.syncOperations.addHandler(StartTLSGuard()) }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 4096),
                        ReplyDeadlineHandler(timeoutMillis: settings.timeoutMillis))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Starts watching the plain bytes for what follows the reply to STARTTLS (RFC 3207 §5).
    func armStartTLSGuard(on channel: any Channel) async throws {
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: StartTLSGuard.self).isArmed = true
        }.get()
    }

    /// Puts TLS under the line decoder of a connection that just had `220` to STARTTLS, and returns
    /// once the handshake has completed.
    ///
    /// Anything the server sent after that `220` arrived in plain text and could be an attacker's
    /// (CVE-2021-33515): if any byte came, or any line is still unread, the session ends with a
    /// transient error and those bytes are never read as replies. The check and the insertion run
    /// in one event-loop turn, so no plain byte slips between them.
    ///
    /// Waiting for the handshake keeps its own error: a certificate that does not verify closes the
    /// connection, and the next command's write would otherwise fail first, with "I/O on closed
    /// channel" in place of the reason.
    func startTLS(on channel: any Channel, context: NIOSSLContext) async throws {
        let hostname = serverHostname
        let host = "\(settings.host):\(settings.port)"
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        // A promise never completed is a bug NIO stops on: fail it when the handler is not added.
        defer { handshake.fail(ChannelError.ioOnClosedChannel) }
        try await channel.eventLoop.submit {
            let guardHandler = try channel.pipeline.syncOperations.handler(type: StartTLSGuard.self)
            guard !guardHandler.sawBytesAfterReply else {
                throw NotifyError(.smtpProtocol, "the SMTP server \(host) sent data after its 220 to STARTTLS, before the TLS handshake (RFC 3207 forbids it: an injection attempt?); the session was ended and nothing was sent", transient: true)
            }
            guardHandler.isArmed = false
            let tls = try NIOSSLClientHandler(context: context, serverHostname: hostname)
            try channel.pipeline.syncOperations.addHandler(tls, position: .first)
            try channel.pipeline.syncOperations.addHandler(HandshakeWatch(handshake), position: .after(tls))
        }.get()
        try await handshake.futureResult.get()
    }
}

/// Completes its promise when the TLS handshake under it completes, and fails it with the
/// handshake's error, or when the connection closes first. It passes everything on.
final class HandshakeWatch: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var promise: EventLoopPromise<Void>?

    init(_ promise: EventLoopPromise<Void>) { self.promise = promise }

    private func finish(_ result: Result<Void, any Error>) {
        promise?.completeWith(result)
        promise = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { finish(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(ChannelError.ioOnClosedChannel))
    }
}

/// Watches the plain bytes of a STARTTLS session once armed (just before STARTTLS is sent): it
/// notes the end of the server's reply and whether any byte follows it before TLS starts.
final class StartTLSGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    var isArmed = false
    /// The bytes of the reply line being read, up to its 4th (the separator).
    var line: [UInt8] = []
    var replyEnded = false
    var sawBytesAfterReply = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isArmed {
            for byte in unwrapInboundIn(data).readableBytesView {
                if replyEnded {
                    sawBytesAfterReply = true
                    break
                }
                if byte == UInt8(ascii: "\n") {
                    // `220 go` or `220`: the last line; `220-…` continues.
                    if line.count < 4 || line[3] != UInt8(ascii: "-") { replyEnded = true }
                    line = []
                } else if line.count < 4 {
                    line.append(byte)
                }
            }
        }
        context.fireChannelRead(data)
    }
}

/// Deadlines for the server's replies, by the clock and not by the bytes: a relay that drips one
/// byte a second cannot hold a delivery longer than the settings allow.
///
/// Sits after the line decoder. Each reply (the greeting from the connection, then the answer to each
/// command written) must be complete within `timeoutMillis`, the reply to the end of DATA within 4
/// times it; the whole session within ``sessionFactor`` times it. A missed deadline is an error for
/// the session (`timeout`, transient) and closes the connection.
final class ReplyDeadlineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// The whole session's limit, in units of `timeoutMillis`.
    static let sessionFactor = 8
    let timeoutMillis: Int
    var reply: Scheduled<Void>?
    var session: Scheduled<Void>?

    init(timeoutMillis: Int) { self.timeoutMillis = timeoutMillis }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if session == nil { start(context) }
        context.fireChannelActive()
    }

    /// From the connection on: the session's deadline, and the greeting's.
    func start(_ context: ChannelHandlerContext) {
        let millis = timeoutMillis * Self.sessionFactor
        session = schedule(context, after: millis, NotifyError(.timeout, "the SMTP session took longer than \(millis) ms (\(Self.sessionFactor) × timeoutMillis)", transient: true))
        // The greeting is awaited from the start (the connection is made by then).
        arm(context, millis: timeoutMillis)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        reply?.cancel()
        session?.cancel()
    }

    func arm(_ context: ChannelHandlerContext, millis: Int) {
        guard reply == nil else { return }
        reply = schedule(context, after: millis, NotifyError(.timeout, "no complete reply from the SMTP server within \(millis) ms", transient: true))
    }

    func schedule(_ context: ChannelHandlerContext, after millis: Int, _ error: NotifyError) -> Scheduled<Void> {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: .milliseconds(Int64(millis))) {
            bound.value.fireErrorCaught(error)
            bound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data).readableBytesView
        // `250 ok` or `250` ends a reply; `250-…` continues it.
        if line.count < 4 || line[line.startIndex + 3] != UInt8(ascii: "-") {
            reply?.cancel()
            reply = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data).readableBytesView
        let endsData = bytes.count >= 5 && Array(bytes.suffix(5)) == Array("\r\n.\r\n".utf8)
        arm(context, millis: endsData ? timeoutMillis * 4 : timeoutMillis)
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply?.cancel()
        session?.cancel()
        context.fireChannelInactive()
    }
}
