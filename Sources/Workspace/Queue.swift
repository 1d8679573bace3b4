import Dashboard
import Desk
import Escalation
import Foundation
import Hummingbird
import TicketModel
import TicketStore

/// The workspace's lists of tickets.
public enum QueueView: String, Sendable, CaseIterable, Codable {
    /// Unresolved tickets assigned to the agent.
    case mine
    /// Unresolved tickets of the agent's groups, owned by its home site.
    case groups
    /// Unresolved tickets with no assignee, owned by this site.
    case unassigned
    /// Tickets with a running SLA clock past its warning point, owned by this site.
    case atRisk = "at_risk"
    /// Tickets with a running SLA clock past its deadline, owned by this site.
    case breached
    /// Tickets with a handoff to this site not yet answered.
    case handoffs
    /// Unresolved tickets with concurrent writes to review, owned by this site.
    case conflicts
    /// Every ticket the filters select.
    case all

    var title: String {
        switch self {
        case .mine: "My tickets"
        case .groups: "My groups"
        case .unassigned: "Unassigned"
        case .atRisk: "At risk"
        case .breached: "Breached"
        case .handoffs: "Handoffs waiting"
        case .conflicts: "Conflicts to review"
        case .all: "All tickets"
        }
    }
}

/// A queue request as read from the query string; a bad value is a ``WorkspaceError`` naming it.
struct QueueRequest: Sendable, Equatable {
    var view: QueueView = .mine
    var status: Status?
    /// `status=unresolved`: every status of work not yet done.
    var unresolved = false
    var group: String?
    var assignee: String?
    /// The owning site; `nil` means this node's site for the site-bound views, and `all` lifts it.
    var site: String?
    var sla: SLAState?
    var conflict: Bool?
    var text: String?
    var limit = 50
    var cursor: String?

    static let parameters: Set = ["view", "status", "group", "assignee", "site", "sla", "conflict", "q", "limit", "cursor"]

    init() {}

    /// - Parameter emptyMeansUnset: a page's form sends its empty fields (`site=`), which mean "any";
    ///   the JSON API refuses an empty value instead, naming it.
    init(_ query: [String: String], emptyMeansUnset: Bool = false) throws(WorkspaceError) {
        if !emptyMeansUnset, let empty = query.filter({ $0.value.isEmpty }).keys.sorted().first {
            throw WorkspaceError(.badRequest, field: empty, "is empty; leave the parameter out for any value")
        }
        let given = query.filter { !$0.value.isEmpty }
        if let unknown = given.keys.sorted().first(where: { !Self.parameters.contains($0) }) {
            throw WorkspaceError(.badRequest, field: unknown, "is not a query parameter here; known: \(Self.parameters.sorted().joined(separator: ", "))")
        }
        if let text = given["view"] {
            guard let view = QueueView(rawValue: text) else {
                throw WorkspaceError(.badRequest, field: "view", "expected one of \(QueueView.allCases.map(\.rawValue).joined(separator: ", ")), got \(text.debugDescription)")
            }
            self.view = view
        }
        if given["status"] == "unresolved" {
            unresolved = true
        } else if let text = given["status"] {
            guard let status = Status(rawValue: text) else {
                throw WorkspaceError(.badRequest, field: "status", "expected unresolved or one of \(Status.allCases.map(\.rawValue).joined(separator: ", ")), got \(text.debugDescription)")
            }
            self.status = status
        }
        if let text = given["sla"] {
            guard let sla = SLAState(rawValue: text), sla != .ok else {
                throw WorkspaceError(.badRequest, field: "sla", "expected at_risk or breached, got \(text.debugDescription)")
            }
            self.sla = sla
        }
        if let text = given["conflict"] {
            guard text == "true" || text == "false" else { throw WorkspaceError(.badRequest, field: "conflict", "expected true or false, got \(text.debugDescription)") }
            conflict = text == "true"
        }
        if let text = given["limit"] {
            guard let value = Int(text), (1...200).contains(value) else {
                throw WorkspaceError(.badRequest, field: "limit", "expected a whole number from 1 to 200, got \(text.debugDescription)")
            }
            limit = value
        }
        for (name, value) in [("group", given["group"]), ("assignee", given["assignee"]), ("site", given["site"]), ("q", given["q"]), ("cursor", given["cursor"])] {
            guard let value else { continue }
            guard value.count <= 200, !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw WorkspaceError(.badRequest, field: name, "must be at most 200 printable characters")
            }
        }
        if let site = given["site"], site != "all", (try? SiteID(site)) == nil {
            throw WorkspaceError(.badRequest, field: "site", "expected a site id (a-z, 0-9 and -, starting with a letter, at most 32) or all, got \(site.debugDescription)")
        }
        (group, assignee, site, text, cursor) = (given["group"], given["assignee"], given["site"], given["q"], given["cursor"])
    }

    /// The query string of this request with `changes` applied (for links and the next page).
    func link(_ changes: [String: String?] = [:]) -> String {
        var items: [String: String] = ["view": view.rawValue]
        if let status { items["status"] = status.rawValue }
        if unresolved { items["status"] = "unresolved" }
        if let group { items["group"] = group }
        if let assignee { items["assignee"] = assignee }
        if let site { items["site"] = site }
        if let sla { items["sla"] = sla.rawValue }
        if let conflict { items["conflict"] = String(conflict) }
        if let text { items["q"] = text }
        if limit != 50 { items["limit"] = String(limit) }
        for (key, value) in changes { items[key] = value }
        var components = URLComponents()
        components.queryItems = items.keys.sorted().map { URLQueryItem(name: $0, value: items[$0]) }
        return components.percentEncodedQuery ?? ""
    }
}

