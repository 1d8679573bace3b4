import Crypto
import Foundation
import StrictJSON
import TicketModel

/// Tickets to open from a file (`tierline ticket import`): CSV with a header row, or JSON lines (one
/// object per line).
///
/// Fields, by their JSON names (CSV headers are matched without case, spaces, `_` or `-`; the
/// second names are also taken): `subject` (required), `priority` (low, normal, high, urgent;
/// normal when empty), `customer`, `channel`, `group`, `assignee`, `tags` (a JSON array, or one text
/// with tags separated by `;`), `category`, `customerTier` (`tier`), `firstMessage` (`message`,
/// `body`). An empty value leaves a field unset. Unknown columns or members are refused, so a
/// misspelt one never drops a field silently.
public enum TicketSheet {
    public enum Format: String, Sendable, CaseIterable {
        case csv, jsonl
    }

    /// One ticket of the file, with where it and each of its fields stand.
    public struct Row: Sendable {
        /// The line the row starts on (1 is the first line of the file).
        public var line: Int
        public var draft: TicketDraft
        /// The column each field was read from, by JSON name (CSV: the column's number; JSON lines:
        /// the column its value starts at).
        public var columns: [String: Int]

        /// Where `field` of this row stands, as an error message names it: `line 3, column 2 (tier)`.
        public func place(_ field: String?) -> String {
            guard let field, let column = columns[field] else { return "line \(line)" }
            return "line \(line), column \(column) (\(field))"
        }
    }

    /// The fields by JSON name, with the other names a CSV header or a JSON member may use.
    static let names: [String: [String]] = [
        "subject": [], "priority": [], "customer": [], "channel": [], "group": [], "assignee": [], "tags": ["tag"],
        "category": [], "customerTier": ["tier", "customer_tier"], "firstMessage": ["message", "body", "first_message"],
    ]

    /// The format a file's name implies: `.csv`, or `.jsonl`/`.ndjson`; `nil` for any other.
    public static func format(forFile file: String) -> Format? {
        switch (file as NSString).pathExtension.lowercased() {
        case "csv": .csv
        case "jsonl", "ndjson": .jsonl
        default: nil
        }
    }

    /// The rows of a file, checked as far as the file alone allows (a subject on every row, a known
    /// priority, texts within their limits, tags as texts). Every refusal names the line and, where
    /// one is at fault, the column.
    /// - Throws: ``StoreError`` `.invalidInput`; nothing is written by this function.
    public static func parse(_ data: Data, format: Format, file: String) throws -> [Row] {
        let reader = Reader(format: format, file: file, source: Reader.source(data))
        var rows: [Row] = []
        while let row = try reader.next() { rows.append(row) }
        guard !rows.isEmpty else { throw StoreError(.invalidInput, "\(file) holds no tickets; nothing was imported") }
        return rows
    }

    /// Reads a file's rows one at a time, holding one record and a window of the file (`ticket
    /// import` reads a file twice this way, so its memory does not grow with the file), and takes the
    /// file's SHA-256 as it goes.
    ///
    /// ```swift
    /// let reader = TicketSheet.Reader(format: .csv, file: "t.csv", source: TicketSheet.Reader.source(data))
    /// while let row = try reader.next() { print(row.line, row.draft.subject) }
    /// print(reader.digest!)
    /// ```
    public final class Reader {
        /// The longest record taken (a first message of the largest size, escaped, fits many times).
        public static let maxRecordBytes = 8 << 20
        static let window = 1 << 16
        let format: Format
        let file: String
        let source: () throws -> [UInt8]
        var buffer: [UInt8] = []
        var start = 0
        var sourceEnded = false
        var hasher = SHA256()
        /// The next line's number.
        var line = 1
        var fields: [String]?
        var known: [String: String] = [:]
        /// Bytes read from the file so far.
        public private(set) var bytesRead = 0
        /// The file's SHA-256, once ``next()`` has returned `nil`.
        public private(set) var digest: [UInt8]?

        /// - Parameter source: returns the file's next bytes, empty at its end.
        public init(format: Format, file: String, source: @escaping () throws -> [UInt8]) {
            (self.format, self.file, self.source) = (format, file, source)
            for (name, others) in names { for spelling in [name] + others { known[spelling] = name } }
        }

        /// A source handing out `data` a window at a time.
        public static func source(_ data: Data) -> () throws -> [UInt8] {
            var offset = 0
            return {
                let end = min(data.count, offset + window)
                defer { offset = end }
                return [UInt8](data[data.startIndex + offset..<data.startIndex + end])
            }
        }

