import SyncProtocol
import SyncWire
import Testing
import TicketModel

/// Protocol 4 leaves `auth` out only where TLS on the sites' keys proved the hello's key (§2.5): what
/// a stranger, a mixed configuration, a plain session or an older peer gets instead.
@Suite struct Protocol4Tests {
    let now = Moment(now: t0)

    func siteKeys(_ key: [UInt8]?) -> SessionMachine.Transport { .init(kind: .siteKeys, peerKey: key) }

    /// A stranger with its own Ed25519 TLS key, hello naming that key: refused, no vector, no slot.
    @Test func strangerWithOwnTLSKeyGetsNothing() {
        let strangerKey = SiteKey.generate()
        var hello = makeHello(branch)
        hello.publicKey = strangerKey.publicKey
        var machine = makeMachine(hub, slots: .init(members: 4, perSite: 2))
        _ = machine.start(roster: 1, restored: nil, at: t0)
        _ = machine.receive(.frame(.hello(hello)), at: now)
        let out = machine.receive(membership(transport: siteKeys(strangerKey.publicKey)), at: now)
        #expect(out.failures == [.authFailed] && out.frames.isEmpty && !machine.isAuthenticated)
        #expect(!out.contains(.ask(.admission(branch))))
    }

    /// A stranger naming branch's (public) key in its hello while TLS proved its own key.
    @Test func strangerNamingMemberKeyIsRefusedByBinding() {
        let strangerKey = SiteKey.generate()
        var machine = makeMachine(hub, slots: .init(members: 4, perSite: 2))
        _ = machine.start(roster: 1, restored: nil, at: t0)
        _ = machine.receive(.frame(.hello(makeHello(branch))), at: now)
        let out = machine.receive(membership(transport: siteKeys(strangerKey.publicKey)), at: now)
        #expect(out.failures == [.authFailed] && !machine.isAuthenticated)
        // TLS gave no key at all (the transport gate refuses such a connection first): still refused.
        var m2 = makeMachine(hub, slots: .init(members: 4, perSite: 2))
        _ = m2.start(roster: 1, restored: nil, at: t0)
        _ = m2.receive(.frame(.hello(makeHello(branch))), at: now)
        #expect(m2.receive(membership(transport: siteKeys(nil)), at: now).failures == [.authFailed])
    }

    /// AWAIT-ROSTER in v4: a stranger announces a newer roster and sends a genuine newer one that
    /// does not list it (or removes it): refused, no vector, no admission.
    @Test func strangerThroughAwaitRoster() {
        for newer in [signedRoster(version: 2, listsBranch: false), signedRoster(version: 2, branchRemoved: true),
                      signedRoster(version: 2, branchKey: SiteKey.generate().publicKey)] {
            var machine = makeMachine(hub, slots: .init(members: 4, perSite: 2))
            _ = machine.start(roster: 1, restored: nil, at: t0)
            _ = machine.receive(.frame(.hello(makeHello(branch, roster: 2))), at: now)
            #expect(machine.receive(membership(transport: siteKeys(branchKey.publicKey)), at: now) == [])
            #expect(machine.phase == .awaitRoster)
            // An auth sent anyway while the roster is awaited.
            var probe = machine
            #expect(probe.receive(.frame(peerAuth(machine, from: makeHello(branch, roster: 2))), at: now).failures == [.unexpectedFrame])
            _ = machine.receive(.frame(.roster(document: newer.document, signature: newer.signature)), at: now)
            _ = machine.receive(.answer(.rosterAdopted(adopted: true, version: 2, roster: newer)), at: now)
            let out = machine.receive(membership(newer, transport: siteKeys(branchKey.publicKey)), at: now)
            #expect(out.failures == [.authFailed] && out.frames.isEmpty && !machine.isAuthenticated, "\(out)")
        }
    }

