import Foundation
import Testing
@testable import Escalation

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
}
