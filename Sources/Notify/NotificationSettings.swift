import Foundation

/// The `notifications` section of node.json: where the node's dispatcher sends the outbox.
///
/// ```json
/// "notifications": {
///   "smtp": {"host": "relay.example.org", "port": 587, "security": "starttls", "username": "tierline",
///            "passwordFile": "/etc/tierline/smtp-password", "from": "Help desk <help@example.org>"},
///   "webhooks": [{"name": "oncall", "url": "https://bridge.example.org/tierline", "secretFile": "/etc/tierline/oncall.whsec"}],
///   "maxAttempts": 8, "backoffMinMillis": 1000, "backoffMaxMillis": 600000, "pollMillis": 1000, "webhookTimeoutMillis": 10000,
///   "keepSentDays": 30
/// }
/// ```
///
/// Secrets are never in the file itself: `passwordFile` and `secretFile` name files that only the
/// node's user can read; ``loadSecrets()`` reads them at startup. Every setting left out keeps its
/// default.
public struct NotificationSettings: Sendable, Codable, Equatable {
    /// The mail relay; `nil` for none (then `email` deliveries go to the dead letters, saying so).
    public var smtp: SMTPSettings?
    /// The webhooks that `webhook:NAME` channels name.
    public var webhooks: [WebhookSettings] = []
    /// Attempts before a delivery is dead (1…100).
    public var maxAttempts = 8
    /// Bounds of the wait before a retry, ms: it doubles from the minimum each attempt, with jitter,
    /// up to the maximum.
    public var backoffMinMillis = 1000
    public var backoffMaxMillis = 600_000
    /// Longest sleep between two looks at the outbox, ms (a notice written by another process, such as
    /// the CLI, is picked up within it): 10…1000.
    public var pollMillis = 1000
    /// Longest wait for a webhook receiver's answer, ms (100…120000); past it the attempt is retried.
    public var webhookTimeoutMillis = 10_000
    /// Days a sent delivery (with its body, customer text) stays in the outbox (1…3650): the
    /// dispatcher deletes older ones, at most once a minute. Dead ones stay until retried or pruned
    /// with `tierline outbox prune --dead`.
    public var keepSentDays = 30

