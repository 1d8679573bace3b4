import Foundation
import TicketStore

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
        guard let text = try store.localSetting(.mirror) else { return nil }
        return try? JSONDecoder().decode(MirrorReport.self, from: Data(text.utf8))
    }

    /// Replaces the report in `store`.
    public func write(to store: TicketDatabase) throws {
        try store.setLocalSetting(.mirror, to: String(decoding: try JSONEncoder().encode(self), as: UTF8.self))
    }
}
