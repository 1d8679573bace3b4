/// A 64-bit hybrid logical clock stamp: 48 bits of Unix milliseconds, 16 bits of counter.
///
/// Stamps order writes: a write that saw another always carries a larger stamp, and concurrent
/// writes are ordered by stamp, then by ``SiteID`` (see ``Stamp``).
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A stamp from milliseconds since 1970 and a counter.
    public init(millis: UInt64, counter: UInt16) {
        precondition(millis <= HLC.maxMillis, "HLC milliseconds exceed 48 bits")
        rawValue = millis << 16 | UInt64(counter)
    }

    public static let maxMillis: UInt64 = (1 << 48) - 1
    public static let zero = HLC(rawValue: 0)

    public var millis: UInt64 { rawValue >> 16 }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: HLC, rhs: HLC) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(millis).\(counter)" }
}

/// A clock stamp with the site that made it: the total order of last-writer-wins registers.
public struct Stamp: Hashable, Comparable, Sendable {
    public var hlc: HLC
    public var site: SiteID
    public init(hlc: HLC, site: SiteID) {
        self.hlc = hlc
        self.site = site
    }
    public static func < (lhs: Stamp, rhs: Stamp) -> Bool {
        lhs.hlc != rhs.hlc ? lhs.hlc < rhs.hlc : lhs.site < rhs.site
    }
}

/// The hybrid logical clock of one store.
///
/// Pure: the wall time is passed in, in milliseconds since 1970. The store persists ``last`` and
/// advances it inside the transaction that allocates a block's sequence number.
///
/// ```swift
/// var clock = HybridClock(last: .zero)
/// let stamp = try clock.now(wall: 1_700_000_000_000)
/// ```
public struct HybridClock: Sendable {
    /// The latest stamp this clock has issued or received.
    public private(set) var last: HLC
    /// How far ahead of the local wall time a remote stamp may be, in milliseconds (default 5 minutes).
    public var maxDrift: UInt64

    public init(last: HLC, maxDrift: UInt64 = 300_000) {
        self.last = last
        self.maxDrift = maxDrift
    }

    /// Issues a stamp for a local write, larger than every stamp seen so far.
    /// - Throws: `.clockExhausted` only when the 48-bit millisecond field would overflow.
    public mutating func now(wall: UInt64) throws(ModelError) -> HLC {
        try advance(past: last, wall: wall)
    }

    /// Takes in a remote stamp, so later local stamps exceed it.
    /// - Returns: the clock's new stamp, larger than both `remote` and every earlier stamp.
    /// - Throws: `.clockAhead` when `remote` is more than ``maxDrift`` ahead of `wall`: the caller
    ///   holds such a block back instead of dragging this clock into the future.
    public mutating func receive(_ remote: HLC, wall: UInt64) throws(ModelError) -> HLC {
        try checkDrift(remote, wall: wall)
        return try advance(past: max(last, remote), wall: wall)
    }

    /// The wall time at counter 0 if it is past `seen`, else the stamp right after `seen`.
    private mutating func advance(past seen: HLC, wall: UInt64) throws(ModelError) -> HLC {
        let next: HLC
        if wall > seen.millis {
            guard wall <= HLC.maxMillis else { throw ModelError(.clockExhausted, "wall time beyond the 48-bit range of the clock") }
            next = HLC(millis: wall, counter: 0)
        } else {
            next = try HybridClock.successor(of: seen)
        }
        last = next
        return next
    }

    /// Throws `.clockAhead` when `remote` is further ahead of `wall` than ``maxDrift``.
    public func checkDrift(_ remote: HLC, wall: UInt64) throws(ModelError) {
        if remote.millis > wall &+ maxDrift {
            throw ModelError(.clockAhead, "stamp is \(remote.millis - wall) ms ahead of local time; the limit is \(maxDrift) ms")
        }
    }

    private static func successor(of stamp: HLC) throws(ModelError) -> HLC {
        if stamp.counter < UInt16.max { return HLC(millis: stamp.millis, counter: stamp.counter + 1) }
        guard stamp.millis < HLC.maxMillis else { throw ModelError(.clockExhausted, "clock reached the end of its range") }
        return HLC(millis: stamp.millis + 1, counter: 0)
    }
}
