import Foundation
import TicketStore

/// The dashboard page: plain HTML with inline SVG charts, rendered on the server. The filter form is
/// an ordinary GET form, so the page works without script.
public struct DashboardPage {
    var query: DashboardQuery
    var summary: FleetSummary
    var metrics: MetricSet
    var backlog: [SeriesPoint]
    var trend: [SeriesPoint]
    /// This node's outbox: its dead letters are shown when there are any.
    var outbox = OutboxSummary()
    /// The PostgreSQL mirror the node runs, as it last reported it; `nil` for none.
    var mirror: MirrorReport?
    /// Now, ms since 1970: a mirror report older than three heartbeats is from a node that stopped.
    var now: Int64 = 0

    func render() -> String {
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Tierline dashboard\(query.filter.site.map { " · " + escape($0) } ?? "")</title>
            <link rel="stylesheet" href="/static/dashboard.css"></head><body>
            <header><h1>Tierline dashboard</h1>
            <p class="fresh" id="freshness">Generated <time>\(escape(summary.generatedAt))</time> · figures as of
            <time id="as-of">\(escape(summary.asOf ?? "never"))</time> (the oldest last-seen of the sites shown)
            · period \(escape(String(summary.from.prefix(10)))) to \(escape(String(summary.to.prefix(10))))\(summary.pendingFacts > 0 ? " · <strong>\(summary.pendingFacts) ticket(s) still being counted</strong>" : "")</p>
            </header>
            """
        if outbox.dead > 0 {
            html += """
                <p class="bad" id="outbox-dead"><strong>\(outbox.dead) dead \(outbox.dead == 1 ? "delivery" : "deliveries")</strong> in this node's outbox
                (notices and replies that could not be sent): <code>tierline outbox list --state dead</code>, then <code>tierline outbox retry</code></p>
                """
        }
        if let mirror {
            html += "<p class=\"\(mirror.isBehind(at: now) ? "bad" : "fresh")\" id=\"mirror\">\(escape(mirror.text(at: now)))</p>\n"
        }
        html += filterForm()
        html += siteTable()
        html += charts()
        html += metricSections()
        html += """
            <footer><a href="/export.csv?\(escape(query.link()))" id="csv-sites">Sites as CSV</a> ·
            <a href="/export.csv?\(escape(query.link(["table": "metrics"])))" id="csv-metrics">Metrics as CSV</a> ·
            <a href="/api/metrics?\(escape(query.link()))">JSON</a> · <a href="/metrics">Prometheus</a></footer>
            </body></html>
            """
        return html
    }

    /// The page a browser gets for a bad filter: what was wrong, and links back to the dashboard.
    static func badQuery(_ error: DashboardQueryError) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Tierline dashboard · bad filter</title>
        <link rel="stylesheet" href="/static/dashboard.css"></head><body>
        <header><h1>Tierline dashboard</h1></header>
        <p class="bad" id="error" data-parameter="\(escape(error.parameter))">The filter <code>\(escape(error.parameter))</code> cannot be shown: \(escape(error.message)).</p>
        <p><a href="/" id="whole-fleet">Show the whole fleet</a> or use the browser's Back button to correct the filter.</p>
        </body></html>
        """
    }

