import Foundation
import GRDB
import Synchronization
import Testing
import TestSupport
import TicketModel
import TicketStore

/// The store's side of the roster: pinning, adoption rules, role changes re-folding, quarantine retries.
@Suite struct RosterStoreTests {
    let start: UInt64 = 1_790_000_000_000

    @Test func aQuarantinedBlockAppliesOnceThisNodesClockCatchesUp() throws {
        let now = TestClock(start)
        let db = try memoryStore("hub", clock: now)
        let key = SiteKey.generate(), north = try SiteID("north")
        let ahead = try Block.make(origin: north, seq: 1, hlc: HLC(millis: start + 600_000, counter: 0), deps: VersionVector(),
                                   changes: create(ticketID(1), number: 1), key: key)
        #expect(try db.apply([ahead], learning: [north: key.publicKey]).held == 1)
        #expect(try db.quarantined().map(\.aheadMillis) == [600_000])
        #expect(try db.retryQuarantined() == 0)
        now.advance(400_000)
        #expect(try db.retryQuarantined() == 1)
        #expect(try db.vector()[north] == 1 && db.quarantined().isEmpty)
    }

    @Test func aRosterIsAdoptedOnlyUnderThePinnedKeyAndOnlyWhenNewer() throws {
        let hub = try memoryStore("hub", role: .coordinator)
        let siteKey = SiteKey.generate()
        let site = try memoryStore("north", key: siteKey)
        let v2 = try hub.editRoster { roster in roster.sites.append(.init(site: try SiteID("north"), key: siteKey.publicKey, role: .site)) }
        // Nothing pinned: no roster can be judged.
        #expect(throws: StoreError.self) { try site.adopt(document: v2.document, signature: v2.signature) }
        try site.pinCoordinator(key: try hub.identity().publicKey)
        // A rogue coordinator's roster, even a higher version, is refused.
        let rogue = SiteKey.generate()
        var forged = v2.roster
        forged.version = 99
        forged.sites = forged.sites.map { $0.role == .coordinator ? Roster.Member(site: try! SiteID($0.site), key: rogue.publicKey, role: .coordinator) : $0 }
        let forgedSigned = try SignedRoster.sign(forged, key: rogue)
        #expect(throws: StoreError.self) { try site.adopt(document: forgedSigned.document, signature: forgedSigned.signature) }
        // The hub's own document with one byte changed no longer verifies.
        let tampered = v2.document.replacingOccurrences(of: "\"role\":\"site\"", with: "\"role\":\"coordinator\"")
        #expect(tampered != v2.document)
        #expect(throws: StoreError.self) { try site.adopt(document: tampered, signature: v2.signature) }
        #expect(try site.rosterVersion() == 0)
        #expect(try site.adopt(document: v2.document, signature: v2.signature))
        #expect(try site.adopt(document: v2.document, signature: v2.signature) == false)
        #expect(try site.rosterVersion() == 2)
        // Once a roster was judged by the pinned key, another key is refused for life.
        #expect(throws: StoreError.self) { try site.pinCoordinator(key: SiteKey.generate().publicKey) }
        #expect(try site.pinnedCoordinatorKey() == (try hub.identity().publicKey))
        // Only the coordinator edits.
        #expect(throws: StoreError.self) { try site.editRoster { roster in roster.version += 0 } }
    }

