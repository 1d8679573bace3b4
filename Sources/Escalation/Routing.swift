// Placeholder until the routing module lands (same public API).
import Foundation
import TicketModel

public struct RoutingError: Error, Sendable, CustomStringConvertible { public var description: String }
public struct RoutingRule: Sendable, Equatable { public var name: String }
public struct RoutingFacts: Sendable {
    public var channel: String, category: String?, subject: String, message: String, customerTier: String?, language: String?, site: String
    public init(channel: String, category: String?, subject: String, message: String, customerTier: String?, language: String?, site: String) {
        self.channel = channel; self.category = category; self.subject = subject; self.message = message
        self.customerTier = customerTier; self.language = language; self.site = site
    }
}
public struct RoutingDecision: Sendable, Equatable {
    public var rule: String, isFallback: Bool, position: Int?, group: String?, priority: Priority?, tags: [String], slaPolicy: String?, escalate: String?, explanation: String
}
public struct RoutingRules: Sendable, Equatable {
    public var rules: [RoutingRule], fallback: RoutingRule, version: String
    public static func load(_ data: Data, file: String) throws(RoutingError) -> RoutingRules { throw RoutingError(description: "not yet") }
    public func route(_ facts: RoutingFacts) -> RoutingDecision {
        RoutingDecision(rule: fallback.name, isFallback: true, position: nil, group: nil, priority: nil, tags: [], slaPolicy: nil, escalate: nil, explanation: "")
    }
}
