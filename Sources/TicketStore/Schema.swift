import GRDB

/// The store's migrations. Migration names never change.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // The one local site of this store: its identity, its clock and its display-number counter.
            try db.create(table: "localSite") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("site", .text).notNull()
                t.column("role", .text).notNull()
                t.column("publicKey", .blob).notNull()
                t.column("hlc", .integer).notNull()
                t.column("nextNumber", .integer).notNull()
            }
            // Public keys by site (trust on first use until the coordinator's roster replaces it).
            try db.create(table: "siteKey") { t in
                t.primaryKey("site", .text)
                t.column("publicKey", .blob).notNull()
            }
            // The replication log: every applied block, byte for byte.
            try db.create(table: "block") { t in
                t.column("origin", .text).notNull()
                t.column("seq", .integer).notNull()
                t.column("hlc", .integer).notNull()
                t.column("hash", .blob).notNull()
                t.column("bytes", .blob).notNull()
                t.primaryKey(["origin", "seq"])
            }
            try db.create(index: "block_on_hlc", on: "block", columns: ["hlc", "origin", "seq"])
            // Blocks received before their predecessor or their deps, or stamped too far ahead.
            try db.create(table: "pendingBlock") { t in
                t.column("origin", .text).notNull()
                t.column("seq", .integer).notNull()
                t.column("hash", .blob).notNull()
                t.column("bytes", .blob).notNull()
                t.column("reason", .text).notNull()
                t.primaryKey(["origin", "seq"])
            }
            // The version vector: per origin, the highest contiguous seq applied.
            try db.create(table: "versionEntry") { t in
                t.primaryKey("site", .text)
                t.column("seq", .integer).notNull()
            }
            // Which blocks touch which entity, to re-fold an entity from its changes.
            try db.create(table: "blockEntity") { t in
                t.column("entity", .text).notNull()
                t.column("origin", .text).notNull()
                t.column("seq", .integer).notNull()
                t.primaryKey(["entity", "origin", "seq"])
            }
            // Materialized tickets for fast queries; always a pure fold of the blocks above.
            try db.create(table: "ticket") { t in
                t.primaryKey("id", .text)
                // Not unique: a display number is a per-site counter, and a store restored from an old
                // backup (or a faulty peer) can reuse one; INSERT OR REPLACE must never drop another row.
                t.column("displayNumber", .text).indexed()
                t.column("number", .integer)
                t.column("originSite", .text)
                t.column("owningSite", .text)
                t.column("owningEpoch", .integer).notNull()
                t.column("subject", .text).notNull()
                t.column("status", .text).notNull()
                t.column("baseStatus", .text).notNull()
                t.column("priority", .text).notNull()
                t.column("assignee", .text)
                t.column("group", .text)
                t.column("category", .text)
                t.column("customer", .text)
                t.column("channel", .text)
                t.column("pendingUntil", .integer)
                t.column("escalationCycle", .integer).notNull()
                t.column("escalationLevel", .integer).notNull()
                t.column("mergeCandidate", .text)
                t.column("mergedInto", .text)
                t.column("mergeRejected", .boolean).notNull()
                t.column("deleted", .boolean).notNull()
                t.column("createdHLC", .integer)
                t.column("updatedHLC", .integer)
                t.column("conflictCount", .integer).notNull()
                t.column("stateHash", .blob).notNull()
            }
            try db.create(index: "ticket_on_status", on: "ticket", columns: ["status"])
            try db.create(index: "ticket_on_originSite", on: "ticket", columns: ["originSite"])
            try db.create(table: "ticketElement") { t in
                t.column("ticket", .text).notNull()
                t.column("setName", .text).notNull()
                t.column("element", .text).notNull()
                t.primaryKey(["ticket", "setName", "element"])
            }
            // Keyed by (ticket, id) and rewritten on every re-fold, so the row is the fold's copy of an
            // event whatever the arrival order (two sites may derive the same event id).
            try db.create(table: "ticketEvent") { t in
                t.column("id", .text).notNull()
                t.column("ticket", .text).notNull()
                t.column("hlc", .integer).notNull()
                t.column("site", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("actor", .text).notNull()
                t.column("visibility", .text).notNull()
                t.column("body", .text).notNull()
                t.primaryKey(["ticket", "id"])
            }
            try db.create(table: "ticketConflict") { t in
                t.primaryKey("id", .text)
                t.column("ticket", .text).notNull().indexed()
                t.column("field", .text).notNull()
                t.column("firstValue", .text).notNull()
                t.column("firstSite", .text).notNull()
                t.column("secondValue", .text).notNull()
                t.column("secondSite", .text).notNull()
            }
        }
        migrator.registerMigration("v2-peers") { db in
            // What this node last learned about each peer it synced with (for `tierline status`).
            try db.create(table: "peer") { t in
                t.primaryKey("site", .text)
                t.column("role", .text).notNull()
                t.column("address", .text).notNull()
                t.column("lastSeen", .integer).notNull()
                t.column("vector", .text).notNull()
                t.column("skewMillis", .integer)
                t.column("lastError", .text)
                t.column("blocksIn", .integer).notNull().defaults(to: 0)
                t.column("blocksOut", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v3-config") { db in
            // Published versions of configuration documents (calendars, SLA policies, ladders, the
            // matrix, rules), materialized from `config_version` events of config entities.
            try db.create(table: "configVersion") { t in
                t.primaryKey("id", .text)
                t.column("entity", .text).notNull().indexed()
                t.column("hlc", .integer).notNull()
                t.column("origin", .text).notNull()
                t.column("actor", .text).notNull()
                t.column("body", .text).notNull()
            }
        }
        return migrator
    }
}
