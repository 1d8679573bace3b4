import Logging
import ServiceLifecycle
import Synchronization
import TicketStore

/// The mirror as one of a node's services (node.json's `mirror` section): it follows the store until
/// the node shuts down, and never stops the node. A failure (PostgreSQL down, a wrong password,
/// another mirror writing the schema) is logged, shown in the status, and tried again: every
/// `retry` while it may heal by itself (``MirrorError/mayHealByItself``), else after a pause that
/// doubles from `retry` up to `maxRetry` (a value PostgreSQL cannot take, a schema made by a newer
/// Tierline), so the node serves its sites meanwhile without hammering PostgreSQL.
public struct MirrorService: Service {
    public var mirror: PostgresMirror
    public var retry: Duration
    /// The longest pause between two tries after errors that do not heal by themselves.
    public var maxRetry: Duration
    public var report: PostgresMirror.Report

    public init(mirror: PostgresMirror, retry: Duration = .seconds(10), maxRetry: Duration = .seconds(300),
                report: @escaping PostgresMirror.Report) {
        self.mirror = mirror
        self.retry = retry
        self.maxRetry = maxRetry
        self.report = report
    }

    /// The pause before the next try after `error`, the `failures`-th in a row (from 1) of runs
    /// that moved no cursor.
    public func pause(after error: any Error, failures: Int) -> Duration {
        guard let error = error as? MirrorError, !error.mayHealByItself else { return retry }
        var pause = retry
        for _ in 1..<max(1, failures) where pause < maxRetry { pause *= 2 }
        return min(pause, maxRetry)
    }

    public func run() async throws {
        let mirror = self.mirror
        // The last status reported, so a failure keeps its cursors and the lag keeps growing from
        // them; and whether this try moved a cursor, which starts the pauses over.
        let last = Mutex<(status: MirrorStatus?, moved: Bool)>((nil, false))
        let report: PostgresMirror.Report = { [report = self.report] status in
            last.withLock { $0 = (status, $0.moved || status.batches > 0) }
            report(status)
        }
        try await cancelWhenGracefulShutdown {
            // Runs in a row that failed without moving a cursor.
            var failures = 0
            while !Task.isCancelled {
                last.withLock { $0.moved = false }
                do {
                    _ = try await mirror.run(live: true, report: report)
                } catch is CancellationError {
                    return
                } catch {
                    let (previous, moved) = last.withLock { ($0.status, $0.moved) }
                    failures = moved ? 1 : failures + 1
                    let pause = self.pause(after: error, failures: failures)
                    var status = previous ?? MirrorStatus(target: mirror.target.description)
                    status.connected = false
                    let text = PostgresMirror.describe(error)
                    status.lastError = "\(text) (trying again in \(Int(pause.components.seconds)) s)"
                    // Lag from the last cursors known; unknown stays unknown.
                    report(await mirror.withLag(status))
                    mirror.logger.error("the PostgreSQL mirror cannot run; trying again",
                                        metadata: ["mirror.error": "\(text)", "mirror.retry.seconds": "\(pause.components.seconds)"])
                    try? await Task.sleep(for: pause)
                }
            }
        }
    }
}
