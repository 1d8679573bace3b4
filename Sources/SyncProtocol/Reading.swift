import Logging
import SyncWire
import TicketModel

extension SessionMachine {
    /// Handles what the reading side learns: a frame, a batch on its way into the store, or the answer
    /// to its last ``Action/ask(_:)``.
    ///
    /// Frames are handled in the order they arrive. Batches are decoded and applied in a pipeline, so a
    /// frame that comes while batches are pending is held: the machine answers ``Action/drainBatches``
    /// and handles the frame on ``Event/drained`` (a `ping` after three batches is answered after their
    /// three acks).
    /// - Returns: the actions to perform, in order. After a fatal ``Action/fail(_:)`` or an
    ///   ``Action/end(_:)`` there are none.
    package mutating func receive(_ event: Event, at moment: Moment) -> [Action] {
        guard !ended else { return [] }
        var out: [Action] = []
        switch event {
        case .invalid(let error) where error.code == .timeout && !silentSinceProbe(at: moment):
            // The read guard fires after half the idle timeout of silence. The first time, the peer
            // gets a ping to answer; only a silence of about another half after that ping ends the
            // session (``silentSinceProbe(at:)``). So a session never ends idle without a ping,
            // however late the scheduler runs the sender's keep-alive pings. A guard event that comes
            // sooner was queued while this side was not reading (a session that started late, a
            // starved scheduler) and says nothing of the peer: it is dropped, and the guard fires
            // again if the silence goes on.
            if probedAt != nil { return [] }
            probedAt = moment.uptimeMillis
            return ping(at: moment.now)
        case .batchArrived(let number):
            probedAt = nil
            // The payload is decoded only after the handshake, and only in order.
            guard phase == .open, number == nextBatch else { return held(event) ?? refuseBatch(number) }
            nextBatch += 1
            batchesPending += 1
            return [.prepareBatch]
        case .frame, .invalid, .peerClosed:
            if case .peerClosed = event {} else { probedAt = nil }
            if let wait = held(event) { return wait }
            handle(event, at: moment, into: &out)
        case .drained:
            batchesPending = 0
            guard let event = deferred else { return [] }
            deferred = nil
            if case .batchArrived(let number) = event { return refuseBatch(number) }
            handle(event, at: moment, into: &out)
        case .answer(let answer):
            guard let step = reading else { return [] }
            reading = nil
            resume(step, with: answer, at: moment, into: &out)
        case .batchReady(let batch):
            // The peer holds what it sent, applied here or not. Noted before the store applies the
            // blocks: noted after, the sender could find them in the store in between and send them
            // back (§2.7).
            has = has.merging(Self.through(batch.blocks))
            return [.applyBatch]
        case .batchApplied(let batch, let result):
            applied(batch, result, into: &out)
        case .batchUnreadable(let error):
            fail(error, into: &out)
        case .batchNotStored(let detail):
            fail(WireError(.internal, "this node could not store the batch (\(detail)); retry later"), into: &out)
        }
        return out
    }

    /// Whether the guard's ping went out about ``Configuration/readGuardMillis`` ago, by the clock
    /// that does not jump, with nothing heard since.
    ///
    /// "About": nine tenths of it. The guard's next event is due a whole period after its last one,
    /// which this side handled a moment later, so the two are a period apart less that moment; guard
    /// events queued while this side did not read come a moment apart, not most of a period.
    private func silentSinceProbe(at moment: Moment) -> Bool {
        guard let probedAt else { return false }
        return moment.uptimeMillis < probedAt || moment.uptimeMillis - probedAt >= configuration.readGuardMillis / 10 * 9
    }

    /// Holds `event` until the batches accepted since the last drain are applied and acknowledged, if
    /// there are any: counted until the drain, not until each batch's result, since its ack is still
    /// being written when the result comes in.
    private mutating func held(_ event: Event) -> [Action]? {
        guard batchesPending > 0 else { return nil }
        deferred = event
        return [.drainBatches]
    }

    private mutating func refuseBatch(_ number: UInt64) -> [Action] {
        var out: [Action] = []
        fail(phase != .open
             ? WireError(.unexpectedFrame, "a blocks frame is not allowed \(Self.describe(phase))")
             : WireError(.badBatch, "batch \(number) arrived where batch \(nextBatch) was due"), into: &out)
        return out
    }

