import Foundation
import GRDB

// The PostgreSQL mirror's state as a node keeps it in the store's local settings: written by the
// Mirror module, read by `tierline status` and the dashboard, so the one type lives with the store.

/// Where a mirror stands: what it has copied, how far behind the store it is, whether it is connected.
public struct MirrorStatus: Sendable, Equatable, Codable {
    /// The target, without its password.
    public var target: String
    public var connected: Bool
    /// Blocks of the store's log not mirrored yet; `nil` while unknown: before the mirror's first
    /// connection, when no earlier report of the same target and schema gave its cursors.
    public var behindBlocks: Int64?
    /// Seconds between the oldest block not mirrored and now (0 when none is behind); `nil` while
    /// unknown, as ``behindBlocks``.
    public var behindSeconds: Double?
    /// Per origin site, the highest seq mirrored; meaningful only while the lag is known
    /// (``isLagKnown``): before that it is empty, which says nothing about PostgreSQL.
    public var cursors: [String: Int64]
    /// Since this run started.
    public var batches: Int
    public var blocks: Int
    public var tickets: Int
    public var events: Int
    public var customers: Int
    public var articles: Int
    /// The last error, while the mirror retries.
    public var lastError: String?

    /// Whether ``cursors`` are PostgreSQL's (read there, or from an earlier report of the same
    /// target), so that the lag measured from them means something.
    public var isLagKnown: Bool { behindBlocks != nil }

    public init(target: String) {
        self.target = target
        connected = false
        behindBlocks = nil
        behindSeconds = nil
        cursors = [:]
        batches = 0
        blocks = 0
        tickets = 0
        events = 0
        customers = 0
        articles = 0
    }
}

/// What a node that runs the mirror (node.json's `mirror` section) last reported about it, for
/// `tierline status`: kept in the store's local settings, never replicated, rewritten when the
/// mirror's state changes and every few seconds while it runs.
public struct MirrorReport: Codable, Sendable, Equatable {
    /// When the node wrote this, ms since 1970.
    public var writtenAt: UInt64
    public var status: MirrorStatus

    /// How often a running node rewrites the report.
    public static let heartbeatMillis: UInt64 = 5_000

    public init(writtenAt: UInt64, status: MirrorStatus) {
        self.writtenAt = writtenAt
        self.status = status
    }

    /// Whether the node that wrote this still runs, judged at `now` (ms): it wrote within three heartbeats.
    public func isLive(at now: UInt64) -> Bool { now <= writtenAt || now - writtenAt <= 3 * Self.heartbeatMillis }

    /// The report the node serving `store` last wrote; `nil` when none has run a mirror on it.
    public static func read(from store: TicketDatabase) throws -> MirrorReport? {
        try store.localSetting(.mirror).flatMap(decode)
    }

    /// The report in the store `db` reads (the dashboard's reads); `nil` when none.
    package static func read(_ db: Database) throws -> MirrorReport? {
        try String.fetchOne(db, sql: "SELECT value FROM localSetting WHERE name = ?", arguments: [LocalSetting.mirror.rawValue]).flatMap(decode)
    }

    private static func decode(_ text: String) -> MirrorReport? { try? JSONDecoder().decode(MirrorReport.self, from: Data(text.utf8)) }

    /// Replaces the report in `store`.
    public func write(to store: TicketDatabase) throws {
        try store.setLocalSetting(.mirror, to: String(decoding: try JSONEncoder().encode(self), as: UTF8.self))
    }
}
