import TicketModel

/// Whom a ladder level reaches.
public enum Target: Sendable, Hashable, CustomStringConvertible {
    /// A group at a site: `billing-L2@central`.
    case group(String, site: SiteID)
    /// A tier looked up in the escalation matrix for the ticket's owning site and category.
    case tier(Int)
    /// A role, e.g. `role:site_manager`: notified, never assigned. Without a site (`role:x`) it
    /// means the agents with that role at the ticket's owning site; `role:x@site` names the site.
    case role(String, site: SiteID?)
    /// The coordinator's on-call.
    case coordinator

    public init?(_ text: String) {
        if text == "coordinator" {
            self = .coordinator
        } else if text.hasPrefix("tier:"), let n = Int(text.dropFirst(5)), (1...9).contains(n) {
            self = .tier(n)
        } else if text.hasPrefix("role:"), text.count > 5 {
            let parts = text.dropFirst(5).split(separator: "@", omittingEmptySubsequences: false)
            guard !parts[0].isEmpty, parts[0].count <= 64, parts.count <= 2 else { return nil }
            if parts.count == 2 {
                guard let site = try? SiteID(String(parts[1])) else { return nil }
                self = .role(String(parts[0]), site: site)
            } else {
                self = .role(String(parts[0]), site: nil)
            }
        } else {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64, let site = try? SiteID(String(parts[1])) else { return nil }
            self = .group(String(parts[0]), site: site)
        }
    }

    public var description: String {
        switch self {
        case .group(let g, let site): "\(g)@\(site.rawValue)"
        case .tier(let n): "tier:\(n)"
        case .role(let r, let site): "role:\(r)" + (site.map { "@\($0.rawValue)" } ?? "")
        case .coordinator: "coordinator"
        }
    }
}

/// What an SLA clock does on warning or breach.
public enum SLAAction: String, Sendable {
    case notify, escalate
    case raisePriority = "raise_priority"
}

/// What a ladder level does besides its assignment.
public enum LevelAction: Sendable, Hashable {
    case notify, raisePriority
    case watch(String)
    case tag(String)

    public init?(_ text: String) {
        switch text {
        case "notify": self = .notify
        case "raise_priority": self = .raisePriority
        default:
            if text.hasPrefix("watch:"), text.count > 6 { self = .watch(String(text.dropFirst(6))) }
            else if text.hasPrefix("tag:"), text.count > 4 { self = .tag(String(text.dropFirst(4))) }
            else { return nil }
        }
    }
}

extension Priority {
    /// One step more urgent, at most `urgent`.
    public var raised: Priority {
        let all = Priority.allCases
        return all[min(all.firstIndex(of: self)! + 1, all.count - 1)]
    }
}
