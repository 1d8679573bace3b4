import Foundation
import TicketModel

/// A small deterministic generator, so a failing seed replays exactly.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Three sites write random operations on a few shared tickets, exchanging now and then.
public func randomHistory(seed: UInt64) -> [Block] { randomHistoryWithKeys(seed: seed).blocks }

/// The same history, with the public key of each site that wrote it.
public func randomHistoryWithKeys(seed: UInt64) -> (blocks: [Block], keys: [SiteID: [UInt8]]) {
    var rng = SplitMix(state: seed)
    var sites = [SimSite("north"), SimSite("south"), SimSite("central")]
    let ids = (1...3).map { ticketID(UInt8($0)) }
    // North creates the tickets; everyone starts from them.
    sites[0].write(ids.enumerated().flatMap { create($1, number: UInt64($0 + 1)) })
    sites[1].sync(from: sites[0])
    sites[2].sync(from: sites[0])
    let statuses = Status.writable.map(\.rawValue)
    let people = ["anna", "bela", "chen"]
    let tags = ["printer", "vip", "network"]
    for step in 0..<Int.random(in: 10...40, using: &rng) {
        let s = Int.random(in: 0..<3, using: &rng)
        if Int.random(in: 0..<5, using: &rng) == 0 {
            let other = Int.random(in: 0..<3, using: &rng)
            sites[s].sync(from: sites[other])
            continue
        }
        sites[s].wall += UInt64.random(in: 0...3, using: &rng)
        let id = ids.randomElement(using: &rng)!
        let change: Change
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: change = set(id, .status, .text(statuses.randomElement(using: &rng)!))
        case 1: change = set(id, .assignee, .text(people.randomElement(using: &rng)!))
        case 2: change = set(id, .priority, .text(Priority.allCases.randomElement(using: &rng)!.rawValue))
        case 3: change = Change(.ticket(id), .addElement(.tags, tags.randomElement(using: &rng)!))
        case 4:
            let tag = tags.randomElement(using: &rng)!
            change = Change(.ticket(id), .removeElement(.tags, tag, observed: sites[s].observedDots(id, .tags, tag)))
        case 5: change = message(id, UUID(), [.customerMessage, .agentReply, .internalNote].randomElement(using: &rng)!, body: "m\(step)")
        case 6: change = set(id, .escalation, .level(cycle: UInt64.random(in: 0...1, using: &rng), level: UInt64.random(in: 0...3, using: &rng)))
        case 7: change = set(id, .mergedInto, .ticket(ids.randomElement(using: &rng)!))
        case 8: change = set(id, .deleted, .flag(Bool.random(using: &rng)))
        default: change = set(id, .owner, .owner(epoch: UInt64.random(in: 0...2, using: &rng), site: sites.randomElement(using: &rng)!.site))
        }
        sites[s].write([change])
    }
    var all: [Block] = []
    for site in sites { all += site.replica.blocks(after: VersionVector()).filter { $0.origin == site.site } }
    return (all, Dictionary(uniqueKeysWithValues: sites.map { ($0.site, $0.key.publicKey) }))
}

