import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// A local write absorbs its block into the state an earlier write of the same store kept
/// (``StateCache``), and the ticket is folded from the log whenever the log changed in between by
/// another way: another connection, a sync or another path on this one; a write that rolled back
/// keeps nothing. In each case below a state kept across the other write would leave rows that
/// differ from a rebuild of the log.
@Suite struct StateCacheTests {
    struct Refused: Error {}

    static func ticketRowsMatchARebuild(_ store: TicketDatabase) throws {
        let (stored, rebuilt) = try IncrementalMaterializeTests.storedAndRebuilt(store)
        #expect(stored.count > 0)
        #expect(stored == rebuilt)
    }

    @Test func aWriteByAnotherConnectionIsNotHiddenByAKeptState() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("state-cache-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = SiteKey.generate()
        // Two processes on one store (the CLI beside `tierline serve`): two pools over one file.
        let serve = try TicketDatabase(try TicketDatabase.openPool(path: folder + "/tierline.sqlite"), key: key)
        try serve.initialize(site: try SiteID("north"), role: .site)
        let cli = try TicketDatabase(try TicketDatabase.openPool(path: folder + "/tierline.sqlite"), key: key)

        let id = try serve.createTicket(TicketDraft(subject: "VPN drops")).id
        _ = try serve.update(id, [(.assignee, .text("ana"))])
        _ = try cli.tag(id, add: ["vpn"], remove: [])
        _ = try cli.update(id, [(.group, .text("tier2"))])
        _ = try serve.update(id, [(.priority, .text("high"))])
        #expect(serve.foldStates.lastHandedOver == 0, "the other process's blocks moved the vector")

        let ticket = try serve.ticket(id)
        #expect(ticket.tags == ["vpn"])
        #expect(ticket.group == "tier2")
        #expect(ticket.priority == "high" && ticket.assignee == "ana")
        try Self.ticketRowsMatchARebuild(serve)
    }

    /// A bulk batch (an import) keeps no state for the next write, neither its own nor those kept
    /// before it, and its tickets' rows are those of a rebuild.
    @Test func aBatchThatKeepsNoStatesLeavesNone() throws {
        let store = try memoryStore("north")
        let first = try store.createTicket(TicketDraft(subject: "Kept")).id
        _ = try store.update(first, [(.assignee, .text("ana"))])
        #expect(store.foldStates.lastHandedOver == 1, "the create's state was kept for the update")
        var made: [UUID] = []
        try store.batch { batch in
            batch.keepNoStates()
            for n in 0..<20 { made.append(try batch.create(TicketDraft(subject: "Imported \(n)"))) }
            try batch.set(UUID(uuidString: first)!, .group, .text("tier2"))
        }
        #expect(store.foldStates.lastHandedOver == 1, "the batch itself took the state kept before")
        _ = try store.update(made[0].uuidString.lowercased(), [(.priority, .text("high"))])
        #expect(store.foldStates.lastHandedOver == 0, "the batch left no state")
        #expect(try store.ticket(first).group == "tier2")
        try Self.ticketRowsMatchARebuild(store)
    }

    /// A sync between two local writes: of work that saw all of north's ticket, then of work
    /// concurrent with a write of north's. The apply absorbs the blocks into the state north's
    /// write kept (the concurrent ones field by field) and keeps it for the next write.
    @Test func syncsBetweenLocalWritesMatchARebuild() throws {
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey), south = try memoryStore("south", key: southKey)
        try admit([(north, northKey), (south, southKey)])
        let id = try north.createTicket(TicketDraft(subject: "Printer offline", tags: ["printer"])).id
        _ = try north.update(id, [(.assignee, .text("ana"))])
        _ = try south.apply(try north.blocks(after: south.vector()))
        _ = try south.update(id, [(.assignee, .text("bo")), (.group, .text("field"))])
        _ = try south.tag(id, add: ["onsite"], remove: ["printer"])
        _ = try north.apply(try south.blocks(after: north.vector()))
        #expect(north.foldStates.lastHandedOver == 1, "the apply took the state north's write kept")
        _ = try north.update(id, [(.priority, .text("urgent"))])
        #expect(north.foldStates.lastHandedOver == 1, "the write took the state the apply kept")
        #expect(try north.ticket(id).assignee == "bo")
        try Self.ticketRowsMatchARebuild(north)

        _ = try south.update(id, [(.assignee, .text("cy"))])
        _ = try north.update(id, [(.assignee, .text("dee"))])
        _ = try north.apply(try south.blocks(after: north.vector()))
        #expect(north.foldStates.lastHandedOver == 1)
        #expect(try north.ticket(id).conflictCount == 1, "cy and dee were written concurrently")
        try Self.ticketRowsMatchARebuild(north)
        try north.batch { batch in try batch.set(UUID(uuidString: id)!, .category, .text("hardware")) }
        _ = try south.apply(try north.blocks(after: south.vector()))

