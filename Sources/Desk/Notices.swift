import Escalation
import Foundation
import Synchronization
import StrictJSON
import TicketModel
import TicketStore

/// Which writes reach people, and how: the planner the Desk installs on its store, so that every
/// local write (an agent's command, intake, the escalation ticker) puts its notices in the outbox in
/// the write's own transaction.
///
/// The site that writes a record sends its notices: the owning site for its own work, the
/// coordinator for the levels it fires as backstop. Records derived on both sides of a partition
/// carry the same id, so their notices carry the same idempotency key and a receiver drops the
/// second.
public enum Notices {
    /// What a notice is about, as `kind` in the outbox and `type` in a webhook's body.
    public enum Kind: String, Sendable, CaseIterable {
        case slaWarning = "sla_warning", slaBreach = "sla_breach", levelFired = "level_fired"
        case handoffRequested = "handoff_requested", handoffAccepted = "handoff_accepted", handoffRejected = "handoff_rejected"
        case handoffWithdrawn = "handoff_withdrawn", handoffTimedOut = "handoff_timed_out", ladderExhausted = "ladder_exhausted"
        case assigned, customerReply = "customer_reply"
        /// A public agent reply, sent to the customer.
        case reply
    }

    /// The planner to install on a store: `store.notices = Notices.planner`.
    public static let planner: NoticePlanner = { context in try plan(context) }

    static func plan(_ context: WriteContext) throws -> [OutboxDraft] {
        if context.remote { return try copiesForOurIntegrations(context) }
        var drafts: [OutboxDraft] = []
        var setting: Setting?
        func current() throws -> Setting {
            if let setting { return setting }
            let made = Setting(library: try library(context), webhooks: try context.noticeWebhooks(), coordinator: try context.coordinator(),
                               now: context.now)
            setting = made
            return made
        }
        for block in context.blocks {
            let created = Set(block.changes.compactMap { change -> UUID? in
                if case .create = change.operation, change.entity.kind == .ticket { change.entity.id } else { nil }
            })
            for (index, change) in block.changes.enumerated() where change.entity.kind == .ticket {
                let dot = Dot(origin: block.origin, seq: block.seq, index: UInt32(index))
                switch change.operation {
                case .event(let event):
                    drafts += try notices(of: event, ticket: change.entity.id, opening: created.contains(change.entity.id), context, current)
                case .set(.assignee, .text(let name)):
                    let state = try context.state(of: change.entity.id)
                    let setting = try current()
                    guard let agent = setting.directory.agent(name), agent.active else { continue }
                    let notice = Notice(kind: .assigned, id: "assign-\(dot)", ticket: state, text: "\(state.displayNumber ?? "") is now assigned to you")
                    drafts += setting.deliver(notice, to: [agent])
                default:
                    continue
                }
            }
        }
        return drafts
    }

    /// The notices of one event.
    private static func notices(of event: TicketEvent, ticket id: UUID, opening: Bool, _ context: WriteContext,
                                _ current: () throws -> Setting) throws -> [OutboxDraft] {
        switch event.kind {
        case .agentReply where event.visibility == .public:
            return try customerCopy(of: event, ticket: try context.state(of: id), context)
        case .customerMessage where !opening:
            let state = try context.state(of: id)
            guard let name = state.text(.assignee) else { return [] }
            let setting = try current()
            guard let agent = setting.directory.agent(name), agent.active else { return [] }
            let notice = Notice(kind: .customerReply, id: event.id.lowercaseText, ticket: state, text: "The customer wrote on \(state.displayNumber ?? ""):\n\n\(event.body)")
            return setting.deliver(notice, to: [agent])
        case .escalation:
            guard let record = EscalationRecord.decode(event.body) else { return [] }
            return try notices(of: record, id: event.id, actor: event.actor, ticket: try context.state(of: id), try current())
        default:
            return []
        }
    }

