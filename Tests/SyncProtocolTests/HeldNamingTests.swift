import SyncProtocol
import TestSupport
import SyncWire
import Testing
import TicketModel

/// Where a columnar batch may name held entities (`Protocol/PROTOCOL.md` §2.3.3): only blocks both
/// sides are known to hold in the same version.
@Suite struct HeldNamingTests {
    let now = Moment(now: t0)

    @Test func anOriginIsNamedOnlyUpToAMatchingHeadUntilThePeerAcknowledgesABatch() throws {
        let east = try SiteID("east")
        var machine = makeMachine(branch)
        let peerVector = VersionVector([hub: 4, east: 7])
        // This store holds the peer's head of hub with the same hash; east's head it does not hold
        // (the peer is ahead there), so only the peer can see a fork in east, and says so later.
        open(&machine, with: makeHello(hub), peerVector: peerVector,
             opening: .init(vector: VersionVector([branch: 2, east: 5, hub: 4]), keys: [:], matchedHeads: [hub]))
        #expect(machine.isOpen)
        #expect(machine.peerHolds == VersionVector([hub: 4]))
        // A `synced` may be written by the peer's sending side while its reading side writes its forks:
        // it proves nothing.
        _ = machine.receive(.frame(.synced(peerVector)), at: now)
        #expect(machine.peerHolds == VersionVector([hub: 4]))
        // An ack comes from the peer's reading side, after any fork it found at its open.
        var site = SimSite("branch")
        let own = [site.write(create(ticketID(1), number: 1))]
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        _ = machine.send(.answer(.page(nil, own.map { PageBlock(origin: $0.origin, seq: $0.seq, bytes: $0.bytes) })), at: now)
        _ = machine.send(.answer(.encoded(OutgoingBatch(try ChangeSet.encode(own, batch: 1, keys: [:])))), at: now)
        _ = machine.receive(.frame(.ack(Ack(batch: 1, vector: VersionVector([hub: 4, east: 7, branch: 1]), applied: 1, held: 0, refused: 0))), at: now)
        // The open vector, not the ack's: an ack's vector covers blocks of other sessions too.
        #expect(machine.peerHolds == peerVector)
    }
}
