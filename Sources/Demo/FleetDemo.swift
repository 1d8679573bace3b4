import Escalation
import Foundation
import Logging
import NIOCore
import SyncNode
import TicketModel
import TicketStore

/// The main-job demo: a small fleet on 127.0.0.1 — a hub, two regional sites that reach only the
/// hub, and a technician's laptop — edits apart, a partition, healing, and equal digests at the end.
///
/// Everything is real: SQLite files under `folder`, TCP sessions on loopback, zlib change sets,
/// signed blocks. Only the clock of the narrative is fast.
public enum FleetDemo {
    public struct SiteOutcome: Sendable, Encodable {
        public var site: String
        public var role: String
        public var tickets: Int
        public var vector: String
        public var digest: String
    }

    public struct Outcome: Sendable, Encodable {
        public var folder: String
        public var converged: Bool
        public var sites: [SiteOutcome]
        public var tickets: [TicketRecord]
        public var conflictTicket: String
        public var laptopSync: SessionSummary
        /// The ticket that escalated across sites, and its escalation history as south sees it.
        public var escalatedTicket: String
        public var escalationHistory: [String]
    }

    /// The demo's escalation configuration: seconds instead of hours, for platinum customers only.
    static let escalationConfig = #"""
    {
      "ladders": [{"name": "demo", "version": 1, "loops": 0, "ackTimeout": "30m", "calendar": "24x7",
                   "levels": [{"delay": "0", "targets": ["role:team_lead"], "assignment": "notify", "actions": ["watch:team-lead"]},
                              {"delay": "2s", "targets": ["tier:2"], "assignment": "transfer_site", "actions": ["raise_priority"]}]}],
      "policies": [{"name": "platinum-demo", "version": 1, "position": 1, "match": {"customerTier": ["platinum"]},
                    "calendar": "24x7", "ladder": "demo",
                    "clocks": {"firstResponse": {"targets": {"high": "3s", "urgent": "3s"}, "warnAt": 50, "onBreach": ["escalate"]},
                               "resolution": {"targets": {"high": "1h", "urgent": "1h"}, "pauseWhen": ["pending_customer"]}}}],
      "matrix": {"version": 1, "grace": "30s", "entries": [{"site": "*", "category": "*", "tier": 2, "target": "tier2@hub"}]}
    }
    """#

    struct Member {
        var directory: StoreDirectory
        var db: TicketDatabase
        var key: SiteKey
        var node: SyncNode?
        var task: Task<Void, any Error>?
    }

    /// Runs the demo in `folder` (which must not hold stores yet), narrating to `say`.
    public static func run(in folder: String, say: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        var logger = Logger(label: "tierline.demo")
        logger.logLevel = .critical
        func make(_ site: String, _ role: SiteRole) throws -> Member {
            let directory = StoreDirectory(path: folder + "/" + site)
            let db = try directory.create(site: try SiteID(site), role: role)
            return Member(directory: directory, db: db, key: try directory.loadKey())
        }
        var hub = try make("hub", .coordinator), north = try make("north", .site), south = try make("south", .site)
        let laptop = try make("laptop-anna", .laptop)
        say("- Four stores in \(folder): hub (coordinator), north and south (offices that reach only the hub), laptop-anna")

        func start(_ member: inout Member, listen: Bool, peers: [Endpoint]) async throws -> Endpoint? {
            let config = NodeConfiguration(listen: listen ? Endpoint(host: "127.0.0.1", port: 0) : nil, peers: peers,
                                           pollMillis: 100, reconnectMinMillis: 100, reconnectMaxMillis: 1_000, escalationMillis: 200)
            let node = try SyncNode(store: member.db, key: member.key, configuration: config, logger: logger)
            let address = try await node.bind()
            member.node = node
            member.task = Task { try await node.run() }
            return address?.port.map { Endpoint(host: "127.0.0.1", port: $0) }
        }
        func stop(_ member: inout Member) async {
            member.node?.shutdown()
            _ = try? await member.task?.value
            member.node = nil
        }
        func converge(_ members: [Member], what: String) async throws {
            let started = Date()
            while Date().timeIntervalSince(started) < 30 {
                if Set(try members.map { try $0.db.digest() }).count == 1 {
                    say("   \(what): converged in \(Int(Date().timeIntervalSince(started) * 1000)) ms")
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ConfigurationError("the demo fleet did not converge within 30 s (\(what))")
        }

        guard let hubAddress = try await start(&hub, listen: true, peers: []) else {
            throw ConfigurationError("the hub did not bind a port")
        }
        _ = try await start(&north, listen: false, peers: [hubAddress])
        _ = try await start(&south, listen: false, peers: [hubAddress])
        say("- Nodes running: hub listens on \(hubAddress); north and south dial it")
        do {
            let printer = try north.db.createTicket(TicketDraft(subject: "Printer on floor 2 prints blank pages", priority: .high,
                                                                customer: "acme-corp", channel: "email", group: "hardware",
                                                                tags: ["printer", "floor-2"], firstMessage: "Every page comes out blank since this morning."))
            let vpn = try south.db.createTicket(TicketDraft(subject: "VPN drops every 10 minutes", priority: .urgent, customer: "globex",
                                                            channel: "phone", tags: ["network"]))
            _ = try hub.db.createTicket(TicketDraft(subject: "Quarterly access review", priority: .low, channel: "portal"))
            say("- north opens \(printer.displayNumber), south opens \(vpn.displayNumber), hub opens HUB-1; live push carries them")
            try await converge([hub, north, south], what: "three nodes")

            say("- south's link is cut (its node stops); both sides keep working:")
            await stop(&south)
            _ = try north.db.update(printer.id, [(.assignee, .text("anna"))])
            _ = try south.db.update(printer.id, [(.assignee, .text("bela"))])
            say("   north assigns \(printer.displayNumber) to anna while south assigns it to bela")
            _ = try north.db.comment(vpn.id, body: "Pushed a new VPN profile; should be stable now.", kind: .agentReply, visibility: .public, actor: "anna")
            _ = try north.db.update(vpn.id, [(.status, .text("solved"))])
            _ = try south.db.comment(vpn.id, body: "It dropped again at 14:05.", kind: .customerMessage, visibility: .public, actor: "globex")
            say("   north solves \(vpn.displayNumber); south records a customer message north has not seen")
            _ = try south.db.tag(printer.id, add: ["toner"], remove: [])
            let offline = try laptop.db.createTicket(TicketDraft(subject: "Meeting room screen flickers", customer: "acme-corp", channel: "phone"))
            _ = try laptop.db.comment(offline.id, body: "Replaced the HDMI cable on site, flicker gone.", kind: .internalNote, visibility: .internal, actor: "bela")
            say("   laptop-anna, offline all along, opens \(offline.displayNumber) on site")

            say("- The link heals: south's node starts again and reconnects")
            _ = try await start(&south, listen: false, peers: [hubAddress])
            try await converge([hub, north, south], what: "after the partition")
            let (escalated, history) = try await escalationAct(hub: hub, north: north, south: south, say: say, converge: converge)

            let laptopSync = try await SyncClient.exchange(store: laptop.db, key: laptop.key, with: hubAddress, logger: logger)
            say("- laptop-anna runs `tierline sync`: sent \(laptopSync.sentBlocks) blocks, received \(laptopSync.receivedBlocks), \(laptopSync.bytesIn + laptopSync.bytesOut) bytes on the wire")
            try await converge([hub, north, south, laptop], what: "fleet and laptop")

            let merged = try hub.db.ticket(printer.id)
            say("- \(printer.displayNumber): assignee \(merged.assignee ?? "—"), tags \(merged.tags.joined(separator: ", ")), \(merged.conflictCount) conflict kept in its history")
            say("   \(vpn.displayNumber): status \(try hub.db.ticket(vpn.id).status) (the unseen customer message reopened it)")
            var sites: [SiteOutcome] = []
            for member in [hub, north, south, laptop] {
                let identity = try member.db.identity()
                sites.append(SiteOutcome(site: identity.site.rawValue, role: identity.role.rawValue, tickets: try member.db.tickets().count,
                                         vector: try member.db.vector().description, digest: try member.db.digest()))
            }
            let outcome = Outcome(folder: folder, converged: Set(sites.map(\.digest)).count == 1, sites: sites,
                                  tickets: try hub.db.tickets(), conflictTicket: printer.displayNumber, laptopSync: laptopSync,
                                  escalatedTicket: escalated, escalationHistory: history)
            await stop(&north); await stop(&south); await stop(&hub)
            return outcome
        } catch {
            await stop(&north); await stop(&south); await stop(&hub)
            throw error
        }
    }

    /// The coordinator publishes the escalation configuration; a platinum customer's ticket at north
    /// misses its first-response target, north's ticker starts the ladder and requests a handoff to
    /// tier 2 at the hub, and the hub accepts it.
    static func escalationAct(hub: Member, north: Member, south: Member, say: @escaping @Sendable (String) -> Void,
                              converge: ([Member], String) async throws -> Void) async throws -> (String, [String]) {
        let published = try EscalationDesk(store: hub.db).publish(Data(escalationConfig.utf8), file: "demo escalation", actor: "ops")
        say("- hub (the coordinator) publishes \(published.map { "\($0.kind.rawValue) \($0.name) v\($0.version)" }.joined(separator: ", "))")
        try await converge([hub, north, south], "configuration replicated")
        let ticket = try north.db.createTicket(TicketDraft(subject: "Payroll export fails for all employees", priority: .urgent,
                                                           customer: "initech", channel: "phone", firstMessage: "Payroll run is due today.",
                                                           category: "payroll", customerTier: "platinum"))
        try EscalationDesk(store: north.db).applyPolicy(UUID(uuidString: ticket.id)!, now: Int64(TicketDatabase.systemMillis()))
        say("- north opens \(ticket.displayNumber) for a platinum customer: policy platinum-demo v1 pinned, first response due in 3 s")
        let started = Date()
        var pending: [StoredRecord] = []
        while Date().timeIntervalSince(started) < 20 {
            let now = Int64(TicketDatabase.systemMillis())
            // The hub may not hold the ticket yet: live push brings it within a moment.
            pending = (try? EscalationDesk(store: hub.db).evaluate(ticket.id, now: now).1.pendingHandoffs) ?? []
            if !pending.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard !pending.isEmpty else { throw ConfigurationError("the demo ticket did not escalate within 20 s") }
        say("   nobody answered: north's ticker records the breach, starts the ladder, and level 2 asks tier2@hub to take it")
        _ = try EscalationDesk(store: hub.db).accept(ticket.id, actor: "tier2-lead", now: Int64(TicketDatabase.systemMillis()))
        try await converge([hub, north, south], "handoff accepted at hub")
        let owner = try south.db.ticket(ticket.id)
        say("   hub accepts: \(ticket.displayNumber) is now owned by \(owner.owningSite) (epoch \(owner.owningEpoch)), group \(owner.group ?? "—"), priority \(owner.priority) on every replica")
        let state = try south.db.ticketState(ticket.id)
        let history = TicketFacts(state).records.map { "\(SLAReport.iso($0.record.at)) [\($0.site?.rawValue ?? "")] \(SLAReport.describe($0.record))" }
        say("   its escalation history, read at south:")
        for line in history { say("     " + line) }
        return (ticket.displayNumber, history)
    }
}
