import Foundation
import GRDB
import Testing
import TicketModel
@testable import TicketStore

/// Two stores that know each other's keys, synced by exchanging the blocks each lacks.
private func pair() throws -> (north: TicketDatabase, south: TicketDatabase) {
    let north = try makeStore("north"), south = try makeStore("south")
    try north.learn(keys: [try SiteID("south"): try south.identity().publicKey])
    try south.learn(keys: [try SiteID("north"): try north.identity().publicKey])
    return (north, south)
}

private func sync(_ a: TicketDatabase, _ b: TicketDatabase) throws {
    let toB = try b.apply(try a.blocks(after: try b.vector()))
    let toA = try a.apply(try b.blocks(after: try a.vector()))
    #expect(toB.refused.isEmpty && toA.refused.isEmpty)
}

private func solvedTicket(_ store: TicketDatabase, _ subject: String) throws -> TicketRecord {
    let t = try store.createTicket(TicketDraft(subject: subject))
    return try store.update(t.id, [(.status, .text("solved"))])
}

@Suite struct KnowledgeTests {
    @Test func anArticleWrittenAtOneSiteIsFoundAtAnotherAfterSync() throws {
        let (north, south) = try pair()
        let ticket = try solvedTicket(north, "VPN drops every ten minutes")
        let article = try north.recordResolution(ticket.displayNumber, ArticleDraft(
            title: "VPN tunnel drops after rekey", summary: "The tunnel dropped at every IKE rekey.",
            rootCause: "Mismatched rekey lifetimes between the office firewall and the client profile.",
            steps: "Set both lifetimes to 8 hours; reconnect the client.", author: "anna"))
        #expect(try south.searchArticles("rekey lifetimes").isEmpty)
        try sync(north, south)
        let hits = try south.searchArticles("rekey lifetimes")
        #expect(hits.map(\.article.id) == [article.id])
        #expect(hits.first?.article.site == "north")
        #expect(hits.first?.article.sourceTicket == ticket.displayNumber)
        #expect(try north.digest() == south.digest())

        // First line at the other site uses it: the link replicates, and the article counts the use.
        let local = try south.createTicket(TicketDraft(subject: "VPN keeps dropping"))
        _ = try south.linkArticle(local.displayNumber, article.ref)
        _ = try south.linkArticle(local.displayNumber, article.ref)  // twice: still one use
        try sync(north, south)
        #expect(try north.article(article.ref).uses == 1)
        #expect(try north.articles(linkedTo: local.id).map(\.id) == [article.id])
        #expect(try north.digest() == south.digest())
    }

    @Test func theExactPhraseRanksFirst() throws {
        let store = try makeStore("north")
        let t = try solvedTicket(store, "printing")
        // Many loose mentions of the words, in the heavily weighted title too: bm25 alone favours it.
        let loose = try store.recordResolution(t.id, ArticleDraft(
            title: "Spooler crash, printer: spooler printer", summary: "crash of the spooler; printer offline; spooler restart; printer crash",
            rootCause: "spooler", steps: "restart the printer", author: "a"))
        let exact = try store.recordResolution(t.id, ArticleDraft(
            title: "Driver update", summary: "After the update users saw a printer spooler crash on login.",
            rootCause: "A faulty driver", steps: "Roll back the driver", author: "a"))
        let unrelated = try store.recordResolution(t.id, ArticleDraft(
            title: "Printer offline", summary: "The printer lost its address", rootCause: "DHCP", steps: "Reserve an address", author: "a"))
        let hits = try store.searchArticles("printer spooler crash")
        #expect(hits.map(\.article.id) == [exact.id, loose.id, unrelated.id])
        #expect(hits.map(\.match) == ["phrase", "all", "any"])
        // Operators and quotes in the text are words, not query syntax.
        #expect(try store.searchArticles("\"printer\" OR NEAR(spooler").count == 3)
        // A letter that joins the next character into one grapheme (U+0D4E, Prepend) cannot carry a quote in.
        #expect(try store.searchArticles("\u{0D4E}\"").isEmpty)
        #expect(try store.searchArticles("\u{0D4E}\"printer * NEAR(").count == 3)
        #expect(throws: StoreError.self) { try store.searchArticles("  ?! ") }
    }

