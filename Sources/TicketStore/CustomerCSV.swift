import Foundation

/// Reads a CRM export: RFC 4180 CSV (comma-separated, double-quoted fields with `""` for a quote,
/// CRLF or LF line ends), UTF-8, a header row naming the columns.
///
/// Columns (header names are matched without case, spaces, `_` or `-`): `id` (the CRM's customer id),
/// `name`, `email`, `phone`, `organization` (or `company`), `tier`, `value`. Each row needs an id, an
/// email or a phone. Unknown columns are an error, so a misspelt header never drops a field silently.
public enum CustomerCSV {
    nonisolated(unsafe) static let columns: [String: WritableKeyPath<CustomerDraft, String?>] = [
        "id": \.crmID, "customerid": \.crmID, "crmid": \.crmID, "name": \.name, "email": \.email, "phone": \.phone,
        "organization": \.organization, "organisation": \.organization, "company": \.organization, "tier": \.tier, "value": \.value,
    ]

    public static func parse(_ data: Data, file: String) throws -> [CustomerDraft] {
        try sheet(data, file: file).rows.map(\.draft)
    }

    /// A CRM file as read: its customers with the line each starts on, and where the tier column is.
    public struct Sheet: Sendable {
        public var rows: [(line: Int, draft: CustomerDraft)]
        /// The tier column's number (1 is the first), if the file has one.
        public var tierColumn: Int?
    }

    /// The customers of a CRM's CSV export with the line each starts on. A `value` that is not a
    /// number is refused with its line and column: the CRM's figure is what reports sum and sort.
    public static func sheet(_ data: Data, file: String) throws -> Sheet {
        guard var text = String(data: data, encoding: .utf8) else {
            throw StoreError(.invalidInput, "\(file) is not UTF-8 text; export the CSV as UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let rows = try records(text, file: file)
        guard let header = rows.first else { throw StoreError(.invalidInput, "\(file) is empty; it needs a header row (id,name,email,phone,organization,tier,value)") }
        var paths: [WritableKeyPath<CustomerDraft, String?>] = []
        for (index, name) in header.fields.enumerated() {
            let folded = name.lowercased().filter { $0.isLetter || $0.isNumber }
            guard let path = columns[folded] else {
                throw StoreError(.invalidInput, "\(file) line 1, column \(index + 1): unknown column \(name.debugDescription); known: id, name, email, phone, organization, tier, value")
            }
            guard !paths.contains(path) else { throw StoreError(.invalidInput, "\(file) line 1: column \(name.debugDescription) names a field twice") }
            paths.append(path)
        }
        var out: [(line: Int, draft: CustomerDraft)] = []
        for row in rows.dropFirst() {
            if row.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard row.fields.count == paths.count else {
                throw StoreError(.invalidInput, "\(file) line \(row.line): \(row.fields.count) fields, the header has \(paths.count)")
            }
            var draft = CustomerDraft()
            for (path, value) in zip(paths, row.fields) {
                let trimmed = value.trimmingCharacters(in: .whitespaces)
                draft[keyPath: path] = trimmed.isEmpty ? nil : trimmed
            }
            guard draft.key != nil else { throw StoreError(.invalidInput, "\(file) line \(row.line): no id, email or phone; each customer needs one") }
            if let value = draft.value, !isNumber(value) {
                let column = paths.firstIndex(of: \.value).map { $0 + 1 } ?? 0
                throw StoreError(.invalidInput, "\(file) line \(row.line), column \(column) (value): \(value.debugDescription) is not a number; give the customer's value as a number (e.g. 12500 or 12500.50), or leave it empty; nothing was imported")
            }
            out.append((row.line, draft))
        }
        return Sheet(rows: out, tierColumn: paths.firstIndex(of: \.tier).map { $0 + 1 })
    }

    /// A plain decimal number (`12500`, `-3`, `0.5`): no thousands separators, units or exponents.
    /// Read byte by byte: a regular expression compiled per row cost more than the rest of the row.
    static func isNumber(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        let whole = bytes.prefix(while: isDigit)
        bytes = bytes.dropFirst(whole.count)
        var fraction = 0
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            fraction = bytes.prefix(while: isDigit).count
            bytes = bytes.dropFirst(fraction)
        }
        return bytes.isEmpty && (whole.count > 0 || fraction > 0)
    }

    /// The records of `text` with the line each starts on: RFC 4180 fields, as the CRM reader takes
    /// them (the agent directory's import reads its file with it too).
    /// - Parameter firstLine: the line `text` starts on in its file (a reader fed a record at a time).
    public static func records(_ text: String, file: String, firstLine: Int = 1) throws -> [(line: Int, fields: [String])] {
        var out: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var quoted = false, wasQuoted = false
        var line = firstLine, start = firstLine
        var chars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return chars.next()
        }
        func endRecord() {
            fields.append(field)
            out.append((start, fields))
            fields = []
            field = ""
            wasQuoted = false
        }
        var sawAny = false
        while let c = next() {
            sawAny = true
            if quoted {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = n }
                    } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                guard field.isEmpty && !wasQuoted else {
                    throw StoreError(.invalidInput, "\(file) line \(line): a quote inside an unquoted field; quote the whole field and double the quote (\"\")")
                }
                quoted = true
                wasQuoted = true
            case ",":
                fields.append(field)
                field = ""
                wasQuoted = false
            case "\r":
                continue
            case "\n":
                endRecord()
                line += 1
                start = line
            default:
                guard !wasQuoted else { throw StoreError(.invalidInput, "\(file) line \(line): text after a closing quote") }
                field.unicodeScalars.append(c)
            }
        }
        if quoted { throw StoreError(.invalidInput, "\(file) line \(start): a quoted field never ends; close its quote") }
        if sawAny && !(fields.isEmpty && field.isEmpty && !wasQuoted) { endRecord() }
        return out
    }
}
