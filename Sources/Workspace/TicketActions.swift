import Desk
import Escalation
import Foundation
import HTTPTypes
import Hummingbird
import Intake
import HummingbirdAuth
import NIOCore
import StrictJSON
import TicketModel
import TicketStore

/// The ticket API's writes (`Docs/workspace-openapi.yaml`): every agent action the CLI has, as
/// `POST /api/tickets/{ref}/ACTION`, for the workspace's pages and for programs.
///
/// | route | body | permission |
/// |---|---|---|
/// | `replies`, `notes` | `body` | work |
/// | `fields` | `subject`, `status`, `priority`, `assignee`, `group`, `category`, `custom` | work |
/// | `tags` | `add`, `remove` | work |
/// | `reopen`, `ack` | — | work |
/// | `transfer` | `group`, `reason` | work |
/// | `escalate` | `to`, `summary`, `verifiedFacts`, `stepsTried`, `requestedAction` | escalate |
/// | `handoff/accept`, `handoff/reject`, `handoff/withdraw` | —, `reason`, `reason` | handoffs |
/// | `articles` (link) | `article` | work |
/// | `articles/new` (write) | `title`, `summary`, `rootCause`, `steps` | articles |
///
/// The actor of every write is the signed-in agent; no body names one. A JSON request is answered
/// in JSON (the ticket as it is after the write, and what the action made); a form post from the
/// page is answered `303 See Other` back to the ticket's page, with `?done=ACTION`, or with
/// `?error=MESSAGE&field=FIELD` when it was refused.
///
/// Register them on a group that already requires a signed-in agent (``RequireAgent``): each route
/// checks its own permission on top. Store work runs on the NIO thread pool (``offload(_:)``).
struct TicketActions: Sendable {
    let store: TicketDatabase
    let now: @Sendable () -> Int64

    /// Text limits in Unicode scalars, chosen so that the worst case in UTF-8 fits the block's limits
    /// (an event body 64 KiB, a field 4 KiB, a name 256 bytes).
    enum Limit {
        static let body = 16_000
        static let text = 1_000
        static let notePart = 2_000
        static let name = 200
        static let group = 64
        static let tag = 64
        static let tags = 20
        static let customFields = 20
    }

    /// One ticket resolved for an action, and who acts.
    struct Call {
        let desk: HelpDesk
        let ticket: TicketRecord
        let actor: String
        let now: Int64
        var id: String { ticket.id }
    }

    /// What an action wrote besides the ticket's own fields.
    enum Made: Sendable {
        case nothing
        /// A field update's survey token (issued when it solved the ticket), shown once.
        case survey(String?)
        case event(TicketEvent)
        case article(ArticleRecord)
    }

    struct Outcome: Sendable {
        var status: HTTPResponse.Status
        var ticket: TicketRecord
        var made: Made
    }

    /// The store work of an action whose body has been read.
    typealias Work = @Sendable (Call) throws -> Outcome

    /// One route: its path below the ticket, the word the page is sent back with, and how its body is read.
    struct Route: Sendable {
        var path: String
        var done: String
        var permission: Permission
        var known: Set<String> = []
        var maps: Set<String> = []
        /// The member a `notFound` refusal of the Desk names, once the ticket itself was found.
        var unknown = "ref"
        var parse: @Sendable (ActionBody) throws -> Work
    }

    func register<Methods: RouterMethods<AgentContext>>(on router: Methods) {
        for route in Self.routes {
            router.post("/api/tickets/{ref}/\(route.path)") { request, context in
                try await handle(request, context: context, route)
            }
        }
    }

