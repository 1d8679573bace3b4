import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// A small deterministic generator (the tests replay the same writes on two stores).
private struct Steps {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}

private enum Write {
    case create(subject: String, tags: [String])
    case set(ticket: Int, Field, FieldValue)
    case add(ticket: Int, String)
    case remove(ticket: Int, String)
}

/// What an agent sees of a ticket, without ids and stamps (which differ between two stores).
private func visible(_ store: TicketDatabase) throws -> [String] {
    try store.tickets().sorted { $0.displayNumber < $1.displayNumber }.map { t in
        "\(t.displayNumber.split(separator: "-").last!)|\(t.subject)|\(t.status)|\(t.priority)|\(t.assignee ?? "-")|\(t.tags.joined(separator: ","))"
    }
}

@Suite struct LocalBatchTests {
    private func writes(seed: UInt64, count: Int) -> [Write] {
        var steps = Steps(state: seed)
        var created = 0
        var out: [Write] = []
        let tags = ["vpn", "printer", "urgent", "billing"]
        for _ in 0..<count {
            if created == 0 || steps.next(6) == 0 {
                out.append(.create(subject: "ticket \(created)", tags: steps.next(2) == 0 ? [tags[steps.next(4)]] : []))
                created += 1
                continue
            }
            let ticket = steps.next(created)
            switch steps.next(5) {
            case 0: out.append(.set(ticket: ticket, .status, .text(["open", "on_hold", "solved"][steps.next(3)])))
            case 1: out.append(.set(ticket: ticket, .assignee, .text("agent-\(steps.next(5))")))
            case 2: out.append(.set(ticket: ticket, .priority, .text(["low", "high", "urgent"][steps.next(3)])))
            case 3: out.append(.add(ticket: ticket, tags[steps.next(4)]))
            default: out.append(.remove(ticket: ticket, tags[steps.next(4)]))
            }
        }
        return out
    }

    @Test(arguments: [1, 7, 42] as [UInt64])
    func aBatchLeavesTheStateTheSameWritesOneByOneLeave(seed: UInt64) throws {
        let plan = writes(seed: seed, count: 600)
        let single = try makeStore("north")
        var singleIDs: [String] = []
        for write in plan {
            switch write {
            case .create(let subject, let tags): singleIDs.append(try single.createTicket(TicketDraft(subject: subject, tags: tags)).id)
            case .set(let t, let field, let value): try single.update(singleIDs[t], [(field, value)])
            case .add(let t, let tag): try single.tag(singleIDs[t], add: [tag], remove: [])
            case .remove(let t, let tag): try single.tag(singleIDs[t], add: [], remove: [tag])
            }
        }
        let batched = try makeStore("north")
        // Half the tickets exist before the batch, so removes observe both older and same-batch adds.
        let half = plan.count / 2
        var ids: [UUID] = []
        for part in [plan[..<half], plan[half...]] {
            try batched.batch { batch in
                for write in part {
                    switch write {
                    case .create(let subject, let tags): ids.append(try batch.create(TicketDraft(subject: subject, tags: tags)))
                    case .set(let t, let field, let value): try batch.set(ids[t], field, value)
                    case .add(let t, let tag): try batch.addTag(ids[t], tag)
                    case .remove(let t, let tag): try batch.removeTag(ids[t], tag)
                    }
                }
            }
        }
        #expect(try visible(batched) == visible(single))
        // Far fewer blocks than writes: a block closes only when full or when a field repeats.
        let blocks = try batched.vector()[try SiteID("north")]
        #expect(blocks < UInt64(plan.count / 4))
    }

    @Test func aBatchsBlocksAreSignedAndAnotherReplicaConverges() throws {
        let north = try makeStore("north")
        var ids: [UUID] = []
        let summary = try north.batch { batch in
            for i in 0..<300 { ids.append(try batch.create(TicketDraft(subject: "t\(i)", assignee: "a", tags: ["x"]))) }
            for id in ids { try batch.set(id, .assignee, .text("b")) }
            for id in ids { try batch.set(id, .assignee, .text("c")) }
            for id in ids.prefix(10) { try batch.removeTag(id, "x") }
        }
        #expect(summary.tickets == 300)
        // create, subject, status, priority, assignee and one tag per ticket, two sets each, ten removes.
        #expect(summary.changes == 300 * 6 + 300 * 2 + 10)
        #expect(try north.tickets().allSatisfy { $0.assignee == "c" })
        #expect(try north.tickets().filter { $0.tags.isEmpty }.count == 10)
        let numbers = try north.tickets().map(\.displayNumber)
        #expect(Set(numbers).count == 300 && numbers.contains("NORTH-300"))

        let south = try makeStore("south")
        try south.learn(keys: [try SiteID("north"): try north.writer.read { db in try TicketDatabase.identity(db).publicKey }])
        let report = try south.apply(try north.blocks(after: VersionVector()))
        #expect(report.refused.isEmpty && report.held == 0)
        #expect(try south.digest() == north.digest())
        // The next single write continues the counter and the log.
        #expect(try north.createTicket(TicketDraft(subject: "after")).displayNumber == "NORTH-301")
    }

