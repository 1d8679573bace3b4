import Logging
import SyncProtocol
import SyncWire
import Testing
import TicketModel

@Suite struct HandshakeTests {
    let now = Moment(now: t0)

    @Test func helloThenAuthThenVectorThenOpen() throws {
        var machine = makeMachine(branch)
        let sent = machine.start(roster: 1, restored: nil, at: t0)
        #expect(sent.roster == 1 && sent.site == branch && sent.time == t0)
        let hubHello = makeHello(hub)

        // The roster is read before anything is proved to the peer.
        #expect(machine.receive(.frame(.hello(hubHello)), at: now) == [.ask(.membership)])
        let proof = machine.receive(membership(), at: now)
        guard case .auth(let signature)? = proof.frames.first, proof.count == 1 else {
            Issue.record("expected only an auth, got \(proof)")
            return
        }
        #expect(SessionAuth.verify(signature: signature, own: hubHello, peer: machine.configuration.hello))
        #expect(machine.phase == .awaitAuth)

        // The peer's proof is checked against the roster again; then this side's vector goes out.
        #expect(machine.receive(.frame(peerAuth(machine, from: hubHello)), at: now) == [.ask(.membership)])
        #expect(machine.receive(membership(), at: now) == [.ask(.vectorAndHeads)])
        #expect(machine.isAuthenticated)
        let vector = VersionVector([branch: 3])
        #expect(machine.receive(.answer(.vectorAndHeads(vector, [:])), at: now) == [.send(.vector(vector, heads: [:]))])
        #expect(machine.phase == .awaitVector && !machine.isOpen)

        #expect(machine.receive(.frame(.vector(VersionVector([hub: 2]), heads: [:])), at: now) == [.ask(.opening(compareHeads: nil))])
        let opened = machine.receive(.answer(.opening(.init(vector: vector, keys: [hub: hubKey.publicKey]))), at: now)
        #expect(opened == [.enterPresence(hub), .log(.info, "session open", ["role": "coordinator"]), .recordPeer, .wakeSender])
        #expect(machine.isOpen && machine.phase == .open)
        #expect(machine.tally.toSend == 3 && machine.tally.toReceive == 2)
        #expect(machine.keys == [hub: hubKey.publicKey])
    }

    @Test func theSideWithTheNewerRosterSendsItBeforeItsProof() {
        var machine = makeMachine(hub)
        _ = machine.start(roster: 2, restored: nil, at: t0)
        _ = machine.receive(.frame(.hello(makeHello(branch, roster: 1))), at: now)
        let newer = signedRoster(version: 2)
        let actions = machine.receive(membership(newer), at: now)
        #expect(actions.frames.count == 2)
        #expect(actions.frames.first == .roster(document: newer.document, signature: newer.signature))
        guard case .auth? = actions.frames.last else {
            Issue.record("expected the auth after the roster, got \(actions)")
            return
        }
    }

    @Test func aPeerAnnouncingANewerRosterIsJudgedByIt() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let hubHello = makeHello(hub, roster: 2)
        _ = machine.receive(.frame(.hello(hubHello)), at: now)
        // Nothing is proved before the roster the peer announced arrives.
        #expect(machine.receive(membership(), at: now) == [])
        #expect(machine.phase == .awaitRoster)