    private mutating func handle(_ event: Event, at moment: Moment, into out: inout [Action]) {
        switch event {
        case .invalid(let error): fail(error, into: &out)
        case .peerClosed: peerClosed(into: &out)
        case .frame(let frame): handle(frame, at: moment, into: &out)
        default: break
        }
    }

    // MARK: Frames

    private mutating func handle(_ frame: Frame, at moment: Moment, into out: inout [Action]) {
        switch (phase, frame) {
        case (_, .ping(let id, _)):
            out.append(.send(.pong(id: id, time: moment.now)))
        case (_, .pong(let id, let time)):
            notePong(id: id, peerTime: time, at: moment.now)
        case (_, .error(let code, let message, let fatal)):
            // A stranger's words are not logged (a log line per error frame would let anyone flood the
            // journal, or forge lines in it); a member's are, made printable.
            if isAuthenticated || !configuration.isAccepted {
                out.append(.log(.warning, "peer reported \(Self.printable(String(code.prefix(64)))): \(Self.printable(message))"))
            }
            if fatal { end(SessionEnded(error: WireError(reported: code, message), fromPeer: true), into: &out) }
        case (_, .bye(let reason)):
            // As for error frames: a stranger's words are not logged.
            if isAuthenticated || !configuration.isAccepted { out.append(.log(.debug, "peer said bye: \(Self.printable(reason ?? ""))")) }
            out.append(.finishReading(completed: isDone))
        case (.awaitHello, .hello(let hello)):
            accept(hello, into: &out)
        case (.awaitRoster, .roster(let document, let signature)):
            reading = .handshakeRoster
            out.append(.ask(.adoptRoster(document: document, signature: signature)))
        case (.awaitAuth, .roster(let document, let signature)), (.awaitVector, .roster(let document, let signature)),
             (.open, .roster(let document, let signature)):
            // A roster edited while the session runs.
            reading = .liveRoster
            out.append(.ask(.adoptRoster(document: document, signature: signature)))
        case (_, .auth) where keyProvedByTLS:
            fail(WireError(.unexpectedFrame, "an auth frame is not part of a session of protocol 4 or later over TLS on the sites' keys: the TLS handshake proved the key (§2.5)"), into: &out)
        case (.awaitAuth, .auth(let signature)):
            guard let peer, SessionAuth.verify(signature: signature, own: configuration.hello, peer: peer) else {
                fail(WireError(.authFailed, "the peer's auth signature does not verify under the key in its hello"), into: &out)
                return
            }
            reading = .authMembership
            out.append(.ask(.membership))
        case (.awaitVector, .vector(let vector, let heads)):
            // Equal counts may hide different blocks: the heads are compared before anything is sent (§2.2.3).
            reading = .opening(vector)
            out.append(.ask(.opening(compareHeads: heads.isEmpty ? nil : heads)))
        case (.open, .fork(let block)):
            guard let site = peer?.site else { return }
            forkReceived.insert(block.origin)
            reading = .fork(block)
            out.append(.ask(.recordFork(block, peer: site, now: moment.now)))
        case (.open, .ack(let ack)):
            let due = acked + 1
            guard ack.batch == due, ack.batch <= UInt64(tally.sentBatches) else {
                fail(WireError(.unexpectedFrame, "ack of batch \(ack.batch) where batch \(due) was the oldest unacknowledged"), into: &out)
                return
            }
            acked = ack.batch
            peerPastOpen = true
            inFlight = max(0, inFlight - 1)
            peerVector = peerVector.merging(ack.vector)
            has = has.merging(ack.vector)
            isDirty = true
            out.append(.wakeSender)
        case (.open, .synced(let vector, let awaiting)):
            synced(vector, awaiting: awaiting, at: moment, into: &out)
        default:
            fail(WireError(.unexpectedFrame, "a \(frame.type) frame is not allowed \(Self.describe(phase))"), into: &out)
        }
    }