        /// The next row, or `nil` after the last one.
        /// - Throws: ``StoreError`` `.invalidInput` naming the line and, where one is at fault, the column.
        public func next() throws -> Row? {
            while let (number, text) = try nextRecord() {
                switch format {
                case .jsonl:
                    if text.allSatisfy(\.isWhitespace) { continue }
                    return try jsonRow(text, line: number, known: known, file: file)
                case .csv:
                    for record in try CustomerCSV.records(text, file: file, firstLine: number) {
                        guard let fields else {
                            fields = try csvHeader(record.fields, file: file)
                            continue
                        }
                        if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
                        return try csvRow(record, fields: fields, file: file)
                    }
                }
            }
            if format == .csv, fields == nil {
                throw StoreError(.invalidInput, "\(file) is empty; it needs a header row (subject,priority,customer,…)")
            }
            return nil
        }

        /// The next record's first line and text: a line, or for CSV as many lines as a quoted field
        /// spans (a record ends at a line end outside quotes, where its quotes so far are even).
        func nextRecord() throws -> (Int, String)? {
            let first = line
            var record: [UInt8] = []
            var quotes = 0
            while let part = try nextLine() {
                line += 1
                record += part
                if format == .csv { quotes += part.reduce(0) { $0 + ($1 == 0x22 ? 1 : 0) } }
                guard record.count <= Self.maxRecordBytes else {
                    throw StoreError(.invalidInput, "\(file) line \(first): a record of over \(Self.maxRecordBytes >> 20) MiB; a ticket's fields are far smaller (is a quote left open?)")
                }
                if quotes % 2 == 0 { break }
            }
            if record.isEmpty { return nil }
            if first == 1, record.starts(with: [0xEF, 0xBB, 0xBF]) { record.removeFirst(3) }
            guard let text = String(validating: record, as: UTF8.self) else {
                throw StoreError(.invalidInput, "\(file) line \(first) is not UTF-8 text; save the file as UTF-8")
            }
            return (first, text)
        }

        /// The next line with its line end, or `nil` at the end of the file.
        func nextLine() throws -> ArraySlice<UInt8>? {
            while true {
                if let end = buffer[start...].firstIndex(of: 0x0A) {
                    defer { start = end + 1 }
                    return buffer[start...end]
                }
                if sourceEnded {
                    guard start < buffer.count else {
                        if digest == nil { digest = Array(hasher.finalize()) }
                        return nil
                    }
                    defer { start = buffer.count }
                    return buffer[start...]
                }
                if buffer.count - start > Self.maxRecordBytes {
                    throw StoreError(.invalidInput, "\(file) line \(line): a line of over \(Self.maxRecordBytes >> 20) MiB; a ticket's fields are far smaller")
                }
                buffer.removeFirst(start)
                start = 0
                let bytes = try source()
                if bytes.isEmpty { sourceEnded = true } else {
                    hasher.update(data: bytes)
                    bytesRead += bytes.count
                    buffer += bytes
                }
            }
        }
    }

    static func fieldName(csvHeader header: String) -> String? {
        let folded = header.lowercased().filter { $0.isLetter || $0.isNumber }
        for (name, others) in names where ([name] + others).contains(where: { $0.lowercased().filter { $0.isLetter || $0.isNumber } == folded }) {
            return name
        }
        return nil
    }

    static func csvHeader(_ header: [String], file: String) throws -> [String] {
        var fields: [String] = []
        for (index, name) in header.enumerated() {
            guard let field = fieldName(csvHeader: name) else {
                throw StoreError(.invalidInput, "\(file) line 1, column \(index + 1): unknown column \(name.debugDescription); known: \(names.keys.sorted().joined(separator: ", "))")
            }
            guard !fields.contains(field) else { throw StoreError(.invalidInput, "\(file) line 1, column \(index + 1): column \(name.debugDescription) names \(field) a second time") }
            fields.append(field)
        }
        guard fields.contains("subject") else { throw StoreError(.invalidInput, "\(file) line 1: no subject column; every ticket needs a subject") }
        return fields
    }

    static func csvRow(_ record: (line: Int, fields: [String]), fields: [String], file: String) throws -> Row {
        guard record.fields.count == fields.count else {
            throw StoreError(.invalidInput, "\(file) line \(record.line): \(record.fields.count) fields, the header has \(fields.count)")
        }
        var values: [String: (value: Value, column: Int)] = [:]
        for (index, (field, value)) in zip(fields, record.fields).enumerated() {
            values[field] = (field == "tags" ? .list(splitTags(value)) : .text(value), index + 1)
        }
        return try row(line: record.line, values, file: file)
    }

