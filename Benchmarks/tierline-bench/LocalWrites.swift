import CompressNIO
import Foundation
import GRDB
import NIOCore
import SyncWire
import TicketModel
import TicketStore

// W1 (local writes) and W2 (merge of concurrent work) of Benchmarks/WORKLOADS.md, on Tierline and
// on plain SQLite with the peers' plain schema ( one table, tags comma-joined,
// WAL, synchronous=NORMAL) in the same process, so each Tierline figure has its ratio beside it.

/// The peers' plain table, written with prepared statements.
struct PlainTable {
    let queue: DatabaseQueue
    let path: String

    /// Whether the table has the indexes a help desk's lists need, and every update moves its
    /// last-activity stamp (`updated_at`), as each Tierline write moves a ticket's.
    let listIndexed: Bool

    init(path: String, listIndexed: Bool = false) throws {
        self.path = path
        self.listIndexed = listIndexed
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        queue = try DatabaseQueue(path: path, configuration: config)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: """
                CREATE TABLE tickets(id INTEGER PRIMARY KEY, title TEXT, status TEXT, priority TEXT,
                  assignee TEXT, site TEXT, tags TEXT, created_at TEXT, updated_at TEXT)
                """)
            // Tierline's list indexes on the plain columns: newest activity first (whole, by
            // assignee, by site, by status) and newest created first (whole, by status, by site).
            if listIndexed {
                try db.execute(sql: """
                    CREATE INDEX tickets_on_updated ON tickets (updated_at, id);
                    CREATE INDEX tickets_on_assignee_updated ON tickets (assignee, updated_at, id);
                    CREATE INDEX tickets_on_site_updated ON tickets (site, updated_at, id);
                    CREATE INDEX tickets_on_status_updated ON tickets (status, updated_at, id);
                    CREATE INDEX tickets_on_created ON tickets (created_at, id);
                    CREATE INDEX tickets_on_status_created ON tickets (status, created_at, id);
                    CREATE INDEX tickets_on_site_created ON tickets (site, created_at, id);
                    """)
            }
        }
    }

    func create(_ tickets: [WorkTicket]) throws {
        try queue.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for (i, t) in tickets.enumerated() {
                try insert.execute(arguments: [i, t.title, t.status, t.priority, t.assignee, t.site, t.tags.joined(separator: ","),
                                               t.createdAt, t.updatedAt])
            }
        }
    }

    func apply(_ op: WorkOp, _ db: Database, serial: Int = 0) throws {
        let column = op.kind == .set ? op.key : "tags"
        let value = op.kind == .set ? op.value : op.tagsAfter
        if listIndexed, column != "updated_at" {
            // A stamp later than every created_at and updated_at the workload writes (made without
            // String(format:), which took 40% of this loop).
            let digits = String(serial)
            try db.cachedStatement(sql: "UPDATE tickets SET \(column) = ?, updated_at = ? WHERE id = ?")
                .execute(arguments: [value, "9999-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits, op.ticket])
        } else {
            try db.cachedStatement(sql: "UPDATE tickets SET \(column) = ? WHERE id = ?").execute(arguments: [value, op.ticket])
        }
    }

    func fileBytes() throws -> Int {
        try queue.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        return try fileSize(path)
    }
}

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
}

/// How a workload operation is written in Tierline. `pending` is `pending_customer` here; `closed`
/// becomes `solved`, because a closed Tierline ticket leaves `closed` only through a reopen.
enum TierlineMapping {
    static func status(_ s: String) -> String { s == "pending" ? "pending_customer" : s == "closed" ? "solved" : s }

    static func field(_ key: String) -> Field {
        switch key {
        case "title": .subject
        case "status": .status
        case "priority": .priority
        case "assignee": .assignee
        default: .custom(key)
        }
    }

    static func create(_ t: WorkTicket, in batch: inout LocalBatch) throws -> UUID {
        try batch.create(TicketDraft(subject: t.title, priority: Priority(rawValue: t.priority) ?? .normal, assignee: t.assignee, tags: t.tags),
                         fields: [(.status, .text(status(t.status))), (.custom("site"), .text(t.site)),
                                  (.custom("created_at"), .text(t.createdAt)), (.custom("updated_at"), .text(t.updatedAt))])
    }

