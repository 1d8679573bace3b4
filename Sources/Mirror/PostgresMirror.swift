import Dashboard
import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TicketModel
import TicketStore

/// Keeps a PostgreSQL schema current from a store, one way: nothing replicated is written to the
/// store (with ``facts`` set, each step brings the dashboard's derived facts up to date first, as
/// the dashboard does, then copies them).
///
/// Reads the store's log in (origin, seq) order after the schema's cursor, a batch at a time; for
/// each batch it reads the current rows of every ticket, customer and article the blocks touched
/// (one SQLite read transaction), and in one PostgreSQL transaction upserts them, deletes the child
/// rows that vanished, and advances the cursor. Re-running a batch writes the same rows, so a
/// mirror killed at any point resumes from its cursor with nothing missing and nothing doubled.
///
/// ```swift
/// let mirror = PostgresMirror(store: store, target: target)
/// let status = try await mirror.run(live: false) { print($0.behindBlocks) }
/// ```
///
/// Runs on the calling task; SQLite reads go through GRDB's async reads, off the event loops.
public struct PostgresMirror: Sendable {
    public var store: TicketDatabase
    public var target: PostgresTarget
    public var logger: Logger
    public var limits: BatchLimits
    /// Between two looks at the store when nothing is left to mirror (live mode).
    public var pollInterval: Duration
    /// Longest wait for one batch (its queries and transaction), or for a connection with its
    /// migration: past it the connection is dropped and the mirror reconnects, as after a lost
    /// connection. PostgreSQL's `statement_timeout` is set to it too (`lock_timeout` to half of it).
    /// `tierline mirror --timeout-millis`, node.json's `mirror.timeoutMillis`.
    public var stepLimit: Duration = .seconds(120)
    /// The oldest PostgreSQL the mirror writes to (`server_version_num`): its views use
    /// `date_trunc(…, 'UTC')` (PostgreSQL 12).
    public static let minimumServerVersion = 120_000
    /// The dashboard's facts, mirrored after each batch of blocks (`nil`: not mirrored).
    public var facts: MetricIndex?
    /// How long one step derives facts at most before it mirrors what is derived.
    public var factSlice: Duration = .milliseconds(500)
    /// Reported after every batch and every retry.
    public typealias Report = @Sendable (MirrorStatus) -> Void

    public init(store: TicketDatabase, target: PostgresTarget, logger: Logger, limits: BatchLimits = BatchLimits(),
                pollInterval: Duration = .milliseconds(500)) {
        self.store = store
        self.target = target
        self.logger = logger
        self.limits = limits
        self.pollInterval = pollInterval
    }