    /// Version, schema and identity checks on the peer's hello; then the checks that need the roster.
    private mutating func accept(_ hello: Hello, into out: inout [Action]) {
        let own = configuration.hello
        let negotiated = min(hello.protocolVersion, own.protocolVersion)
        if negotiated < max(hello.minProtocol, own.minProtocol) {
            fail(WireError(.unsupportedProtocol, "the peer speaks protocol \(hello.minProtocol)…\(hello.protocolVersion); this node speaks \(own.minProtocol)…\(own.protocolVersion); upgrade the older node"), into: &out)
            if ended { return }
        }
        if hello.schema > own.schema {
            fail(WireError(.unsupportedSchema, "the peer writes block schema \(hello.schema); this node reads up to \(own.schema); upgrade this node"), into: &out)
            if ended { return }
        }
        if hello.site == own.site {
            fail(WireError(.duplicateSite, "the peer claims this node's own site id \(hello.site); each store needs its own site (was a store copied?)"), into: &out)
            if ended { return }
        }
        negotiatedProtocol = negotiated
        reading = .hello(hello)
        out.append(.ask(.membership))
    }

    private mutating func helloChecked(_ hello: Hello, _ facts: Membership, at moment: Moment, into out: inout [Action]) {
        let own = configuration.hello
        // With TLS on the sites' keys, the hello must name the key the peer proved on this very
        // connection: a hello (or a proof) relayed from another connection names another key.
        if let transport = facts.transport, transport.kind == .siteKeys, transport.peerKey != hello.publicKey {
            fail(WireError(.authFailed, "the key in the peer's hello is not the key its TLS certificate proved on this connection; refusing the session. Either the handshake was relayed from elsewhere, or the peer uses certificates of an organisation's CA (\"tls\" in node.json) while this node uses the sites' own keys: configure both ends of the link alike"), into: &out)
            if ended { return }
        }
        if !facts.pinnedCoordinator {
            fail(WireError(.authFailed, "\(own.site) has not pinned its coordinator's key, so it can judge no roster and syncs with nobody; its operator runs `tierline roster pin KEY` with the coordinator's public key"), into: &out)
            if ended { return }
        }
        peer = hello
        // Noted here, after the binding check above, and checked again rather than assumed from it.
        tlsProvedHelloKey = facts.transport.map { $0.kind == .siteKeys && $0.peerKey == hello.publicKey } ?? false
        peerRoster = hello.roster
        tally.skewMillis = Self.skew(peerTime: hello.time, sent: helloSentMillis, received: moment.now)
        // The side with the newer roster sends it before its proof, so the other side can judge this
        // session by it (§2.6). A proof goes only to a peer the roster admits with the key of its
        // hello: after the newer roster the peer announced, if it did.
        if hello.roster > ownRoster {
            phase = .awaitRoster
            return
        }
        // The roster goes only to a peer it admits, like the proof.
        checkMember(facts, into: &out)
        if ended { return }
        if ownRoster > hello.roster, let signed = facts.roster { sendRoster(signed, into: &out) }
        proveOrAdmit(into: &out)
    }

    /// Whether TLS on the sites' keys proved the peer's key on this connection and both sides speak
    /// protocol 4: then neither side writes `auth`, which would prove it again (§2.5, §2.12).
    package var keyProvedByTLS: Bool { (negotiatedProtocol ?? 1) >= 4 && tlsProvedHelloKey }

    /// Once the roster admits the peer: sends this side's `auth` and waits for the peer's, or, where TLS
    /// proved the peer's key (``keyProvedByTLS``), takes the peer as authenticated now.
    private mutating func proveOrAdmit(into out: inout [Action]) {
        if keyProvedByTLS {
            // As after a verified auth: nothing of the handshake before the vector is taken any more.
            phase = .awaitVector
            admitAuthenticated(into: &out)
        } else {
            prove(into: &out)
            phase = .awaitAuth
        }
    }

    /// The peer proved its key and the roster admits it: a node that accepted the connection checks
    /// its member slots first, then this side sends its vector.
    private mutating func admitAuthenticated(into out: inout [Action]) {
        isAuthenticated = true
        if configuration.isAccepted, let site = peer?.site {
            reading = .admission
            out.append(.ask(.admission(site)))
        } else {
            authenticated(into: &out)
        }
    }

