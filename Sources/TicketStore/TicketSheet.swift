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
        guard var text = String(data: data, encoding: .utf8) else {
            throw StoreError(.invalidInput, "\(file) is not UTF-8 text; save it as UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let rows = switch format {
        case .csv: try csvRows(text, file: file)
        case .jsonl: try jsonRows(text, file: file)
        }
        guard !rows.isEmpty else { throw StoreError(.invalidInput, "\(file) holds no tickets; nothing was imported") }
        return rows
    }

    static func fieldName(csvHeader header: String) -> String? {
        let folded = header.lowercased().filter { $0.isLetter || $0.isNumber }
        for (name, others) in names where ([name] + others).contains(where: { $0.lowercased().filter { $0.isLetter || $0.isNumber } == folded }) {
            return name
        }
        return nil
    }

    static func csvRows(_ text: String, file: String) throws -> [Row] {
        let records = try CustomerCSV.records(text, file: file)
        guard let header = records.first else { throw StoreError(.invalidInput, "\(file) is empty; it needs a header row (subject,priority,customer,…)") }
        var fields: [String] = []
        for (index, name) in header.fields.enumerated() {
            guard let field = fieldName(csvHeader: name) else {
                throw StoreError(.invalidInput, "\(file) line 1, column \(index + 1): unknown column \(name.debugDescription); known: \(names.keys.sorted().joined(separator: ", "))")
            }
            guard !fields.contains(field) else { throw StoreError(.invalidInput, "\(file) line 1, column \(index + 1): column \(name.debugDescription) names \(field) a second time") }
            fields.append(field)
        }
        guard fields.contains("subject") else { throw StoreError(.invalidInput, "\(file) line 1: no subject column; every ticket needs a subject") }
        var rows: [Row] = []
        for record in records.dropFirst() {
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard record.fields.count == fields.count else {
                throw StoreError(.invalidInput, "\(file) line \(record.line): \(record.fields.count) fields, the header has \(fields.count)")
            }
            var values: [String: (value: Value, column: Int)] = [:]
            for (index, (field, value)) in zip(fields, record.fields).enumerated() {
                values[field] = (field == "tags" ? .list(splitTags(value)) : .text(value), index + 1)
            }
            rows.append(try row(line: record.line, values, file: file))
        }
        return rows
    }

    static func jsonRows(_ text: String, file: String) throws -> [Row] {
        var rows: [Row] = []
        var known: [String: String] = [:]
        for (name, others) in names { for spelling in [name] + others { known[spelling] = name } }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let content = line.hasSuffix("\r") ? line.dropLast() : line[...]
            if content.allSatisfy(\.isWhitespace) { continue }
            let node: StrictJSON.Node
            do { node = try StrictJSON.parse(Array(content.utf8)) } catch {
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
            rows.append(try row(line: number, values, file: file))
        }
        return rows
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