    static func apply(_ op: WorkOp, ids: [UUID], in batch: inout LocalBatch) throws {
        let id = ids[op.ticket]
        switch op.kind {
        case .set: try batch.set(id, field(op.key), .text(op.key == "status" ? status(op.value) : op.value))
        case .tagAdd: try batch.addTag(id, op.key)
        case .tagRemove: try batch.removeTag(id, op.key)
        }
    }
}

@MainActor func w1(root: String, scale: Double) throws {
    let ticketCount = max(1, Int(100_000 * scale)), updateCount = max(1, Int(200_000 * scale)), autocommitCount = max(1, Int(20_000 * scale))
    let tickets = Workload.tickets(ticketCount, seed: 42)
    let allOps = Workload.updates(tickets, count: updateCount + autocommitCount, seed: 43)
    let ops = Array(allOps.prefix(updateCount)), autocommitOps = Array(allOps.suffix(autocommitCount))
    note("W1: \(ticketCount) tickets, \(updateCount) updates in one transaction, then up to \(autocommitCount) commits or 5 s…")

    let plain = try PlainTable(path: root + "/plain-w1.sqlite")
    let plainCreate = try timed { try plain.create(tickets) }
    let plainUpdate = try timed { try plain.queue.write { db in for op in ops { try plain.apply(op, db) } } }
    let (plainCommits, plainAutocommit) = try commitEach(autocommitOps, seconds: 5) { op in try plain.queue.write { db in try plain.apply(op, db) } }
    let plainBytes = try plain.fileBytes()
    let indexed = try PlainTable(path: root + "/plain-indexed-w1.sqlite", listIndexed: true)
    let indexedCreate = try timed { try indexed.create(tickets) }
    let indexedUpdate = try timed { try indexed.queue.write { db in for (i, op) in ops.enumerated() { try indexed.apply(op, db, serial: i) } } }
    let indexedBytes = try indexed.fileBytes()

    let (store, pool) = try openStoreAndPool(root + "/w1", site: "north", role: .site, key: SiteKey.generate(), synchronous: .normal)
    var ids: [UUID] = []
    ids.reserveCapacity(ticketCount)
    let create = try timed { try store.batch { batch in for t in tickets { ids.append(try TierlineMapping.create(t, in: &batch)) } } }
    let update = try timed { try store.batch { batch in for op in ops { try TierlineMapping.apply(op, ids: ids, in: &batch) } } }
    let (commits, autocommit) = try commitEach(autocommitOps, seconds: 5) { op in
        try store.batch { batch in try TierlineMapping.apply(op, ids: ids, in: &batch) }
    }
    // The benchmark checks itself: every ticket is there, with the last status the workload gave it.
    var expected = tickets
    for op in (ops + autocommitOps.prefix(commits)) where op.kind == .set { expected[op.ticket].setField(op.key, op.value) }
    let stored = try pool.read { db in
        try Row.fetchAll(db, sql: "SELECT id, status FROM ticket").reduce(into: [String: String]()) { $0[$1["id"]] = $1["status"] }
    }
    guard stored.count == ticketCount, ids.indices.allSatisfy({ stored[ids[$0].uuidString.lowercased()] == TierlineMapping.status(expected[$0].status) }) else {
        fatalError("W1: the Tierline store does not hold the tickets the workload wrote")
    }
    try pool.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    let bytes = try fileSize(root + "/w1/tierline.sqlite")

    emitPair("W1", "create", count: ticketCount, seconds: create, plainSeconds: plainCreate, unit: "tickets/s")
    emitPair("W1", "update_one_transaction", count: updateCount, seconds: update, plainSeconds: plainUpdate, unit: "ops/s")
    // What the list indexes alone cost plain SQLite: the ceiling a store that keeps them can reach.
    emitIndexed("create", count: ticketCount, seconds: indexedCreate, plainSeconds: plainCreate, tierlineSeconds: create, unit: "tickets/s")
    emitIndexed("update_one_transaction", count: updateCount, seconds: indexedUpdate, plainSeconds: plainUpdate, tierlineSeconds: update, unit: "ops/s")
    emitPair("W1", "update_autocommit", count: commits, seconds: autocommit, plainCount: plainCommits, plainSeconds: plainAutocommit, unit: "ops/s")

    // Durable commits: synchronous=FULL (a node's setting) fsyncs the WAL at every commit, on both.
    try plain.queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    let durableOps = Array(autocommitOps.prefix(2_000))
    let (plainDurable, plainDurableSeconds) = try commitEach(durableOps, seconds: 3) { op in try plain.queue.write { db in try plain.apply(op, db) } }
    let (durable, durableSeconds) = try commitEach(durableOps, seconds: 3) { op in
        try store.batch { batch in try TierlineMapping.apply(op, ids: ids, in: &batch) }
    }
    emitPair("W1", "update_durable_commit", count: durable, seconds: durableSeconds, plainCount: plainDurable, plainSeconds: plainDurableSeconds,
             unit: "ops/s")
    emit(Figure(peer: "sqlite-plain", workload: "W1", metric: "file_bytes_per_ticket", value: Double(plainBytes) / Double(ticketCount), unit: "bytes"))
    emit(Figure(peer: "sqlite-plain-indexed", workload: "W1", metric: "file_bytes_per_ticket", value: Double(indexedBytes) / Double(ticketCount),
                unit: "bytes", ratio: Double(indexedBytes) / Double(plainBytes)))
    emit(Figure(workload: "W1", metric: "file_bytes_per_ticket", value: Double(bytes) / Double(ticketCount), unit: "bytes",
                ratio: Double(bytes) / Double(plainBytes)))
    emit(Figure(workload: "W1", metric: "metadata_bytes_per_ticket", value: Double(bytes - plainBytes) / Double(ticketCount), unit: "bytes"))
}

