import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Who may hold an accepted connection, and for how long.
///
/// A connection is a *stranger* until its peer has proved a roster key (the session's `auth`); strangers
/// share a small pool of their own, bounded in total and per address, so connections that never finish
/// a handshake cannot take the slots of the roster's members (`maxSessions`). When the pool is full, a
/// new connection is not refused: the oldest stranger of the address holding the most of the pool makes
/// room (of its own address, when that address is at its own bound). An honest handshake takes
/// milliseconds and so is always among the newest; a flood only displaces itself.
final class Admission: Sendable {
    struct Limits: Sendable {
        /// Authenticated sessions at once (`maxSessions`).
        var members: Int
        /// Connections not yet authenticated, from all addresses together.
        var strangers = 48
        /// Connections not yet authenticated from one address.
        var strangersPerHost = 16
        /// Authenticated sessions of one site at once: a site needs one or two (its node's dial, a
        /// `tierline sync`), so one member cannot take every slot.
        var sessionsPerSite = 8
    }

    /// A stranger's connection, to close when it must make room.
    struct Stranger {
        var host: String
        var order: UInt64
        var evict: @Sendable () -> Void
    }

    private struct State {
        /// The site of each admitted member's ticket: as many as hold a member's slot.
        var memberSites: [UInt64: String] = [:]
        var strangers: [UInt64: Stranger] = [:]
        var next: UInt64 = 0
        /// The pool was under pressure since memory was last handed back.
        var crowded = false
    }

    let limits: Limits
    private let state = NIOLockedValueBox(State())

    init(limits: Limits) { self.limits = limits }

    /// Takes a stranger's slot for a new connection from `host`; `evict` closes it if it must make room
    /// later. Returns its ticket, and the evictions (already taken out of the pool) the caller runs.
    func enter(host: String, evict: @escaping @Sendable () -> Void) -> (ticket: UInt64, evicted: [Stranger]) {
        state.withLockedValue { state in
            var evicted: [Stranger] = []
            func evictOldest(of host: String) {
                guard let oldest = state.strangers.filter({ $0.value.host == host }).min(by: { $0.value.order < $1.value.order }) else { return }
                evicted.append(oldest.value)
                state.strangers[oldest.key] = nil
            }
            let fromHost = state.strangers.values.filter { $0.host == host }.count
            if fromHost >= limits.strangersPerHost {
                evictOldest(of: host)
            } else if state.strangers.count >= limits.strangers {
                // The address holding the most; among addresses tied for it, the one whose oldest
                // stranger is the oldest in the pool (never an order an attacker could pick addresses for).
                var counts: [String: (count: Int, oldest: UInt64)] = [:]
                for stranger in state.strangers.values {
                    let entry = counts[stranger.host] ?? (0, stranger.order)
                    counts[stranger.host] = (entry.count + 1, min(entry.oldest, stranger.order))
                }
                if let heaviest = counts.max(by: { $0.value.count < $1.value.count || ($0.value.count == $1.value.count && $0.value.oldest > $1.value.oldest) })?.key {
                    evictOldest(of: heaviest)
                }
            }
            if !evicted.isEmpty || state.strangers.count >= limits.strangers / 2 { state.crowded = true }
            state.next += 1
            state.strangers[state.next] = Stranger(host: host, order: state.next, evict: evict)
            return (state.next, evicted)
        }
    }

    /// Why a member was not admitted.
    enum Refusal: Equatable { case full, siteFull }

    /// The connection of `ticket` authenticated as `site`: it leaves the strangers' pool and takes a
    /// member's slot. A refusal when every member slot is taken, or `site` already holds
    /// ``Limits/sessionsPerSite`` (the connection then leaves as a stranger would).
    func authenticated(_ ticket: UInt64, site: String) -> Refusal? {
        state.withLockedValue { state in
            state.strangers[ticket] = nil
            guard state.memberSites.count < limits.members else { return .full }
            guard state.memberSites.values.count(where: { $0 == site }) < limits.sessionsPerSite else { return .siteFull }
            state.memberSites[ticket] = site
            return nil
        }
    }