    @Test func aFailingWriteRollsTheWholeBatchBack() throws {
        let store = try makeStore("north")
        let kept = try store.createTicket(TicketDraft(subject: "kept"))
        let digest = try store.digest()
        #expect(throws: StoreError.self) {
            try store.batch { batch in
                for i in 0..<600 { try batch.create(TicketDraft(subject: "lost \(i)")) }
                try batch.set(UUID(), .status, .text("open"))
            }
        }
        #expect(throws: StoreError.self) {
            try store.batch { batch in try batch.set(UUID(uuidString: kept.id)!, .priority, .text("apocalyptic")) }
        }
        #expect(try store.digest() == digest)
        #expect(try store.vector()[try SiteID("north")] == 1)
        #expect(try store.createTicket(TicketDraft(subject: "next")).displayNumber == "NORTH-2")
    }

    @Test func aClosedTicketStaysClosedInABatch() throws {
        let store = try makeStore("north")
        let t = try store.createTicket(TicketDraft(subject: "done"))
        try store.update(t.id, [(.status, .text("closed"))])
        #expect(throws: StoreError.self) {
            try store.batch { batch in try batch.set(UUID(uuidString: t.id)!, .status, .text("open")) }
        }
        // Also when an earlier write of the batch read the ticket's row first (the batch keeps it).
        #expect(throws: StoreError.self) {
            try store.batch { batch in
                try batch.set(UUID(uuidString: t.id)!, .priority, .text("high"))
                try batch.addTag(UUID(uuidString: t.id)!, "late")
                try batch.set(UUID(uuidString: t.id)!, .status, .text("open"))
            }
        }
        #expect(try store.ticket(t.id).status == "closed")
        #expect(try store.ticket(t.id).tags.isEmpty)
    }
}