        let newer = signedRoster(version: 2)
        #expect(machine.receive(.frame(.roster(document: newer.document, signature: newer.signature)), at: now)
                == [.ask(.adoptRoster(document: newer.document, signature: newer.signature))])
        #expect(machine.receive(.answer(.rosterAdopted(adopted: true, version: 2, roster: newer)), at: now)
                == [.log(.notice, "adopted roster version 2 from the peer"), .signalAll, .ask(.membership)])
        let proof = machine.receive(membership(newer), at: now)
        guard case .auth? = proof.frames.first else {
            Issue.record("expected the auth, got \(proof)")
            return
        }
        #expect(machine.phase == .awaitAuth)
    }

    @Test func anAuthBeforeTheAnnouncedRosterIsOutOfPhase() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let hubHello = makeHello(hub, roster: 2)
        _ = machine.receive(.frame(.hello(hubHello)), at: now)
        _ = machine.receive(membership(), at: now)
        let actions = machine.receive(.frame(peerAuth(machine, from: hubHello)), at: now)
        #expect(actions == [.fail(WireError(.unexpectedFrame, "a auth frame is not allowed while waiting for the roster the peer's hello announced"))])
    }

    @Test func aRosterTheStoreRefusesEndsTheSession() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: t0)
        _ = machine.receive(.frame(.hello(makeHello(hub, roster: 2))), at: now)
        _ = machine.receive(membership(), at: now)
        _ = machine.receive(.frame(.roster(document: "{}", signature: [1])), at: now)
        let actions = machine.receive(.answer(.rosterRefused("its signature does not verify")), at: now)
        #expect(actions == [.fail(WireError(.authFailed, "the peer's roster was refused: its signature does not verify"))])
        #expect(machine.receive(.frame(.ping(id: 1, time: t0)), at: now) == [], "nothing is done after a fatal error")
    }

    // MARK: Refusals

    /// The machine after `hello`'s membership answer.
    func answerHello(_ hello: Hello, _ answer: SessionMachine.Event = membership(), machine: SessionMachine = makeMachine(branch)) -> [Action] {
        var machine = machine
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let first = machine.receive(.frame(.hello(hello)), at: now)
        guard first == [.ask(.membership)] else { return first }
        return machine.receive(answer, at: now)
    }

    @Test func anUnknownSiteIsRefusedBeforeAnyProof() {
        var stranger = makeHello(branch)
        stranger.site = try! SiteID("stranger")
        let actions = answerHello(stranger, machine: makeMachine(hub))
        #expect(actions.failures == [.authFailed])
        #expect(actions.frames.isEmpty, "no proof and no roster go to a stranger")

        let unlisted = answerHello(makeHello(branch), membership(signedRoster(listsBranch: false)), machine: makeMachine(hub))
        #expect(unlisted.failures == [.authFailed])
        #expect(unlisted.failureDetail.contains("site branch is not in the roster (version 1); the coordinator adds it with `tierline roster add branch --key"))
        #expect(unlisted.frames.isEmpty)
    }

    @Test func aRemovedSiteOrAnotherKeyIsRefused() {
        let removed = answerHello(makeHello(branch), membership(signedRoster(branchRemoved: true)), machine: makeMachine(hub))
        #expect(removed.failureDetail == "site branch was removed from the roster (version 1); it may not sync")
        let otherKey = answerHello(makeHello(branch), membership(signedRoster(branchKey: SiteKey.generate().publicKey)), machine: makeMachine(hub))
        #expect(otherKey.failures == [.authFailed])
        #expect(otherKey.failureDetail.contains("comes with a key that is not the one the roster lists"))
        let noRoster = answerHello(makeHello(branch), membership(nil), machine: makeMachine(hub))
        #expect(noRoster.failureDetail.contains("holds no roster yet"))
        let unpinned = answerHello(makeHello(branch), membership(pinned: false), machine: makeMachine(hub))
        #expect(unpinned.failureDetail.contains("has not pinned its coordinator's key"))
    }

    @Test func aBadAuthSignatureIsRefused() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let hubHello = makeHello(hub)
        _ = machine.receive(.frame(.hello(hubHello)), at: now)
        _ = machine.receive(membership(), at: now)
        // A proof over another nonce: replayed from another session.
        var replayed = machine.configuration.hello
        replayed.nonce = [UInt8](repeating: 9, count: 32)
        let signature = try! SessionAuth.prove(key: hubKey, own: hubHello, peer: replayed)
        let actions = machine.receive(.frame(.auth(signature: signature)), at: now)
        #expect(actions == [.fail(WireError(.authFailed, "the peer's auth signature does not verify under the key in its hello"))])
        #expect(!machine.isAuthenticated)
    }

    @Test func framesOutOfPhaseAreRefused() {
        var machine = makeMachine(branch)
        #expect(machine.receive(.frame(.vector(VersionVector(), heads: [:])), at: now)
                == [.fail(WireError(.unexpectedFrame, "a vector frame is not allowed before hello"))])

        var waiting = makeMachine(branch)
        _ = waiting.start(roster: 1, restored: nil, at: t0)
        #expect(waiting.receive(.batchArrived(1), at: now)
                == [.fail(WireError(.unexpectedFrame, "a blocks frame is not allowed before hello"))])
        #expect(waiting.receive(.frame(.ack(Ack(batch: 1, vector: VersionVector(), applied: 0, held: 0, refused: 0))), at: now) == [],
                "the session ended at the first fatal error")
    }

    @Test func aPeerOnAnotherProtocolVersionIsRefused() {
        var old = makeHello(hub)
        (old.minProtocol, old.protocolVersion) = (0, 0)
        let actions = answerHello(old)
        #expect(actions.failures == [.unsupportedProtocol])
        #expect(actions.failureDetail == "the peer speaks protocol 0…0; this node speaks \(WireVersion.minProtocolVersion)…\(WireVersion.protocolVersion); upgrade the older node")
        var newer = makeHello(hub)
        newer.schema = WireVersion.schema + 1
        #expect(answerHello(newer).failures == [.unsupportedSchema])
        #expect(answerHello(makeHello(branch)).failures == [.duplicateSite])
    }

    @Test func theHelloMustNameTheKeyTLSProved() {
        let relayed = SessionMachine.Transport(kind: .siteKeys, peerKey: SiteKey.generate().publicKey)
        let actions = answerHello(makeHello(hub), membership(transport: relayed))
        #expect(actions.failures == [.authFailed])
        #expect(actions.failureDetail.contains("not the key its TLS certificate proved"))
        let proved = SessionMachine.Transport(kind: .siteKeys, peerKey: hubKey.publicKey)
        #expect(answerHello(makeHello(hub), membership(transport: proved)).failures == [])
    }

    /// TLS on the sites' keys proved the hub's key on this connection.
    static let hubProvedInTLS = SessionMachine.Transport(kind: .siteKeys, peerKey: hubKey.publicKey)

    @Test func inProtocol4OverSiteKeyTLSNeitherSideWritesAuth() {
        var machine = makeMachine(hub, slots: SessionMachine.Slots(members: 4, perSite: 2))
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let branchHello = makeHello(branch)
        let branchInTLS = SessionMachine.Transport(kind: .siteKeys, peerKey: branchKey.publicKey)
        #expect(machine.receive(.frame(.hello(branchHello)), at: now) == [.ask(.membership)])
        // The roster admits the key TLS proved: the peer is authenticated at once, and the node goes on
        // to its member slots without writing a proof of its own.
        let admitted = machine.receive(membership(transport: branchInTLS), at: now)
        #expect(admitted == [.ask(.admission(branch))], "\(admitted)")
        #expect(machine.isAuthenticated && machine.keyProvedByTLS && machine.phase == .awaitVector)
        // The handshake before the vector is over: a second hello is out of phase.
        var twice = machine
        #expect(twice.receive(.frame(.hello(branchHello)), at: now).failures == [.unexpectedFrame])
        #expect(machine.receive(.answer(.admission(nil)), at: now) == [.liftPrelude, .ask(.watchRestore(branch, restore: nil))])
        #expect(machine.receive(.answer(.restoreWatched(false)), at: now) == [.ask(.vectorAndHeads)])
        let vector = VersionVector([hub: 2])
        #expect(machine.receive(.answer(.vectorAndHeads(vector, [:])), at: now) == [.send(.vector(vector, heads: [:]))])
        // An auth frame has no place in such a session.
        var strict = machine
        let refused = strict.receive(.frame(peerAuth(machine, from: branchHello)), at: now)
        #expect(refused.failures == [.unexpectedFrame] && refused.failureDetail.contains("proved the key"))
        #expect(machine.receive(.frame(.vector(VersionVector(), heads: [:])), at: now) == [.ask(.opening(compareHeads: nil))])
        #expect(machine.receive(.answer(.opening(.init(vector: vector, keys: [:]))), at: now).contains(.enterPresence(branch)))
        #expect(machine.isOpen)
    }

    @Test func theRosterStillComesFirstAndANonMemberIsStillRefusedInProtocol4() {
        // The newer roster goes out before the vector, as it would before the proof.
        var machine = makeMachine(hub)
        _ = machine.start(roster: 2, restored: nil, at: t0)
        _ = machine.receive(.frame(.hello(makeHello(branch, roster: 1))), at: now)
        let newer = signedRoster(version: 2)
        let inTLS = SessionMachine.Transport(kind: .siteKeys, peerKey: branchKey.publicKey)
        let actions = machine.receive(membership(newer, transport: inTLS), at: now)
        #expect(actions == [.send(.roster(document: newer.document, signature: newer.signature)), .ask(.watchRestore(branch, restore: nil))])
        // A key TLS proved that the roster does not list for the site is refused before any vector.
        let other = SessionMachine.Transport(kind: .siteKeys, peerKey: SiteKey.generate().publicKey)
        var hello = makeHello(hub)
        hello.publicKey = other.peerKey!
        let refused = answerHello(hello, membership(transport: other))
        #expect(refused.failures == [.authFailed] && refused.frames.allSatisfy { if case .vector = $0 { false } else { true } })
    }

    @Test func authIsStillExchangedBelowProtocol4OrWithoutSiteKeyTLS() {
        // A protocol-3 peer over site-key TLS, and a protocol-4 peer over an organisation's
        // certificates (whose keys are not the sites'), each get this side's auth and must send theirs.
        var older = makeHello(hub)
        older.protocolVersion = 3
        let certificates = SessionMachine.Transport(kind: .certificates, peerKey: nil)
        for (hello, transport) in [(older, Self.hubProvedInTLS), (makeHello(hub), certificates)] {
            var machine = makeMachine(branch)
            let actions = answerHello(hello, membership(transport: transport), machine: machine)
            guard case .auth? = actions.frames.first else {
                Issue.record("expected an auth, got \(actions)")
                continue
            }
            machine = makeMachine(branch)
            _ = machine.start(roster: 1, restored: nil, at: t0)
            _ = machine.receive(.frame(.hello(hello)), at: now)
            _ = machine.receive(membership(transport: transport), at: now)
            #expect(machine.phase == .awaitAuth && !machine.isAuthenticated && !machine.keyProvedByTLS)
        }
        // Protocol 4 over site-key TLS: no auth.
        let current = answerHello(makeHello(hub), membership(transport: Self.hubProvedInTLS))
        #expect(current == [.ask(.vectorAndHeads)], "\(current)")
    }

    @Test func aPlainSessionIsHeldOnlyWithListedSites() {
        let plain = SessionMachine.Transport(kind: .plain, peerKey: nil)
        let refused = answerHello(makeHello(hub), membership(transport: plain))
        #expect(refused.failures == [.tlsRequired])
        let listed = answerHello(makeHello(hub), membership(transport: plain), machine: makeMachine(branch, plainSites: [hub]))
        #expect(listed.failures == [])
        #expect(listed.contains(.log(.warning, "a plain protocol-1 session with hub, unprotected (allowPlainSessions): anyone on the path reads and can change it")))
    }

    @Test func anAcceptedPeerIsAdmittedAfterItsProof() {
        var machine = makeMachine(hub, slots: SessionMachine.Slots(members: 4, perSite: 2))
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let branchHello = makeHello(branch)
        _ = machine.receive(.frame(.hello(branchHello)), at: now)
        _ = machine.receive(membership(), at: now)
        _ = machine.receive(.frame(peerAuth(machine, from: branchHello)), at: now)
        #expect(machine.receive(membership(), at: now) == [.ask(.admission(branch))])
        var full = machine
        #expect(full.receive(.answer(.admission(.siteFull)), at: now).failureDetail.contains("already serves 2 sessions of site branch"))
        // Admitted: lines may grow, and the coordinator starts watching the site's restore, if any.
        #expect(machine.receive(.answer(.admission(nil)), at: now) == [.liftPrelude, .ask(.watchRestore(branch, restore: nil))])
        #expect(machine.receive(.answer(.restoreWatched(true)), at: now) == [.advanceRestoreEpoch, .signalAll, .ask(.vectorAndHeads)])
    }

    @Test func aStrangersErrorTextIsNotLogged() {
        var machine = makeMachine(hub, slots: SessionMachine.Slots(members: 4, perSite: 2))
        let actions = machine.receive(.frame(.error(code: "internal", message: "\u{1B}[31mforged", fatal: true)), at: now)
        #expect(actions == [.end(SessionEnded(error: WireError(.internal, "\u{1B}[31mforged"), fromPeer: true))])
        var dialed = makeMachine(branch)
        let logged = dialed.receive(.frame(.error(code: "internal", message: "\u{1B}[31mbusy", fatal: false)), at: now)
        #expect(logged == [.log(.warning, "peer reported internal: \u{FFFD}[31mbusy")])
        #expect(machine.peerRecord(error: "x") == nil, "a stranger leaves no record")
    }

    @Test func theHandshakeTimerEndsOnlyAnUnopenedSession() {
        var waiting = makeMachine(branch)
        let timeout = WireError(.timeout, "the handshake did not finish within 5 s")
        #expect(waiting.expireHandshake(timeout) == .error(timeout))
        #expect(waiting.receive(.peerClosed, at: now) == [.end(SessionEnded(error: timeout, fromPeer: false))])
        var opened = makeMachine(branch)
        open(&opened, with: makeHello(hub))
        #expect(opened.expireHandshake(timeout) == nil)
    }
}