    /// The notices of an SLA or escalation record: whom it asks to act.
    private static func notices(of record: EscalationRecord, id: UUID, actor: String, ticket state: TicketState, _ setting: Setting) throws -> [OutboxDraft] {
        let facts = TicketFacts(state)
        let owner = facts.owner(at: record.at) ?? facts.ownerSite
        let number = state.displayNumber ?? ""
        let directory = setting.directory
        var anytime = false
        let kind: Kind, recipients: [AgentDocument], text: String
        switch record.type {
        case .slaWarning, .slaBreach:
            kind = record.type == .slaBreach ? .slaBreach : .slaWarning
            let clock = record.clock.map { "\($0)" } ?? "SLA"
            text = record.type == .slaBreach ? "\(number) breached its \(clock) target" : "\(number) is near its \(clock) target"
            recipients = setting.responsible(for: state, owner: owner)
        case .levelFired:
            kind = .levelFired
            let ladder = record.ladder.flatMap { setting.library.ladder($0) }
            anytime = record.level.flatMap { level in ladder.map { $0.levels.indices.contains(level - 1) ? $0.levels[level - 1].pageAnytime ?? false : false } } ?? false
            recipients = setting.recipients(record.targets ?? [], owner: owner, state: state, matrix: record.matrix.flatMap { setting.library.matrix($0) })
            text = "\(number): escalation level \(record.level ?? 0) fired" + ((record.targets ?? []).isEmpty ? "" : " for \((record.targets ?? []).joined(separator: ", "))")
        case .escalated:
            kind = .handoffRequested
            let targets = record.toGroup.map { group in [record.toSite.map { "\(group)@\($0)" } ?? "\(group)@\(owner?.rawValue ?? "")"] } ?? []
            recipients = setting.recipients(targets, owner: owner, state: state, matrix: nil)
            text = "\(number) is handed to \(targets.joined(separator: ", ")) by \(actor)" + (record.note.map { "\n\nSummary: \($0.summary)\nVerified: \($0.verifiedFacts)\nTried: \($0.stepsTried)\nRequested: \($0.requestedAction)" } ?? "")
        case .handoffAccepted, .handoffRejected, .handoffWithdrawn:
            kind = Kind(rawValue: record.type.rawValue) ?? .handoffWithdrawn
            // The request's author hears the answer; a withdrawal reaches the group that was asked.
            let request = facts.records.first { $0.id == record.refersTo }
            if record.type == .handoffWithdrawn {
                let targets = request.flatMap { r in r.record.toGroup.map { "\($0)@\(r.record.toSite ?? owner?.rawValue ?? "")" } }.map { [$0] } ?? []
                recipients = setting.recipients(targets, owner: owner, state: state, matrix: nil)
            } else {
                recipients = setting.requester(of: record, state)
            }
            let verb = ["handoff_accepted": "accepted", "handoff_rejected": "rejected", "handoff_withdrawn": "withdrew"][record.type.rawValue] ?? ""
            text = "\(actor) \(verb) the handoff of \(number)" + (record.reason.map { ": \($0)" } ?? "")
        case .handoffTimedOut:
            // The request's author and the group it asks: both must act (answer, or withdraw and go
            // elsewhere).
            kind = .handoffTimedOut
            let asked = record.toGroup.map { ["\($0)@\(record.toSite ?? owner?.rawValue ?? "")"] } ?? []
            recipients = setting.requester(of: record, state) + setting.recipients(asked, owner: owner, state: state, matrix: nil)
            text = "\(number): the handoff to \(asked.joined(separator: ", ")) has had no answer"
        case .escalationExhausted:
            kind = .ladderExhausted
            recipients = setting.responsible(for: state, owner: owner)
            text = "\(number): the escalation ladder ran out of levels"
        default:
            return []
        }
        var notice = Notice(kind: kind, id: id.lowercaseText, ticket: state, text: text)
        notice.record = record
        notice.pagesAnytime = anytime
        return setting.deliver(notice, to: recipients)
    }

    /// The customer's copy of a public reply: back through the integration the ticket came from, when
    /// it registered a reply webhook here, else by e-mail for an e-mail ticket.
    private static func customerCopy(of event: TicketEvent, ticket state: TicketState, _ context: WriteContext) throws -> [OutboxDraft] {
        let number = state.displayNumber ?? ""
        let key = "tl-\(event.id.lowercaseText)-customer"
        let subject = "[\(number)] Re: \(state.subject)"
        // An e-mail ticket's copy goes by e-mail from whichever site wrote the reply. Another
        // channel's goes back through the integration it came from, sent by that integration's own
        // site (its token, its reply URL): another site leaves it to that one, which plans the copy
        // when the reply reaches it.
        if state.text(.channel) != "email", let origin = IntakeOrigin(state) {
            guard origin.site == context.site, let webhook = try context.replyWebhook(integration: origin.name),
                  webhook.allows(channel: state.text(.channel) ?? "") else { return [] }
            let body = Payload(type: Kind.reply.rawValue, timestamp: HLC(rawValue: context.now << 16).iso8601, data: .init(
                ticket: .init(state), subject: subject, text: event.body, author: event.actor, recipients: [], record: nil,
                externalThreadId: Self.openingValue(TicketLookup.thread, state)))
            return [OutboxDraft(key: key, channel: "integration:\(webhook.integration)", recipient: webhook.integration, kind: Kind.reply.rawValue,
                                ticket: state.id, subject: subject, body: body.json, notBefore: context.now)]
        }
        // The address the mail came from; for a ticket opened by hand, the customer's key when it is
        // an address, else the customer record's e-mail.
        guard state.text(.channel) == "email", let customer = Self.openingValue(TicketLookup.replyAddress, state) ?? state.text(.customer),
              let address = customer.contains("@") ? customer : try context.customer(customer)?.email else { return [] }
        let text = event.body + "\n\n-- \nTo answer, reply to this message and keep [\(number)] in the subject."
        return [OutboxDraft(key: key, channel: "email", recipient: address, kind: Kind.reply.rawValue, ticket: state.id,
                            subject: subject, body: text, notBefore: context.now)]
    }

