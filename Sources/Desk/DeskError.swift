import Escalation
import TicketStore

/// Why a use case was refused: a stable code for scripts and HTTP clients, the field that was wrong
/// (if one was), and a message that says what to do.
///
/// Every function of the Desk layer throws only this. The message never repeats the field's name, so
/// each edge can name it its own way: the CLI as a flag (`--group`), an HTTP API as a member.
public struct DeskError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// The request itself is wrong (a missing, empty or malformed value): fix it and try again.
        case invalidInput = "invalid_input"
        /// No ticket, article, customer or token answers to the reference given.
        case notFound = "not_found"
        /// The ticket's state does not allow it now (closed, no pending handoff, no running ladder).
        case wrongState = "wrong_state"
        /// This site or its role may not do it (only the coordinator publishes).
        case notPermitted = "not_permitted"
        /// The store refuses to write: not initialized, a restore fence, a copied store, a key that
        /// does not match, or a file that is not a store.
        case storeRefused = "store_refused"
        /// A configuration file with problems; ``DeskError/problems`` lists every one.
        case invalidConfiguration = "invalid_configuration"
    }

    public var code: Code
    /// The input that was wrong, by its API name (`group`, `verifiedFacts`), if one was.
    public var field: String?
    public var message: String
    /// Every problem of a configuration file, each with its place (for ``Code/invalidConfiguration``).
    public var problems: [String]

    public init(_ code: Code, field: String? = nil, _ message: String, problems: [String] = []) {
        self.code = code
        self.field = field
        self.message = message
        self.problems = problems
    }

    /// The field (if any) and the message, for a log or a terminal.
    public var description: String { field.map { "\($0) \(message)" } ?? message }

    /// The Desk's reading of the store's refusals.
    public init(_ error: StoreError) {
        let code: Code = switch error.code {
        case .unknownTicket, .unknownToken: .notFound
        case .invalidInput: .invalidInput
        case .alreadyAnswered: .wrongState
        case .notInitialized, .alreadyInitialized, .corruptFile, .refusedWrite, .keyMismatch, .awaitingSync: .storeRefused
        }
        self.init(code, error.detail)
    }

    /// Runs `body`, turning the store's and the configuration reader's errors into ``DeskError``.
    /// Anything else (an I/O failure, SQLite's own error) is passed on as it is: it is not a refusal
    /// the caller can act on, and its own message says more.
    static func translating<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StoreError {
            throw DeskError(error)
        } catch let errors as ConfigErrors {
            throw DeskError(.invalidConfiguration, "nothing was published; fix every problem listed and publish again",
                            problems: errors.issues.map(\.description))
        }
    }
}
