import Foundation
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
        migrator.registerMigration("v4-metrics") { _ in
            // Created the dashboard's fact tables until the dashboard kept its own migrations
            // (`Dashboard/FactSchema.swift`). Kept by name, so stores that applied it open; a new store
            // records it and creates nothing.
        }
        migrator.registerMigration("v5-restore") { db in
            // Set when the store was restored from a backup: local writes wait until a peer has told
            // this store its own highest block (so no sequence number is reused); NULL otherwise.
            try db.alter(table: "localSite") { t in t.add(column: "restoredAt", .integer) }
        }
        migrator.registerMigration("v6-roster") { db in
            // The coordinator's public key, pinned at setup: the only key a roster is accepted under.
            try db.alter(table: "localSite") { t in t.add(column: "coordinatorKey", .blob) }
            // siteKey becomes the roster's list once one is adopted: the role decides which changes a
            // site may make, and a removed site's blocks above revokedAfter are refused.
            try db.alter(table: "siteKey") { t in
                t.add(column: "role", .text)
                t.add(column: "revokedAfter", .integer)
            }
            // The adopted roster: the exact text the coordinator signed, and the signature.
            try db.create(table: "roster") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("version", .integer).notNull()
                t.column("document", .text).notNull()
                t.column("signature", .blob).notNull()
            }
            // Blocks refused (forged, unknown origin, equivocation, revoked) and changes skipped because
            // their author's role may not make them, for `tierline status`. Nothing of them is applied.
            try db.create(table: "refusal") { t in
                t.column("origin", .text).notNull()
                t.column("seq", .integer).notNull()
                t.column("hash", .blob).notNull()
                t.column("code", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("firstAt", .integer).notNull()
                t.column("lastAt", .integer).notNull()
                t.column("count", .integer).notNull()
                t.primaryKey(["origin", "seq", "hash", "code"])
            }
        }
        migrator.registerMigration("v7-entity-offsets") { db in
            // Where an entity's changes start in each block (uvarint pairs: index, byte offset), so a
            // fold decodes only that ticket's changes of a 256-change block. NULL on rows written
            // before: those blocks are decoded whole, as before.
            // Both link tables become WITHOUT ROWID: their primary key is the row, so each row is stored
            // once and not again in a separate key index (about a third of a store's bytes per ticket).
            try db.execute(sql: """
                CREATE TABLE blockEntity_v7 (entity TEXT NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL, offsets BLOB,
                  PRIMARY KEY (entity, origin, seq)) WITHOUT ROWID;
                INSERT INTO blockEntity_v7 (entity, origin, seq) SELECT entity, origin, seq FROM blockEntity;
                DROP TABLE blockEntity;
                ALTER TABLE blockEntity_v7 RENAME TO blockEntity;
                CREATE TABLE ticketElement_v7 (ticket TEXT NOT NULL, setName TEXT NOT NULL, element TEXT NOT NULL,
                  PRIMARY KEY (ticket, setName, element)) WITHOUT ROWID;
                INSERT INTO ticketElement_v7 SELECT ticket, setName, element FROM ticketElement;
                DROP TABLE ticketElement;
                ALTER TABLE ticketElement_v7 RENAME TO ticketElement;
                """)
            // The next display number reads this site's highest number on every local write.
            try db.create(index: "ticket_on_originSite_number", on: "ticket", columns: ["originSite", "number"])
        }
        migrator.registerMigration("v8-customers-knowledge") { db in
            // Customers (schema 3 entities): a pure fold of their blocks, like tickets.
            try db.execute(sql: """
                CREATE TABLE customer (id TEXT PRIMARY KEY, key TEXT NOT NULL, name TEXT, email TEXT, phone TEXT,
                  organization TEXT, tier TEXT, value TEXT, updatedHLC INTEGER, stateHash BLOB NOT NULL);
                CREATE INDEX customer_on_key ON customer (key);
                CREATE INDEX customer_on_email ON customer (email COLLATE NOCASE);
                CREATE INDEX customer_on_phone ON customer (phone);
                CREATE TABLE article (id TEXT PRIMARY KEY, title TEXT NOT NULL, summary TEXT NOT NULL, rootCause TEXT NOT NULL,
                  steps TEXT NOT NULL, sourceTicket TEXT, author TEXT, site TEXT, createdHLC INTEGER, updatedHLC INTEGER,
                  stateHash BLOB NOT NULL);
                CREATE INDEX article_on_sourceTicket ON article (sourceTicket);
                CREATE VIRTUAL TABLE articleText USING fts5 (id UNINDEXED, title, summary, rootCause, steps,
                  tokenize = 'unicode61 remove_diacritics 2');
                """)
            // Custom fields of tickets that intake looks up by value: an email's thread id, a survey's
            // token hash. Written by the ticket fold; these fields do not exist before 0.6.
            try db.execute(sql: """
                CREATE TABLE ticketLookup (ticket TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
                  PRIMARY KEY (ticket, name)) WITHOUT ROWID;
                CREATE INDEX ticketLookup_on_value ON ticketLookup (name, value);
                CREATE INDEX ticketEvent_on_id ON ticketEvent (id);
                CREATE INDEX ticket_on_customer ON ticket (customer);
                """)
            // This node's intake API tokens, one per integration; only their SHA-256 is kept. Local: never replicated.
            try db.create(table: "apiToken") { t in
                t.primaryKey("name", .text)
                t.column("hash", .blob).notNull().unique()
                t.column("channels", .text).notNull()
                t.column("createdAt", .integer).notNull()
                t.column("revokedAt", .integer)
            }
        }
        migrator.registerMigration("v9-divergence") { db in
            // Two different blocks seen for one (origin, seq): one row per origin and peer that showed
            // it. Local: what this store learned in its own sessions. A row for this store's own site
            // means the fleet accepted another store's block at a seq this one wrote: it is a copy.
            try db.create(table: "divergence") { t in
                t.column("origin", .text).notNull()
                t.column("peer", .text).notNull()
                t.column("seq", .integer).notNull()
                t.column("ourHash", .blob).notNull()
                t.column("theirHash", .blob).notNull()
                t.column("address", .text).notNull()
                t.column("detectedAt", .integer).notNull()
                t.primaryKey(["origin", "peer"])
            }
        }
        migrator.registerMigration("v10-peer-transport") { db in
            // How the last session with each peer was protected (protocol 2: TLS on the sites' keys).
            try db.alter(table: "peer") { t in t.add(column: "transport", .text) }
        }
        migrator.registerMigration("v11-restore-witness") { db in
            // The restore fence lifts only on proof that the site's own history is whole (PROTOCOL
            // 2.2.6). restoreWatch: sites whose restore this store watches, with the restore's id
            // (a coordinator: sites whose hello named a restore; any store: itself while its fence is up). restoreWitness: members
            // that sent everything they hold (their `synced`) to this store since it began watching.
            // Local: never replicated.
            try db.create(table: "restoreWatch") { t in
                t.primaryKey("site", .text)
                t.column("restoreID", .integer).notNull()
            }
            try db.create(table: "restoreWitness") { t in
                t.column("site", .text).notNull()
                t.column("member", .text).notNull()
                t.primaryKey(["site", "member"])
            }
            // The members the coordinator last said it had not heard from since this store's restore
            // (a JSON array), or NULL before the coordinator said anything.
            try db.alter(table: "localSite") { t in t.add(column: "restoreAwaiting", .text) }
            // A store restored (and fenced) before this version watches its own restore from now on.
            try db.execute(sql: "INSERT INTO restoreWatch (site, restoreID) SELECT site, restoredAt FROM localSite WHERE restoredAt IS NOT NULL")
        }
        migrator.registerMigration("v12-reissued") { db in
            // The blocks of a copied store (`tierline recover --from`) that this store re-issued as its
            // own, and this store's blocks (firstSeq...lastSeq) that carry them, written in the same
            // transaction: a second recover from the copy skips them instead of issuing the work twice.
            // Local: what this store did, never exchanged.
            try db.create(table: "reissued") { t in
                t.column("origin", .text).notNull()
                t.column("seq", .integer).notNull()
                t.column("hash", .blob).notNull()
                t.column("firstSeq", .integer).notNull()
                t.column("lastSeq", .integer).notNull()
                t.column("reissuedAt", .integer).notNull()
                t.primaryKey(["origin", "seq"])
            }
        }
        migrator.registerMigration("v13-facts-apart") { _ in
            // Nothing to change: it marks a store whose schema no longer holds the dashboard's facts
            // (they come with the dashboard's own migrations, when it first attaches), so a Tierline
            // from before refuses the store instead of writing to tables that may not be there.
        }
        migrator.registerMigration("v14-local-settings") { db in
            // Settings of this store alone, never replicated (`tierline agent use`).
            try db.create(table: "localSetting") { t in
                t.primaryKey("name", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v15-outbox") { db in
            // Notices and customer replies waiting to be sent: local to this node, written in the
            // same transaction as the write that causes them. One row per (key, channel, recipient),
            // so a notice derived twice is sent once.
            try db.create(table: "outbox") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("key", .text).notNull()
                t.column("channel", .text).notNull()
                t.column("recipient", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("ticket", .text)
                t.column("subject", .text).notNull()
                t.column("body", .text).notNull()
                t.column("notBefore", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("attempts", .integer).notNull()
                t.column("nextAttempt", .integer).notNull()
                t.column("lastError", .text)
                t.column("createdAt", .integer).notNull()
                t.column("sentAt", .integer)
                t.uniqueKey(["key", "channel", "recipient"])
            }
            try db.create(index: "outbox_due", on: "outbox", columns: ["state", "nextAttempt"])
            // An integration's reply webhook: where public replies on its tickets go, and the secret
            // that signs them (kept here only, never replicated).
            try db.alter(table: "apiToken") { t in
                t.add(column: "replyURL", .text)
                t.add(column: "replySecret", .text)
            }
            // The webhooks of the node's settings that receive every notice: kept here so a write
            // made by the CLI on the same store enqueues for them as the node's own writes do.
            try db.create(table: "noticeWebhook") { t in t.primaryKey("name", .text) }
        }
        migrator.registerMigration("v16-agent-credentials") { db in
            // How agents sign in at this node: kept here only, never in a block. A password is a
            // bcrypt hash; tokens and sessions are kept as SHA-256 digests of the secret handed out.
            try db.create(table: "agentPassword") { t in
                t.primaryKey("agent", .text)
                t.column("hash", .text).notNull()
                t.column("changedAt", .integer).notNull()
            }
            try db.create(table: "agentToken") { t in
                t.primaryKey("digest", .blob)
                t.column("agent", .text).notNull()
                t.column("label", .text).notNull()
                t.column("createdAt", .integer).notNull()
                t.column("lastUsedAt", .integer)
            }
            try db.create(index: "agentToken_agent", on: "agentToken", columns: ["agent"])
            try db.create(table: "agentSession") { t in
                t.primaryKey("digest", .blob)
                t.column("agent", .text).notNull()
                t.column("csrf", .text).notNull()
                t.column("createdAt", .integer).notNull()
                t.column("expiresAt", .integer).notNull()
            }
            try db.create(index: "agentSession_agent", on: "agentSession", columns: ["agent"])
        }
        migrator.registerMigration("v17-queue-order") { db in
            // The workspace's queues: most recent activity first, whole or by assignee, group or owner.
            try db.execute(sql: "CREATE INDEX ticket_on_updated ON ticket (COALESCE(updatedHLC, 0) DESC, id)")
            try db.execute(sql: "CREATE INDEX ticket_on_assignee_updated ON ticket (assignee, COALESCE(updatedHLC, 0) DESC, id)")
            try db.execute(sql: "CREATE INDEX ticket_on_group_updated ON ticket (\"group\", COALESCE(updatedHLC, 0) DESC, id)")
            try db.execute(sql: "CREATE INDEX ticket_on_owner_updated ON ticket (owningSite, COALESCE(updatedHLC, 0) DESC, id)")
        }
        migrator.registerMigration("v18-credential-agent-version") { db in
            // The agent document's version a session or token was given under: a deactivation published
            // after it ends the credential for good, even if the agent is added again later.
            try db.alter(table: "agentSession") { t in t.add(column: "agentVersion", .integer).notNull().defaults(to: 0) }
            try db.alter(table: "agentToken") { t in t.add(column: "agentVersion", .integer).notNull().defaults(to: 0) }
        }
        migrator.registerMigration("v19-intake-unmatched-replies") { db in
            // What a message an integration delivers does when it matches no ticket: open one (the
            // default, as mail gateways expect) or be refused. Local to this node, as tokens are.
            try db.alter(table: "apiToken") { t in t.add(column: "unmatchedReplies", .text).notNull().defaults(to: "open") }
        }
        migrator.registerMigration("v20-kb-stemming") { db in
            // Article search matches word forms ("printer" finds "printers", "crashed" finds "crash"):
            // the porter stemmer over the same unicode61 words. The index is local, rebuilt from the articles.
            try db.execute(sql: """
                DROP TABLE articleText;
                CREATE VIRTUAL TABLE articleText USING fts5 (id UNINDEXED, title, summary, rootCause, steps,
                  tokenize = 'porter unicode61 remove_diacritics 2');
                INSERT INTO articleText (rowid, id, title, summary, rootCause, steps)
                  SELECT rowid, id, title, summary, rootCause, steps FROM article;
                """)
        }
        migrator.registerMigration("v21-list-indexes") { db in
            // Every list order and filter reads an index in its order instead of sorting the table
            // (`TicketListPlanTests` checks each statement's plan). `ticket list`: newest created
            // first, whole, by status or by origin site; the workspace queues by one status, and the
            // conflicts queue (a partial index: only tickets with a conflict). The status and origin
            // site indexes of v1 are prefixes of the new ones, so they go: fewer indexes to write.
            // `kb list` newest first, `outbox list` by state; an article's uses are counted from the
            // links of tickets (a partial index, of link elements only) instead of every tag row.
            try db.execute(sql: """
                CREATE INDEX ticket_on_created ON ticket (createdHLC DESC, id);
                CREATE INDEX ticket_on_status_created ON ticket (status, createdHLC DESC, id);
                CREATE INDEX ticket_on_originSite_created ON ticket (originSite, createdHLC DESC, id);
                CREATE INDEX ticket_on_status_updated ON ticket (status, COALESCE(updatedHLC, 0) DESC, id);
                CREATE INDEX ticket_conflicted_updated ON ticket (COALESCE(updatedHLC, 0) DESC, id) WHERE conflictCount > 0;
                DROP INDEX ticket_on_status;
                DROP INDEX ticket_on_originSite;
                CREATE INDEX article_on_created ON article (createdHLC DESC, id);
                CREATE INDEX outbox_on_state ON outbox (state, id);
                CREATE INDEX ticketElement_links ON ticketElement (element) WHERE setName = 'links';
                """)
        }
        migrator.registerMigration("v22-ascending-list-indexes") { db in
            // The list indexes of v17 and v21 held their stamp descending, so every new ticket (and
            // every write, for the `updated` ones) went in at the left end of a b-tree. SQLite packs
            // pages full only for keys appended at the right end; at the left, each split leaves two
            // half-empty pages, so those indexes took about twice their bytes and write work. They
            // are rebuilt ascending, and the lists read them backwards (`DESC, id DESC`: newest first,
            // and among tickets with the same stamp, the larger id first).
            try db.execute(sql: """
                DROP INDEX ticket_on_updated;
                DROP INDEX ticket_on_assignee_updated;
                DROP INDEX ticket_on_group_updated;
                DROP INDEX ticket_on_owner_updated;
                DROP INDEX ticket_on_created;
                DROP INDEX ticket_on_status_created;
                DROP INDEX ticket_on_originSite_created;
                DROP INDEX ticket_on_status_updated;
                DROP INDEX ticket_conflicted_updated;
                DROP INDEX article_on_created;
                CREATE INDEX ticket_on_updated ON ticket (COALESCE(updatedHLC, 0), id);
                CREATE INDEX ticket_on_assignee_updated ON ticket (assignee, COALESCE(updatedHLC, 0), id);
                CREATE INDEX ticket_on_group_updated ON ticket ("group", COALESCE(updatedHLC, 0), id);
                CREATE INDEX ticket_on_owner_updated ON ticket (owningSite, COALESCE(updatedHLC, 0), id);
                CREATE INDEX ticket_on_created ON ticket (createdHLC, id);
                CREATE INDEX ticket_on_status_created ON ticket (status, createdHLC, id);
                CREATE INDEX ticket_on_originSite_created ON ticket (originSite, createdHLC, id);
                CREATE INDEX ticket_on_status_updated ON ticket (status, COALESCE(updatedHLC, 0), id);
                CREATE INDEX ticket_conflicted_updated ON ticket (COALESCE(updatedHLC, 0), id) WHERE conflictCount > 0;
                CREATE INDEX article_on_created ON article (createdHLC, id);
                """)
        }
        migrator.registerMigration("v23-merge-links") { db in
            // The tickets a merge request links, found from either end without reading every ticket
            // (the PostgreSQL mirror carries a touched ticket's merge graph in each batch). Partial:
            // only the few tickets with a request or a merge are in them.
            try db.execute(sql: """
                CREATE INDEX ticket_on_mergeCandidate ON ticket (mergeCandidate) WHERE mergeCandidate IS NOT NULL;
                CREATE INDEX ticket_on_mergedInto ON ticket (mergedInto) WHERE mergedInto IS NOT NULL;
                """)
        }
        migrator.registerMigration("v24-list-indexes-by-rowid") { db in
            // The six lists by last activity broke ties by the ticket's id, 36 characters copied into
            // each of their entries, beside the rowid every entry of an index ends with anyway. They
            // break ties by that rowid now (`DESC, rowid DESC`): a sixth of a ticket's bytes, and
            // smaller entries for every write to move. Only a page of a list reads that order, and a
            // page's cursor still names the ticket by id. The lists by creation keep the id: exports
            // read them, and converged replicas export their tickets in the same order.
            try db.execute(sql: """
                DROP INDEX ticket_on_updated;
                DROP INDEX ticket_on_assignee_updated;
                DROP INDEX ticket_on_group_updated;
                DROP INDEX ticket_on_owner_updated;
                DROP INDEX ticket_on_status_updated;
                DROP INDEX ticket_conflicted_updated;
                CREATE INDEX ticket_on_updated ON ticket (COALESCE(updatedHLC, 0));
                CREATE INDEX ticket_on_assignee_updated ON ticket (assignee, COALESCE(updatedHLC, 0));
                CREATE INDEX ticket_on_group_updated ON ticket ("group", COALESCE(updatedHLC, 0));
                CREATE INDEX ticket_on_owner_updated ON ticket (owningSite, COALESCE(updatedHLC, 0));
                CREATE INDEX ticket_on_status_updated ON ticket (status, COALESCE(updatedHLC, 0));
                CREATE INDEX ticket_conflicted_updated ON ticket (COALESCE(updatedHLC, 0)) WHERE conflictCount > 0;
                """)
        }
        migrator.registerMigration("v25-entity-index-by-bytes") { db in
            // The log's entity index keyed each row by the entity's 36-character text; it now holds the
            // id's 16 bytes (`UUID.keyBytes`), which sort in the same order. A row names an entity in
            // each block that touches it, so the saving grows with a ticket's history. The table
            // takes a new name, `entityBlock`: a process of an older release still running on the
            // store (which would read and write the text) fails on the missing `blockEntity` instead
            // of folding tickets from nothing and adding rows no fold finds (a CHECK would not do: the
            // releases write `INSERT OR IGNORE`, which skips a row that fails a CHECK without a word).
            let damaged = StoreError(.corruptFile, "the log's entity index holds a row that names no entity id; the database file is damaged, restore it from a backup or a peer")
            let bytes = DatabaseFunction("tierline_entity_key", argumentCount: 1, pure: true) { values in
                guard let text = String.fromDatabaseValue(values[0]), let id = UUID(uuidString: text) else { throw damaged }
                return id.keyBytes
            }
            // A row that names no id (ids were always written as lowercase 8-4-4-4-12 text) is damage:
            // said plainly, before anything moves. The stray text is not repeated: it may hold
            // anything, terminal controls too.
            let digits = { (count: Int) in String(repeating: "[0-9a-f]", count: count) }
            let idPattern = [8, 4, 4, 4, 12].map(digits).joined(separator: "-")
            if try Bool.fetchOne(db, sql: """
                SELECT 1 FROM blockEntity WHERE typeof(entity) != 'text' OR NOT (entity GLOB ?) LIMIT 1
                """, arguments: [idPattern]) == true {
                throw damaged
            }
            db.add(function: bytes)
            defer { db.remove(function: bytes) }
            try db.execute(sql: """
                CREATE TABLE entityBlock (entity BLOB NOT NULL CHECK (typeof(entity) = 'blob' AND length(entity) = 16),
                  origin TEXT NOT NULL, seq INTEGER NOT NULL, offsets BLOB, PRIMARY KEY (entity, origin, seq)) WITHOUT ROWID;
                INSERT INTO entityBlock (entity, origin, seq, offsets)
                  SELECT tierline_entity_key(entity), origin, seq, offsets FROM blockEntity ORDER BY entity, origin, seq;
                DROP TABLE blockEntity;
                """)
        }
        migrator.registerMigration("v26-created-lists-without-ids") { db in
            // The three lists by creation copied the ticket's 36-character id into each entry to break
            // ties of stamp, as converged replicas must list and export their tickets in one order.
            // They hold the stamp alone now (and the rowid every entry ends with): a read in that
            // order still names the id (`ORDER BY createdHLC DESC, id DESC`), and SQLite sorts only
            // the few rows that share a stamp as it walks the index (`USE TEMP B-TREE FOR RIGHT
            // PART OF ORDER BY`), never the whole list: a ticket's stamp is its block's, shared by
            // that block's tickets and any other site's block that happened to take the same stamp.
            try db.execute(sql: """
                DROP INDEX ticket_on_created;
                DROP INDEX ticket_on_status_created;
                DROP INDEX ticket_on_originSite_created;
                CREATE INDEX ticket_on_created ON ticket (createdHLC);
                CREATE INDEX ticket_on_status_created ON ticket (status, createdHLC);
                CREATE INDEX ticket_on_originSite_created ON ticket (originSite, createdHLC);
                """)
        }
        migrator.registerMigration("v27-event-ids-without-attributions") { db in
            // The index of events by id serves one question: does the store hold this intake message
            // already (a redelivery)? Every block of field changes written with an actor (the CLI, the
            // workspace, imports) carries an `attribution` event, most of such a store's events, and
            // none is ever looked up by id: they leave the index. (The check also looks among the
            // events of the message's own ticket by key, where an attribution may have taken its id.)
            try db.execute(sql: """
                DROP INDEX ticketEvent_on_id;
                CREATE INDEX ticketEvent_on_id ON ticketEvent (id) WHERE kind <> 'attribution';
                """)
        }
        return migrator
    }

    /// Migrations of a module that keeps its own tables in the store are named `MODULE/NAME`
    /// (`dashboard/v1-facts`): the store leaves them to that module, which checks them when it attaches.
    static func isOwnMigration(_ identifier: String) -> Bool { !identifier.contains("/") }
}
