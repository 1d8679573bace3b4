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
    /// Tickets whose dashboard facts were mirrored since this run started.
    public var facts = 0
    /// The last feed number of the dashboard's facts that is mirrored (`nil`: facts not mirrored yet).
    public var factCursor: Int64?
    /// Tickets whose facts are not mirrored yet: derived and not copied, or waiting to be derived.
    public var factsBehind: Int64?

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

extension MirrorStatus {
    /// Reads a report written by this version or an earlier one (which had no fact figures, and
    /// always a lag).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        target = try c.decode(String.self, forKey: .target)
        connected = try c.decode(Bool.self, forKey: .connected)
        // Absent (or null) while the lag is unknown.
        behindBlocks = try c.decodeIfPresent(Int64.self, forKey: .behindBlocks)
        behindSeconds = try c.decodeIfPresent(Double.self, forKey: .behindSeconds)
        cursors = try c.decode([String: Int64].self, forKey: .cursors)
        batches = try c.decode(Int.self, forKey: .batches)
        blocks = try c.decode(Int.self, forKey: .blocks)
        tickets = try c.decode(Int.self, forKey: .tickets)
        events = try c.decode(Int.self, forKey: .events)
        customers = try c.decode(Int.self, forKey: .customers)
        articles = try c.decode(Int.self, forKey: .articles)
        lastError = try c.decodeIfPresent(String.self, forKey: .lastError)
        facts = try c.decodeIfPresent(Int.self, forKey: .facts) ?? 0
        factCursor = try c.decodeIfPresent(Int64.self, forKey: .factCursor)
        factsBehind = try c.decodeIfPresent(Int64.self, forKey: .factsBehind)
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
