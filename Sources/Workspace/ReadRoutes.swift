import Dashboard
import Desk
import Foundation
import Hummingbird
import Intake
import HummingbirdAuth
import TicketStore

/// The ticket API's reads: `GET /api/tickets` (a queue) and `GET /api/tickets/{ref}` (a ticket).
struct ReadRoutes: Sendable {
    let queues: Queues
    let now: @Sendable () -> Int64

    func register(on router: some RouterMethods<AgentContext>) {
        router.get("/api/tickets") { request, context in
            do {
                let agent = try context.requireIdentity()
                return try jsonResponse(.ok, try await queues.page(QueueRequest(parameters(request)), agent: agent, now: now()))
            } catch let error as WorkspaceError {
                return error.response
            }
        }
        router.get("/api/tickets/{ref}") { request, context in
            do {
                let agent = try context.requireIdentity()
                let ref = context.parameters.get("ref") ?? ""
                if let unknown = parameters(request).keys.sorted().first {
                    throw WorkspaceError(.badRequest, field: unknown, "is not a query parameter here; this route takes none")
                }
                let store = queues.store, site = queues.site, at = now()
                return try jsonResponse(.ok, try await offload { try TicketView.read(ref, store: store, site: site, agent: agent, now: at) })
            } catch let error as WorkspaceError {
                return error.response
            }
        }
    }
}

/// A request's query parameters (the last of a repeated name wins).
func parameters(_ request: Request) -> [String: String] {
    var out: [String: String] = [:]
    for (key, value) in request.uri.queryParameters { out[String(key)] = String(value) }
    return out
}