    /// Mirrors until the store's log is covered (`live == false`), or forever, following the store
    /// (`live == true`) until the task is cancelled.
    ///
    /// A connection that fails before the first batch ends the run with its error (a wrong password
    /// or URL does not heal by itself); once connected, a lost connection or a failed statement is
    /// retried with a growing pause (at most 10 s), from the cursor PostgreSQL holds.
    ///
    /// One mirror writes a schema at a time: after connecting, the run takes the schema's
    /// session-level advisory lock (`pg_try_advisory_lock`), held until its connection ends; when
    /// another mirror holds it, the run ends with ``MirrorError`` `schemaBusy` and writes nothing.
    ///
    /// Before its first connection the run reports the cursors of the last ``MirrorReport`` kept in
    /// the store for the same target and schema, with the lag measured from them; without one the
    /// lag is unknown (`nil`) until PostgreSQL's cursors are read.
    /// - Returns: the status at the end.
    /// - Throws: ``MirrorError``, or `CancellationError` when cancelled.
    public func run(live: Bool, report: Report = { _ in }) async throws -> MirrorStatus {
        var status = await startingStatus()
        report(status)
        var everConnected = false
        var failures = 0
        while true {
            try Task.checkCancellation()
            // Closed on cancellation (SIGTERM, Ctrl-C, a node's shutdown) and on a timeout: a query
            // PostgreSQL never answers fails then, and the task ends; cancelling alone does not stop it.
            let holder = ConnectionHolder()
            do { do {
                return try await withTaskCancellationHandler {
                    let connection = try await bounded(stepLimit, timeout: { MirrorError(.postgres, "no answer from PostgreSQL within \(stepLimit) while connecting") }) {
                        [self] in
                        let connection = try await connect()
                        try await holder.keep(connection)
                        let version = try await checkServerVersion(connection)
                        try await limitSession(connection, serverVersion: version)
                        try await lockSchema(connection)
                        try await migrate(connection)
                        return connection
                    }
                    everConnected = true
                    status.connected = true
                    status.lastError = nil
                    // Counted down only by progress: a step that times out every time (too short a
                    // --timeout-millis for a batch) must end a --once run, not reconnect for ever.
                    while true {
                        try Task.checkCancellation()
                        // A query sent on a connection the server closed meanwhile (a restart) never
                        // answers: look first, and reconnect.
                        guard !connection.isClosed else { throw MirrorError(.postgres, "the server closed the connection") }
                        let (moved, next) = try await bounded(stepLimit, timeout: {
                            MirrorError(.postgres, "a batch did not finish within \(stepLimit) (PostgreSQL did not answer, or reading the store and deriving its facts took longer); if PostgreSQL is reachable, raise --timeout-millis (mirror.timeoutMillis)")
                        }) {
                            [self, status] in
                            var status = status
                            let moved = try await step(connection, status: &status)
                            return (moved, status)
                        }
                        status = next
                        if moved { failures = 0 }
                        report(status)
                        if !moved {
                            if !live { try? await connection.close(); return status }
                            try await Task.sleep(for: pollInterval)
                        }
                    }
                } onCancel: {
                    holder.close()
                }
            } catch {
                logger.debug("mirror.closing", metadata: ["mirror.error": "\(Self.describe(error))"])
                await holder.closed()
                logger.debug("mirror.closed")
                throw error
            } } catch let error as MirrorError where error.code != .postgres {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let text = Self.describe(error)
                guard everConnected, live || failures < 5 else { throw MirrorError(.postgres, "\(target): \(text)") }
                failures += 1
                status.connected = false
                status.lastError = text
                // The store moves on while PostgreSQL is away: the lag grows from the last cursors.
                status = await withLag(status)
                report(status)
                logger.info("mirror.retry", metadata: ["mirror.error": "\(text)", "mirror.attempt": "\(failures)"])
                try await Task.sleep(for: .milliseconds(min(10_000, 250 << min(failures, 6))))
            }
        }
    }

