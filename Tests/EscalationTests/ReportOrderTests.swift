import Foundation
import Testing
@testable import Escalation
import TicketModel

/// Records of one instant read cause before effect in a ticket's history (issue 22): their ids are
/// name-based, so ordering by id alone printed "ladder exhausted" before "level 2 fired" for some
/// tickets and not for others.
@Suite struct ReportOrderTests {
    func stored(_ type: RecordType, level: Int? = nil, id: String) -> StoredRecord {
        var record = EscalationRecord(type: type, at: 1_790_000_000_000)
        record.level = level
        record.loop = level.map { _ in 0 }
        return StoredRecord(id: UUID(uuidString: id)!, record: record, site: nil)
    }

    @Test func oneInstantReadsCauseBeforeEffect() {
        // Ids chosen so that id order is the reverse of cause and effect.
        let records = [
            stored(.escalationStarted, id: "F0000000-0000-5000-8000-000000000000"),
            stored(.levelFired, level: 1, id: "E0000000-0000-5000-8000-000000000000"),
            stored(.levelFired, level: 2, id: "D0000000-0000-5000-8000-000000000000"),
            stored(.escalationExhausted, id: "C0000000-0000-5000-8000-000000000000"),
            stored(.slaBreach, id: "B0000000-0000-5000-8000-000000000000"),
            stored(.slaApplied, id: "A0000000-0000-5000-8000-000000000000"),
        ]
        for shuffled in [records, records.reversed(), records.shuffled()] {
            let order = shuffled.sorted(by: SLAReport.readingOrder).map { SLAReport.describe($0.record) }
            #expect(order.map { $0.prefix(12) } == [
                "SLA policy ?", "? breached (", "ladder ? sta", "level 1 (loo", "level 2 (loo", "ladder exhau",
            ].map { $0.prefix(12) }, "\(order)")
        }
    }

    /// Two records of one kind at one instant (two transfers in a millisecond) read in the order
    /// they were written, by the hybrid clock of their events, not by their random ids; a record
    /// derived now and not written yet comes after the written ones.
    @Test func oneInstantOfOneKindReadsInWriteOrder() throws {
        func transfer(_ from: String, _ to: String, id: String, counter: UInt16?) throws -> StoredRecord {
            var record = EscalationRecord(type: .transferred, at: 1_790_000_000_000)
            (record.fromGroup, record.toGroup) = (from, to)
            return StoredRecord(id: UUID(uuidString: id)!, record: record, site: nil,
                                stamp: try counter.map { Stamp(hlc: HLC(millis: 1_790_000_000_000, counter: $0), site: try SiteID("north")) })
        }
        let records = [
            try transfer("a", "b", id: "F0000000-0000-7000-8000-000000000000", counter: 1),
            try transfer("b", "c", id: "E0000000-0000-7000-8000-000000000000", counter: 2),
            try transfer("c", "d", id: "D0000000-0000-7000-8000-000000000000", counter: 3),
            try transfer("d", "e", id: "C0000000-0000-7000-8000-000000000000", counter: nil),
        ]
        for shuffled in [records, records.reversed(), records.shuffled()] {
            #expect(shuffled.sorted(by: SLAReport.readingOrder).map { $0.record.toGroup } == ["b", "c", "d", "e"])
        }
    }
}
