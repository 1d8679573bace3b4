import ArgumentParser
import Escalation
import Foundation
import TicketModel
import TicketStore

/// Writes a line to stdout, as the standard library's `print` does, with every control character
/// shown escaped (``TerminalText/visible(_:keepingLineBreaks:)``; line breaks stay).
///
/// It shadows `Swift.print` in this module, so every text printer of the CLI goes through it: a
/// subject, a customer's name or a message that intake or a peer wrote can never reach the
/// operator's terminal as an escape sequence (an OSC 52 would write to the clipboard, others move the
/// cursor or recolour the screen). JSON output passes unchanged: the encoder escapes every control
/// character in a string already.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(TerminalText.visible(items.map { "\($0)" }.joined(separator: separator), keepingLineBreaks: true), terminator: terminator)
}

/// Prints `value` as one JSON document: sorted keys, ISO-8601 dates. Every control character is
/// escaped as JSON escapes it (`\u001b`): the encoder does so for C0, and DEL and C1 (which JSON
/// lets pass raw, and a terminal may read as CSI) are escaped here, so the text is exact and inert.
func printJSON(_ value: some Encodable) throws {
    Swift.print(try jsonText(value))
}

/// The text ``printJSON(_:)`` prints for `value`.
func jsonText(_ value: some Encodable, encoder: JSONEncoder = .cli) throws -> String {
    let json = String(decoding: try encoder.encode(value), as: UTF8.self)
    guard json.unicodeScalars.contains(where: { $0.value >= 0x7F && TerminalText.isControl($0) }) else { return json }
    var out = ""
    for scalar in json.unicodeScalars {
        // Outside strings a JSON document holds only printable ASCII, spaces and line breaks.
        if scalar.value >= 0x7F, TerminalText.isControl(scalar) {
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

extension JSONEncoder {
    /// The CLI's encoder: sorted keys, indented, ISO-8601 dates.
    static var cli: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

/// Prints a JSON array as its elements come, byte for byte as ``printJSON(_:)`` prints the whole
/// array, holding at most a chunk of them: call ``add(_:)`` per element, then ``finish()``.
struct JSONArrayPrinter<Element: Encodable> {
    private let encoder = JSONEncoder.cli
    private let chunkSize: Int
    private var chunk: [Element] = []
    private var isEmpty = true

    init(chunkSize: Int = 256) {
        self.chunkSize = chunkSize
        chunk.reserveCapacity(chunkSize)
    }

    mutating func add(_ element: Element) throws {
        chunk.append(element)
        if chunk.count == chunkSize { try flush() }
    }

    /// A chunk encodes as `[\n` + its elements, indented as in any array + `\n]`: the elements are
    /// printed as they are, joined to the previous chunk's by `,\n`.
    private mutating func flush() throws {
        guard !chunk.isEmpty else { return }
        let text = try jsonText(chunk, encoder: encoder)
        Swift.print(isEmpty ? "[\n" : ",\n", text.dropFirst(2).dropLast(2), separator: "", terminator: "")
        (chunk, isEmpty) = ([], false)
        chunk.reserveCapacity(chunkSize)
    }

    mutating func finish() throws {
        try flush()
        Swift.print(isEmpty ? "[\n\n]" : "\n]")
    }
}

/// Left-aligned columns, widths from the content, a header line. No value is ever cut: the last
/// column is printed whole (a narrow terminal wraps it), and a longer cell in any other column is
/// wrapped over continuation lines at `maxWidth` characters, at spaces where it can be. Control
/// characters are shown escaped, so a value cannot move the cursor or recolour the terminal.
func printTable(_ header: [String], _ rows: [[String]], maxWidth: Int = 48) {
    for line in tableLines(header, rows, maxWidth: maxWidth) { print(line) }
}

/// The lines `printTable` prints.
func tableLines(_ header: [String], _ rows: [[String]], maxWidth: Int = 48) -> [String] {
    var layout = TableLayout(header, maxWidth: maxWidth)
    for row in rows { layout.measure(row) }
    return layout.headerLines() + rows.flatMap(layout.lines)
}

/// `printTable` over rows that `rows` hands out twice, in the same order: once to size the columns,
/// once to print, so no row is kept (a listing the store reads twice). With no
/// row, prints `whenEmpty` instead.
func printTable(_ header: [String], maxWidth: Int = 48, whenEmpty: String, rows: (_ each: ([String]) throws -> Void) throws -> Void) throws {
    var layout = TableLayout(header, maxWidth: maxWidth)
    var isEmpty = true
    try rows { layout.measure($0); isEmpty = false }
    if isEmpty { return print(whenEmpty) }
    for line in layout.headerLines() { print(line) }
    try rows { row in for line in layout.lines(row) { print(line) } }
}

/// The widths of a table's columns, from its header and every row measured, and its lines.
struct TableLayout {
    private let header: [String]
    private let maxWidth: Int
    private var widths: [Int]

    init(_ header: [String], maxWidth: Int) {
        (self.header, self.maxWidth, widths) = (header, maxWidth, header.map(\.count))
    }

    /// Each row becomes one or more physical lines: a cell's pieces, top-aligned.
    private func pieces(_ row: [String]) -> [[String]] {
        let last = header.count - 1
        return row.enumerated().map { i, cell in
            let lines = TerminalText.visible(cell, keepingLineBreaks: true).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            return i == last ? lines : lines.flatMap { TerminalText.wrap($0, width: max(maxWidth, 8)) }
        }
    }

    mutating func measure(_ row: [String]) {
        for (i, cell) in pieces(row).enumerated() where i < widths.count { widths[i] = max(widths[i], cell.map(\.count).max() ?? 0) }
    }

    /// A cell wider than its column (a row that changed between the two reads of a streamed table)
    /// is printed whole, out of line, never cut.
    private func line(_ cells: [String]) -> String {
        let text = cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: max(widths[i], cell.count), withPad: " ", startingAt: 0)
        }
            .joined(separator: "  ")
        return String(text.reversed().drop(while: { $0 == " " }).reversed())
    }

    func headerLines() -> [String] { [line(header), line(widths.map { String(repeating: "-", count: $0) })] }

    func lines(_ row: [String]) -> [String] {
        let row = pieces(row)
        let height = row.map(\.count).max() ?? 1
        return (0..<height).map { k in line(row.map { k < $0.count ? $0[k] : "" }) }
    }
}

/// Text bound for a terminal.
enum TerminalText {
    /// `text` with every control character (C0, DEL, C1, bidirectional controls) written as `\u{…}`: a stored value, which a
    /// peer or a customer may have chosen, never reaches the terminal as an escape sequence. A tab
    /// becomes a space; with `keepingLineBreaks`, CR LF and CR become LF, and LF stays.
    static func visible(_ text: String, keepingLineBreaks: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        var scalars = text.unicodeScalars.makeIterator()
        var pending = scalars.next()
        while let scalar = pending {
            pending = scalars.next()
            switch scalar {
            case "\t": out += " "
            case "\r" where keepingLineBreaks:
                out += "\n"
                if pending == "\n" { pending = scalars.next() }
            case "\n" where keepingLineBreaks: out += "\n"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || isBidiControl(scalar)
    }

    /// The marks, embeddings, overrides and isolates that reorder text as a terminal shows it: a
    /// subject holding U+202E reads backwards from there on, so what the operator reads is not what
    /// is stored (CVE-2021-42574, "Trojan Source"). They are shown escaped too.
    static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `text` in lines of at most `width` characters, broken after a space where one falls in the
    /// line, else inside a word. Joining the lines gives back `text`.
    static func wrap(_ text: String, width: Int) -> [String] {
        guard text.count > width else { return [text] }
        var lines: [String] = []
        var rest = Substring(text)
        while rest.count > width {
            let window = rest.prefix(width)
            // Break after the last space in the window, unless that leaves a very short line.
            if let space = window.lastIndex(of: " "), rest.distance(from: rest.startIndex, to: space) >= width / 3 {
                let end = rest.index(after: space)
                lines.append(String(rest[..<end]))
                rest = rest[end...]
            } else {
                lines.append(String(window))
                rest = rest.dropFirst(width)
            }
        }
        if !rest.isEmpty { lines.append(String(rest)) }
        return lines
    }
}

func printTicketSummary(_ t: TicketRecord) {
    let pairs: [(String, String)] = [
        ("ticket", "\(t.displayNumber)  \(t.id)"), ("subject", t.subject), ("status", t.status), ("priority", t.priority),
        ("assignee", t.assignee ?? "—"), ("group", t.group ?? "—"), ("category", t.category ?? "—"),
        ("customer", t.customer ?? "—"), ("channel", t.channel ?? "—"),
        ("tags", t.tags.isEmpty ? "—" : t.tags.joined(separator: ", ")),
        ("owning site", "\(t.owningSite) (epoch \(t.owningEpoch))"), ("origin site", t.originSite),
        ("escalation", "cycle \(t.escalationCycle), level \(t.escalationLevel)"),
        ("merged into", t.mergedInto ?? "—"), ("created", t.createdAt ?? "—"), ("updated", t.updatedAt ?? "—"),
        ("conflicts", String(t.conflictCount)),
    ]
    let width = pairs.map(\.0.count).max() ?? 0
    for (key, value) in pairs { print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + TerminalText.visible(value)) }
}

/// The SLA clocks, ladder cycles and escalation history of `ticket show`.
func printSLA(_ sla: SLAReport) {
    print("")
    // A ticket escalated by hand has a history (and a handoff note to read) without any policy.
    guard let policy = sla.policy else {
        print("SLA: no policy applied")
        if !sla.history.isEmpty { printEscalation(sla) }
        return
    }
    print("SLA policy \(policy), calendar \(sla.calendar ?? "—")" + (sla.ladder.map { ", ladder \($0)" } ?? ""))
    if !sla.clocks.isEmpty {
        printTable(["CLOCK", "STATE", "TARGET", "ELAPSED", "REMAINING", "DEADLINE"], sla.clocks.map { c in
            [c.clock + (c.cycle > 1 ? " #\(c.cycle)" : ""), c.state + (c.businessHours ? "" : " (24x7)"), c.target, DurationText.render(c.elapsedMillis),
             c.remainingMillis.map { $0 < 0 ? "over by " + DurationText.render(-$0) : DurationText.render($0) } ?? "—", c.deadline ?? "—"]
        })
    }
    printEscalation(sla)
}

/// The escalation part of `ticket show`: cycles, pending handoffs and the history, each handoff
/// note whole with each of its parts on a line of its own.
func printEscalation(_ sla: SLAReport) {
    print("")
    print("escalation  cycle \(sla.escalationCycle), level \(sla.escalationLevel)")
    for c in sla.cycles {
        let state = c.ended ?? (c.nextAt.map { "next: level \(c.nextLevel ?? 0) at \($0)" } ?? "running")
        print("  cycle \(c.cycle) ladder \(c.ladder) (\(c.reason ?? "")): last level \(c.level.map(String.init) ?? "—"); \(state)")
    }
    // The request's note is printed whole in the history below.
    for h in sla.pendingHandoffs { print("  pending handoff: \(TerminalText.visible(h.lines[0]))") }
    if !sla.history.isEmpty {
        printTable(["WHEN", "SITE", "BY", "RECORD"], sla.history.map {
            [$0.at, $0.site ?? "", $0.actor ?? "", $0.lines.enumerated().map { $0.offset == 0 ? $0.element : "  " + $0.element }.joined(separator: "\n")]
        })
    }
}

/// The routing, customer, knowledge and satisfaction lines of `ticket show`.
func printIntakeSections(_ detail: TicketDetail) {
    if let routing = detail.routing { print("routed by    \(routing)") }
    if let history = detail.customer {
        let c = history.customer
        let who = [c?.name, c?.organization].compactMap { $0 }.joined(separator: ", ")
        print("customer     \(history.key)" + (who.isEmpty ? "" : " (\(who))") + "  tier \(c?.tier ?? "—")  value \(c?.value ?? "—")"
              + (c == nil ? "  (no customer record; `tierline customer import` adds them)" : ""))
        print("history      \(history.ticketCount) ticket(s), \(history.openCount) open")
        for item in history.recent where item.displayNumber != detail.ticket.displayNumber {
            print("             \(item.displayNumber)  \(item.status)  \(item.channel ?? "—")  \(item.createdAt ?? "")  \(item.subject)")
        }
    }
    for article in detail.articles { print("knowledge    \(article.ref)  \(article.title)") }
    if let csat = detail.csat { print("CSAT         \(csat.score)/5" + (csat.comment.map { "  \"\($0)\"" } ?? "")) }
}

/// A command that lists one kind of the store's records: with `--json` the array of them, otherwise a
/// table with a row for each.
///
/// A conforming command names its records, its columns and a record's cells; opening the store and
/// printing are the same for every list.
protocol StoreListing: ParsableCommand {
    associatedtype Item: Encodable
    var options: StoreOptions { get }
    /// The table's header.
    static var columns: [String] { get }
    /// How wide a column other than the last grows before it wraps (`printTable`'s `maxWidth`).
    static var maxWidth: Int { get }
    /// The records to list, read from the open store.
    func items(in store: TicketDatabase) throws -> [Item]
    /// One record's cells, in the order of ``columns``.
    func row(_ item: Item) -> [String]
}

extension StoreListing {
    static var maxWidth: Int { 48 }

    func run() throws {
        let records = try items(in: options.open())
        if options.json { return try printJSON(records) }
        printTable(Self.columns, records.map(row), maxWidth: Self.maxWidth)
    }
}
