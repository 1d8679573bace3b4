import Crypto
import Escalation
import Foundation
import HummingbirdBcrypt
import StrictJSON
import TicketModel
import TicketStore

/// What a signed-in agent may do in the workspace and its API. Every agent may read and work
/// tickets; the rest is decided by the agent's `role` (agent < lead < manager) or granted one by one
/// through its free-form `roles` (a `roles` entry equal to the permission's name).
public enum Permission: String, Sendable, CaseIterable, Codable {
    /// Read tickets, reply, write internal notes, change fields and tags, transfer within the site,
    /// acknowledge a page, link an article.
    case work
    /// Escalate a ticket to another tier with a handoff note.
    case escalate
    /// Accept or reject a handoff asked of this site, or withdraw one.
    case handoffs
    /// Write a knowledge article from a ticket (it is published to every site).
    case articles
    /// See the fleet dashboard, its JSON API and CSV export.
    case dashboard

    /// The lowest role that has the permission without a grant.
    public var minimumRole: AgentRole {
        switch self {
        case .work, .escalate: .agent
        case .handoffs, .articles: .lead
        case .dashboard: .manager
        }
    }
}

/// An agent at this node after sign-in: who, and how the request proved it.
public struct SignedIn: Sendable, Equatable {
    public enum Proof: Sendable, Equatable {
        /// A browser session; writes must carry the session's anti-forgery token.
        case session(csrf: String)
        /// An API token in `Authorization: Bearer`.
        case token
    }

    public var agent: AgentDocument
    public var proof: Proof
    /// The time zone of the agent's working calendar (an IANA name), when it has one: the pages show
    /// times in it; otherwise in the browser's.
    public var timeZone: String? = nil

    public var name: String { agent.name }

    /// Whether the agent's role or grants allow `permission`.
    public func may(_ permission: Permission) -> Bool {
        Self.rank(agent.role) >= Self.rank(permission.minimumRole) || agent.roles.contains(permission.rawValue)
    }

    static func rank(_ role: AgentRole) -> Int {
        switch role {
        case .agent: 0
        case .lead: 1
        case .manager: 2
        }
    }

    /// Refuses with `notPermitted` unless the agent may do `permission`.
    public func require(_ permission: Permission) throws(DeskError) {
        guard may(permission) else {
            throw DeskError(.notPermitted, "agent \(name) (role \(agent.role.rawValue)) may not do this: it needs role \(permission.minimumRole.rawValue) "
                            + "or the grant \"\(permission.rawValue)\" in the agent's roles (`tierline agent add` publishes them)")
        }
    }
}

/// A browser session just opened: the secret for the cookie, and the anti-forgery token.
public struct NewSession: Sendable {
    public var secret: String
    public var csrf: String
    public var agent: AgentDocument
    public var expiresAt: Int64
}

/// Sign-in at this node: agents' passwords (bcrypt), their API tokens, and browser sessions. All of
/// it is kept by this node alone, in local tables no block carries: an agent signs in at the node
/// that set its password or issued its token.
///
/// Only active agents of the published directory sign in; deactivating an agent shuts it out
/// everywhere at once, because every check reads the directory again.
public struct AccessDesk: Sendable {
    public let agents: AgentDesk
    /// bcrypt's cost (log2 of its rounds). 12 takes a few hundred milliseconds of one core.
    public let cost: UInt8
    /// How long a browser session lasts without signing in again.
    public static let sessionMillis: Int64 = 12 * 3_600_000
    /// The fewest characters a password may have.
    public static let minimumPasswordLength = 10

    public init(store: TicketDatabase, cost: UInt8 = 12) throws {
        agents = try AgentDesk(store: store)
        self.cost = cost
    }

    public var store: TicketDatabase { agents.store }

    /// The active agent `name`, or a refusal naming what is wrong.
    func activeAgent(_ name: String) throws -> AgentDocument {
        try AgentDesk.checkName(name, field: "agent")
        let directory = try agents.directory()
        guard let agent = directory.agent(name) else {
            throw DeskError(.notFound, field: "agent", "no agent \(name.debugDescription) in the directory"
                            + (directory.suggestion(for: name).map { "; did you mean \"\($0)\"?" } ?? "; `tierline agent add` adds one"))
        }
        guard agent.active else { throw DeskError(.wrongState, field: "agent", "agent \(name) is deactivated; it cannot sign in") }
        return agent
    }

