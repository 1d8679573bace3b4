import Logging
import ServiceLifecycle

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
        let mirror = self.mirror, report = self.report, retry = self.retry
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await mirror.run(live: true, report: report)
                } catch is CancellationError {
                    return
                } catch {
                    var status = MirrorStatus(target: mirror.target.description)
                    status.lastError = PostgresMirror.describe(error)
                    report(status)
                    mirror.logger.error("the PostgreSQL mirror cannot run; trying again", metadata: ["mirror.error": "\(status.lastError ?? "")"])
                    try? await Task.sleep(for: retry)
                }
            }
        }
    }
}
