enum Assets {}

extension Assets {
    /// The workspace's one style sheet.
    static let css = #"""
:root { --fg: #1b1f24; --muted: #59636e; --line: #d0d7de; --bg: #fff; --accent: #0b57d0; --bad: #b3261e; --warn: #8a5a00; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #8ab4f8; outline-offset: 1px; }
.skip { position: absolute; left: -1000px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; }
header.top { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 16px; border-bottom: 1px solid var(--line); }
header.top nav { display: flex; flex-wrap: wrap; gap: 10px; flex: 1; }
.brand { font-weight: 700; text-decoration: none; color: var(--fg); }
.site { font-weight: 400; color: var(--muted); }
.signout { display: flex; gap: 8px; align-items: center; }
.banner { background: #fff4ce; border-bottom: 1px solid #e0c060; padding: 6px 16px; }
time[data-deadline] { white-space: nowrap; }
.sla-at-risk { color: var(--warn); font-weight: 600; }
.sla-breached { color: var(--bad); font-weight: 600; }
main { padding: 12px 16px; max-width: 1400px; }
.signin { max-width: 360px; margin: 48px auto; display: grid; gap: 8px; }
.signin form { display: grid; gap: 6px; }
.error, .refusal p[role=alert] { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
input, select, textarea, button { font: inherit; }
button { padding: 4px 12px; }
nav.views { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-bottom: 8px; }
nav.views a[aria-current=page], header.top nav a[aria-current=page] { font-weight: 700; text-decoration: none; color: var(--fg); }
form.filters { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-bottom: 10px; }
.badge { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 8px; background: #eef1f4; }
.badge.conflict, tr.conflict td { background: #fde7e9; }
.tag { display: inline-block; font-size: 12px; padding: 0 6px; border: 1px solid var(--line); border-radius: 8px; color: var(--muted); }
tr.sla-breached .due, .clock-breached, time.breached { color: var(--bad); font-weight: 600; }
tr.sla-at_risk .due, time.at-risk { color: var(--warn); font-weight: 600; }
.ticket-layout { display: grid; grid-template-columns: minmax(0, 1fr) 320px; gap: 20px; }
@media (max-width: 900px) { .ticket-layout { grid-template-columns: 1fr; } }
dl.fields { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 12px; }
dl.fields dt, dl.note dt, .side dt { color: var(--muted); }
dl.fields dd, dl.note dd, .side dd { margin: 0; }
dl.note { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; background: #f6f8fa; padding: 8px; }
.side dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; }
section.handoff { border: 2px solid #8ab4f8; padding: 8px 12px; margin: 12px 0; }
section.actions { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; margin: 16px 0; }
form.box { border: 1px solid var(--line); padding: 8px; display: grid; gap: 4px; align-content: start; }
form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 4px 8px 4px 0; }
form.escalate { grid-column: span 2; }
.legend { margin: 0; font-weight: 600; }
.done { color: var(--ok); }
td.body { white-space: pre-wrap; overflow-wrap: anywhere; }
"""#
}
