import Desk
import Foundation
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A misspelt customer tier would be stored as it is and silently miss the SLA policies and rules
/// that match on it; a CRM value that is not a number would be summed as nothing (issue 22). The Desk
/// refuses both where they are typed, saying where and what, and takes a new tier only when asked.
@Suite struct CustomerTierTests {
    static let now: Int64 = 1_790_000_000_000
    static let config = #"""
    {"policies": [{"name": "platinum", "version": 1, "position": 1, "match": {"customerTier": ["platinum"]}, "calendar": "24x7",
                   "clocks": {"firstResponse": {"targets": {"normal": "1h", "urgent": "1h"}}}}]}
    """#

    func refusal(_ body: () throws -> Void) throws -> DeskError {
        do { try body() } catch let error as DeskError { return error }
        Issue.record("expected a DeskError")
        return DeskError(.invalidInput, "none")
    }

    @Test func aTierThePublishedConfigurationDoesNotNameIsRefusedWithTheNearest() throws {
        let store = try memoryStore("hub", role: .coordinator)
        let desk = try HelpDesk(store: store)
        _ = try desk.escalation.publish(Data(Self.config.utf8), file: "config.json", actor: "ops")
        let error = try refusal { try desk.open(TicketDraft(subject: "Payroll down", customerTier: "platnum"), now: Self.now) }
        #expect(error.code == .invalidInput && error.field == "customerTier")
        #expect(error.message.contains("Did you mean \"platinum\"?") && error.message.contains("--allow-unknown"))
        #expect(try store.tickets().isEmpty)
        #expect(try desk.open(TicketDraft(subject: "Payroll down", customerTier: "platinum"), now: Self.now).displayNumber == "HUB-1")
        #expect(try desk.open(TicketDraft(subject: "New tier", customerTier: "diamond"), now: Self.now, allowUnknown: true).displayNumber == "HUB-2")
    }

    @Test func withNoTierPublishedTheCustomerRecordsTiersAreTheKnownOnes() throws {
        let store = try memoryStore("north")
        let desk = try HelpDesk(store: store)
        // A new store knows no tier: the first CRM file sets them.
        _ = try desk.importCustomers(csv: Data("id,name,tier,value\nC-1,Ada,Platinum,120000\nC-2,Bo,gold,5000.50\n".utf8), file: "crm.csv")
        let error = try refusal { try desk.open(TicketDraft(subject: "Payroll down", customerTier: "platnum"), now: Self.now) }
        #expect(error.field == "customerTier" && error.message.contains("customer records hold (gold, platinum)"))
        #expect(try desk.open(TicketDraft(subject: "Payroll down", customerTier: "gold"), now: Self.now).displayNumber == "NORTH-1")
    }

    @Test func aCRMRowWithAnUnknownTierIsRefusedWithItsLineAndColumnAndNothingIsImported() throws {
        let store = try memoryStore("north")
        let desk = try HelpDesk(store: store)
        _ = try desk.importCustomers(csv: Data("id,tier\nC-1,platinum\n".utf8), file: "crm.csv")
        let before = try store.vector()
        let file = Data("id,name,tier\nC-2,Bo,platinum\nC-3,Cy,platnum\n".utf8)
        let error = try refusal { _ = try desk.importCustomers(csv: file, file: "crm.csv") }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains("crm.csv line 3, column 3 (tier)") && error.message.contains("Did you mean \"platinum\"?"))
        #expect(try store.vector() == before)
        // On purpose, a new tier is taken, and is known from then on.
        #expect(try desk.importCustomers(csv: file, file: "crm.csv", allowUnknown: true).created == 2)
        #expect(try desk.importCustomers(csv: Data("id,tier\nC-4,platnum\n".utf8), file: "crm.csv").created == 1)
    }

    @Test(arguments: [true, false])
    func aValueThatIsNotANumberIsAlwaysRefusedWithItsLineAndColumn(allowUnknown: Bool) throws {
        let store = try memoryStore("north")
        let desk = try HelpDesk(store: store)
        let error = try refusal {
            _ = try desk.importCustomers(csv: Data("id,name,value,tier\nC-1,Ada,120000,gold\nC-2,Bo,abc,gold\n".utf8), file: "crm.csv",
                                         allowUnknown: allowUnknown)
        }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains("crm.csv line 3, column 3 (value): \"abc\" is not a number"))
        #expect(try store.customers().isEmpty)
    }
}
