import Crypto
import Escalation
import Foundation
import TicketModel
import TicketStore

/// What `ticket import` did.
public struct TicketImportReport: Sendable, Equatable, Encodable {
    /// Rows read from the file: each opened one ticket now (`created`) or on an earlier run of the
    /// same file (`alreadyImported`).
    public var rows = 0
    public var created = 0
    public var alreadyImported = 0
    /// Signed blocks written, and the transactions they were written in.
    public var blocks = 0
    public var transactions = 0
    /// The display numbers of the first and the last ticket opened.
    public var firstNumber: String?
    public var lastNumber: String?
    /// Tickets opened by priority.
    public var byPriority: [String: Int] = [:]
    public init() {}
}

extension HelpDesk {
    /// Opens a ticket for each row of a CSV or JSON-lines file (``TicketSheet``), in transactions of
    /// `batchSize` tickets, each with its SLA policy pinned as ``open(_:now:allowUnknown:)`` pins it.
    ///
    /// The file is read twice, a row at a time. Every row is checked first, as `open` checks a draft (texts and their limits, a known channel
    /// and customer tier, assignee and group in the agent directory once one is published, unless
    /// `allowUnknown`): one bad row refuses the whole file, naming its line and column, and nothing is
    /// written. Imported tickets are written as local writes, in batches (``TicketDatabase/batch(_:)``);
    /// they put no notices in the outbox (an assignee is not told of each imported ticket). A crash
    /// between two transactions keeps the tickets of those before it.
    ///
    /// A re-run of the same file resumes: each row's ticket id is a ``NameUUID`` of this site, the
    /// file's SHA-256 and the row's line, and a row whose ticket is stored already is skipped and
    /// counted as `alreadyImported`. A failure in a transaction throws a message that says how many
    /// rows are stored and to run the same file again.
    /// - Parameter progress: tickets opened so far and the file's total, after each transaction.
    /// - Parameter checking: rows checked so far and the bytes of the file read, during the check.
    public func importTickets(_ data: Data, format: TicketSheet.Format, file: String, actor: String, now: Int64,
                              allowUnknown: Bool = false, batchSize: Int = 1_000,
                              progress: (_ done: Int, _ total: Int) -> Void = { _, _ in },
                              checking: (_ rows: Int, _ bytes: Int) -> Void = { _, _ in }) throws -> TicketImportReport {
        try importTickets(format: format, file: file, actor: actor, now: now, allowUnknown: allowUnknown, batchSize: batchSize,
                          checking: checking, progress: progress) { TicketSheet.Reader.source(data) }
    }

    /// Imports the file at `path` (see ``importTickets(_:format:file:actor:now:allowUnknown:batchSize:progress:checking:)``),
    /// reading it twice, a window at a time: memory holds a batch of rows, not the file.
    public func importTickets(from path: String, format: TicketSheet.Format, actor: String, now: Int64,
                              allowUnknown: Bool = false, batchSize: Int = 1_000,
                              progress: (_ done: Int, _ total: Int) -> Void = { _, _ in },
                              checking: (_ rows: Int, _ bytes: Int) -> Void = { _, _ in }) throws -> TicketImportReport {
        try importTickets(format: format, file: path, actor: actor, now: now, allowUnknown: allowUnknown, batchSize: batchSize,
                          checking: checking, progress: progress) {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
                  let handle = FileHandle(forReadingAtPath: path) else {
                throw DeskError(.invalidInput, "cannot read \(path)\(isFolder.boolValue ? ": it is a folder; give the CSV or JSON-lines file" : "; check the path and its permissions")")
            }
            return { try handle.read(upToCount: 1 << 16).map { [UInt8]($0) } ?? [] }
        }
    }