    /// Sends this side's `auth`.
    private mutating func prove(into out: inout [Action]) {
        guard let peer else { return }
        do {
            out.append(.send(.auth(signature: try SessionAuth.prove(key: configuration.key, own: configuration.hello, peer: peer))))
        } catch {
            end(SessionEnded(error: WireError(.internal, "\(error)"), fromPeer: false), into: &out)
        }
    }

    /// Sends this store's roster and notes that the peer now holds it.
    mutating func sendRoster(_ signed: SignedRoster, into out: inout [Action]) {
        out.append(.send(.roster(document: signed.document, signature: signed.signature)))
        peerRoster = max(peerRoster, signed.roster.version)
    }

    /// Checks that the roster admits the peer's site with the key of its hello (and takes the role the
    /// roster gives it); any other peer is refused before this node proves anything to it.
    private mutating func checkMember(_ facts: Membership, into out: inout [Action]) {
        guard let peer else { return }
        let own = configuration.hello.site
        guard let roster = facts.roster?.roster else {
            fail(WireError(.authFailed, "\(own) holds no roster yet and neither side sent one; sync with the coordinator (or a site that has its roster) first"), into: &out)
            return
        }
        guard let member = roster.member(peer.site), member.revokedAfter == nil else {
            let removed = roster.member(peer.site)?.revokedAfter != nil
            fail(WireError(.authFailed, removed
                ? "site \(peer.site) was removed from the roster (version \(roster.version)); it may not sync"
                : "site \(peer.site) is not in the roster (version \(roster.version)); the coordinator adds it with `tierline roster add \(peer.site) --key \(peer.publicKey.hexString) --role \(peer.role == .coordinator ? "site" : peer.role.rawValue)`"), into: &out)
            return
        }
        guard member.key == peer.publicKey.hexString else {
            fail(WireError(.authFailed, "site \(peer.site) comes with a key that is not the one the roster lists for it (\(member.key.prefix(16))…); refusing the session"), into: &out)
            return
        }
        // Nothing binds a plain session's proof to its connection, so it can be relayed: a plain
        // session is held only with a site named as still on protocol 1, never before this side's
        // own proof is made (§2.12).
        let plain = facts.transport?.kind == .plain
        if plain, let allowed = configuration.plainSites, !allowed.contains(peer.site) {
            fail(WireError(.tlsRequired, "\(peer.site) reached this node in plain text, and plain protocol-1 sessions are admitted only with the sites named in allowPlainSessions (\(allowed.isEmpty ? "none" : allowed.map(\.rawValue).sorted().joined(separator: ", "))); upgrade \(peer.site) to Tierline 0.7 or later, or, for an upgrade window, add it: \"allowPlainSessions\": [\"\(peer.site)\"] in node.json (serve --allow-plain \(peer.site))"), into: &out)
            return
        }
        if plain {
            // Logged once the site is known to be a listed member, so strangers cannot flood the log.
            out.append(.log(.warning, "a plain protocol-1 session with \(peer.site), unprotected (allowPlainSessions): anyone on the path reads and can change it"))
        }
        if member.role != peer.role {
            out.append(.log(.warning, "the peer announces role \(peer.role.rawValue) but the roster lists \(member.role.rawValue); the roster's role counts"))
        }
        // Every later decision (the restore fence, presence, status) uses the role the roster gives.
        self.peer?.role = member.role
    }

    // MARK: Answers