    public init(_ configure: (inout NotificationSettings) -> Void = { _ in }) { configure(&self) }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case smtp, webhooks, maxAttempts, backoffMinMillis, backoffMaxMillis, pollMillis, webhookTimeoutMillis, keepSentDays
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = NotificationSettings()
        smtp = try c.decodeIfPresent(SMTPSettings.self, forKey: .smtp)
        webhooks = try c.decodeIfPresent([WebhookSettings].self, forKey: .webhooks) ?? defaults.webhooks
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? defaults.maxAttempts
        backoffMinMillis = try c.decodeIfPresent(Int.self, forKey: .backoffMinMillis) ?? defaults.backoffMinMillis
        backoffMaxMillis = try c.decodeIfPresent(Int.self, forKey: .backoffMaxMillis) ?? defaults.backoffMaxMillis
        pollMillis = try c.decodeIfPresent(Int.self, forKey: .pollMillis) ?? defaults.pollMillis
        webhookTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .webhookTimeoutMillis) ?? defaults.webhookTimeoutMillis
        keepSentDays = try c.decodeIfPresent(Int.self, forKey: .keepSentDays) ?? defaults.keepSentDays
    }

    /// The names a configuration file may use, by place, for a strict reader's unknown-setting check.
    public static let knownNames: [String: Set<String>] = [
        "": Set(CodingKeys.allCases.map(\.rawValue)),
        "smtp": Set(SMTPSettings.CodingKeys.allCases.map(\.rawValue)),
        "webhooks[]": Set(WebhookSettings.CodingKeys.allCases.map(\.rawValue)),
    ]

    /// Checks bounds and combinations that JSON types alone do not (files are read by ``loadSecrets()``).
    /// - Throws: ``NotifyError`` with code `settings`, naming the setting.
    public func validate() throws(NotifyError) {
        func bad(_ text: String) -> NotifyError { NotifyError(.settings, "notifications." + text, transient: false) }
        guard (1...100).contains(maxAttempts) else { throw bad("maxAttempts must be between 1 and 100") }
        guard backoffMinMillis >= 10, backoffMaxMillis >= backoffMinMillis, backoffMaxMillis <= 86_400_000 else {
            throw bad("backoffMinMillis must be at least 10 and at most backoffMaxMillis (at most 86400000)")
        }
        guard (10...1000).contains(pollMillis) else { throw bad("pollMillis must be between 10 and 1000") }
        guard (100...120_000).contains(webhookTimeoutMillis) else { throw bad("webhookTimeoutMillis must be between 100 and 120000") }
        guard (1...3650).contains(keepSentDays) else { throw bad("keepSentDays must be between 1 and 3650") }
        var names = Set<String>()
        for (index, hook) in webhooks.enumerated() {
            guard hook.name.range(of: #"^[a-z0-9][a-z0-9._-]{0,63}$"#, options: .regularExpression) != nil else {
                throw bad("webhooks[\(index)].name must be 1 to 64 of a-z, 0-9, . _ - (it is the NAME of webhook:NAME)")
            }
            guard names.insert(hook.name).inserted else { throw bad("webhooks[\(index)].name \(hook.name) is given twice") }
            guard let url = URL(string: hook.url), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http", url.host != nil else {
                throw bad("webhooks[\(index)].url must be an http(s) URL, for example https://bridge.example.org/tierline")
            }
        }
        if let smtp { try smtp.validate() }
    }

    /// The same settings with relative file names taken relative to `folder` (the configuration
    /// file's folder).
    public func resolvingPaths(relativeTo folder: String) -> NotificationSettings {
        func resolve(_ path: String?) -> String? {
            guard let path, !path.hasPrefix("/") else { return path }
            return URL(fileURLWithPath: folder).appendingPathComponent(path).standardizedFileURL.path
        }
        var copy = self
        copy.smtp?.passwordFile = resolve(smtp?.passwordFile)
        copy.smtp?.caFile = resolve(smtp?.caFile)
        copy.webhooks = webhooks.map { hook in
            var hook = hook
            hook.secretFile = resolve(hook.secretFile) ?? hook.secretFile
            return hook
        }
        return copy
    }

    /// Reads every secret file the settings name: what the dispatcher sends with.
    ///
    /// Runs once at startup, so a missing or unreadable file stops `serve` with a clear error instead
    /// of failing each delivery later.
    /// - Throws: ``NotifyError`` (code `settings`) naming the setting and the file.
    public func loadSecrets() throws(NotifyError) -> NotificationSecrets {
        try validate()
        var secrets = NotificationSecrets()
        if let smtp, let file = smtp.passwordFile {
            secrets.smtpPassword = try Self.readSecret(file, setting: "notifications.smtp.passwordFile")
        }
        for (index, hook) in webhooks.enumerated() {
            let setting = "notifications.webhooks[\(index)].secretFile"
            let text = try Self.readSecret(hook.secretFile, setting: setting)
            guard let key = WebhookSignature.key(fromSecret: text) else {
                throw NotifyError(.settings, "\(setting): \(hook.secretFile) does not hold a Standard Webhooks secret (whsec_ then base64 of 24 to 64 random bytes); make one with: echo whsec_$(openssl rand -base64 32) > \(hook.secretFile)", transient: false)
            }
            secrets.webhookKeys[hook.name] = key
        }
        if let smtp, let caFile = smtp.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw NotifyError(.settings, "notifications.smtp.caFile: cannot read \(caFile); name a PEM file of the CA that signs the relay's certificate", transient: false)
            }
            // Parses the CA file now, so a bad one stops serve instead of killing every e-mail.
            _ = try SMTPClient(settings: smtp, password: nil).makeTLSContext()
        }
        return secrets
    }

    static func readSecret(_ path: String, setting: String) throws(NotifyError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NotifyError(.settings, "\(setting): cannot read \(path); the secret lives in that file, readable by the node's user only", transient: false)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw NotifyError(.settings, "\(setting): \(path) is empty", transient: false) }
        return text
    }
}

/// How the SMTP connection is protected.
public enum SMTPSecurity: String, Sendable, Codable, CaseIterable {
    /// Plain connect, then STARTTLS, required: a server that does not offer it gets no mail (port 587).
    case starttls
    /// TLS from the first byte (port 465).
    case tls
    /// No TLS: only for a relay on the same host or network, and only without a username (a password
    /// is never sent in the clear).
    case none

    public init(from decoder: any Decoder) throws {
        let text = try String(from: decoder)
        guard let value = SMTPSecurity(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "security must be \"starttls\", \"tls\" or \"none\", not \(text.debugDescription)"))
        }
        self = value
    }
}

