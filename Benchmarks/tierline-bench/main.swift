// tierline-bench: sync figures beside their loopback ceiling, in one run.
//
//   swift build -c release --package-path Benchmarks --disable-build-manifest-caching
//   Benchmarks/.build/release/tierline-bench [--only w1,w2,sync,rss,escalation,wire,intake] [--changes N] [--json-only]
//   Benchmarks/.build/release/tierline-bench --runs 3 --peers PEER_HARNESS_DIR   # medians of 3, the peers in the same run
//   Benchmarks/.build/release/tierline-bench --dashboard [--sizes 10000,100000,1000000]
//   Benchmarks/.build/release/tierline-bench --help
//
// Prints one JSON object per figure ({"peer","workload","metric","value","unit"}, the shape the
// peers' figures in Benchmarks/WORKLOADS.md were recorded in) and then a table.
import Desk
import Escalation
import Foundation
import GRDB
import Logging
import NIOCore
import SyncNode
import SyncWire
import TicketModel
import TicketStore
#if canImport(Glibc)
import Glibc
#endif

struct Figure {
    var peer = "tierline"
    var workload: String
    var metric: String
    var value: Double
    var unit: String
    /// Tierline's figure over its baseline in the same run (plain SQLite), or over a recorded peer's.
    var ratio: Double?
    /// Why a peer gave no figures (its line then carries no figure of its own).
    var error: String? = nil
    /// What the figure was measured with (a peer's library version).
    var note: String? = nil
}

var figures: [Figure] = []
let options = Options.parseCommandLine()
let jsonOnly = options.jsonOnly

