import Logging
import SyncWire
import TicketModel

/// The rules of one sync session (`Protocol/PROTOCOL.md` §2), without its I/O: frames and answers in,
/// actions out.
///
/// The machine does no I/O, reads no clock and takes no lock. What it needs from outside comes in an
/// ``Event`` with a ``Moment`` (the node's clock, its restore epoch, whether it is shutting down);
/// what it decides comes out as ``Action``s, which the caller performs in order. When a rule needs
/// the store, the machine asks with ``Action/ask(_:)`` and waits: the caller answers with
/// ``Event/answer(_:)`` on the same side before it sends that side anything else.
///
/// A session has two sides that run at once, each with its own pending question: the reading side
/// (``receive(_:at:)``: frames, and the batches on their way into the store) and the sending side
/// (``send(_:at:)``: what the peer lacks, `synced`, pings, `bye`). `SyncNode`'s `SyncSession` owns
/// one machine behind a lock and drives both.
///
/// ```swift
/// var machine = SessionMachine(configuration)
/// var actions = [Action.send(.hello(machine.start(roster: 3, restored: nil, at: now)))]
/// actions = machine.receive(.frame(.hello(peerHello)), at: Moment(now: now))
/// // [.ask(.membership)]: the caller reads the roster and answers
/// actions = machine.receive(.answer(.membership(facts)), at: Moment(now: now))
/// // [.send(.auth(signature: …))] below protocol 4 or without TLS on the sites' keys;
/// // from protocol 4 on over that TLS, [.ask(.vectorAndHeads)] (no auth, §2.5)
/// ```
///
/// ## Topics
/// - ``receive(_:at:)``
/// - ``send(_:at:)``
/// - ``conclude(_:completed:copiedRefusal:)``
package struct SessionMachine: Sendable {
    package enum Mode: Sendable, Equatable { case live, oneShot }

    /// Where the handshake is (§2.2): frames not allowed in a phase are refused.
    package enum Phase: Sendable, Equatable { case awaitHello, awaitRoster, awaitAuth, awaitVector, open }

    /// How the connection is protected, and the key the peer proved in TLS.
    package struct Transport: Sendable, Equatable {
        package enum Kind: Sendable, Equatable { case siteKeys, certificates, plain }
        package var kind: Kind
        package var peerKey: [UInt8]?
        package init(kind: Kind, peerKey: [UInt8]?) {
            (self.kind, self.peerKey) = (kind, peerKey)
        }
    }

    /// The member slots of a node that accepted the connection, for its refusal messages.
    package struct Slots: Sendable, Equatable {
        package var members: Int
        package var perSite: Int
        package init(members: Int, perSite: Int) {
            (self.members, self.perSite) = (members, perSite)
        }
    }

    package struct Configuration: Sendable {
        /// This side's hello: its site, role, key, nonce and protocol range. ``start(roster:restored:at:)``
        /// fills in the roster version, the restore and the time.
        package var hello: Hello
        /// Signs this side's `auth`.
        package var key: SiteKey
        package var mode: Mode
        /// Set for a connection this node accepted; `nil` for one it dialed.
        package var slots: Slots?
        /// The sites a plain (protocol-1) session may be with; `nil`: any.
        package var plainSites: Set<SiteID>?
        /// Batches in flight at most (§2.9).
        package var window: Int
        package var pingIntervalMillis: UInt64
        /// The silence after which the read guard fires (half the idle timeout): after the guard's ping,
        /// only a silence this long ends the session (§2.4).
        package var readGuardMillis: UInt64

        package init(hello: Hello, key: SiteKey, mode: Mode, slots: Slots? = nil, plainSites: Set<SiteID>? = [],
                     window: Int = WireLimits.standard.window, pingIntervalMillis: UInt64 = 15_000, readGuardMillis: UInt64) {
            (self.hello, self.key, self.mode, self.slots) = (hello, key, mode, slots)
            (self.plainSites, self.window, self.pingIntervalMillis, self.readGuardMillis) = (plainSites, window, pingIntervalMillis, readGuardMillis)
        }

        var isAccepted: Bool { slots != nil }
    }

    /// What the node knows as an event is handled.
    package struct Moment: Sendable, Equatable {
        /// The wall clock, ms since 1970.
        package var now: UInt64
        /// The coordinator's count of restores it began to watch: a session opened before the latest
        /// proves nothing about it (§2.2.6).
        package var restoreEpoch: Int
        package var isShuttingDown: Bool
        /// A clock that does not jump (ms since some start): what the read guard's silences are
        /// measured by, whatever the wall clock does. The wall clock's reading when not given.
        package var uptimeMillis: UInt64
        package init(now: UInt64, restoreEpoch: Int = 0, isShuttingDown: Bool = false, uptimeMillis: UInt64? = nil) {
            (self.now, self.restoreEpoch, self.isShuttingDown) = (now, restoreEpoch, isShuttingDown)
            self.uptimeMillis = uptimeMillis ?? now
        }
    }

    /// Counts so far, for the session's summary and progress.
    package struct Tally: Sendable, Equatable {
        /// Blocks and batches sent; blocks received, and what the store made of them.
        package var sentBlocks = 0, sentBatches = 0
        package var receivedBlocks = 0, applied = 0, held = 0, duplicates = 0, refused = 0
        /// Inflated change-set bytes, both ways.
        package var changeSetBytesIn = 0, changeSetBytesOut = 0
        package var skewMillis: Int64?
        /// Blocks the peer lacked and this side held when the session opened, and the other way round.
        package var toSend = 0, toReceive = 0
    }

    package let configuration: Configuration
    package internal(set) var phase = Phase.awaitHello
    /// The protocol version both hellos agree on (§2.5), once the peer's hello is accepted.
    package internal(set) var negotiatedProtocol: Int?
    /// How this session's `blocks` frames lay out their change sets, both ways: compact in protocols 3
    /// and 4, columnar from protocol 5.
    package var changeSetFormat: ChangeSet.Format { ChangeSet.Format(protocolVersion: negotiatedProtocol ?? 1) }
    /// Where a columnar batch may name held entities (§2.3.3): blocks the peer holds in the same
    /// version as this store. From the peer's vector, an origin whose head this store holds with the
    /// same hash, and every origin once the peer has acknowledged a batch (its reading side wrote any
    /// `fork` it found in this store's heads before it); and every block the peer sent in a batch
    /// this store took whole. Never an origin left out of the session.
    package var peerHolds: VersionVector {
        var holds = receivedThrough
        for (site, seq) in peerOpenVector.entries where peerPastOpen || matchedHeads.contains(site) {
            holds[site] = max(holds[site], seq)
        }
        for site in excluded { holds[site] = 0 }
        return holds
    }
    /// The peer's hello, with the role the roster gives it once checked.
    package internal(set) var peer: Hello?
    /// TLS on the sites' keys proved, on this connection, the key the peer's hello names.
    package internal(set) var tlsProvedHelloKey = false
    /// The handshake finished: both sides proved their keys and exchanged vectors.
    package var isOpen: Bool { phase == .open }
    /// The peer proved the key the roster lists for its site (§2.6). Until then nothing it says is recorded.
    package internal(set) var isAuthenticated = false
    package internal(set) var tally = Tally()
    /// The peer's vector changed since it was last recorded.
    package internal(set) var isDirty = false
    /// The site keys this store held when it last read them: what received batches are verified with.
    package internal(set) var keys: [SiteID: [UInt8]] = [:]
    /// Set when the handshake timer ended the session.
    package internal(set) var timedOut: WireError?
    package internal(set) var writeFailed = false
    /// The peer site this session counts as present, once open.
    package internal(set) var present: SiteID?

    /// Announced, acknowledged or received: what the peer certainly holds.
    var peerVector = VersionVector()
    /// The peer's vector as it opened the session, and the origins whose heads in it this store
    /// holds with the same hash (``peerHolds``).
    var peerOpenVector = VersionVector()
    var matchedHeads: Set<SiteID> = []
    /// Whether the peer has acknowledged a batch: it has read this side's vector, and sent every
    /// `fork` it found in it (both by its reading side, in order).
    var peerPastOpen = false
    /// The highest seq per origin of the blocks the peer sent in this session.
    var receivedThrough = VersionVector()
    /// `peerVector` plus every block sent in this session: never send these again.
    var has = VersionVector()
    /// The highest seq per origin sent in this session.
    var sentThrough = VersionVector()
    var inFlight = 0
    /// The last batch the peer acknowledged, and the number of the last one sent.
    var acked: UInt64 = 0
    var sentBatch: UInt64 = 0
    /// The batch number the peer's next `blocks` frame must carry.
    var nextBatch: UInt64 = 1
    /// Batches accepted for the store since the last ``Event/drained``: other frames wait for them.
    var batchesPending = 0
    var peerSynced = false
    var syncedSent = false
    /// The `awaiting` list of the last `synced` sent (coordinator to a restored site only).
    var awaitingSent: [SiteID]?
    /// The restore epoch when this session opened.
    var openEpoch = 0
    var lastSentMillis: UInt64 = 0
    var pings: [UInt64: UInt64] = [:]
    /// When the read guard fired and a ping went out (``Moment/uptimeMillis``); anything heard clears it.
    var probedAt: UInt64?
    var recordedIn = 0
    var recordedOut = 0
    /// The roster version this side announced, and the newest the peer is known to hold.
    var ownRoster: UInt64 = 0
    var peerRoster: UInt64 = 0
    /// When this side wrote its hello (own clock), to estimate the peer's clock from its hello.
    var helloSentMillis: UInt64 = 0
    /// Origins whose history differs between the two ends, proven by a signed block (§2.2.3).
    var diverged: [HistoryFork] = []
    /// Origins left out of this session: their heads differed, or this store is a copy of its own site.
    var excluded: Set<SiteID> = []
    /// Origins each side sent its `fork` evidence for.
    var forkSent: Set<SiteID> = []
    var forkReceived: Set<SiteID> = []
    /// A fatal error was decided: nothing more is done.
    var ended = false
    /// A frame that waits until the batches before it are applied.
    var deferred: Event?
    /// What each side asked and waits for.
    var reading: ReadStep?
    var sending: SendStep?

    /// A seq no origin reaches: what a left-out origin counts as in `has`.
    static let excludedSeq = UInt64(Int64.max)

    package init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Stamps this side's hello as it is written.
    /// - Parameters:
    ///   - roster: the version of the roster this store holds, 0 for none.
    ///   - restored: the restore id while this store's restore fence is up.
    /// - Returns: the hello to send first.
    package mutating func start(roster: UInt64, restored: UInt64?, at now: UInt64) -> Hello {
        var hello = configuration.hello
        (hello.roster, hello.restored, hello.time) = (roster, restored, now)
        ownRoster = roster
        helloSentMillis = now
        return hello
    }

    /// Notes that a line went out at `now`: the sender pings after `pingIntervalMillis` of quiet.
    package mutating func noteWrite(at now: UInt64) { lastSentMillis = now }

    /// Notes that a write failed because the peer closed; reading goes on, to report its reason.
    package mutating func noteWriteFailed() { writeFailed = true }

    /// The handshake timer fired: unless the session is open, it ends with `error`.
    /// - Returns: the frame to write before closing, or `nil` if the session is open.
    package mutating func expireHandshake(_ error: WireError) -> Frame? {
        guard !isOpen else { return nil }
        timedOut = error
        return .error(error)
    }

    /// Whether the session is done: both sides said `synced`, every batch was acknowledged, and the
    /// peer answered every `fork` evidence this side sent.
    var isDone: Bool { syncedSent && peerSynced && inFlight == 0 }
}

