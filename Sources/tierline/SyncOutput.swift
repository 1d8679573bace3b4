import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import SyncNode
import TicketModel
import TicketStore

func byteText(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1 << 20 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
    return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
}

func ageText(_ seconds: TimeInterval) -> String {
    if seconds < 60 { return "\(max(0, Int(seconds))) s ago" }
    if seconds < 3600 { return "\(Int(seconds / 60)) min ago" }
    if seconds < 86400 { return "\(Int(seconds / 3600)) h ago" }
    return "\(Int(seconds / 86400)) d ago"
}

/// A one-line progress bar on stderr when it is a terminal; a line every two seconds otherwise.
final class ProgressBar: @unchecked Sendable {
    let enabled: Bool
    let tty = isatty(2) == 1
    let lock = NSLock()
    var lastDraw = Date.distantPast
    var drawn = false
    var last: SyncProgress?

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: SyncProgress) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        last = p
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= (tty ? 0.1 : 2.0) else { return }
        lastDraw = now
        draw(p)
    }

    /// Draws the final state (when anything was shown), then ends the line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard drawn, let last else { return }
        draw(last)
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ p: SyncProgress) {
        let total = max(1, p.toSend + p.toReceive)
        let fraction = min(1, Double(p.sent + p.received) / Double(total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = "[\(bar)] \(Int(fraction * 100))%  ↑ \(p.sent)/\(p.toSend) blocks \(byteText(p.bytesOut))  ↓ \(p.received)/\(p.toReceive) blocks \(byteText(p.bytesIn))"
        FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + text + (tty ? "" : "\n")).utf8))
        drawn = true
    }
}

/// Logs of a long-running command go to stderr at `level`.
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Logs the open-file limit a long-running command runs with (after raising it): a node near it
/// refuses connections on both ports, so the operator sees it at start.
func logOpenFileLimit(_ limit: OpenFileLimit, logger: Logger) {
    let metadata: Logger.Metadata = ["nofile.soft": "\(limit.soft)", "nofile.hard": "\(limit.hard)", "nofile.raised": "\(limit.raised)"]
    if let problem = limit.problem {
        logger.warning("open-file limit left as it was: \(problem)", metadata: metadata)
    } else {
        logger.info("open-file limit", metadata: metadata)
    }
}