    static let routes: [Route] = [
        Route(path: "replies", done: "reply", permission: .work, known: ["body"]) { body in
            let text = try body.text("body", required: true, max: Limit.body, empty: .refused)!
            return { call in Outcome(status: .created, ticket: try call.desk.reply(call.id, body: text, actor: call.actor), made: .nothing) }
        },
        Route(path: "notes", done: "note", permission: .work, known: ["body"]) { body in
            let text = try body.text("body", required: true, max: Limit.body, empty: .refused)!
            return { call in Outcome(status: .created, ticket: try call.desk.note(call.id, body: text, actor: call.actor), made: .nothing) }
        },
        Route(path: "fields", done: "fields", permission: .work, known: ["subject", "status", "priority", "assignee", "group", "category", "custom"],
              maps: ["custom"], parse: fields),
        Route(path: "tags", done: "tags", permission: .work, known: ["add", "remove"]) { body in
            let add = try body.list("add", maxItems: Limit.tags, maxLength: Limit.tag)
            let remove = try body.list("remove", maxItems: Limit.tags, maxLength: Limit.tag)
            guard !add.isEmpty || !remove.isEmpty else { throw WorkspaceError(.badRequest, field: "add", "name at least one tag to add or to remove") }
            return { call in Outcome(status: .ok, ticket: try call.desk.tag(call.id, add: add, remove: remove, actor: call.actor), made: .nothing) }
        },
        Route(path: "reopen", done: "reopen", permission: .work) { _ in
            { call in Outcome(status: .ok, ticket: try call.desk.reopen(call.id, actor: call.actor), made: .nothing) }
        },
        Route(path: "transfer", done: "transfer", permission: .work, known: ["group", "reason"]) { body in
            let group = try body.text("group", required: true, max: Limit.group, empty: .refused)!
            try desk { () throws(DeskError) in try HelpDesk.checkGroupName(group, field: "group") }
            let reason = try body.text("reason", max: Limit.text, empty: .absent)
            return written { call in try call.desk.transfer(call.id, group: group, reason: reason, actor: call.actor, now: call.now) }
        },
        Route(path: "escalate", done: "escalate", permission: .escalate,
              known: ["to", "summary", "verifiedFacts", "stepsTried", "requestedAction"]) { body in
            let to = try body.text("to", required: true, max: Limit.name, empty: .refused)!
            func part(_ name: String) throws -> String { try body.text(name, required: true, max: Limit.notePart, empty: .refused)! }
            let note = HandoffNote(summary: try part("summary"), verifiedFacts: try part("verifiedFacts"), stepsTried: try part("stepsTried"),
                                   requestedAction: try part("requestedAction"))
            return written { call in try call.desk.escalate(call.id, to: to, note: note, actor: call.actor, now: call.now) }
        },
        Route(path: "handoff/accept", done: "accept", permission: .handoffs) { _ in
            written { call in try call.desk.accept(call.id, actor: call.actor, now: call.now) }
        },
        Route(path: "handoff/reject", done: "reject", permission: .handoffs, known: ["reason"]) { body in
            let reason = try body.text("reason", required: true, max: Limit.text, empty: .refused)!
            return written { call in try call.desk.reject(call.id, reason: reason, actor: call.actor, now: call.now) }
        },
        Route(path: "handoff/withdraw", done: "withdraw", permission: .handoffs, known: ["reason"]) { body in
            let reason = try body.text("reason", max: Limit.text, empty: .absent)
            return written { call in try call.desk.withdraw(call.id, reason: reason, actor: call.actor, now: call.now) }
        },
        Route(path: "ack", done: "ack", permission: .work) { _ in
            written { call in try call.desk.acknowledge(call.id, actor: call.actor, now: call.now) }
        },
        Route(path: "articles", done: "link", permission: .work, known: ["article"], unknown: "article") { body in
            let article = try body.text("article", required: true, max: Limit.name, empty: .refused)!
            return { call in
                let (ticket, linked) = try call.desk.link(call.id, article: article, actor: call.actor)
                return Outcome(status: .ok, ticket: ticket, made: .article(linked))
            }
        },
        Route(path: "articles/new", done: "article", permission: .articles, known: ["title", "summary", "rootCause", "steps"]) { body in
            func part(_ name: String) throws -> String { try body.text(name, required: true, max: Limit.text, empty: .refused)! }
            let (title, summary, rootCause, steps) = (try part("title"), try part("summary"), try part("rootCause"), try part("steps"))
            return { call in
                // The store refuses an unsolved ticket as a write it cannot take (503); it is the ticket's state.
                guard Status(rawValue: call.ticket.status)?.isResolved == true else {
                    throw WorkspaceError(.conflict, field: nil, "the ticket is \(call.ticket.status); write its article once it is solved")
                }
                let article = try call.desk.writeArticle(from: call.id, ArticleDraft(title: title, summary: summary, rootCause: rootCause,
                                                                                   steps: steps, author: call.actor))
                return Outcome(status: .created, ticket: call.ticket, made: .article(article))
            }
        },
    ]

