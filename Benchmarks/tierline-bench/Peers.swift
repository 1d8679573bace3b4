import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// The peers of Benchmarks/WORKLOADS.md measured in the same run as Tierline: a harness of Python
// scripts (one per peer) that generate the same workload with the same sizes and print one JSON
// object per figure. The bench runs each script in a process of its own, with a time limit, at the
// bench's --scale, and reads its lines.

/// The harness in a folder the user names (`--peers DIR`).
struct PeerHarness: Sendable {
    struct Peer: Sendable {
        /// The script in the harness's folder.
        var script: String
        /// The name its figures carry.
        var name: String
    }

    /// The W1/W2 peers, plain SQLite (Python's sqlite3) first: the others' W1 ratios are to it.
    static let peers = [
        Peer(script: "bench_sqlite_plain.py", name: "sqlite3-plain"),
        Peer(script: "bench_sqlite_session.py", name: "sqlite-session"),
        Peer(script: "bench_pycrdt.py", name: "pycrdt"),
        Peer(script: "bench_loro.py", name: "loro"),
    ]

    let folder: String
    let python: String
    let timeout: Int

    init(folder: String, python: String?, timeout: Int) {
        self.folder = (folder as NSString).standardizingPath
        self.python = python ?? self.folder + "/.venv/bin/python"
        self.timeout = timeout
    }

    /// Why the harness cannot run at all, or `nil`.
    var problem: String? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            return "no peer harness at \(folder) (--peers names a folder holding bench_*.py and common.py)"
        }
        let missing = (Self.peers.map(\.script) + ["common.py"]).filter { !FileManager.default.fileExists(atPath: folder + "/" + $0) }
        if !missing.isEmpty { return "the harness at \(folder) lacks \(missing.joined(separator: ", "))" }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return "no Python at \(python): create the harness's venv (its setup script), or name one with --peers-python"
        }
        return nil
    }

    /// Runs `peer` at `scale` in a process of its own, with `workdir` for its files.
    /// - Returns: its figures, and why it failed if it did (a failed peer may still have printed some).
    func run(_ peer: Peer, scale: Double, workdir: String) -> (figures: [Figure], error: String?) {
        try? FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: python)
        child.arguments = [peer.script]
        child.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["SCALE"] = String(scale)
        environment["WORKDIR"] = workdir
        // The harness's folder may be read-only: no bytecode files there.
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        let errorPath = workdir + "/\(peer.name).stderr"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        child.standardError = FileHandle(forWritingAtPath: errorPath)
        do { try child.run() } catch { return ([], "could not start \(python) \(peer.script): \(error)") }
        // The time limit: SIGTERM, then SIGKILL 5 s later if the process is still there.
        let watch = ChildWatch(pid: child.processIdentifier)
        let limit = timeout
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(limit)) {
            watch.signal(SIGTERM, timingOut: true)
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(5)) { watch.signal(SIGKILL, timingOut: false) }
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        watch.finish()
        var figures: [Figure] = []
        var version: String?
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let name = object["peer"] as? String, let workload = object["workload"] as? String,
                  let metric = object["metric"] as? String else { continue }
            if workload == "meta" {
                if metric == "version" { version = (object["value"] as? String) ?? (object["value"] as? NSNumber)?.stringValue }
                continue
            }
            guard let value = (object["value"] as? NSNumber)?.doubleValue else { continue }
            figures.append(Figure(peer: name, workload: workload, metric: metric, value: value, unit: object["unit"] as? String ?? ""))
        }
        for index in figures.indices { figures[index].note = version }
        let stderrTail = ((try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
            .split(separator: "\n").last.map { ": " + $0.prefix(300) } ?? ""
        if watch.timedOut { return (figures, "stopped after its \(limit) s time limit (--peers-timeout)") }
        if child.terminationStatus != 0 {
            return (figures, "\(peer.script) exited with status \(child.terminationStatus)\(stderrTail)")
        }
        if figures.isEmpty { return (figures, "\(peer.script) printed no figures\(stderrTail)") }
        return (figures, nil)
    }
}

/// A peer's process as its timer sees it: signalled by its own pid, and only while it runs.
final class ChildWatch: Sendable {
    let pid: Int32
    private let state = Mutex((running: true, timedOut: false))

    init(pid: Int32) { self.pid = pid }

