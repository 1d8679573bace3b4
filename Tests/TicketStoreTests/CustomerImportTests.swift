import Foundation
import TestSupport
import Testing
import TicketModel
@testable import TicketStore

/// `customer import` writes its rows many to a transaction; how it is cut does not change what is stored.
@Suite struct CustomerImportTests {
    func drafts(_ count: Int) -> [CustomerDraft] {
        (1...count).map { CustomerDraft(crmID: "C-\($0)", name: "Customer \($0)", email: "c\($0)@example.com", tier: $0 % 3 == 0 ? "gold" : nil,
                                        value: "\($0 * 100)") }
    }

    @Test func rowsAreWrittenInTransactionsOfTheChunkAndTheResultDoesNotDependOnIt() throws {
        let small = try memoryStore("north")
        var steps: [Int] = []
        let report = try small.importCustomers(drafts(25), chunk: 10) { steps.append($0) }
        #expect(steps == [10, 20, 25])
        #expect(report.rows == 25 && report.created == 25 && report.updated == 0)
        let whole = try memoryStore("north")
        var wholeSteps: [Int] = []
        _ = try whole.importCustomers(drafts(25)) { wholeSteps.append($0) }
        #expect(wholeSteps == [25])
        #expect(try small.customers() == whole.customers())
        // Imported again: nothing changes, nothing is written.
        let before = try small.vector()
        #expect(try small.importCustomers(drafts(25), chunk: 10).unchanged == 25)
        #expect(try small.vector() == before)
    }

    @Test(arguments: [("12500", true), ("-3", true), ("+0.5", true), (".5", true), ("1.", true), ("12,500", false), ("1e3", false),
                      ("", false), (".", false), ("-", false), ("12 500", false), ("٣", false), ("0x1F", false)])
    func aValueIsAPlainDecimalNumber(_ text: String, _ isNumber: Bool) {
        #expect(CustomerCSV.isNumber(text) == isNumber)
    }
}
