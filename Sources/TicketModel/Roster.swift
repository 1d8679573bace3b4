import Foundation
import StrictJSON

/// The fleet's membership: each site's id, public key and role, signed by the coordinator.
///
/// Every node pins the coordinator's public key at setup and accepts a roster only under that key, so
/// every replica judges sessions and blocks by the same list (`Protocol/PROTOCOL.md` §2.6). A removed
/// site stays listed with ``Member/revokedAfter``: its blocks up to that `seq` (which some replicas
/// may already hold) stay valid everywhere, later ones are refused everywhere. ``released`` names
/// blocks stamped too far ahead that the coordinator let through.
public struct Roster: Codable, Equatable, Sendable {
    public struct Member: Codable, Equatable, Sendable {
        public var site: String
        /// The Ed25519 public key, 64 lowercase hex digits.
        public var key: String
        public var role: SiteRole
        /// Set when the site was removed: its blocks above this `seq` are refused.
        public var revokedAfter: UInt64?

        public init(site: SiteID, key: [UInt8], role: SiteRole, revokedAfter: UInt64? = nil) {
            self.site = site.rawValue
            self.key = key.hexString
            self.role = role
            self.revokedAfter = revokedAfter
        }

        enum CodingKeys: String, CodingKey { case site, key, role, revokedAfter }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            site = try c.decode(String.self, forKey: .site)
            key = try c.decode(String.self, forKey: .key)
            role = try c.decode(SiteRole.self, forKey: .role)
            // Present only for a removed site: null would read as "not removed", so it is refused.
            if c.contains(.revokedAfter), try c.decodeNil(forKey: .revokedAfter) {
                throw DecodingError.valueNotFound(UInt64.self, .init(codingPath: [CodingKeys.revokedAfter], debugDescription: "revokedAfter is null; leave it out for a site that was not removed"))
            }
            revokedAfter = try c.decodeIfPresent(UInt64.self, forKey: .revokedAfter)
        }
    }

    /// A block the coordinator released from the clock-drift quarantine.
    public struct Release: Codable, Equatable, Sendable {
        public var site: String
        public var seq: UInt64
        /// The block's hash, 64 hex digits: only that exact block is released.
        public var hash: String

        public init(site: SiteID, seq: UInt64, hash: [UInt8]) {
            self.site = site.rawValue
            self.seq = seq
            self.hash = hash.hexString
        }
    }

    /// Raised by one on every edit; a node adopts only a higher version.
    public var version: UInt64
    public var coordinator: String
    /// The coordinator's wall clock when it signed this version, ms since 1970.
    public var issued: UInt64
    /// Sorted by site id.
    public var sites: [Member]
    /// The most recent releases, oldest first, at most ``RosterLimits/maxReleases``.
    public var released: [Release]

    public init(version: UInt64, coordinator: SiteID, issued: UInt64, sites: [Member], released: [Release] = []) {
        self.version = version
        self.coordinator = coordinator.rawValue
        self.issued = issued
        self.sites = sites.sorted { $0.site < $1.site }
        self.released = released
    }

    /// The first roster of a fleet: the coordinator alone.
    public static func founding(coordinator: SiteID, key: [UInt8], issued: UInt64) -> Roster {
        Roster(version: 1, coordinator: coordinator, issued: issued, sites: [Member(site: coordinator, key: key, role: .coordinator)])
    }

    /// The entry of `site`, removed or not.
    public func member(_ site: SiteID) -> Member? { sites.first { $0.site == site.rawValue } }

    /// The sites that were not removed: those a handoff, a routing file or a backup's fence may name.
    public var activeMembers: [Member] { sites.filter { $0.revokedAfter == nil } }

    /// Whether `site` may open sessions: listed, not removed, with exactly `key`.
    public func admits(_ site: SiteID, key: [UInt8]) -> Bool {
        guard let member = member(site) else { return false }
        return member.revokedAfter == nil && member.key == key.hexString
    }

    /// Whether the block `hash` of `site`/`seq` was released from quarantine.
    public func isReleased(site: SiteID, seq: UInt64, hash: [UInt8]) -> Bool {
        released.contains { $0.site == site.rawValue && $0.seq == seq && $0.hash == hash.hexString }
    }

    /// The canonical text that is signed: JSON with sorted keys, no spaces.
    public func canonicalText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and integers cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// The signed message: a domain label, a zero byte, the document's bytes.
    public static func signedMessage(_ document: String) -> [UInt8] {
        Array("tierline-roster-v1".utf8) + [0] + Array(document.utf8)
    }
}

