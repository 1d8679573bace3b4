import Foundation
import TicketModel

/// What a running node reports about its links, for `tierline status`: the peers it dials (with
/// those that never connected) and the sites it has a session open with now, so an idle link is
/// told from a stale one. Kept in the store's local settings, never replicated; the node rewrites
/// it when a link changes and every few seconds while it runs.
public struct NodeLinks: Codable, Sendable, Equatable {
    /// One configured peer, as the node's dialer sees it.
    public struct Dialed: Codable, Sendable, Equatable {
        /// `HOST:PORT` as configured.
        public var address: String
        /// `connecting`, `connected` or `waiting` (between attempts).
        public var state: String
        /// The site that answered there, once a session opened.
        public var site: String?
        /// Whether a session with this address ever opened since the node started.
        public var everConnected: Bool
        /// Why the last attempt failed, while waiting.
        public var lastError: String?
        /// When the dialer tries again, ms since 1970, while waiting.
        public var nextAttempt: UInt64?

        public init(address: String, state: String, site: String? = nil, everConnected: Bool = false,
                    lastError: String? = nil, nextAttempt: UInt64? = nil) {
            (self.address, self.state, self.site, self.everConnected) = (address, state, site, everConnected)
            (self.lastError, self.nextAttempt) = (lastError, nextAttempt)
        }
    }

    /// When the node wrote this, ms since 1970: a report much older than ``heartbeatMillis`` comes
    /// from a node that no longer runs.
    public var writtenAt: UInt64
    public var dialed: [Dialed]
    /// Sites with a session open now, dialed or accepted.
    public var connected: [String]

    /// How often a running node rewrites the report.
    public static let heartbeatMillis: UInt64 = 5_000

    public init(writtenAt: UInt64, dialed: [Dialed], connected: [String]) {
        (self.writtenAt, self.dialed, self.connected) = (writtenAt, dialed, connected)
    }

    /// Whether the node that wrote this still runs, judged at `now` (ms): it wrote within three heartbeats.
    public func isLive(at now: UInt64) -> Bool { now <= writtenAt || now - writtenAt <= 3 * Self.heartbeatMillis }

    /// `open` while the running node has a session with `site` (an idle one too, however old its
    /// `lastSeen`), `closed` when it has none; `nil` when the node no longer runs at `now`.
    public func session(with site: String, at now: UInt64) -> String? {
        guard isLive(at: now) else { return nil }
        return connected.contains(site) ? "open" : "closed"
    }

    /// The dialed addresses no session has opened with: neither their address nor the site that
    /// answered there is in the peer table.
    public func neverConnected(given peers: [PeerRecord]) -> [Dialed] {
        dialed.filter { link in !peers.contains { $0.address == link.address || $0.site.rawValue == link.site } }
    }
}

extension TicketDatabase {
    /// The links the node serving this store last reported; `nil` when no node has run on it.
    public func nodeLinks() throws -> NodeLinks? {
        guard let text = try localSetting(.links) else { return nil }
        return try? JSONDecoder().decode(NodeLinks.self, from: Data(text.utf8))
    }

    /// Replaces the node's link report (`nil` clears it, as a node does when it stops).
    public func setNodeLinks(_ links: NodeLinks?) throws {
        let text = try links.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try setLocalSetting(.links, to: text)
    }
}
