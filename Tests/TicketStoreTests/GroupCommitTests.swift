import Foundation
import GRDB
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// A ticket as intake opens it, named by `n`.
private func intake(_ n: Int, message: String = "It does not start.") -> IntakeTicket {
    IntakeTicket(id: UUID(), draft: TicketDraft(subject: "Request \(n)", customer: "c-\(n)", channel: "chat", firstMessage: message),
                 messageID: UUID())
}

/// Holds the writer with a first write until `count` more wait, so they all land in the next batch:
/// which writes share a batch is then fixed, not left to the scheduler.
private func holdingWriter(_ commits: GroupCommit, until count: Int, _ submit: @escaping @Sendable () async -> Void) async throws {
    let gate = DispatchSemaphore(value: 0)
    let first = Task { try await commits.commit { _ in gate.wait() } }
    try await eventually(60, "the first write holds the writer") { await commits.batches > 0 }
    let writes = Task { await submit() }
    try await eventually(60, "\(count) writes wait behind it") { await commits.waitingWrites >= count }
    #expect(await commits.waitingWrites == count)
    gate.signal()
    try await first.value
    await writes.value
}

@Suite struct GroupCommitTests {
    /// Writes that wait during a commit share the next one; a write that throws is rolled back
    /// alone (its own savepoint) and its caller gets its error, while the others commit.
    @Test func writesThatWaitShareOneTransactionAndABadOneFailsAlone() async throws {
        let store = try memoryStore("north")
        let commits = GroupCommit(store: store)
        let outcomes = Outcomes()
        try await holdingWriter(commits, until: 21) {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<20 {
                    group.addTask {
                        do { await outcomes.add(n, .success(try await store.intakeCreate(intake(n), follow: nil, through: commits).ticket.subject)) }
                        catch { await outcomes.add(n, .failure(error)) }
                    }
                }
                group.addTask {
                    do {
                        _ = try await commits.commit { db in
                            // Half a write, then a refusal: the savepoint takes the half back.
                            try db.execute(sql: "INSERT INTO apiToken (name, hash, channels, createdAt) VALUES ('half', x'00', '', 0)")
                            throw StoreError(.invalidInput, "this write's own data is bad")
                        }
                        await outcomes.add(20, .success("written"))
                    } catch { await outcomes.add(20, .failure(error)) }
                }
            }
        }
        #expect(await commits.largestBatch == 21)
        let results = await outcomes.all
        #expect((0..<20).allSatisfy { (try? results[$0]?.get()) == "Request \($0)" })
        #expect((results[20].map { if case .failure(let error as StoreError) = $0 { error.code == .invalidInput } else { false } }) == true)
        #expect(Set(try store.tickets().map(\.subject)) == Set((0..<20).map { "Request \($0)" }))
        #expect(try store.apiTokens().isEmpty)
    }

    /// A full disk (SQLite's page limit stands in for it: the same SQLITE_FULL) fails the batch as a
    /// whole: every write in it gets the error, and nothing of it is stored, not even the writes
    /// that came before the one that ran out of room.
    @Test func aFullDiskFailsEveryWriteOfTheBatchAndStoresNothing() async throws {
        let store = try memoryStore("north")
        try await fillDisk(store)
        let commits = GroupCommit(store: store)
        let outcomes = Outcomes()
        let long = String(repeating: "A long message that needs new pages. ", count: 400)
        try await holdingWriter(commits, until: 8) {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<8 {
                    group.addTask {
                        do { await outcomes.add(n, .success(try await store.intakeCreate(intake(n, message: n == 7 ? long : "short"), follow: nil, through: commits).ticket.subject)) }
                        catch { await outcomes.add(n, .failure(error)) }
                    }
                }
            }
        }
        #expect(await commits.largestBatch == 8)
        let results = await outcomes.all
        for n in 0..<8 {
            guard case .failure(let error)? = results[n] else { Issue.record("write \(n) was not refused: \(String(describing: results[n]))"); continue }
            #expect(StorageFailure(error) == .full, "\(error)")
        }
        #expect(try store.tickets().isEmpty)
    }

    /// Runs three intake writes and `breaking` in one batch, and returns each one's outcome.
    private func batchWithOneBreakingWrite(_ store: TicketDatabase, _ breaking: @escaping @Sendable (Database) throws -> Void) async throws -> [Int: Result<String, any Error>] {
        let commits = GroupCommit(store: store)
        let outcomes = Outcomes()
        try await holdingWriter(commits, until: 4) {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<3 {
                    group.addTask {
                        do { await outcomes.add(n, .success(try await store.intakeCreate(intake(n), follow: nil, through: commits).ticket.subject)) }
                        catch { await outcomes.add(n, .failure(error)) }
                    }
                }
                group.addTask {
                    do {
                        _ = try await commits.commit(breaking)
                        await outcomes.add(3, .success("written"))
                    } catch { await outcomes.add(3, .failure(error)) }
                }
            }
        }
        // Nothing of the batch is stored, and the writer is free again.
        #expect(try store.tickets().isEmpty)
        #expect(try await store.intakeCreate(intake(9), follow: nil, through: commits).ticket.subject == "Request 9")
        return await outcomes.all
    }

    /// A batch whose transaction ends for a transient reason (here a write that found the store
    /// busy after the transaction was gone) fails as a whole: every write in it is told so as
    /// ``GroupCommit/Refusal/aborted`` (503 at the intake API: retry), not as a fault of its data.
    @Test func aBatchEndedByABusyStoreFailsAsAborted() async throws {
        let store = try memoryStore("north")
        let results = try await batchWithOneBreakingWrite(store) { db in
            try db.execute(sql: "ROLLBACK")
            throw DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked")
        }
        for n in 0..<4 {
            guard case .failure(let error)? = results[n] else { Issue.record("write \(n) was not refused: \(String(describing: results[n]))"); continue }
            #expect(StorageFailure(error) == .aborted, "\(error)")
        }
    }

    /// Any other end (here a write that rolled the transaction back itself) is not called transient:
    /// every write gets SQLite's error as it is (a 500 at the intake API, logged), and nothing is stored.
    @Test func aBatchEndedForAnotherReasonReportsThatReason() async throws {
        let store = try memoryStore("north")
        let results = try await batchWithOneBreakingWrite(store) { db in try db.execute(sql: "ROLLBACK") }
        for n in 0..<4 {
            guard case .failure(let error)? = results[n] else { Issue.record("write \(n) was not refused: \(String(describing: results[n]))"); continue }
            #expect(StorageFailure(error) == nil, "\(error)")
            #expect(error is DatabaseError, "\(error)")
        }
    }

    /// Past `maxWaiting` writes waiting, a write is refused at once instead of queued; the ones
    /// that waited commit when the writer is free.
    @Test func writesPastTheWaitingLimitAreRefusedAtOnce() async throws {
        let store = try memoryStore("north")
        let commits = GroupCommit(store: store, maxWaiting: 3)
        let outcomes = Outcomes()
        let gate = DispatchSemaphore(value: 0)
        let first = Task { try await commits.commit { _ in gate.wait() } }
        try await eventually(60, "the first write holds the writer") { await commits.batches > 0 }
        let writes = Task {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<5 {
                    group.addTask {
                        do { await outcomes.add(n, .success(try await store.intakeCreate(intake(n), follow: nil, through: commits).ticket.subject)) }
                        catch { await outcomes.add(n, .failure(error)) }
                    }
                }
            }
        }
        try await eventually(60, "three writes wait and two are refused") {
            let refused = await outcomes.all.count, waiting = await commits.waitingWrites
            return refused == 2 && waiting == 3
        }
        gate.signal()
        try await first.value
        await writes.value
        let results = await outcomes.all.values
        #expect(results.filter { if case .failure(let error) = $0 { StorageFailure(error) == .overloaded } else { false } }.count == 2)
        #expect(results.filter { if case .success = $0 { true } else { false } }.count == 3)
        #expect(try store.tickets().count == 3)
    }

    /// With room again, the same writer commits: a failed batch leaves no transaction open.
    @Test func theWriterCommitsAgainAfterAFailedBatch() async throws {
        let store = try memoryStore("north")
        let commits = GroupCommit(store: store)
        await #expect(throws: StoreError.self) { try await commits.commit { _ in throw StoreError(.invalidInput, "bad") } }
        let record = try await store.intakeCreate(intake(1), follow: nil, through: commits)
        #expect(try store.ticket(record.ticket.id).subject == "Request 1")
        // A redelivery in a later batch finds the ticket: nothing is written twice.
        let again = try await store.intakeCreate(IntakeTicket(id: UUID(uuidString: record.ticket.id)!, draft: intake(1).draft, messageID: UUID()),
                                                 follow: nil, through: commits)
        #expect(again.duplicate)
        #expect(try store.tickets().count == 1)
    }
}

