import Escalation
import Foundation
import Notify
import Testing
import TicketModel

/// The agent directory and the mail sender agree on what an e-mail address is: an agent saved with
/// an address the sender refuses would have every notice go to the dead letters.
@Suite struct EmailAgreementTests {
    static let refused = [
        "x(y)@example.org", "a\"b@example.org", "\"a b\"@example.org", "a;b@example.org", "a,b@example.org", "a:b@example.org",
        "a[b]@example.org", "a\\b@example.org", "anna@exämple.org", "jörg@example.org", "a b@example.org", "a<b@example.org",
        ".anna@example.org", "anna.@example.org", "an..na@example.org", "@example.org", "anna@", "anna", "anna@@example.org",
        "anna@-example.org", "anna@example-.org", "anna@example..org", "anna@.example.org", "anna@example.org.", "anna@exa_mple.org",
        "anna@example.org\r\nBcc: eve@example.org", "anna\u{85}@example.org", "anna@[127.0.0.1]",
        String(repeating: "a", count: 65) + "@example.org", "a@" + String(repeating: "b", count: 64) + ".org",
        "a@" + Array(repeating: String(repeating: "b", count: 60), count: 5).joined(separator: ".") + ".org",
    ]
    static let accepted = [
        "anna@example.org", "anna.berg+desk@example.org", "a!#$%&'*+/=?^_`{|}~-z@mail.example.org", "Anna.Berg@Example.ORG",
        "1@x-y.example.org", "a@b.co",
    ]

    func sends(_ address: String) -> Bool {
        (try? MailMessage(from: "help@example.org", to: address, subject: "s", body: "b", key: "k", date: .now).rendered()) != nil
    }

    @Test(arguments: refused) func bothRefuse(_ address: String) {
        #expect(!AgentDocument.isEmail(address), "agent add takes \(address.debugDescription)")
        #expect(!sends(address), "the sender takes \(address.debugDescription)")
        #expect(!EmailAddress.isValid(address))
    }

    @Test(arguments: accepted) func bothAccept(_ address: String) {
        #expect(AgentDocument.isEmail(address), "agent add refuses \(address.debugDescription)")
        #expect(sends(address), "the sender refuses \(address.debugDescription)")
    }

    @Test func whatTheDirectoryTakesTheSenderTakes() {
        for address in Self.refused + Self.accepted where AgentDocument.isEmail(address) {
            #expect(sends(address), "\(address.debugDescription)")
        }
    }
}
