import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StrictJSON

/// The body of a ticket action as the API reads it: a JSON object (programs, the page's scripts) or
/// an `application/x-www-form-urlencoded` form (the page's plain HTML forms), asked for its members
/// the same way whatever the encoding. Every refusal is a ``WorkspaceError`` naming the member.
///
/// JSON is strict: a member the action does not take is refused (with the nearest known name), and
/// so is a value of the wrong type or `null` (leave the member out instead). A form may carry the
/// anti-forgery field `csrf` besides, which ``RequireAgent`` has already checked.
///
/// ```swift
/// let body = try await ActionBody.read(&request, as: .json, known: ["body"])
/// let text = try body.text("body", required: true, max: 16_000, empty: .refused)
/// ```
///
/// Reading collects at most ``maxBytes`` of the body on the calling task; parsing is in memory.
struct ActionBody {
    /// How the body is encoded, from its `Content-Type`.
    enum Encoding: Sendable {
        case json
        case form
        /// No `Content-Type`: the body must be empty (an action that takes no members).
        case none

        /// The encoding `request` declares, or a 415 naming `Content-Type`.
        init(_ request: Request) throws(WorkspaceError) {
            guard let header = request.headers[.contentType] else {
                self = .none
                return
            }
            let media = header.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            switch media {
            case "application/json": self = .json
            case "application/x-www-form-urlencoded": self = .form
            default:
                throw WorkspaceError(.unsupportedMediaType, field: "Content-Type",
                                     "send the body as application/json (or application/x-www-form-urlencoded from a form), not \(StrictJSON.printable(String(header.prefix(100))))")
            }
        }
    }

    /// What an empty text means for a member.
    enum Emptiness {
        /// Refused when empty or only whitespace (a reply, a subject). From a form, an optional
        /// member's empty value reads as absent: browsers send every input, filled in or not.
        case refused
        /// Allowed, and means "clear it" (an assignee, a custom field).
        case clears
        /// Allowed, and read as absent (an optional reason).
        case absent
    }

    /// The largest body read; past it the answer is 413.
    static let maxBytes = 1 << 20
    /// The most JSON values (containers included) a body may hold.
    static let maxValues = 10_000
    /// The form field that carries the anti-forgery token.
    static let csrfField = "csrf"

    let encoding: Encoding
    private let json: [String: StrictJSON.Node]
    private let form: [String: [String]]

    private init(encoding: Encoding, json: [String: StrictJSON.Node] = [:], form: [String: [String]] = [:]) {
        self.encoding = encoding
        self.json = json
        self.form = form
    }