/// One origin with two histories: the block this store holds at `seq`, and the peer's.
package struct HistoryFork: Sendable, Equatable {
    package var origin: SiteID
    package var seq: UInt64
    package var ourHash: [UInt8]
    package var theirHash: [UInt8]
    package init(origin: SiteID, seq: UInt64, ourHash: [UInt8], theirHash: [UInt8]) {
        (self.origin, self.seq, self.ourHash, self.theirHash) = (origin, seq, ourHash, theirHash)
    }
}

/// Why a session ended early.
package struct SessionEnded: Error, Equatable, Sendable {
    package var error: WireError
    /// The peer sent the error (this side did not).
    package var fromPeer: Bool
    package init(error: WireError, fromPeer: Bool) {
        (self.error, self.fromPeer) = (error, fromPeer)
    }
}

/// A `blocks` line ready to write, compared by its batch number and bytes.
package struct OutgoingBatch: Sendable, Equatable {
    package var encoded: EncodedBatch
    package init(_ encoded: EncodedBatch) { self.encoded = encoded }
    package static func == (a: Self, b: Self) -> Bool { a.encoded.batch == b.encoded.batch && a.encoded.line == b.encoded.line }
}

/// A block as the store's log holds it, for the sender's pages.
package struct PageBlock: Sendable, Equatable {
    package var origin: SiteID
    package var seq: UInt64
    package var bytes: [UInt8]
    package init(origin: SiteID, seq: UInt64, bytes: [UInt8]) {
        (self.origin, self.seq, self.bytes) = (origin, seq, bytes)
    }
}

