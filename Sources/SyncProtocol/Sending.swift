import SyncWire
import TicketModel

extension SessionMachine {
    /// Handles what the sending side learns: a wake-up, or the answer to its last ``Action/ask(_:)``.
    ///
    /// On a wake-up of an open session the sender sends a roster edited since, then what the peer
    /// lacks, oldest first and at most `window` batches unacknowledged, then `synced` once a page comes
    /// back empty. A one-shot session says `bye` when both sides are done; a quiet one pings.
    /// - Returns: the actions to perform, in order; the last is ``Action/idle`` (wait for the next
    ///   wake-up), ``Action/stopSending(bye:completed:)``, or a question.
    package mutating func send(_ event: SendEvent, at moment: Moment) -> [Action] {
        guard !ended else { return [] }
        var out: [Action] = []
        switch event {
        case .wake:
            sending = nil
            if moment.isShuttingDown { return [.stopSending(bye: "node shutting down", completed: false)] }
            if isOpen && syncedSent && peerSynced && openEpoch < moment.restoreEpoch {
                // The coordinator began to watch a restore after this session opened: the peer syncs
                // afresh in a new session, whose `synced` then makes it a witness (§2.2.6).
                return [.stopSending(bye: "a restored site needs a fresh sync from every member", completed: false)]
            }
            guard isOpen else { return [.idle] }
            sending = .rosterVersion
            return [.ask(.rosterVersion)]
        case .answer(let answer):
            guard let step = sending else { return [] }
            sending = nil
            switch (step, answer) {
            case (.rosterVersion, .rosterVersion(let version)):
                guard version > peerRoster, peer != nil else { return fill(room: configuration.window - inFlight, at: moment) }
                sending = .rosterSend
                return [.ask(.membership)]
            case (.rosterSend, .membership(let facts)):
                // A roster edited while the session runs goes to the peer, and ends the session if it
                // removed the peer.
                if let signed = facts.roster { sendRoster(signed, into: &out) }
                if let peer, let roster = facts.roster?.roster, !roster.admits(peer.site, key: peer.publicKey) {
                    fail(WireError(.authFailed, "site \(peer.site) was removed from the roster (version \(roster.version)); ending the session"), into: &out)
                    if ended { return out }
                }
                return out + fill(room: configuration.window - inFlight, at: moment)
            case (.page(let room, let sent, let lastAwaiting), .page(let snapshot, let page)):
                guard !page.isEmpty else {
                    if let snapshot, !sent || snapshot.awaiting != lastAwaiting {
                        out.append(.send(.synced(snapshot.vector, awaiting: snapshot.awaiting)))
                        syncedSent = true
                        awaitingSent = snapshot.awaiting
                    }
                    return out + settle(at: moment)
                }
                sentBatch += 1
                sending = .encoding(room: room)
                return [.ask(.encode(page, batch: sentBatch))]
            case (.encoding(let room), .encoded(let batch)):
                has = has.merging(batch.encoded.through)
                sentThrough = sentThrough.merging(batch.encoded.through)
                inFlight += 1
                tally.sentBatches += 1
                tally.sentBlocks += batch.encoded.blockCount
                tally.changeSetBytesOut += batch.encoded.size
                return [.sendBatch(batch), .reportProgress] + fill(room: room - 1, at: moment)
            case (.encoding, .encodeFailed(let error)):
                end(SessionEnded(error: error, fromPeer: false), into: &out)
                return out
            default:
                end(SessionEnded(error: WireError(.internal, "the sender asked the store one thing and was answered another"), fromPeer: false), into: &out)
                return out
            }
        }
    }

    /// Asks for the next page while the window has room; then settles.
    private mutating func fill(room: Int, at moment: Moment) -> [Action] {
        guard room > 0 else { return settle(at: moment) }
        // To a restored site, the coordinator names the members it has not heard from since the
        // restore, and says `synced` again whenever that list shrinks while the session runs (§2.2.6).
        // The list is read before the vector, and the vector before the page: an empty page then means
        // every block the vector counts was sent.
        let restoredPeer = configuration.hello.role == .coordinator ? peer.flatMap { $0.restored != nil ? $0.site : nil } : nil
        let due = !syncedSent || (restoredPeer != nil && awaitingSent?.isEmpty == false)
        sending = .page(room: room, sent: syncedSent, lastAwaiting: awaitingSent)
        return [.ask(.page(after: has, snapshot: due, awaitingFor: restoredPeer))]
    }

    /// After sending what there was: `bye` once a one-shot exchange is done, a ping after a quiet spell.
    private mutating func settle(at moment: Moment) -> [Action] {
        let done = isDone && forkSent.isSubset(of: forkReceived)
        if configuration.mode == .oneShot && done { return [.stopSending(bye: "sync complete", completed: true)] }
        let quiet = moment.now >= lastSentMillis ? moment.now - lastSentMillis : 0
        if quiet >= configuration.pingIntervalMillis { return ping(at: moment.now) + [.idle] }
        return [.idle]
    }

    // MARK: Pings

