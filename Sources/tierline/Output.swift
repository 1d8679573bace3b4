import Escalation
import Foundation
import TicketModel
import TicketStore

/// Prints `value` as one JSON document: sorted keys, ISO-8601 dates.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Left-aligned columns, widths from the content, a header line. Long cells are cut with an ellipsis.
func printTable(_ header: [String], _ rows: [[String]], maxWidth: Int = 48) {
    let cut = rows.map { $0.map { $0.count > maxWidth ? String($0.prefix(maxWidth - 1)) + "…" : $0 } }
    var widths = header.map(\.count)
    for row in cut { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: $0) }))
    for row in cut { print(line(row)) }
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
    for (key, value) in pairs { print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
}

/// The SLA clocks, ladder cycles and escalation history of `ticket show`.
func printSLA(_ sla: SLAReport) {
    print("")
    guard let policy = sla.policy else {
        print("SLA: no policy applied")
        return
    }
    print("SLA policy \(policy), calendar \(sla.calendar ?? "—")" + (sla.ladder.map { ", ladder \($0)" } ?? ""))
    if !sla.clocks.isEmpty {
        printTable(["CLOCK", "STATE", "TARGET", "ELAPSED", "REMAINING", "DEADLINE"], sla.clocks.map { c in
            [c.clock + (c.cycle > 1 ? " #\(c.cycle)" : ""), c.state + (c.businessHours ? "" : " (24x7)"), c.target, DurationText.render(c.elapsedMillis),
             c.remainingMillis.map { $0 < 0 ? "over by " + DurationText.render(-$0) : DurationText.render($0) } ?? "—", c.deadline ?? "—"]
        })
    }
    print("")
    print("escalation  cycle \(sla.escalationCycle), level \(sla.escalationLevel)")
    for c in sla.cycles {
        let state = c.ended ?? (c.nextAt.map { "next: level \(c.nextLevel ?? 0) at \($0)" } ?? "running")
        print("  cycle \(c.cycle) ladder \(c.ladder) (\(c.reason ?? "")): last level \(c.level.map(String.init) ?? "—"); \(state)")
    }
    for h in sla.pendingHandoffs { print("  pending handoff: \(h.text)") }
    if !sla.history.isEmpty {
        printTable(["WHEN", "SITE", "RECORD"], sla.history.map { [$0.at, $0.site ?? "", $0.text] }, maxWidth: 140)
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
