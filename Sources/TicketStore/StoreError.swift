import TicketModel

/// What went wrong with a store, with what to do about it. Ticket text never appears here.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notInitialized, alreadyInitialized, unknownTicket, invalidInput, corruptFile, refusedWrite, keyMismatch, awaitingSync
        /// A survey token or API token this store does not know.
        case unknownToken
        /// A survey answered already.
        case alreadyAnswered
    }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { detail }
}