    /// The customer's copies of public replies written at other sites on tickets that came through
    /// this node's integrations: only this node holds their reply webhooks.
    private static func copiesForOurIntegrations(_ context: WriteContext) throws -> [OutboxDraft] {
        var drafts: [OutboxDraft] = []
        for block in context.blocks where block.origin != context.site {
            for change in block.changes where change.entity.kind == .ticket {
                guard case .event(let event) = change.operation, event.kind == .agentReply, event.visibility == .public else { continue }
                let state = try context.state(of: change.entity.id)
                guard state.text(.channel) != "email", let origin = IntakeOrigin(state), origin.site == context.site else { continue }
                drafts += try customerCopy(of: event, ticket: state, context)
            }
        }
        return drafts
    }

    /// Where an intake ticket came from: `SITE/NAME`, as the site that opened it wrote it.
    struct IntakeOrigin {
        var site: SiteID
        var name: String
        init?(_ state: TicketState) {
            guard let text = Notices.openingValue(TicketLookup.integration, state) else { return nil }
            let parts = text.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let site = try? SiteID(String(parts[0])), site == state.originSite else { return nil }
            self.site = site
            name = String(parts[1])
        }
    }

    /// A custom field's value if the block that opened the ticket wrote it and no later write
    /// replaced it: the fields that say where replies go count only as intake wrote them at the
    /// door, not as a peer or an update rewrote them later.
    static func openingValue(_ name: String, _ state: TicketState) -> String? {
        guard let write = state.registers[.custom(name)], let created = state.created, write.stamp == created else { return nil }
        return write.value.text
    }

    /// The configuration as a library (parsed once per distinct set of versions: ``ParsedLibraries``).
    static func library(_ context: WriteContext) throws -> ConfigLibrary {
        ParsedLibraries.library(try context.configBodies())
    }

    /// One notice before it is addressed.
    struct Notice {
        var kind: Kind
        /// What the idempotency key derives from: the record's or event's id.
        var id: String
        var ticket: TicketState
        var text: String
        var record: EscalationRecord?
        /// A ladder level marked to page at any hour: working hours do not hold it back.
        var pagesAnytime = false
    }

    /// What the planner reads once per write: the configuration, the agent directory, the node's
    /// webhooks.
    struct Setting {
        let library: ConfigLibrary
        let directory: AgentDirectory
        let webhooks: [String]
        let coordinator: SiteID?
        let now: UInt64

        init(library: ConfigLibrary, webhooks: [String], coordinator: SiteID?, now: UInt64) {
            self.library = library
            self.coordinator = coordinator
            directory = AgentDirectory(library: library)
            self.webhooks = webhooks
            self.now = now
        }

        /// The agents a list of ladder targets reaches, each once, by name.
        func recipients(_ targets: [String], owner: SiteID?, state: TicketState, matrix: MatrixDocument?) -> [AgentDocument] {
            guard let owner else { return [] }
            var seen = Set<String>()
            return targets.compactMap(Target.init).flatMap {
                directory.recipients(of: $0, owner: owner, coordinator: coordinator, category: state.text(.category), matrix: matrix ?? library.matrix)
            }.filter { seen.insert($0.name).inserted }
        }

        /// The active agent who wrote the request `record` refers to, if the directory has them.
        func requester(of record: EscalationRecord, _ state: TicketState) -> [AgentDocument] {
            guard let id = record.refersTo, let actor = state.events.first(where: { $0.event.id == id })?.event.actor,
                  let agent = directory.agent(actor), agent.active else { return [] }
            return [agent]
        }

