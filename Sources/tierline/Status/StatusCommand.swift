import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Mirror
import Prometheus
import ServiceLifecycle
import UnixSignals
import SyncNode
import TicketModel
import TicketStore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "This store's peers: when each was last seen, what each lacks from us and we from it, clock skew.")

    @OptionGroup var options: StoreOptions

    struct Output: Encodable {
        var site: String
        var role: String
        /// This site's public key, for the coordinator's `roster add`.
        var publicKey: String
        var vector: VersionVector
        /// Set while a store restored from a backup waits for a sync to learn its own highest block.
        @NullEncoded var restoredAt: Date?
        /// While restored: the sites still to be heard from before local writes resume.
        @NullEncoded var restoreAwaiting: [String]?
        var pendingBlocks: [Pending]
        var peers: [Peer]
        /// The roster version held (0: none) and whether a coordinator key is pinned.
        var rosterVersion: UInt64
        var coordinatorPinned: Bool
        /// Blocks stamped too far ahead, with how far.
        var quarantined: [QuarantinedBlock]
        /// Refused blocks and skipped changes, newest first.
        var refusals: [RefusalRecord]
        /// Origins a peer holds another history of (different blocks at one seq).
        var divergences: [Diverged]
        /// Set when a peer holds another block at a seq of this store's own site: the store is a
        /// copy and writes nothing more; the text says what to do.
        @NullEncoded var copiedStore: String?
        /// Set when the roster this store holds removed its own site: it writes nothing more; the
        /// text says what to do.
        @NullEncoded var removedSite: String?
        /// The outbox's deliveries by state (pending, sent, dead) and the oldest pending one's due time (ms).
        var outbox: OutboxSummary
        /// Whether a node (`tierline serve`) runs on this store now: it reported its links within the
        /// last few seconds. Without one, `peers[].session` is `null`.
        var nodeRunning: Bool
        /// The peers the node dials, as it last reported them: `connected`, `connecting` or `waiting`,
        /// with the last attempt's error; `everConnected` is `false` for one no session ever opened with.
        var dialed: [NodeLinks.Dialed]
        /// The PostgreSQL mirror the node runs (node.json's `mirror` section), as it last reported it;
        /// `null` when no node has run one on this store.
        @NullEncoded var mirror: MirrorLine?

        // Every key is present, `null` when empty, so scripts need not guess.
    }

    struct MirrorLine: Encodable {
        /// The target, without its password.
        var target: String
        /// Whether the node that runs it still runs (it reported within the last 15 s).
        var running: Bool
        var connected: Bool
        /// `null` while unknown: the mirror has not connected yet, and no earlier report of the same
        /// target gave its cursors.
        @NullEncoded var behindBlocks: Int64?
        @NullEncoded var behindSeconds: Double?
        @NullEncoded var lastError: String?
        var reportedAt: Date
    }

    struct Diverged: Encodable {
        var origin: String
        var peer: String
        var seq: UInt64
        var ourHash: String
        var theirHash: String
        var address: String
        var detectedAt: Date
    }

    struct Pending: Encodable {
        var origin: String
        var seq: UInt64
        var reason: String
    }

    struct Peer: Encodable {
        var site: String
        var role: String
        var address: String
        var lastSeen: Date
        var theyLack: Int
        var weLack: Int
        @NullEncoded var skewMillis: Int64?
        var blocksIn: UInt64
        var blocksOut: UInt64
        @NullEncoded var lastError: String?
        /// `tls`, `tls-ca` or `plain` (unprotected), as the last session ran.
        @NullEncoded var transport: String?
        /// `open` while the running node has a session with this peer (an idle one too, however
        /// old `lastSeen` is), `closed` when it has none; `null` when no node runs on this store.
        @NullEncoded var session: String?

    }

    func run() throws {
        let store = try options.open()
        let identity = try store.identity()
        let vector = try store.vector()
        let links = try store.nodeLinks()
        let now = UInt64(nowMillis())
        let running = links?.isLive(at: now) ?? false
        let records = try store.peers()
        let peers = records.map { p in
            Peer(site: p.site.rawValue, role: p.role.rawValue, address: p.address,
                 lastSeen: Date(timeIntervalSince1970: Double(p.lastSeen) / 1000),
                 theyLack: p.vector.lacking(from: vector), weLack: vector.lacking(from: p.vector),
                 skewMillis: p.skewMillis, blocksIn: p.blocksIn, blocksOut: p.blocksOut, lastError: p.lastError,
                 transport: p.transport, session: links?.session(with: p.site.rawValue, at: now))
        }
        let unheard = links?.neverConnected(given: records) ?? []
        let pending = try store.pendingBlocks().map { Pending(origin: $0.origin.rawValue, seq: $0.seq, reason: $0.reason) }
        let restored = try store.restoredAt().map { Date(timeIntervalSince1970: Double($0) / 1000) }
        let output = Output(site: identity.site.rawValue, role: identity.role.rawValue, publicKey: identity.publicKey.hexString, vector: vector, restoredAt: restored,
                            restoreAwaiting: try store.restoreAwaiting()?.map(\.rawValue),
                            pendingBlocks: pending, peers: peers, rosterVersion: try store.rosterVersion(),
                            coordinatorPinned: try store.pinnedCoordinatorKey() != nil, quarantined: try store.quarantined(),
                            refusals: try store.refusals(),
                            divergences: try store.divergences().map {
                                Diverged(origin: $0.origin.rawValue, peer: $0.peer.rawValue, seq: $0.seq, ourHash: $0.ourHash.hexString,
                                         theirHash: $0.theirHash.hexString, address: $0.address,
                                         detectedAt: Date(timeIntervalSince1970: Double($0.detectedAt) / 1000))
                            },
                            copiedStore: try store.copiedStoreRefusal(), removedSite: try store.removedSiteRefusal(), outbox: try store.outboxSummary(),
                            nodeRunning: running, dialed: links?.dialed ?? [],
                            mirror: try MirrorReport.read(from: store).map { report in
                                MirrorLine(target: report.status.target, running: report.isLive(at: now), connected: report.status.connected,
                                       behindBlocks: report.status.behindBlocks, behindSeconds: report.status.behindSeconds,
                                       lastError: report.status.lastError,
                                       reportedAt: Date(timeIntervalSince1970: Double(report.writtenAt) / 1000))
                            })
        if options.json { return try printJSON(output) }
        print("site \(output.site) (\(output.role)), vector \(vector)")
        print("public key \(output.publicKey)")
        if !output.coordinatorPinned {
            print("no coordinator key pinned: this store syncs with nobody (`tierline roster pin KEY`)")
        } else {
            print(output.rosterVersion == 0 ? "coordinator pinned; no roster yet (the first sync brings it)" : "roster version \(output.rosterVersion) (`tierline roster list`)")
        }
        if let restored {
            let awaited = output.restoreAwaiting ?? []
            let who = awaited.isEmpty ? "a sync with the coordinator that confirms nothing newer of this site exists"
                : "news of \(awaited.joined(separator: ", ")): each must sync with the coordinator (or with this store), then this store with the coordinator"
            print("restored from a backup \(ageText(Date().timeIntervalSince(restored))); local writes wait for \(who) (`tierline sync HUB:PORT` or `tierline serve` dialing it; `tierline restore --release` lifts the wait by hand)")
        }
        let outbox = output.outbox
        if let mirror = output.mirror {
            let behind = mirror.behindBlocks.map { blocks in
                "\(blocks) blocks behind" + (blocks > 0 ? " (\(Int(mirror.behindSeconds ?? 0)) s)" : "")
            } ?? "lag unknown until it connects"
            let state = !mirror.running ? "not running (last report \(ageText(Date().timeIntervalSince(mirror.reportedAt))))"
                : mirror.connected ? behind
                : "not connected, \(behind): \(mirror.lastError ?? "connecting")"
            print("PostgreSQL mirror \(mirror.target): \(state)")
        }
        print("outbox: \(outbox.pending) pending, \(outbox.dead) dead"
              + (outbox.dead > 0 ? " (`tierline outbox list --state dead`, then `tierline outbox retry`)" : ""))
        print("")
        if !running, links != nil {
            print("no node runs on this store now (`tierline serve`); SESSION is unknown, LAST SEEN is the last session's")
        }
        if peers.isEmpty && unheard.isEmpty {
            print("no peers yet; run `tierline sync HOST:PORT` or `tierline serve --peer HOST:PORT`")
        } else {
            let now = Date()
            let heard = peers.map { p in
                [p.site, p.role, p.address, p.transport.map { $0 == "plain" ? "PLAIN: unprotected" : $0 } ?? "—",
                 p.session.map { $0 == "open" ? "open" : "closed" } ?? "—",
                 // A quiet open session is idle, not stale: its lastSeen is written only now and then.
                 p.session == "open" ? "now (session open)" : ageText(now.timeIntervalSince(p.lastSeen)), "\(p.theyLack)", "\(p.weLack)",
                 p.skewMillis.map { "\($0) ms" } ?? "—", p.lastError ?? "—"]
            }
            let never = unheard.map { link in
                ["?", "—", link.address, "—", link.state == "connected" ? "opening" : "—", "never connected", "—", "—", "—",
                 link.lastError ?? (running ? "— (connecting)" : "—")]
            }
            printTable(["PEER", "ROLE", "ADDRESS", "LINK", "SESSION", "LAST SEEN", "THEY LACK", "WE LACK", "SKEW", "LAST ERROR"], heard + never)
        }
        if !pending.isEmpty {
            print("\n\(pending.count) blocks held back:")
            printTable(["ORIGIN", "SEQ", "REASON"], pending.prefix(20).map { [$0.origin, "\($0.seq)", $0.reason] }, maxWidth: 80)
        }
        if !output.quarantined.isEmpty {
            print("\n\(output.quarantined.count) blocks quarantined for clock drift (retried as time passes; the coordinator can `tierline quarantine release SITE SEQ`):")
            printTable(["SITE", "SEQ", "AHEAD"], output.quarantined.prefix(20).map { [$0.origin, "\($0.seq)", durationText(millis: $0.aheadMillis)] })
        }
        if let refusal = output.copiedStore ?? output.removedSite {
            print("\nTHIS STORE WRITES NOTHING: \(refusal)")
        }
        if !output.divergences.isEmpty {
            print("\ntwo histories of a site (different blocks at one seq; those origins are not exchanged with that peer):")
            printTable(["ORIGIN", "SEQ", "PEER", "HERE", "THERE", "SEEN"], output.divergences.map { d in
                [d.origin, "\(d.seq)", "\(d.peer) (\(d.address))", d.ourHash, d.theirHash,
                 ageText(Date().timeIntervalSince(d.detectedAt))]
            })
        }
        if !output.refusals.isEmpty {
            print("\nrefused (nothing of these was applied):")
            printTable(["ORIGIN", "SEQ", "CODE", "TIMES", "LAST", "REASON"], output.refusals.prefix(20).map { r in
                [r.origin, "\(r.seq)", r.code, "\(r.count)", ageText(Date().timeIntervalSince1970 - Double(r.lastAt) / 1000), r.reason]
            }, maxWidth: 90)
        }
    }
}