/// The mail relay of ``NotificationSettings``.
public struct SMTPSettings: Sendable, Codable, Equatable {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    /// The AUTH user; `nil` for a relay that takes mail without AUTH.
    public var username: String?
    /// The file holding the AUTH password (required with ``username``).
    public var passwordFile: String?
    /// The sender: `help@example.org` or `Help desk <help@example.org>`.
    public var from: String
    /// PEM file of the CA that signs the relay's certificate, for an organisation's own CA; `nil` for
    /// the system's trust roots. Verification is never turned off.
    public var caFile: String?
    /// Longest wait for the connection and for each complete reply, ms, however slowly its bytes come
    /// (the DATA reply may take 4 times it); a whole session may take at most 8 times it.
    public var timeoutMillis: Int

    public init(host: String, port: Int? = nil, security: SMTPSecurity = .starttls, username: String? = nil, passwordFile: String? = nil,
                from: String, caFile: String? = nil, timeoutMillis: Int = 30_000) {
        self.host = host
        self.port = port ?? (security == .tls ? 465 : 587)
        self.security = security
        self.username = username
        self.passwordFile = passwordFile
        self.from = from
        self.caFile = caFile
        self.timeoutMillis = timeoutMillis
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, security, username, passwordFile, from, caFile, timeoutMillis
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let security = try c.decodeIfPresent(SMTPSecurity.self, forKey: .security) ?? .starttls
        self.init(host: try c.decode(String.self, forKey: .host), port: try c.decodeIfPresent(Int.self, forKey: .port), security: security,
                  username: try c.decodeIfPresent(String.self, forKey: .username),
                  passwordFile: try c.decodeIfPresent(String.self, forKey: .passwordFile), from: try c.decode(String.self, forKey: .from),
                  caFile: try c.decodeIfPresent(String.self, forKey: .caFile),
                  timeoutMillis: try c.decodeIfPresent(Int.self, forKey: .timeoutMillis) ?? 30_000)
    }

    /// The address of ``from`` (`help@example.org` of `Help desk <help@example.org>`), for MAIL FROM.
    public var fromAddress: String {
        if let open = from.lastIndex(of: "<"), let close = from.lastIndex(of: ">"), open < close {
            return String(from[from.index(after: open)..<close])
        }
        return from.trimmingCharacters(in: .whitespaces)
    }

    func validate() throws(NotifyError) {
        func bad(_ text: String) -> NotifyError { NotifyError(.settings, "notifications.smtp." + text, transient: false) }
        guard !host.isEmpty else { throw bad("host is empty") }
        guard (1...65535).contains(port) else { throw bad("port must be between 1 and 65535") }
        guard (100...600_000).contains(timeoutMillis) else { throw bad("timeoutMillis must be between 100 and 600000") }
        guard (try? MailAddress.check(fromAddress, field: "from")) != nil, !from.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw bad("from must be an address, as help@example.org or \"Help desk <help@example.org>\"")
        }
        if username != nil, passwordFile == nil { throw bad("passwordFile is required with username (the file holding the password)") }
        if username == nil, passwordFile != nil { throw bad("username is required with passwordFile") }
        if security == .none, username != nil {
            throw bad("security \"none\" cannot be used with a username: the password would cross the network in the clear; use \"starttls\" or \"tls\"")
        }
    }
}

/// A webhook of ``NotificationSettings``: deliveries on channel `webhook:NAME` go to its URL, signed
/// with the secret in its file.
public struct WebhookSettings: Sendable, Codable, Equatable {
    public var name: String
    public var url: String
    /// The file holding the signing secret, `whsec_` then base64 (Standard Webhooks).
    public var secretFile: String

    public init(name: String, url: String, secretFile: String) {
        self.name = name
        self.url = url
        self.secretFile = secretFile
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case name, url, secretFile }
}

/// The secrets of ``NotificationSettings``, read from their files: kept in memory only, never
/// printed or written anywhere.
public struct NotificationSecrets: Sendable {
    public var smtpPassword: String?
    /// Signing keys of the webhooks, by name.
    public var webhookKeys: [String: [UInt8]] = [:]
    public init() {}
}

/// Secrets print which ones are set, never their bytes: a `dump`, a log line or an error that
/// includes them shows `redacted`.
extension NotificationSecrets: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "NotificationSecrets(smtp password \(smtpPassword == nil ? "not set" : "redacted"), webhook keys \(webhookKeys.isEmpty ? "none" : webhookKeys.keys.sorted().joined(separator: ",") + " redacted"))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["secrets": description], displayStyle: .struct) }
}
