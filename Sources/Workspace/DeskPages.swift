import Dashboard
import Desk
import Escalation
import Foundation
import Hummingbird
import HummingbirdAuth
import TicketModel
import TicketStore

/// The workspace's pages: `GET /desk` (a queue) and `GET /desk/tickets/{ref}` (a ticket). Both read
/// what the ticket API answers and render it; their forms post to the API's action routes.
struct DeskPages: Sendable {
    let queues: Queues
    let pages: Pages
    let now: @Sendable () -> Int64

    func register(on router: some RouterMethods<AgentContext>) {
        router.get("/desk") { request, context in
            let agent = try context.requireIdentity()
            do {
                let query = try QueueRequest(parameters(request), emptyMeansUnset: true)
                let answer = try await queues.page(query, agent: agent, now: now())
                return pages.render("queue", agent: agent, queueValues(query, answer))
            } catch let error as WorkspaceError {
                return pages.errorPage(error, agent: agent)
            }
        }
        router.get("/desk/tickets/{ref}") { request, context in
            let agent = try context.requireIdentity()
            let ref = context.parameters.get("ref") ?? ""
            let store = queues.store, site = queues.site, at = now()
            do {
                let view = try await offload { try TicketView.read(ref, store: store, site: site, agent: agent, now: at) }
                let given = parameters(request)
                return pages.render("ticket", agent: agent, ticketValues(view, agent: agent, done: given["done"], error: given["error"], field: given["field"]))
            } catch let error as WorkspaceError {
                return pages.errorPage(error, agent: agent)
            }
        }
    }

    func queueValues(_ query: QueueRequest, _ answer: QueueAnswer) -> [String: Any] {
        let rows: [[String: Any]] = answer.tickets.map { item in
            let t = item.ticket
            return [
                "id": t.id, "number": t.displayNumber, "subject": t.subject, "status": t.status, "priority": t.priority,
                "assignee": t.assignee ?? "—", "group": t.group ?? "—", "owner": t.owningSite, "tags": t.tags,
                "conflicts": t.conflictCount > 0 ? String(t.conflictCount) as Any : false,
                "deadline": item.slaDeadline ?? false as Any, "updated": t.updatedAt ?? false as Any, "slaState": item.slaState?.rawValue ?? "none",
            ]
        }
        return [
            "heading": query.view.title, "view": query.view.rawValue, "q": query.text ?? "", "group": query.group ?? "",
            "assignee": query.assignee ?? "", "siteFilter": query.site ?? "", "ownSite": queues.site,
            "views": QueueView.allCases.map { ["name": $0.rawValue, "title": $0.title, "current": $0 == query.view] as [String: Any] },
            "statuses": Status.allCases.map { ["value": $0.rawValue, "selected": $0 == query.status] as [String: Any] },
            // What an empty status means for this view: open work where the view is about it, else any.
            "defaultStatus": [.mine, .groups, .unassigned, .conflicts].contains(query.view) ? "open work" : "any",
            "unresolved": query.unresolved,
            "empty": rows.isEmpty, "rows": rows,
            "next": answer.next.map { query.link(["cursor": $0]) } ?? false as Any,
        ]
    }