    private mutating func resume(_ step: ReadStep, with answer: Answer, at moment: Moment, into out: inout [Action]) {
        switch (step, answer) {
        case (.hello(let hello), .membership(let facts)):
            helloChecked(hello, facts, at: moment, into: &out)
        case (.handshakeRoster, .rosterRefused(let detail)), (.liveRoster, .rosterRefused(let detail)):
            fail(WireError(.authFailed, "the peer's roster was refused: \(detail)"), into: &out)
        case (.handshakeRoster, .rosterAdopted(let adopted, let version, let roster)),
             (.liveRoster, .rosterAdopted(let adopted, let version, let roster)):
            rosterAdopted(adopted, version: version, roster: roster, into: &out)
            if ended || step == .liveRoster { return }
            reading = .rosterMembership
            out.append(.ask(.membership))
        case (.rosterMembership, .membership(let facts)):
            checkMember(facts, into: &out)
            if ended { return }
            proveOrAdmit(into: &out)
        case (.authMembership, .membership(let facts)):
            checkMember(facts, into: &out)
            if ended { return }
            admitAuthenticated(into: &out)
        case (.admission, .admission(let refusal)):
            let site = peer?.site.rawValue ?? "?"
            let slots = configuration.slots ?? Slots(members: 0, perSite: 0)
            switch refusal {
            case .full?:
                fail(WireError(.internal, "this node already serves \(slots.members) sessions (maxSessions); retry later"), into: &out)
            case .siteFull?:
                fail(WireError(.internal, "this node already serves \(slots.perSite) sessions of site \(site), the most one site may hold; close one (another `tierline serve` or `sync` with the same store?) and retry"), into: &out)
            case nil:
                out.append(.liftPrelude)
                authenticated(into: &out)
            }
        case (.restoreWatch, .restoreWatched(let began)):
            if began {
                // Members whose sessions are already open sent their `synced` before the watch began:
                // they end those sessions and sync afresh (§2.2.6).
                out.append(.advanceRestoreEpoch)
                out.append(.signalAll)
            }
            reading = .vectorAndHeads
            out.append(.ask(.vectorAndHeads))
        case (.vectorAndHeads, .vectorAndHeads(let vector, let heads)):
            out.append(.send(.vector(vector, heads: heads)))
            phase = .awaitVector
        case (.opening(let peerVector), .opening(let opening)):
            open(peerVector, opening, at: moment, into: &out)
        case (.fork(let block), .fork(let finding)):
            switch finding {
            case .recorded(let fork):
                reading = .forkStored(fork)
                out.append(.ask(.storedBlock(origin: fork.origin, seq: fork.seq)))
            case .notSigned:
                fail(WireError(.authFailed, "the fork evidence for \(block.origin) seq \(block.seq) is not signed by the key the roster lists for \(block.origin); refusing the session"), into: &out)
            case .nothingHeld:
                out.append(.log(.debug, "fork evidence for \(block.origin) seq \(block.seq) shows nothing this store holds otherwise"))
            }
        case (.forkStored(let fork), .storedBlock(let ours)):
            if let ours { sendFork(ours, into: &out) }
            if let site = peer?.site { reportDivergence([fork], peer: site, into: &out) }
        case (.witness(let vector, let awaiting, let role), .witnessed(let isNew)):
            // A new witness may shorten what the coordinator's other sessions tell restored sites.
            if isNew { out.append(.signalAll) }
            confirmSequence(vector, awaiting: awaiting, role: role, into: &out)
        case (.confirmSequence(let vector), .ownSequenceConfirmed(let confirmed)):
            if confirmed {
                out.append(.log(.notice, "restored store learned its own highest block from the peer; local writes resume",
                                ["seq": "\(vector[configuration.hello.site])"]))
            }
            out.append(.wakeSender)
        default:
            end(SessionEnded(error: WireError(.internal, "the session asked the store one thing and was answered another"), fromPeer: false), into: &out)
        }
    }

    /// Notes a roster the store adopted (or kept) from the peer; one that removes the peer ends the session.
    private mutating func rosterAdopted(_ adopted: Bool, version: UInt64, roster: SignedRoster?, into out: inout [Action]) {
        peerRoster = max(peerRoster, version)
        guard adopted else { return }
        out.append(.log(.notice, "adopted roster version \(version) from the peer"))
        out.append(.signalAll)
        // The roster the peer brought may remove the peer itself: it ends this session too.
        if isAuthenticated, let peer, let roster = roster?.roster, !roster.admits(peer.site, key: peer.publicKey) {
            fail(WireError(.authFailed, "site \(peer.site) is not admitted by the roster it sent (version \(roster.version)); ending the session"), into: &out)
        }
    }

    /// The peer proved its key and was admitted: the coordinator watches a restored site's fence, then
    /// this side sends its vector.
    private mutating func authenticated(into out: inout [Action]) {
        // From now on, every member that sends a restored site everything it holds is a witness that
        // nothing of that site is missing.
        if configuration.hello.role == .coordinator, let peer {
            reading = .restoreWatch
            out.append(.ask(.watchRestore(peer.site, restore: peer.restored)))
        } else {
            reading = .vectorAndHeads
            out.append(.ask(.vectorAndHeads))
        }
    }