    /// Reads and checks the body of `request`.
    /// - Parameters:
    ///   - known: the members the action takes.
    ///   - maps: members that hold names with values (`custom`): a JSON object of strings, or form
    ///     fields named `MEMBER.NAME`.
    /// - Throws: ``WorkspaceError``: 413 past ``maxBytes``, 415 for a body without a type, 400 for
    ///   JSON that does not parse, is not an object, or has a member the action does not take.
    static func read(_ request: inout Request, as encoding: Encoding, known: Set<String>, maps: Set<String> = []) async throws -> ActionBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw WorkspaceError(.contentTooLarge, field: nil, "the body is over \(maxBytes) bytes; send the text of one action")
        }
        let bytes = Array(buffer.readableBytesView)
        switch encoding {
        case .none:
            guard bytes.isEmpty else {
                throw WorkspaceError(.unsupportedMediaType, field: "Content-Type", "say what the body is: Content-Type: application/json")
            }
            return ActionBody(encoding: .none)
        case .json:
            // An empty body is an action without members (`reopen`, `ack`), however it is labelled.
            guard !bytes.isEmpty else { return ActionBody(encoding: .json) }
            let root: StrictJSON.Node
            do { root = try StrictJSON.parse(bytes, maxValues: maxValues) } catch {
                throw WorkspaceError(.badRequest, field: nil,
                                     "the body is not valid JSON at \(error.position)\(error.path.isEmpty ? "" : " (\(error.path))"): \(error.message); send one JSON object")
            }
            guard case .object(let members) = root.value else {
                throw WorkspaceError(.badRequest, field: nil, "the body must be a JSON object, not \(Self.typeName(root.value))")
            }
            for member in members where !known.contains(member.name) {
                throw unknown(member.name, known: known)
            }
            return ActionBody(encoding: .json, json: Dictionary(members.map { ($0.name, $0.value) }) { first, _ in first })
        case .form:
            var fields: [String: [String]] = [:]
            for (name, value) in FormBody(buffer).pairs where name != csrfField {
                let map = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
                let member = known.contains(name) && !maps.contains(name)
                guard member || (maps.contains(map) && name.count > map.count + 1) else { throw unknown(name, known: known) }
                fields[name, default: []].append(value)
            }
            return ActionBody(encoding: .form, form: fields)
        }
    }

    static func unknown(_ name: String, known: Set<String>) -> WorkspaceError {
        let shown = StrictJSON.printable(String(name.prefix(200)))
        let near = StrictJSON.nearest(name, in: known).map { " Did you mean \"\($0)\"?" } ?? ""
        let list = known.isEmpty ? "this action takes none" : "known: \(known.sorted().joined(separator: ", "))"
        return WorkspaceError(.badRequest, field: shown, "is not a member this action takes (\(list)).\(near)")
    }

    static func typeName(_ value: StrictJSON.Value) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Whether the body names no member at all.
    var isEmpty: Bool { json.isEmpty && form.isEmpty }

    /// A text member, `nil` when absent.
    /// - Parameters:
    ///   - max: the most characters, counted as Unicode scalars (as JSON Schema counts them).
    ///   - empty: what an empty value means.
    func text(_ name: String, required: Bool = false, max: Int, empty: Emptiness) throws(WorkspaceError) -> String? {
        guard let value = try raw(name) else {
            if required { throw WorkspaceError(.badRequest, field: name, "is required") }
            return nil
        }
        return try Self.check(value, at: name, required: required, max: max, empty: empty, fromForm: encoding == .form)
    }

    /// A text member that must be one of `allowed`.
    func choice(_ name: String, _ allowed: [String]) throws(WorkspaceError) -> String? {
        guard let value = try text(name, max: 64, empty: .refused) else { return nil }
        guard allowed.contains(value) else {
            throw WorkspaceError(.badRequest, field: name, "must be one of \(allowed.joined(separator: ", ")), not \(StrictJSON.printable(value).debugDescription)")
        }
        return value
    }

    /// A list of names: a JSON array of strings, or from a form every value of the field split at
    /// commas (`add=billing, vip`), each part trimmed and empty parts dropped.
    func list(_ name: String, maxItems: Int, maxLength: Int) throws(WorkspaceError) -> [String] {
        var items: [(value: String, path: String)] = []
        switch encoding {
        case .form:
            let parts = (form[name] ?? []).flatMap { $0.split(separator: ",") }
            items = parts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }.map { ($0, name) }
        case .json, .none:
            guard let node = json[name] else { return [] }
            guard case .array(let elements) = node.value else {
                throw WorkspaceError(.badRequest, field: name, "must be an array of strings, not \(Self.typeName(node.value))")
            }
            for (index, element) in elements.enumerated() {
                guard case .string(let text) = element.value else {
                    throw WorkspaceError(.badRequest, field: "\(name)[\(index)]", "must be a string, not \(Self.typeName(element.value))")
                }
                items.append((text, "\(name)[\(index)]"))
            }
        }
        guard items.count <= maxItems else { throw WorkspaceError(.badRequest, field: name, "has \(items.count) items; the limit is \(maxItems)") }
        var out: [String] = []
        for item in items {
            guard let text = try Self.check(item.value, at: item.path, required: true, max: maxLength, empty: .refused, fromForm: false) else { continue }
            out.append(text)
        }
        return out
    }

    /// Names with values: a JSON object of strings, or form fields `MEMBER.NAME`. Values may be
    /// empty (clearing).
    func pairs(_ name: String, maxItems: Int, maxNameLength: Int, maxLength: Int) throws(WorkspaceError) -> [(name: String, value: String)] {
        var items: [(name: String, value: String)] = []
        switch encoding {
        case .form:
            let prefix = name + "."
            for (field, values) in form.sorted(by: { $0.key < $1.key }) where field.hasPrefix(prefix) {
                items.append((String(field.dropFirst(prefix.count)), values.last ?? ""))
            }
        case .json, .none:
            guard let node = json[name] else { return [] }
            guard case .object(let members) = node.value else {
                throw WorkspaceError(.badRequest, field: name, "must be an object of names and texts, not \(Self.typeName(node.value))")
            }
            guard !members.isEmpty else { throw WorkspaceError(.badRequest, field: name, "names no field; leave it out, or give at least one") }
            for member in members {
                guard case .string(let text) = member.value.value else {
                    throw WorkspaceError(.badRequest, field: "\(name).\(StrictJSON.printable(member.name))",
                                         "must be a string (empty to clear), not \(Self.typeName(member.value.value))")
                }
                items.append((member.name, text))
            }
        }
        guard items.count <= maxItems else { throw WorkspaceError(.badRequest, field: name, "has \(items.count) fields; the limit is \(maxItems)") }
        for item in items {
            let path = "\(name).\(StrictJSON.printable(item.name))"
            let length = item.name.unicodeScalars.count
            guard length <= maxNameLength else { throw WorkspaceError(.badRequest, field: name, "names a field of \(length) characters; the limit is \(maxNameLength)") }
            guard !item.name.unicodeScalars.allSatisfy(\.properties.isWhitespace) else {
                throw WorkspaceError(.badRequest, field: name, "names a field with no name; give each field a name")
            }
            _ = try Self.check(item.value, at: path, required: false, max: maxLength, empty: .clears, fromForm: false)
        }
        return items
    }

    /// The member's text as sent; a refusal when JSON gives it another type or `null`.
    private func raw(_ name: String) throws(WorkspaceError) -> String? {
        switch encoding {
        case .form:
            return form[name]?.last
        case .json, .none:
            guard let node = json[name] else { return nil }
            guard case .string(let text) = node.value else {
                let hint = node.value == .null ? "; leave the member out instead" : ""
                throw WorkspaceError(.badRequest, field: name, "must be a string, not \(Self.typeName(node.value))\(hint)")
            }
            return text
        }
    }

    private static func check(_ text: String, at path: String, required: Bool, max: Int, empty: Emptiness,
                              fromForm: Bool) throws(WorkspaceError) -> String? {
        let length = text.unicodeScalars.count
        guard length <= max else { throw WorkspaceError(.badRequest, field: path, "is \(length) characters; the limit is \(max)") }
        let blank = text.unicodeScalars.allSatisfy(\.properties.isWhitespace)
        switch empty {
        case .refused where blank:
            if fromForm && !required && text.isEmpty { return nil }
            throw WorkspaceError(.badRequest, field: path, text.isEmpty ? "must not be empty" : "must hold some text, not only whitespace")
        case .absent where blank:
            if required { throw WorkspaceError(.badRequest, field: path, "must hold some text, not only whitespace") }
            return nil
        default:
            return text
        }
    }
}