    func signal(_ signal: Int32, timingOut: Bool) {
        state.withLock { state in
            guard state.running else { return }
            if timingOut { state.timedOut = true }
            kill(pid, signal)
        }
    }

    func finish() { state.withLock { $0.running = false } }
    var timedOut: Bool { state.withLock { $0.timedOut } }
}

/// One figure per (peer, workload, metric), in the order first seen: the median of its values over
/// the rounds (and of its ratios). An even count takes the mean of the middle two.
func medians(_ rounds: [[Figure]]) -> [Figure] {
    var order: [String] = []
    var groups: [String: [Figure]] = [:]
    for figure in rounds.joined() {
        let key = "\(figure.peer)|\(figure.workload)|\(figure.metric)"
        if groups[key] == nil { order.append(key) }
        groups[key, default: []].append(figure)
    }
    func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    return order.map { key in
        let group = groups[key]!
        var figure = group[0]
        figure.value = median(group.map(\.value))!
        figure.ratio = median(group.compactMap(\.ratio))
        return figure
    }
}

/// How a Tierline figure of W1/W2 compares with the peers' figure of the same thing.
struct PeerComparison {
    var workload: String
    var label: String
    /// Tierline's metric, and the metric the peers' scripts print for it.
    var metric: String
    var peerMetric: String
    var higherIsBetter: Bool
    /// W1 rates are compared as ratios to plain SQLite, each measured beside its own plain SQLite
    /// (Tierline beside the bench's, in Swift; a peer beside the harness's, through Python's sqlite3),
    /// so what the language adds cancels out. The rest are compared as they are.
    var toPlain: Bool

    static let all = [
        PeerComparison(workload: "W1", label: "W1 create", metric: "create", peerMetric: "create_ops_per_s", higherIsBetter: true, toPlain: true),
        PeerComparison(workload: "W1", label: "W1 update, one transaction", metric: "update_one_transaction", peerMetric: "update_ops_per_s",
                       higherIsBetter: true, toPlain: true),
        PeerComparison(workload: "W1", label: "W1 update, a commit each", metric: "update_autocommit", peerMetric: "update_autocommit_ops_per_s",
                       higherIsBetter: true, toPlain: true),
        PeerComparison(workload: "W2", label: "W2 local updates", metric: "local_updates", peerMetric: "local_update_ops_per_s",
                       higherIsBetter: true, toPlain: false),
        PeerComparison(workload: "W2", label: "W2 delta after zlib-6", metric: "delta_bytes_zlib6", peerMetric: "delta_a2b_bytes_zlib6",
                       higherIsBetter: false, toPlain: false),
        PeerComparison(workload: "W2", label: "W2 apply", metric: "apply_ms", peerMetric: "apply_ms", higherIsBetter: false, toPlain: false),
        PeerComparison(workload: "W2", label: "W2 apply rate", metric: "apply_updates_per_s", peerMetric: "apply_updates_per_s",
                       higherIsBetter: true, toPlain: false),
    ]
}

let harnessPlain = "sqlite3-plain"

/// The peers' figures (not the bench's own baselines), the failures left out.
func peerFigures(_ figures: [Figure], scale: Double) -> [Figure] {
    let peers = Set(PeerHarness.peers.map(\.name))
    return figures.filter { peers.contains($0.peer) && $0.error == nil }
}

/// Each peer's W2 apply as updates per second, from its apply time (the scripts print milliseconds;
/// the updates applied are W2's count at this scale), to stand beside Tierline's.
func derivedPeerFigures(_ figures: [Figure], scale: Double) -> [Figure] {
    let updates = Double(max(1, Int(50_000 * scale)))
    return peerFigures(figures, scale: scale).filter { $0.workload == "W2" && $0.metric == "apply_ms" && $0.value > 0 }.map {
        Figure(peer: $0.peer, workload: "W2", metric: "apply_updates_per_s", value: updates / ($0.value / 1000), unit: "ops/s", note: $0.note)
    }
}

