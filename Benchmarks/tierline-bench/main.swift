// tierline-bench: sync figures beside their loopback ceiling, in one run.
//
//   swift run -c release tierline-bench [--changes N] [--json-only]
//   swift run -c release tierline-bench --dashboard [--sizes 10000,100000,1000000]
//
// Prints one JSON object per figure ({"peer","workload","metric","value","unit"}, the shape of
// ../shared/bench/peers) and then a table.
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
}

var figures: [Figure] = []
let arguments = CommandLine.arguments
let targetChanges = arguments.firstIndex(of: "--changes").flatMap { Int(arguments[$0 + 1]) } ?? 100_000
let jsonOnly = arguments.contains("--json-only")

func note(_ text: String) { if !jsonOnly { FileHandle.standardError.write(Data((text + "\n").utf8)) } }

@MainActor func emit(_ figure: Figure) {
    figures.append(figure)
    let value = figure.value.rounded() == figure.value ? String(Int(figure.value)) : String(format: figure.value < 0.1 ? "%.6f" : "%.3f", figure.value)
    print("{\"peer\":\"\(figure.peer)\",\"workload\":\"\(figure.workload)\",\"metric\":\"\(figure.metric)\",\"value\":\(value),\"unit\":\"\(figure.unit)\"}")
}

func seconds(_ work: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await work()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// A store in `folder`; `durable: false` skips fsync (only to fill the laptop quickly).
func openStore(_ folder: String, site: String?, role: SiteRole, key: SiteKey, durable: Bool) throws -> TicketDatabase {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var config = Configuration()
    config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(durable ? "FULL" : "OFF")") }
    let db = try TicketDatabase(DatabasePool(path: folder + "/tierline.sqlite", configuration: config), key: key)
    if let site { try db.initialize(site: try SiteID(site), role: role) }
    return db
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
defer { try? FileManager.default.removeItem(atPath: root) }
if arguments.contains("--dashboard") {
    let sizes = arguments.firstIndex(of: "--sizes").map { arguments[$0 + 1].split(separator: ",").compactMap { Int($0) } } ?? [10_000, 100_000, 1_000_000]
    try dashboardBench(sizes: sizes, root: root)
    printTable("dashboard summary over \(sizes.map(String.init).joined(separator: ", ")) tickets")
    exit(0)
}

var logger = Logger(label: "bench")
logger.logLevel = .critical

// 1. Fill a laptop store with offline work: tickets with fields, tags and a first message.
let laptopKey = SiteKey.generate()
var filler = try openStore(root + "/laptop", site: "laptop", role: .laptop, key: laptopKey, durable: false)
var changes = 0
var tickets = 0
var perTicket = 1
note("filling the laptop store with \(targetChanges) changes…")
while changes < targetChanges {
    let t = try filler.createTicket(TicketDraft(subject: "Ticket \(tickets): printer on floor \(tickets % 9) prints blank pages",
                                                priority: [.low, .normal, .high, .urgent][tickets % 4], customer: "customer-\(tickets % 500)",
                                                channel: "email", group: "group-\(tickets % 12)", assignee: "agent-\(tickets % 40)",
                                                tags: ["tag-\(tickets % 32)", "tag-\((tickets * 7) % 32)"],
                                                firstMessage: "Every page comes out blank since this morning (\(tickets))."))
    tickets += 1
    if tickets == 1 { perTicket = try filler.blocks(after: VersionVector()).reduce(0) { $0 + $1.changes.count } }
    changes = tickets * perTicket
    _ = t
}
let allBlocks = try filler.blocks(after: VersionVector())
changes = allBlocks.reduce(0) { $0 + $1.changes.count }
note("laptop: \(tickets) tickets, \(allBlocks.count) blocks, \(changes) changes")
filler = try openStore(root + "/laptop", site: nil, role: .laptop, key: laptopKey, durable: true)
let laptop = filler

// 2. A node with an empty durable store.
let nodeKey = SiteKey.generate()
let nodeStore = try openStore(root + "/node", site: "branch", role: .site, key: nodeKey, durable: true)
// One fleet: a coordinator outside the bench signs a roster listing both; each pins its key and
// holds that roster, as `tierline roster pin` and a first sync with the coordinator would leave them.
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
let node = try SyncNode(store: nodeStore, key: nodeKey, configuration: NodeConfiguration(listen: Endpoint(host: "127.0.0.1", port: 0)), logger: logger)
let port = try await node.bind()?.port ?? 0
let nodeTask = Task { try await node.run() }
let endpoint = Endpoint(host: "127.0.0.1", port: port)

// 3. The sync, timed end to end (connect, handshake, transfer, durable apply, acks, bye).
var summary: SessionSummary?
let syncSeconds = try await seconds {
    summary = try await SyncClient.exchange(store: laptop, key: laptopKey, with: endpoint, logger: logger)
}
guard let summary, try nodeStore.digest() == laptop.digest() else { fatalError("the node did not converge with the laptop") }
emit(Figure(workload: "sync", metric: "changes", value: Double(changes), unit: "changes"))
emit(Figure(workload: "sync", metric: "blocks", value: Double(summary.sentBlocks), unit: "blocks"))
emit(Figure(workload: "sync", metric: "seconds", value: syncSeconds, unit: "s"))
emit(Figure(workload: "sync", metric: "changes_per_s", value: Double(changes) / syncSeconds, unit: "changes/s"))
let wireBytes = summary.bytesOut + summary.bytesIn
emit(Figure(workload: "sync", metric: "wire_bytes_total", value: Double(wireBytes), unit: "bytes"))
emit(Figure(workload: "sync", metric: "wire_bytes_per_change", value: Double(wireBytes) / Double(changes), unit: "bytes"))
emit(Figure(workload: "sync", metric: "changeset_bytes_per_change_uncompressed", value: Double(summary.changeSetBytesOut) / Double(changes), unit: "bytes"))

// 4. Nodes already in sync: the whole exchange costs only the handshake.
let again = try await SyncClient.exchange(store: laptop, key: laptopKey, with: endpoint, logger: logger)
emit(Figure(workload: "sync", metric: "in_sync_exchange_bytes", value: Double(again.bytesIn + again.bytesOut), unit: "bytes"))
node.shutdown()
_ = try? await nodeTask.value

// 5. The ceiling: the same wire bytes through a raw loopback socket, in the same run.
let rawSeconds = try rawLoopback(bytes: wireBytes)
emit(Figure(peer: "tcp-loopback", workload: "sync", metric: "same_bytes_seconds", value: rawSeconds, unit: "s"))
emit(Figure(peer: "tcp-loopback", workload: "sync", metric: "MB_per_s", value: Double(wireBytes) / rawSeconds / 1e6, unit: "MB/s"))
emit(Figure(workload: "sync", metric: "slowdown_vs_raw_loopback", value: syncSeconds / rawSeconds, unit: "x"))

// 6. zlib on the same change sets: why senders use level 1.
for level: Int32 in [1, 6] {
    var compressedBytes = 0
    var rawBytes = 0
    let elapsed = try await seconds {
        for start in stride(from: 0, to: allBlocks.count, by: 1024) {
            let batch = try ChangeSet.encode(Array(allBlocks[start..<min(start + 1024, allBlocks.count)]), batch: 1, keys: [:], level: level)
            rawBytes += batch.size
            compressedBytes += batch.line.count
        }
    }
    emit(Figure(peer: "zlib-\(level)", workload: "sync", metric: "line_bytes_per_change", value: Double(compressedBytes) / Double(changes), unit: "bytes"))
    emit(Figure(peer: "zlib-\(level)", workload: "sync", metric: "encode_MB_per_s", value: Double(rawBytes) / elapsed / 1e6, unit: "MB/s"))
}

// 7. The escalation ticker: one pass over every open ticket (fold, evaluate, write what is due),
// beside the fold alone and a plain SQLite scan of the same blocks, in the same run.
let deskStore = try openStore(root + "/desk", site: "central", role: .coordinator, key: SiteKey.generate(), durable: false)
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
    scanned = try deskStore.writer.read { db in try Int.fetchOne(db, sql: "SELECT SUM(length(bytes)) FROM block") ?? 0 }
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

printTable("sync of \(changes) changes (\(summary.sentBlocks) blocks, \(tickets) tickets) laptop → node over 127.0.0.1")

@MainActor func printTable(_ title: String) {
    guard !jsonOnly else { return }
    print("")
    print(title)
    for f in figures {
        let value = f.value >= 100 ? String(format: "%.0f", f.value) : String(format: "%.3f", f.value)
        print(f.peer.padding(toLength: 14, withPad: " ", startingAt: 0) + f.metric.padding(toLength: 42, withPad: " ", startingAt: 0)
              + value.padding(toLength: 14, withPad: " ", startingAt: 0) + f.unit)
    }
}
