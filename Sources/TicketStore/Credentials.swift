import Foundation
import GRDB

/// An agent's API token as listed (never the secret: only its digest is kept).
public struct AgentTokenInfo: Sendable, Equatable, Codable {
    /// The first 8 hex digits of the digest: enough to name a token to revoke.
    public var id: String
    public var agent: String
    public var label: String
    public var createdAt: Int64
    public var lastUsedAt: Int64?
}

/// A signed-in browser session as the store keeps it.
public struct AgentSessionRow: Sendable, Equatable {
    public var agent: String
    /// The agent document's version when the session was opened.
    public var agentVersion: Int
    /// The session's anti-forgery token: every form and script write must echo it.
    public var csrf: String
    public var expiresAt: Int64
}

/// How agents sign in at this node: password hashes, API token digests and browser sessions, in
/// local tables that no block carries. The hashing is the Desk's; the store keeps what it is given.
extension TicketDatabase {
    /// The bcrypt hash of `agent`'s password at this node, or `nil`.
    public func passwordHash(of agent: String) throws -> String? {
        try writer.read { db in try String.fetchOne(db, sql: "SELECT hash FROM agentPassword WHERE agent = ?", arguments: [agent]) }
    }

    /// Sets `agent`'s password hash and ends every session it has here (a changed password signs
    /// everyone out of that account).
    public func setPasswordHash(_ hash: String, of agent: String, now: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO agentPassword (agent, hash, changedAt) VALUES (?, ?, ?)", arguments: [agent, hash, now])
            try db.execute(sql: "DELETE FROM agentSession WHERE agent = ?", arguments: [agent])
        }
    }

    /// Keeps a new API token's digest for `agent`.
    public func addAgentToken(digest: Data, agent: String, agentVersion: Int, label: String, now: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO agentToken (digest, agent, agentVersion, label, createdAt) VALUES (?, ?, ?, ?, ?)",
                           arguments: [digest, agent, agentVersion, label, now])
        }
    }

    /// The agent whose token has this digest, and the agent document's version it was issued under,
    /// noting its use; `nil` for no such token.
    public func agentForToken(digest: Data, now: Int64) throws -> (agent: String, agentVersion: Int)? {
        // A read first: a stranger's unknown tokens, and a busy script's known ones, cost no write.
        let found = try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT agent, agentVersion, lastUsedAt FROM agentToken WHERE digest = ?", arguments: [digest])
                .map { (agent: $0["agent"] as String, agentVersion: $0["agentVersion"] as Int, lastUsedAt: $0["lastUsedAt"] as Int64?) }
        }
        guard let found else { return nil }
        // Noted at most once a minute.
        if (found.lastUsedAt ?? .min) < now - 60_000 {
            try writer.write { db in
                try db.execute(sql: "UPDATE agentToken SET lastUsedAt = ? WHERE digest = ? AND (lastUsedAt IS NULL OR lastUsedAt < ?)",
                               arguments: [now, digest, now - 60_000])
            }
        }
        return (found.agent, found.agentVersion)
    }

    /// Every API token of `agent` (all agents' when `nil`), oldest first.
    public func agentTokens(of agent: String? = nil) throws -> [AgentTokenInfo] {
        try writer.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT digest, agent, label, createdAt, lastUsedAt FROM agentToken"
                                        + (agent == nil ? "" : " WHERE agent = ?") + " ORDER BY createdAt, digest",
                                        arguments: agent.map { [$0] } ?? [])
            return rows.map { row in
                let digest: Data = row["digest"]
                return AgentTokenInfo(id: digest.prefix(4).map { String(format: "%02x", $0) }.joined(), agent: row["agent"], label: row["label"],
                                      createdAt: row["createdAt"], lastUsedAt: row["lastUsedAt"])
            }
        }
    }

    /// Revokes `agent`'s tokens whose id (digest prefix) is `id`, or all of them when `id` is `nil`.
    /// - Returns: how many were revoked.
    @discardableResult
    public func revokeAgentTokens(of agent: String, id: String?) throws -> Int {
        try writer.write { db in
            let tokens = try Data.fetchAll(db, sql: "SELECT digest FROM agentToken WHERE agent = ?", arguments: [agent])
            let chosen = tokens.filter { digest in
                id.map { digest.prefix(4).map { String(format: "%02x", $0) }.joined() == $0.lowercased() } ?? true
            }
            for digest in chosen { try db.execute(sql: "DELETE FROM agentToken WHERE digest = ?", arguments: [digest]) }
            return chosen.count
        }
    }

    /// Keeps a new browser session; expired sessions are dropped on the way.
    public func addAgentSession(digest: Data, agent: String, agentVersion: Int, csrf: String, now: Int64, expiresAt: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM agentSession WHERE expiresAt <= ?", arguments: [now])
            try db.execute(sql: "INSERT INTO agentSession (digest, agent, agentVersion, csrf, createdAt, expiresAt) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [digest, agent, agentVersion, csrf, now, expiresAt])
        }
    }

    /// The live session with this digest, or `nil` (unknown or expired).
    public func agentSession(digest: Data, now: Int64) throws -> AgentSessionRow? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT agent, agentVersion, csrf, expiresAt FROM agentSession WHERE digest = ? AND expiresAt > ?",
                             arguments: [digest, now])
                .map { AgentSessionRow(agent: $0["agent"], agentVersion: $0["agentVersion"], csrf: $0["csrf"], expiresAt: $0["expiresAt"]) }
        }
    }

    /// Ends one session (signing out).
    public func removeAgentSession(digest: Data) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM agentSession WHERE digest = ?", arguments: [digest]) }
    }
}