    func importTickets(format: TicketSheet.Format, file: String, actor: String, now: Int64, allowUnknown: Bool, batchSize: Int,
                       checking: (Int, Int) -> Void, progress: (Int, Int) -> Void,
                       open: () throws -> (() throws -> [UInt8])) throws -> TicketImportReport {
        try DeskError.translating {
            let library = try escalation.library()
            let directory = DirectoryCheck(AgentDirectory(library: library))
            // The check pass: every row, before anything is written.
            let check = TicketSheet.Reader(format: format, file: file, source: try open())
            // Rows naming the same channel, tier, assignee and group pass or fail alike: checked once.
            var passed = Set<[String?]>()
            var total = 0
            let size = max(1, batchSize)
            // A fingerprint of each batch's rows as checked: the write pass writes a batch only if it
            // reads the same rows, so a file edited between the passes never writes an unchecked row.
            var fingerprints: [[UInt8]] = []
            var hasher = SHA256()
            while let row = try check.next() {
                Self.fingerprint(row, into: &hasher)
                var draft = row.draft
                draft.actor = actor
                let key = [draft.channel, draft.customerTier, draft.assignee, draft.group]
                do {
                    try store.check(draft)
                    if passed.insert(key).inserted { try checkOpening(draft, library: library, directory: directory, allowUnknown: allowUnknown) }
                } catch let error as DeskError {
                    // The file is the input at fault; the row's place names the field.
                    throw DeskError(error.code, "\(file) \(row.place(error.field)): \(error.message) Nothing was imported.")
                } catch let error as StoreError {
                    throw DeskError(.invalidInput, "\(file) \(row.place(nil)): \(error.detail); nothing was imported")
                }
                total += 1
                if total % size == 0 {
                    fingerprints.append(Array(hasher.finalize()))
                    hasher = SHA256()
                }
                if total % 1_000 == 0 { checking(total, check.bytesRead) }
            }
            if total % size != 0 { fingerprints.append(Array(hasher.finalize())) }
            guard total > 0, let digest = check.digest else { throw StoreError(.invalidInput, "\(file) holds no tickets; nothing was imported") }
            checking(total, check.bytesRead)
            let follow = library.isEmpty ? nil : escalation.policy(library, now: now)
            var report = TicketImportReport()
            var first: UUID?, last: UUID?
            // The write pass reads the file again, a batch of rows at a time.
            let rows = TicketSheet.Reader(format: format, file: file, source: try open())
            var part: [TicketSheet.Row] = []
            repeat {
                part.removeAll(keepingCapacity: true)
                while part.count < size, let row = try rows.next() { part.append(row) }
                if part.isEmpty { break }
                var read = SHA256()
                for row in part { Self.fingerprint(row, into: &read) }
                let batchIndex = report.rows / size
                guard batchIndex < fingerprints.count, Array(read.finalize()) == fingerprints[batchIndex] else {
                    throw DeskError(.invalidInput, "\(file) changed during the import, at line \(part[0].line): the \(report.rows) row(s) before it are stored (\(report.created) opened now); import a file nothing is writing to")
                }
                var made: [UUID] = []
                var madePriorities: [String: Int] = [:]
                var skipped = 0
                let summary: LocalBatch.Summary
                do {
                    summary = try store.batch { batch in
                        // An import's tickets are not written again soon: keeping their states
                        // would hold up to the whole bound of memory for nothing.
                        batch.keepNoStates()
                        for row in part {
                            let id = Self.importID(site: batch.site, digest: digest, line: row.line)
                            if try batch.contains(id) { skipped += 1; continue }
                            var draft = row.draft
                            draft.actor = actor
                            try batch.create(draft, id: id, attributed: true)
                            if let follow { batch.follow(id, with: follow) }
                            made.append(id)
                            madePriorities[row.draft.priority.rawValue, default: 0] += 1
                        }
                    }
                } catch {
                    let cause = (error as? StoreError)?.detail ?? (error as? DeskError)?.message ?? "\(error)"
                    throw DeskError((error as? StoreError).map { DeskError($0).code } ?? .storeRefused,
                                    "\(file) line \(part[0].line): the import stopped: \(cause). The \(report.rows) row(s) before that line are stored (\(report.created) opened now, \(report.alreadyImported) before); fix the cause and run the same command on the unchanged file: rows already imported are skipped")
                }
                first = first ?? made.first
                last = made.last ?? last
                report.byPriority.merge(madePriorities, uniquingKeysWith: +)
                report.rows += part.count
                report.created += made.count
                report.alreadyImported += skipped
                report.blocks += summary.blocks
                report.transactions += made.isEmpty ? 0 : 1
                progress(report.rows, total)
            } while part.count == size
            if report.rows != total || rows.digest != digest {
                throw DeskError(.invalidInput, "\(file) changed during the import (\(report.created) ticket(s) opened from it); import a file nothing is writing to")
            }
            report.firstNumber = try first.map { try store.ticket($0.lowercaseText).displayNumber }
            report.lastNumber = try last.map { try store.ticket($0.lowercaseText).displayNumber }
            return report
        }
    }

    /// Adds a checked row to a batch's fingerprint: its line and every value of its draft.
    static func fingerprint(_ row: TicketSheet.Row, into hasher: inout SHA256) {
        hasher.update(data: Array("\(row.line)\u{0}\(String(reflecting: row.draft))\u{0}".utf8))
    }

    /// The id `ticket import` gives the ticket of a file's row: a ``NameUUID`` of the site, the
    /// file's SHA-256 and the row's line, so a re-run of the same file finds what it wrote.
    static func importID(site: SiteID, digest: [UInt8], line: Int) -> UUID {
        var name = Array("tierline ticket import\u{0}\(site.rawValue)\u{0}".utf8) + digest
        withUnsafeBytes(of: UInt64(line).bigEndian) { name.append(contentsOf: $0) }
        return NameUUID.make(name)
    }
}
