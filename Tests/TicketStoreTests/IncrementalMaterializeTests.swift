import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// Local writes absorb into known states and write only the rows that changed; remote blocks fold
/// in full and also write only what differs. Whatever path a ticket took, its rows must be exactly
/// those a from-scratch materialization of the log writes.
@Suite struct IncrementalMaterializeTests {
    /// Every materialized ticket row, sorted, as text.
    static func tables(_ db: Database) throws -> [String] {
        var out: [String] = []
        for sql in ["SELECT * FROM ticket ORDER BY id", "SELECT * FROM ticketElement ORDER BY ticket, setName, element",
                    "SELECT * FROM ticketEvent ORDER BY ticket, id", "SELECT * FROM ticketLookup ORDER BY ticket, name",
                    "SELECT * FROM ticketConflict ORDER BY id"] {
            out += try Row.fetchAll(db, sql: sql).map { sql.split(separator: " ")[3] + ": " + $0.description }
        }
        return out
    }

    /// The store's rows, and the rows a materialization of every ticket from an empty table writes
    /// (computed in a transaction that is rolled back).
    static func storedAndRebuilt(_ store: TicketDatabase) throws -> (stored: [String], rebuilt: [String]) {
        try store.writer.writeWithoutTransaction { db in
            let stored = try tables(db)
            var rebuilt: [String] = []
            try db.inTransaction {
                let ids = try String.fetchAll(db, sql: "SELECT id FROM ticket").map { UUID(uuidString: $0)! }
                for table in ["ticket", "ticketElement", "ticketEvent", "ticketLookup", "ticketConflict"] {
                    try db.execute(sql: "DELETE FROM \(table)")
                }
                try TicketDatabase.materialize(db, Set(ids), fresh: Set(ids))
                try TicketDatabase.resolveMerges(db)
                rebuilt = try tables(db)
                return .rollback
            }
            return (stored, rebuilt)
        }
    }

    @Test(arguments: [3, 11, 29] as [UInt64])
    func rowsEqualAFullRematerializationAfterLocalAndRemoteWrites(seed: UInt64) throws {
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", key: southKey)
        try admit([(north, northKey), (south, southKey)])
        var rng = SplitMix(state: seed)
        var tickets: [String] = []
        let tags = ["vpn", "printer", "urgent"]
        for step in 0..<160 {
            let (store, other) = Bool.random(using: &rng) ? (north, south) : (south, north)
            if tickets.isEmpty || Int.random(in: 0..<8, using: &rng) == 0 {
                let ticket = try store.createTicket(TicketDraft(subject: "s\(step)", tags: Bool.random(using: &rng) ? [tags[0]] : [],
                                                                firstMessage: Bool.random(using: &rng) ? "hello" : nil))
                tickets.append(ticket.id)
                if Bool.random(using: &rng) { _ = try other.apply(try store.blocks(after: other.vector())) }
                continue
            }
            let ticket = tickets.randomElement(using: &rng)!
            // A ticket the other store has not received yet is written where it is known.
            guard (try? store.ticket(ticket)) != nil else { continue }
            do {
                switch Int.random(in: 0..<12, using: &rng) {
                case 0: _ = try store.update(ticket, [(.status, .text(["open", "solved", "on_hold"].randomElement(using: &rng)!))])
                case 1: _ = try store.update(ticket, [(.assignee, .text(["ana", "bo"].randomElement(using: &rng)!))])
                case 2: _ = try store.update(ticket, [(.escalation, .level(cycle: 1, level: UInt64.random(in: 0...3, using: &rng)))])
                case 3: _ = try store.update(ticket, [(.custom(TicketLookup.thread), .text("thread-\(step % 3)"))])
                case 4: _ = try store.update(ticket, [(.custom(TicketLookup.thread), .null), (.priority, .text("high"))])
                case 5: _ = try store.tag(ticket, add: [tags.randomElement(using: &rng)!], remove: [])
                case 6: _ = try store.tag(ticket, add: [], remove: [tags.randomElement(using: &rng)!])
                case 7: _ = try store.comment(ticket, body: "c\(step)", kind: .customerMessage, visibility: .public, actor: "cu")
                case 8:
                    let target = tickets.randomElement(using: &rng)!
                    if target != ticket { _ = try store.update(ticket, [(.mergedInto, .ticket(UUID(uuidString: target)!))]) }
                case 9:
                    try store.batch { batch in
                        let opened = try batch.create(TicketDraft(subject: "batch \(step)", tags: [tags[1]]))
                        try batch.set(opened, .assignee, .text("cy"))
                        try batch.removeTag(opened, tags[1])
                        try batch.set(UUID(uuidString: ticket)!, .group, .text("l2"))
                        try batch.addTag(UUID(uuidString: ticket)!, tags[2])
                        tickets.append(opened.uuidString.lowercased())
                    }
                default:
                    // The stores exchange now and then, so concurrent writes meet (conflicts, add-wins).
                    _ = try north.apply(try south.blocks(after: north.vector()))
                    _ = try south.apply(try north.blocks(after: south.vector()))
                }
            } catch let error as StoreError where error.code == .refusedWrite {
                continue  // a closed ticket refuses a status change: nothing was written
            }
        }
        _ = try north.apply(try south.blocks(after: north.vector()))
        _ = try south.apply(try north.blocks(after: south.vector()))
        for store in [north, south] {
            let (stored, rebuilt) = try Self.storedAndRebuilt(store)
            #expect(stored.count > 0)
            #expect(stored == rebuilt)
        }
        #expect(try north.digest() == south.digest())
    }

