/// The stable identity of one writer: an office node, a laptop replica or the coordinator.
///
/// A site id is 1 to 32 characters of `[a-z][a-z0-9-]{0,31}`, compared bytewise, so every replica
/// breaks ties between equal clock stamps the same way.
///
/// ```swift
/// let north = try SiteID("north")
/// ```
public struct SiteID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The site id as written.
    public let rawValue: String

    /// Validates and wraps a site id.
    /// - Throws: ``ModelError`` `.invalidSiteID` when the text does not match `[a-z][a-z0-9-]{0,31}`.
    public init(_ rawValue: String) throws(ModelError) {
        guard SiteID.isValid(rawValue) else {
            throw ModelError(.invalidSiteID, "site id must match [a-z][a-z0-9-]{0,31}; got \(rawValue.count) characters starting with \(rawValue.prefix(8).debugDescription)")
        }
        self.rawValue = rawValue
    }

    /// Whether `text` is a valid site id.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...32).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { b in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "-")
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: SiteID, rhs: SiteID) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }
}

/// The errors of the pure model: invalid identifiers, values that do not fit a field, clock faults.
/// The role of a site in the fleet: an office node, the coordinator, or a technician's laptop.
public enum SiteRole: String, CaseIterable, Sendable, Codable {
    case site, coordinator, laptop
}

public typealias ModelError = CodedError<ModelErrorCode>

/// The codes of ``ModelError``.
public enum ModelErrorCode: String, Sendable {
    case invalidSiteID, invalidValue, clockAhead, clockExhausted, blockTooLarge
}

/// A site id in JSON is its string, checked on decoding.
extension SiteID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not a site id (\(error))")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
