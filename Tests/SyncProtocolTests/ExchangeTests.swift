import Logging
import SyncProtocol
import SyncWire
import Testing
import TestSupport
import TicketModel

@Suite struct ExchangeTests {
    let now = Moment(now: t0)

    /// Blocks written by `site`.
    func blocks(_ count: Int, of name: String = "branch") -> [Block] {
        var site = SimSite(name)
        return (0..<count).map { site.write(create(ticketID(UInt8($0 + 1)), number: UInt64($0 + 1))) }
    }

    func page(_ blocks: [Block]) -> [PageBlock] { blocks.map { PageBlock(origin: $0.origin, seq: $0.seq, bytes: $0.bytes) } }

    func encoded(_ blocks: [Block], batch: UInt64) -> SessionMachine.SendEvent {
        .answer(.encoded(OutgoingBatch(try! ChangeSet.encode(blocks, batch: batch, keys: [:]))))
    }

    func batch(_ number: UInt64, _ blocks: [Block]) -> BlockBatch {
        BlockBatch(batch: number, blocks: blocks, keys: [:], size: 100, wireBytes: 100)
    }

    // MARK: Receiving batches

    @Test func aBatchIsAppliedThenAcknowledged() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        let sent = blocks(2, of: "hub")
        #expect(machine.receive(.batchArrived(1), at: now) == [.prepareBatch])
        #expect(machine.receive(.batchReady(batch(1, sent)), at: now) == [.applyBatch])
        let vector = VersionVector([hub: 2])
        let actions = machine.receive(.batchApplied(batch(1, sent), .init(applied: 2, vector: vector, keys: [hub: hubKey.publicKey])), at: now)
        #expect(actions == [.reportProgress, .send(.ack(Ack(batch: 1, vector: vector, applied: 2, held: 0, refused: 0))), .signalAll])
        #expect(machine.tally.receivedBlocks == 2 && machine.tally.applied == 2 && machine.isDirty)
        // Its ack may still be on its way out: a frame after it waits until the batches are drained.
        #expect(machine.receive(.frame(.ping(id: 1, time: t0)), at: now) == [.drainBatches])
        #expect(machine.receive(.drained, at: now) == [.send(.pong(id: 1, time: t0))])
    }

    @Test func aFrameAfterBatchesWaitsForTheirAcks() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        #expect(machine.receive(.batchArrived(1), at: now) == [.prepareBatch])
        #expect(machine.receive(.batchArrived(2), at: now) == [.prepareBatch])
        // The ping is held until both batches are in the store.
        #expect(machine.receive(.frame(.ping(id: 4, time: t0)), at: now) == [.drainBatches])
        for number in UInt64(1)...2 {
            _ = machine.receive(.batchReady(batch(number, [])), at: now)
            let acked = machine.receive(.batchApplied(batch(number, []), .init(applied: 0, vector: VersionVector(), keys: [:])), at: now)
            #expect(acked.frames == [.ack(Ack(batch: number, vector: VersionVector(), applied: 0, held: 0, refused: 0))])
        }
        #expect(machine.receive(.drained, at: Moment(now: t0 + 5)) == [.send(.pong(id: 4, time: t0 + 5))])
        // With nothing pending, a frame is handled at once.
        #expect(machine.receive(.frame(.ping(id: 5, time: t0)), at: now) == [.send(.pong(id: 5, time: t0))])
    }

    @Test func batchesOutOfOrderAreRefused() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        #expect(machine.receive(.batchArrived(2), at: now)
                == [.fail(WireError(.badBatch, "batch 2 arrived where batch 1 was due"))])
    }

    @Test func refusedBlocksAreReportedAndTheSessionGoesOn() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        _ = machine.receive(.batchArrived(1), at: now)
        let applied = SessionMachine.Applied(applied: 0, refused: ["hub seq 1: bad-signature"], vector: VersionVector(), keys: [:])
        let actions = machine.receive(.batchApplied(batch(1, blocks(1, of: "hub")), applied), at: now)
        #expect(actions.failures == [.blockRefused])
        #expect(machine.tally.refused == 1)
        #expect(machine.receive(.batchArrived(2), at: now) == [.prepareBatch], "a refused block is not fatal")
    }

    // MARK: Sending

    @Test func theSenderPagesThenSaysSyncedAndCountsAcks() {
        var machine = makeMachine(branch, window: 4)
        open(&machine, with: makeHello(hub))
        let own = blocks(3)
        let vector = VersionVector([branch: 3])
        #expect(machine.send(.wake, at: now) == [.ask(.rosterVersion)])
        #expect(machine.send(.answer(.rosterVersion(1)), at: now)
                == [.ask(.page(after: VersionVector(), snapshot: true, awaitingFor: nil))])
        #expect(machine.send(.answer(.page(.init(awaiting: nil, vector: vector), page(own))), at: now) == [.ask(.encode(page(own), batch: 1))])
        let sent = machine.send(encoded(own, batch: 1), at: now)
        guard case .sendBatch(let outgoing)? = sent.first else {
            Issue.record("expected a batch, got \(sent)")
            return
        }
        #expect(outgoing.encoded.batch == 1 && outgoing.encoded.blockCount == 3)
        // What was sent is never asked for again.
        #expect([Action](sent.dropFirst()) == [.reportProgress, .ask(.page(after: vector, snapshot: true, awaitingFor: nil))])
        #expect(machine.send(.answer(.page(.init(awaiting: nil, vector: vector), [])), at: now) == [.send(.synced(vector, awaiting: nil)), .idle])
        #expect(machine.tally.sentBlocks == 3 && machine.tally.sentBatches == 1)

        // Acks come in order, for batches sent.
        let ack = Ack(batch: 1, vector: vector, applied: 3, held: 0, refused: 0)
        #expect(machine.receive(.frame(.ack(ack)), at: now) == [.wakeSender])
        let twice = machine.receive(.frame(.ack(Ack(batch: 2, vector: vector, applied: 0, held: 0, refused: 0))), at: now)
        #expect(twice == [.fail(WireError(.unexpectedFrame, "ack of batch 2 where batch 2 was the oldest unacknowledged"))])
    }

    @Test func theWindowBoundsBatchesInFlight() {
        var machine = makeMachine(branch, window: 1)
        open(&machine, with: makeHello(hub))
        let own = blocks(2)
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        _ = machine.send(.answer(.page(nil, page(Array(own.prefix(1))))), at: now)
        let sent = machine.send(encoded(Array(own.prefix(1)), batch: 1), at: now)
        #expect(sent.last == .idle, "no page is asked for while the window is full: \(sent)")
        #expect(machine.send(.wake, at: now) == [.ask(.rosterVersion)])
        #expect(machine.send(.answer(.rosterVersion(1)), at: now) == [.idle])
    }

    @Test func aRosterEditedDuringTheSessionIsSentAndCanEndIt() {
        var machine = makeMachine(hub)
        open(&machine, with: makeHello(branch))
        _ = machine.send(.wake, at: now)
        #expect(machine.send(.answer(.rosterVersion(2)), at: now) == [.ask(.membership)])
        let removing = signedRoster(version: 2, branchRemoved: true)
        let actions = machine.send(membership(removing).sendAnswer, at: now)
        #expect(actions == [.send(.roster(document: removing.document, signature: removing.signature)),
                            .fail(WireError(.authFailed, "site branch was removed from the roster (version 2); ending the session"))])
    }

    @Test func aOneShotSessionSaysByeWhenBothSidesAreDone() {
        var machine = makeMachine(branch, mode: .oneShot)
        open(&machine, with: makeHello(hub))
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        #expect(machine.send(.answer(.page(.init(awaiting: nil, vector: VersionVector()), [])), at: now) == [.send(.synced(VersionVector(), awaiting: nil)), .idle])
        _ = machine.receive(.frame(.synced(VersionVector(), awaiting: nil)), at: now)
        _ = machine.receive(.answer(.witnessed(false)), at: now)
        #expect(machine.receive(.answer(.ownSequenceConfirmed(false)), at: now) == [.wakeSender])
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        #expect(machine.send(.answer(.page(nil, [])), at: now) == [.stopSending(bye: "sync complete", completed: true)])
        #expect(machine.receive(.frame(.bye(reason: "sync complete")), at: now).last == .finishReading(completed: true))
    }

    @Test func aOneShotSessionThatEndsEarlyIsNotComplete() {
        var machine = makeMachine(branch, mode: .oneShot)
        open(&machine, with: makeHello(hub))
        #expect(machine.receive(.peerClosed, at: now)
                == [.end(SessionEnded(error: WireError(.connectionLost, "the peer closed the connection before the exchange finished"), fromPeer: false))])
    }

    @Test func blocksThePeerDidNotApplyMakeAOneShotSyncIncomplete() {
        var machine = makeMachine(branch, mode: .oneShot)
        open(&machine, with: makeHello(hub))
        let own = blocks(2)
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        _ = machine.send(.answer(.page(nil, page(own))), at: now)
        _ = machine.send(encoded(own, batch: 1), at: now)
        // The peer acknowledges the batch but holds one block back.
        _ = machine.receive(.frame(.ack(Ack(batch: 1, vector: VersionVector([branch: 1]), applied: 1, held: 1, refused: 0))), at: now)
        let (ending, completed) = machine.conclude(nil, completed: true, copiedRefusal: nil)
        #expect(!completed)
        #expect(ending?.error.code == .blockRefused && ending?.fromPeer == true)
        #expect(ending?.error.detail.hasPrefix("the peer did not apply 1 of the blocks sent to it") == true)
    }

    // MARK: Forks

    @Test func aDifferingHeadIsAnsweredWithForkEvidenceAndLeftOut() {
        var machine = makeMachine(branch, mode: .oneShot)
        let ours = blocks(1, of: "third")[0]
        let opened = open(&machine, with: makeHello(hub), opening: .init(evidence: [ours, ours], vector: VersionVector([ours.origin: 1]), keys: [:]))
        #expect(opened.frames == [.fork(ours)], "evidence goes once per origin, before anything else")
        // The left-out origin is never sent.
        _ = machine.send(.wake, at: now)
        let pageAsked = machine.send(.answer(.rosterVersion(1)), at: now)
        guard case .ask(.page(let after, _, _))? = pageAsked.last else {
            Issue.record("expected a page, got \(pageAsked)")
            return
        }
        #expect(after[ours.origin] == UInt64(Int64.max))
        let (ending, completed) = machine.conclude(nil, completed: true, copiedRefusal: nil)
        #expect(!completed && ending?.error.code == .diverged)
    }

    @Test func forkEvidenceOfTheSitesThemselvesEndsTheSession() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        let theirs = blocks(1, of: "hub")[0]
        var other = SimSite("hub")
        let ours = other.write(create(ticketID(9), number: 9))
        #expect(machine.receive(.frame(.fork(theirs)), at: now) == [.ask(.recordFork(theirs, peer: hub, now: t0))])
        let fork = HistoryFork(origin: hub, seq: 1, ourHash: ours.hash, theirHash: theirs.hash)
        #expect(machine.receive(.answer(.fork(.recorded(fork))), at: now) == [.ask(.storedBlock(origin: hub, seq: 1))])
        let actions = machine.receive(.answer(.storedBlock(ours)), at: now)
        #expect(actions.frames.first == .fork(ours))
        #expect(actions.failures == [.diverged])
        #expect(actions.failureDetail.hasPrefix("hub wrote two different blocks at seq 1"))
    }

    @Test func forkEvidenceOfAThirdSiteStopsOnlyThatSite() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        let theirs = blocks(1, of: "third")[0]
        _ = machine.receive(.frame(.fork(theirs)), at: now)
        _ = machine.receive(.answer(.fork(.recorded(HistoryFork(origin: theirs.origin, seq: 1, ourHash: [1], theirHash: theirs.hash)))), at: now)
        let actions = machine.receive(.answer(.storedBlock(nil)), at: now)
        #expect(actions.failures == [])
        guard case .error(let code, _, let fatal)? = actions.frames.last else {
            Issue.record("expected an error frame, got \(actions)")
            return
        }
        #expect(code == "diverged" && !fatal)
        #expect(machine.receive(.frame(.ping(id: 1, time: t0)), at: now).frames == [.pong(id: 1, time: t0)], "the session goes on")
    }

    @Test func eachSideWaitsForItsOwnAnswer() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        let theirs = blocks(1, of: "hub")[0]
        // The reader waits for the store to record a fork while the sender pages.
        #expect(machine.receive(.frame(.fork(theirs)), at: now) == [.ask(.recordFork(theirs, peer: hub, now: t0))])
        #expect(machine.send(.wake, at: now) == [.ask(.rosterVersion)])
        #expect(machine.send(.answer(.rosterVersion(1)), at: now) == [.ask(.page(after: VersionVector(), snapshot: true, awaitingFor: nil))])
        #expect(machine.receive(.answer(.fork(.nothingHeld)), at: now).count == 1)
        #expect(machine.send(.answer(.page(.init(awaiting: nil, vector: VersionVector()), [])), at: now)
                == [.send(.synced(VersionVector(), awaiting: nil)), .idle])
        // An answer nobody asked for is not taken for another side's.
        #expect(machine.receive(.answer(.rosterVersion(1)), at: now) == [])
    }

    @Test func unsignedForkEvidenceIsRefused() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        let forged = blocks(1, of: "hub")[0]
        _ = machine.receive(.frame(.fork(forged)), at: now)
        #expect(machine.receive(.answer(.fork(.notSigned)), at: now).failures == [.authFailed])
    }

    // MARK: Restores

    @Test func theCoordinatorTellsARestoredSiteWhomItAwaits() {
        var machine = makeMachine(hub)
        open(&machine, with: makeHello(branch, restored: 5))
        let vector = VersionVector([hub: 1])
        let third = try! SiteID("third")
        _ = machine.send(.wake, at: now)
        #expect(machine.send(.answer(.rosterVersion(1)), at: now) == [.ask(.page(after: VersionVector(), snapshot: true, awaitingFor: branch))])
        #expect(machine.send(.answer(.page(.init(awaiting: [third], vector: vector), [])), at: now) == [.send(.synced(vector, awaiting: [third])), .idle])
        // While someone is awaited, every pass reads the list again and says `synced` when it shrinks.
        _ = machine.send(.wake, at: now)
        #expect(machine.send(.answer(.rosterVersion(1)), at: now) == [.ask(.page(after: VersionVector(), snapshot: true, awaitingFor: branch))])
        #expect(machine.send(.answer(.page(.init(awaiting: [third], vector: vector), [])), at: now) == [.idle], "the same list is not sent twice")
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        #expect(machine.send(.answer(.page(.init(awaiting: [], vector: vector), [])), at: now) == [.send(.synced(vector, awaiting: [])), .idle])
        _ = machine.send(.wake, at: now)
        #expect(machine.send(.answer(.rosterVersion(1)), at: now) == [.ask(.page(after: VersionVector(), snapshot: false, awaitingFor: branch))])
    }

    @Test func aPeersSyncedMakesItAWitnessOnlyIfItsSessionWasWhole() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub), restoreEpoch: 1)
        let vector = VersionVector([hub: 4])
        #expect(machine.receive(.frame(.synced(vector, awaiting: [branch])), at: Moment(now: t0, restoreEpoch: 1)) == [.ask(.witness(hub))])
        #expect(machine.receive(.answer(.witnessed(true)), at: now)
                == [.signalAll, .ask(.confirmOwnSequence(vector, peerRole: .coordinator, awaiting: [branch]))])
        #expect(machine.receive(.answer(.ownSequenceConfirmed(true)), at: now)
                == [.log(.notice, "restored store learned its own highest block from the peer; local writes resume", ["seq": "0"]), .wakeSender])

        // Opened before the coordinator's latest watch: no witness.
        var stale = makeMachine(branch)
        open(&stale, with: makeHello(hub), restoreEpoch: 1)
        #expect(stale.receive(.frame(.synced(vector, awaiting: nil)), at: Moment(now: t0, restoreEpoch: 2))
                == [.ask(.confirmOwnSequence(vector, peerRole: .coordinator, awaiting: nil))])
    }

    @Test func aLiveSessionOpenedBeforeANewRestoreEndsForAFreshSync() {
        var machine = makeMachine(branch)
        open(&machine, with: makeHello(hub))
        _ = machine.send(.wake, at: now)
        _ = machine.send(.answer(.rosterVersion(1)), at: now)
        _ = machine.send(.answer(.page(.init(awaiting: nil, vector: VersionVector()), [])), at: now)
        _ = machine.receive(.frame(.synced(VersionVector(), awaiting: nil)), at: now)
        #expect(machine.send(.wake, at: Moment(now: t0, restoreEpoch: 1))
                == [.stopSending(bye: "a restored site needs a fresh sync from every member", completed: false)])
        #expect(machine.send(.wake, at: Moment(now: t0, isShuttingDown: true)) == [.stopSending(bye: "node shutting down", completed: false)])
    }

    // MARK: Pings

    @Test func theHellosGiveTheFirstSkewAndPongsRefineIt() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: 1_000)
        // The peer's clock read 5000 at the midpoint of 1000…1200 on ours.
        _ = machine.receive(.frame(.hello(makeHello(hub, time: 5_000))), at: Moment(now: 1_200))
        _ = machine.receive(membership(), at: Moment(now: 1_200))
        #expect(machine.tally.skewMillis == 3_900)

        // A silent half of the idle timeout: a ping, not an error.
        let silence = WireError(.timeout, "no line for 22 s")
        #expect(machine.receive(.invalid(silence), at: Moment(now: 2_000)) == [.send(.ping(id: 1, time: 2_000))])
        _ = machine.receive(.frame(.pong(id: 7, time: 1)), at: Moment(now: 2_100))
        #expect(machine.tally.skewMillis == 3_900, "a pong to no ping of ours changes nothing")
        _ = machine.receive(.frame(.pong(id: 1, time: 9_000)), at: Moment(now: 2_400))
        #expect(machine.tally.skewMillis == 6_800)
    }

    @Test func aSecondSilenceWithoutAnswerEndsTheSession() {
        var machine = makeMachine(branch)
        let silence = WireError(.timeout, "no line for 22 s")
        #expect(machine.receive(.invalid(silence), at: now).frames.count == 1)
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0 + 22_500)) == [.fail(silence)])

        // Anything heard in between starts the count again.
        var heard = makeMachine(branch)
        _ = heard.receive(.invalid(silence), at: now)
        _ = heard.receive(.frame(.ping(id: 1, time: t0)), at: now)
        #expect(heard.receive(.invalid(silence), at: Moment(now: t0 + 22_500)).frames.count == 1)
    }

    /// Guard events queued while this side did not read (the session's task started late, or the
    /// scheduler was starved) come one after the other: the peer, waiting for this side, was never
    /// given its ping's half to answer, so only the first counts, until that half has passed.
    @Test func silencesQueuedWhileThisSideDidNotReadEndNothing() {
        var machine = makeMachine(branch)
        _ = machine.start(roster: 1, restored: nil, at: t0)
        let silence = WireError(.timeout, "no line for 22 s")
        #expect(machine.receive(.invalid(silence), at: now) == [.send(.ping(id: 1, time: t0))])
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0 + 5)).isEmpty)
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0 + 20_249)).isEmpty)
        // The peer's hello, read after them, opens the handshake as ever.
        _ = machine.receive(.frame(.hello(makeHello(hub))), at: Moment(now: t0 + 20_249))
        #expect(machine.receive(membership(), at: Moment(now: t0 + 20_249)).frames.contains { if case .auth = $0 { true } else { false } })
        // The guard's next event, a period after the one that pinged, ends a session whose peer never
        // answered, even a little early by this side's clock (it handled the first one late).
        var silent = makeMachine(branch)
        _ = silent.receive(.invalid(silence), at: now)
        _ = silent.receive(.invalid(silence), at: Moment(now: t0 + 10))
        #expect(silent.receive(.invalid(silence), at: Moment(now: t0 + 20_250)) == [.fail(silence)])
        // A first event handled late (a starved side pings 2.5 s after it came) drops the next, due
        // 20 s after the ping; the one after that ends the session.
        var late = makeMachine(branch)
        _ = late.receive(.invalid(silence), at: Moment(now: t0 + 2_500))
        #expect(late.receive(.invalid(silence), at: Moment(now: t0 + 22_500)).isEmpty)
        #expect(late.receive(.invalid(silence), at: Moment(now: t0 + 45_000)) == [.fail(silence)])
    }

    /// Silences are measured by the clock that does not jump: a wall clock stepped forward between
    /// the guard's ping and a guard event queued behind it does not make that event fatal.
    @Test func theWallClockStepsNotTheSilence() {
        var machine = makeMachine(branch)
        let silence = WireError(.timeout, "no line for 22 s")
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0, uptimeMillis: 1_000)).frames.count == 1)
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0 + 3_600_000, uptimeMillis: 1_003)).isEmpty)
        #expect(machine.receive(.invalid(silence), at: Moment(now: t0 - 3_600_000, uptimeMillis: 23_500)) == [.fail(silence)])
    }

    @Test func aQuietSenderPingsAfterTheInterval() {
        var machine = makeMachine(branch, pingInterval: 15_000)
        open(&machine, with: makeHello(hub))
        machine.noteWrite(at: t0)
        for quiet in [UInt64(14_999), 15_000] {
            _ = machine.send(.wake, at: Moment(now: t0 + quiet))
            _ = machine.send(.answer(.rosterVersion(1)), at: Moment(now: t0 + quiet))
            let actions = machine.send(.answer(.page(.init(awaiting: nil, vector: VersionVector()), [])), at: Moment(now: t0 + quiet))
            let pinged = actions.frames.contains { if case .ping = $0 { true } else { false } }
            #expect(pinged == (quiet >= 15_000), "quiet \(quiet) ms: \(actions)")
            #expect(actions.last == .idle)
        }
    }
}

extension SessionMachine.Event {
    /// The same answer, for the sending side.
    var sendAnswer: SessionMachine.SendEvent {
        guard case .answer(let answer) = self else { return .wake }
        return .answer(answer)
    }
}
