import Demo
import Foundation

// The help-desk workload of Benchmarks/WORKLOADS.md, generated in Swift with the peers' parameters:
// the same sizes, field values, tag pool and operation weights. Its
// random stream is its own (Demo's seeded SplitMix64), so tickets are alike in shape, not equal
// value for value to the Python peers'.

struct WorkTicket {
    var title: String
    var status: String
    var priority: String
    var assignee: String
    var site: String
    var tags: [String]
    var createdAt: String
    var updatedAt: String
}

/// One single-field update of the workload.
struct WorkOp {
    enum Kind { case set, tagAdd, tagRemove }
    var ticket: Int
    var kind: Kind
    /// The field for `set` (title, status, priority, assignee, site, updated_at), else the tag.
    var key: String
    var value: String
    /// The ticket's tags after the operation, comma-joined (what a plain table stores).
    var tagsAfter: String
}

enum Workload {
    static let statuses = ["new", "open", "pending", "on_hold", "solved", "closed"]
    static let priorities = ["low", "normal", "high", "urgent"]
    static let tags = ["billing", "login", "bug", "feature", "vip", "refund", "outage", "mobile", "web", "api",
                       "invoice", "password", "sso", "export", "import", "slow", "crash", "email", "sms", "printer",
                       "network", "vpn", "hardware", "license", "onboarding", "offboarding", "security", "gdpr",
                       "escalated", "followup", "duplicate", "spam"]
    static let words = ["cannot", "login", "after", "update", "printer", "offline", "invoice", "missing", "error",
                        "when", "export", "report", "slow", "dashboard", "mobile", "app", "crashes", "on", "start",
                        "password", "reset", "email", "not", "received", "vpn", "drops", "every", "hour", "refund",
                        "request", "for", "order", "license", "expired", "new", "laptop", "setup", "sso", "broken"]
    /// Operation kinds and their weights (common.py's `_KINDS`).
    static let kinds: [(String, Double)] = [("status", 0.25), ("priority", 0.12), ("assignee", 0.18), ("title", 0.08),
                                            ("updated_at", 0.15), ("site", 0.02), ("tag_add", 0.12), ("tag_del", 0.08)]

    /// 2025-01-01T00:00:00Z plus `seconds`, in the peers' format.
    static func timestamp(_ seconds: Int) -> String {
        Date(timeIntervalSince1970: Double(1_735_689_600 + seconds)).formatted(.iso8601)
    }

    static func title(_ r: inout SeededRandom) -> String {
        var text = ""
        while text.utf8.count < 40 { text += (text.isEmpty ? "" : " ") + words.randomElement(using: &r)! }
        return String(text.prefix(40))
    }

    static func tickets(_ count: Int, seed: UInt64) -> [WorkTicket] {
        var r = SeededRandom(seed: seed)
        return (0..<count).map { i in
            WorkTicket(title: title(&r), status: statuses.randomElement(using: &r)!, priority: priorities.randomElement(using: &r)!,
                       assignee: "agent\(String(format: "%03d", Int.random(in: 0..<250, using: &r)))",
                       site: "site\(String(format: "%02d", Int.random(in: 0..<16, using: &r)))",
                       tags: Array(tags.shuffled(using: &r).prefix(Bool.random(using: &r) ? 2 : 3)).sorted(),
                       createdAt: timestamp(i), updatedAt: timestamp(i))
        }
    }

    /// Random single-field updates over the first `range` tickets (all by default).
    static func updates(_ base: [WorkTicket], count: Int, seed: UInt64, range: Int? = nil) -> [WorkOp] {
        var r = SeededRandom(seed: seed)
        var current: [Int: WorkTicket] = [:]
        var clock = 10_000_000
        let total = kinds.reduce(0) { $0 + $1.1 }
        var ops: [WorkOp] = []
        ops.reserveCapacity(count)
        while ops.count < count {
            var pick = Double.random(in: 0..<total, using: &r)
            var kind = kinds.last!.0
            for (name, weight) in kinds {
                if pick < weight { kind = name; break }
                pick -= weight
            }
            let i = Int.random(in: 0..<(range ?? base.count), using: &r)
            var t = current[i] ?? base[i]
            if kind == "tag_add", let tag = tags.filter({ !t.tags.contains($0) }).randomElement(using: &r) {
                t.tags = (t.tags + [tag]).sorted()
                current[i] = t
                ops.append(WorkOp(ticket: i, kind: .tagAdd, key: tag, value: "", tagsAfter: t.tags.joined(separator: ",")))
                continue
            }
            if kind == "tag_del", let tag = t.tags.randomElement(using: &r) {
                t.tags.removeAll { $0 == tag }
                current[i] = t
                ops.append(WorkOp(ticket: i, kind: .tagRemove, key: tag, value: "", tagsAfter: t.tags.joined(separator: ",")))
                continue
            }
            if kind == "tag_add" || kind == "tag_del" { kind = "status" }
            var value: String
            repeat {
                switch kind {
                case "status": value = statuses.randomElement(using: &r)!
                case "priority": value = priorities.randomElement(using: &r)!
                case "assignee": value = "agent\(String(format: "%03d", Int.random(in: 0..<250, using: &r)))"
                case "site": value = "site\(String(format: "%02d", Int.random(in: 0..<16, using: &r)))"
                case "title": value = title(&r)
                default:
                    clock += Int.random(in: 1..<120, using: &r)
                    value = timestamp(clock)
                }
            } while value == t.field(kind)
            t.setField(kind, value)
            current[i] = t
            ops.append(WorkOp(ticket: i, kind: .set, key: kind, value: value, tagsAfter: ""))
        }
        return ops
    }
}

extension WorkTicket {
    func field(_ name: String) -> String {
        switch name {
        case "status": status
        case "priority": priority
        case "assignee": assignee
        case "site": site
        case "title": title
        default: updatedAt
        }
    }

    mutating func setField(_ name: String, _ value: String) {
        switch name {
        case "status": status = value
        case "priority": priority = value
        case "assignee": assignee = value
        case "site": site = value
        case "title": title = value
        default: updatedAt = value
        }
    }
}