/// Runs `commit` for each of `ops` until they run out or `seconds` pass (checked every 256).
/// - Returns: how many ran, and the time they took.
func commitEach(_ ops: [WorkOp], seconds limit: Double, _ commit: (WorkOp) throws -> Void) throws -> (count: Int, seconds: Double) {
    var count = 0
    let elapsed = try timed {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(limit * 1e9)
        for op in ops {
            try commit(op)
            count += 1
            if count % 256 == 0 && DispatchTime.now().uptimeNanoseconds > deadline { break }
        }
    }
    return (count, elapsed)
}

/// Emits a rate for plain SQLite and for Tierline, with Tierline's ratio to plain.
@MainActor func emitPair(_ workload: String, _ metric: String, count: Int, seconds: Double, plainCount: Int? = nil,
                         plainSeconds: Double, unit: String) {
    let plainRate = Double(plainCount ?? count) / plainSeconds, rate = Double(count) / seconds
    emit(Figure(peer: "sqlite-plain", workload: workload, metric: metric, value: plainRate, unit: unit))
    emit(Figure(workload: workload, metric: metric, value: rate, unit: unit, ratio: rate / plainRate))
}

/// Plain SQLite with the list indexes beside plain SQLite, and Tierline beside it.
@MainActor func emitIndexed(_ metric: String, count: Int, seconds: Double, plainSeconds: Double, tierlineSeconds: Double, unit: String) {
    let rate = Double(count) / seconds
    emit(Figure(peer: "sqlite-plain-indexed", workload: "W1", metric: metric, value: rate, unit: unit, ratio: rate * plainSeconds / Double(count)))
    emit(Figure(workload: "W1", metric: metric + "_vs_indexed", value: Double(count) / tierlineSeconds, unit: unit, ratio: seconds / tierlineSeconds))
}

/// What one replica sends the other: its delta as change-set lines, and the bytes that takes.
struct Delta {
    var lines: [[UInt8]] = []
    var raw = 0
    var zlib1 = 0
    var zlib6 = 0
    /// The same delta in protocol 3's compact change set (§2.3.1), zlib level 6.
    var zlib6Protocol3 = 0
    /// The same delta in protocol 2's change set (length-prefixed blocks), zlib level 6.
    var zlib6Protocol2 = 0
    /// How many entities went by a change the receiver holds instead of their id (§2.3.3).
    var heldEntities = 0
    /// The blocks' signatures (64 bytes each, which zlib does not shorten).
    var signatures = 0
    var encodeSeconds = 0.0
}