        /// Who answers for a ticket's SLA: its assignee and the leads of its group at the owning site.
        func responsible(for state: TicketState, owner: SiteID?) -> [AgentDocument] {
            var out: [AgentDocument] = []
            if let name = state.text(.assignee), let agent = directory.agent(name), agent.active { out.append(agent) }
            if let group = state.text(.group), let owner {
                out += directory.agents.filter { agent in
                    agent.active && agent.site == owner.rawValue && agent.groups.contains(group)
                        && (agent.role != .agent || agent.roles.contains("team_lead"))
                }
            }
            var seen = Set<String>()
            return out.filter { seen.insert($0.name).inserted }
        }

        /// When an agent may be told: now within their working hours (or with no calendar), else at
        /// the next opening.
        func due(for agent: AgentDocument, anytime: Bool) -> UInt64 {
            guard !anytime, let name = agent.calendar, let pin = library.currentPin(calendar: name), let calendar = library.calendar(pin) else { return now }
            let start = Int64(now)
            guard let open = calendar.workingSpans(from: start, to: start + 31 * 86_400_000).first else { return now }
            return UInt64(max(open.start, start))
        }

        /// The e-mail of each recipient that has an address, and the notice to each of the node's
        /// webhooks (with every recipient listed), held to the earliest working time among them.
        func deliver(_ notice: Notice, to recipients: [AgentDocument]) -> [OutboxDraft] {
            let number = notice.ticket.displayNumber ?? ""
            // The first line of the text, without the number the subject already starts with.
            var line = Substring(notice.text.split(separator: "\n").first ?? Substring(notice.text))
            if !number.isEmpty, line.hasPrefix(number) { line = line.dropFirst(number.count).drop { $0 == ":" || $0 == " " } }
            let subject = "[\(number)] \(line)"
            var drafts: [OutboxDraft] = []
            for agent in recipients {
                guard let email = agent.email else { continue }
                drafts.append(OutboxDraft(key: "tl-\(notice.id)-\(agent.name)", channel: "email", recipient: email, kind: notice.kind.rawValue,
                                          ticket: notice.ticket.id, subject: subject,
                                          body: "\(notice.text)\n\nTicket: \(number) — \(notice.ticket.subject)\nPriority: \(notice.ticket.priority.rawValue)",
                                          notBefore: due(for: agent, anytime: notice.pagesAnytime)))
            }
            guard !webhooks.isEmpty else { return drafts }
            let payload = Payload(type: notice.kind.rawValue, timestamp: HLC(rawValue: now << 16).iso8601, data: .init(
                ticket: .init(notice.ticket), subject: subject, text: notice.text, author: nil,
                recipients: recipients.map { .init(name: $0.name, displayName: $0.displayName, email: $0.email) },
                record: notice.record.flatMap { try? StrictJSON.parse(Array($0.encoded().utf8)) }, externalThreadId: nil))
            let when = recipients.map { due(for: $0, anytime: notice.pagesAnytime) }.min() ?? now
            for webhook in webhooks {
                drafts.append(OutboxDraft(key: "tl-\(notice.id)", channel: "webhook:\(webhook)", recipient: webhook, kind: notice.kind.rawValue,
                                          ticket: notice.ticket.id, subject: subject, body: payload.json, notBefore: when))
            }
            return drafts
        }
    }

    /// A webhook's JSON body: `type`, `timestamp` and `data`, as Standard Webhooks payloads are.
    struct Payload: Encodable {
        struct Ticket: Encodable {
            var id: String
            var number: String
            var subject: String
            var status: String
            var priority: String
            @NullEncoded var group: String?
            @NullEncoded var assignee: String?
            @NullEncoded var owningSite: String?
            init(_ state: TicketState) {
                id = state.id.lowercaseText
                number = state.displayNumber ?? ""
                subject = state.subject
                status = state.text(.status) ?? ""
                priority = state.priority.rawValue
                group = state.text(.group)
                assignee = state.text(.assignee)
                owningSite = state.owner.site?.rawValue
            }
        }
        struct Recipient: Encodable {
            var name: String
            var displayName: String
            @NullEncoded var email: String?
        }
        struct Data: Encodable {
            var ticket: Ticket
            var subject: String
            var text: String
            @NullEncoded var author: String?
            var recipients: [Recipient]
            @NullEncoded var record: StrictJSON.Node?
            @NullEncoded var externalThreadId: String?
        }
        var type: String
        var timestamp: String
        var data: Data

        var json: String { CanonicalJSON.string(self) }
    }
}
