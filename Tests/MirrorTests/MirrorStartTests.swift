import Foundation
import Logging
import Testing
import TestSupport
import TicketModel
import TicketStore
@testable import Mirror

/// What a mirror reports before it has read PostgreSQL's cursors, how it retries, and what it
/// refuses, without PostgreSQL (the same against a real server: Tests/CLI/mirror-harden.sh).
struct MirrorStartTests {
    func mirror(_ store: TicketDatabase, schema: String = "tl") throws -> PostgresMirror {
        let target = try PostgresTarget(url: "postgres://m@127.0.0.1:1/db?sslmode=disable", schema: schema, environment: [:])
        return PostgresMirror(store: store, target: target, logger: Logger(label: "test"))
    }

    func storeWithTickets(_ count: Int) throws -> TicketDatabase {
        let store = try memoryStore("north")
        for n in 1...count { _ = try store.createTicket(TicketDraft(subject: "ticket \(n)")) }
        return store
    }

    /// Before: every block of the store was reported behind, as if nothing were mirrored.
    @Test func withoutAReportTheLagIsUnknownNotEverything() async throws {
        let mirror = try mirror(try storeWithTickets(5))
        let status = await mirror.startingStatus()
        #expect(status.behindBlocks == nil && status.behindSeconds == nil && !status.isLagKnown)
        // A failure before the first connection keeps it unknown.
        var failed = status
        failed.lastError = "cannot connect"
        #expect(await mirror.withLag(failed).behindBlocks == nil)
    }

    @Test func startsFromTheCursorsOfTheLastReportOfTheSameTarget() async throws {
        let store = try storeWithTickets(5)
        let mirror = try mirror(store)
        let site = try store.identity().site.rawValue
        var reported = MirrorStatus(target: mirror.target.description)
        reported.cursors = [site: 3]
        reported.behindBlocks = 0
        reported.behindSeconds = 0
        try MirrorReport(writtenAt: 1, status: reported).write(to: store)
        let status = await mirror.startingStatus()
        #expect(status.cursors == [site: 3] && status.behindBlocks == 2 && (status.behindSeconds ?? -1) >= 0)
        #expect(status.batches == 0 && !status.connected, "counts are this run's own")
        // Another schema's report says nothing of this one.
        let other = try self.mirror(store, schema: "other")
        #expect(await other.startingStatus().behindBlocks == nil)
        // Nor does a report whose lag was unknown itself.
        reported.behindBlocks = nil
        reported.behindSeconds = nil
        try MirrorReport(writtenAt: 2, status: reported).write(to: store)
        #expect(await mirror.startingStatus().behindBlocks == nil)
    }

    @Test func refusesAServerOlderThan12NamingItsVersion() throws {
        let target = try PostgresTarget(url: "postgres://m@db/r", schema: "tl", environment: [:])
        #expect(throws: Never.self) { try PostgresMirror.requireServerVersion(120_000, "12.0", target: target) }
        #expect(throws: Never.self) { try PostgresMirror.requireServerVersion(170_002, "17.2", target: target) }
        #expect {
            try PostgresMirror.requireServerVersion(110_022, "11.22", target: target)
        } throws: { error in
            let error = error as? MirrorError
            return error?.code == .oldServer && error!.detail.contains("11.22") && error!.detail.contains("PostgreSQL 12 or newer")
        }
    }

    @Test func retriesErrorsThatDoNotHealWithAGrowingCappedPause() throws {
        let service = MirrorService(mirror: try mirror(try memoryStore("north")), retry: .seconds(10), maxRetry: .seconds(300)) { _ in }
        // Lost connections and a busy schema: the quick pause, however often.
        for failures in [1, 5, 50] {
            #expect(service.pause(after: MirrorError(.postgres, "lost"), failures: failures) == .seconds(10))
            #expect(service.pause(after: MirrorError(.schemaBusy, "busy"), failures: failures) == .seconds(10))
        }
        let pauses = (1...8).map { service.pause(after: MirrorError(.badValue, "NaN"), failures: $0) }
        #expect(pauses == [10, 20, 40, 80, 160, 300, 300, 300].map { Duration.seconds($0) })
        #expect(service.pause(after: MirrorError(.newerSchema, "v9"), failures: 100) == .seconds(300))
    }
}