    static func jsonRow(_ line: String, line number: Int, known: [String: String], file: String) throws -> Row {
        var content = Array(line.utf8)
        while let last = content.last, last == 0x0A || last == 0x0D { content.removeLast() }
        let node: StrictJSON.Node
        do { node = try StrictJSON.parse(content) } catch {
            throw StoreError(.invalidInput, "\(file) line \(number), column \(error.position.column): \(error.message); each line must be one JSON object")
        }
        guard case .object(let members) = node.value else {
            throw StoreError(.invalidInput, "\(file) line \(number): not a JSON object; each line must be one object such as {\"subject\": \"…\"}")
        }
        var values: [String: (value: Value, column: Int)] = [:]
        for member in members {
            let column = member.value.position.column
            guard let field = known[member.name] else {
                let near = StrictJSON.nearest(member.name, in: Set(known.keys)).map { "; did you mean \"\($0)\"?" } ?? ""
                throw StoreError(.invalidInput, "\(file) line \(number), column \(column): unknown member \"\(StrictJSON.printable(member.name))\"\(near); known: \(names.keys.sorted().joined(separator: ", "))")
            }
            guard values[field] == nil else {
                throw StoreError(.invalidInput, "\(file) line \(number), column \(column): \(field) is given twice (as \"\(StrictJSON.printable(member.name))\")")
            }
            switch member.value.value {
            case .string(let text): values[field] = (field == "tags" ? .list(splitTags(text)) : .text(text), column)
            case .null: values[field] = (.text(""), column)
            case .array(let items) where field == "tags":
                var tags: [String] = []
                for item in items {
                    guard case .string(let tag) = item.value else {
                        throw StoreError(.invalidInput, "\(file) line \(number), column \(item.position.column) (tags): each tag must be a JSON string")
                    }
                    tags.append(tag)
                }
                values[field] = (.list(tags), column)
            default:
                throw StoreError(.invalidInput, "\(file) line \(number), column \(column) (\(field)): must be a JSON string\(field == "tags" ? " or an array of strings" : "")")
            }
        }
        return try row(line: number, values, file: file)
    }

    enum Value {
        case text(String)
        case list([String])
    }

    static func splitTags(_ text: String) -> [String] {
        text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// A row's draft from its values, with the checks the file alone allows.
    static func row(line: Int, _ values: [String: (value: Value, column: Int)], file: String) throws -> Row {
        func text(_ field: String) -> String? {
            guard case .text(let raw)? = values[field]?.value else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : (field == "firstMessage" ? raw : trimmed)
        }
        var row = Row(line: line, draft: TicketDraft(subject: ""), columns: values.mapValues(\.column))
        func refuse(_ field: String?, _ message: String) -> StoreError {
            StoreError(.invalidInput, "\(file) \(row.place(field)): \(message); nothing was imported")
        }
        guard let subject = text("subject") else { throw refuse("subject", "no subject; every ticket needs one") }
        row.draft.subject = subject
        if let priority = text("priority") {
            guard let value = Priority(rawValue: priority.lowercased()) else {
                throw refuse("priority", "\(priority.debugDescription) is not a priority (low, normal, high, urgent)")
            }
            row.draft.priority = value
        }
        row.draft.customer = text("customer")
        row.draft.channel = text("channel")
        row.draft.group = text("group")
        row.draft.assignee = text("assignee")
        row.draft.category = text("category")
        row.draft.customerTier = text("customerTier")
        row.draft.firstMessage = text("firstMessage")
        if case .list(let tags)? = values["tags"]?.value { row.draft.tags = tags }
        let limits: [(String, String?, Int)] = [("subject", subject, BlockLimits.maxTextBytes), ("customer", row.draft.customer, BlockLimits.maxTextBytes),
                                                ("channel", row.draft.channel, BlockLimits.maxTextBytes), ("group", row.draft.group, BlockLimits.maxTextBytes),
                                                ("assignee", row.draft.assignee, BlockLimits.maxTextBytes), ("category", row.draft.category, BlockLimits.maxTextBytes),
                                                ("customerTier", row.draft.customerTier, BlockLimits.maxTextBytes),
                                                ("firstMessage", row.draft.firstMessage, BlockLimits.maxBodyBytes)]
        for case let (field, value?, limit) in limits where value.utf8.count > limit {
            throw refuse(field, "\(value.utf8.count) bytes; the limit is \(limit)")
        }
        for case let (field, value?, _) in limits + [("tags", row.draft.tags.joined(), 0)] where value.utf8.contains(0) {
            throw refuse(field, "contains a NUL character (U+0000); remove it")
        }
        for tag in row.draft.tags where tag.utf8.count > BlockLimits.maxNameBytes {
            throw refuse("tags", "a tag of \(tag.utf8.count) bytes; the limit is \(BlockLimits.maxNameBytes)")
        }
        return row
    }
}