extension SessionMachine {
    /// What happened: a frame from the peer, a batch's progress into the store, an answer.
    package enum Event: Sendable, Equatable {
        /// Any frame but `blocks`.
        case frame(Frame)
        /// A `blocks` frame with this batch number; its payload is decoded only if the machine says so.
        case batchArrived(UInt64)
        /// A line the decoder refused, or the read guard (`timeout`) after a silence.
        case invalid(WireError)
        /// The peer closed the connection.
        case peerClosed
        /// Every batch asked for with ``Action/drainBatches`` is handled.
        case drained
        case answer(Answer)
        /// A batch decoded and checked, about to go into the store.
        case batchReady(BlockBatch)
        case batchApplied(BlockBatch, Applied)
        /// A batch's payload failed to decode.
        case batchUnreadable(WireError)
        /// The store failed to apply a batch; the detail says why.
        case batchNotStored(String)
    }

    /// What the sending side is told.
    package enum SendEvent: Sendable, Equatable {
        /// Something may be due: a new block, an ack, a tick.
        case wake
        case answer(Answer)
    }

    /// What the store (or the node) is asked.
    package enum Request: Sendable, Equatable {
        /// The roster this store holds, whether it pinned its coordinator's key, and the transport.
        case membership
        /// Adopt the roster the peer sent, if it is newer and the coordinator's.
        case adoptRoster(document: String, signature: [UInt8])
        /// Whether the node has a member slot for this site.
        case admission(SiteID)
        /// The coordinator begins to watch this site's restore, if it is one.
        case watchRestore(SiteID, restore: UInt64?)
        case vectorAndHeads
        /// What the session opens with: this store's blocks at heads that differ (when heads were
        /// sent), whether it is a copy, its vector and its site keys.
        case opening(compareHeads: [SiteID: Head]?)
        /// Record the peer's fork evidence.
        case recordFork(Block, peer: SiteID, now: UInt64)
        case storedBlock(origin: SiteID, seq: UInt64)
        /// The peer is a witness for the restores this store watches.
        case witness(SiteID)
        case confirmOwnSequence(VersionVector, peerRole: SiteRole, awaiting: [SiteID]?)
        case rosterVersion
        /// The next page of blocks after `has`; with `snapshot`, first the `synced` snapshot (the
        /// `awaiting` list for `awaitingFor`, then the vector), read before the page.
        case page(after: VersionVector, snapshot: Bool, awaitingFor: SiteID?)
        case encode([PageBlock], batch: UInt64)
    }