    /// A ping with a fresh id; the 16 newest stay open for their pongs.
    mutating func ping(at now: UInt64) -> [Action] {
        let id = UInt64(pings.count + 1) + (pings.keys.max() ?? 0)
        pings[id] = now
        if pings.count > 16, let oldest = pings.keys.min() { pings.removeValue(forKey: oldest) }
        return [.send(.ping(id: id, time: now))]
    }

    /// A pong to one of this side's pings refines the clock skew; any other is ignored.
    mutating func notePong(id: UInt64, peerTime: UInt64, at now: UInt64) {
        guard let sent = pings.removeValue(forKey: id) else { return }
        tally.skewMillis = Self.skew(peerTime: peerTime, sent: sent, received: now)
    }

    /// The peer's clock minus ours: `peerTime` is its clock when it wrote a frame that we read at
    /// `received`, in a round trip that began when we wrote at `sent`; the frame is taken to be
    /// written at the midpoint. A pong answers our ping; the peer's hello is written, like ours, as the
    /// connection opens, so the two hellos make the first round trip (§2.2.1: `time` lets the peer
    /// show a clock offset) and later pongs refine it.
    package static func skew(peerTime: UInt64, sent: UInt64, received: UInt64) -> Int64 {
        let midpoint = Int64(sent) + (Int64(received) - Int64(sent)) / 2
        return Int64(peerTime) - midpoint
    }
}

extension SessionMachine {
    /// What is saved about the peer: its vector, clock skew and the blocks exchanged since last saved.
    package struct PeerSnapshot: Sendable, Equatable {
        package var site: SiteID
        package var role: SiteRole
        package var vector: VersionVector
        package var skewMillis: Int64?
        package var blocksIn: Int
        package var blocksOut: Int
    }

    /// What to save about the peer now, or `nil` if nothing may be: before the session opened (unless
    /// it ended with `error`), or, on an accepted connection, before the peer proved its roster key (a
    /// stranger must not rewrite a member's address, clock skew or last error). A dialed peer's outcome
    /// is shown either way, without its unproven clock. Counts the blocks as saved.
    package mutating func peerRecord(error: String?) -> PeerSnapshot? {
        let delta = (tally.receivedBlocks - recordedIn, tally.sentBlocks - recordedOut)
        (recordedIn, recordedOut) = (tally.receivedBlocks, tally.sentBlocks)
        isDirty = false
        guard let peer, isOpen || error != nil, isAuthenticated || !configuration.isAccepted else { return nil }
        return PeerSnapshot(site: peer.site, role: peer.role, vector: peerVector, skewMillis: isAuthenticated ? tally.skewMillis : nil,
                            blocksIn: delta.0, blocksOut: delta.1)
    }

    /// Whether ``conclude(_:completed:copiedRefusal:)`` needs to know why this store is a copy.
    package func needsCopiedRefusal(_ ending: SessionEnded?) -> Bool {
        configuration.mode == .oneShot && ending == nil && diverged.isEmpty && excluded == [configuration.hello.site]
    }

    /// How the session ended, once it has: a one-shot sync is complete only if nothing was left out
    /// and the peer applied everything it was sent (blocks it holds back, stamped too far ahead say,
    /// or refuses would otherwise pass unnoticed).
    /// - Parameters:
    ///   - ending: why the session ended early, if it did.
    ///   - completed: the sides finished their exchange.
    ///   - copiedRefusal: why this store may not send its own site's blocks, when
    ///     ``needsCopiedRefusal(_:)`` said it is needed.
    package func conclude(_ ending: SessionEnded?, completed: Bool, copiedRefusal: String?) -> (ending: SessionEnded?, completed: Bool) {
        var (ending, isComplete) = (ending, completed)
        let own = configuration.hello.site
        if configuration.mode == .oneShot && ending == nil && !excluded.isEmpty {
            isComplete = false
            if !diverged.isEmpty {
                let list = diverged.map { "\($0.origin) at seq \($0.seq)" }.joined(separator: ", ")
                ending = SessionEnded(error: WireError(.diverged, "the peer holds other blocks of \(list) than this store: two histories of those sites, which were not exchanged; `tierline status` lists them. An operator removes the site that was copied (`tierline roster remove`) and its stores rejoin under new site ids"), fromPeer: false)
            } else if excluded == [own], let copiedRefusal {
                ending = SessionEnded(error: WireError(.diverged, "nothing of \(own) was sent: \(copiedRefusal)"), fromPeer: false)
            } else {
                let list = excluded.sorted().map(\.rawValue).joined(separator: ", ")
                ending = SessionEnded(error: WireError(.diverged, "the peer's newest blocks of \(list) are not the ones this store holds at those seqs, and it proved no second history: those sites were not exchanged; sync again, and if it persists compare `tierline status` on both sides"), fromPeer: false)
            }
        }
        let unapplied = peerVector.lacking(from: sentThrough)
        if configuration.mode == .oneShot && completed && unapplied > 0 && ending == nil {
            isComplete = false
            ending = SessionEnded(error: WireError(.blockRefused, "the peer did not apply \(unapplied) of the blocks sent to it (held back or refused); `tierline status` on the node says why, often a clock more than 5 minutes ahead"), fromPeer: true)
        }
        return (ending, isComplete)
    }
}
