import Foundation

/// Progress of a long count (blocks, rows) on stderr: redrawn in place on a terminal, a line every
/// two seconds otherwise, nothing when disabled (`--quiet`) or when the work is small.
final class CountProgress {
    let enabled: Bool
    let label: String
    let tty = isatty(2) == 1
    var lastDraw = Date.distantPast
    var drawn = false
    var lastText = ""

    /// - Parameter minimum: totals below it draw nothing (a short job needs no progress).
    init(_ label: String, enabled: Bool, minimum: Int = 2_000) {
        self.label = label
        self.enabled = enabled
        self.minimum = minimum
    }
    let minimum: Int

    func update(_ done: Int, of total: Int, _ what: String = "") {
        guard enabled, total >= minimum else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= (tty ? 0.1 : 2.0) || (done == total && !tty) else { return }
        lastDraw = now
        let percent = total > 0 ? done * 100 / total : 100
        let text = "\(label)\(what.isEmpty ? "" : " (\(what))"): \(done)/\(total) (\(percent)%)"
        guard text != lastText else { return }
        lastText = text
        FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + text + (tty ? "" : "\n")).utf8))
        drawn = true
    }

    /// Ends the redrawn line on a terminal.
    func finish() {
        if drawn && tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
