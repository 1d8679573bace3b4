import Desk
import Foundation
import TestSupport
import Synchronization
import Testing
import TicketModel
import TicketStore

/// `ticket import` reads CSV or JSON lines, checks every row as `ticket create` checks its flags
/// before it writes anything, then opens the tickets many to a transaction with their policies.
@Suite struct TicketImportTests {
    // The tier policy and the refusal helper of the customer tier tests.
    static let now = CustomerTierTests.now
    static let config = CustomerTierTests.config
    func refusal(_ body: () throws -> Void) throws -> DeskError { try CustomerTierTests().refusal(body) }

    @Test func csvRowsBecomeDraftsWithEveryDocumentedColumn() throws {
        let csv = """
            Subject,priority,Customer,channel,group,assignee,tags,category,customer_tier,first message
            "Printer, 3rd floor",high,C-1,email,it,ana,hardware; printer,facilities,platinum,"It jams.
            Every time."
            VPN down,,,,,,,,,
            """
        let rows = try TicketSheet.parse(Data(csv.utf8), format: .csv, file: "t.csv")
        #expect(rows.count == 2)
        let first = rows[0].draft
        #expect(first.subject == "Printer, 3rd floor" && first.priority == .high && first.customer == "C-1" && first.channel == "email")
        #expect(first.group == "it" && first.assignee == "ana" && first.tags == ["hardware", "printer"] && first.category == "facilities")
        #expect(first.customerTier == "platinum" && first.firstMessage == "It jams.\nEvery time.")
        #expect(rows[1].line == 4 && rows[1].draft.priority == .normal && rows[1].draft.customer == nil && rows[1].draft.tags.isEmpty)
        #expect(rows[0].place("customerTier") == "line 2, column 9 (customerTier)")
    }

    @Test func jsonLinesBecomeDraftsAndTagsMayBeAnArray() throws {
        let lines = """
            {"subject": "Printer", "priority": "urgent", "tags": ["a", "b"], "customerTier": "gold", "first_message": "Hi"}

            {"subject": "VPN", "tags": "x;y", "customer_tier": null}
            """
        let rows = try TicketSheet.parse(Data(lines.utf8), format: .jsonl, file: "t.jsonl")
        #expect(rows.map(\.line) == [1, 3])
        #expect(rows[0].draft.priority == .urgent && rows[0].draft.tags == ["a", "b"] && rows[0].draft.customerTier == "gold")
        #expect(rows[0].draft.firstMessage == "Hi")
        #expect(rows[1].draft.tags == ["x", "y"] && rows[1].draft.customerTier == nil)
    }

