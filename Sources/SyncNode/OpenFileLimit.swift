#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open files (`RLIMIT_NOFILE`): every sync session and every HTTP
/// connection takes one descriptor, and both ports share the limit.
///
/// Linux starts services with a soft limit of 1024 unless told otherwise, which a few hundred idle
/// HTTP connections plus the sessions use up; the hard limit is usually far higher. A node raises
/// its soft limit to the hard one when it starts (serve, dashboard), as any process may without
/// privileges.
///
/// ```swift
/// let limit = OpenFileLimit.raiseToHard()
/// logger.info("open files", metadata: ["limit": "\(limit.soft)"])
/// ```
public struct OpenFileLimit: Sendable, Equatable {
    /// The limit in force (what the kernel enforces).
    public var soft: UInt64
    /// The ceiling the soft limit may be raised to without privileges.
    public var hard: UInt64
    /// Whether ``raiseToHard()`` changed the soft limit.
    public var raised = false
    /// Why the limit could not be read or raised, if it could not (the node runs on regardless).
    public var problem: String?

    /// The soft limit set when the hard limit is unlimited: Linux's default `fs.nr_open`, past which
    /// `setrlimit` refuses.
    static let unlimitedCap: UInt64 = 1 << 20

    /// The limit now, without changing it.
    public static func current() -> OpenFileLimit {
        var limit = rlimit()
        guard getLimit(&limit) == 0 else {
            return OpenFileLimit(soft: 0, hard: 0, problem: "getrlimit(RLIMIT_NOFILE) failed with errno \(errno)")
        }
        return OpenFileLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (capped at 2^20 when the hard one is unlimited).
    /// - Returns: the limit in force afterwards; ``problem`` says why it stayed where it was, if it
    ///   could not be raised (a sandbox that forbids `setrlimit`, for example).
    public static func raiseToHard() -> OpenFileLimit {
        var now = current()
        guard now.problem == nil else { return now }
        let target = now.hard == UInt64(rlim_t.max) ? unlimitedCap : now.hard
        guard now.soft < target else { return now }
        var limit = rlimit()
        limit.rlim_cur = rlim_t(target)
        limit.rlim_max = rlim_t(now.hard)
        guard setLimit(&limit) == 0 else {
            now.problem = "setrlimit(RLIMIT_NOFILE, \(target)) failed with errno \(errno)"
            return now
        }
        var after = current()
        after.raised = after.soft > now.soft
        return after
    }

    private static func getLimit(_ limit: inout rlimit) -> Int32 {
        #if os(Linux)
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        getrlimit(RLIMIT_NOFILE, &limit)
        #endif
    }

    private static func setLimit(_ limit: inout rlimit) -> Int32 {
        #if os(Linux)
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        setrlimit(RLIMIT_NOFILE, &limit)
        #endif
    }
}
