import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing
import TestSupport
import TicketModel
import TicketStore
@testable import Mirror

/// Against a real PostgreSQL: Tests/CLI/mirror-harden.sh starts a throw-away cluster and runs this
/// suite with `TIERLINE_TEST_POSTGRES` (a URL without password; the password in `PGPASSWORD`) and
/// the schemas `upgrade_old` and `upgrade_new` owned by the URL's role. Without it, it is skipped.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TIERLINE_TEST_POSTGRES"] != nil,
                "needs TIERLINE_TEST_POSTGRES: Tests/CLI/mirror-harden.sh sets it"))
struct MirrorUpgradeTests {
    let environment = ProcessInfo.processInfo.environment

    /// A schema made by the previous version (every migration but the last), holding the rows and
    /// cursor of a first batch: the mirror upgrades it to the latest version and carries on from its
    /// cursor, and ends with the rows of a fresh mirror.
    @Test func upgradesASchemaOfThePreviousVersionAndKeepsItsRowsAndCursors() async throws {
        let url = try #require(environment["TIERLINE_TEST_POSTGRES"])
        let store = try memoryStore("north")
        for n in 1...12 {
            let ticket = try store.createTicket(TicketDraft(subject: "ticket \(n)", tags: ["t\(n % 3)"]))
            if n % 4 == 0 { _ = try store.update(ticket.id, [(.subject, .text("renamed \(n)"))]) }
        }
        let old = PostgresMirror(store: store, target: try PostgresTarget(url: url, schema: "upgrade_old", environment: environment), logger: Logger(label: "test"))
        let fresh = PostgresMirror(store: store, target: try PostgresTarget(url: url, schema: "upgrade_new", environment: environment), logger: Logger(label: "test"))
        let migrations = MirrorSchema.migrations(schema: old.target.schema)
        let previous = migrations.count - 1
        try #require(previous >= 1)
        let first = try await store.writer.read { db in try StoreBatch.read(db, after: [:], limits: BatchLimits(blocks: 5)) }
        let total = try await store.writer.read { db in try StoreBatch.lag(db, after: [:]) }.blocks
        try #require(first.blocks == 5 && total > 5)

        let connection = try await old.connect()
        do {
            try await old.transaction(connection) { c in
                try await old.query(c, PostgresQuery(unsafeSQL: "CREATE TABLE upgrade_old.mirror_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"))
                for (index, statements) in migrations.prefix(previous).enumerated() {
                    for sql in statements { try await old.query(c, PostgresQuery(unsafeSQL: sql)) }
                    try await old.query(c, PostgresQuery(unsafeSQL: "INSERT INTO upgrade_old.mirror_schema (version) VALUES ($1)", binds: bindings { $0.append(index + 1) }))
                }
                try await old.query(c, PostgresQuery(unsafeSQL: "INSERT INTO upgrade_old.source (id, site, roster_version) VALUES (1, $1, $2)",
                                                     binds: bindings { $0.append(try! store.identity().site.rawValue); $0.append(first.rosterVersion) }))
                // The first batch's rows, in the columns each table had then (a table made later is skipped).
                let tables = [MirrorSchema.ticket, MirrorSchema.customer, MirrorSchema.article, MirrorSchema.site] + MirrorSchema.ticketChildren
                for table in tables {
                    var had = Set<String>()
                    for try await (name) in try await old.query(c, PostgresQuery(unsafeSQL: "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'upgrade_old' AND table_name = $1",
                                                                                binds: bindings { $0.append(table.name) })).decode(String.self) {
                        had.insert(name)
                    }
                    guard !had.isEmpty else { continue }
                    let kept = table.columns.indices.filter { had.contains(table.columns[$0].name) }
                    var then = table
                    then.columns = kept.map { table.columns[$0] }
                    let rows = (table.name == MirrorSchema.site.name ? first.sites : first.rows[table.name] ?? []).map { row in kept.map { row[$0] } }
                    try await old.upsert(then, rows, on: c)
                }
                for cursor in first.cursors {
                    try await old.query(c, PostgresQuery(unsafeSQL: "INSERT INTO upgrade_old.cursor (origin, seq, newest_hlc) VALUES ($1, $2, $3)",
                                                         binds: bindings { $0.append(cursor.origin); $0.append(cursor.seq); $0.append(cursor.hlc) }))
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()

        let upgraded = try await old.run(live: false)
        #expect(upgraded.blocks == Int(total) - first.blocks, "carried on from the old cursor, without starting over")
        let made = try await fresh.run(live: false)
        #expect(upgraded.cursors == made.cursors && upgraded.behindBlocks == 0)

        let check = try await old.connect()
        do {
            var version = 0
            for try await (v) in try await old.query(check, "SELECT MAX(version) FROM upgrade_old.mirror_schema").decode(Int.self) { version = v }
            #expect(version == migrations.count)
            // Every table of the latest schema holds the rows of the fresh mirror (but the times the
            // mirror wrote them).
            var tables: [String] = []
            for try await (name) in try await old.query(check, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'upgrade_new' AND table_type = 'BASE TABLE' AND table_name <> 'mirror_schema' ORDER BY 1").decode(String.self) {
                tables.append(name)
            }
            #expect(tables.contains("ticket") && tables.contains("cursor"))
            for table in tables {
                var columns: [String] = []
                for try await (name) in try await old.query(check, PostgresQuery(unsafeSQL: "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'upgrade_new' AND table_name = $1 AND column_name <> 'mirrored_at' ORDER BY 1",
                                                                                  binds: bindings { $0.append(table) })).decode(String.self) {
                    columns.append("\"\(name)\"")
                }
                var sums: [String] = []
                for schema in ["upgrade_old", "upgrade_new"] {
                    let row = "ROW(\(columns.joined(separator: ", ")))::text"
                    for try await (count, sum) in try await old.query(check, PostgresQuery(unsafeSQL: "SELECT count(*), COALESCE(md5(string_agg(\(row), '|' ORDER BY \(row))), '') FROM \(schema).\(table)"))
                        .decode((Int64, String).self) {
                        sums.append("\(count) \(sum)")
                    }
                }
                #expect(sums.count == 2 && sums[0] == sums[1], "table \(table): upgraded \(sums.first ?? "?"), fresh \(sums.last ?? "?")")
            }
        } catch {
            try? await check.close()
            throw error
        }
        try await check.close()
    }
}
