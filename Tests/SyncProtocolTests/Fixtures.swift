import SyncProtocol
import SyncWire
import TicketModel

typealias Action = SessionMachine.Action
typealias Moment = SessionMachine.Moment

/// Two sites of one fleet: `hub`, its coordinator, and `branch`, a site.
let hubKey = SiteKey.generate()
let branchKey = SiteKey.generate()
let hub = try! SiteID("hub")
let branch = try! SiteID("branch")
let t0: UInt64 = 1_700_000_000_000

/// The fleet's roster, signed by the hub.
func signedRoster(version: UInt64 = 1, branchKey key: [UInt8] = branchKey.publicKey, branchRemoved: Bool = false,
                  listsBranch: Bool = true) -> SignedRoster {
    var sites = [Roster.Member(site: hub, key: hubKey.publicKey, role: .coordinator)]
    if listsBranch { sites.append(Roster.Member(site: branch, key: key, role: .site, revokedAfter: branchRemoved ? 1 : nil)) }
    return try! SignedRoster.sign(Roster(version: version, coordinator: hub, issued: 1, sites: sites), key: hubKey)
}

func makeHello(_ site: SiteID, roster: UInt64 = 1, restored: UInt64? = nil, time: UInt64 = t0, nonce: UInt8 = 1) -> Hello {
    Hello(site: site, role: site == hub ? .coordinator : .site, publicKey: (site == hub ? hubKey : branchKey).publicKey,
          nonce: [UInt8](repeating: nonce, count: 32), time: time, roster: roster, restored: restored)
}

/// A machine for `site`, its own hello's nonce all 7s.
func makeMachine(_ site: SiteID = branch, mode: SessionMachine.Mode = .live, slots: SessionMachine.Slots? = nil,
                 plainSites: Set<SiteID>? = [], window: Int = 4, pingInterval: UInt64 = 15_000) -> SessionMachine {
    SessionMachine(SessionMachine.Configuration(hello: makeHello(site, roster: 0, nonce: 7), key: site == hub ? hubKey : branchKey,
                                                mode: mode, slots: slots, plainSites: plainSites, window: window,
                                                pingIntervalMillis: pingInterval, readGuardMillis: 22_500))
}

func membership(_ roster: SignedRoster? = signedRoster(), pinned: Bool = true,
                transport: SessionMachine.Transport? = nil) -> SessionMachine.Event {
    .answer(.membership(SessionMachine.Membership(pinnedCoordinator: pinned, roster: roster, transport: transport)))
}

/// The `auth` the peer sends: its proof over the machine's hello.
func peerAuth(_ machine: SessionMachine, from peer: Hello) -> Frame {
    .auth(signature: try! SessionAuth.prove(key: peer.site == hub ? hubKey : branchKey, own: peer, peer: machine.configuration.hello))
}

extension Array where Element == Action {
    /// The frames sent, in order.
    var frames: [Frame] {
        compactMap { if case .send(let frame) = $0 { frame } else { nil } }
    }

    /// The error codes failed with, in order.
    var failures: [WireError.Code] {
        compactMap { if case .fail(let error) = $0 { error.code } else { nil } }
    }

    var failureDetail: String {
        compactMap { if case .fail(let error) = $0 { error.detail } else { nil } }.joined(separator: " | ")
    }
}

/// Drives `machine` through a handshake with `peer` until the session is open.
/// - Returns: the actions of the last step (the vector's answer).
@discardableResult
func open(_ machine: inout SessionMachine, with peer: Hello, at now: UInt64 = t0, restoreEpoch: Int = 0,
          peerVector: VersionVector = VersionVector(), opening: SessionMachine.Opening? = nil) -> [Action] {
    let moment = Moment(now: now, restoreEpoch: restoreEpoch)
    _ = machine.start(roster: 1, restored: nil, at: now)
    _ = machine.receive(.frame(.hello(peer)), at: moment)
    _ = machine.receive(membership(), at: moment)
    var actions = machine.receive(.frame(peerAuth(machine, from: peer)), at: moment)
    actions = machine.receive(membership(), at: moment)
    if actions.last == .ask(.admission(peer.site)) { actions = machine.receive(.answer(.admission(nil)), at: moment) }
    if case .ask(.watchRestore)? = actions.last { actions = machine.receive(.answer(.restoreWatched(false)), at: moment) }
    _ = machine.receive(.answer(.vectorAndHeads(VersionVector(), [:])), at: moment)
    _ = machine.receive(.frame(.vector(peerVector, heads: [:])), at: moment)
    machine.noteWrite(at: now)
    return machine.receive(.answer(.opening(opening ?? SessionMachine.Opening(vector: VersionVector(), keys: [:]))), at: moment)
}