    private mutating func open(_ vector: VersionVector, _ opening: Opening, at moment: Moment, into out: inout [Action]) {
        // A differing head leaves its origin out of the session, and this side sends its own block there
        // as evidence; only the peer's evidence, signed, is recorded (§2.2.3).
        for block in opening.evidence { sendFork(block, into: &out) }
        // A store that is a copy sends nothing of its own site: the fleet holds another history of it.
        if opening.isCopy { excluded.insert(configuration.hello.site) }
        keys = opening.keys
        openEpoch = moment.restoreEpoch
        peerVector = vector
        peerOpenVector = vector
        matchedHeads = opening.matchedHeads
        // A left-out origin is never sent: the peer "has" all of it.
        has = vector.merging(VersionVector(Dictionary(uniqueKeysWithValues: excluded.map { ($0, Self.excludedSeq) })))
        tally.toSend = vector.lacking(from: opening.vector)
        tally.toReceive = opening.vector.lacking(from: vector)
        phase = .open
        if let site = peer?.site {
            present = site
            out.append(.enterPresence(site))
        }
        out.append(.log(.info, "session open", ["role": peer?.role.rawValue ?? ""]))
        out.append(.recordPeer)
        // No ping yet: the hellos gave the clock skew, and a session that stays open pings once it
        // has been quiet (a one-shot sync in step with the peer is over by then).
        out.append(.wakeSender)
    }

    private mutating func synced(_ vector: VersionVector, awaiting: [SiteID]?, at moment: Moment, into out: inout [Action]) {
        peerSynced = true
        peerVector = peerVector.merging(vector)
        has = has.merging(vector)
        // Every batch the peer sent before `synced` is applied (frames are handled in order), so this
        // store now holds everything of every site this peer held: the peer is a witness for each
        // restore this store watches, its own included (§2.2.6). A witness's session left out no
        // origin, refused no block, and opened after the coordinator began its latest watch.
        let role = peer?.role ?? .site
        let complete = excluded.isEmpty && tally.refused == 0 && openEpoch == moment.restoreEpoch
        if let site = peer?.site, complete {
            reading = .witness(vector, awaiting: awaiting, role: role)
            out.append(.ask(.witness(site)))
        } else {
            confirmSequence(vector, awaiting: awaiting, role: role, into: &out)
        }
    }

    private mutating func confirmSequence(_ vector: VersionVector, awaiting: [SiteID]?, role: SiteRole, into out: inout [Action]) {
        reading = .confirmSequence(vector)
        out.append(.ask(.confirmOwnSequence(vector, peerRole: role, awaiting: awaiting)))
    }

    // MARK: Forks

    /// Sends this side's block at an (origin, seq) whose head differed, once per origin, and leaves the
    /// origin out of the session.
    mutating func sendFork(_ block: Block, into out: inout [Action]) {
        excluded.insert(block.origin)
        has[block.origin] = Self.excludedSeq
        if forkSent.insert(block.origin).inserted { out.append(.send(.fork(block))) }
    }

    /// Reports origins the peer holds another history of, proven by a signed block. When the origin is
    /// this node's own site or the peer's, one of the two stores is a copy: the session ends. For a
    /// third origin, only that origin stops between these two nodes; the rest of the session goes on.
    private mutating func reportDivergence(_ found: [HistoryFork], peer: SiteID, into out: inout [Action]) {
        diverged += found
        let me = configuration.hello.site
        func short(_ hash: [UInt8]) -> String { String(hash.hexString.prefix(16)) }
        for d in found {
            out.append(.log(.error, "diverged: origin \(d.origin) seq \(d.seq): this node holds block \(short(d.ourHash))…, the peer \(short(d.theirHash))…"))
        }
        let message: String
        if let d = found.first(where: { $0.origin == me }) {
            message = "\(peer) holds another block at seq \(d.seq) of \(me) (\(short(d.theirHash))…; this store holds \(short(d.ourHash))…): this store of \(me) is a copy of another that the fleet heard from first, and it writes nothing more as \(me); `tierline status` there says what to do"
        } else if let d = found.first(where: { $0.origin == peer }) {
            message = "\(peer) wrote two different blocks at seq \(d.seq): this node holds \(short(d.ourHash))…, which the fleet heard first; the peer sent \(short(d.theirHash))…. The peer's store is a copy of another store of \(peer) (a copied or reimaged store, an old backup) and must not write as \(peer) any more; `tierline status` there says what to do"
        } else {
            let list = found.map { "\($0.origin) at seq \($0.seq) (here \(short($0.ourHash))…, there \(short($0.theirHash))…)" }.joined(separator: "; ")
            out.append(.send(.error(code: WireError.Code.diverged.rawValue,
                                    message: "two histories of \(list): those origins are not exchanged between these nodes until an operator removes the site that was copied (`tierline roster remove`) and its stores rejoin under new site ids", fatal: false)))
            return
        }
        fail(WireError(.diverged, message), into: &out)
    }