func note(_ text: String) { if !jsonOnly { warn(text) } }
/// A problem the run goes on past (a peer that failed): on stderr even with `--json-only`.
func warn(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

/// With `--runs` above 1 or `--peers`, a round's figures are held here and only their medians are
/// printed, once every round ran.
var collecting = false
var roundFigures: [Figure] = []

@MainActor func emit(_ figure: Figure) {
    if collecting { roundFigures.append(figure) } else { record(figure) }
}

/// Prints `figure` as its JSON line and keeps it for the table.
@MainActor func record(_ figure: Figure) {
    figures.append(figure)
    let value = figure.value.rounded() == figure.value && abs(figure.value) < 1e15 ? String(Int(figure.value))
        : String(format: figure.value < 0.1 ? "%.6f" : "%.3f", figure.value)
    let ratio = figure.ratio.map { String(format: ",\"ratio\":%.3f", $0) } ?? ""
    func quoted(_ text: String) -> String { String(decoding: try! JSONEncoder().encode(text), as: UTF8.self) }
    let extra = (figure.error.map { ",\"error\":" + quoted($0) } ?? "") + (figure.note.map { ",\"note\":" + quoted($0) } ?? "")
    print("{\"peer\":\(quoted(figure.peer)),\"workload\":\"\(figure.workload)\",\"metric\":\"\(figure.metric)\",\"value\":\(value),\"unit\":\"\(figure.unit)\"\(ratio)\(extra)}")
}

@MainActor func seconds(_ work: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await work()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// A store in `folder`; `durable: false` skips fsync (only to fill the laptop quickly).
func openStore(_ folder: String, site: String?, role: SiteRole, key: SiteKey, durable: Bool) throws -> TicketDatabase {
    try openStore(folder, site: site, role: role, key: key, synchronous: durable ? .full : .off)
}

/// A store in `folder` with the given `PRAGMA synchronous` (W1 and W2 use NORMAL, as the peers do).
func openStore(_ folder: String, site: String?, role: SiteRole, key: SiteKey, synchronous: TicketDatabase.Synchronous) throws -> TicketDatabase {
    try openStoreAndPool(folder, site: site, role: role, key: key, synchronous: synchronous).store
}

/// A store in `folder` and the SQLite pool under it. The bench opens the pool itself and keeps it, to
/// read and tune SQLite beside the store (a plain count as a baseline, a checkpoint, `synchronous`),
/// which the store's API does not offer; the store reaches its pool only from inside its own package.
func openStoreAndPool(_ folder: String, site: String?, role: SiteRole, key: SiteKey, synchronous: TicketDatabase.Synchronous) throws -> (store: TicketDatabase, pool: DatabasePool) {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let pool = try TicketDatabase.openPool(path: folder + "/tierline.sqlite", synchronous: synchronous)
    let db = try TicketDatabase(pool, key: key)
    if let site { try db.initialize(site: try SiteID(site), role: role) }
    return (db, pool)
}

/// Pushes `bytes` bytes through a raw 127.0.0.1 TCP socket in 64 KiB writes; returns seconds.
func rawLoopback(bytes: Int) throws -> Double {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
    listen(listener, 1)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        let connection = accept(listener, nil, nil)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var received = 0
        while received < bytes {
            let n = read(connection, &buffer, buffer.count)
            if n <= 0 { break }
            received += n
        }
        close(connection)
        done.signal()
    }
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    let start = DispatchTime.now().uptimeNanoseconds
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
    let chunk = [UInt8](repeating: 0x41, count: 1 << 16)
    var sent = 0
    while sent < bytes {
        let n = chunk.withUnsafeBytes { write(client, $0.baseAddress, min(chunk.count, bytes - sent)) }
        if n <= 0 { break }
        sent += n
    }
    close(client)
    done.wait()
    close(listener)
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let root = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-bench-\(UUID().uuidString.prefix(8))").path
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
// `--keep` leaves the stores in place (to inspect them with sqlite3); the path goes to stderr, also
// with `--json-only` (whose stdout stays JSON lines alone).
let keep = options.keep
defer { if !keep { try? FileManager.default.removeItem(atPath: root) } }
if keep { warn("stores in \(root)") }
if options.dashboard {
    let sizes = options.sizeList
    try await dashboardBench(sizes: sizes, root: root)
    printTable("dashboard summary over \(sizes.map(String.init).joined(separator: ", ")) tickets")
    // `exit` skips the `defer` above.
    if !keep { try? FileManager.default.removeItem(atPath: root) }
    exit(0)
}

// Which sections run: all but the dashboard by default (`--only w1,w2,sync,rss,escalation,wire,intake`).
let sections = options.sectionSet
let scale = options.scale
let runCount = options.runs
let harness = options.peers.map { PeerHarness(folder: $0, python: options.peersPython, timeout: options.peersTimeout) }
let runsPeers = harness != nil && !sections.isDisjoint(with: ["w1", "w2"])
collecting = runCount > 1 || harness != nil
var rounds: [[Figure]] = []
var peerFailures: [Figure] = []
var logger = Logger(label: "bench")
logger.logLevel = .critical
var syncedTickets = 10_000
if harness != nil && !runsPeers { note("peers: the peers run W1 and W2, and --only names neither: they do not run") }
if runsPeers, let problem = harness?.problem {
    warn("peers: \(problem); the peers' figures are left out, the rest runs")
    peerFailures.append(Figure(peer: "harness", workload: "peers", metric: "failed", value: 1, unit: "", error: problem))
}
// Rounds are interleaved: each runs every section and then every peer, so a slow spell of the
// shared machine falls on all of them rather than on one.
for round in 1...runCount {
    if runCount > 1 { note("run \(round) of \(runCount)") }
    let runRoot = runCount > 1 ? root + "/run\(round)" : root
    try FileManager.default.createDirectory(atPath: runRoot, withIntermediateDirectories: true)
    roundFigures = []
    if sections.contains("w1") { try w1(root: runRoot, scale: scale) }
    if sections.contains("w2") { try w2(root: runRoot, scale: scale) }
    if sections.contains("sync") {
        syncedTickets = try await syncBench(root: runRoot, target: options.changes, label: "sync", batchFill: false, sampleMemory: false)
    }
    if sections.contains("rss") {
        let big = options.rssChanges
        if sections == ["rss"] && runCount == 1 {
            _ = try await syncBench(root: runRoot, target: big, label: "sync_1m", batchFill: true, sampleMemory: true)
        } else {
            // Peak memory is measured in a process of its own: what earlier sections left on the heap
            // would otherwise count.
            try isolated(["--only", "rss", "--rss-changes", String(big), "--json-only"])
        }
    }
    if sections.contains("escalation") { try await escalationBench(root: runRoot, tickets: syncedTickets) }
    if sections.contains("wire") { try wireBench(root: runRoot) }
    if sections.contains("intake") { try await intakeBench(root: runRoot, clients: options.intakeClients, requests: options.intakeRequests) }
    if runsPeers, let harness, harness.problem == nil {
        for peer in PeerHarness.peers {
            note("peers: \(peer.name) (\(peer.script)) at scale \(scale)…")
            let outcome = harness.run(peer, scale: scale, workdir: runRoot + "/peers")
            roundFigures += outcome.figures
            if let error = outcome.error {
                warn("peers: \(peer.name) failed: \(error); going on without it")
                peerFailures.append(Figure(peer: peer.name, workload: "peers", metric: "failed", value: 1, unit: "",
                                           error: runCount > 1 ? "run \(round): \(error)" : error))
            }
        }
    }
    rounds.append(roundFigures)
    if runCount > 1 && !keep { try? FileManager.default.removeItem(atPath: runRoot) }
}
if collecting {
    collecting = false
    for figure in medians(rounds) { record(figure) }
    if runsPeers {
        for figure in derivedPeerFigures(figures, scale: scale) { record(figure) }
        for figure in peerComparisons(figures, scale: scale) { record(figure) }
    }
    for failure in peerFailures { record(failure) }
}
printTable("Tierline beside plain SQLite and loopback in one run (ratio: Tierline / baseline; on sqlite-plain-indexed lines, indexed / plain)"
           + (runCount > 1 ? ", median of \(runCount) interleaved runs" : ""))
if runsPeers { printPeerTable(runs: runCount, scale: scale) }
// 3: the sections passed, but a peer asked for gave no figures (documented in `--help`). `exit`
// skips the `defer` above, so the folder goes first.
if !keep { try? FileManager.default.removeItem(atPath: root) }
exit(peerFailures.isEmpty ? 0 : 3)

/// Runs this benchmark again in a child process with `extra` arguments and takes its figures.
@MainActor func isolated(_ extra: [String]) throws {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = extra
    let output = Pipe()
    child.standardOutput = output
    try child.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    child.waitUntilExit()
    guard child.terminationStatus == 0 else { fatalError("the isolated run \(extra) failed (exit \(child.terminationStatus))") }
    struct Line: Decodable { var peer, workload, metric, unit: String; var value: Double; var ratio: Double? }
    for text in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        let line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
        emit(Figure(peer: line.peer, workload: line.workload, metric: line.metric, value: line.value, unit: line.unit, ratio: line.ratio))
    }
}

/// Sync of `target` changes laptop → node over 127.0.0.1, beside the raw loopback ceiling.
/// - Parameter batchFill: fill the laptop with batches (256-change blocks) instead of one block per
///   ticket; `sampleMemory` records the process's peak RSS during the sync.
@MainActor func syncBench(root: String, target targetChanges: Int, label: String, batchFill: Bool, sampleMemory: Bool) async throws -> Int {
    // 1. Fill a laptop store with offline work: tickets with fields, tags and a first message.
    let laptopKey = SiteKey.generate()
    var filler: TicketDatabase? = try openStore(root + "/\(label)-laptop", site: "laptop", role: .laptop, key: laptopKey, durable: false)
    var changes = 0
    var tickets = 0
    var perTicket = 1
    var allBlocks: [Block] = []
    func draft(_ n: Int) -> TicketDraft {
        TicketDraft(subject: "Ticket \(n): printer on floor \(n % 9) prints blank pages", priority: [.low, .normal, .high, .urgent][n % 4],
                    customer: "customer-\(n % 500)", channel: "email", group: "group-\(n % 12)", assignee: "agent-\(n % 40)",
                    tags: ["tag-\(n % 32)", "tag-\((n * 7) % 32)"], firstMessage: "Every page comes out blank since this morning (\(n)).")
    }
    note("\(label): filling the laptop store with \(targetChanges) changes\(batchFill ? " in batches" : ", one block per ticket")…")
    if batchFill {
        // Batches of 2,000 tickets, so the filling itself holds little in memory.
        while changes < targetChanges {
            let summary = try filler!.batch { batch in
                for _ in 0..<2_000 {
                    try batch.create(draft(tickets))
                    tickets += 1
                }
            }
            changes += summary.changes
        }
    } else {
        while changes < targetChanges {
            try filler!.createTicket(draft(tickets))
            tickets += 1
            if tickets == 1 { perTicket = try filler!.blocks(after: VersionVector()).reduce(0) { $0 + $1.changes.count } }
            changes = tickets * perTicket
        }
        allBlocks = try filler!.blocks(after: VersionVector())
        changes = allBlocks.reduce(0) { $0 + $1.changes.count }
    }
    filler = nil
    note("\(label): laptop holds \(tickets) tickets, \(changes) changes")
    let laptop = try openStore(root + "/\(label)-laptop", site: nil, role: .laptop, key: laptopKey, durable: true)

    // 2. A node with an empty durable store.
    let nodeKey = SiteKey.generate()
    let nodeStore = try openStore(root + "/\(label)-node", site: "branch", role: .site, key: nodeKey, durable: true)
    // One fleet: a coordinator outside the bench signs a roster listing both; each pins its key and
    // holds that roster, as `tierline roster pin` and a first sync with the coordinator leave them.
    let coordinatorKey = SiteKey.generate()
    let roster = try SignedRoster.sign(Roster(version: 1, coordinator: try SiteID("hq"), issued: 1, sites: [
        Roster.Member(site: try SiteID("branch"), key: nodeKey.publicKey, role: .site),
        Roster.Member(site: try SiteID("hq"), key: coordinatorKey.publicKey, role: .coordinator),
        Roster.Member(site: try SiteID("laptop"), key: laptopKey.publicKey, role: .laptop),
    ]), key: coordinatorKey)
    for store in [laptop, nodeStore] {
        try store.pinCoordinator(key: coordinatorKey.publicKey)
        _ = try store.adopt(document: roster.document, signature: roster.signature)
    }
    let node = try SyncNode(store: nodeStore, key: nodeKey, configuration: NodeConfiguration { $0.listen = Endpoint(host: "127.0.0.1", port: 0) }, logger: logger)
    let port = try await node.bind()?.port ?? 0
    let nodeTask = Task { try await node.run() }
    let endpoint = Endpoint(host: "127.0.0.1", port: port)

    // 3. The sync, timed end to end (connect, handshake, transfer, durable apply, acks, bye).
    var summary: SessionSummary?
    let memory = sampleMemory ? MemorySampler() : nil
    let syncSeconds = try await seconds {
        summary = try await SyncClient.exchange(store: laptop, key: laptopKey, with: endpoint, logger: logger)
    }
    let peak = memory?.stop()
    guard let summary, try nodeStore.digest() == laptop.digest(), try nodeStore.vector() == laptop.vector() else {
        fatalError("\(label): the node did not converge with the laptop")
    }
    let w = label
    emit(Figure(workload: w, metric: "changes", value: Double(changes), unit: "changes"))
    emit(Figure(workload: w, metric: "blocks", value: Double(summary.sentBlocks), unit: "blocks"))
    emit(Figure(workload: w, metric: "seconds", value: syncSeconds, unit: "s"))
    emit(Figure(workload: w, metric: "changes_per_s", value: Double(changes) / syncSeconds, unit: "changes/s"))
    let wireBytes = summary.bytesOut + summary.bytesIn
    emit(Figure(workload: w, metric: "wire_bytes_total", value: Double(wireBytes), unit: "bytes"))
    emit(Figure(workload: w, metric: "wire_bytes_per_change", value: Double(wireBytes) / Double(changes), unit: "bytes"))
    emit(Figure(workload: w, metric: "changeset_bytes_per_change_uncompressed", value: Double(summary.changeSetBytesOut) / Double(changes), unit: "bytes"))
    // The same sync on the TCP socket: its lines, and TLS's handshake and record framing.
    emit(Figure(workload: w, metric: "socket_bytes_per_change", value: Double(summary.socketBytesIn + summary.socketBytesOut) / Double(changes), unit: "bytes"))
    if let memory, let peak {
        emit(Figure(workload: w, metric: "rss_before_sync_MiB", value: Double(memory.baseline) / 1_048_576, unit: "MiB"))
        emit(Figure(workload: w, metric: "peak_rss_during_sync_MiB", value: Double(peak) / 1_048_576, unit: "MiB"))
    }

    // 4. Nodes already in sync: the whole exchange costs only the handshake.
    let again = try await SyncClient.exchange(store: laptop, key: laptopKey, with: endpoint, logger: logger)
    emit(Figure(workload: w, metric: "in_sync_exchange_bytes", value: Double(again.bytesIn + again.bytesOut), unit: "bytes"))
    // Reported apart, as the issue asks: what TLS adds to that session on the socket (its handshake,
    // with both certificates, and each record's header and tag).
    emit(Figure(workload: w, metric: "in_sync_tls_added_bytes", value: Double(again.socketBytesIn + again.socketBytesOut - again.bytesIn - again.bytesOut), unit: "bytes"))
    node.shutdown()
    _ = try? await nodeTask.value

    // 4b. The baseline in the same run: the same sync as a plain protocol-1 session (no TLS) into a
    // second empty node that admits plain sessions, the laptop's hello naming protocol 1 as 0.6's did.
    // The ratio of the two times is TLS's cost together with protocol 3's compact change set.
    let plainKey = SiteKey.generate()
    let plainStore = try openStore(root + "/\(label)-plain-node", site: "branch", role: .site, key: plainKey, durable: true)
    let plainRoster = try SignedRoster.sign(Roster(version: 2, coordinator: try SiteID("hq"), issued: 2, sites: [
        Roster.Member(site: try SiteID("branch"), key: plainKey.publicKey, role: .site),
        Roster.Member(site: try SiteID("hq"), key: coordinatorKey.publicKey, role: .coordinator),
        Roster.Member(site: try SiteID("laptop"), key: laptopKey.publicKey, role: .laptop),
    ]), key: coordinatorKey)
    try plainStore.pinCoordinator(key: coordinatorKey.publicKey)
    for store in [laptop, plainStore] { _ = try store.adopt(document: plainRoster.document, signature: plainRoster.signature) }
    func plainSettings() throws -> NodeConfiguration {
        let laptop = try SiteID("laptop")
        return NodeConfiguration { ($0.listen, $0.allowPlainSessions) = (Endpoint(host: "127.0.0.1", port: 0), [laptop]) }
    }
    let plainNode = try SyncNode(store: plainStore, key: plainKey, configuration: try plainSettings(), logger: logger)
    let plainPort = try await plainNode.bind()?.port ?? 0
    let plainTask = Task { try await plainNode.run() }
    var plainSummary: SessionSummary?
    let plainSeconds = try await seconds {
        plainSummary = try await SyncClient.exchangePlain(store: laptop, key: laptopKey, with: Endpoint(host: "127.0.0.1", port: plainPort), logger: logger)
    }
    guard let plainSummary, try plainStore.digest() == laptop.digest() else { fatalError("\(label): the plain node did not converge with the laptop") }
    emit(Figure(peer: "plain-tcp", workload: w, metric: "seconds", value: plainSeconds, unit: "s"))
    emit(Figure(peer: "plain-tcp", workload: w, metric: "changes_per_s", value: Double(changes) / plainSeconds, unit: "changes/s"))
    emit(Figure(peer: "plain-tcp", workload: w, metric: "wire_bytes_total", value: Double(plainSummary.bytesIn + plainSummary.bytesOut), unit: "bytes"))
    emit(Figure(workload: w, metric: "tls_time_vs_plain", value: syncSeconds / plainSeconds, unit: "x"))
    plainNode.shutdown()
    _ = try? await plainTask.value

    // 5. The ceiling: the same wire bytes through a raw loopback socket, in the same run.
    let rawSeconds = try rawLoopback(bytes: wireBytes)
    emit(Figure(peer: "tcp-loopback", workload: w, metric: "same_bytes_seconds", value: rawSeconds, unit: "s"))
    emit(Figure(peer: "tcp-loopback", workload: w, metric: "MB_per_s", value: Double(wireBytes) / rawSeconds / 1e6, unit: "MB/s"))
    emit(Figure(workload: w, metric: "slowdown_vs_raw_loopback", value: syncSeconds / rawSeconds, unit: "x"))

    // 6. zlib on the same change sets: why senders use level 1.
    for level: Int32 in [1, 6] where !allBlocks.isEmpty {
        var compressedBytes = 0
        var rawBytes = 0
        let elapsed = try await seconds {
            for start in stride(from: 0, to: allBlocks.count, by: 1024) {
                let batch = try ChangeSet.encode(Array(allBlocks[start..<min(start + 1024, allBlocks.count)]), batch: 1, keys: [:], level: level)
                rawBytes += batch.size
                compressedBytes += batch.line.count
            }
        }
        emit(Figure(peer: "zlib-\(level)", workload: w, metric: "line_bytes_per_change", value: Double(compressedBytes) / Double(changes), unit: "bytes"))
        emit(Figure(peer: "zlib-\(level)", workload: w, metric: "encode_MB_per_s", value: Double(rawBytes) / elapsed / 1e6, unit: "MB/s"))
    }


    return tickets
}

/// The escalation ticker: one pass over every open ticket (fold, evaluate, write what is due),
/// beside the fold alone and a plain SQLite scan of the same blocks, in the same run.
@MainActor func escalationBench(root: String, tickets: Int) async throws {
    let (deskStore, deskPool) = try openStoreAndPool(root + "/desk", site: "central", role: .coordinator, key: SiteKey.generate(), synchronous: .off)
    let desk = try EscalationDesk(store: deskStore)
    _ = try desk.publish(Data(benchConfig.utf8), file: "bench", actor: "bench")
    let deskTickets = min(tickets, 2_000)
    note("escalation: \(deskTickets) tickets on a business calendar…")
    for i in 0..<deskTickets {
        let t = try deskStore.createTicket(TicketDraft(subject: "Ticket \(i)", priority: [.low, .normal, .high, .urgent][i % 4],
                                                       firstMessage: "help \(i)"))
        try desk.applyPolicy(UUID(uuidString: t.id)!, now: Int64(TicketDatabase.systemMillis()))
    }
    let ids = try deskStore.activeTicketIDs()
    var scanned = 0
    let scanSeconds = try await seconds {
        scanned = try deskPool.read { db in try Int.fetchOne(db, sql: "SELECT SUM(length(bytes)) FROM block") ?? 0 }
    }
    let foldSeconds = try await seconds { for id in ids { _ = try deskStore.ticketState(id.uuidString) } }
    let later = Int64(TicketDatabase.systemMillis()) + 3 * 86_400_000
    var fired = 0
    let schedule = TickSchedule()
    let firstPass = try await seconds { fired = try desk.tick(now: later, schedule: schedule).values.reduce(0) { $0 + $1.count } }
    // Without the schedule every ticket is folded and evaluated again; with it only changed or due ones.
    let fullPass = try await seconds { _ = try desk.tick(now: later) }
    let steadyPass = try await seconds { _ = try desk.tick(now: later, schedule: schedule) }
    emit(Figure(peer: "sqlite", workload: "escalation", metric: "scan_all_blocks_ms", value: scanSeconds * 1000, unit: "ms"))
    emit(Figure(workload: "escalation", metric: "fold_all_tickets_ms", value: foldSeconds * 1000, unit: "ms"))
    emit(Figure(workload: "escalation", metric: "tick_first_pass_ms", value: firstPass * 1000, unit: "ms"))
    emit(Figure(workload: "escalation", metric: "records_written_first_pass", value: Double(fired), unit: "records"))
    emit(Figure(workload: "escalation", metric: "tick_full_reevaluation_ms", value: fullPass * 1000, unit: "ms"))
    emit(Figure(workload: "escalation", metric: "tick_full_us_per_ticket", value: fullPass * 1e6 / Double(max(ids.count, 1)), unit: "us"))
    emit(Figure(workload: "escalation", metric: "tick_steady_pass_ms", value: steadyPass * 1000, unit: "ms"))
    _ = scanned

}

@MainActor func printTable(_ title: String) {
    guard !jsonOnly else { return }
    print("")
    print(title)
    // Columns as wide as their longest entry (a dashboard workload's name is longer than W1's).
    let workloadWidth = (figures.map(\.workload.count).max() ?? 0) + 2
    let metricWidth = max(42, (figures.map(\.metric.count).max() ?? 0) + 2)
    let peerWidth = max(14, (figures.map(\.peer.count).max() ?? 0) + 2)
    for f in figures {
        let value = f.value >= 100 ? String(format: "%.0f", f.value) : String(format: "%.3f", f.value)
        let ratio = f.error.map { "FAILED: \($0)" } ?? f.ratio.map { String(format: "%.2f×", $0) } ?? ""
        print(f.peer.padding(toLength: peerWidth, withPad: " ", startingAt: 0) + f.workload.padding(toLength: max(11, workloadWidth), withPad: " ", startingAt: 0)
              + f.metric.padding(toLength: metricWidth, withPad: " ", startingAt: 0)
              + value.padding(toLength: 14, withPad: " ", startingAt: 0) + f.unit.padding(toLength: 11, withPad: " ", startingAt: 0) + ratio)
    }
}
