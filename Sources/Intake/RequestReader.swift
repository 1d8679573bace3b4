import Desk
import Foundation
import StrictJSON
import TicketStore
import HTTPTypes

/// A refused intake request: the HTTP status, the field at fault (a JSON path such as
/// `attachments[0].size`, a header name, or `nil`) and what to do.
public struct IntakeError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var field: String?
    public var message: String

    public init(_ status: HTTPResponse.Status, field: String?, _ message: String) {
        self.status = status
        self.field = field
        self.message = message
    }

    /// A refusal of the Desk layer as an HTTP answer. A reference that finds nothing names
    /// `unknown`, the member the reference came from. The node's other API (the workspace's) answers
    /// the Desk's refusals through this same mapping.
    public init(_ error: DeskError, unknown: String?) {
        switch error.code {
        case .invalidInput, .invalidConfiguration: self.init(.badRequest, field: error.field, error.message)
        case .notFound: self.init(.notFound, field: error.field ?? unknown, error.message)
        case .wrongState: self.init(.conflict, field: error.field, error.message)
        case .notPermitted: self.init(.forbidden, field: error.field, error.message)
        // The store cannot take writes now (restored and awaiting sync, a key mismatch): try later.
        case .storeRefused: self.init(.serviceUnavailable, field: nil, error.message)
        }
    }

    /// SQLite's failure to write the store as an HTTP answer: 503 with JSON, nothing stored, retry
    /// later. `nil` for any other error.
    public init?(storage error: any Error) {
        switch StorageFailure(error) {
        case .full?:
            self.init(.serviceUnavailable, field: nil,
                      "the node's disk is full, so nothing was stored; retry later (the node's operator must free space where its store is)")
        case .io?:
            self.init(.serviceUnavailable, field: nil,
                      "the node could not write its store (an I/O error), so nothing was stored; retry later (the node's log says more)")
        case .aborted?:
            self.init(.serviceUnavailable, field: nil,
                      "the store was busy and the transaction this request was written in ended before its commit, so nothing was stored; retry the same request")
        case .overloaded?:
            self.init(.serviceUnavailable, field: nil, "the node has more requests waiting for its store than it queues; retry later")
        case nil: return nil
        }
    }

    static func bad(_ field: String, _ message: String) -> IntakeError { IntakeError(.badRequest, field: field, message) }

    public var description: String { "\(status.code) \(field.map { "\($0): " } ?? "")\(message)" }
}

/// A JSON document as decoded, keeping integers apart from other numbers and `null` apart from absence.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    static func parse(_ bytes: [UInt8]) throws(IntakeError) -> JSONValue {
        // One strict pass: a repeated member would otherwise keep its last value silently.
        do { return JSONValue(try StrictJSON.parse(bytes)) } catch {
            // A syntax error is the body's as a whole: `field` is null, as the OpenAPI file says.
            throw IntakeError(.badRequest, field: nil,
                              "the body is not valid JSON at \(error.position)\(error.path.isEmpty ? "" : " (\(error.path))"): \(error.message); send one JSON object (Content-Type: application/json)")
        }
    }

    /// The value of a strictly parsed document. A number is an integer when it has an integral value
    /// that fits 64 bits, else a double.
    init(_ node: StrictJSON.Node) {
        switch node.value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .string(let text): self = .string(text)
        case .number(let text):
            let double = Double(text) ?? .nan
            if let integer = Int64(text) {
                self = .integer(integer)
            } else if double == double.rounded(), abs(double) < 9.2e18 {
                self = .integer(Int64(double))  // 5.0 and 1e3 are integers, as they were to JSONDecoder
            } else {
                self = .number(double)
            }
        case .array(let elements): self = .array(elements.map(JSONValue.init))
        case .object(let members): self = .object(Dictionary(members.map { ($0.name, JSONValue($0.value)) }) { first, _ in first })
        }
    }
}