    /// The page's style sheet, served at `/static/dashboard.css` (the pages' policy allows no inline style).
    public static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#fafbfc}
        h1{font-size:1.4em;margin:0} h2{font-size:1.1em;margin:1.4em 0 .4em}
        .fresh{color:#555;margin:.2em 0 1em} table{border-collapse:collapse;background:#fff}
        th,td{border:1px solid #d6dae0;padding:.3em .6em;text-align:right} th{background:#eef1f5}
        td:first-child,th:first-child{text-align:left} .bad{color:#b42318;font-weight:600} .warn{color:#b54708}
        form{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin-bottom:1em}
        label{display:flex;flex-direction:column;font-size:.85em;color:#444}
        .charts{display:flex;flex-wrap:wrap;gap:1.5em} figure{margin:0;background:#fff;border:1px solid #d6dae0;padding:.5em}
        figcaption{font-weight:600;margin-bottom:.3em} .grid{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
        footer{margin-top:2em;color:#555}
        """

    func filterForm() -> String {
        func field(_ name: String, _ label: String, _ value: String?) -> String {
            "<label>\(label)<input name=\"\(name)\" value=\"\(escape(value ?? ""))\" size=\"10\"></label>"
        }
        var out = "<form method=\"get\" action=\"/\" id=\"filters\">"
        out += "<label>Days<select name=\"days\">"
        for days in Set([1, 7, 30, 90, 365, query.days]).sorted() {
            out += "<option value=\"\(days)\"\(days == query.days ? " selected" : "")>\(days)</option>"
        }
        out += "</select></label>"
        out += field("site", "Site", query.filter.site)
        out += field("tier", "Tier", query.filter.tier.map(String.init))
        out += field("channel", "Channel", query.filter.channel)
        out += "<label>Priority<select name=\"priority\"><option value=\"\">any</option>"
        for p in ["low", "normal", "high", "urgent"] {
            out += "<option\(query.filter.priority == p ? " selected" : "")>\(p)</option>"
        }
        out += "</select></label>"
        out += field("customer_tier", "Customer tier", query.filter.customerTier)
        out += "<button type=\"submit\">Apply</button>"
        if query.filter != MetricFilter() { out += " <a href=\"/?days=\(query.days)\">Whole fleet</a>" }
        out += "</form>"
        return out
    }

    /// A count linked to the workspace's list of the tickets behind it (`view` may carry more parameters).
    func queue(_ view: String, _ site: String, _ count: Int) -> String {
        "<a href=\"/desk?view=\(escape(view))&amp;site=\(escape(site))\">\(count)</a>"
    }

    func siteTable() -> String {
        var out = """
            <h2>Fleet overview by site</h2>
            <table id="sites"><thead><tr><th>Site</th><th>Role</th><th>Backlog</th><th>Created</th><th>Solved</th>
            <th>At risk</th><th>Breached now</th><th>Escalation rate</th><th>SLA attainment</th>
            <th>Last seen</th><th>Lag</th><th>Pending in / out</th><th>Skew</th><th>Quarantined</th><th>Conflicts</th></tr></thead><tbody>
            """
        for site in summary.sites {
            let conflicts = site.conflicts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out += """
                <tr data-site="\(escape(site.site))"><td><a href="/?\(escape(query.link(["site": site.site])))">\(escape(site.site))</a>\(site.isLocal ? " (this node)" : "")\(site.divergedAtSeq.map { " <strong class=\"bad diverged\">two histories from seq \($0)</strong>" } ?? "")\(site.transport == "plain" ? " <strong class=\"bad unprotected\">plain link, unprotected</strong>" : "")</td>
                <td>\(escape(site.role ?? "—"))</td><td class="backlog">\(queue("all&status=unresolved", site.site, site.backlog))</td><td>\(site.created)</td><td>\(site.solved)</td>
                <td\(site.atRiskNow > 0 ? " class=\"warn\"" : "")>\(queue("at_risk", site.site, site.atRiskNow))</td><td class="breached\(site.breachedNow > 0 ? " bad" : "")">\(queue("breached", site.site, site.breachedNow))</td>
                <td>\(percent(site.escalationRate))</td><td>\(percent(site.slaAttainment))</td>
                <td><time>\(escape(site.lastSeen ?? "never"))</time></td><td>\(duration(site.lagMillis))</td>
                <td>\(site.blocksPendingIn) / \(site.blocksPendingOut.map(String.init) ?? "—")</td><td>\(site.skewMillis.map { "\($0) ms" } ?? "—")</td>
                <td\(site.quarantined > 0 ? " class=\"bad\"" : "")>\(site.quarantined)</td><td>\(conflicts.isEmpty ? "0" : "<a href=\"/desk?view=conflicts&amp;site=\(escape(site.site))\">\(escape(conflicts))</a>")</td></tr>
                """
        }
        let t = summary.totals
        out += """
            </tbody><tfoot><tr id="fleet-total"><th>Fleet</th><td></td><td>\(queue("all&status=unresolved", "all", t.backlog))</td><td>\(t.created)</td><td>\(t.solved)</td>
            <td>\(queue("at_risk", "all", t.atRiskNow))</td><td>\(queue("breached", "all", t.breachedNow))</td><td>\(percent(t.escalationRate))</td><td>\(percent(t.slaAttainment))</td>
            <td colspan="6"></td></tr></tfoot></table>
            """
        return out
    }

    func charts() -> String {
        let clocks = [("firstResponse", "first response"), ("nextResponse", "next response"), ("timeToOwn", "time to own"),
                      ("resolution", "resolution")].map { kind, label in (label, metrics.sla.clocks[kind]?.attainment) }
        return """
            <h2>Trends</h2><div class="charts">
            <figure id="chart-backlog"><figcaption>Backlog at the end of each day</figcaption>\(SVGChart.line(backlog))</figure>
            <figure id="chart-escalation"><figcaption>Escalation rate by weekly creation cohort</figcaption>\(SVGChart.bars(trend.map { ($0.day, $0.value) }, percent: true))</figure>
            <figure id="chart-sla"><figcaption>SLA attainment by clock</figcaption>\(SVGChart.bars(clocks, percent: true))</figure>
            </div>
            """
    }

    func metricSections() -> String {
        let m = metrics
        func row(_ name: String, _ value: String, id: String) -> String {
            "<tr id=\"m-\(id)\"><td>\(escape(name))</td><td>\(value)</td></tr>"
        }
        func speed(_ name: String, _ f: SpeedFigure, id: String) -> String {
            row(name, "median \(duration(f.calendar.medianMillis)), p90 \(duration(f.calendar.p90Millis)) (n=\(f.calendar.count)); business median \(duration(f.business.medianMillis)), p90 \(duration(f.business.p90Millis)) (n=\(f.business.count))", id: id)
        }
        func share(_ s: Share) -> String { "\(percent(s.rate)) (\(s.part) of \(s.whole))" }
        var out = "<h2>Metrics\(query.filter.site.map { " for " + escape($0) } ?? " for the fleet")</h2><div class=\"grid\">"
        out += "<table id=\"volume\"><thead><tr><th colspan=\"2\">Volume and backlog</th></tr></thead><tbody>"
        out += row("Created", "\(m.created)", id: "created") + row("Solved", "\(m.solved)", id: "solved") + row("Net flow", "\(m.netFlow)", id: "net-flow")
        out += row("Backlog now", "\(m.backlog.total)", id: "backlog")
        out += row("By status", escape(m.backlog.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), id: "backlog-status")
        out += row("By age", escape(MetricQueries.ageBuckets.map { "\($0.0) \(m.backlog.byAge[$0.0] ?? 0)" }.joined(separator: ", ")), id: "backlog-age")
        out += row("Oldest open", duration(m.backlog.oldestOpenAgeMillis), id: "oldest")
        out += "</tbody></table>"
        out += "<table id=\"speed\"><thead><tr><th colspan=\"2\">Speed</th></tr></thead><tbody>"
        out += speed("First response", m.speed.firstResponse, id: "frt") + speed("Next response", m.speed.nextResponse, id: "nrt")
        out += speed("Time to own", m.speed.timeToOwn, id: "tto") + speed("Resolution", m.speed.resolution, id: "resolution")
        out += "</tbody></table>"
        out += "<table id=\"sla\"><thead><tr><th colspan=\"2\">SLA</th></tr></thead><tbody>"
        for (kind, a) in m.sla.clocks.sorted(by: { $0.key < $1.key }) {
            out += row("Attainment, \(kind)", "\(percent(a.attainment)) (\(a.achieved) met, \(a.breached) breached)", id: "sla-\(kind)")
        }
        out += row("Attainment, all clocks", percent(m.sla.overall.attainment), id: "sla-overall")
        out += row("Breach rate (tickets)", share(m.sla.breachRate), id: "breach-rate")
        out += row("At risk now", "\(m.sla.atRiskNow)", id: "at-risk") + row("Breached now", "\(m.sla.breachedNow)", id: "breached-now")
        out += "</tbody></table>"
        let e = m.escalation
        out += "<table id=\"escalation\"><thead><tr><th colspan=\"2\">Escalation</th></tr></thead><tbody>"
        out += row("Escalation rate", share(e.rate), id: "escalation-rate")
        out += row("By trigger", escape(e.byTrigger.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), id: "trigger")
        out += row("Transfer rate", share(e.transferRate), id: "transfer-rate") + row("Cross-site rate", share(e.crossSiteRate), id: "cross-site-rate")
        out += row("Max level reached", escape(e.maxLevel.sorted { $0.key < $1.key }.map { "L\($0.key): \($0.value)" }.joined(separator: ", ")), id: "max-level")
        out += row("Time to escalate (median)", duration(e.timeToEscalate.medianMillis), id: "time-to-escalate")
        out += row("Handoffs", "\(e.handoffs.requested) requested, \(e.handoffs.accepted) accepted, \(e.handoffs.rejected) rejected, \(e.handoffs.timedOut) timed out", id: "handoffs")
        out += row("Handoff acceptance (median)", duration(e.handoffs.acceptance.medianMillis), id: "handoff-acceptance")
        out += row("Exhausted ladders", "\(e.exhausted)", id: "exhausted") + row("Backstop firings", "\(e.backstopFirings)", id: "backstop")
        out += "</tbody></table>"
        let q = m.quality
        out += "<table id=\"quality\"><thead><tr><th colspan=\"2\">Quality</th></tr></thead><tbody>"
        out += row("First contact resolution", share(q.firstContactResolution), id: "fcr")
        out += row("FCR (Zendesk one-touch)", share(q.firstContactResolutionZendesk), id: "fcr-zendesk")
        out += row("Reopen rate (30 days)", share(q.reopenRate), id: "reopen-rate")
        out += row("CSAT", share(q.csat), id: "csat")
        let g = q.resolutionGoal30d
        out += row("30-day resolution goal", "\(percent(g.attainment)) (\(g.met) of \(g.cohort); \(g.openOver30d) open over 30 days\(g.final ? "" : "; cohort not final"))", id: "goal-30d")
        out += "</tbody></table>"
        let k = m.knowledge
        out += "<table id=\"knowledge\"><thead><tr><th colspan=\"2\">Knowledge base</th></tr></thead><tbody>"
        out += row("Articles", "\(k.articles) (\(k.written) written in the period)", id: "kb-articles")
        out += row("Tickets that used an article", share(k.linkRate), id: "kb-link-rate")
        out += row("Solved at first line with an article", share(k.firstLineWithArticle), id: "kb-first-line")
        out += row("Most used", escape(k.top.map { "\($0.ref) \($0.title) (\($0.uses))" }.joined(separator: "; ")), id: "kb-top")
        out += "</tbody></table></div>"
        return out
    }
}

/// Small SVG charts drawn on the server.
enum SVGChart {
    static let width = 360.0, height = 160.0, pad = 28.0

    static func line(_ points: [SeriesPoint]) -> String {
        let values = points.compactMap(\.value)
        guard values.count > 0 else { return empty() }
        let top = max(1, values.max()!)
        let step = points.count > 1 ? (width - 2 * pad) / Double(points.count - 1) : 0
        let coordinates = points.enumerated().compactMap { i, p -> String? in
            guard let v = p.value else { return nil }
            return "\(format(pad + Double(i) * step)),\(format(height - pad - v / top * (height - 2 * pad)))"
        }
        return svg("""
            <polyline fill="none" stroke="#2f6fde" stroke-width="2" points="\(coordinates.joined(separator: " "))"/>
            \(axes(top: format(top), first: points.first?.day ?? "", last: points.last?.day ?? ""))
            """)
    }

    static func bars(_ items: [(String, Double?)], percent: Bool) -> String {
        guard !items.isEmpty else { return empty() }
        let top = percent ? 1.0 : max(1, items.compactMap(\.1).max() ?? 1)
        let slot = (width - 2 * pad) / Double(items.count)
        var out = ""
        for (i, item) in items.enumerated() {
            let x = pad + Double(i) * slot + slot * 0.15
            let label = "<title>\(escape(item.0)): \(item.1.map { percent ? "\(Int(($0 * 100).rounded()))%" : format($0) } ?? "no data")</title>"
            if let value = item.1 {
                let h = value / top * (height - 2 * pad)
                out += "<rect x=\"\(format(x))\" y=\"\(format(height - pad - h))\" width=\"\(format(slot * 0.7))\" height=\"\(format(h))\" fill=\"#2f6fde\">\(label)</rect>"
            } else {
                out += "<rect x=\"\(format(x))\" y=\"\(format(height - pad - 2))\" width=\"\(format(slot * 0.7))\" height=\"2\" fill=\"#bbb\">\(label)</rect>"
            }
            if items.count <= 8 {
                out += "<text x=\"\(format(x + slot * 0.35))\" y=\"\(format(height - pad + 12))\" font-size=\"9\" text-anchor=\"middle\">\(escape(item.0))</text>"
            }
        }
        return svg(out + axes(top: percent ? "100%" : format(top), first: items.count > 8 ? items.first!.0 : "", last: items.count > 8 ? items.last!.0 : ""))
    }

    static func axes(top: String, first: String, last: String) -> String {
        """
        <line x1="\(pad)" y1="\(height - pad)" x2="\(width - pad)" y2="\(height - pad)" stroke="#999"/>
        <line x1="\(pad)" y1="\(pad)" x2="\(pad)" y2="\(height - pad)" stroke="#999"/>
        <text x="2" y="\(pad)" font-size="9">\(escape(top))</text><text x="2" y="\(height - pad)" font-size="9">0</text>
        <text x="\(pad)" y="\(height - 4)" font-size="9">\(escape(first))</text>
        <text x="\(width - pad)" y="\(height - 4)" font-size="9" text-anchor="end">\(escape(last))</text>
        """
    }

    static func empty() -> String { svg("<text x=\"\(width / 2)\" y=\"\(height / 2)\" text-anchor=\"middle\" fill=\"#777\">no data in this period</text>") }

    static func svg(_ body: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\(body)</svg>"
    }

    static func format(_ x: Double) -> String { String(format: "%.1f", x) }
}

/// CSV exports (RFC 4180 quoting).
enum CSVExport {
    static func sites(_ summary: FleetSummary) -> String {
        var lines = [["site", "role", "backlog", "created", "solved", "at_risk_now", "breached_now", "escalation_rate", "sla_attainment",
                      "last_seen", "lag_ms", "blocks_pending_in", "blocks_pending_out", "skew_ms", "quarantined", "as_of"]]
        for s in summary.sites {
            lines.append([s.site, s.role ?? "", String(s.backlog), String(s.created), String(s.solved), String(s.atRiskNow), String(s.breachedNow),
                          s.escalationRate.map { String($0) } ?? "", s.slaAttainment.map { String($0) } ?? "",
                          s.lastSeen ?? "", s.lagMillis.map(String.init) ?? "",
                          String(s.blocksPendingIn), s.blocksPendingOut.map(String.init) ?? "", s.skewMillis.map(String.init) ?? "",
                          String(s.quarantined), summary.asOf ?? ""])
        }
        return encode(lines)
    }

    /// Every figure of the metric set as `metric,value` rows, flattened from its JSON.
    static func metrics(_ reply: MetricsReply) -> String {
        var lines = [["metric", "value"], ["generated_at", reply.generatedAt], ["as_of", reply.asOf ?? ""]]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(reply.metrics), let object = try? JSONSerialization.jsonObject(with: data) {
            flatten(object, prefix: "", into: &lines)
        }
        return encode(lines)
    }

    static func flatten(_ value: Any, prefix: String, into lines: inout [[String]]) {
        if let object = value as? [String: Any] {
            for key in object.keys.sorted() { flatten(object[key]!, prefix: prefix.isEmpty ? key : "\(prefix).\(key)", into: &lines) }
        } else if value is NSNull {
            lines.append([prefix, ""])
        } else {
            lines.append([prefix, "\(value)"])
        }
    }

    static func encode(_ lines: [[String]]) -> String {
        lines.map { $0.map(quote).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    static func quote(_ text: String) -> String {
        // A cell starting like a formula is kept as text in spreadsheets.
        // Per Unicode scalar: "\r\n", or a comma or quote followed by a combining mark, is one Character equal to none of these.
        let field = text.unicodeScalars.first.map { "=+-@\t\r".unicodeScalars.contains($0) } == true && Double(text) == nil ? "'" + text : text
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// `text` safe in HTML text and in a quoted attribute. Escaped per Unicode scalar, not per Character:
/// a quote followed by a combining mark (`"\u{301}`) is one Character that equals no `"`, yet the
/// browser reads its quote and the attribute ends.
func escape(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

func percent(_ value: Double?) -> String {
    value.map { String(format: "%.1f%%", $0 * 100) } ?? "—"
}

/// A duration for people: 42 s, 17 min, 3.5 h, 2.1 d.
func duration(_ ms: Int64?) -> String {
    guard let ms else { return "—" }
    let s = Double(ms) / 1000
    if s < 60 { return String(format: "%.0f s", s) }
    if s < 3600 { return String(format: "%.0f min", s / 60) }
    if s < 86_400 { return String(format: "%.1f h", s / 3600) }
    return String(format: "%.1f d", s / 86_400)
}

/// The page's line for the PostgreSQL mirror a node runs, from the report it keeps.
extension MirrorReport {
    func isRunning(at now: Int64) -> Bool { isLive(at: UInt64(max(0, now))) }
    /// Stopped, disconnected, or more than a minute behind.
    func isBehind(at now: Int64) -> Bool { !isRunning(at: now) || !status.connected || (status.behindSeconds ?? 0) > 60 }

    func text(at now: Int64) -> String {
        let lag = status.behindBlocks.map { blocks in
            blocks == 0 ? "caught up" : "\(blocks) blocks (\(Int(status.behindSeconds ?? 0)) s) behind"
        } ?? "lag unknown"
        let state = !isRunning(at: now) ? "not running (its node stopped)"
            : !status.connected ? "not connected (\(lag)): \(status.lastError ?? "connecting")"
            : lag
        return "PostgreSQL mirror \(status.target): \(state)"
    }
}
