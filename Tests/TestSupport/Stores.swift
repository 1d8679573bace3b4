import Foundation
import GRDB
import Testing
import TicketModel
import TicketStore

/// A store in memory, initialized as `site` with `role`. Its wall clock is `clock` when one is given,
/// so the test decides what time every write is stamped with.
public func memoryStore(_ site: String, role: SiteRole = .site, clock: TestClock? = nil, key: SiteKey = .generate()) throws -> TicketDatabase {
    let store = if let clock {
        try TicketDatabase(DatabaseQueue(), key: key, wallClock: { clock.now })
    } else {
        try TicketDatabase(DatabaseQueue(), key: key)
    }
    try store.initialize(site: try SiteID(site), role: role)
    return store
}

/// Leaves `store` as full as a full disk would: no free page inside the file (a dropped table or
/// index leaves some, which a write would take) and no page more (SQLite's page limit stands in for
/// the disk; a write that needs one fails with the same SQLITE_FULL).
public func fillDisk(_ store: TicketDatabase) async throws {
    try await store.writer.writeWithoutTransaction { db in
        try db.execute(sql: "VACUUM")
        let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        try db.execute(sql: "PRAGMA max_page_count = \(pages)")
    }
}

/// The key of the coordinator that signs the rosters of tests without a coordinator of their own.
public let outsideCoordinatorKey = SiteKey.generate()

/// Makes `members` one fleet: each pins the coordinator's key and adopts one signed roster that
/// lists them all. The coordinator among them signs it; without one, ``outsideCoordinatorKey`` does.
public func admit(_ members: [(db: TicketDatabase, key: SiteKey)]) throws {
    let coordinator = members.firstIndex { (try? $0.db.identity().role) == .coordinator }
    let signer = coordinator.map { members[$0].key } ?? outsideCoordinatorKey
    let hq = try coordinator.map { try members[$0].db.identity().site } ?? SiteID("hq")
    var sites = [Roster.Member(site: hq, key: signer.publicKey, role: .coordinator)]
    for (index, member) in members.enumerated() where index != coordinator {
        let me = try member.db.identity()
        sites.append(Roster.Member(site: me.site, key: me.publicKey, role: me.role))
    }
    let version = try members.map { try $0.db.rosterVersion() }.max()! + 1
    let signed = try SignedRoster.sign(Roster(version: version, coordinator: hq, issued: 1, sites: sites), key: signer)
    for (index, member) in members.enumerated() {
        if index != coordinator { try member.db.pinCoordinator(key: signer.publicKey) }
        try member.db.adopt(document: signed.document, signature: signed.signature)
    }
}

/// Polls `condition` every 50 ms until it holds. The bound only ends a test that would otherwise
/// hang: it is generous (at least 120 s, whatever `seconds` asks) so that a loaded machine does not
/// fail a test whose condition is merely late. With `clock`, each poll also moves the injected clock
/// by `step` ms, for conditions that wait on the store's or ticker's time rather than on sockets.
public func eventually(_ seconds: Double, _ what: String, clock: TestClock? = nil, step: UInt64 = 0,
                       _ condition: () throws -> Bool) async throws {
    try await eventually(seconds, what) { () async throws -> Bool in
        if try condition() { return true }
        clock?.advance(step)
        return false
    }
}

/// ``eventually(_:_:clock:step:_:)`` for a condition that must be awaited (an actor's state).
///
/// The bound is also counted in polls (600, half a minute of polling): a process whose tasks wait
/// for a thread (a busy machine, the parallel tests holding the cooperative pool) polls seldom, and
/// what the condition waits for was held up just as long, so the clock alone would end the test
/// before it had a fair chance.
public func eventually(_ seconds: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
    let started = Date()
    let deadline = started.addingTimeInterval(max(seconds, 120))
    var polls = 0
    while Date() < deadline || polls < 600 {
        if try await condition() { return }
        polls += 1
        try await Task.sleep(for: .milliseconds(50))
    }
    if try await condition() { return }
    Issue.record("timed out after \(Int(Date().timeIntervalSince(started))) s and \(polls) polls waiting until \(what)")
    throw CancellationError()
}