/// Bounds of a roster document.
public enum RosterLimits {
    public static let maxSites = 4_096
    public static let maxReleases = 256
    public static let maxDocumentBytes = 1 << 20
}

/// A roster with the exact text the coordinator signed and its signature.
public struct SignedRoster: Equatable, Sendable {
    public let document: String
    public let signature: [UInt8]
    public let roster: Roster

    /// Signs `roster` with the coordinator's key.
    public static func sign(_ roster: Roster, key: SiteKey) throws(RosterError) -> SignedRoster {
        let document = roster.canonicalText()
        let signature: [UInt8]
        do { signature = try key.sign(Roster.signedMessage(document)) } catch {
            throw RosterError("signing the roster failed: \(error)")
        }
        return try SignedRoster(document: document, signature: signature, pinnedKey: key.publicKey)
    }

    /// Verifies `signature` over `document` under the pinned coordinator key, then parses and checks it.
    /// - Throws: ``RosterError`` saying what is wrong; nothing is trusted from a document that fails.
    public init(document: String, signature: [UInt8], pinnedKey: [UInt8]) throws(RosterError) {
        guard document.utf8.count <= RosterLimits.maxDocumentBytes else {
            throw RosterError("the roster is \(document.utf8.count) bytes; the limit is \(RosterLimits.maxDocumentBytes)")
        }
        // The signature first: it is the cheaper check, and it turns away anything a stranger made.
        guard SiteKey.isValid(signature: signature, of: Roster.signedMessage(document), publicKey: pinnedKey) else {
            throw RosterError("the roster's signature does not verify under the pinned coordinator key; it was not issued by this fleet's coordinator")
        }
        try Self.readStrictly(document)
        let roster: Roster
        do { roster = try JSONDecoder().decode(Roster.self, from: Data(document.utf8)) } catch {
            throw RosterError("the signed roster does not parse: \(error)")
        }
        try Self.check(roster, pinnedKey: pinnedKey)
        self.document = document
        self.signature = signature
        self.roster = roster
    }