@Suite struct EntityOffsetTests {
    /// Re-folds every ticket of `store` from its log.
    private func refold(_ store: TicketDatabase) throws {
        try store.writer.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM ticket").map { UUID(uuidString: $0)! }
            try TicketDatabase.materialize(db, Set(ids))
        }
    }

    @Test func foldingFromOffsetsAndFromWholeBlocksGivesTheSameTickets() throws {
        let store = try makeStore("north")
        var ids: [UUID] = []
        try store.batch { batch in
            for i in 0..<400 { ids.append(try batch.create(TicketDraft(subject: "t\(i)", assignee: "a", tags: ["x", "y"]))) }
            for (n, id) in ids.enumerated() where n % 3 == 0 { try batch.set(id, .priority, .text("high")) }
            for id in ids.prefix(50) { try batch.removeTag(id, "x") }
        }
        for id in ids.prefix(20) { try store.comment(id.uuidString, body: "later", kind: .agentReply, visibility: .public, actor: "ana") }
        let digest = try store.digest()
        #expect(try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entityBlock WHERE offsets IS NULL") } == 0)
        try refold(store)
        #expect(try store.digest() == digest)
        // Rows written before migration v7 carry no offsets: their blocks are decoded whole.
        try store.writer.write { db in try db.execute(sql: "UPDATE entityBlock SET offsets = NULL") }
        try refold(store)
        #expect(try store.digest() == digest)
    }

    @Test func corruptOffsetsAreReportedAsADamagedStore() throws {
        let key = SiteKey.generate()
        let store = try makeStore("north", key: key)
        let t = try store.createTicket(TicketDraft(subject: "t"))
        try store.writer.write { db in try db.execute(sql: "UPDATE entityBlock SET offsets = x'0190ff'") }
        // A store opened afresh (the next command) folds the ticket from its log. (The value that
        // wrote it keeps its state, ``StateCache``, and reads the log again only when it changes.)
        let reopened = try TicketDatabase(store.writer, key: key)
        #expect(throws: StoreError.self) { try reopened.update(t.id, [(.assignee, .text("ana"))]) }
    }

    @Test func migrationSevenKeepsTheLinkRowsOfAnOlderStore() throws {
        let queue = try DatabaseQueue()
        let entity = "0b0c6a4e-3f55-4d2a-9a51-7c1e2f3d4b5a"
        try Schema.migrator.migrate(queue, upTo: "v6-roster")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO blockEntity (entity, origin, seq) VALUES (?1, 'north', 1), (?1, 'north', 2)", arguments: [entity])
            try db.execute(sql: "INSERT INTO ticketElement (ticket, setName, element) VALUES (?, 'tags', 'vpn')", arguments: [entity])
        }
        try Schema.migrator.migrate(queue)
        let rows = try queue.read { db in
            [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entityBlock WHERE entity = ? AND offsets IS NULL", arguments: [UUID(uuidString: entity)!.keyBytes]),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticketElement WHERE element = 'vpn'")]
        }
        #expect(rows == [2, 1])
    }

    @Test func migrationTwentyFiveKeysTheEntityIndexByTheIdsBytes() throws {
        let queue = try DatabaseQueue()
        let a = UUID(uuidString: "00000000-0000-4000-8000-0000000000ff")!, b = UUID(uuidString: "FFFFFFFF-0000-4000-8000-000000000001")!
        try Schema.migrator.migrate(queue, upTo: "v24-list-indexes-by-rowid")
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO blockEntity (entity, origin, seq, offsets) VALUES (?1, 'north', 1, x'0001'), (?1, 'south', 4, NULL), (?2, 'north', 1, x'0203')
                """, arguments: [a.lowercaseText, b.lowercaseText])
        }
        try Schema.migrator.migrate(queue)
        let rows = try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT entity, origin, seq, offsets FROM entityBlock ORDER BY entity, origin, seq").map {
                "\(UUID(keyBytes: $0[0])!) \($0[1] as String) \($0[2] as Int) \(($0[3] as Data?)?.map { String($0) } ?? [])"
            }
        }
        #expect(rows == ["\(a) north 1 [\"0\", \"1\"]", "\(a) south 4 []", "\(b) north 1 [\"2\", \"3\"]"])
        #expect(try queue.read { db in try String.fetchOne(db, sql: "SELECT typeof(entity) FROM entityBlock LIMIT 1") } == "blob")
        // A process of an older release, still running on the store, would read and write the text
        // in the old table (with `INSERT OR IGNORE`, which skips a row a CHECK refuses): it is gone,
        // so both fail aloud; and the new table takes no text.
        for sql in ["INSERT OR IGNORE INTO blockEntity (entity, origin, seq) VALUES (?, 'north', 9)",
                    "SELECT origin, seq, offsets FROM blockEntity WHERE entity = ?"] {
            #expect { try queue.write { db in try db.execute(sql: sql, arguments: [a.lowercaseText]) } } throws: { "\($0)".contains("no such table") }
        }
        #expect(throws: DatabaseError.self) {
            try queue.write { db in try db.execute(sql: "INSERT INTO entityBlock (entity, origin, seq) VALUES (?, 'north', 9)", arguments: [a.lowercaseText]) }
        }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entityBlock") } == 3)
    }

    /// A short key, one of the right length and letters with the dashes out of place, an id in
    /// capitals (never written so), and bytes.
    @Test(arguments: ["e1".databaseValue, "0123456789abcdef0123456789abcdef----".databaseValue,
                      "0B0C6A4E-3F55-4D2A-9A51-7C1E2F3D4B5A".databaseValue, Data(repeating: 7, count: 16).databaseValue])
    func migrationTwentyFiveRefusesAnEntityIndexRowThatNamesNoEntity(stray: DatabaseValue) throws {
        let queue = try DatabaseQueue()
        try Schema.migrator.migrate(queue, upTo: "v24-list-indexes-by-rowid")
        try queue.write { db in try db.execute(sql: "INSERT INTO blockEntity (entity, origin, seq) VALUES (?, 'north', 1)", arguments: [stray]) }
        #expect { try Schema.migrator.migrate(queue) } throws: { ($0 as? StoreError)?.code == .corruptFile && "\($0)".contains("names no entity id") }
        // Nothing moved: the old table and its row are as they were.
        #expect(try queue.read { db in try DatabaseValue.fetchOne(db, sql: "SELECT entity FROM blockEntity") } == stray)
        #expect(try queue.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM grdb_migrations WHERE identifier LIKE 'v25%'") } == nil)
    }
}