/// Reads one JSON object's members by name, naming the member's path in every refusal. Unknown
/// members are refused, so a misspelt optional key never passes unnoticed.
struct ObjectReader {
    let members: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String, known: Set<String>) throws(IntakeError) {
        guard case .object(let members) = value else {
            // The body as a whole has no field name: `field` is null, as the OpenAPI file says.
            throw IntakeError(.badRequest, field: path.isEmpty ? nil : path, "\(path.isEmpty ? "the body" : path) must be a JSON object, not \(value.typeName)")
        }
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw IntakeError.bad(Self.join(path, unknown), "unknown key; known keys: \(known.sorted().joined(separator: ", "))")
        }
        self.members = members
        self.path = path
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func at(_ key: String) -> String { Self.join(path, key) }

    func has(_ key: String) -> Bool { members[key] != nil }

    /// How a string member may be empty.
    enum Emptiness {
        /// Refused when empty or only whitespace (a subject, a message).
        case text
        /// Refused when empty (an id: any characters count).
        case nonEmpty
        /// Allowed, and read as absent.
        case absent
    }

    /// A string member: `nil` when absent; refused when required and absent, not a string, empty as
    /// `empty` says, or longer than `max` characters (Unicode scalars, as JSON Schema counts them).
    func string(_ key: String, required: Bool = false, max: Int, empty: Emptiness = .nonEmpty) throws(IntakeError) -> String? {
        guard let value = members[key] else {
            if required { throw IntakeError.bad(at(key), "is required") }
            return nil
        }
        guard case .string(let text) = value else { throw IntakeError.bad(at(key), "must be a string, not \(value.typeName)") }
        let length = text.unicodeScalars.count
        if length > max { throw IntakeError.bad(at(key), "is \(length) characters; the limit is \(max)") }
        switch empty {
        case .text where text.unicodeScalars.allSatisfy(\.properties.isWhitespace):
            throw IntakeError.bad(at(key), "must hold some text, not only whitespace")
        case .nonEmpty where text.isEmpty:
            throw IntakeError.bad(at(key), "must not be empty")
        case .absent where text.isEmpty:
            if required { throw IntakeError.bad(at(key), "must not be empty") }
            return nil
        default:
            return text
        }
    }

    /// A string member that must be one of `allowed`.
    func choice(_ key: String, _ allowed: [String], required: Bool = false) throws(IntakeError) -> String? {
        guard let text = try string(key, required: required, max: 64) else { return nil }
        guard allowed.contains(text) else { throw IntakeError.bad(at(key), "must be one of \(allowed.joined(separator: ", ")), not \(text.debugDescription)") }
        return text
    }

    /// An integer member within `range`.
    func integer(_ key: String, required: Bool = false, _ range: ClosedRange<Int64>) throws(IntakeError) -> Int64? {
        guard let value = members[key] else {
            if required { throw IntakeError.bad(at(key), "is required") }
            return nil
        }
        guard case .integer(let number) = value else { throw IntakeError.bad(at(key), "must be a whole number, not \(value.typeName)") }
        guard range.contains(number) else { throw IntakeError.bad(at(key), "must be from \(range.lowerBound) to \(range.upperBound), got \(number)") }
        return number
    }

    /// An object member, read with `known` keys.
    func object(_ key: String, required: Bool = false, known: Set<String>) throws(IntakeError) -> ObjectReader? {
        guard let value = members[key] else {
            if required { throw IntakeError.bad(at(key), "is required") }
            return nil
        }
        return try ObjectReader(value, path: at(key), known: known)
    }

    /// An array member of at most `max` items (at least `min`), each with its path.
    func array(_ key: String, required: Bool = false, min: Int = 0, max: Int) throws(IntakeError) -> [(value: JSONValue, path: String)]? {
        guard let value = members[key] else {
            if required { throw IntakeError.bad(at(key), "is required") }
            return nil
        }
        guard case .array(let items) = value else { throw IntakeError.bad(at(key), "must be an array, not \(value.typeName)") }
        guard items.count >= min else { throw IntakeError.bad(at(key), "needs at least \(min) item(s)") }
        guard items.count <= max else { throw IntakeError.bad(at(key), "has \(items.count) items; the limit is \(max)") }
        return items.enumerated().map { ($0.element, "\(at(key))[\($0.offset)]") }
    }

    /// An array of strings, each 1…`maxLength` characters.
    func strings(_ key: String, max: Int, maxLength: Int) throws(IntakeError) -> [String] {
        var out: [String] = []
        for (value, path) in try array(key, max: max) ?? [] {
            guard case .string(let text) = value else { throw IntakeError.bad(path, "must be a string, not \(value.typeName)") }
            guard !text.unicodeScalars.allSatisfy(\.properties.isWhitespace) else { throw IntakeError.bad(path, "must hold some text, not only whitespace") }
            guard text.unicodeScalars.count <= maxLength else { throw IntakeError.bad(path, "is \(text.unicodeScalars.count) characters; the limit is \(maxLength)") }
            out.append(text)
        }
        return out
    }
}

extension UUID {
    /// The id as Tierline writes it: lowercase.
    var text: String { uuidString.lowercased() }
}
