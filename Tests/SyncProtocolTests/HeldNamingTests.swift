import SyncProtocol
import SyncWire
import Testing
import TicketModel

/// Where a columnar batch may name held entities (`Protocol/PROTOCOL.md` §2.3.3): only blocks both
/// sides are known to hold in the same version.
@Suite struct HeldNamingTests {
    @Test func anOriginIsNamedOnlyUpToAMatchingHeadUntilThePeerHasWrittenPastItsOpen() throws {
        let east = try SiteID("east")
        var machine = makeMachine(branch)
        let peerVector = VersionVector([hub: 4, east: 7])
        // This store holds the peer's head of hub with the same hash; east's head it does not hold
        // (the peer is ahead there), so only the peer can see a fork in east, and says so later.
        open(&machine, with: makeHello(hub), peerVector: peerVector,
             opening: .init(vector: VersionVector([branch: 2, east: 5]), keys: [:], matchedHeads: [hub]))
        #expect(machine.isOpen)
        #expect(machine.peerHolds == VersionVector([hub: 4]))
        // Any fork the peer found in this store's heads comes before its first blocks, ack or synced.
        _ = machine.receive(.frame(.synced(peerVector)), at: Moment(now: t0))
        #expect(machine.peerHolds == peerVector)
    }
}