    package struct Membership: Sendable, Equatable {
        package var pinnedCoordinator: Bool
        package var roster: SignedRoster?
        package var transport: Transport?
        package init(pinnedCoordinator: Bool = true, roster: SignedRoster?, transport: Transport? = nil) {
            (self.pinnedCoordinator, self.roster, self.transport) = (pinnedCoordinator, roster, transport)
        }
    }

    package struct Opening: Sendable, Equatable {
        package var evidence: [Block]
        package var isCopy: Bool
        package var vector: VersionVector
        package var keys: [SiteID: [UInt8]]
        /// The origins whose head in the peer's vector this store holds with the same hash.
        package var matchedHeads: Set<SiteID>
        package init(evidence: [Block] = [], isCopy: Bool = false, vector: VersionVector, keys: [SiteID: [UInt8]],
                     matchedHeads: Set<SiteID> = []) {
            (self.evidence, self.isCopy, self.vector, self.keys, self.matchedHeads) = (evidence, isCopy, vector, keys, matchedHeads)
        }
    }

    package enum AdmissionRefusal: Sendable, Equatable { case full, siteFull }

    package enum ForkFinding: Sendable, Equatable {
        case recorded(HistoryFork)
        /// This store holds no block at that seq, or the same one.
        case nothingHeld
        /// Not signed by the roster's key for its origin.
        case notSigned
    }

