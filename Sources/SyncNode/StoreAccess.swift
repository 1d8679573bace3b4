import NIOConcurrencyHelpers
import NIOPosix
import TicketStore

/// Runs the store's blocking SQLite calls on NIO's shared pool of blocking threads, never on an
/// event loop or a cooperative thread of Swift concurrency. Intake uses the same pool, so a process
/// has one fixed set of threads that wait on SQLite, however many sessions and requests it serves.
public final class StoreAccess: Sendable {
    public let database: TicketDatabase

    public init(_ database: TicketDatabase) { self.database = database }

    /// Runs `work` with the store on the pool.
    public func run<T: Sendable>(_ work: @escaping @Sendable (TicketDatabase) throws -> T) async throws -> T {
        let database = database
        return try await NIOThreadPool.singleton.runIfActive { try work(database) }
    }
}

/// Tells every live session that the store may hold blocks its peer lacks.
///
/// Sessions subscribe; a signal wakes each at most once however many arrive while it is busy.
public final class ChangeFeed: Sendable {
    private let state = NIOLockedValueBox((next: 0, subscribers: [Int: AsyncStream<Void>.Continuation]()))

    public init() {}

    /// A wake-up stream, and the token to cancel it.
    public func subscribe() -> (token: Int, stream: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = state.withLockedValue { state in
            state.next += 1
            state.subscribers[state.next] = continuation
            return state.next
        }
        return (token, stream)
    }

    public func unsubscribe(_ token: Int) {
        state.withLockedValue { $0.subscribers.removeValue(forKey: token) }?.finish()
    }

    /// Wakes every subscriber.
    public func signal() {
        for continuation in state.withLockedValue({ Array($0.subscribers.values) }) { continuation.yield() }
    }

    /// Wakes one subscriber.
    func signal(_ token: Int) {
        _ = state.withLockedValue { $0.subscribers[token] }?.yield()
    }
}