    // MARK: Batches

    private mutating func applied(_ batch: BlockBatch, _ result: Applied, into out: inout [Action]) {
        keys = result.keys
        peerVector = peerVector.merging(Self.through(batch.blocks))
        // Only a batch the store took whole: a refused block may be one this store holds in another
        // version (an equivocation), and a held-back one is not in the store yet.
        if result.refused.isEmpty && result.held == 0 { receivedThrough = receivedThrough.merging(Self.through(batch.blocks)) }
        isDirty = true
        tally.receivedBlocks += batch.blocks.count
        tally.applied += result.applied
        tally.held += result.held
        tally.duplicates += result.duplicates
        tally.refused += result.refused.count
        tally.changeSetBytesIn += batch.size
        out.append(.reportProgress)
        out.append(.send(.ack(Ack(batch: batch.batch, vector: result.vector, applied: UInt64(result.applied),
                                  held: UInt64(result.held), refused: UInt64(result.refused.count)))))
        if !result.refused.isEmpty {
            let list = result.refused.prefix(5).joined(separator: "; ")
            out.append(.log(.warning, "refused \(result.refused.count) blocks: \(list)"))
            fail(WireError(.blockRefused, "\(result.refused.count) blocks refused: \(list)"), into: &out)
        }
        if result.applied > 0 { out.append(.signalAll) }
    }

    /// The highest seq per origin among `blocks`.
    static func through(_ blocks: [Block]) -> VersionVector {
        var through = VersionVector()
        for block in blocks { through[block.origin] = max(through[block.origin], block.seq) }
        return through
    }

    // MARK: Ending

    /// The peer closed without `bye`; every batch it sent is handled.
    private mutating func peerClosed(into out: inout [Action]) {
        let done = isDone
        if let timedOut { return end(SessionEnded(error: timedOut, fromPeer: false), into: &out) }
        if writeFailed && !done {
            return end(SessionEnded(error: WireError(.connectionLost, "the peer closed the connection without saying why; its log or `tierline status` there may"), fromPeer: false), into: &out)
        }
        if configuration.mode == .oneShot && !done {
            return end(SessionEnded(error: WireError(.connectionLost, "the peer closed the connection before the exchange finished"), fromPeer: false), into: &out)
        }
        out.append(.finishReading(completed: done))
    }

    /// Sends an error frame; a fatal one ends the session.
    mutating func fail(_ error: WireError, into out: inout [Action]) {
        out.append(.fail(error))
        if error.code.isFatal { ended = true }
    }

    mutating func end(_ ending: SessionEnded, into out: inout [Action]) {
        out.append(.end(ending))
        ended = true
    }

    static func describe(_ phase: Phase) -> String {
        switch phase {
        case .awaitHello: "before hello"
        case .awaitRoster: "while waiting for the roster the peer's hello announced"
        case .awaitAuth: "while waiting for auth"
        case .awaitVector: "while waiting for the vector"
        case .open: "after the handshake"
        }
    }

    /// `text` with control characters (terminal escapes among them) replaced by U+FFFD and cut to
    /// 1000 characters: a peer's error text is stored and shown by `status` and the dashboard.
    package static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars.prefix(1000) {
            out.append(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) ? "\u{FFFD}" : scalar)
        }
        return String(out)
    }
}