        let ticket = try north.ticket(id)
        #expect(ticket.group == "field" && ticket.tags == ["onsite"])
        #expect(ticket.priority == "urgent" && ticket.category == "hardware")
        #expect(try north.digest() == south.digest())
        #expect(ticket.assignee == (try south.ticket(id).assignee))
        try Self.ticketRowsMatchARebuild(north)
        try Self.ticketRowsMatchARebuild(south)
    }

    @Test func anotherWriteOnTheSameConnectionIsNotHiddenByAKeptState() throws {
        let key = SiteKey.generate()
        let north = try memoryStore("north", key: key)
        let id = try north.createTicket(TicketDraft(subject: "Disk full")).id
        _ = try north.update(id, [(.assignee, .text("ana"))])
        // A write that goes around the kept states, as a roster's withdrawal or a grouped intake
        // write does: here a block made and materialized by hand.
        let last = try north.blocks(after: VersionVector()).last!
        try north.writer.write { db in
            let vector = try TicketDatabase.vector(db)
            let block = try Block.make(origin: last.origin, seq: vector[last.origin] + 1, hlc: HLC(rawValue: last.hlc.rawValue + 1), deps: vector,
                                       changes: [Change(.ticket(UUID(uuidString: id)!), .set(.group, .text("storage")))], key: key)
            try TicketDatabase.insert(db, block)
            try TicketDatabase.materialize(db, [UUID(uuidString: id)!])
        }
        _ = try north.update(id, [(.priority, .text("high"))])
        #expect(north.foldStates.lastHandedOver == 0)

        let ticket = try north.ticket(id)
        #expect(ticket.group == "storage" && ticket.assignee == "ana" && ticket.priority == "high")
        try Self.ticketRowsMatchARebuild(north)
    }

    /// What `tierline serve` writes besides tickets (the dashboard's facts, the outbox, a session's
    /// bookkeeping) leaves the block log and the roles alone: the states stay kept.
    @Test func writesThatTouchNoBlockKeepTheStates() throws {
        let north = try memoryStore("north")
        let id = try north.createTicket(TicketDraft(subject: "Badge reader")).id
        _ = try north.update(id, [(.assignee, .text("ana"))])
        try north.writer.write { db in
            try db.execute(sql: "INSERT INTO apiToken (name, hash, channels, createdAt) VALUES ('ops', x'00', '', 0)")
        }
        _ = try north.update(id, [(.priority, .text("high"))])
        #expect(north.foldStates.lastHandedOver == 1)
        #expect(try north.ticket(id).priority == "high")
        try Self.ticketRowsMatchARebuild(north)
    }

    /// North's kept state of a ticket holds south's late change (north wrote after syncing it). The
    /// coordinator then removes south below that change: north takes it back, and its next write
    /// must start from the log without it, not from the state kept before.
    @Test func aRemovalThatWithdrawsAKeptChangeDropsTheStates() throws {
        let hub = try memoryStore("hub", role: .coordinator)
        var stores: [String: TicketDatabase] = [:]
        for name in ["north", "south"] {
            let key = SiteKey.generate()
            let store = try TicketDatabase(DatabaseQueue(), key: key)
            try store.initialize(site: try SiteID(name), role: .site)
            try store.pinCoordinator(key: try hub.identity().publicKey)
            try hub.admit(site: try SiteID(name), key: key.publicKey, role: .site)
            stores[name] = store
        }
        let admitted = try #require(try hub.roster())
        for store in stores.values { _ = try store.adopt(document: admitted.document, signature: admitted.signature) }
        let north = stores["north"]!, south = stores["south"]!

        let id = try north.createTicket(TicketDraft(subject: "Scanner jams")).id
        _ = try south.apply(try north.blocks(after: VersionVector()))
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        _ = try south.update(id, [(.group, .text("late-south"))])
        _ = try north.apply(try south.blocks(after: try north.vector()))
        _ = try north.update(id, [(.assignee, .text("ana"))])
        #expect(try north.ticket(id).group == "late-south")

        let (removal, _) = try hub.removeFromRoster(try SiteID("south"))
        _ = try north.adopt(document: removal.document, signature: removal.signature)
        #expect(try north.vector()[try SiteID("south")] == 0)
        _ = try north.update(id, [(.priority, .text("high"))])

        let ticket = try north.ticket(id)
        #expect(ticket.group == nil)
        #expect(ticket.assignee == "ana" && ticket.priority == "high")
        try Self.ticketRowsMatchARebuild(north)
    }

    @Test func aWriteThatRollsBackKeepsNothing() throws {
        let north = try memoryStore("north")
        let id = try north.createTicket(TicketDraft(subject: "Mail bounces")).id
        _ = try north.update(id, [(.assignee, .text("ana"))])
        var failing = north
        failing.faultHook = { point in if point == "beforeCommit" { throw Refused() } }
        #expect(throws: Refused.self) { _ = try failing.update(id, [(.assignee, .text("bo")), (.priority, .text("high"))]) }
        #expect(throws: Refused.self) { try failing.batch { batch in try batch.addTag(UUID(uuidString: id)!, "lost") } }
        _ = try north.update(id, [(.group, .text("tier1"))])

        let ticket = try north.ticket(id)
        #expect(ticket.assignee == "ana" && ticket.priority == "normal" && ticket.tags.isEmpty)
        #expect(ticket.group == "tier1")
        try Self.ticketRowsMatchARebuild(north)
    }

    /// The kept states are bounded by the memory they take, long texts counted: past the bound
    /// the cache drops states down to half of it, and a state larger than the whole bound is not
    /// kept (and drops none).
    @Test func keptStatesAreBoundedByTheirSize() throws {
        func withBody(_ n: UInt8, bytes: Int) throws -> TicketState {
            var state = TicketState(id: ticketID(n))
            let event = TicketEvent(id: eventID(n), kind: .customerMessage, actor: "cu", visibility: .public, body: String(repeating: "x", count: bytes))
            #expect(state.absorb([EntityChange(dot: Dot(origin: try SiteID("north"), seq: 1, index: 0), hlc: HLC(rawValue: 1), deps: VersionVector(),
                                               operation: .event(event))]))
            return state
        }
        let cache = FoldCache(capacity: 10_000)
        try cache.keep(ticketID(1), withBody(1, bytes: 3_000))
        try cache.keep(ticketID(2), withBody(2, bytes: 3_000))
        try cache.keep(ticketID(1), withBody(1, bytes: 3_000))
        #expect(Set(cache.states.keys) == [ticketID(1), ticketID(2)], "a state kept again replaces its own weight")
        try cache.keep(ticketID(3), withBody(3, bytes: 3_000))
        #expect(Set(cache.states.keys) == [ticketID(3)], "past the bound the cache drops states to half of it")
        try cache.keep(ticketID(4), withBody(4, bytes: 20_000))
        #expect(Set(cache.states.keys) == [ticketID(3)], "a state larger than the bound is not kept")
        let small = FoldCache(capacity: 10_000)
        for n in 1...20 as ClosedRange<UInt8> { try small.keep(ticketID(n), withBody(n, bytes: 100)) }
        #expect((5...12).contains(small.states.count), "states of about 770 bytes: at most 12 fit, at least 5 stay after a drop")
        #expect(small.states[ticketID(20)] != nil, "the state just kept stays")
    }

    /// Batches and single writes one after another: creates, sets, tags added and removed (the
    /// removal's observed additions read from the kept state), follow-ups, comments.
    @Test(arguments: [5, 17] as [UInt64])
    func writesInARowMatchARebuild(seed: UInt64) throws {
        let north = try memoryStore("north")
        var rng = SplitMix(state: seed)
        var ids: [UUID] = []
        let tags = ["vpn", "printer", "urgent"]
        for step in 0..<120 {
            if ids.isEmpty || Int.random(in: 0..<6, using: &rng) == 0 {
                ids.append(UUID(uuidString: try north.createTicket(TicketDraft(subject: "t\(step)", tags: [tags[step % 3]])).id)!)
                continue
            }
            let id = ids.randomElement(using: &rng)!
            let ref = id.uuidString.lowercased()
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: _ = try north.update(ref, [(.assignee, .text(["ana", "bo"].randomElement(using: &rng)!))])
            case 1: _ = try north.tag(ref, add: [tags.randomElement(using: &rng)!], remove: [tags.randomElement(using: &rng)!])
            case 2: _ = try north.comment(ref, body: "c\(step)", kind: .customerMessage, visibility: .public, actor: "cu")
            default:
                try north.batch { batch in
                    try batch.set(id, .priority, .text(["low", "high"].randomElement(using: &rng)!))
                    try batch.addTag(id, tags.randomElement(using: &rng)!)
                    try batch.removeTag(id, tags.randomElement(using: &rng)!)
                    let other = ids.randomElement(using: &rng)!
                    try batch.set(other, .group, .text("g\(step % 4)"))
                    if Bool.random(using: &rng) { ids.append(try batch.create(TicketDraft(subject: "b\(step)", tags: [tags[0]]))) }
                }
            }
        }
        try Self.ticketRowsMatchARebuild(north)
    }
}