    /// The connection of `ticket` ended; `member` if `authenticated` admitted it.
    func leave(_ ticket: UInt64, member: Bool) {
        state.withLockedValue { state in
            state.strangers[ticket] = nil
            if member { state.memberSites[ticket] = nil }
        }
    }

    /// Whether `ticket` still holds a stranger's slot (it was not evicted).
    func holds(_ ticket: UInt64) -> Bool { state.withLockedValue { $0.strangers[ticket] != nil } }

    var counts: (members: Int, strangers: Int) { state.withLockedValue { ($0.memberSites.count, $0.strangers.count) } }

    /// After a flood has passed (the pool was crowded and is now empty), hands the memory its buffers
    /// took back to the system: glibc keeps freed heap pages otherwise. Returns whether it did.
    @discardableResult
    func releaseMemoryIfCalm() -> Bool {
        let calm = state.withLockedValue { state -> Bool in
            guard state.crowded, state.strangers.isEmpty else { return false }
            state.crowded = false
            return true
        }
        if calm { Self.trimHeap() }
        return calm
    }

    /// glibc's `malloc_trim(0)`, looked up at run time (its header is not in the Glibc module; other C
    /// libraries lack it, and then nothing is done).
    static func trimHeap() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
        #endif
    }
}

/// Refusals, logged once per address per interval with a count, so a flood of connections cannot
/// flood the log: the first refusal of an address is logged at once, the next ones are counted and
/// logged together when the interval has passed.
final class RefusalLog: Sendable {
    private struct Entry {
        var windowStart: UInt64
        var count: Int
        var lastReason: String
    }

    private let logger: Logger
    private let interval: UInt64
    private let clock: @Sendable () -> UInt64
    private let entries = NIOLockedValueBox([String: Entry]())
    /// At most this many addresses are tracked; past it, further addresses share one entry.
    static let maxHosts = 4096
    static let otherHosts = "other addresses"

    init(logger: Logger, intervalMillis: UInt64 = 60_000, clock: @escaping @Sendable () -> UInt64) {
        self.logger = logger
        self.interval = intervalMillis
        self.clock = clock
    }

    /// A connection from `host` was refused (or closed before it authenticated) for `reason`.
    func note(host: String, _ reason: String) {
        let now = clock()
        let line: String? = entries.withLockedValue { entries in
            var key = host
            if entries[key] == nil && entries.count >= Self.maxHosts { key = Self.otherHosts }
            guard var entry = entries[key] else {
                entries[key] = Entry(windowStart: now, count: 0, lastReason: reason)
                return "refused a connection from \(key): \(reason) (further refusals of this address are counted, and logged once every \(interval / 1000) s)"
            }
            entry.count += 1
            entry.lastReason = reason
            if now &- entry.windowStart >= interval {
                let line = Self.summary(key, entry, seconds: (now &- entry.windowStart) / 1000)
                entry.count = 0
                entry.windowStart = now
                entries[key] = entry
                return line
            }
            entries[key] = entry
            return nil
        }
        if let line { logger.warning("\(line)") }
    }

    /// Logs the counts of every address whose interval has passed (of every address, with `all`, as
    /// the node stops), and forgets quiet addresses.
    func flush(all: Bool = false) {
        let now = clock()
        let lines: [String] = entries.withLockedValue { entries in
            var lines: [String] = []
            for (host, entry) in entries where all || now &- entry.windowStart >= interval {
                if entry.count > 0 {
                    lines.append(Self.summary(host, entry, seconds: (now &- entry.windowStart) / 1000))
                    entries[host] = Entry(windowStart: now, count: 0, lastReason: entry.lastReason)
                } else {
                    entries[host] = nil
                }
            }
            return lines.sorted()
        }
        for line in lines { logger.warning("\(line)") }
    }

    static private func summary(_ host: String, _ entry: Entry, seconds: UInt64) -> String {
        "refused \(entry.count) more connection(s) from \(host) in the last \(seconds) s; the last: \(entry.lastReason)"
    }
}