    /// What the store made of a batch.
    package struct Applied: Sendable, Equatable {
        package var applied: Int
        package var held: Int
        package var duplicates: Int
        /// Each refused block as "origin seq N: code".
        package var refused: [String]
        package var vector: VersionVector
        package var keys: [SiteID: [UInt8]]
        package init(applied: Int, held: Int = 0, duplicates: Int = 0, refused: [String] = [], vector: VersionVector, keys: [SiteID: [UInt8]]) {
            (self.applied, self.held, self.duplicates, self.refused, self.vector, self.keys) = (applied, held, duplicates, refused, vector, keys)
        }
    }

    /// The `synced` snapshot: the members a restored peer still waits for, and the vector.
    package struct SyncedSnapshot: Sendable, Equatable {
        package var awaiting: [SiteID]?
        package var vector: VersionVector
        package init(awaiting: [SiteID]?, vector: VersionVector) {
            (self.awaiting, self.vector) = (awaiting, vector)
        }
    }

    package enum Answer: Sendable, Equatable {
        case membership(Membership)
        case rosterAdopted(adopted: Bool, version: UInt64, roster: SignedRoster?)
        /// The store refused the peer's roster; the detail says why.
        case rosterRefused(String)
        case admission(AdmissionRefusal?)
        case restoreWatched(Bool)
        case vectorAndHeads(VersionVector, [SiteID: Head])
        case opening(Opening)
        case fork(ForkFinding)
        case storedBlock(Block?)
        case witnessed(Bool)
        case ownSequenceConfirmed(Bool)
        case rosterVersion(UInt64)
        case page(SyncedSnapshot?, [PageBlock])
        case encoded(OutgoingBatch)
        case encodeFailed(WireError)
    }

    /// What the caller does, in order.
    package enum Action: Sendable, Equatable {
        case send(Frame)
        case sendBatch(OutgoingBatch)
        /// Send an `error` frame (a failed write is ignored); a fatal one ends the session with it.
        case fail(WireError)
        /// End the session now, sending nothing.
        case end(SessionEnded)
        case ask(Request)
        /// Decode and check the `blocks` frame just received, and queue it for the store.
        case prepareBatch
        /// Apply the batch just made ready.
        case applyBatch
        /// Wait until every queued batch is handled, then send ``Event/drained``.
        case drainBatches
        /// The peer authenticated: its lines may grow to the full limit.
        case liftPrelude
        case enterPresence(SiteID)
        case advanceRestoreEpoch
        /// Wake every session's sender (new blocks, a new roster, a new witness).
        case signalAll
        /// Wake this session's sender.
        case wakeSender
        /// Save what is known of the peer (``SessionMachine/peerRecord(error:)``).
        case recordPeer
        case reportProgress
        case log(Logger.Level, String, [String: String] = [:])
        /// The reading side is done; `completed`: both sides caught up.
        case finishReading(completed: Bool)
        /// Write `bye` and stop sending; `completed` (a finished one-shot sync) waits for the write,
        /// otherwise it is a best effort.
        case stopSending(bye: String, completed: Bool)
        /// Nothing more to send until the next ``SendEvent/wake``.
        case idle
    }

    enum ReadStep: Sendable, Equatable {
        case hello(Hello)
        case handshakeRoster, liveRoster, rosterMembership
        case authMembership, admission, restoreWatch, vectorAndHeads
        case opening(VersionVector)
        case fork(Block), forkStored(HistoryFork)
        case witness(VersionVector, awaiting: [SiteID]?, role: SiteRole), confirmSequence(VersionVector)
    }

    enum SendStep: Sendable, Equatable {
        case rosterVersion, rosterSend
        case page(room: Int, sent: Bool, lastAwaiting: [SiteID]?)
        case encoding(room: Int)
    }
}
