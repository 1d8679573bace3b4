import Logging
import ServiceLifecycle
import Synchronization
import TicketStore

/// The mirror as one of a node's services (node.json's `mirror` section): it follows the store until
/// the node shuts down, and never stops the node. A failure at start (PostgreSQL down, a wrong
/// password) is logged and tried again every `retry`, so the node serves its sites meanwhile.
public struct MirrorService: Service {
    public var mirror: PostgresMirror
    public var retry: Duration
    public var report: PostgresMirror.Report

    public init(mirror: PostgresMirror, retry: Duration = .seconds(10), report: @escaping PostgresMirror.Report) {
        self.mirror = mirror
        self.retry = retry
        self.report = report
    }

    public func run() async throws {
        let mirror = self.mirror, retry = self.retry
        // The last status reported, so a failure keeps its cursors and the lag keeps growing from them.
        let last = Mutex<MirrorStatus?>(nil)
        let report: PostgresMirror.Report = { [report = self.report] status in
            last.withLock { $0 = status }
            report(status)
        }
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await mirror.run(live: true, report: report)
                } catch is CancellationError {
                    return
                } catch {
                    var status = last.withLock { $0 } ?? MirrorStatus(target: mirror.target.description)
                    status.connected = false
                    status.lastError = PostgresMirror.describe(error)
                    // Never connected: nothing is mirrored, so every block of the store is behind.
                    report(await mirror.withLag(status))
                    mirror.logger.error("the PostgreSQL mirror cannot run; trying again", metadata: ["mirror.error": "\(status.lastError ?? "")"])
                    try? await Task.sleep(for: retry)
                }
            }
        }
    }
}
