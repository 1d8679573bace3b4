import Desk
import Escalation
import Foundation
import SyncNode
import TicketModel
import TicketStore

/// A help desk's day in small steps: customers write in by email, chat, phone and the portal, agents
/// reply, tag, raise priorities, wait for customers and solve. Some tickets get no reply in time, so
/// the demo's short SLA targets breach within a minute.
///
/// The stream is seeded, so two runs write the same kinds of work in the same order; the ids and
/// times are real.
struct TicketStream {
    /// A kind of request a customer makes.
    struct Template {
        var subject: String
        var message: String
        var channel: String
        var priority: Priority
        var category: String
        var group: String
        var tags: [String]
    }

    /// A customer organization and its service tier.
    struct Customer {
        var name: String
        var tier: String
    }

    static let templates: [Template] = [
        Template(subject: "Cannot log in to the billing portal", message: "The portal says my password expired, but the reset mail never arrives.",
                 channel: "email", priority: .normal, category: "access", group: "service-desk", tags: ["login"]),
        Template(subject: "Invoice 2291 charged twice", message: "Our card statement shows the same invoice twice this month.",
                 channel: "email", priority: .high, category: "billing", group: "billing", tags: ["invoice"]),
        Template(subject: "Warehouse scanners lose Wi-Fi", message: "Handheld scanners in aisle 4 drop off the network every few minutes.",
                 channel: "phone", priority: .urgent, category: "network", group: "network", tags: ["wifi", "warehouse"]),
        Template(subject: "New starter needs a laptop on Monday", message: "Please prepare a laptop and an account for our new accountant.",
                 channel: "portal", priority: .low, category: "onboarding", group: "service-desk", tags: ["onboarding"]),
        Template(subject: "Shared mailbox not syncing", message: "The support@ mailbox stopped showing new mail in the desktop client.",
                 channel: "chat", priority: .normal, category: "email", group: "service-desk", tags: ["mailbox"]),
        Template(subject: "Point of sale offline in store 12", message: "Tills in store 12 cannot reach the payment service; we are taking cash only.",
                 channel: "phone", priority: .urgent, category: "retail", group: "retail-systems", tags: ["pos", "outage"]),
        Template(subject: "Export to CSV has wrong dates", message: "Dates in the monthly export show the day and month swapped.",
                 channel: "portal", priority: .normal, category: "reporting", group: "applications", tags: ["export"]),
        Template(subject: "VPN certificate expires Friday", message: "Our site-to-site VPN warns that its certificate expires in three days.",
                 channel: "email", priority: .high, category: "network", group: "network", tags: ["vpn"]),
        Template(subject: "Printer jams on every duplex job", message: "The second-floor printer jams whenever we print on both sides.",
                 channel: "chat", priority: .low, category: "hardware", group: "field-service", tags: ["printer"]),
        Template(subject: "Payroll run fails validation", message: "The payroll run stops with a validation error on tax codes.",
                 channel: "phone", priority: .urgent, category: "payroll", group: "applications", tags: ["payroll"]),
        Template(subject: "Request: add a user to the finance group", message: "Please give Ines access to the finance shared drive.",
                 channel: "portal", priority: .low, category: "access", group: "service-desk", tags: ["access-request"]),
        Template(subject: "Website contact form returns an error", message: "Visitors get a server error when they submit the contact form.",
                 channel: "social", priority: .high, category: "web", group: "applications", tags: ["website"]),
    ]

    static let customers: [Customer] = [
        Customer(name: "lumen-bakery", tier: "standard"), Customer(name: "quarry-legal", tier: "gold"),
        Customer(name: "tidewater-school", tier: "standard"), Customer(name: "orchard-logistics", tier: "gold"),
        Customer(name: "kestrel-air", tier: "platinum"), Customer(name: "mosaic-bank", tier: "platinum"),
        Customer(name: "birchwood-clinic", tier: "gold"), Customer(name: "fernhill-hotels", tier: "standard"),
    ]

    static let replies = [
        "Thanks for reporting this. I am looking into it now.",
        "Could you send a screenshot of the error message?",
        "We found the cause and are rolling out a fix this afternoon.",
        "I have reset the account; please try again and tell us how it goes.",
        "A technician is booked for tomorrow morning.",
    ]

    static let followUps = [
        "Any news on this? It is still happening.",
        "Here is the screenshot you asked for.",
        "That worked for most of us, but two people still see it.",
        "Thanks, it works again.",
    ]