    /// `POST …/fields`: the members given are written; an empty `assignee`, `group`, `category` or
    /// custom field clears it. Assignee and group are checked against the agent directory.
    static func fields(_ body: ActionBody) throws -> Work {
        let status = try body.choice("status", Status.writable.map(\.rawValue)).flatMap(Status.init(rawValue:))
        let priority = try body.choice("priority", Priority.allCases.map(\.rawValue)).flatMap(Priority.init(rawValue:))
        let group = try body.text("group", max: Limit.group, empty: .clears)
        if let group, !group.isEmpty { try desk { () throws(DeskError) in try HelpDesk.checkGroupName(group, field: "group") } }
        let custom = try body.pairs("custom", maxItems: Limit.customFields, maxNameLength: 64, maxLength: Limit.text)
        if let reserved = custom.first(where: { TicketLookup.reserved.contains($0.name.precomposedStringWithCanonicalMapping) }) {
            throw WorkspaceError(.badRequest, field: "custom.\(reserved.name)", "is written by intake when it opens a ticket (it says where replies go); an update may not set it")
        }
        let update = FieldUpdate(subject: try body.text("subject", max: Limit.text, empty: .refused), status: status, priority: priority,
                                 assignee: try body.text("assignee", max: Limit.name, empty: .clears), group: group,
                                 category: try body.text("category", max: 64, empty: .clears), custom: custom)
        guard update != FieldUpdate() else {
            throw WorkspaceError(.badRequest, field: nil, "nothing to update: give at least one of subject, status, priority, assignee, group, category or custom")
        }
        try desk { () throws(DeskError) in try update.validate() }
        return { call in
            // The store refuses this as a write it cannot take (503); it is the ticket's state.
            if let status, status != .closed, call.ticket.status == Status.closed.rawValue {
                throw WorkspaceError(.conflict, field: "status", "the ticket is closed; reopen it first (POST /api/tickets/{ref}/reopen)")
            }
            let (ticket, survey) = try call.desk.update(call.id, update, actor: call.actor)
            return Outcome(status: .ok, ticket: ticket, made: .survey(survey))
        }
    }

    /// Work that writes one escalation record: answered 201 with the record and the ticket after it.
    static func written(_ write: @escaping @Sendable (Call) throws -> TicketEvent) -> Work {
        { call in
            let event = try write(call)
            let ticket = try call.desk.store.ticket(call.id)
            return Outcome(status: .created, ticket: ticket, made: .event(event))
        }
    }

    /// Runs one of the Desk's checks, its refusal as a ``WorkspaceError``.
    static func desk(_ check: () throws(DeskError) -> Void) throws(WorkspaceError) {
        do { try check() } catch { throw WorkspaceError(error) }
    }

    // MARK: Handling

