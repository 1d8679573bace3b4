import Foundation
import NIOCore
@testable import SyncNode
@testable import SyncWire
import Testing
import TicketModel
import TicketStore

/// Protocol 2 against the relay that protocol 1's `auth` allowed: an attacker with no roster key,
/// who can reach two nodes' sync ports, tries to pass one node's proof off as its own at the other.
@Suite(.serialized) struct RelayTests {
    /// Connects to `address` in TLS proving `key`, sends `hello`, and returns every frame the node
    /// writes until it closes (bounded), answering a node `auth` with nothing.
    func attempt(_ address: Endpoint, key: SiteKey, hello: (Hello) -> Hello) async throws -> [Frame] {
        let channel = try await connectRaw(to: address, key: key, readTimeout: .seconds(60))
        var frames: [Frame] = []
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            while let item = try? await iterator.next() {
                guard case .frame(let frame) = item else { continue }
                frames.append(frame)
                if case .hello(let theirs) = frame { try? await outbound.write(.frame(.hello(hello(theirs)))) }
                if case .error(_, _, true) = frame { break }
            }
        }
        return frames
    }

    /// Opens a session as `site` (a member) and, once the node's vector came, writes `frames`; returns
    /// what the node wrote until it closed or went quiet.
    func member(_ address: Endpoint, as site: TestSite, then frames: @escaping ([UInt8]) -> [Frame]) async throws -> [Frame] {
        let me = try site.db.identity()
        let key = site.key
        let hello = Hello(site: me.site, role: me.role, publicKey: key.publicKey, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) },
                          time: TicketDatabase.systemMillis())
        let channel = try await connectRaw(to: address, key: key, readTimeout: .seconds(60))
        var seen: [Frame] = []
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(.frame(.hello(hello)))
            var iterator = inbound.makeAsyncIterator()
            while let item = try? await iterator.next() {
                guard case .frame(let frame) = item else { continue }
                seen.append(frame)
                if case .hello(let theirs) = frame, !keyProvedByTLS(hello, theirs) {
                    try await outbound.write(.frame(.auth(signature: try SessionAuth.prove(key: key, own: hello, peer: theirs))))
                }
                if case .vector = frame {
                    for f in frames(key.publicKey) { try await outbound.write(.frame(f)) }
                    try await outbound.write(.frame(.ping(id: 77, time: 0)))
                }
                if case .pong(77, _) = frame { break }
                if case .error(_, _, true) = frame { break }
            }
        }
        return seen
    }

    @Test func aMemberCannotMakeASiteBelieveItIsACopyWithoutItsSignedBlock() async throws {
        let north = try TestSite("north"), evil = try TestSite("evil", role: .laptop)
        try admit(north, evil)
        try north.create(3, prefix: "north")
        let address = try #require(try await north.start())
        defer { Task { await north.stop() } }
        let northSite = try SiteID("north"), seq = try north.db.vector()[SiteID("north")]

        // A false head for north's own newest block: north answers with its own block as evidence and
        // leaves its site out of the session, but records nothing and keeps writing.
        let fake = try await member(address, as: evil) { _ in
            [.vector(try! north.db.vector(), heads: [northSite: Head(seq: seq, hash: Array(repeating: 0xab, count: 32))])]
        }
        #expect(fake.contains { if case .fork(let b) = $0 { b.origin == northSite && b.seq == seq } else { false } }, "\(fake.map(\.type))")
        #expect(try north.db.divergences().isEmpty)
        #expect(try north.db.copiedStoreRefusal() == nil)
        _ = try north.db.createTicket(TicketDraft(subject: "north still writes"))

        // A forged block of north's (signed with evil's key) as evidence: refused, and nothing recorded.
        let stolen = try #require(try north.db.storedBlock(origin: northSite, seq: seq))
        let forged = try Block.make(origin: northSite, seq: seq, hlc: stolen.hlc, deps: VersionVector([northSite: seq - 1]),
                                    changes: [Change(.ticket(UUID()), .create(number: 999))], key: evil.key)
        let refused = try await member(address, as: evil) { _ in [.vector(VersionVector()), .fork(forged)] }
        #expect(refused.contains { if case .error("auth-failed", let message, true) = $0 { message.contains("not signed") } else { false } },
                "\(refused.map(\.type))")
        #expect(try north.db.divergences().isEmpty && north.db.copiedStoreRefusal() == nil)
        await north.stop()
    }

    @Test func aPartyWithNoRosterKeyGetsNoProofAndReadsNothing() async throws {
        let hub = try TestSite("hub"), north = try TestSite("north")
        try admit(hub, north)
        try north.create(3, prefix: "north secret")
        let hubAddress = try #require(try await hub.start())
        let northAddress = try #require(try await north.start())
        defer { Task { await hub.stop(); await north.stop() } }
        let attacker = SiteKey.generate()
        let hubKey = try hub.db.identity().publicKey, northKey = try north.db.identity().publicKey

        func claim(_ site: String, key: [UInt8], roster: UInt64) -> (Hello) -> Hello {
            { theirs in Hello(site: try! SiteID(site), role: .site, publicKey: key, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) },
                              time: TicketDatabase.systemMillis(), roster: theirs.roster) }
        }
        // 1. At north, posing as the hub with the hub's key (to get a proof over the hub's nonce): north
        //    sees that the key of the hello is not the one TLS proved, and writes no proof.
        let atNorth = try await attempt(northAddress, key: attacker, hello: claim("hub", key: hubKey, roster: 0))
        // 2. At the hub, posing as north with north's key, the relay's other half: refused the same way.
        let atHub = try await attempt(hubAddress, key: attacker, hello: claim("north", key: northKey, roster: 0))
        // 3. At the hub, as north with the attacker's own key: the roster lists another key for north.
        let ownKey = try await attempt(hubAddress, key: attacker, hello: claim("north", key: attacker.publicKey, roster: 0))
        for (name, frames) in [("north, as the hub", atNorth), ("the hub, as north", atHub), ("the hub, as north with its own key", ownKey)] {
            let errors = frames.compactMap { if case .error(let code, let message, _) = $0 { (code, message) } else { nil } }
            #expect(errors.map(\.0) == ["auth-failed"], "\(name): \(frames.map(\.type))")
            #expect(!frames.contains { if case .auth = $0 { true } else { false } }, "\(name): the node wrote a proof: \(frames.map(\.type))")
            #expect(!frames.contains { if case .vector = $0 { true } else { false } }, "\(name): the session opened")
            #expect(!frames.contains { if case .blocks = $0 { true } else { false } }, "\(name): blocks were sent")
        }
        #expect(atNorth.contains { if case .error(_, let message, _) = $0 { message.contains("not the key its TLS certificate proved") } else { false } })
        #expect(ownKey.contains { if case .error(_, let message, _) = $0 { message.contains("not the one the roster lists") } else { false } })
        // Nothing of the attempts reached the peer records; the two nodes still sync with each other.
        #expect(try hub.db.peers().isEmpty && north.db.peers().isEmpty)
        let laptop = try TestSite("laptop", role: .laptop)
        try admit(hub, north, laptop)
        #expect(try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: northAddress, logger: quietLogger()).completed)
        #expect(try laptop.db.tickets().filter { $0.subject.hasPrefix("north secret") }.count == 3)
        await hub.stop()
        await north.stop()
    }
}
