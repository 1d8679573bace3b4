import Foundation
import TicketModel

/// A site writing blocks into its own in-memory replica, as a store would.
public struct SimSite {
    public let site: SiteID
    public let key = SiteKey.generate()
    public var replica = Replica()
    public var clock = HybridClock(last: .zero)
    public var wall: UInt64 = 1_700_000_000_000

    public init(_ name: String) { site = try! SiteID(name) }

    /// Writes one block of `changes` and applies it locally.
    @discardableResult
    public mutating func write(_ changes: [Change]) -> Block {
        wall += 1
        let hlc = try! clock.now(wall: wall)
        let block = try! Block.make(origin: site, seq: replica.vector[site] + 1, hlc: hlc, deps: replica.vector,
                                    changes: changes, key: key)
        _ = try! replica.receive(block)
        return block
    }

    /// Receives blocks from elsewhere, advancing the clock like the store does.
    public mutating func receive(_ blocks: [Block]) {
        for block in blocks {
            _ = try! replica.receive(block)
            _ = try! clock.receive(block.hlc, wall: wall)
        }
    }

    public mutating func sync(from other: SimSite) { receive(other.replica.blocks(after: replica.vector)) }

    public func view(_ id: UUID) -> TicketView { replica.tickets[id]! }

    public func observedDots(_ id: UUID, _ set: ElementSet, _ element: String) -> [Dot] {
        replica.tickets[id]?.state.elements[set]?[element] ?? []
    }
}

public func ticketID(_ n: UInt8) -> UUID { UUID(uuid: (n, 0, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, n)) }
public func eventID(_ n: UInt8) -> UUID { UUID(uuid: (0xee, n, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, n)) }

public func create(_ id: UUID, number: UInt64, subject: String = "Printer offline") -> [Change] {
    [Change(.ticket(id), .create(number: number)), Change(.ticket(id), .set(.subject, .text(subject))),
     Change(.ticket(id), .set(.status, .text("new")))]
}

public func set(_ id: UUID, _ field: Field, _ value: FieldValue) -> Change { Change(.ticket(id), .set(field, value)) }

public func message(_ id: UUID, _ event: UUID, _ kind: EventKind = .customerMessage, body: String = "still broken") -> Change {
    Change(.ticket(id), .event(TicketEvent(id: event, kind: kind, actor: "someone", visibility: .public, body: body)))
}

/// Applies `blocks` in `order` to a fresh replica and returns it.
public func replay(_ blocks: [Block], order: [Int]) -> Replica {
    var replica = Replica()
    for i in order { _ = try! replica.receive(blocks[i]) }
    return replica
}