    func handle(_ request: Request, context: AgentContext, _ route: Route) async throws -> Response {
        guard let agent = context.identity else {
            return WorkspaceError(.unauthorized, field: "Authorization", "sign in first").response
        }
        let given = context.parameters.get("ref").map { $0.removingPercentEncoding ?? $0 } ?? ""
        let encoding: ActionBody.Encoding
        do { encoding = try ActionBody.Encoding(request) } catch { return error.response }
        let page = encoding == .form
        var request = request
        var shown = given
        do {
            try Self.desk { () throws(DeskError) in try agent.require(route.permission) }
            let body = try await ActionBody.read(&request, as: encoding, known: route.known, maps: route.maps)
            let work = try route.parse(body)
            let store = store, actor = agent.name, now = now(), unknown = route.unknown
            let (number, result) = try await offload { () throws -> (String?, Result<Outcome, WorkspaceError>) in
                let call: Call
                do {
                    call = Call(desk: try HelpDesk(store: store), ticket: try store.ticket(given), actor: actor, now: now)
                } catch let error as StoreError {
                    return (nil, .failure(WorkspaceError(DeskError(error), unknown: "ref")))
                } catch let error as DeskError {
                    return (nil, .failure(WorkspaceError(error, unknown: "ref")))
                }
                do {
                    return (call.ticket.displayNumber, .success(try work(call)))
                } catch let error as WorkspaceError {
                    return (call.ticket.displayNumber, .failure(error))
                } catch let error as StoreError {
                    return (call.ticket.displayNumber, .failure(WorkspaceError(DeskError(error), unknown: unknown)))
                } catch let error as DeskError {
                    return (call.ticket.displayNumber, .failure(WorkspaceError(error, unknown: unknown)))
                } catch {
                    // A full disk or an I/O error while writing: JSON 503, as the intake API answers.
                    guard let refusal = WorkspaceError(storage: error) else { throw error }
                    return (call.ticket.displayNumber, .failure(refusal))
                }
            }
            if let number { shown = number }
            let outcome = try result.get()
            if page { return redirect(to: Self.pagePath(shown) + "?done=" + Self.queryValue(route.done)) }
            return try jsonResponse(outcome.status, Answer(outcome))
        } catch let error as WorkspaceError {
            guard page else { return error.response }
            return redirect(to: Self.pagePath(shown) + "?error=" + Self.queryValue(error.message) + (error.field.map { "&field=" + Self.queryValue($0) } ?? ""))
        }
    }

    /// The workspace page of a ticket.
    static func pagePath(_ ticket: String) -> String { "/desk/tickets/" + queryValue(ticket) }

    /// Unreserved characters (RFC 3986) stay; everything else is percent-encoded, so a value is safe
    /// in a path segment and in a query alike.
    static func queryValue(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    // MARK: Answers

    /// A ticket as the API's answers show it (the list's rows show the same keys and more).
    struct Summary: Encodable {
        var id: String
        var displayNumber: String
        var subject: String
        var status: String
        var priority: String
        @NullEncoded var assignee: String?
        @NullEncoded var group: String?
        var owningSite: String
        var tags: [String]
        var conflictCount: Int
        @NullEncoded var updatedAt: String?

        init(_ record: TicketRecord) {
            id = record.id
            displayNumber = record.displayNumber
            subject = record.subject
            status = record.status
            priority = record.priority
            assignee = record.assignee
            group = record.group
            owningSite = record.owningSite
            tags = record.tags
            conflictCount = record.conflictCount
            updatedAt = record.updatedAt
        }
    }

    /// An escalation record written by an action: the event, and its record as JSON.
    struct Event: Encodable {
        var id: String
        var kind: String
        var actor: String
        var visibility: String
        @NullEncoded var record: StrictJSON.Node?

        init(_ event: TicketEvent) {
            id = event.id.lowercaseText
            kind = event.kind.rawValue
            actor = event.actor
            visibility = event.visibility.rawValue
            record = try? StrictJSON.parse(Array(event.body.utf8))
        }
    }

    /// `{"ticket": …}`, with `surveyToken`, `event` or `article` as the action made one.
    struct Answer: Encodable {
        var ticket: Summary
        var made: Made

        init(_ outcome: Outcome) {
            ticket = Summary(outcome.ticket)
            made = outcome.made
        }

        enum CodingKeys: String, CodingKey { case ticket, surveyToken, event, article }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ticket, forKey: .ticket)
            switch made {
            case .nothing: break
            case .survey(let token): try container.encode(token, forKey: .surveyToken)
            case .event(let event): try container.encode(Event(event), forKey: .event)
            case .article(let article): try container.encode(article, forKey: .article)
            }
        }
    }
}