    /// Mixed transports: a dialer that sees site-key TLS, an acceptor that sees CA certificates
    /// (possible when the acceptor's CA certificate carries an Ed25519 key equal to its site key and it
    /// asks no client certificate). Both speak 4, and they decide differently: each refuses the frame
    /// the other writes instead of the one it expects, so the session neither opens nor waits.
    @Test func mixedTransportsRefuseButDoNotHang() {
        var dialer = makeMachine(branch)
        var acceptor = makeMachine(hub, slots: .init(members: 4, perSite: 2))
        let dHello = dialer.start(roster: 1, restored: nil, at: t0)
        let aHello = acceptor.start(roster: 1, restored: nil, at: t0)
        _ = dialer.receive(.frame(.hello(aHello)), at: now)
        var dOut = dialer.receive(membership(transport: siteKeys(hubKey.publicKey)), at: now)
        #expect(dOut == [.ask(.vectorAndHeads)])
        dOut = dialer.receive(.answer(.vectorAndHeads(VersionVector(), [:])), at: now)
        _ = acceptor.receive(.frame(.hello(dHello)), at: now)
        let aOut = acceptor.receive(membership(transport: .init(kind: .certificates, peerKey: nil)), at: now)
        guard case .auth? = aOut.frames.first else { Issue.record("\(aOut)"); return }
        // Each reads the other's next frame.
        let dGot = dialer.receive(.frame(aOut.frames[0]), at: now)
        let aGot = acceptor.receive(.frame(dOut.frames[0]), at: now)
        #expect(dGot.failures == [.unexpectedFrame] && aGot.failures == [.unexpectedFrame])
        #expect(!dialer.isOpen && !acceptor.isOpen && !acceptor.isAuthenticated)
    }

    /// Plain transport naming protocol 4 or later: auth is still required, and only for listed sites.
    @Test func plainV4StillNeedsAuth() {
        let plain = SessionMachine.Transport(kind: .plain, peerKey: nil)
        var m = makeMachine(hub, slots: .init(members: 4, perSite: 2), plainSites: [branch])
        _ = m.start(roster: 1, restored: nil, at: t0)
        _ = m.receive(.frame(.hello(makeHello(branch))), at: now)
        let out = m.receive(membership(transport: plain), at: now)
        #expect(m.negotiatedProtocol == WireVersion.protocolVersion && !m.keyProvedByTLS && m.phase == .awaitAuth && !m.isAuthenticated)
        guard case .auth? = out.frames.first else { Issue.record("\(out)"); return }
        var unlisted = makeMachine(hub, slots: .init(members: 4, perSite: 2), plainSites: [])
        #expect(answer(&unlisted, makeHello(branch), plain).failures == [.tlsRequired])
    }

    /// A protocol-4 peer meets a protocol-3 node (and the other way round) over site-key TLS: both
    /// agree on 3 and exchange auth.
    @Test func v3AndV4Meet() {
        var v3 = SessionMachine(SessionMachine.Configuration(hello: { var h = makeHello(hub, roster: 0, nonce: 7); h.protocolVersion = 3; return h }(),
                                                             key: hubKey, mode: .live, slots: .init(members: 4, perSite: 2), readGuardMillis: 22_500))
        let out = answer(&v3, makeHello(branch), siteKeys(branchKey.publicKey))
        #expect(v3.negotiatedProtocol == 3 && v3.phase == .awaitAuth)
        guard case .auth? = out.frames.first else { Issue.record("\(out)"); return }
        var v4 = makeMachine(hub, slots: .init(members: 4, perSite: 2))
        var old = makeHello(branch); old.protocolVersion = 3
        _ = answer(&v4, old, siteKeys(branchKey.publicKey))
        #expect(v4.negotiatedProtocol == 3 && v4.phase == .awaitAuth)
    }

    func answer(_ m: inout SessionMachine, _ hello: Hello, _ transport: SessionMachine.Transport) -> [Action] {
        _ = m.start(roster: 1, restored: nil, at: t0)
        _ = m.receive(.frame(.hello(hello)), at: now)
        return m.receive(membership(transport: transport), at: now)
    }
}