/// One ticket of a queue: its record and where it stands against its SLA.
struct QueueItem: Sendable, Encodable {
    var ticket: TicketRecord
    var slaDeadline: String?
    var slaState: SLAState?

    enum CodingKeys: String, CodingKey { case slaDeadline, slaState }

    func encode(to encoder: any Encoder) throws {
        try ticket.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(slaDeadline, forKey: .slaDeadline)
        try c.encode(slaState, forKey: .slaState)
    }
}

/// A page of a queue as the API answers it.
struct QueueAnswer: Sendable, Encodable {
    var view: QueueView
    var tickets: [QueueItem]
    var next: String?

    enum CodingKeys: String, CodingKey { case view, tickets, next }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(view, forKey: .view)
        try c.encode(tickets, forKey: .tickets)
        try c.encode(next, forKey: .next)
    }
}

/// Reads queues: the store's list (filters, order, paging) narrowed, for the SLA and handoff views,
/// by the dashboard's facts.
struct Queues: Sendable {
    let store: TicketDatabase
    let facts: FleetQueries
    let site: String

    func page(_ request: QueueRequest, agent: SignedIn, now: Int64) async throws -> QueueAnswer {
        var query = TicketListQuery(statuses: request.status.map { [$0] }, group: request.group, assignee: request.assignee,
                                    conflicted: request.conflict, text: request.text, limit: request.limit, cursor: request.cursor)
        let ownSite: String? = request.site == "all" ? nil : (request.site ?? site)
        var sla = request.sla
        switch request.view {
        case .mine:
            query.assignee = request.assignee ?? agent.name
            query.owningSite = request.site == nil || request.site == "all" ? nil : request.site
        case .groups:
            query.groups = agent.agent.groups
            query.owningSite = request.site == "all" ? nil : (request.site ?? agent.agent.site)
        case .unassigned:
            query.unassigned = true
            query.owningSite = ownSite
        case .atRisk:
            sla = .atRisk
            query.owningSite = ownSite
        case .breached:
            sla = .breached
            query.owningSite = ownSite
        case .handoffs:
            query.ids = try await facts.ticketsAwaitingHandoff(to: site)
            query.owningSite = request.site == nil || request.site == "all" ? nil : request.site
        case .conflicts:
            query.conflicted = true
            query.owningSite = ownSite
        case .all:
            query.owningSite = request.site == "all" ? nil : request.site
        }
        if request.unresolved || (request.status == nil && [.mine, .groups, .unassigned, .conflicts].contains(request.view)) {
            query.statuses = TicketListQuery.unresolved
        }
        if let sla {
            let due = try await facts.tickets(in: sla, now: now, site: query.owningSite)
            query.ids = (query.ids.map { Set($0) }.map { ids in due.map(\.ticket).filter(ids.contains) }) ?? due.map(\.ticket)
        }
        let store = store, listing = query
        let page: TicketPage
        do {
            page = try await offload { try store.listTickets(listing) }
        } catch let error as StoreError where error.code == .invalidInput {
            throw WorkspaceError(.badRequest, field: "cursor", error.detail)
        }
        let due = try await facts.due(page.tickets.map(\.id))
        let items = page.tickets.map { record in
            let clock = due[record.id]
            return QueueItem(ticket: record, slaDeadline: clock?.deadline.map(SLAReport.iso), slaState: clock?.state(now: now))
        }
        return QueueAnswer(view: request.view, tickets: items, next: page.next)
    }
}