    /// `kb search printer` found nothing where `printers` matched (issue 22): words match in any form.
    @Test func aWordFindsItsOtherForms() throws {
        let store = try makeStore("north")
        let t = try solvedTicket(store, "printing")
        let printers = try store.recordResolution(t.id, ArticleDraft(
            title: "Printers offline after the update", summary: "Every printer lost its queue.",
            rootCause: "The spooler crashed", steps: "Restarting the spooler", author: "a"))
        let other = try store.recordResolution(t.id, ArticleDraft(
            title: "Scanner jams", summary: "Paper jams in the feeder; a printer nearby was fine.",
            rootCause: "Worn rollers", steps: "Replace the rollers", author: "a"))
        #expect(try store.searchArticles("printers").map(\.article.id) == [printers.id, other.id])
        #expect(try store.searchArticles("spooler crash").map(\.article.id) == [printers.id])
        #expect(try store.searchArticles("restart").map(\.article.id) == [printers.id])
        // A person reads relevance: 100 for the best hit, no more than that for the others, never 0.
        let hits = try store.searchArticles("printer offline")
        #expect(hits.map(\.article.id) == [printers.id, other.id])
        #expect(hits.first?.relevance == 100)
        #expect(hits.allSatisfy { (1...100).contains($0.relevance) })
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.relevance >= $1.relevance })
    }

    /// A store made before stemming gets its index rebuilt by the migration, articles and all.
    @Test func theStemmingMigrationRebuildsAnOlderIndex() throws {
        let store = try makeStore("north")
        let t = try solvedTicket(store, "printing")
        let article = try store.recordResolution(t.id, ArticleDraft(
            title: "Printers offline", summary: "s", rootCause: "r", steps: "x", author: "a"))
        // Back to the index of v8 (whole words only), as a store of an older Tierline has it.
        try store.writer.write { db in
            try db.execute(sql: """
                DROP TABLE articleText;
                CREATE VIRTUAL TABLE articleText USING fts5 (id UNINDEXED, title, summary, rootCause, steps,
                  tokenize = 'unicode61 remove_diacritics 2');
                INSERT INTO articleText (rowid, id, title, summary, rootCause, steps) SELECT rowid, id, title, summary, rootCause, steps FROM article;
                DELETE FROM grdb_migrations WHERE identifier = 'v20-kb-stemming';
                """)
        }
        #expect(try store.searchArticles("printer").isEmpty)
        let migrated = try TicketDatabase(store.writer, key: nil)
        #expect(try migrated.searchArticles("printer").map(\.article.id) == [article.id])
        #expect(try migrated.searchArticles("printers offline").map(\.match) == ["phrase"])
    }

    @Test func onlyASolvedTicketGivesAnArticle() throws {
        let store = try makeStore("north")
        let open = try store.createTicket(TicketDraft(subject: "still open"))
        #expect(throws: StoreError.self) {
            try store.recordResolution(open.id, ArticleDraft(title: "t", summary: "s", rootCause: "r", steps: "x", author: "a"))
        }
        #expect(try store.articles().isEmpty)
        #expect(throws: StoreError.self) { try store.article("KB-ffffffff") }
    }

    @Test func aSurveyTakesOneAnswer() throws {
        let (north, south) = try pair()
        let t = try north.createTicket(TicketDraft(subject: "Invoice wrong"))
        let (_, token) = try north.updateIssuingSurvey(t.id, [(.status, .text("solved"))])
        let survey = try #require(token)
        // Solving a solved ticket again issues nothing new.
        #expect(try north.updateIssuingSurvey(t.id, [(.status, .text("solved"))]).surveyToken == nil)
        try sync(north, south)
        // The answer arrives at the other site: it holds the token's hash.
        let answered = try south.answerSurvey(token: survey, score: 4, comment: "quick, thanks")
        #expect(answered.id == t.id)
        #expect(throws: StoreError(.alreadyAnswered, "this survey was answered already; a survey takes one answer")) {
            try south.answerSurvey(token: survey, score: 1, comment: nil)
        }
        #expect(throws: StoreError.self) { try south.answerSurvey(token: "cs_unknown", score: 5, comment: nil) }
        do {
            _ = try south.answerSurvey(token: "cs_unknown", score: 5, comment: nil)
        } catch let error as StoreError {
            #expect(error.code == .unknownToken)
        }
        try sync(north, south)
        let detail = try north.detail(t.id)
        #expect(detail.csat?.score == 4 && detail.csat?.comment == "quick, thanks")
        // The hash travels, never the token.
        #expect(detail.customFields["csat_token"] == SurveyToken.hash(survey))
        #expect(!detail.customFields.values.contains(survey))
    }

    @Test func customersImportOnceAndReplicate() throws {
        let (north, south) = try pair()
        let csv = Data("""
            ID,Name,E-mail,Tier,Value,Company\r
            C-1,Ada Lovelace,ADA@example.com,Platinum,120000,"Engines, ""Analytical"" Ltd"\r
            ,Bob,bob@example.com,gold,5000,\r
            \r
            """.utf8)
        let drafts = try CustomerCSV.parse(csv, file: "crm.csv")
        #expect(drafts.count == 2)
        #expect(drafts[0].organization == "Engines, \"Analytical\" Ltd")
        #expect(drafts[1].key == "bob@example.com")
        var report = try north.importCustomers(drafts)
        #expect(report.created == 2 && report.updated == 0)
        report = try north.importCustomers(drafts)
        #expect(report.unchanged == 2 && report.created == 0)
        #expect(try north.blocks(after: VersionVector()).count == 1)
        try sync(north, south)
        let ada = try #require(try south.customer("ada@example.com"))
        #expect(ada.key == "C-1" && ada.tier == "platinum" && ada.value == "120000")
        #expect(try north.digest() == south.digest())

        // A ticket shows the customer's tier and their other tickets.
        let first = try south.createTicket(TicketDraft(subject: "Engine jammed", customer: "C-1"))
        _ = try south.update(first.id, [(.status, .text("solved"))])
        let second = try south.createTicket(TicketDraft(subject: "Engine jammed again", customer: "ada@example.com"))
        let history = try #require(try south.customerHistory(ofTicket: second.id))
        #expect(history.customer?.tier == "platinum")
        #expect(history.ticketCount == 2 && history.openCount == 1)
    }

    /// One customer per identity (issue 22): a stub that intake made for a sender before the CRM
    /// import named them is taken over by the CRM record with the same e-mail or phone, on every
    /// replica alike, whichever replica wrote which and in whichever order they sync.
    @Test(arguments: [true, false])
    func aCRMRecordTakesOverTheStubWithItsAddressOnEveryReplica(stubSyncsFirst: Bool) throws {
        let (north, south) = try pair()
        // North's intake met the sender first: a tierless record keyed by the address, and one by a phone.
        _ = try north.importCustomers([CustomerDraft(name: "Dana", email: "dana@example.com"), CustomerDraft(phone: "+4930123")])
        let stubTicket = try north.createTicket(TicketDraft(subject: "Invoice charged twice", customer: "dana@example.com"))
        // South imports the CRM, which knows the customer by its id.
        _ = try south.importCustomers([CustomerDraft(crmID: "C-9", name: "Dana Reyes", email: "Dana@Example.com", tier: "platinum"),
                                       CustomerDraft(crmID: "C-10", phone: "+4930123", tier: "gold")])
        if stubSyncsFirst { try sync(north, south) } else { try sync(south, north) }
        for store in [north, south] {
            let dana = try #require(try store.customer("dana@example.com"))
            #expect(dana.key == "C-9" && dana.tier == "platinum")
            #expect(try store.customer("+4930123")?.key == "C-10")
            // The CRM record is its own; a record with a CRM id is never taken over.
            #expect(try store.customer("C-9")?.key == "C-9")
            // The stub's earlier ticket shows the CRM customer, with its tier.
            let history = try #require(try store.customerHistory(ofTicket: stubTicket.id))
            #expect(history.customer?.key == "C-9" && history.customer?.tier == "platinum" && history.ticketCount == 1)
        }
        #expect(try north.digest() == south.digest())
        // The list keeps the stub, naming the record that took it over.
        #expect(try north.customers().map { "\($0.key)>\($0.mergedInto ?? "-")" } == ["+4930123>C-10", "C-10>-", "C-9>-", "dana@example.com>C-9"])
        // Without a CRM record for it, a stub stays its own customer.
        _ = try north.importCustomers([CustomerDraft(email: "eve@example.com")])
        #expect(try north.customer("eve@example.com")?.key == "eve@example.com")
        // A stub keyed by its address is taken over by that address only: a CRM record that shares
        // the phone it holds (an office line) is someone else.
        _ = try north.importCustomers([CustomerDraft(name: "Ann", email: "ann@example.com", phone: "+4930999"),
                                       CustomerDraft(crmID: "C-11", name: "Bob", email: "bob@example.com", phone: "+4930999", tier: "gold")])
        #expect(try north.customer("ann@example.com")?.key == "ann@example.com")
    }

    @Test(arguments: [
        ("id,nam\nC-1,x\n", "unknown column \"nam\""),
        ("id,name\nC-1\n", "line 2: 1 fields, the header has 2"),
        ("name,tier\nAda,gold\n", "line 2: no id, email or phone"),
        ("id,name\nC-1,\"open\n", "a quoted field never ends"),
        ("id,name\nC-1,a\"b\n", "a quote inside an unquoted field"),
        ("", "is empty"),
        ("id,value\nC-1,12000\nC-2,abc\n", "line 3, column 2 (value): \"abc\" is not a number"),
        ("id,value\nC-1,12 000\n", "line 2, column 2 (value)"),
    ])
    func aBadCRMFileSaysWhereAndWhat(text: String, expected: String) throws {
        do {
            _ = try CustomerCSV.parse(Data(text.utf8), file: "crm.csv")
            Issue.record("\(text.debugDescription) was accepted")
        } catch let error as StoreError {
            #expect(error.detail.contains(expected), "\(error.detail)")
        }
    }

    @Test func recordEntitiesTakeOnlyCustomTextFields() throws {
        let customer = EntityRef(kind: .customer, id: UUID())
        #expect(throws: (any Error).self) { try Field.status.validate(.text("open"), on: .customer) }
        #expect(throws: (any Error).self) { try Field.custom("value").validate(.integer(5), on: .article) }
        try Field.custom("tier").validate(.text("gold"), on: .customer)
        // The codec refuses a tag or a creation on a customer: no block holding one can be made or read.
        let key = SiteKey.generate()
        for operation: TicketModel.Operation in [.addElement(.tags, "x"), .create(number: 1)] {
            #expect(throws: (any Error).self) {
                try Block.make(origin: try SiteID("north"), seq: 1, hlc: HLC(rawValue: 1 << 16), deps: VersionVector(),
                               changes: [Change(customer, operation)], key: key)
            }
        }
    }
}
