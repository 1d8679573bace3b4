import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import SyncNode
import SyncWire
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The certificates in `Fixtures/tls`, made by `Fixtures/tls/make-certs.sh` with openssl (valid for
/// 100 years): a test CA that signs `north` and `south`, and an unrelated `rogue-ca` that signs `rogue`.
enum TLSFixture {
    static func path(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/tls/\(name)", withExtension: nil)!.path
    }

    /// A site's certificate and key, checking peers against `ca`.
    static func site(_ name: String, ca: String? = "ca") -> TLSSettings {
        TLSSettings(certificateFile: path("\(name).pem"), keyFile: path("\(name)-key.pem"), caFile: ca.map { path("\($0).pem") })
    }
}

@Suite(.serialized) struct TLSTests {
    @Test func twoNodesAndALaptopSyncOverMutualTLS() async throws {
        let north = try TestSite("north"), south = try TestSite("south"), laptop = try TestSite("laptop", role: .laptop)
        try admit(north, south, laptop)
        try north.create(5, prefix: "north")
        try south.create(4, prefix: "south")
        try laptop.create(2, prefix: "laptop")
        let address = try #require(try await north.start { $0.tls = TLSFixture.site("north") })
        try await south.start(listen: false, peers: [address]) { $0.tls = TLSFixture.site("south") }
        defer { Task { await south.stop(); await north.stop() } }
        try await eventually(60, "north and south converge over TLS") {
            let count = try south.db.tickets().count
            return try north.db.digest() == south.db.digest() && count == 9
        }
        #expect(try north.db.peers().map(\.site.rawValue) == ["south"])
        #expect(try north.db.peers().first?.lastError == nil)

        // A one-shot sync with a certificate of the same CA (the laptop reuses south's).
        let summary = try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger(),
                                                    tls: TLSFixture.site("south"))
        #expect(summary.completed)
        #expect(summary.receivedBlocks > 0 && summary.sentBlocks > 0)
        // Live push still runs inside TLS: a new ticket at south reaches north.
        _ = try south.db.createTicket(TicketDraft(subject: "after the handshake"))
        try await eventually(60, "the new ticket reaches north") { try north.db.tickets().contains { $0.subject == "after the handshake" } }
        await south.stop()
        await north.stop()
    }

    @Test func aPeerWithACertificateOfAnotherCAIsRefused() async throws {
        let north = try TestSite("north"), rogue = try TestSite("rogue"), south = try TestSite("south")
        try admit(north, rogue, south)
        try rogue.create(2, prefix: "rogue")
        try south.create(1, prefix: "south")
        let log = CapturedLog()
        let address = try #require(try await north.start(logger: log.logger) { $0.tls = TLSFixture.site("north") })
        defer { Task { await north.stop() } }

        // rogue trusts north's CA, but north does not trust rogue's.
        await expectFailure(code: "tls-failed", sync: rogue, with: address, tls: TLSFixture.site("rogue", ca: "ca"))
        try? await eventually(60, "north logs why it refused rogue") { log.contains(.warning, "tls-failed: the peer's certificate is not trusted here") }
        #expect(log.contains(.warning, "tls-failed: the peer's certificate is not trusted here"), "\(log.warnings)")

        // A client without any certificate is refused too (mutual TLS is the default with a CA).
        let noCertificate = TLSSettings(caFile: TLSFixture.path("ca.pem"))
        await expectFailure(code: "tls-failed", sync: rogue, with: address, tls: noCertificate)

        // The other way round: south's certificate is fine, but south does not trust north's CA.
        let southTrustingRogue = TLSFixture.site("south", ca: "rogue-ca")
        let failure = await expectFailure(code: "tls-failed", sync: south, with: address, tls: southTrustingRogue)
        #expect(failure?.contains("not trusted here") == true, "\(failure ?? "")")

        // Nothing of theirs reached north, no session was recorded, and north still serves its own.
        #expect(try north.db.peers().isEmpty)
        #expect(try north.db.vector()[try SiteID("rogue")] == 0)
        let summary = try await SyncClient.exchange(store: south.db, key: south.key, with: address, logger: quietLogger(),
                                                    tls: TLSFixture.site("south"))
        #expect(summary.completed, "\(log.warnings)")
        await north.stop()
    }

    /// A plain protocol-1 exchange, as a node of Tierline 0.6 dials.
    func plainExchange(_ site: TestSite, with address: Endpoint) async throws -> SessionSummary {
        let access = StoreAccess(site.db)
        return try await SyncClient.exchange(access: access, identity: try site.db.identity(), key: site.key, with: address,
                                             logger: quietLogger(), batchBlocks: 1024, tls: nil, plainSites: nil,
                                             group: MultiThreadedEventLoopGroup.singleton, onProgress: nil, protocolVersion: 1)
    }

    @Test func aPlainProtocolOnePeerIsRefusedUnlessTheUpgradeSettingAdmitsIt() async throws {
        let north = try TestSite("north"), south = try TestSite("south"), laptop = try TestSite("laptop", role: .laptop)
        try admit(north, south, laptop)
        try laptop.create(2, prefix: "laptop")
        let log = CapturedLog()
        let strict = try #require(try await north.start(logger: log.logger))
        defer { Task { await north.stop() } }

        // By default a plain peer hears, in plain text, that the node wants protocol 2's TLS, and which
        // setting would admit it; the node logs the refusal; nothing is exchanged.
        do {
            _ = try await plainExchange(laptop, with: strict)
            Issue.record("a plain session with a protocol-2 node succeeded")
        } catch let failure as SyncFailure {
            #expect(failure.summary.errorCode == "tls-required", "\(failure.message)")
            #expect(failure.message.contains("allowPlainSessions"), "\(failure.message)")
            #expect(!failure.summary.opened && failure.summary.receivedBlocks == 0 && failure.summary.sentBlocks == 0)
        }
        try? await eventually(60, "north logs the plain peer") { log.contains(.warning, "tls-required") }
        #expect(log.contains(.warning, "tls-required"), "\(log.warnings)")
        #expect(try north.db.vector()[try SiteID("laptop")] == 0)

        // With allowPlainSessions naming the laptop, the same plain peer syncs, and says so in the log:
        // the link is unprotected.
        let lenientLog = CapturedLog()
        let oldSite = try SiteID("laptop")
        let lenient = try #require(try await south.start(logger: lenientLog.logger) { $0.allowPlainSessions = [oldSite] })
        defer { Task { await south.stop() } }
        // A plain proof binds to no connection and could be relayed: a site that is not named, here the
        // upgraded north, is refused in plain text before anything is signed for it (finding F3).
        do {
            _ = try await plainExchange(north, with: lenient)
            Issue.record("a plain session as a site not named in allowPlainSessions succeeded")
        } catch let failure as SyncFailure {
            #expect(failure.summary.errorCode == "tls-required", "\(failure.message)")
            #expect(failure.message.contains("allowPlainSessions") && failure.message.contains("laptop"), "\(failure.message)")
            #expect(!failure.summary.opened && failure.summary.receivedBlocks == 0)
        }
        #expect(try await plainExchange(laptop, with: lenient).completed)
        #expect(try south.db.vector()[try SiteID("laptop")] == laptop.db.vector()[try SiteID("laptop")])
        #expect(lenientLog.contains(.warning, "unprotected"), "\(lenientLog.warnings)")
        // status and the dashboard read the link's protection from the peer record.
        try await eventually(60, "south records the laptop's plain link") { try south.db.peers().first?.transport == "plain" }
        // A protocol-2 peer still gets TLS there, and a node that admits plain sessions still speaks TLS
        // when it dials (here: the strict north).
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: lenient, logger: quietLogger()).completed)
        try await eventually(60, "south records the laptop's TLS link") { try south.db.peers().first?.transport == "tls" }
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: strict, logger: quietLogger(),
                                              allowPlain: [try SiteID("north")]).completed)
        await south.stop()
        await north.stop()
    }

    @Test func theDialedNameOrServerNameMustBeInTheCertificate() async throws {
        // hub's certificate names hub.tierline.test only, no address.
        let hub = try TestSite("hub"), laptop = try TestSite("laptop", role: .laptop)
        try admit(hub, laptop)
        let address = try #require(try await hub.start { $0.tls = TLSFixture.site("hub") })
        defer { Task { await hub.stop() } }
        let byAddress = await expectFailure(code: "tls-failed", sync: laptop, with: address, tls: TLSFixture.site("south"))
        #expect(byAddress?.contains("not made out to the name or address dialed") == true, "\(byAddress ?? "")")
        var wrong = TLSFixture.site("south")
        wrong.serverName = "north.tierline.test"
        await expectFailure(code: "tls-failed", sync: laptop, with: address, tls: wrong)
        var right = wrong
        right.serverName = "hub.tierline.test"
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: address, logger: quietLogger(), tls: right).completed)
        await hub.stop()
    }

    /// A port that accepts and closes at once (a full node, a firewall, a forwarder with nothing
    /// behind it) ends the handshake with NIO's `handshakeFailed(...EOF during handshake)`, which
    /// `sync` printed as it was: the failure says in words what happened and what to check.
    @Test func aPeerThatClosesDuringTheHandshakeIsSaidInWords() async throws {
        let laptop = try TestSite("laptop", role: .laptop)
        let closer = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.close() }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { closer.close(promise: nil) }
        let address = Endpoint(host: "127.0.0.1", port: try #require(closer.localAddress?.port))
        let message = await expectFailure(code: "tls-failed", sync: laptop, with: address, tls: nil)
        #expect(message?.contains("closed the connection during the TLS handshake") == true, "\(message ?? "")")
        #expect(message?.contains("NIOSSL") == false && message?.contains("handshakeFailed") == false, "\(message ?? "")")
    }

    /// Each connection learns the key the other end proved from its own TLS handshake, read once the
    /// handshake has completed rather than noted by the certificate callback, which does not run on a
    /// resumed TLS session (the node issues session tickets; `Tests/CLI/tls-resumption.py` resumes one
    /// with Python's ssl module, as Tierline's own dialers do not). So a second connection between the
    /// same two nodes knows the keys as the first did.
    @Test func consecutiveConnectionsBetweenTheSameNodesEachAuthenticateWithTheRightKey() async throws {
        let north = try TestSite("north"), south = try TestSite("south")
        try admit(north, south)
        let address = try #require(try await north.start())
        defer { Task { await north.stop() } }
        let tls = try SiteTLS.contexts(key: south.key, site: try south.db.identity().site)
        for round in 1...3 {
            // The dialing end: the gate holds north's key once the handshake is done.
            let (channel, _, gate) = try await SyncNode.connectGated(to: address, group: MultiThreadedEventLoopGroup.singleton,
                                                                   limits: .standard, readTimeout: nil, tls: tls)
            #expect(gate.mode == .siteKeys)
            #expect(gate.peerKey == north.key.publicKey, "round \(round)")
            try? await channel.executeThenClose { _, _ in }
            // The accepting end: north's session takes south's hello only if it names the key south proved.
            _ = try south.db.createTicket(TicketDraft(subject: "round \(round)"))
            let summary = try await SyncClient.exchange(store: south.db, key: south.key, with: address, logger: quietLogger())
            #expect(summary.completed && summary.sentBlocks == 1, "round \(round): \(summary.error ?? "")")
        }
        #expect(try north.db.tickets().count == 3)
        #expect(try north.db.peers().first?.transport == "tls")
        #expect(try north.db.peers().first?.lastError == nil)
        await north.stop()
    }

    /// Runs a one-shot sync that must fail with `code`; returns its message.
    @discardableResult
    func expectFailure(code: String, sync site: TestSite, with address: Endpoint, tls: TLSSettings?,
                       sourceLocation: SourceLocation = #_sourceLocation) async -> String? {
        do {
            _ = try await SyncClient.exchange(store: site.db, key: site.key, with: address, logger: quietLogger(), tls: tls)
            Issue.record("the sync succeeded; expected \(code)", sourceLocation: sourceLocation)
            return nil
        } catch let failure as SyncFailure {
            #expect(failure.summary.errorCode == code, "\(failure.message)", sourceLocation: sourceLocation)
            #expect(!failure.summary.opened, "the session must not open", sourceLocation: sourceLocation)
            #expect(failure.summary.receivedBlocks == 0 && failure.summary.sentBlocks == 0, sourceLocation: sourceLocation)
            return failure.message
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

@Suite struct TLSConfigurationTests {
    func write(_ text: String, name: String = "node.json") throws -> (folder: String, path: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tierline-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return (folder, path)
    }

    @Test func aFileNamesItsCertificatesRelativeToItself() throws {
        let (folder, path) = try write("{}")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in ["ca.pem", "north.pem", "north-key.pem"] {
            try FileManager.default.copyItem(atPath: TLSFixture.path(name), toPath: folder + "/" + name)
        }
        try Data(#"{"listen": "127.0.0.1:7400", "tls": {"certificateFile": "north.pem", "keyFile": "north-key.pem", "caFile": "ca.pem"}}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        let config = try NodeConfiguration.load(path: path)
        let resolvedFolder = URL(fileURLWithPath: folder).standardizedFileURL.path
        #expect(config.tls?.certificateFile == resolvedFolder + "/north.pem")
        #expect(config.tls?.requiresClientCertificate == true, "mutual TLS is the default with a CA")
    }

    @Test(arguments: [
        (#"{"tls": {"certificateFile": "/nonexistent/north.pem", "keyFile": "KEY"}}"#, "tls.certificateFile: /nonexistent/north.pem does not exist"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "/nonexistent/key.pem"}}"#, "tls.keyFile: /nonexistent/key.pem does not exist"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "KEY", "caFile": "NOTPEM"}}"#, "tls.caFile: NOTPEM is not a PEM file"),
        (#"{"tls": {"certificateFile": "KEY", "keyFile": "KEY"}}"#, "holds no certificate"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "/tmp"}}"#, "tls.keyFile: /tmp is a folder"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "CERT"}}"#, "holds no private key"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "OTHERKEY"}}"#, "tls.keyFile is not the private key of tls.certificateFile"),
        (#"{"tls": {"certificateFile": "CERT"}}"#, "go together"),
        (#"{"tls": {"caFile": "CA"}}"#, "a node that listens with TLS needs tls.certificateFile"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "KEY", "requireClientCertificate": true}}"#, "needs tls.caFile"),
        (#"{"tls": {"certificateFile": "CERT", "keyFile": "KEY", "serverName": "10.0.0.1"}}"#, "must be a DNS name"),
        (#"{"tls": {"certFile": "CERT"}}"#, "unknown setting \"tls.certFile\""),
    ])
    func badSettingsSayWhichFileOrKey(template: String, expected: String) throws {
        let (folder, path) = try write("{}")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data("just text\n".utf8).write(to: URL(fileURLWithPath: folder + "/notpem.txt"))
        let text = template
            .replacingOccurrences(of: "OTHERKEY", with: TLSFixture.path("south-key.pem"))
            .replacingOccurrences(of: "NOTPEM", with: folder + "/notpem.txt")
            .replacingOccurrences(of: "CERT", with: TLSFixture.path("north.pem"))
            .replacingOccurrences(of: "KEY", with: TLSFixture.path("north-key.pem"))
            .replacingOccurrences(of: "\"CA\"", with: "\"" + TLSFixture.path("ca.pem") + "\"")
            .replacingOccurrences(of: "{\"tls\"", with: "{\"listen\": \"127.0.0.1:7400\", \"tls\"")
        let expectedText = expected.replacingOccurrences(of: "NOTPEM", with: folder + "/notpem.txt")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try NodeConfiguration.load(path: path)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.message.contains(expectedText), "\(error.message)")
        }
    }
}