/// Tierline's ratio to each peer and to the best one, for each figure the peers have
/// (``PeerComparison``): `value` and `ratio` are Tierline's figure over the peer's, both read the
/// same way as the figure (above 1 is more throughput, or more bytes or milliseconds).
func peerComparisons(_ figures: [Figure], scale: Double) -> [Figure] {
    let peers = peerFigures(figures, scale: scale)
    func find(_ list: [Figure], _ peer: String, _ workload: String, _ metric: String) -> Figure? {
        list.first { $0.peer == peer && $0.workload == workload && $0.metric == metric }
    }
    var out: [Figure] = []
    for comparison in PeerComparison.all {
        guard let tierline = find(figures, "tierline", comparison.workload, comparison.metric) else { continue }
        // Tierline's side: its figure, or its ratio to the bench's plain SQLite.
        guard let ours = comparison.toPlain ? tierline.ratio : tierline.value else { continue }
        let plain = find(peers, harnessPlain, comparison.workload, comparison.peerMetric)?.value
        var best: (name: String, theirs: Double)?
        for peer in PeerHarness.peers.map(\.name) {
            guard let figure = find(peers, peer, comparison.workload, comparison.peerMetric), figure.value > 0 else { continue }
            let theirs: Double
            if comparison.toPlain {
                guard let plain, plain > 0 else { continue }
                theirs = figure.value / plain
            } else {
                theirs = figure.value
            }
            let ratio = ours / theirs
            out.append(Figure(workload: comparison.workload, metric: "\(comparison.metric)_vs_\(peer)", value: ratio, unit: "x", ratio: ratio))
            guard peer != harnessPlain else { continue }
            if best == nil || (comparison.higherIsBetter ? theirs > best!.theirs : theirs < best!.theirs) { best = (peer, theirs) }
        }
        if let best {
            out.append(Figure(workload: comparison.workload, metric: "\(comparison.metric)_vs_best_peer", value: ours / best.theirs, unit: "x",
                              ratio: ours / best.theirs, note: best.name))
        }
    }
    return out
}

/// The figures the peers share with Tierline, one line each: every peer's figure (W1 with its ratio
/// to plain SQLite) and Tierline's ratio to the best peer.
@MainActor func printPeerTable(runs: Int, scale: Double) {
    guard !jsonOnly else { return }
    let peers = peerFigures(figures, scale: scale)
    let names = PeerHarness.peers.map(\.name)
    print("")
    print("Tierline beside the peers, in the same run (scale \(scale)\(runs > 1 ? ", median of \(runs) interleaved runs" : ""); W1 ratios are to plain SQLite)")
    let columns = ["figure", "tierline"] + names + ["tierline / best peer"]
    let widths = [28, 28] + names.map { _ in 20 } + [30]
    func row(_ cells: [String]) -> String { zip(cells, widths).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined() }
    func show(_ value: Double, _ unit: String) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = value >= 100 ? 0 : 2
        return (formatter.string(from: NSNumber(value: value)) ?? "\(value)") + (unit.isEmpty ? "" : " " + unit)
    }
    print(row(columns))
    for comparison in PeerComparison.all {
        guard let tierline = figures.first(where: { $0.peer == "tierline" && $0.workload == comparison.workload && $0.metric == comparison.metric })
        else { continue }
        var cells = [comparison.label, show(tierline.value, tierline.unit) + (comparison.toPlain ? tierline.ratio.map { String(format: " (%.2f×)", $0) } ?? "" : "")]
        let plain = peers.first { $0.peer == harnessPlain && $0.workload == comparison.workload && $0.metric == comparison.peerMetric }?.value
        for name in names {
            guard let figure = peers.first(where: { $0.peer == name && $0.workload == comparison.workload && $0.metric == comparison.peerMetric }) else {
                cells.append(peerFailed(name) ? "failed" : "—")
                continue
            }
            let ratio = comparison.toPlain && plain.map { $0 > 0 } == true ? String(format: " (%.2f×)", figure.value / plain!) : ""
            cells.append(show(figure.value, "") + ratio)
        }
        let best = figures.first { $0.peer == "tierline" && $0.workload == comparison.workload && $0.metric == "\(comparison.metric)_vs_best_peer" }
        cells.append(best.map { String(format: "%.2f× ", $0.value) + "(\($0.note ?? ""))" } ?? "—")
        print(row(cells))
    }
    let versions = Dictionary(peers.compactMap { figure in figure.note.map { (figure.peer, $0) } }, uniquingKeysWith: { first, _ in first })
    if !versions.isEmpty { print("versions: " + versions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; ")) }
    for failure in figures where failure.error != nil { print("\(failure.peer): FAILED: \(failure.error!)") }
}

@MainActor func peerFailed(_ name: String) -> Bool { figures.contains { $0.peer == name && $0.error != nil } }
