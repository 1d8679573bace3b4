import Desk
import Escalation
import Foundation
import TicketModel
import TicketStore

/// A handoff waiting for an answer, as the ticket view shows it.
struct HandoffView: Sendable, Encodable {
    var id: String
    var fromSite: String?
    var toSite: String?
    var toGroup: String?
    var requestedAt: String
    var requestedBy: String?
    var note: HandoffNote?
    /// Asked of this node's site: its agents answer it here.
    var incoming: Bool

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(fromSite, forKey: .fromSite)
        try c.encode(toSite, forKey: .toSite)
        try c.encode(toGroup, forKey: .toGroup)
        try c.encode(requestedAt, forKey: .requestedAt)
        try c.encode(requestedBy, forKey: .requestedBy)
        try c.encode(note, forKey: .note)
        try c.encode(incoming, forKey: .incoming)
    }
    enum CodingKeys: String, CodingKey { case id, fromSite, toSite, toGroup, requestedAt, requestedBy, note, incoming }
}

/// A knowledge article suggested for the ticket's subject.
struct Suggestion: Sendable, Encodable {
    var ref: String
    var title: String
    var summary: String
}

/// Everything the ticket page shows and `GET /api/tickets/{ref}` answers: the ticket and its whole
/// history (conflicts as such), its SLA clocks and escalation history, the handoff waiting (if any),
/// the customer panel, linked and suggested articles, and what the asking agent may do.
struct TicketView: Sendable, Encodable {
    var detail: TicketDetail
    var sla: SLAReport
    var pendingHandoff: HandoffView?
    var suggestions: [Suggestion]
    var permissions: [String: Bool]

    enum CodingKeys: String, CodingKey { case sla, pendingHandoff, suggestions, permissions }

    func encode(to encoder: any Encoder) throws {
        // The ticket's keys at the top level, as `tierline ticket show --json` gives them.
        try detail.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sla, forKey: .sla)
        try c.encode(pendingHandoff, forKey: .pendingHandoff)
        try c.encode(suggestions, forKey: .suggestions)
        try c.encode(permissions, forKey: .permissions)
    }

    /// Reads the ticket `ref` as `agent` sees it at `now` (blocking: call it through ``offload``).
    static func read(_ ref: String, store: TicketDatabase, site: String, agent: SignedIn, now: Int64) throws -> TicketView {
        do {
            let detail = try store.detail(ref)
            let (state, evaluation) = try EscalationDesk(store: store).evaluate(ref, now: now)
            let sla = SLAReport(state, evaluation, now: now)
            let pending = evaluation.pendingHandoffs.last.map { request in
                HandoffView(id: request.id.lowercaseText, fromSite: request.site?.rawValue, toSite: request.record.toSite,
                            toGroup: request.record.toGroup, requestedAt: SLAReport.iso(request.record.at), requestedBy: request.actor,
                            note: request.record.note, incoming: request.record.toSite == site)
            }
            // Suggestions for the subject; a subject the search cannot read (only punctuation) has none.
            let hits = (try? store.searchArticles(String(detail.ticket.subject.prefix(200)), limit: 5)) ?? []
            let linked = Set(detail.articles.map(\.id))
            let suggestions = hits.filter { !linked.contains($0.article.id) }.map {
                Suggestion(ref: $0.article.ref, title: $0.article.title, summary: $0.article.summary)
            }
            var permissions: [String: Bool] = [:]
            for permission in Permission.allCases { permissions[permission.rawValue] = agent.may(permission) }
            return TicketView(detail: detail, sla: sla, pendingHandoff: pending, suggestions: suggestions, permissions: permissions)
        } catch let error as StoreError {
            throw WorkspaceError(DeskError(error), unknown: "ref")
        } catch let error as DeskError {
            throw WorkspaceError(error, unknown: "ref")
        }
    }
}