/// What `store` would send a peer that holds `peer`, as a session of protocol 5 sends it (§2.3.3):
/// pages of up to 1,024 blocks, each line the first blocks of its page that fit, entities the peer
/// holds named by one of their changes (looked up in the store, as a session does).
func encodeDelta(from store: TicketDatabase, to peer: VersionVector) throws -> Delta {
    var delta = Delta()
    var blocks: [Block] = []
    var slices: [(range: Range<Int>, held: [UUID: Dot])] = []
    delta.encodeSeconds = try timed {
        blocks = try store.blocks(after: peer)
        var start = 0
        while start < blocks.count {
            let page = Array(blocks[start..<min(start + 1024, blocks.count)])
            let held = try store.heldChanges(for: ColumnarChangeSet.entitiesToLookUp(page), within: peer)
            let encoded = try ChangeSet.encode(page, batch: 1, keys: [:], level: 1, format: .columnar, held: held)
            delta.lines.append(encoded.line)
            delta.raw += encoded.size
            delta.zlib1 += compressedBytes(encoded.line)
            slices.append((start..<start + encoded.blockCount, held))
            start += encoded.blockCount
        }
    }
    for (slice, held) in slices {
        let page = Array(blocks[slice])
        let columnar = try ChangeSet.encode(page, batch: 1, keys: [:], level: 6, format: .columnar, held: held)
        guard columnar.blockCount == slice.count else { fatalError("W2: a slice that fit at zlib level 1 does not fit at level 6") }
        delta.zlib6 += compressedBytes(columnar.line)
        delta.heldEntities += Set(page.flatMap { $0.changes.map(\.entity.id) }).intersection(held.keys).count
        var start = 0
        while start < page.count {
            let compact = try ChangeSet.encode(Array(page[start...]), batch: 1, keys: [:], level: 6, format: .compact)
            delta.zlib6Protocol3 += compressedBytes(compact.line)
            start += compact.blockCount
        }
        delta.zlib6Protocol2 += compressedBytes(try ChangeSet.encode(page, batch: 1, keys: [:], level: 6).line)
        delta.signatures += slice.count * 64
    }
    return delta
}

/// The length of `bytes` deflated by zlib at level 6.
func deflated(_ bytes: [UInt8]) throws -> Int {
    var buffer = ByteBuffer(bytes: bytes)
    return try buffer.compress(with: .zlib(configuration: .init(compressionLevel: 6))).readableBytes
}

/// The zlib bytes inside a `blocks` line (its base64 `data` member, decoded length).
func compressedBytes(_ line: [UInt8]) -> Int {
    let text = String(decoding: line, as: UTF8.self)
    guard let start = text.range(of: "\"data\":\""), let end = text[start.upperBound...].firstIndex(of: "\"") else { return 0 }
    return ChangeSet.decodedLength(base64: String(text[start.upperBound..<end]))
}

/// Decodes and applies a delta as a receiving node would (one transaction per line): held entities
/// are looked up in the store, then the blocks put together are applied.
func applyDelta(_ delta: Delta, to store: TicketDatabase) throws -> ApplyReport {
    var total = ApplyReport()
    for line in delta.lines {
        guard case .batch(let raw) = try Frame.decodeDeferringBatches(line: line) else { fatalError("W2: a delta line is not a batch") }
        let parsed = try raw.parseColumnar()
        let batch = try raw.batch(of: try parsed.blocks(resolved: try store.entityIDs(at: parsed.heldChanges)))
        let report = try store.apply(batch.blocks)
        total.applied += report.applied
        total.held += report.held
        total.refused += report.refused
    }
    return total
}

