/// Why a notice was not delivered, or why the notification settings cannot be used.
///
/// The dispatcher writes ``description`` to the outbox row's `lastError`, which `tierline outbox
/// list` shows: it names the step that failed (the SMTP command, the HTTP status) and the server's
/// own words, never the notice's text or a secret.
public struct NotifyError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A setting or a secret file is missing or wrong; the detail names the setting.
        case settings
        /// A header value or an address that would change the message's shape (CR, LF, `<>`).
        case invalidMessage
        /// The SMTP server answered a command with an error reply.
        case smtpReply
        /// The SMTP server does not offer what the settings require (STARTTLS, an AUTH mechanism).
        case smtpUnsupported
        /// The SMTP server sent something that is not an SMTP reply.
        case smtpProtocol
        /// The connection, the TLS handshake or a reply took longer than the settings allow.
        case timeout
        /// Connecting or TLS failed.
        case connection
        /// The webhook receiver answered with a status that is not 2xx.
        case httpStatus
        /// The channel names a webhook or an integration this node cannot send to.
        case unknownChannel
    }

    public var code: Code
    public var detail: String
    /// Whether a later attempt may succeed (a 4xx SMTP reply, a 5xx HTTP status, a timeout); `false`
    /// sends the delivery to the dead letters at once.
    public var isTransient: Bool

    public init(_ code: Code, _ detail: String, transient: Bool) {
        self.code = code
        self.detail = detail
        self.isTransient = transient
    }

    public var description: String { detail }
}