private actor Outcomes {
    var all: [Int: Result<String, any Error>] = [:]
    func add(_ n: Int, _ outcome: Result<String, any Error>) { all[n] = outcome }
}

/// A redelivered intake message is found whatever else took its id: store migration v27 keeps
/// attribution events out of the index the check reads first.
@Suite struct RedeliveryTests {
    /// A store holding ticket `ticket`, and a peer whose block puts an attribution event with the id
    /// `taken` on ticket `on` (ids of intake messages are name-based, so a member can know one).
    private func store(attributionWithID taken: UUID, on: (UUID, UUID) -> UUID) throws -> (TicketDatabase, ticket: UUID, other: UUID) {
        let north = try makeStore("north")
        var south = SimSite("south")
        try trust(north, [south])
        let ticket = try north.createTicket(TicketDraft(subject: "Printer offline")).id
        let other = try north.createTicket(TicketDraft(subject: "VPN down")).id
        let ids = (try #require(UUID(uuidString: ticket)), try #require(UUID(uuidString: other)))
        south.receive(try north.blocks(after: VersionVector()))
        let block = south.write([message(on(ids.0, ids.1), taken, .attribution, body: "")])
        #expect(try north.apply([block]).refused.isEmpty)
        return (north, ids.0, ids.1)
    }

    @Test func aMessageWhoseIdAnAttributionOfItsTicketTookIsNotAppendedAgainUnseen() throws {
        let id = UUID()
        let (north, ticket, _) = try store(attributionWithID: id, on: { ticket, _ in ticket })
        let blocks = try north.vector()
        let message = TicketEvent(id: id, kind: .customerMessage, actor: "c-1", visibility: .public, body: "Still broken.")
        for _ in 0..<2 {
            let answer = try north.intakeAppend(ticket, message: message)
            #expect(answer.duplicate && answer.ticket.id == ticket.lowercaseText)
        }
        #expect(try north.vector() == blocks)
    }

    @Test func aMessageWhoseIdAnAttributionOfAnotherTicketTookIsStoredOnce() throws {
        let id = UUID()
        let (north, ticket, _) = try store(attributionWithID: id, on: { _, other in other })
        let message = TicketEvent(id: id, kind: .customerMessage, actor: "c-1", visibility: .public, body: "Still broken.")
        #expect(try !north.intakeAppend(ticket, message: message).duplicate)
        let again = try north.intakeAppend(ticket, message: message)
        #expect(again.duplicate && again.ticket.id == ticket.lowercaseText)
        #expect(try north.detail(ticket.lowercaseText).events.filter { $0.body == "Still broken." }.count == 1)
    }
}
