import NIOConcurrencyHelpers
import TicketModel
import TicketStore

/// The state of a node's dialers, written to the store as ``NodeLinks`` for `tierline status`: which
/// configured peers are connected, which wait for their next attempt (and why), and which never
/// connected. Written when something changed, and every ``NodeLinks/heartbeatMillis`` so a reader
/// can tell a running node from one that stopped.
final class LinkBoard: Sendable {
    private struct State {
        var dialed: [NodeLinks.Dialed]
        var changed = true
        var writtenAt: UInt64 = 0
        var connected: Set<SiteID> = []
    }

    private let state: NIOLockedValueBox<State>

    init(addresses: [String]) {
        state = NIOLockedValueBox(State(dialed: addresses.map { NodeLinks.Dialed(address: $0, state: "connecting") }))
    }

    private func update(_ address: String, _ change: (inout NodeLinks.Dialed) -> Void) {
        state.withLockedValue { state in
            guard let index = state.dialed.firstIndex(where: { $0.address == address }) else { return }
            change(&state.dialed[index])
            state.changed = true
        }
    }

    func attempting(_ address: String) {
        update(address) { $0.state = "connecting"; $0.nextAttempt = nil }
    }

    func connected(_ address: String) {
        update(address) { $0.state = "connected"; $0.nextAttempt = nil }
    }

    /// An attempt or a session ended; the dialer tries again at `until`.
    func waiting(_ address: String, site: SiteID?, opened: Bool, error: String?, until: UInt64) {
        update(address) { link in
            link.state = "waiting"
            if let site { link.site = site.rawValue }
            link.everConnected = link.everConnected || opened
            link.lastError = error
            link.nextAttempt = until
        }
    }

    /// The report as of `now`, if it changed or a heartbeat is due; marks it written.
    func due(at now: UInt64, connected: Set<SiteID>, force: Bool = false) -> NodeLinks? {
        state.withLockedValue { state in
            if connected != state.connected { (state.connected, state.changed) = (connected, true) }
            guard force || state.changed || now < state.writtenAt || now - state.writtenAt >= NodeLinks.heartbeatMillis else { return nil }
            (state.changed, state.writtenAt) = (false, now)
            return NodeLinks(writtenAt: now, dialed: state.dialed, connected: connected.map(\.rawValue).sorted())
        }
    }

    /// Writes the report to `store` when ``due(at:connected:force:)`` says so. A failed write is
    /// retried at the next call; the report is for reading, nothing depends on it.
    func report(to store: StoreAccess, at now: UInt64, connected: Set<SiteID>, force: Bool = false) async {
        guard let links = due(at: now, connected: connected, force: force) else { return }
        do { try await store.run { try $0.setNodeLinks(links) } } catch {
            state.withLockedValue { $0.changed = true }
        }
    }
}