    /// A sync that brings a ticket's whole life at once (a laptop's offline work) folds the tickets
    /// its blocks open from the blocks in hand, skipping a change the author's role may not make, and
    /// falls back to the full fold where a ticket also has a concurrent block from another site.
    @Test func blocksThatOpenTicketsInOneApplyMatchARebuild() throws {
        let laptopKey = SiteKey.generate(), northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let laptop = try memoryStore("laptop", role: .laptop, key: laptopKey)
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", key: southKey)
        try admit([(laptop, laptopKey), (north, northKey), (south, southKey)])
        var ids: [UUID] = []
        try laptop.batch { batch in
            for n in 0..<5 {
                ids.append(try batch.create(TicketDraft(subject: "offline \(n)", tags: ["vpn", "printer"], firstMessage: "it broke (\(n))")))
            }
        }
        let first = ids[0].uuidString.lowercased(), second = ids[1].uuidString.lowercased()
        _ = try laptop.update(first, [(.assignee, .text("ana")), (.priority, .text("high"))])
        _ = try laptop.tag(first, add: ["urgent"], remove: ["vpn"])
        _ = try laptop.comment(second, body: "more detail", kind: .customerMessage, visibility: .public, actor: "cu")
        _ = try laptop.update(second, [(.status, .text("solved"))])
        // A laptop may not move a ticket's owning site: a block that tries is stored, and the fold skips it.
        let vector = try laptop.vector()
        let last = try laptop.blocks(after: VersionVector()).last!
        let refused = try Block.make(origin: try SiteID("laptop"), seq: vector[try SiteID("laptop")] + 1, hlc: HLC(rawValue: last.hlc.rawValue + 1),
                                     deps: vector, changes: [Change(.ticket(ids[2]), .set(.owner, .owner(epoch: 9, site: try SiteID("laptop"))))],
                                     key: laptopKey)
        // South hears of the first ticket early and changes it, concurrently with the laptop's later work.
        _ = try south.apply(Array(try laptop.blocks(after: VersionVector()).prefix(1)))
        _ = try south.update(first, [(.assignee, .text("bo"))])

        let laptopBlocks = try laptop.blocks(after: VersionVector()) + [refused]
        let applied = try north.apply(laptopBlocks + (try south.blocks(after: VersionVector()).filter { $0.origin.rawValue == "south" }))
        #expect(applied.applied == laptopBlocks.count + 1)
        let (stored, rebuilt) = try Self.storedAndRebuilt(north)
        #expect(stored.count > 0)
        #expect(stored == rebuilt)
        let ticket = try north.ticket(first)
        #expect(ticket.tags == ["printer", "urgent"])
        #expect(try north.ticket(second).status == "solved")
        #expect(try north.ticket(ids[2].uuidString.lowercased()).owningEpoch == 0)
        // The laptop's assignee and south's were concurrent: one conflict, kept on both stores' rows.
        #expect(ticket.conflictCount == 1)
    }

    /// A block may give a ticket and a record one id. A ticket's fold takes its own changes only, as
    /// the reference replica's does, whether from the blocks in hand or from the log: the store that
    /// receives it in one sync and a rebuild give the same rows, with nothing of the customer's.
    @Test func aTicketSharingItsIDWithARecordInOneBlockFoldsOnlyItsOwnChanges() throws {
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", key: southKey)
        try admit([(north, northKey), (south, southKey)])
        let id = UUID()
        let changes = [Change(.ticket(id), .create(number: 1)), Change(.ticket(id), .set(.subject, .text("shared id"))),
                       Change(EntityRef(kind: .customer, id: id), .set(.custom(TicketLookup.thread), .text("thread-1")))]
        let south1 = try SiteID("south")
        let block = try Block.make(origin: south1, seq: 1, hlc: HLC(millis: 1_700_000_000_000, counter: 0), deps: VersionVector(),
                                   changes: changes, key: southKey)
        let report = try north.apply([block])
        #expect(report.applied == 1)
        let (stored, rebuilt) = try Self.storedAndRebuilt(north)
        #expect(stored.contains { $0.hasPrefix("ticket: ") })
        #expect(!stored.contains { $0.hasPrefix("ticketLookup: ") }, "the customer's register is not the ticket's")
        #expect(stored == rebuilt)
        #expect(try north.ticketState(id.uuidString).customFields.isEmpty)
    }

    @Test func aBatchOpeningMoreTicketsThanItHoldsStatesForMatchesARebuild() throws {
        let store = try memoryStore("north")
        var ids: [UUID] = []
        try store.batch { batch in
            for n in 0..<(LocalBatch.openedCapacity + 300) {
                ids.append(try batch.create(TicketDraft(subject: "t\(n)", tags: n % 3 == 0 ? ["vpn"] : [])))
            }
            // The first tickets' rows were written before these writes: they fold again at the end.
            try batch.set(ids[0], .assignee, .text("ana"))
            try batch.removeTag(ids[3], "vpn")
            try batch.set(ids[ids.count - 1], .status, .text("solved"))
        }
        let (stored, rebuilt) = try Self.storedAndRebuilt(store)
        #expect(stored == rebuilt)
        #expect(try store.ticket(ids[0].uuidString.lowercased()).assignee == "ana")
        #expect(try store.ticket(ids[3].uuidString.lowercased()).tags == [])
    }
}