    @Test(arguments: [
        ("csv", "subject,priority\nA,high\nB,hgh\n", "t.csv line 3, column 2 (priority): \"hgh\" is not a priority"),
        ("csv", "subject,prio\nA,high\n", "t.csv line 1, column 2: unknown column \"prio\""),
        ("csv", "subject,tags\nA,x\n,y\n", "t.csv line 3, column 1 (subject): no subject"),
        ("csv", "subject,tags\nA,x,z\n", "t.csv line 2: 3 fields, the header has 2"),
        ("jsonl", "{\"subject\": \"A\"}\n{\"subject\": \"B\", \"asignee\": \"ana\"}\n", "t.jsonl line 2, column 29: unknown member \"asignee\"; did you mean \"assignee\"?"),
        ("jsonl", "{\"subject\": \"A\", \"priority\": 3}\n", "t.jsonl line 1, column 30 (priority): must be a JSON string"),
        ("jsonl", "{\"subject\": \"A\",}\n", "t.jsonl line 1, column"),
        ("jsonl", "[\"A\"]\n", "t.jsonl line 1: not a JSON object"),
        ("jsonl", "\n\n", "holds no tickets"),
    ])
    func aBadRowIsRefusedWithItsLineAndColumn(_ format: String, _ text: String, _ message: String) throws {
        #expect {
            _ = try TicketSheet.parse(Data(text.utf8), format: TicketSheet.Format(rawValue: format)!, file: "t.\(format)")
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.code == .invalidInput && error.detail.contains(message)
        }
    }

    @Test func theFormatComesFromTheExtension() {
        #expect(TicketSheet.format(forFile: "a/b.CSV") == .csv)
        #expect(TicketSheet.format(forFile: "b.jsonl") == .jsonl && TicketSheet.format(forFile: "b.ndjson") == .jsonl)
        #expect(TicketSheet.format(forFile: "b.txt") == nil)
    }

    @Test func anImportOpensEveryRowInBatchesWithItsPolicy() throws {
        let store = try memoryStore("hub", role: .coordinator)
        let desk = try HelpDesk(store: store)
        _ = try desk.escalation.publish(Data(Self.config.utf8), file: "config.json", actor: "ops")
        var csv = "subject,priority,customer_tier,tags\n"
        for index in 1...25 { csv += "Ticket \(index),\(index % 5 == 0 ? "urgent" : "normal"),\(index % 2 == 0 ? "platinum" : ""),bulk\n" }
        var steps: [Int] = []
        let report = try desk.importTickets(Data(csv.utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now, batchSize: 10) { done, _ in
            steps.append(done)
        }
        #expect(report.rows == 25 && report.created == 25 && report.transactions == 3 && steps == [10, 20, 25])
        #expect(report.firstNumber == "HUB-1" && report.lastNumber == "HUB-25")
        #expect(report.byPriority == ["normal": 20, "urgent": 5])
        let tickets = try store.tickets()
        #expect(tickets.count == 25 && tickets.allSatisfy { $0.tags == ["bulk"] })
        // The platinum tickets have their policy pinned, as `open` pins it, and each is attributed
        // to the importer, as `open` attributes a ticket to its opener.
        var pinned = 0
        for ticket in tickets {
            let state = try desk.escalation.evaluate(ticket.id, now: Self.now).0
            if state.events.contains(where: { $0.event.kind == .escalation && $0.event.body.contains("sla_applied") }) { pinned += 1 }
            #expect(state.events.contains { $0.event.kind == .attribution && $0.event.actor.contains("ops") })
        }
        #expect(pinned == 12)
    }

    @Test func oneRowTheDeskRefusesRefusesTheWholeFileAndNothingIsWritten() throws {
        let store = try memoryStore("hub", role: .coordinator)
        let desk = try HelpDesk(store: store)
        _ = try desk.escalation.publish(Data(Self.config.utf8), file: "config.json", actor: "ops")
        let before = try store.vector()
        let lines = """
            {"subject": "fine", "customerTier": "platinum"}
            {"subject": "typo", "channel": "email", "customerTier": "platnum"}
            """
        let error = try refusal {
            _ = try desk.importTickets(Data(lines.utf8), format: .jsonl, file: "t.jsonl", actor: "ops", now: Self.now, batchSize: 1)
        }
        #expect(error.code == .invalidInput && error.field == nil)
        #expect(error.message.contains("t.jsonl line 2, column 57 (customerTier)") && error.message.contains("Did you mean \"platinum\"?"))
        #expect(error.message.contains("Nothing was imported"))
        #expect(try store.vector() == before && store.tickets().isEmpty)
        let channel = try refusal {
            _ = try desk.importTickets(Data("subject,channel\nA,emial\n".utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now)
        }
        #expect(channel.message.contains("t.csv line 2, column 2 (channel)"))
        #expect(try desk.importTickets(Data(lines.utf8), format: .jsonl, file: "t.jsonl", actor: "ops", now: Self.now, allowUnknown: true).created == 2)
    }

    /// A failure after two committed batches keeps their tickets and says so; running the same file
    /// again opens the rest only: one ticket per row (issue 23: a re-run used to import every row again).
    @Test func aStoppedImportResumesOnTheSameFileWithOneTicketPerRow() throws {
        var store = try memoryStore("hub", role: .coordinator)
        var csv = "subject,priority\n"
        for index in 1...25 { csv += "Ticket \(index),normal\n" }
        let commits = Mutex(0)
        store.faultHook = { point in
            guard point == "beforeCommit" else { return }
            if commits.withLock({ $0 += 1; return $0 }) == 3 { throw CocoaError(.fileWriteOutOfSpace) }
        }
        let error = try refusal {
            _ = try HelpDesk(store: store).importTickets(Data(csv.utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now, batchSize: 10)
        }
        #expect(error.message.contains("t.csv line 22: the import stopped"))
        #expect(error.message.contains("The 20 row(s) before that line are stored") && error.message.contains("run the same command on the unchanged file"))
        #expect(try store.tickets().count == 20)
        store.faultHook = nil
        let report = try HelpDesk(store: store).importTickets(Data(csv.utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now, batchSize: 10)
        #expect(report.rows == 25 && report.created == 5 && report.alreadyImported == 20)
        #expect(report.firstNumber == "HUB-21" && report.lastNumber == "HUB-25")
        let again = try HelpDesk(store: store).importTickets(Data(csv.utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now, batchSize: 7)
        #expect(again.created == 0 && again.alreadyImported == 25 && again.firstNumber == nil)
        let tickets = try store.tickets()
        #expect(tickets.count == 25 && Set(tickets.map(\.subject)).count == 25)
        // Name-based ids of version 8 and the RFC 9562 variant (PROTOCOL.md, intake on tickets).
        #expect(tickets.allSatisfy { Array($0.id)[14] == "8" && "89ab".contains(Array($0.id)[19]) })
        // The same rows in an edited file are another import.
        #expect(try HelpDesk(store: store).importTickets(Data((csv + "One more,low\n").utf8), format: .csv, file: "t.csv", actor: "ops", now: Self.now).created == 26)
    }

    /// SQLite cuts a stored text at U+0000, so a NUL is refused: with its place in a file, and by
    /// every local write (`ticket create`, intake) through the shared check.
    @Test func aNULInAnImportedFieldIsRefusedWithItsPlace() throws {
        #expect {
            _ = try TicketSheet.parse(Data("subject,customer\nA,C\u{0}1\n".utf8), format: .csv, file: "t.csv")
        } throws: { error in
            (error as? StoreError)?.detail.contains("t.csv line 2, column 2 (customer): contains a NUL character") == true
        }
    }

    /// The reader hands out rows as it reads, holding a window and a record, not the file (issue 23:
    /// an import held ~20 times its file); its digest is the file's SHA-256.
    @Test func theReaderStreamsRowsAndTakesTheFilesDigest() throws {
        var csv = "subject,first message\n"
        for index in 1...10_000 { csv += "Ticket \(index),\"line one\nline, two \(index)\"\n" }
        let data = Data(csv.utf8)
        let reader = TicketSheet.Reader(format: .csv, file: "t.csv", source: TicketSheet.Reader.source(data))
        let first = try #require(try reader.next())
        #expect(first.line == 2 && first.draft.firstMessage == "line one\nline, two 1")
        #expect(reader.bytesRead < data.count / 2 && reader.digest == nil)
        var last = first
        var count = 1
        while let row = try reader.next() { (last, count) = (row, count + 1) }
        #expect(count == 10_000 && last.line == 2 + 2 * 9_999 && last.draft.subject == "Ticket 10000")
        let other = TicketSheet.Reader(format: .csv, file: "t.csv", source: TicketSheet.Reader.source(data + Data("One more,\n".utf8)))
        while try other.next() != nil {}
        #expect(reader.digest?.count == 32 && other.digest?.count == 32 && reader.digest != other.digest)
        #expect(try TicketSheet.parse(data, format: .csv, file: "t.csv").map(\.line) == (0..<10_000).map { 2 + 2 * $0 })
    }

    /// The file is read twice; one that changes between the reads is refused, not imported under
    /// the first read's ids.
    @Test func aFileChangedBetweenTheCheckAndTheWritesIsRefused() throws {
        let path = NSTemporaryDirectory() + "tl-import-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("subject\nA\nB\n".utf8).write(to: URL(fileURLWithPath: path))
        let store = try memoryStore("hub", role: .coordinator)
        let error = try refusal {
            _ = try HelpDesk(store: store).importTickets(from: path, format: .csv, actor: "ops", now: Self.now) { _, _ in } checking: { _, _ in
                try? Data("subject\nA\nB\nC\n".utf8).write(to: URL(fileURLWithPath: path))
            }
        }
        #expect(error.message.contains("changed during the import"))
        #expect(try store.tickets().isEmpty, "rows read after the check are not written")
        // A row edited (not added) between the passes: its batch is refused before it is written.
        try Data("subject\nA\nB\n".utf8).write(to: URL(fileURLWithPath: path))
        let edited = try refusal {
            _ = try HelpDesk(store: store).importTickets(from: path, format: .csv, actor: "ops", now: Self.now) { _, _ in } checking: { _, _ in
                try? Data("subject\nA\nX\n".utf8).write(to: URL(fileURLWithPath: path))
            }
        }
        #expect(edited.message.contains("changed during the import, at line 2"))
        #expect(try store.tickets().isEmpty)
        let folder = try refusal { _ = try HelpDesk(store: store).importTickets(from: NSTemporaryDirectory(), format: .csv, actor: "ops", now: Self.now) }
        #expect(folder.message.contains("it is a folder"))
    }
}
