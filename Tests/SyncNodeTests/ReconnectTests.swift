import Foundation
import InMemoryLogging
import NIOCore
import NIOPosix
@testable import SyncNode
import TestSupport
import Testing
import TicketModel
import TicketStore

/// The dialer's backoff (issue 22): it grows only while nobody answers, an answer keeps it short,
/// and `reconnectNow()` (SIGHUP) dials at once.
@Suite struct ReconnectBackoffTests {
    /// Always the longest wait the jitter allows, so each delay is the backoff itself.
    let longest: (ClosedRange<Int>) -> Int = { $0.upperBound }

    @Test func silenceDoublesUpToTheMaximum() {
        var backoff = ReconnectBackoff(minMillis: 250, maxMillis: 30_000)
        let waits = (0..<10).map { _ in backoff.delay(after: .silent, random: longest) }
        #expect(waits == [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
    }

    @Test func aHostThatAnswersIsRetriedWithinAFewSecondsWhateverCameBefore() {
        var backoff = ReconnectBackoff(minMillis: 250, maxMillis: 30_000)
        for _ in 0..<10 { _ = backoff.delay(after: .silent, random: longest) }
        // The hub is back (its port refuses or its handshake answers): no more 30 s waits.
        let answered = (0..<4).map { _ in backoff.delay(after: .answered, random: longest) }
        #expect(answered.allSatisfy { $0 <= ReconnectBackoff.answeredCapMillis })
        // A site refused (not yet in the hub's roster) is retried every few seconds at most.
        var refused = ReconnectBackoff(minMillis: 250, maxMillis: 30_000)
        let waits = (0..<8).map { _ in refused.delay(after: .answered, random: longest) }
        #expect(waits == [250, 500, 1000, 2000, 4000, 5000, 5000, 5000])
    }

    @Test func progressAndResetStartFromTheMinimum() {
        var backoff = ReconnectBackoff(minMillis: 250, maxMillis: 30_000)
        for _ in 0..<10 { _ = backoff.delay(after: .silent, random: longest) }
        #expect(backoff.delay(after: .progressed, random: longest) == 250)
        for _ in 0..<10 { _ = backoff.delay(after: .silent, random: longest) }
        backoff.reset()
        #expect(backoff.delay(after: .silent, random: longest) == 250)
    }

    @Test func aMinimumAboveTheAnswerCapIsKept() {
        var backoff = ReconnectBackoff(minMillis: 600_000, maxMillis: 600_000)
        #expect(backoff.delay(after: .answered, random: longest) == 600_000)
        #expect(backoff.delay(after: .answered) { $0.lowerBound } == 300_000)
    }

    @Test func aRefusedConnectionIsAnAnswerAndATimeoutIsNot() {
        #expect(SocketFailure.isAnswer(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(!SocketFailure.isAnswer(IOError(errnoCode: ETIMEDOUT, reason: "connect")))
        #expect(!SocketFailure.isAnswer(ChannelError.connectTimeout(.seconds(5))))
        #expect(SocketFailure.connecting(to: "127.0.0.1:7499", IOError(errnoCode: ECONNREFUSED, reason: "connect"))
                == "could not connect to 127.0.0.1:7499: connection refused; is `tierline serve` listening there?")
        #expect(SocketFailure.connecting(to: "10.9.9.9:7400", ChannelError.connectTimeout(.seconds(5))).contains("no answer within 5 s (timed out)"))
        #expect(SocketFailure.connecting(to: "10.9.9.9:7400", IOError(errnoCode: EHOSTUNREACH, reason: "connect")).contains("no route to the host"))
        let busy = IOError(errnoCode: EADDRINUSE, reason: "bind(descriptor:ptr:bytes:)")
        #expect(SocketFailure.binding("0.0.0.0:7400", setting: "--listen", busy)
                == "cannot listen on 0.0.0.0:7400: the address is already in use (another node or program listens there); stop it, or choose another port with --listen")
        // Not a bind: the caller keeps its own wording.
        #expect(SocketFailure.binding("0.0.0.0:7400", setting: "--listen", ChannelError.ioOnClosedChannel) == nil)
    }
}

@Suite(.serialized) struct ReconnectNodeTests {
    /// A port nothing listens on now (bound, then closed), below the kernel's ephemeral range: the
    /// test leaves it unbound until the hub starts, and a port the kernel hands out for another
    /// test's bind to port 0, or for an outgoing connection, could be taken meanwhile (it was, once,
    /// under `swift test --parallel`: "Address already in use").
    func freePort() async throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
        let below = max(12_000, range ?? 32_768)
        for _ in 0..<100 {
            let port = Int.random(in: 10_000..<below)
            guard let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
            else { continue }
            try await channel.close()
            return port
        }
        struct NoFreePort: Error {}
        throw NoFreePort()
    }

    @Test func reconnectNowDialsAPeerThatCameBackWithoutWaitingOutTheBackoff() async throws {
        let hub = try TestSite("hub", role: .coordinator), north = try TestSite("north")
        try admit(hub, north)
        let port = try await freePort()
        let hubAddress = Endpoint(host: "127.0.0.1", port: port)
        let log = CapturedLog()
        // A backoff of ten minutes: without reconnectNow, no second attempt within this test's bounds.
        try await north.start(listen: false, peers: [hubAddress], logger: log.logger) {
            ($0.reconnectMinMillis, $0.reconnectMaxMillis) = (600_000, 600_000)
        }
        defer { Task { await north.stop(); await hub.stop() } }
        try await eventually(60, "the first attempt failed and north reports it waits") {
            try north.db.nodeLinks()?.dialed.first?.state == "waiting"
        }
        let waiting = try #require(try north.db.nodeLinks()?.dialed.first)
        #expect(waiting.lastError?.contains("connection refused") == true)
        #expect(!waiting.everConnected)
        try await hub.start { $0.listen = hubAddress }
        #expect(north.node != nil)
        north.node?.reconnectNow()
        do {
            try await eventually(60, "north dialed the hub after reconnectNow") {
                try north.db.peers().contains { $0.site.rawValue == "hub" }
            }
        } catch {
            Issue.record("north's log: \(log.handler.entries.map { "\($0.message)" })")
            throw error
        }
        try await eventually(60, "north reports the session open") {
            try north.db.nodeLinks()?.connected == ["hub"]
        }
    }
}