    static let agents = ["anna", "bela", "chidi", "dana", "emre"]

    /// What one step wrote, for the narration and the counts.
    enum Step: Equatable {
        case created(site: String, number: String, subject: String, priority: Priority)
        case replied(site: String, number: String)
        case customerWrote(site: String, number: String)
        case tagged(site: String, number: String, tag: String)
        case raised(site: String, number: String)
        case waiting(site: String, number: String)
        case solved(site: String, number: String)
    }

    var random: SeededRandom
    var counts = FleetDemo.StreamCounts()
    /// Tickets this stream opened, by id, with the site that opened them.
    var open: [(id: String, number: String)] = []

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    /// Writes one step of work into `store` (one of the running sites), at time `now`.
    mutating func step(_ store: TicketDatabase, site: String, now: Int64) throws -> Step {
        let roll = random.below(100)
        if open.count < 3 || roll < 34 { return try create(store, site: site, now: now) }
        let pick = open[random.below(open.count)]
        // A ticket opened at another site may not have reached this one yet (or the link is cut).
        guard let ticket = try? store.ticket(pick.id) else { return try create(store, site: site, now: now) }
        if ticket.status == "solved" || ticket.status == "closed" {
            open.removeAll { $0.id == pick.id }
            return try create(store, site: site, now: now)
        }
        let agent = Self.agents[random.below(Self.agents.count)]
        let desk = try HelpDesk(store: store)
        switch roll {
        case ..<56:
            _ = try desk.reply(pick.id, body: Self.replies[random.below(Self.replies.count)], actor: agent)
            if ticket.assignee == nil { _ = try desk.update(pick.id, FieldUpdate(status: .open, assignee: agent), actor: agent) }
            counts.replies += 1
            return .replied(site: site, number: pick.number)
        case ..<68:
            _ = try desk.customerMessage(pick.id, body: Self.followUps[random.below(Self.followUps.count)], actor: ticket.customer ?? "customer")
            counts.customerMessages += 1
            return .customerWrote(site: site, number: pick.number)
        case ..<76:
            let tag = ["needs-info", "vip", "known-issue", "follow-up"][random.below(4)]
            _ = try desk.tag(pick.id, add: [tag], remove: [], actor: agent)
            counts.tags += 1
            return .tagged(site: site, number: pick.number, tag: tag)
        case ..<81:
            let raised: Priority = ticket.priority == "low" ? .normal : ticket.priority == "normal" ? .high : .urgent
            _ = try desk.update(pick.id, FieldUpdate(priority: raised), actor: agent)
            counts.priorityRaises += 1
            return .raised(site: site, number: pick.number)
        case ..<86:
            _ = try desk.update(pick.id, FieldUpdate(status: .pendingCustomer), actor: agent)
            counts.pending += 1
            return .waiting(site: site, number: pick.number)
        default:
            if ticket.assignee == nil {
                _ = try desk.reply(pick.id, body: Self.replies[2], actor: agent)
                counts.replies += 1
            }
            _ = try desk.update(pick.id, FieldUpdate(status: .solved), actor: agent)
            open.removeAll { $0.id == pick.id }
            counts.solved += 1
            return .solved(site: site, number: pick.number)
        }
    }

    mutating func create(_ store: TicketDatabase, site: String, now: Int64) throws -> Step {
        let template = Self.templates[random.below(Self.templates.count)]
        let customer = Self.customers[random.below(Self.customers.count)]
        // The ticket's SLA policy is pinned as it opens, as `tierline ticket create` does.
        let ticket = try HelpDesk(store: store).open(TicketDraft(subject: template.subject, priority: template.priority, customer: customer.name,
                                                        channel: template.channel, group: template.group, tags: template.tags,
                                                        firstMessage: template.message, actor: customer.name, category: template.category,
                                                        customerTier: customer.tier), now: now,
                                                        // The demo's customers are in no CRM: their tiers are taken as given.
                                                        allowUnknown: true)
        open.append((ticket.id, ticket.displayNumber))
        counts.tickets += 1
        return .created(site: site, number: ticket.displayNumber, subject: template.subject, priority: template.priority)
    }
}

/// SplitMix64: a small seedable generator (the standard library's generator cannot be seeded).
/// The benchmark's workload draws from it too.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }
}