    func connect() async throws -> PostgresConnection {
        let configuration: PostgresConnection.Configuration
        do { configuration = try target.configuration() } catch {
            throw MirrorError(.badTarget, "the TLS settings for \(target) do not load: \(error)")
        }
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw MirrorError(.postgres, "cannot connect to \(target): \(Self.describe(error))")
        }
    }

    /// Reads the server's version. - Returns: its `server_version_num`.
    /// - Throws: ``MirrorError`` `oldServer` below ``minimumServerVersion``.
    func checkServerVersion(_ connection: PostgresConnection) async throws -> Int64 {
        var number: Int64 = 0, text = "?"
        for try await (n, t) in try await query(connection, "SELECT current_setting('server_version_num')::int8, current_setting('server_version')")
            .decode((Int64, String).self) {
            (number, text) = (n, t)
        }
        try Self.requireServerVersion(number, text, target: target)
        return number
    }

    /// - Throws: ``MirrorError`` `oldServer` when `number` (`server_version_num`) is below ``minimumServerVersion``.
    static func requireServerVersion(_ number: Int64, _ text: String, target: PostgresTarget) throws(MirrorError) {
        guard number < minimumServerVersion else { return }
        throw MirrorError(.oldServer, "\(target) runs PostgreSQL \(text) (server_version_num \(number)); the mirror needs PostgreSQL 12 or newer (server_version_num \(minimumServerVersion)): upgrade the server, or mirror into a newer one")
    }

    /// Takes the schema's lock for the session: one mirror writes a schema at a time, and this
    /// connection keeps the lock until it ends (PostgreSQL releases it with the session).
    /// - Throws: ``MirrorError`` `schemaBusy` when another session holds it.
    func lockSchema(_ connection: PostgresConnection) async throws {
        let s = target.schema
        var locked = false
        for try await (held) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock(hashtext('tierline-mirror:' || $1))",
                                                                         binds: bindings { $0.append(s) })).decode(Bool.self) {
            locked = held
        }
        guard locked else {
            throw MirrorError(.schemaBusy, "another mirror is writing schema \(s) of \(target) (it holds the schema's lock); this one writes nothing. Stop the other one (pg_stat_activity shows it as application_name tierline-mirror), or mirror into another --schema")
        }
    }

    /// The status a run starts from: the cursors of the last report kept in the store for this same
    /// target and schema (a node restarted during an outage keeps counting its lag from them), with
    /// the lag measured now; else the lag is unknown until PostgreSQL's cursors are read.
    func startingStatus() async -> MirrorStatus {
        let fresh = MirrorStatus(target: target.description)
        let report = try? await store.writer.read { db in try MirrorReport.read(db) }
        guard let report, report.status.target == target.description, report.status.isLagKnown else { return fresh }
        var status = fresh
        status.cursors = report.status.cursors
        do { try await measureLag(&status) } catch { return fresh }
        return status
    }

    /// Creates or upgrades the schema to ``MirrorSchema/migrations(schema:)``, and claims it for this
    /// store: a schema holding another store's mirror is refused.
    func migrate(_ connection: PostgresConnection) async throws {
        let s = target.schema
        let site = try await store.writer.read { db in try String.fetchOne(db, sql: "SELECT site FROM localSite WHERE id = 1") } ?? ""
        // Under the schema's session lock (lockSchema): no other mirror migrates or writes meanwhile.
        try await transaction(connection) { connection in
            let exists = try await query(connection, PostgresQuery(unsafeSQL: "SELECT 1 FROM pg_namespace WHERE nspname = $1", binds: bindings { $0.append(s) })).collect()
            if exists.isEmpty {
                try await query(connection, PostgresQuery(unsafeSQL: "CREATE SCHEMA \(s)"))
            }
            try await query(connection, PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(s).mirror_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"))
            var version = 0
            for try await (v) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT COALESCE(MAX(version), 0) FROM \(s).mirror_schema")).decode(Int.self) {
                version = v
            }
            let migrations = MirrorSchema.migrations(schema: s)
            guard version <= migrations.count else {
                throw MirrorError(.newerSchema, "schema \(s) was made by a newer Tierline (version \(version), this one knows \(migrations.count)); run that version, or mirror into another --schema")
            }
            // Names in what the migrations make resolve to the built-ins, not to what a role that can
            // create in `public` put there.
            try await query(connection, PostgresQuery(unsafeSQL: "SET LOCAL search_path = pg_catalog, pg_temp"))
            for (index, statements) in migrations.enumerated().dropFirst(version) {
                for sql in statements { try await query(connection, PostgresQuery(unsafeSQL: sql)) }
                try await query(connection, PostgresQuery(unsafeSQL: "INSERT INTO \(s).mirror_schema (version) VALUES ($1)", binds: bindings { $0.append(index + 1) }))
            }
            var owner: String?
            for try await (o) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT site FROM \(s).source WHERE id = 1")).decode(String.self) {
                owner = o
            }
            if let owner, owner != site {
                throw MirrorError(.badTarget, "schema \(s) mirrors the store of site \(owner), not this one (\(site)); mirror into another --schema")
            }
            if owner == nil {
                try await query(connection, PostgresQuery(unsafeSQL: "INSERT INTO \(s).source (id, site) VALUES (1, $1)", binds: bindings { $0.append(site) }))
            }
        }
    }

    /// Mirrors one batch. - Returns: whether the cursor moved.
    func step(_ connection: PostgresConnection, status: inout MirrorStatus) async throws -> Bool {
        let s = target.schema
        var cursors: [String: Int64] = [:]
        for try await (origin, seq) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT origin, seq FROM \(s).cursor"))
            .decode((String, Int64).self) {
            cursors[origin] = seq
        }
        var roster: Int64 = 0
        for try await (version) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT roster_version FROM \(s).source WHERE id = 1")).decode(Int64.self) {
            roster = version
        }
        let limits = self.limits
        let known = cursors
        let batch = try await store.writer.read { db in try StoreBatch.read(db, after: known, limits: limits) }
        // A roster adoption can fold tickets again without a new block (a site's role changed, a
        // removed site's blocks taken back): no cursor tells which, so the mirror starts over.
        if !cursors.isEmpty && (batch.rosterVersion != roster || batch.logShrank) {
            try await restart(on: connection, roster: batch.rosterVersion)
            logger.info("mirror.restart", metadata: ["mirror.roster": "\(batch.rosterVersion)"])
            status.cursors = [:]
            return true
        }
        if !batch.isEmpty {
            try await write(batch, on: connection)
            for cursor in batch.cursors { cursors[cursor.origin] = cursor.seq }
            status.batches += 1
            status.blocks += batch.blocks
            status.tickets += batch.tickets.count
            status.customers += batch.customers.count
            status.articles += batch.articles.count
            status.events += batch.rows[MirrorSchema.event.name]?.count ?? 0
        }
        status.cursors = cursors
        // Blocks first: while whole batches of them wait, the facts wait (they follow the blocks).
        let factsMoved = batch.isFull ? false : try await stepFacts(connection, status: &status)
        try await measureLag(&status)
        return !batch.isEmpty || factsMoved
    }

    /// Brings the dashboard's facts up to date for a while (the dashboard does the same; they share
    /// the work), then mirrors one page of the facts that changed after the schema's fact cursor, and
    /// the cursor, in one PostgreSQL transaction. - Returns: whether the fact cursor moved.
    func stepFacts(_ connection: PostgresConnection, status: inout MirrorStatus) async throws -> Bool {
        guard let facts else { return false }
        let s = target.schema
        // A slice, not the whole backlog: a first derivation of a large store takes minutes, and the
        // blocks (and this step's time limit) must not wait for it.
        let until = ContinuousClock.now + factSlice
        try await facts.refresh(now: Int64(Date().timeIntervalSince1970 * 1000), shouldContinue: { ContinuousClock.now < until })
        var cursor: Int64 = 0
        for try await (seq) in try await query(connection, PostgresQuery(unsafeSQL: "SELECT seq FROM \(s).fact_cursor WHERE id = 1")).decode(Int64.self) {
            cursor = seq
        }
        var page = try await facts.facts(after: cursor, limit: limits.facts)
        let restart = cursor > page.head
        if restart {
            // The facts were made again from nothing (the dashboard's tables rebuilt): so is the copy.
            logger.info("mirror.facts.restart", metadata: ["mirror.factCursor": "\(cursor)", "mirror.factHead": "\(page.head)"])
            cursor = 0
            page = try await facts.facts(after: 0, limit: limits.facts)
        }
        status.factsBehind = Int64(page.pending + page.after)
        guard !page.changes.isEmpty || restart else {
            status.factCursor = page.cursor
            return false
        }
        try await transaction(connection) { connection in
            if restart {
                try await query(connection, PostgresQuery(unsafeSQL: "TRUNCATE \(s).fact_ticket, \(s).fact_clock, \(s).fact_handoff"))
            }
            let tickets = page.changes.map(\.ticket)
            let gone = page.changes.filter { $0.facts == nil }.map(\.ticket)
            let rows = page.changes.compactMap(\.facts)
            try await query(connection, PostgresQuery(unsafeSQL: "DELETE FROM \(s).fact_clock WHERE ticket = ANY($1::text[])", binds: bindings { $0.append(tickets) }))
            try await query(connection, PostgresQuery(unsafeSQL: "DELETE FROM \(s).fact_handoff WHERE ticket = ANY($1::text[])", binds: bindings { $0.append(tickets) }))
            try await query(connection, PostgresQuery(unsafeSQL: "DELETE FROM \(s).fact_ticket WHERE id = ANY($1::text[])", binds: bindings { $0.append(gone) }))
            try await upsert(MirrorSchema.factTicket, try rows.map { try Self.values($0, MirrorSchema.factTicket) }, on: connection)
            try await upsert(MirrorSchema.factClock, try rows.flatMap { try $0.clocks.map { try Self.values($0, MirrorSchema.factClock) } }, on: connection)
            try await upsert(MirrorSchema.factHandoff, try rows.flatMap { try $0.handoffs.map { try Self.values($0, MirrorSchema.factHandoff) } }, on: connection)
            try await query(connection, PostgresQuery(unsafeSQL: """
                INSERT INTO \(s).fact_cursor (id, seq, mirrored_at) VALUES (1, $1, now())
                ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, mirrored_at = now()
                """, binds: bindings { $0.append(page.cursor) }))
        }
        status.facts += page.changes.count
        status.factCursor = page.cursor
        status.factsBehind = Int64(page.pending + page.after)
        return !page.changes.isEmpty
    }

    /// A fact row's values in `table`'s column order, by each column's stored name.
    static func values(_ record: some EncodableRecord, _ table: MirrorSchema.Table) throws -> [DatabaseValue] {
        let stored = try record.databaseDictionary
        return table.columns.map { stored[$0.source] ?? .null }
    }

    /// Sets `status`'s behind-blocks and -seconds from the store against `status.cursors`, which are
    /// PostgreSQL's (none: nothing mirrored yet, so every block is behind).
    func measureLag(_ status: inout MirrorStatus) async throws {
        let after = status.cursors
        let lag = try await store.writer.read { db in try StoreBatch.lag(db, after: after) }
        status.behindBlocks = lag.blocks
        status.behindSeconds = lag.oldestHLC.map { max(0, Date().timeIntervalSince1970 - Double(HLC(rawValue: UInt64(bitPattern: $0)).millis) / 1000) } ?? 0
    }

    /// `status` with its lag measured now; unchanged when the store cannot be read, or when the lag
    /// is unknown (no cursor of PostgreSQL's known yet: measuring from none would count every block).
    public func withLag(_ status: MirrorStatus) async -> MirrorStatus {
        guard status.isLagKnown else { return status }
        var measured = status
        do { try await measureLag(&measured) } catch { return status }
        return measured
    }

    /// Bounds every statement and lock wait of the session on PostgreSQL's side too.
    func limitSession(_ connection: PostgresConnection, serverVersion: Int64) async throws {
        let millis = stepLimit.components.seconds * 1000 + stepLimit.components.attoseconds / 1_000_000_000_000_000
        try await query(connection, PostgresQuery(unsafeSQL: "SET statement_timeout = \(max(1, millis))"))
        try await query(connection, PostgresQuery(unsafeSQL: "SET lock_timeout = \(max(1, millis / 2))"))
        // A session this mirror left (a client that timed out, a connection that dropped) must not hold
        // its transaction, and the schema's advisory lock, until TCP notices.
        try await query(connection, PostgresQuery(unsafeSQL: "SET idle_in_transaction_session_timeout = \(max(1, millis))"))
        // A connection lost without a reset (a network gone) keeps this session, and the schema's
        // lock, until the server notices: probe it after a minute of silence, give up after a minute
        // more (PostgreSQL 12 and 13 have no idle_session_timeout).
        try await query(connection, "SET tcp_keepalives_idle = 60")
        try await query(connection, "SET tcp_keepalives_interval = 10")
        try await query(connection, "SET tcp_keepalives_count = 6")
        // Nor, idle, the schema's session lock after the mirror lost it (a vanished network): a live
        // mirror speaks at least every step. PostgreSQL 14 and newer only.
        if serverVersion >= 140_000 {
            try await query(connection, PostgresQuery(unsafeSQL: "SET idle_session_timeout = \(max(1, 2 * millis))"))
        }
    }

    /// Empties the mirrored tables and the cursor, and records the roster version the next batches
    /// are read under, in one transaction.
    func restart(on connection: PostgresConnection, roster: Int64) async throws {
        let s = target.schema
        try await transaction(connection) { connection in
            let tables = ([MirrorSchema.ticket, MirrorSchema.customer, MirrorSchema.article, MirrorSchema.site] + MirrorSchema.ticketChildren).map { "\(s).\($0.name)" }
            try await query(connection, PostgresQuery(unsafeSQL: "TRUNCATE \(tables.joined(separator: ", ")), \(s).cursor"))
            try await query(connection, PostgresQuery(unsafeSQL: "UPDATE \(s).source SET roster_version = $1", binds: bindings { $0.append(roster) }))
        }
    }

    /// Writes `batch` and its cursor in one PostgreSQL transaction.
    func write(_ batch: StoreBatch, on connection: PostgresConnection) async throws {
        let s = target.schema
        // One writer per schema: this session holds the schema's lock (lockSchema), so the cursors
        // `step` read are still PostgreSQL's.
        try await transaction(connection) { connection in
            let entities: [(MirrorSchema.Table, [String])] = [
                (MirrorSchema.ticket, batch.tickets), (MirrorSchema.customer, batch.customers), (MirrorSchema.article, batch.articles),
            ]
            // Tickets: also the rows of merging tickets no block of the batch touched (StoreBatch).
            for (table, ids) in entities where !ids.isEmpty || !(batch.rows[table.name] ?? []).isEmpty {
                let rows = batch.rows[table.name] ?? []
                try await upsert(table, rows, on: connection)
                try await deleteVanished(table, parents: ids, rows: rows, on: connection)
            }
            if !batch.tickets.isEmpty {
                for table in MirrorSchema.ticketChildren {
                    let rows = batch.rows[table.name] ?? []
                    try await upsert(table, rows, on: connection)
                    try await deleteVanished(table, parents: batch.tickets, rows: rows, on: connection)
                }
            }
            try await upsert(MirrorSchema.site, batch.sites, on: connection)
            let sites = batch.sites.compactMap { String.fromDatabaseValue($0[0]) }
            try await query(connection, PostgresQuery(unsafeSQL: "DELETE FROM \(s).site WHERE site <> ALL($1::text[])", binds: bindings { $0.append(sites) }))
            try await query(connection, PostgresQuery(unsafeSQL: "UPDATE \(s).source SET roster_version = $1", binds: bindings { $0.append(batch.rosterVersion) }))
            for cursor in batch.cursors {
                try await query(connection, PostgresQuery(unsafeSQL: """
                    INSERT INTO \(s).cursor (origin, seq, newest_hlc, mirrored_at) VALUES ($1, $2, $3, now())
                    ON CONFLICT (origin) DO UPDATE SET seq = EXCLUDED.seq, newest_hlc = EXCLUDED.newest_hlc, mirrored_at = now()
                    """, binds: bindings { $0.append(cursor.origin); $0.append(cursor.seq); $0.append(cursor.hlc) }))
            }
        }
    }

    /// `INSERT … ON CONFLICT DO UPDATE` of `rows`, several hundred rows a statement; a row equal to
    /// the stored one is not rewritten.
    func upsert(_ table: MirrorSchema.Table, _ rows: [[DatabaseValue]], on connection: PostgresConnection) async throws {
        guard !rows.isEmpty else { return }
        let columns = table.columns
        let names = columns.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let others = columns.filter { !table.key.contains($0.name) }.map { "\"\($0.name)\"" }
        let conflict: String
        if others.isEmpty {
            conflict = "DO NOTHING"
        } else {
            let set = others.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
            let old = others.map { "t.\($0)" }.joined(separator: ", ")
            let new = others.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
            conflict = "DO UPDATE SET \(set) WHERE (\(old)) IS DISTINCT FROM (\(new))"
        }
        let perStatement = max(1, min(1_000, 30_000 / columns.count))
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            start += chunk.count
            var binds = PostgresBindings(capacity: chunk.count * columns.count)
            var tuples: [String] = []
            tuples.reserveCapacity(chunk.count)
            for row in chunk {
                var marks: [String] = []
                for (value, column) in zip(row, columns) {
                    try Self.bind(value, as: column.type, into: &binds)
                    marks.append("$\(binds.count)::\(column.type.rawValue)")
                }
                tuples.append("(" + marks.joined(separator: ",") + ")")
            }
            let sql = "INSERT INTO \(target.schema).\(table.name) AS t (\(names)) VALUES \(tuples.joined(separator: ",")) ON CONFLICT (\(table.key.map { "\"\($0)\"" }.joined(separator: ", "))) \(conflict)"
            try await query(connection, PostgresQuery(unsafeSQL: sql, binds: binds))
        }
    }

    /// Deletes the rows of `table` that belong to `parents` (child tables: by ticket; entity tables:
    /// by id) but are not among `rows`: gone from the store since the last mirror of them.
    func deleteVanished(_ table: MirrorSchema.Table, parents: [String], rows: [[DatabaseValue]], on connection: PostgresConnection) async throws {
        let keyIndexes = table.key.map { key in table.columns.firstIndex { $0.name == key }! }
        var binds = PostgresBindings()
        binds.append(parents)
        for index in keyIndexes {
            binds.append(rows.map { String.fromDatabaseValue($0[index]).map(Self.clean) ?? "" })
        }
        let parent = table.parent ?? table.key[0]
        let unnest = keyIndexes.indices.map { "$\($0 + 2)::text[]" }.joined(separator: ", ")
        let names = table.key.map { "\"\($0)\"" }.joined(separator: ", ")
        let match = table.key.map { "k.\"\($0)\" = d.\"\($0)\"" }.joined(separator: " AND ")
        let sql = """
            DELETE FROM \(target.schema).\(table.name) d WHERE d."\(parent)" = ANY($1::text[])
              AND NOT EXISTS (SELECT 1 FROM unnest(\(unnest)) AS k(\(names)) WHERE \(match))
            """
        try await query(connection, PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    /// Binds a SQLite value as a value of `type`.
    /// - Throws: ``MirrorError`` `badValue` for a number no `bigint` holds (NaN, infinite, out of range).
    static func bind(_ value: DatabaseValue, as type: MirrorSchema.ColumnType, into binds: inout PostgresBindings) throws(MirrorError) {
        switch (value.storage, type) {
        case (.null, _): binds.appendNull()
        case let (.int64(i), .boolean): binds.append(i != 0)
        case let (.int64(i), .bigint): binds.append(i)
        case let (.int64(i), _): binds.append(String(i))
        case let (.double(d), .bigint):
            guard let whole = Int64(exactly: d.rounded(.towardZero)) else {
                throw MirrorError(.badValue, "the store holds \(d) where PostgreSQL takes a bigint; nothing of this batch was written (check the store with `tierline status`)")
            }
            binds.append(whole)
        case let (.double(d), .boolean): binds.append(d != 0)
        case let (.double(d), _): binds.append(String(d))
        case let (.string(text), .bigint): binds.append(Int64(text))
        case let (.string(text), .boolean): binds.append(text == "1" || text == "true")
        case let (.string(text), .bytea): binds.append(ByteBuffer(string: text))
        case let (.string(text), .text): binds.append(clean(text))
        case let (.blob(data), .bytea): binds.append(ByteBuffer(bytes: data))
        case let (.blob(data), _): binds.append(clean(String(decoding: data, as: UTF8.self)))
        }
    }

    /// PostgreSQL text cannot hold U+0000, which the store's text may (intake takes it): it becomes U+FFFD.
    static func clean(_ text: String) -> String {
        text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    /// An error as the mirror reports it: PostgreSQL's message and SQLSTATE, never the statement's values.
    static func describe(_ error: any Error) -> String {
        if let error = error as? MirrorError { return error.detail }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "PostgreSQL: \(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? PostgresTransactionError {
            if let inner = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError { return describe(inner) }
            return "a PostgreSQL transaction failed"
        }
        return "\(error)"
    }
}

extension PostgresMirror {
    /// Runs `sql` on `connection`, unless the server closed it: postgres-nio 1.33 sends a query on a
    /// closed connection into the void, and its answer never comes (seen on a PostgreSQL restart).
    @discardableResult
    func query(_ connection: PostgresConnection, _ sql: PostgresQuery) async throws -> PostgresRowSequence {
        guard !connection.isClosed else { throw MirrorError(.postgres, "the server closed the connection") }
        return try await connection.query(sql, logger: logger)
    }

    /// `body` between BEGIN and COMMIT; ROLLBACK when it throws and the connection is still open
    /// (a connection the server closed has rolled back already).
    func transaction<T>(_ connection: PostgresConnection, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await query(connection, "BEGIN")
        let value: T
        do {
            value = try await body(connection)
        } catch {
            if !connection.isClosed { _ = try? await query(connection, "ROLLBACK") }
            throw error
        }
        try await query(connection, "COMMIT")
        return value
    }
}

/// The connection of one attempt, closed from a cancellation handler or a timeout without waiting:
/// closing fails its pending query, which cancelling the task does not. ``closed()`` then waits for
/// the close to finish (postgres-nio wants a connection closed before it goes).
final class ConnectionHolder: Sendable {
    let state = Mutex<(connection: PostgresConnection?, closed: Bool)>((nil, false))

    /// Keeps `connection`; closes it and throws `CancellationError` when the holder was closed first.
    func keep(_ connection: PostgresConnection) async throws {
        let closed = state.withLock { state in
            state.connection = connection
            return state.closed
        }
        if closed {
            try? await connection.close()
            throw CancellationError()
        }
    }

    /// Starts closing the connection, if any; later ones handed to ``keep(_:)`` are closed at once.
    func close() {
        let connection = state.withLock { state in
            state.closed = true
            return state.connection
        }
        if let connection { let _: EventLoopFuture<Void> = connection.close() }
    }

    /// Closes the connection, if any, and waits until it is closed.
    func closed() async {
        close()
        guard let connection = state.withLock({ $0.connection }) else { return }
        try? await connection.closeFuture.get()
    }
}

/// Bindings built in a closure, for one-line queries.
func bindings(_ fill: (inout PostgresBindings) -> Void) -> PostgresBindings {
    var binds = PostgresBindings()
    fill(&binds)
    return binds
}
