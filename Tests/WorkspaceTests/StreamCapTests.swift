import Foundation
import HTTPTypes
import HummingbirdCore
import TestSupport
import Testing
import TicketModel
import TicketStore
@testable import Workspace

/// One agent may hold a bounded share of the node's live-update streams.
@Suite struct StreamCapTests {
    @Test func anAgentPastItsShareOfStreamsIsRefusedAndOthersAreNot() throws {
        let store = try memoryStore("hq", role: .coordinator)
        let stream = EventStream(feed: ChangeFeed(store: store))
        for _ in 0..<EventStream.maxPerAgent { #expect(stream.open.take("mia", max: EventStream.maxPerAgent)) }
        let refused = stream.response(agent: "mia")
        #expect(refused.status == .tooManyRequests)
        #expect(refused.headers[.retryAfter] == "30")
        #expect(stream.response(agent: "ada").status == .ok, "another agent still gets a stream")
        stream.open.give("mia")
        #expect(stream.open.take("mia", max: EventStream.maxPerAgent), "a closed stream makes room again")
    }
}