    /// The strict reading of §2.6.1, before anything else: RFC 8259 JSON with no repeated member
    /// name and no byte order mark, nested at most 16 deep, every number a plain integer of at most
    /// 2⁶³ − 1 in absolute value, and no `null` for a top-level member or a member the table defines.
    /// Every path that adopts a roster (a session, `roster import`, an export file) goes through here.
    static func readStrictly(_ document: String) throws(RosterError) {
        let root: StrictJSON.Node
        do { root = try StrictJSON.parse(Array(document.utf8)) } catch {
            throw RosterError("the roster is not strict JSON: \(error)")
        }
        guard case .object(let top) = root.value else { throw RosterError("the roster must be a JSON object") }
        let defined: [String: Set<String>] = ["sites": ["site", "key", "role", "revokedAfter"], "released": ["site", "seq", "hash"]]
        func visit(_ node: StrictJSON.Node, path: String, depth: Int) throws(RosterError) {
            switch node.value {
            case .number(let text):
                let digits = text.hasPrefix("-") ? String(text.dropFirst()) : text
                guard digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber), !digits.isEmpty,
                      digits == "0" || !digits.hasPrefix("0"), text != "-0", UInt64(digits).map({ $0 <= UInt64(Int64.max) }) == true else {
                    throw RosterError("roster member \(path) holds \(text), which is not a plain integer of at most 2^63 - 1")
                }
            case .object(let members):
                guard depth <= 16 else { throw RosterError("the roster nests deeper than 16 at \(path)") }
                for member in members { try visit(member.value, path: "\(path).\(member.name)", depth: depth + 1) }
            case .array(let elements):
                guard depth <= 16 else { throw RosterError("the roster nests deeper than 16 at \(path)") }
                for (index, element) in elements.enumerated() { try visit(element, path: "\(path)[\(index)]", depth: depth + 1) }
            default:
                break
            }
        }
        for member in top {
            if member.value.value == .null { throw RosterError("roster member \"\(member.name)\" is null") }
            try visit(member.value, path: member.name, depth: 2)
            if let names = defined[member.name], case .array(let entries) = member.value.value {
                for (index, entry) in entries.enumerated() {
                    guard case .object(let fields) = entry.value else { continue }
                    if let null = fields.first(where: { names.contains($0.name) && $0.value.value == .null }) {
                        throw RosterError("roster member \(member.name)[\(index)].\(null.name) is null")
                    }
                }
            }
        }
    }

    static func check(_ roster: Roster, pinnedKey: [UInt8]) throws(RosterError) {
        guard roster.version >= 1 else { throw RosterError("roster version must be at least 1") }
        guard roster.sites.count <= RosterLimits.maxSites, roster.released.count <= RosterLimits.maxReleases else {
            throw RosterError("the roster lists more than \(RosterLimits.maxSites) sites or \(RosterLimits.maxReleases) releases")
        }
        var seen = Set<String>()
        for member in roster.sites {
            guard SiteID.isValid(member.site) else { throw RosterError("roster entry \(member.site.prefix(40).debugDescription) is not a site id") }
            guard seen.insert(member.site).inserted else { throw RosterError("site \(member.site) is listed twice") }
            guard isLowercaseHex(member.key, digits: 64) else {
                throw RosterError("the key of \(member.site) is not 64 lowercase hex digits")
            }
        }
        for (earlier, later) in zip(roster.sites, roster.sites.dropFirst())
        where !earlier.site.utf8.lexicographicallyPrecedes(later.site.utf8) {
            throw RosterError("sites must be sorted by site id; \(later.site) follows \(earlier.site)")
        }
        guard let coordinator = roster.sites.first(where: { $0.site == roster.coordinator }), coordinator.role == .coordinator,
              coordinator.revokedAfter == nil, coordinator.key == pinnedKey.hexString else {
            throw RosterError("the roster must list its coordinator \(roster.coordinator) with role coordinator and the pinned key")
        }
        guard roster.sites.filter({ $0.role == .coordinator }).count == 1 else {
            throw RosterError("the roster names more than one coordinator")
        }
        for release in roster.released {
            guard SiteID.isValid(release.site), release.seq >= 1, isLowercaseHex(release.hash, digits: 64) else {
                throw RosterError("a release entry is malformed (site \(release.site.prefix(40).debugDescription), seq \(release.seq))")
            }
        }
    }
}

func isLowercaseHex(_ text: String, digits: Int) -> Bool {
    text.utf8.count == digits && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
}

/// A roster that cannot be trusted or an edit that cannot be made.
public struct RosterError: Error, Equatable, Sendable, CustomStringConvertible {
    public var detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { detail }
}

/// Which changes each role may make (`Protocol/PROTOCOL.md` §1.5.5).
///
/// A change its author's role may not make is skipped when the entity is folded, the same way on every
/// replica because the roster is replicated; the rest of its block applies, so the origin never stalls.
public enum Authorization {
    /// Why a site with `role` may not make `change`, or `nil` when it may.
    public static func refusal(_ operation: Operation, on entity: EntityRef, by role: SiteRole) -> String? {
        switch (entity.kind, operation) {
        case (.config, _) where role != .coordinator:
            return "only the coordinator publishes configuration (policies, calendars, ladders, the escalation matrix, rules); this change came from a \(role.rawValue)"
        case (.ticket, .set(.owner, _)) where role == .laptop:
            return "a laptop may not move a ticket's owning site (bump its owning-site epoch); a site or the coordinator accepts handoffs"
        default:
            return nil
        }
    }
}
