import Escalation
import Foundation
import TestSupport
import TicketModel

/// A ticket created at `created` ms at north with `library`'s matching policy pinned then.
func pinnedTicket(_ library: ConfigLibrary, created: Int64) -> (SimSite, UUID) {
    var north = SimSite("north")
    let id = ticketID(1)
    north.wall = UInt64(created) - 1
    var changes = create(id, number: 1)
    let pin = library.apply(to: MatchFacts(priority: .normal, site: north.site), at: created)!
    changes.append(Change(.ticket(id), .event(TicketEvent(id: eventID(100), kind: .escalation, actor: "tierline", visibility: .internal, body: pin.encoded()))))
    north.write(changes)
    return (north, id)
}