    @Test func aWrongPinIsExplainedAtTheFirstRosterAndMayBeReplacedUntilOneIsAdopted() throws {
        let hub = try memoryStore("hub", role: .coordinator)
        let northKey = SiteKey.generate(), southKey = SiteKey.generate()
        let north = try memoryStore("north", key: northKey)
        let v2 = try hub.editRoster { roster in
            roster.sites.append(.init(site: try SiteID("north"), key: northKey.publicKey, role: .site))
            roster.sites.append(.init(site: try SiteID("south"), key: southKey.publicKey, role: .site))
        }
        // Its own key is refused with that reason.
        #expect { try north.pinCoordinator(key: northKey.publicKey) } throws: { "\($0)".contains("this store's own key") }
        // South's key pinned by mistake: the hub's roster is refused, saying which key signed it.
        try north.pinCoordinator(key: southKey.publicKey)
        let hubKey = try hub.identity().publicKey
        #expect { try north.adopt(document: v2.document, signature: v2.signature) } throws: { error in
            let text = "\(error)"
            // The start of the signer's key to compare, never a ready command with the peer's key.
            return text.contains("probably wrong") && text.contains(String(hubKey.hexString.prefix(16))) && text.contains("site south")
                && !text.contains(hubKey.hexString) && text.contains("roster pin KEY")
        }
        // Nothing was adopted under the wrong key, so it may be replaced.
        try north.pinCoordinator(key: hubKey)
        #expect(try north.adopt(document: v2.document, signature: v2.signature))
        // Now a site's key from the roster held is refused with that reason, and any other key for life.
        #expect { try north.pinCoordinator(key: southKey.publicKey) } throws: { "\($0)".contains("key of site south") }
        #expect { try north.pinCoordinator(key: SiteKey.generate().publicKey) } throws: { "\($0)".contains("for life") }
        #expect(try north.pinnedCoordinatorKey() == hubKey)
    }

    @Test func aRoleChangeReFoldsWhatThatSiteWrote() throws {
        let hub = try memoryStore("hub", role: .coordinator)
        let lapKey = SiteKey.generate(), lap = try SiteID("lap")
        try hub.editRoster { roster in roster.sites.append(.init(site: lap, key: lapKey.publicKey, role: .laptop)) }
        let id = ticketID(2)
        let moved = try Block.make(origin: lap, seq: 1, hlc: HLC(millis: TicketDatabase.systemMillis(), counter: 0), deps: VersionVector(),
                                   changes: create(id, number: 1) + [set(id, .owner, .owner(epoch: 1, site: try SiteID("hub")))], key: lapKey)
        #expect(try hub.apply([moved]).applied == 1)
        #expect(try hub.ticket(id.uuidString).owningEpoch == 0)
        #expect(try hub.refusals().map(\.code) == ["unauthorized"])
        // Promoted to an office site, the same block's handoff takes effect.
        try hub.editRoster { roster in
            if let i = roster.sites.firstIndex(where: { $0.site == "lap" }) { roster.sites[i].role = .site }
        }
        let ticket = try hub.ticket(id.uuidString)
        #expect(ticket.owningEpoch == 1 && ticket.owningSite == "hub")
    }

    @Test func refusalsAreCountedAndTheirTableStaysBounded() throws {
        let db = try memoryStore("hub", role: .coordinator)
        let stranger = SiteKey.generate(), ghost = try SiteID("ghost")
        let first = try Block.make(origin: ghost, seq: 1, hlc: HLC(millis: 1, counter: 0), deps: VersionVector(),
                                   changes: create(ticketID(1), number: 1), key: stranger)
        _ = try db.apply([first])
        _ = try db.apply([first])
        #expect(try db.refusals().map(\.count) == [2])
        #expect(try db.refusals().first?.code == "unknownSite")
        // Distinct forged blocks beyond the cap: the oldest refusals go, the table stays bounded.
        let many = try (2...11_100).map { seq in
            try Block.make(origin: ghost, seq: UInt64(seq), hlc: HLC(millis: UInt64(seq), counter: 0),
                           deps: VersionVector([ghost: UInt64(seq - 1)]), changes: [set(ticketID(1), .subject, .text("x"))], key: stranger)
        }
        for chunk in stride(from: 0, to: many.count, by: 2_000) { _ = try db.apply(Array(many[chunk..<min(chunk + 2_000, many.count)])) }
        let kept = try db.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM refusal") } ?? 0
        #expect(kept <= 11_000 && kept >= 10_000)
        #expect(try db.tickets().isEmpty && db.vector()[ghost] == 0)
    }

    /// A coordinator and a site `north` it admitted, holding that roster.
    static func hubAndAdmittedNorth() throws -> (hub: TicketDatabase, north: TicketDatabase, key: SiteKey) {
        let hub = try memoryStore("hub", role: .coordinator)
        let key = SiteKey.generate()
        let north = try TicketDatabase(DatabaseQueue(), key: key)
        try north.initialize(site: try SiteID("north"), role: .site)
        try north.pinCoordinator(key: try hub.identity().publicKey)
        try hub.admit(site: try SiteID("north"), key: key.publicKey, role: .site)
        let admitted = try #require(try hub.roster())
        _ = try north.adopt(document: admitted.document, signature: admitted.signature)
        return (hub, north, key)
    }

    /// A store whose own site the coordinator removed takes back its blocks above the limit and then
    /// writes nothing: a new block would reuse a seq the fleet saw withdrawn, a second history of the
    /// site under the same key. Single writes and batches are refused alike, through this value and
    /// another one on the same file, and nothing is stored; reads go on.
    @Test func aRemovedSiteWritesNothingMore() throws {
        let (hub, north, key) = try Self.hubAndAdmittedNorth()
        let id = try north.createTicket(TicketDraft(subject: "Scanner jams")).id
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        _ = try north.update(id, [(.assignee, .text("late"))])
        #expect(try north.removedSiteRefusal() == nil)

        let (removal, validThrough) = try hub.removeFromRoster(try SiteID("north"))
        _ = try north.adopt(document: removal.document, signature: removal.signature)
        let refusal = try #require(try north.removedSiteRefusal())
        #expect(refusal.contains("removed this store's site north") && refusal.contains("seq \(validThrough)"))
        let before = try north.digest()
        let other = try TicketDatabase(north.writer, key: key)
        for store in [north, other] {
            do {
                _ = try store.update(id, [(.priority, .text("high"))])
                Issue.record("a removed site's update was stored")
            } catch let error as StoreError {
                #expect(error.code == .refusedWrite && error.detail == refusal)
            }
            #expect(throws: StoreError(.refusedWrite, refusal)) { _ = try store.createTicket(TicketDraft(subject: "another")) }
            #expect(throws: StoreError(.refusedWrite, refusal)) {
                try store.batch { batch in _ = try batch.create(TicketDraft(subject: "in a batch")) }
            }
        }
        #expect(try north.digest() == before)
        #expect(try north.vector()[try SiteID("north")] == validThrough)
        #expect(try north.ticket(id).assignee == nil)
    }

    /// A store that refuses to write still answers a redelivery of an intake request it took
    /// before: the sender gets its ticket, not a refusal it would retry for ever. A new request gets
    /// the refusal, alone and through a group commit.
    @Test func aRemovedSiteStillAnswersARedelivery() async throws {
        let (hub, north, _) = try Self.hubAndAdmittedNorth()
        func intake(_ subject: String) -> IntakeTicket {
            IntakeTicket(id: UUID(), draft: TicketDraft(subject: subject, customer: "c-1", channel: "chat", firstMessage: "It does not start."),
                         messageID: UUID())
        }
        let taken = intake("taken before the removal")
        let first = try north.intakeCreate(taken)
        #expect(!first.duplicate)
        let commits = GroupCommit(store: north)
        let reply = TicketEvent(id: UUID(), kind: .customerMessage, actor: "c-1", visibility: .public, body: "Still broken.")
        #expect(try await !north.intakeAppend(taken.id, message: reply, through: commits).duplicate)
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        let (removal, _) = try hub.removeFromRoster(try SiteID("north"))
        _ = try north.adopt(document: removal.document, signature: removal.signature)

        let again = try north.intakeCreate(taken)
        #expect(again.duplicate && again.ticket.id == first.ticket.id)
        let grouped = try await north.intakeCreate(taken, follow: nil, through: commits)
        #expect(grouped.duplicate && grouped.ticket.id == first.ticket.id)
        #expect(throws: StoreError.self) { _ = try north.intakeCreate(intake("new after the removal")) }
        await #expect(throws: StoreError.self) { _ = try await north.intakeCreate(intake("new, grouped"), follow: nil, through: commits) }
        let redelivered = try await north.intakeAppend(taken.id, message: reply, through: commits)
        #expect(redelivered.duplicate && redelivered.ticket.id == first.ticket.id)
        let another = TicketEvent(id: UUID(), kind: .customerMessage, actor: "c-1", visibility: .public, body: "And now?")
        await #expect(throws: StoreError.self) { _ = try await north.intakeAppend(taken.id, message: another, through: commits) }
        #expect(try north.tickets().count == 1)
    }

    /// A removal is for good (PROTOCOL.md §2.6.1): a later roster that lists the removed site without
    /// its limit, with another one, or not at all is refused by a store that holds the removal, the
    /// removed store included (it goes on refusing to write), and the coordinator cannot sign one.
    @Test func aRemovalIsForGood() throws {
        let hubKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey)
        let keys = (north: SiteKey.generate(), south: SiteKey.generate())
        var stores: [TicketDatabase] = []
        for (name, key) in [("north", keys.north), ("south", keys.south)] {
            let store = try TicketDatabase(DatabaseQueue(), key: key)
            try store.initialize(site: try SiteID(name), role: .site)
            try store.pinCoordinator(key: hubKey.publicKey)
            try hub.admit(site: try SiteID(name), key: key.publicKey, role: .site)
            stores.append(store)
        }
        let north = stores[0], south = stores[1]
        _ = try north.createTicket(TicketDraft(subject: "kept"))
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        let (removal, limit) = try hub.removeFromRoster(try SiteID("north"))
        for store in stores { _ = try store.adopt(document: removal.document, signature: removal.signature) }

        var lifted = removal.roster, moved = removal.roster, dropped = removal.roster
        lifted.version += 1
        moved.version += 1
        dropped.version += 1
        let index = try #require(removal.roster.sites.firstIndex { $0.site == "north" })
        lifted.sites[index].revokedAfter = nil
        moved.sites[index].revokedAfter = limit + 1
        dropped.sites.remove(at: index)
        var rekeyed = removal.roster
        rekeyed.version += 1
        rekeyed.sites[index].key = SiteKey.generate().publicKey.hexString
        for roster in [lifted, moved, dropped, rekeyed] {
            let signed = try SignedRoster.sign(roster, key: hubKey)
            for store in [north, south] {
                do {
                    try store.adopt(document: signed.document, signature: signed.signature)
                    Issue.record("a roster that does not keep north's removal was adopted")
                } catch let error as StoreError {
                    #expect(error.code == .refusedWrite && error.detail.contains("roster remove north --after \(limit)"))
                }
                #expect(try store.rosterVersion() == removal.roster.version)
            }
        }
        #expect(throws: StoreError.self) {
            try hub.editRoster { roster in
                if let i = roster.sites.firstIndex(where: { $0.site == "north" }) { roster.sites[i].revokedAfter = nil }
            }
        }
        #expect(try hub.rosterVersion() == removal.roster.version)
        #expect(throws: StoreError.self) { _ = try hub.removeFromRoster(try SiteID("north"), after: limit + 1) }
        #expect(try north.removedSiteRefusal() != nil)
        #expect(throws: StoreError.self) { _ = try north.createTicket(TicketDraft(subject: "after a lifted removal")) }
        // A roster that keeps the removal as it is adopts as usual.
        let later = try hub.editRoster { roster in
            if let i = roster.sites.firstIndex(where: { $0.site == "south" }) { roster.sites[i].role = .laptop }
        }
        for store in [north, south] { #expect(try store.adopt(document: later.document, signature: later.signature)) }
    }

    /// A coordinator restored from a backup older than a removal signs rosters without it; the
    /// sites refuse them, and their message names the command that signs the removal again. Once
    /// the coordinator has run it, the sites adopt its rosters again.
    @Test func aCoordinatorFromAnOlderBackupSignsTheRemovalAgain() throws {
        let hubKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey)
        let (northKey, southKey) = (SiteKey.generate(), SiteKey.generate())
        let south = try TicketDatabase(DatabaseQueue(), key: southKey)
        try south.initialize(site: try SiteID("south"), role: .site)
        try south.pinCoordinator(key: hubKey.publicKey)
        try hub.admit(site: try SiteID("north"), key: northKey.publicKey, role: .site)
        try hub.admit(site: try SiteID("south"), key: southKey.publicKey, role: .site)
        let older = try TicketDatabase(DatabaseQueue(), key: hubKey)
        try hub.writer.backup(to: older.writer as! DatabaseQueue)
        let (removal, limit) = try hub.removeFromRoster(try SiteID("north"), after: 3)
        #expect(limit == 3)
        _ = try south.adopt(document: removal.document, signature: removal.signature)

        // The restored coordinator edits on from before the removal, past its version.
        var signed = try older.editRoster { roster in roster.issued += 1 }
        signed = try older.editRoster { roster in
            if let i = roster.sites.firstIndex(where: { $0.site == "south" }) { roster.sites[i].role = .laptop }
        }
        #expect(signed.roster.version > removal.roster.version)
        do {
            _ = try south.adopt(document: signed.document, signature: signed.signature)
            Issue.record("south adopted a roster that lifts north's removal")
        } catch let error as StoreError {
            #expect(error.detail.contains("`tierline roster remove north --after 3`"))
        }
        let (again, _) = try older.removeFromRoster(try SiteID("north"), after: 3)
        #expect(try south.adopt(document: again.document, signature: again.signature))
        #expect(try south.roster()?.roster.member(try SiteID("north"))?.revokedAfter == 3)
    }

    /// Removal converges (issue 18): north's blocks 2 and 3 reached south before the coordinator removed
    /// north after block 1, and south built on them. Every replica ends with the same blocks and the
    /// same digest, whichever it learned first: the removal, north's late blocks, or south's block.
    @Test func aRemovedSitesLateBlocksAreTakenBackWhateverTheOrder() throws {
        let hub = try memoryStore("hub", role: .coordinator)
        var stores: [String: TicketDatabase] = [:]
        for name in ["north", "south", "a", "b", "c", "d"] {
            let key = SiteKey.generate()
            let store = try TicketDatabase(DatabaseQueue(), key: key)
            try store.initialize(site: SiteID(name), role: .site)
            try store.pinCoordinator(key: try hub.identity().publicKey)
            try hub.admit(site: SiteID(name), key: key.publicKey, role: .site)
            stores[name] = store
        }
        let admitted = try #require(try hub.roster())
        for store in stores.values { try store.adopt(document: admitted.document, signature: admitted.signature) }
        let north = stores["north"]!, south = stores["south"]!
        let first = try north.createTicket(TicketDraft(subject: "kept: written before the removal"))
        _ = try hub.apply(try north.blocks(after: VersionVector()))
        let built = try north.createTicket(TicketDraft(subject: "late, but south answered it"))
        let late = try north.createTicket(TicketDraft(subject: "late, touched by nobody else"))
        _ = try north.comment(first.id, body: "late comment", kind: .agentReply, visibility: .public, actor: "n")
        #expect(try north.vector()[SiteID("north")] >= 3)
        _ = try south.apply(try north.blocks(after: VersionVector()))
        _ = try south.comment(built.id, body: "south's answer", kind: .agentReply, visibility: .public, actor: "s")
        let (removal, validThrough) = try hub.removeFromRoster(SiteID("north"))
        #expect(validThrough == 1)
        let everything = try south.blocks(after: VersionVector())
        let southsOwn = everything.filter { $0.origin.rawValue == "south" }
        let northsFirst = everything.filter { $0.origin.rawValue == "north" && $0.seq == 1 }
        func adopt(_ store: TicketDatabase) throws { try store.adopt(document: removal.document, signature: removal.signature) }

        try adopt(stores["a"]!)                                   // the removal first, then every block
        _ = try stores["a"]!.apply(everything)
        _ = try stores["b"]!.apply(everything)                    // every block first, then the removal
        try adopt(stores["b"]!)
        try adopt(stores["c"]!)                                   // the removal, south's block, then north's first
        _ = try stores["c"]!.apply(southsOwn)
        #expect(try stores["c"]!.vector()[SiteID("south")] == 0)   // held: north's block 1 is missing
        _ = try stores["c"]!.apply(northsFirst)
        _ = try stores["d"]!.apply(southsOwn)                     // south's block, the removal, then all
        try adopt(stores["d"]!)
        _ = try stores["d"]!.apply(everything)
        _ = try hub.apply(everything)                             // the coordinator never held the late blocks
        try adopt(south)                                          // south built on them
        try adopt(north)

        let replicas = [hub, south] + ["a", "b", "c", "d"].map { stores[$0]! }
        let digests = Set(try replicas.map { try $0.digest() })
        #expect(digests.count == 1)
        for replica in replicas {
            #expect(try replica.vector()[SiteID("north")] == 1)
            #expect(try replica.vector()[SiteID("south")] == 1)
            #expect(try replica.ticket(first.id).subject == "kept: written before the removal")
            #expect(try replica.tickets().contains { $0.id == late.id } == false)
            #expect(try replica.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM pendingBlock") } == 0)
        }
    }

    /// The store reads a roster strictly wherever it comes from (issue 19): even signed by the real
    /// coordinator, a document with a repeated member or a fractional number is refused by `adopt`,
    /// which a session, `roster import` and an export file all go through.
    @Test func adoptReadsTheRosterStrictlyWhateverItsSignature() throws {
        let hubKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey)
        let site = try memoryStore("north")
        try site.pinCoordinator(key: hubKey.publicKey)
        let good = try #require(try hub.roster())
        for bad in [good.document.replacingOccurrences(of: "{\"coordinator\"", with: "{\"version\":99,\"coordinator\""),
                    good.document.replacingOccurrences(of: "\"version\":1", with: "\"version\":1.0")] {
            #expect(bad != good.document)
            let signature = try hubKey.sign(Roster.signedMessage(bad))
            #expect(throws: StoreError.self) { try site.adopt(document: bad, signature: signature) }
        }
        #expect(try site.rosterVersion() == 0)
        #expect(try site.adopt(document: good.document, signature: good.signature))
    }

    /// A divergence row names one seq with that seq's two hashes (review): evidence at a later seq
    /// leaves a row about an earlier one as it is, and evidence at an earlier seq replaces it whole.
    @Test func aDivergenceRowKeepsTheEarliestSeqWithItsOwnHashes() throws {
        let hubKey = SiteKey.generate(), xKey = SiteKey.generate()
        let hub = try memoryStore("hub", role: .coordinator, key: hubKey)
        let x = try memoryStore("x", key: xKey)
        let roster = try hub.admit(site: SiteID("x"), key: xKey.publicKey, role: .site)
        try x.pinCoordinator(key: hubKey.publicKey)
        try x.adopt(document: roster.document, signature: roster.signature)
        let copyQueue = try DatabaseQueue()
        try x.writer.backup(to: copyQueue)
        let copy = try TicketDatabase(copyQueue, key: xKey)
        for store in [x, copy] {
            _ = try store.createTicket(TicketDraft(subject: "one"))
            _ = try store.createTicket(TicketDraft(subject: "two"))
        }
        _ = try hub.apply(try x.blocks(after: VersionVector()))
        let theirs = try copy.blocks(after: VersionVector()), ours = try x.blocks(after: VersionVector())
        let peer = try SiteID("x")
        for seq: UInt64 in [2, 1, 2] {
            _ = try hub.recordFork(theirs.first { $0.seq == seq }!, peer: peer, address: "test", now: 1)
        }
        let row = try #require(try hub.divergences().first)
        #expect(row.seq == 1)
        #expect(row.ourHash == ours.first { $0.seq == 1 }!.hash)
        #expect(row.theirHash == theirs.first { $0.seq == 1 }!.hash)
    }
}