    func ticketValues(_ view: TicketView, agent: SignedIn, done: String?, error: String?, field: String?) -> [String: Any] {
        let t = view.detail.ticket
        // An escalation event's body is its record as JSON: the page shows the SLA report's sentence for it.
        let sentences = Dictionary(view.sla.history.map { ($0.id.lowercased(), $0.text) }, uniquingKeysWith: { first, _ in first })
        let events: [[String: Any]] = view.detail.events.map { e in
            [
                "kind": e.kind.rawValue, "label": Self.label(e.kind), "conflict": e.kind == .conflict, "internal": e.visibility == "internal",
                "at": e.at, "site": e.site, "actor": e.actor ?? "",
                "body": e.kind == .escalation ? sentences[e.id.lowercased()] ?? e.body : e.body,
            ]
        }
        var values: [String: Any] = [
            "id": t.id, "ticketId": t.id, "number": t.displayNumber, "subject": t.subject, "status": t.status, "priority": t.priority,
            "assignee": t.assignee ?? "—", "group": t.group ?? "—", "owner": t.owningSite, "channel": t.channel ?? "—", "tags": t.tags,
            "created": t.createdAt ?? false as Any, "updated": t.updatedAt ?? false as Any,
            "conflicts": t.conflictCount > 0 ? String(t.conflictCount) as Any : false,
            "done": done.map(Self.doneText) ?? false as Any, "error": error ?? false as Any, "errorField": field ?? false as Any,
            "statuses": Status.writable.map(\.rawValue), "priorities": Priority.allCases.map(\.rawValue),
            "mayEscalate": agent.may(.escalate), "mayArticles": agent.may(.articles),
            "events": events,
            "noClocks": view.sla.clocks.isEmpty,
            "clocks": view.sla.clocks.map { c in
                ["clock": c.clock, "state": c.state, "target": c.target, "deadline": c.deadline ?? false as Any, "warnAt": c.warnAt ?? "",
                 "live": c.state == "running"] as [String: Any]
            },
            "escalation": view.sla.history.map { ["at": $0.at, "text": $0.text, "actor": $0.actor ?? false as Any] as [String: Any] },
            "noEscalation": view.sla.history.isEmpty,
            "articles": view.detail.articles.map { ["ref": $0.ref, "title": $0.title] },
            "suggestions": view.suggestions.map { ["ref": $0.ref, "title": $0.title, "summary": $0.summary] },
            "handoff": false, "customer": false,
        ]
        if let h = view.pendingHandoff {
            var handoff: [String: Any] = [
                "toGroup": h.toGroup ?? "?", "toSite": h.toSite ?? "?", "fromSite": h.fromSite ?? "?", "requestedBy": h.requestedBy ?? "an agent",
                "requestedAt": h.requestedAt, "incoming": h.incoming,
                "mayAnswer": h.incoming && agent.may(.handoffs), "mayWithdraw": !h.incoming && h.fromSite == queues.site && agent.may(.handoffs),
                "note": false,
            ]
            if let note = h.note {
                handoff["note"] = ["summary": note.summary, "verifiedFacts": note.verifiedFacts, "stepsTried": note.stepsTried,
                                   "requestedAction": note.requestedAction]
            }
            values["handoff"] = handoff
        }
        if let c = view.detail.customer {
            values["customer"] = [
                "key": c.key, "name": c.customer?.name ?? false as Any, "tier": c.customer?.tier ?? "—", "value": c.customer?.value ?? "—",
                "ticketCount": String(c.ticketCount), "openCount": String(c.openCount),
                "recent": c.recent.map { ["displayNumber": $0.displayNumber, "subject": $0.subject, "status": $0.status] },
            ] as [String: Any]
        }
        return values
    }

    static func label(_ kind: HistoryItem.Kind) -> String {
        switch kind {
        case .created: "created"
        case .customerMessage: "customer message"
        case .agentReply: "reply"
        case .internalNote: "note"
        case .handoffNote: "handoff note"
        case .autoReply: "auto-reply"
        case .escalation: "escalation"
        case .attachment: "attachment"
        case .fieldChange: "field change"
        case .conflict: "conflict"
        }
    }

    /// What a form's action did, from the API's redirect (`?done=ACTION`).
    static func doneText(_ action: String) -> String {
        switch action {
        case "replies", "reply": "Reply sent."
        case "notes", "note": "Note added."
        case "fields": "Fields updated."
        case "tags": "Tags changed."
        case "transfer": "Transferred."
        case "escalate": "Escalated; the handoff waits for the other tier's answer."
        case "accept", "handoff/accept": "Handoff accepted: the ticket is this site's now."
        case "reject", "handoff/reject": "Handoff rejected."
        case "withdraw", "handoff/withdraw": "Handoff withdrawn."
        case "ack": "Page acknowledged."
        case "reopen": "Reopened."
        case "articles", "link": "Article linked."
        case "articles/new", "article": "Article published."
        default: "Done."
        }
    }
}
