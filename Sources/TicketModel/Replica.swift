import Crypto
import struct Foundation.UUID

/// Why a block was refused. Nothing of a refused block is kept.
public typealias ApplyError = CodedError<ApplyErrorCode>

/// The codes of ``ApplyError``.
public enum ApplyErrorCode: String, Sendable {
    /// The same `(origin, seq)` is already held under a different hash.
    case equivocation
    /// The signature does not verify against the origin's key.
    case badSignature
    /// No key is known for the origin.
    case unknownSite
    /// The origin was removed from the roster before it wrote this block.
    case revoked
}

/// What happened to a received block.
public enum ApplyOutcome: Sendable, Hashable {
    /// Applied, with the number of blocks applied (it may have released held-back successors).
    case applied(Int)
    /// Already held with the same hash.
    case duplicate
    /// Held back until its predecessor and its `deps` are applied.
    case held
}

/// An in-memory replica: the reference semantics of applying blocks, which the SQLite store mirrors.
///
/// Blocks apply in causal order (an origin's `seq` order, after everything in their `deps`); a block
/// that arrives early is held back, a repeated one is a no-op, and a different block under a known
/// `(origin, seq)` is refused as equivocation.
public struct Replica: Sendable {
    public private(set) var vector = VersionVector()
    /// Public keys by site: when a key is known the block's signature is checked, else it is refused
    /// if ``requiresKeys`` is set.
    public var keys: [SiteID: [UInt8]] = [:]
    public var requiresKeys = false
    /// Roles by site, from the roster: changes a role may not make are skipped (``Authorization``).
    /// A site with no role here counts as an office site.
    public var roles: [SiteID: SiteRole] = [:]
    private var applied: [SiteID: [UInt64: Block]] = [:]
    private var pending: [SiteID: [UInt64: Block]] = [:]
    private var changesByTicket: [UUID: [EntityChange]] = [:]

    public init() {}

    public var pendingCount: Int { pending.values.reduce(0) { $0 + $1.count } }

    /// Receives one block: applies it (and any held-back successors), holds it back, or refuses it.
    public mutating func receive(_ block: Block) throws(ApplyError) -> ApplyOutcome {
        if let known = applied[block.origin]?[block.seq] ?? pending[block.origin]?[block.seq] {
            guard known.hash == block.hash else {
                throw ApplyError(.equivocation, "\(block.origin) seq \(block.seq) is already held with hash \(known.hashHex.prefix(16)); this one has \(block.hashHex.prefix(16))")
            }
            return .duplicate
        }
        if let key = keys[block.origin] {
            guard block.isSignatureValid(publicKey: key) else {
                throw ApplyError(.badSignature, "the signature of \(block.origin) seq \(block.seq) does not match its content")
            }
        } else if requiresKeys {
            throw ApplyError(.unknownSite, "no key is known for site \(block.origin)")
        }
        pending[block.origin, default: [:]][block.seq] = block
        let count = drainPending()
        return count > 0 ? .applied(count) : .held
    }

    private mutating func drainPending() -> Int {
        var count = 0
        var progress = true
        while progress {
            progress = false
            for (origin, blocks) in pending {
                guard let next = blocks[vector[origin] + 1], next.isApplicable(after: vector) else { continue }
                pending[origin]![next.seq] = nil
                apply(next)
                count += 1
                progress = true
            }
        }
        return count
    }

    private mutating func apply(_ block: Block) {
        applied[block.origin, default: [:]][block.seq] = block
        vector[block.origin] = block.seq
        let role = roles[block.origin] ?? .site
        for (entity, change) in block.entityChanges where entity.kind == .ticket {
            guard Authorization.refusal(change.operation, on: entity, by: role) == nil else { continue }
            changesByTicket[entity.id, default: []].append(change)
        }
    }

    /// Exactly the applied blocks a peer with `vector` lacks, in an order that respects causality.
    public func blocks(after peer: VersionVector) -> [Block] {
        applied.flatMap { origin, blocks in blocks.values.filter { $0.seq > peer[origin] } }
            .sorted { ($0.hlc, $0.origin, $0.seq) < ($1.hlc, $1.origin, $1.seq) }
    }

    /// Every ticket's state, merges resolved, by id.
    public var tickets: [UUID: TicketView] {
        var folded: [UUID: TicketState] = [:]
        for (id, changes) in changesByTicket { folded[id] = TicketState.fold(id: id, changes: changes) }
        return TicketView.resolve(folded)
    }

    /// The state digest: equal on two replicas exactly when they hold the same tickets.
    public var digest: String { TicketView.digest(tickets.values) }
}

/// A ticket as readers see it: its folded state with merges across tickets resolved.
public struct TicketView: Sendable, Equatable {
    public var state: TicketState
    /// The accepted merge target.
    public var mergedInto: UUID?
    /// The merge this ticket asked for lost to an earlier one that would have closed a cycle.
    public var mergeRejected: Bool

    public var status: Status { mergedInto != nil ? .merged : state.baseStatus }

    /// Resolves merges across `states`.
    public static func resolve(_ states: [UUID: TicketState]) -> [UUID: TicketView] {
        let graph = MergeGraph.resolve(states.compactMapValues(\.mergeCandidate))
        return states.mapValues { state in
            TicketView(state: state, mergedInto: graph.accepted[state.id], mergeRejected: graph.rejected.contains(state.id))
        }
    }

    /// The hash one ticket contributes to the digest.
    public static func digestEntry(id: UUID, stateHash: [UInt8], mergedInto: UUID?) -> [UInt8] {
        var w = ByteWriter()
        w.uuid(id)
        w.raw(stateHash)
        w.uuid(mergedInto ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        return w.bytes
    }

    /// SHA-256 over every ticket's entry, in id order, as hex.
    public static func digest(_ views: some Sequence<TicketView>) -> String {
        digest(entries: views.map { ($0.state.id, $0.state.stateHash, $0.mergedInto) })
    }

    /// The digest from each ticket's id, ``TicketState/stateHash`` and accepted merge target.
    public static func digest(entries: [(id: UUID, stateHash: [UInt8], mergedInto: UUID?)]) -> String {
        var hasher = SHA256()
        // In the order of the ids' text (upper-case hex), which is the order of their bytes: the
        // text itself, formatted for every comparison, took most of a large store's digest.
        for entry in entries.sorted(by: { $0.id.textPrecedes($1.id) }) {
            hasher.update(data: digestEntry(id: entry.id, stateHash: entry.stateHash, mergedInto: entry.mergedInto))
        }
        return Array(hasher.finalize()).hexString
    }
}
