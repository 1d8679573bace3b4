import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The resident set size of this process, from /proc/self/statm (pages × page size).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Samples the process's RSS every 2 ms on its own thread until ``stop()``, keeping the peak.
/// It first returns freed heap to the system, so the figure is what the measured work holds.
final class MemorySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var peak = 0
    private let finished = DispatchSemaphore(value: 0)
    let baseline: Int

    init() {
        // glibc's malloc_trim, which the Glibc module does not export; RTLD_DEFAULT is the null handle.
        if let symbol = dlsym(nil, "malloc_trim") {
            _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
        }
        baseline = residentBytes()
        peak = baseline
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let now = residentBytes()
                lock.withLock { peak = max(peak, now) }
                usleep(2_000)
            }
            finished.signal()
        }
    }

    /// Stops sampling; returns the peak in bytes.
    func stop() -> Int {
        lock.withLock { running = false }
        finished.wait()
        return lock.withLock { max(peak, residentBytes()) }
    }
}
