import StrictJSON
import TicketModel

/// One line read as a frame (`Protocol/PROTOCOL.md` §2.1): strict JSON, an object, a string `type`,
/// and its members read as the protocol types them.
///
/// The line is parsed once by ``StrictJSON``, which refuses what Foundation's decoders let through: a
/// repeated member name (two implementations could read the line differently), a byte order mark, a
/// lone surrogate escape. Integers are read from the number's text, so `1.0`, `1e3`, `-0` and values
/// beyond 2⁶³ − 1 are `bad-field`, never rounded through a floating-point number.
struct FrameObject {
    /// The `type` member.
    let type: String
    let root: StrictJSON.Node

    /// The most JSON values one line may hold (PROTOCOL §2.1). The largest frame a node sends, a
    /// `vector` with `heads` for a roster of 4096 sites, holds about 3 × 4096; the bound keeps the
    /// tree a stranger's 2 MiB line can make in memory to a few megabytes.
    static let maxValues = 16 * RosterLimits.maxSites

    /// Parses `line`; anything that is not a JSON object with a string `type` is `bad-json`.
    init(line: some Collection<UInt8>) throws(WireError) {
        do { root = try StrictJSON.parse(line, maxValues: Self.maxValues) } catch {
            // A frame holds no LF, so its problems are all on line 1 and the column counts bytes.
            let place = error.position.line == 1 ? "byte \(error.position.column - 1)" : "\(error.position)"
            throw WireError(.badJSON, "the line is not one valid JSON object: \(error.message.prefix(200)) at \(place)")
        }
        guard case .object = root.value, case .string(let type)? = root["type"]?.value else {
            throw WireError(.badJSON, "the line is not a JSON object with a string member \"type\"")
        }
        self.type = type
    }

    /// The member `name`, if present. `null` is refused: an optional member is left out, not null.
    func optional(_ name: String) throws(WireError) -> StrictJSON.Value? {
        guard let node = root[name] else { return nil }
        guard node.value != .null else { throw field("member \"\(name)\" is null; leave an optional member out instead") }
        return node.value
    }

    /// The member `name`, which must be present.
    func required(_ name: String) throws(WireError) -> StrictJSON.Value {
        guard let value = try optional(name) else { throw field("missing member \"\(name)\"") }
        return value
    }

    func integer(_ name: String) throws(WireError) -> Int64 { try integer(try required(name), name: name) }
    func string(_ name: String) throws(WireError) -> String { try string(try required(name), name: name) }

    func optionalInteger(_ name: String) throws(WireError) -> Int64? {
        guard let value = try optional(name) else { return nil }
        return try integer(value, name: name)
    }

    func optionalString(_ name: String) throws(WireError) -> String? {
        guard let value = try optional(name) else { return nil }
        return try string(value, name: name)
    }

    func bool(_ name: String) throws(WireError) -> Bool {
        guard case .bool(let value) = try required(name) else { throw field("member \"\(name)\" is not a boolean") }
        return value
    }

    /// An integer as §2.1 defines it: a number written with digits only, within 64 bits signed (the
    /// sign is left to the range checks in ``Field``).
    func integer(_ value: StrictJSON.Value, name: String) throws(WireError) -> Int64 {
        if let integer = value.integer { return integer }
        guard case .number = value else { throw field("member \"\(name)\" is not an integer") }
        throw field("member \"\(name)\" must hold integers without fraction, exponent or minus zero")
    }

    func string(_ value: StrictJSON.Value, name: String) throws(WireError) -> String {
        guard case .string(let text) = value else { throw field("member \"\(name)\" is not a string") }
        return text
    }

    /// The members of the object `value`, in the line's order.
    func members(_ value: StrictJSON.Value, name: String) throws(WireError) -> [StrictJSON.Member] {
        guard case .object(let members) = value else { throw field("member \"\(name)\" is not an object") }
        return members
    }

    /// An object whose values are all integers (a version vector).
    func integers(_ value: StrictJSON.Value, name: String) throws(WireError) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for member in try members(value, name: name) {
            out[member.name] = try integer(member.value.value, name: "\(name).\(member.name.prefix(40))")
        }
        return out
    }

    /// An object whose values are all strings.
    func strings(_ value: StrictJSON.Value, name: String) throws(WireError) -> [String: String] {
        var out: [String: String] = [:]
        for member in try members(value, name: name) {
            out[member.name] = try string(member.value.value, name: "\(name).\(member.name.prefix(40))")
        }
        return out
    }

    func field(_ detail: String) -> WireError { WireError(.badField, "\(type) frame: \(detail)") }
}

// MARK: - The frames' members

extension WireHello {
    init(_ frame: FrameObject) throws(WireError) {
        self.init(protocol: try frame.integer("protocol"), minProtocol: try frame.integer("minProtocol"),
                  schema: try frame.integer("schema"), site: try frame.string("site"), role: try frame.string("role"),
                  publicKey: try frame.string("publicKey"), nonce: try frame.string("nonce"), time: try frame.integer("time"),
                  software: try frame.optionalString("software"), roster: try frame.optionalInteger("roster"),
                  restored: try frame.optionalInteger("restored"))
    }
}

extension WireVectorHeads {
    init(_ frame: FrameObject) throws(WireError) {
        var heads: [String: WireHead]?
        if let raw = try frame.optional("heads") {
            heads = [:]
            for member in try frame.members(raw, name: "heads") {
                let name = "heads.\(member.name.prefix(40))"
                guard case .object = member.value.value else { throw frame.field("member \"\(name)\" is not an object") }
                guard let seq = member.value["seq"] else { throw frame.field("missing member \"\(name).seq\"") }
                guard let hash = member.value["hash"] else { throw frame.field("missing member \"\(name).hash\"") }
                heads?[member.name] = WireHead(seq: try frame.integer(seq.value, name: "\(name).seq"),
                                               hash: try frame.string(hash.value, name: "\(name).hash"))
            }
        }
        self.init(vector: try frame.integers(try frame.required("vector"), name: "vector"), heads: heads)
    }
}

extension WireSynced {
    init(_ frame: FrameObject) throws(WireError) {
        var awaiting: [String]?
        if let raw = try frame.optional("awaiting") {
            guard case .array(let elements) = raw else { throw frame.field("member \"awaiting\" is not an array") }
            awaiting = []
            for element in elements { awaiting?.append(try frame.string(element.value, name: "awaiting")) }
        }
        self.init(vector: try frame.integers(try frame.required("vector"), name: "vector"), awaiting: awaiting)
    }
}

extension WireAck {
    init(_ frame: FrameObject) throws(WireError) {
        self.init(batch: try frame.integer("batch"), vector: try frame.integers(try frame.required("vector"), name: "vector"),
                  applied: try frame.integer("applied"), held: try frame.integer("held"), refused: try frame.integer("refused"))
    }
}

extension WireBlocks {
    init(_ frame: FrameObject) throws(WireError) {
        var keys: [String: String]?
        if let raw = try frame.optional("keys") { keys = try frame.strings(raw, name: "keys") }
        self.init(batch: try frame.integer("batch"), count: try frame.integer("count"), size: try frame.integer("size"),
                  keys: keys, data: try frame.string("data"))
    }
}
