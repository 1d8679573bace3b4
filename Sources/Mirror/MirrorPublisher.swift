import Foundation
import Prometheus
import Synchronization
import TicketStore

/// What a node that runs the mirror publishes of it: gauges in its `/metrics`, and the
/// ``MirrorReport`` in the store's local settings that `tierline status` and the dashboard read.
///
/// The report is rewritten when the mirror's state changes (connected, lag, error, cursors: a node
/// restarted during an outage counts its lag from the report's cursors), else once a heartbeat.
/// The lag gauges have no sample while the lag is unknown: Prometheus has no "unknown", and a 0
/// would say caught up (alert on `absent(tierline_mirror_behind_blocks)`).
///
/// ```swift
/// let publisher = MirrorPublisher(store: store, registry: registry)
/// let service = MirrorService(mirror: mirror) { publisher.publish($0) }
/// ```
public final class MirrorPublisher: Sendable {
    let store: TicketDatabase
    let registry: PrometheusCollectorRegistry
    let connected: Gauge
    let lag = Mutex<(blocks: Gauge, seconds: Gauge)?>(nil)
    let facts = Mutex<Gauge?>(nil)
    let lastReport = Mutex<(written: UInt64, status: MirrorStatus?)>((0, nil))

    public init(store: TicketDatabase, registry: PrometheusCollectorRegistry) {
        self.store = store
        self.registry = registry
        connected = registry.makeGauge(name: "tierline_mirror_connected", help: "1 while the PostgreSQL mirror is connected, else 0.")
    }

    /// Sets the gauges from `status`, and rewrites the store's report when it is due. Writes to the
    /// store (a small local setting): call it from the mirror's task, not an event loop.
    public func publish(_ status: MirrorStatus, now: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)) {
        let due = lastReport.withLock { last in
            let changed = last.status.map {
                ($0.connected, $0.behindBlocks, $0.lastError, $0.cursors) != (status.connected, status.behindBlocks, status.lastError, status.cursors)
            } ?? true
            guard changed || now - last.written >= MirrorReport.heartbeatMillis else { return false }
            last = (now, status)
            return true
        }
        if due { try? MirrorReport(writtenAt: now, status: status).write(to: store) }
        connected.set(Double(status.connected ? 1 : 0))
        setLag(blocks: status.behindBlocks, seconds: status.behindSeconds)
        if let behind = status.factsBehind {
            facts.withLock { gauge in
                let made = gauge ?? registry.makeGauge(name: "tierline_mirror_behind_facts",
                                                       help: "Tickets whose dashboard facts the PostgreSQL mirror has not copied yet, derived or still to derive (no sample until known).")
                made.set(Double(behind))
                gauge = made
            }
        }
    }

    /// Registers the lag gauges while the lag is known, and takes them away while it is not.
    func setLag(blocks: Int64?, seconds: Double?) {
        lag.withLock { gauges in
            guard let blocks, let seconds else {
                if let old = gauges {
                    registry.unregisterGauge(old.blocks)
                    registry.unregisterGauge(old.seconds)
                }
                gauges = nil
                return
            }
            let made = gauges ?? (registry.makeGauge(name: "tierline_mirror_behind_blocks", help: "Blocks of the store's log the PostgreSQL mirror has not copied yet (no sample while unknown)."),
                                  registry.makeGauge(name: "tierline_mirror_behind_seconds",
                                                     help: "Age of the oldest block the PostgreSQL mirror has not copied yet (0: caught up; no sample while unknown)."))
            made.blocks.set(Double(blocks))
            made.seconds.set(seconds)
            gauges = made
        }
    }
}