    /// Sets `name`'s password at this node and signs out its sessions here.
    /// - Throws: `invalidInput` for a password shorter than ``minimumPasswordLength`` characters,
    ///   longer than bcrypt's 72 bytes, or holding control characters; `notFound` / `wrongState`
    ///   for an agent that is not active in the directory.
    public func setPassword(_ name: String, password: String, now: Int64) throws {
        _ = try activeAgent(name)
        guard password.count >= Self.minimumPasswordLength else {
            throw DeskError(.invalidInput, field: "password", "is \(password.count) characters; use at least \(Self.minimumPasswordLength)")
        }
        guard password.utf8.count <= 72 else {
            throw DeskError(.invalidInput, field: "password", "is \(password.utf8.count) bytes; bcrypt reads only the first 72, so use at most 72")
        }
        guard !password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw DeskError(.invalidInput, field: "password", "holds a control character (a tab or a line break?); type it again")
        }
        let hash = Bcrypt.hash(password, cost: cost)
        try DeskError.translating { try store.setPasswordHash(hash, of: name, now: now) }
    }

    /// Opens a browser session for `name` when `password` is its password at this node.
    /// - Throws: `notPermitted` with one message for every failure (no such agent, deactivated, no
    ///   password here, wrong password), so that a stranger learns nothing about which names exist.
    public func signIn(_ name: String, password: String, now: Int64) throws -> NewSession {
        let refusal = DeskError(.notPermitted, "wrong agent name or password (an agent's password is set at its node with `tierline agent password NAME`)")
        let directory = try agents.directory()
        let stored = try DeskError.translating { try store.passwordHash(of: name) }
        // The same bcrypt work whether or not the agent has a password here.
        let matches = Bcrypt.verify(password, hash: stored ?? Self.decoyHash)
        guard let stored, !stored.isEmpty, matches, let agent = directory.agent(name), agent.active else { throw refusal }
        let secret = Self.randomSecret()
        let csrf = Self.randomSecret()
        let expires = now + Self.sessionMillis
        try DeskError.translating { try store.addAgentSession(digest: Self.digest(secret), agent: name, agentVersion: agent.version, csrf: csrf, now: now, expiresAt: expires) }
        return NewSession(secret: secret, csrf: csrf, agent: agent, expiresAt: expires)
    }

    /// The agent of a session cookie's secret, if the session is live and the agent still active.
    public func session(_ secret: String, now: Int64) throws -> SignedIn? {
        guard Self.isWellFormed(secret) else { return nil }
        guard let row = try DeskError.translating({ try store.agentSession(digest: Self.digest(secret), now: now) }) else { return nil }
        return try signedIn(row.agent, since: row.agentVersion, proof: .session(csrf: row.csrf))
    }

    /// Ends the session of a cookie's secret (signing out). Unknown secrets are ignored.
    public func signOut(_ secret: String) throws {
        guard Self.isWellFormed(secret) else { return }
        try DeskError.translating { try store.removeAgentSession(digest: Self.digest(secret)) }
    }

    /// Issues a new API token for `name`. The secret is returned once and kept here only as a digest.
    public func issueToken(_ name: String, label: String, now: Int64) throws -> String {
        let agent = try activeAgent(name)
        let label = label.trimmingCharacters(in: .whitespaces)
        guard !label.isEmpty, label.count <= 100, !label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw DeskError(.invalidInput, field: "label", "say what the token is for in 1 to 100 printable characters")
        }
        let secret = "tla_" + Self.randomSecret()
        try DeskError.translating { try store.addAgentToken(digest: Self.digest(secret), agent: name, agentVersion: agent.version, label: label, now: now) }
        return secret
    }

    /// The agent of an API token, if the token is known and the agent still active.
    public func agent(token: String, now: Int64) throws -> SignedIn? {
        guard token.hasPrefix("tla_"), Self.isWellFormed(String(token.dropFirst(4))) else { return nil }
        guard let found = try DeskError.translating({ try store.agentForToken(digest: Self.digest(token), now: now) }) else { return nil }
        return try signedIn(found.agent, since: found.agentVersion, proof: .token)
    }

    /// `name` as signed in, read from the directory now: `nil` when it is no longer an active agent, or
    /// was deactivated at any version after `since` (the version the credential was given under), so
    /// that adding an agent again does not bring back what it held before.
    func signedIn(_ name: String, since: Int, proof: SignedIn.Proof) throws -> SignedIn? {
        let library = try agents.escalation.library()
        guard let agent = AgentDirectory(library: library).agent(name), agent.active else { return nil }
        for version in stride(from: since + 1, to: agent.version, by: 1) {
            if case .agent(let earlier) = library.document(.agent, name, version: version), !earlier.active { return nil }
        }
        let zone = agent.calendar.flatMap(library.currentPin(calendar:)).flatMap(library.calendar)?.timeZone
        return SignedIn(agent: agent, proof: proof, timeZone: zone)
    }

    /// A new random password of 20 characters from an alphabet without look-alikes (about 113 bits),
    /// for `tierline agent password --generate` and the demo's manager.
    public static func generatePassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// 32 random bytes from the system's generator, base64url without padding (43 characters).
    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func isWellFormed(_ secret: String) -> Bool {
        secret.utf8.count == 43 && secret.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
        }
    }

    static func digest(_ secret: String) -> Data { Data(SHA256.hash(data: Data(secret.utf8))) }

    /// A bcrypt hash of a password nobody has, checked when a name has none so that a failed sign-in
    /// takes as long for an unknown name as for a known one.
    static let decoyHash = Bcrypt.hash(randomSecret(), cost: 12)
}