@MainActor func w2(root: String, scale: Double) throws {
    let base = max(1, Int(10_000 * scale)), updates = max(1, Int(50_000 * scale)), perCommit = 100
    note("W2: \(base) shared tickets, \(updates) concurrent updates on each of two replicas, \(perCommit) per commit…")
    let tickets = Workload.tickets(base, seed: 42)
    let eastKey = SiteKey.generate(), westKey = SiteKey.generate()
    let east = try openStore(root + "/w2-east", site: "east", role: .site, key: eastKey, synchronous: .normal)
    let west = try openStore(root + "/w2-west", site: "west", role: .site, key: westKey, synchronous: .normal)
    try east.learn(keys: [try SiteID("west"): westKey.publicKey])
    try west.learn(keys: [try SiteID("east"): eastKey.publicKey])
    var ids: [UUID] = []
    try east.batch { batch in for t in tickets { ids.append(try TierlineMapping.create(t, in: &batch)) } }
    let created = try east.blocks(after: VersionVector())
    _ = try west.apply(created)
    guard try west.digest() == east.digest() else { fatalError("W2: the replicas differ before the concurrent work") }

    let plain = try PlainTable(path: root + "/plain-w2.sqlite")
    try plain.create(tickets)
    var localSeconds: [Double] = []
    var plainSeconds = 0.0
    for (store, seed) in [(east, UInt64(100)), (west, UInt64(200))] {
        let ops = Workload.updates(tickets, count: updates, seed: seed)
        localSeconds.append(try timed {
            for start in stride(from: 0, to: ops.count, by: perCommit) {
                try store.batch { batch in for op in ops[start..<min(start + perCommit, ops.count)] { try TierlineMapping.apply(op, ids: ids, in: &batch) } }
            }
        })
        plainSeconds += try timed {
            for start in stride(from: 0, to: ops.count, by: perCommit) {
                try plain.queue.write { db in for op in ops[start..<min(start + perCommit, ops.count)] { try plain.apply(op, db) } }
            }
        }
    }
    let eastVector = try east.vector(), westVector = try west.vector()
    let eastDelta = try encodeDelta(from: east, to: westVector)
    let westDelta = try encodeDelta(from: west, to: eastVector)
    var reports: [ApplyReport] = []
    let westApplies = try timed { reports.append(try applyDelta(eastDelta, to: west)) }
    let eastApplies = try timed { reports.append(try applyDelta(westDelta, to: east)) }
    let converged = try east.digest() == west.digest()
    guard converged, reports.allSatisfy({ $0.refused.isEmpty && $0.held == 0 }) else {
        fatalError("W2: the replicas did not converge (refused \(reports.map(\.refused.count)), held \(reports.map(\.held)))")
    }
    // The plain rate: the same updates, 100 per commit, on the plain table (both replicas' worth).
    let plainRate = Double(2 * updates) / plainSeconds
    emit(Figure(peer: "sqlite-plain", workload: "W2", metric: "local_updates", value: plainRate, unit: "ops/s"))
    emit(Figure(workload: "W2", metric: "local_updates", value: Double(2 * updates) / localSeconds.reduce(0, +), unit: "ops/s",
                ratio: Double(2 * updates) / localSeconds.reduce(0, +) / plainRate))
    emit(Figure(workload: "W2", metric: "delta_bytes_raw", value: Double(eastDelta.raw), unit: "bytes"))
    emit(Figure(workload: "W2", metric: "delta_bytes_zlib1", value: Double(eastDelta.zlib1), unit: "bytes"))
    emit(Figure(workload: "W2", metric: "delta_bytes_zlib6", value: Double(eastDelta.zlib6), unit: "bytes", ratio: Double(eastDelta.zlib6) / 338_044))
    emit(Figure(workload: "W2", metric: "delta_bytes_zlib6_protocol3", value: Double(eastDelta.zlib6Protocol3), unit: "bytes"))
    emit(Figure(workload: "W2", metric: "delta_bytes_zlib6_protocol2", value: Double(eastDelta.zlib6Protocol2), unit: "bytes"))
    emit(Figure(workload: "W2", metric: "delta_entities_by_held_change", value: Double(eastDelta.heldEntities), unit: "entities"))
    emit(Figure(workload: "W2", metric: "delta_bytes_of_which_signatures", value: Double(eastDelta.signatures), unit: "bytes"))
    emit(Figure(workload: "W2", metric: "encode_ms", value: eastDelta.encodeSeconds * 1000, unit: "ms"))
    emit(Figure(workload: "W2", metric: "apply_ms", value: westApplies * 1000, unit: "ms", ratio: westApplies * 1000 / 249))
    emit(Figure(workload: "W2", metric: "apply_ms_other_way", value: eastApplies * 1000, unit: "ms"))
    emit(Figure(workload: "W2", metric: "apply_updates_per_s", value: Double(updates) / westApplies, unit: "ops/s",
                ratio: Double(updates) / westApplies / plainRate))
    emit(Figure(workload: "W2", metric: "converged", value: converged ? 1 : 0, unit: "yes=1"))
}
