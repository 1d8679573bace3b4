#!/usr/bin/env python3
"""Loads the dashboard of a `tierline serve --http` node in headless Chromium and checks what a person
would see against the node's own JSON, Prometheus text and CSV.

Usage: Tests/CLI/dashboard-browser.py [PATH/TO/tierline]      (default: .build/debug/tierline)

Runs `tierline demo --dir TMP/fleet --short --dashboard off` (a local fleet: hub, north, south and a laptop), publishes
an agent `viewer` with role manager at the hub (`tierline agent add`), gives it a password (`tierline agent password
--generate`) and an API token (`tierline agent token`, sent by this script's own requests), then serves the
hub's store with `tierline serve --http 127.0.0.1:0` and a --config file that turns the escalation ticker off
(`"escalationMillis": 0`, so nothing writes to the store while the checks run; the port is read from the log
line `dashboard listening address=http://HOST:PORT/`) and waits until /api/summary says pendingFacts 0.
Breached-now counts grow by themselves as the demo's SLA deadlines pass, so each artefact (page, /metrics,
CSV) is compared with /api/summary fetched just before and just after it: a breached count must lie between
the two, a backlog must equal them.
Then:
  - drives headless Chromium over the DevTools protocol (on a pipe, --remote-debugging-pipe): it opens /,
    lands on the sign-in form, types the agent name and password and presses "Sign in" like a person, is
    taken back to /, and the dashboard's style sheet is applied under the Content-Security-Policy;
  - parses the signed-in page's DOM: one tr[data-site] per site of
    /api/summary with its backlog and breached-now cells, the fleet total row, the three SVG charts,
    the metric rows m-created, m-escalation-rate, m-fcr against /api/metrics;
  - takes a 1400x1800 screenshot of the signed-in page to Tests/artifacts/dashboard.png (kept for people to
    look at);
  - parses /metrics with prometheus_client (tierline_backlog_tickets per site, the sync counters) and
    has Prometheus's `promtool check metrics` lint it (every family with # HELP and # TYPE);
  - parses /export.csv (and ?table=metrics) with the csv module;
  - checks that /api/metrics?days=0 is a 400 whose JSON names the parameter `days`, that ?site=nrth (no
    such site) is a 400 listing the known sites, as JSON from the API and as a page in the browser.

Needs Debian's `chromium` and `prometheus` packages (apt-get install -y chromium fonts-dejavu-core
prometheus) and the PyPI package prometheus-client; a missing one is a FAIL, not a skip. Prints one PASS/FAIL line per check; exits 1
if any check fails.
"""
import base64
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from html.parser import HTMLParser
import select

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/tierline"
if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
    print(f"FAIL: no executable tierline at {BIN!r} (build it with 'swift build', or pass its path)")
    sys.exit(1)
BIN = os.path.abspath(BIN)
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ARTIFACTS = os.path.join(REPO, "Tests", "artifacts")
SCREENSHOT = os.path.join(ARTIFACTS, "dashboard.png")
# Bounds only (they are not waited out when things work): generous, so a machine with every core busy
# does not fail a check. A request takes milliseconds, a chromium run a few seconds.
HTTP_TIMEOUT = 60.0       # every HTTP request
BROWSER_TIMEOUT = 300     # every chromium run, in seconds
START_TIMEOUT = 120       # until the node logs 'dashboard listening', and until pendingFacts is 0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AGENT = "viewer"          # the manager this script signs in as
TOKEN = None              # its API token, sent with every request of this script

# The header of /export.csv (CSVExport.sites in Sources/Dashboard/Page.swift).
SITES_CSV_HEADER = ["site", "role", "backlog", "created", "solved", "at_risk_now", "breached_now", "escalation_rate",
                    "sla_attainment", "last_seen", "lag_ms", "blocks_pending_in", "blocks_pending_out",
                    "skew_ms", "quarantined", "as_of"]
# What SyncMetrics (Sources/SyncNode/Session.swift) registers: counters, then the open-sessions meter.
SYNC_COUNTERS = ["tierline_sync_blocks_received_total", "tierline_sync_blocks_applied_total", "tierline_sync_blocks_sent_total",
                 "tierline_sync_changeset_bytes_received_total", "tierline_sync_changeset_bytes_sent_total",
                 "tierline_sync_socket_bytes_received_total", "tierline_sync_socket_bytes_sent_total",
                 "tierline_sync_sessions_total", "tierline_sync_session_errors_total"]
SYNC_GAUGES = ["tierline_sync_sessions_open"]

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {name}")
    else:
        failed += 1
        print(f"FAIL: {name}")
        if detail:
            for line in str(detail).splitlines()[:25]:
                print(f"      {line[:400]}")
    return ok


def run_bounded(args, timeout, **kwargs):
    """Runs ARGS in a process group of its own; on timeout kills that group (chromium forks helpers).
    Returns (returncode, stdout bytes, stderr bytes); returncode 124 on timeout."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return 124, out, err + f"\n(timed out after {timeout} s)".encode()


def http_get(url):
    """(status, content type, body text) of a GET as the agent (its token), asking for an answer computed
    now (`Cache-Control: no-cache`: the dashboard may otherwise share one from the last 2 s, which could
    predate the page it is compared with); HTTP errors are answers too."""
    headers = {"Cache-Control": "no-cache"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=HTTP_TIMEOUT) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def get_json(url):
    status, ctype, body = http_get(url)
    if status != 200:
        raise AssertionError(f"GET {url}: status {status}: {body[:500]}")
    return json.loads(body)


def around(base, fetch):
    """(summary before, fetch(), summary after): /api/summary fetched just before and just after an
    artefact, the two ends of the range its breached-now counts must lie in."""
    before = get_json(base + "/api/summary")
    got = fetch()
    after = get_json(base + "/api/summary")
    return before, got, after


def site_values(summary, key):
    return {s["site"]: s[key] for s in summary["sites"]}


def breached_between(before, after, got):
    """The sites whose breached-now count GOT[site] (a number or its text) is not between /api/summary's
    before and after (breached-now only grows while nobody writes: deadlines pass). Empty when all fit."""
    lo, hi = site_values(before, "breachedNow"), site_values(after, "breachedNow")
    bad = []
    for site in sorted(set(lo) | set(hi) | set(got)):
        value = got.get(site)
        try:
            ok = lo[site] <= float(value) <= hi[site] and float(value) == int(float(value))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            bad.append(f"{site}: {value!r}, /api/summary before {lo.get(site)}, after {hi.get(site)}")
    return bad


# ---- a small DOM from html.parser -------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = {k: (v if v is not None else "") for k, v in attrs}
        self.parent = parent
        self.children = []  # Node or str

    @property
    def classes(self):
        return self.attrs.get("class", "").split()

    def elements(self):
        """Every element below this one, in document order."""
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.elements()

    def find_all(self, tag=None, **attrs):
        def matches(e):
            if tag and e.tag != tag:
                return False
            for k, v in attrs.items():
                k = k.rstrip("_")  # class_ -> class
                if k == "class":
                    if v not in e.classes:
                        return False
                elif v is True:
                    if k not in e.attrs:
                        return False
                elif e.attrs.get(k) != v:
                    return False
            return True
        return [e for e in self.elements() if matches(e)]

    def find(self, tag=None, **attrs):
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def cells(self):
        return [c for c in self.children if isinstance(c, Node) and c.tag in ("td", "th")]

    def text(self):
        parts = []
        for c in self.children:
            parts.append(c if isinstance(c, str) else c.text())
        return "".join(parts)

    def clean_text(self):
        return " ".join(self.text().split())


class DOMBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        # Close up to the nearest open element with this tag; ignore a stray end tag.
        n = self.current
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.current = n.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_dom(html):
    b = DOMBuilder()
    b.feed(html)
    b.close()
    return b.root


# ---- the checks -------------------------------------------------------------------------------------

def chromium_flags(work):
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={os.path.join(work, 'chromium-profile')}"]


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: it reads
    commands from its fd 3 and writes answers and events to its fd 4, each a JSON text ending in NUL), so
    that the standard library is enough. One page target, attached in flat mode."""

    def __init__(self, chromium, work):
        to_browser, self.commands = os.pipe()
        self.answers, from_browser = os.pipe()

        def child():
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)
        self.log = open(os.path.join(work, "chromium.log"), "w")
        self.proc = subprocess.Popen([chromium, *chromium_flags(work), "--remote-debugging-pipe", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, close_fds=False,
                                     preexec_fn=child, start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self.buffer = b""
        self.events = []
        self.next_id = 0
        self.session = None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")

    def _read(self, deadline):
        """One message, waiting until DEADLINE (time.monotonic()) at most."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.answers], [], [], max(0, left))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None):
        """Sends a command (to the page once attached) and returns its result; an error answer raises."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method):
        """Waits for the next event METHOD (one already received counts)."""
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url):
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def close(self):
        try:
            self.send("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for fd in (self.commands, self.answers):
            os.close(fd)
        self.log.close()


def sign_in(browser, base, password):
    """Opens / signed out, and signs in on the form it is sent to, as a person would. Returns whether it
    ended on the dashboard."""
    browser.navigate(base + "/")
    here = browser.evaluate("location.pathname + location.search")
    form = browser.evaluate("!!document.querySelector('form[action=\"/login\"] input[name=password]')")
    check("a signed-out browser opening / is sent to the sign-in form (/login?next=%2F)", here == "/login?next=%2F" and form,
          f"at {here!r}, form {form}")
    browser.events.clear()
    browser.evaluate(f"""document.getElementById('name').value = {json.dumps(AGENT)};
        document.getElementById('password').value = {json.dumps(password)};
        document.querySelector('form[action="/login"] button[type=submit]').click(); true""")
    browser.wait_event("Page.loadEventFired")
    here = browser.evaluate("location.pathname")
    title = browser.evaluate("document.title")
    return check(f"after typing {AGENT}'s name and password and pressing Sign in, the browser is on the dashboard (/)",
                 here == "/" and "Tierline dashboard" in (title or ""), f"at {here!r}, title {title!r}")


def browser_checks(chromium, work, base, metrics, password):
    browser = Browser(chromium, work)
    try:
        if sign_in(browser, base, password):
            signed_in_checks(browser, base, metrics)
    finally:
        browser.close()


def signed_in_checks(browser, base, metrics):
    # The style sheet is a file of this node's (the CSP refuses inline styles): applied, not blocked.
    rules = browser.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
    background = browser.evaluate("getComputedStyle(document.body).backgroundColor")
    check("the dashboard's style sheet is applied under the Content-Security-Policy (rules loaded, body background set)",
          isinstance(rules, int) and rules > 5 and background == "rgb(250, 251, 252)", f"{rules} rules, background {background!r}")

    # 1. the rendered DOM, between two answers of /api/summary
    browser.navigate(base + "/")
    summary, html, after = around(base, lambda: browser.evaluate("document.documentElement.outerHTML"))
    if not check("the signed-in browser renders / as a document", isinstance(html, str) and "<html" in html and "</html>" in html,
                 f"{len(html or '')} characters of DOM"):
        return
    dom = parse_dom(html)

    sites = summary["sites"]
    names = [s["site"] for s in sites]
    table = dom.find("table", id="sites")
    if not check("the page has table#sites", table is not None, html[:1500]):
        return
    rows = {tr.attrs["data-site"]: tr for tr in table.find_all("tr", **{"data-site": True})}
    check(f"table#sites has one tr[data-site] per site of /api/summary ({', '.join(names)})",
          sorted(rows) == sorted(names) and len(table.find_all("tr", **{"data-site": True})) == len(names),
          f"rows {sorted(rows)}, /api/summary sites {sorted(names)}")
    bad = []
    page_breached = {}
    for s in sites:
        tr = rows.get(s["site"])
        if tr is None:
            continue
        backlog = tr.find("td", class_="backlog")
        breached = tr.find("td", class_="breached")
        got = (backlog.clean_text() if backlog else None, breached.clean_text() if breached else None)
        page_breached[s["site"]] = got[1]
        if got[0] != str(s["backlog"]) or str(s["backlog"]) != str(site_values(after, "backlog").get(s["site"])):
            bad.append(f"{s['site']}: td.backlog {got[0]!r}; JSON backlog {s['backlog']} before, "
                       f"{site_values(after, 'backlog').get(s['site'])} after")
    bad += breached_between(summary, after, page_breached)
    check("each site row's td.backlog equals /api/summary's backlog and its td.breached lies between "
          "/api/summary's breachedNow before and after the page",
          not bad and all(s["site"] in rows for s in sites), "\n".join(bad))

    # the fleet total row: cells line up with the header's columns (th Fleet, td role, td backlog, ...)
    headers = [th.clean_text() for th in table.find("thead").find_all("th")] if table.find("thead") else []
    total = table.find("tr", id="fleet-total")
    if check("table#sites has a tfoot row tr#fleet-total", total is not None and total.parent.tag == "tfoot",
             f"headers {headers}"):
        cells = [c.clean_text() for c in total.cells()]
        want_backlog = sum(s["backlog"] for s in sites)
        # The page's own rows: the total must be their sum, and lie between the JSON totals before and after.
        rows_breached = sum(int(v) for v in page_breached.values() if v is not None and v.isdigit())

        def column(name):
            i = headers.index(name) if name in headers else -1
            return cells[i] if 0 <= i < len(cells) else None
        check(f"the fleet total backlog is the sum of the sites' backlogs ({want_backlog}) and totals.backlog",
              column("Backlog") == str(want_backlog) == str(summary["totals"]["backlog"]),
              f"fleet row cells {cells}; totals {summary['totals']}")
        lo, hi = summary["totals"]["breachedNow"], after["totals"]["breachedNow"]
        check(f"the fleet total breached-now is the sum of the site rows' ({rows_breached}), between totals.breachedNow "
              f"before and after the page ({lo}..{hi})",
              column("Breached now") == str(rows_breached) and lo <= rows_breached <= hi,
              f"fleet row cells {cells}; totals before {summary['totals']}, after {after['totals']}")

    # the charts
    for chart in ("chart-backlog", "chart-escalation", "chart-sla"):
        fig = dom.find("figure", id=chart)
        svg = fig.find("svg") if fig else None
        check(f"figure#{chart} contains an <svg> with drawn content",
              svg is not None and any(e.tag in ("polyline", "rect", "line", "text") for e in svg.elements()),
              "no figure" if fig is None else "no svg" if svg is None else f"svg children: {[e.tag for e in svg.elements()][:20]}")

    # the metric tables and rows
    for section in ("volume", "speed", "sla", "escalation", "quality"):
        check(f"the metric table #{section} is there", dom.find("table", id=section) is not None)
    m = metrics["metrics"]

    def metric_value(row_id):
        tr = dom.find("tr", id=row_id)
        if tr is None:
            return None
        cells = tr.cells()
        return cells[1].clean_text() if len(cells) >= 2 else ""
    created = metric_value("m-created")
    check(f"tr#m-created shows the JSON's created count ({m['created']}; /api/summary totals.created {summary['totals']['created']})",
          created == str(m["created"]) == str(summary["totals"]["created"]),
          f"tr#m-created value {created!r}")
    backlog_now = metric_value("m-backlog")
    check(f"tr#m-backlog shows the JSON's backlog ({m['backlog']['total']})", backlog_now == str(m["backlog"]["total"]),
          f"tr#m-backlog value {backlog_now!r}")
    rate = m["escalation"]["rate"]
    esc = metric_value("m-escalation-rate")
    check(f"tr#m-escalation-rate shows '({rate['part']} of {rate['whole']})' from the JSON",
          esc is not None and f"({rate['part']} of {rate['whole']})" in esc, f"tr#m-escalation-rate value {esc!r}")
    fcr_json = m["quality"]["firstContactResolution"]
    fcr = metric_value("m-fcr")
    check(f"tr#m-fcr shows '({fcr_json['part']} of {fcr_json['whole']})' from the JSON",
          fcr is not None and f"({fcr_json['part']} of {fcr_json['whole']})" in fcr, f"tr#m-fcr value {fcr!r}")
    as_of = dom.find("time", id="as-of")
    check("time#as-of shows /api/summary's asOf", as_of is not None and as_of.clean_text() == (summary.get("asOf") or "never"),
          f"#as-of {as_of.clean_text() if as_of else None!r}, asOf {summary.get('asOf')!r}")
    links = {i: dom.find("a", id=i) for i in ("csv-sites", "csv-metrics")}
    check("the CSV links #csv-sites and #csv-metrics point at /export.csv",
          all(a is not None and a.attrs.get("href", "").startswith("/export.csv") for a in links.values())
          and "table=metrics" in (links["csv-metrics"].attrs.get("href", "") if links["csv-metrics"] else ""),
          {k: (a.attrs if a else None) for k, a in links.items()})

    # a filter naming no known site: the browser shows a page saying so, not zeros and not raw JSON
    browser.navigate(base + "/?site=nrth")
    html = browser.evaluate("document.documentElement.outerHTML") or ""
    error = parse_dom(html).find("p", id="error")
    text = error.clean_text() if error else ""
    check("the browser at /?site=nrth shows p#error naming the site and listing the known ones (not raw JSON, not a table of zeros)",
          error is not None and "'nrth'" in text and all(n in text for n in names) and parse_dom(html).find("table", id="sites") is None,
          f"p#error {text!r}; page {html[:800]!r}")
    browser.navigate(base + "/")

    # 2. the screenshot of the signed-in page
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1800, "deviceScaleFactor": 1, "mobile": False})
    data = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"}).get("data", ""))
    if data:
        with open(SCREENSHOT, "wb") as f:
            f.write(data)
    check(f"the signed-in page's screenshot is written to {os.path.relpath(SCREENSHOT, REPO)}", bool(data))
    if data:
        size = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) if data[12:16] == b"IHDR" else None
        check(f"the screenshot is a non-trivial PNG (signature, IHDR 1400x1800, {len(data)} bytes > 20 kB)",
              data.startswith(PNG_SIGNATURE) and len(data) > 20_000 and size == (1400, 1800),
              f"first bytes {data[:16]!r}, size {size}, {len(data)} bytes")


def prometheus_checks(base):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        check("the Python package prometheus_client is installed", False,
              "install it: python3 -m pip install prometheus-client (see .ci/run)")
        return
    # /metrics between two answers of /api/summary; fetched again (for at most START_TIMEOUT s) until
    # tierline_metric_facts_pending is 0, as the node derives the facts of what it has just read.
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        summary, (status, ctype, text), after = around(base, lambda: http_get(base + "/metrics"))
        m = re.search(r"^tierline_metric_facts_pending(?:\{[^}]*\})? (\S+)$", text, re.M)
        if (m and float(m.group(1)) == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    check("GET /metrics answers 200 text/plain (Prometheus text format 0.0.4)",
          status == 200 and ctype.startswith("text/plain") and "0.0.4" in ctype, f"status {status}, content type {ctype!r}")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:
        check("prometheus_client parses /metrics", False, f"{e!r}\n{text[:1500]}")
        return
    check(f"prometheus_client parses /metrics ({len(families)} families)", bool(families), text[:1500])
    promtool_checks(text)
    samples = {}
    types = {}
    for f in families:
        for s in f.samples:
            samples.setdefault(s.name, []).append(s)
            types[s.name] = f.type

    want = {s["site"]: float(s["backlog"]) for s in summary["sites"]}
    want_after = {s["site"]: float(s["backlog"]) for s in after["sites"]}
    got = {}
    duplicates = []
    for s in samples.get("tierline_backlog_tickets", []):
        site = s.labels.get("site")
        if site in got:
            duplicates.append(site)
        got[site] = s.value
    check("tierline_backlog_tickets is a gauge with one sample per site equal to /api/summary's backlog",
          types.get("tierline_backlog_tickets") == "gauge" and got == want == want_after and not duplicates,
          f"/metrics {got}, JSON {want} before, {want_after} after, duplicated sites {duplicates}")
    breached = samples.get("tierline_sla_breached_now", [])
    got_breached = {s.labels.get("site"): s.value for s in breached}
    bad = breached_between(summary, after, got_breached)
    check("tierline_sla_breached_now has one sample per site, between breachedNow before and after /metrics",
          not bad and len(breached) == len(got_breached), "\n".join(bad) + f"\nsamples {got_breached}")
    pending = [s.value for s in samples.get("tierline_metric_facts_pending", [])]
    check(f"tierline_metric_facts_pending is 0 (within {START_TIMEOUT} s)", pending == [0.0], f"samples {pending}")
    missing = [n for n in SYNC_COUNTERS if types.get(n) != "counter" or not samples.get(n)]
    check(f"the {len(SYNC_COUNTERS)} sync counters of SyncMetrics are there as counters (tierline_sync_sessions_total, ...)",
          not missing, f"missing or not counters: {missing}\nfamilies: {sorted((f.name, f.type) for f in families)}")
    missing = [n for n in SYNC_GAUGES if types.get(n) != "gauge" or not samples.get(n)]
    check("the gauge tierline_sync_sessions_open is there", not missing, f"families: {sorted((f.name, f.type) for f in families)}")
    negative = [(n, s.value) for n in SYNC_COUNTERS for s in samples.get(n, []) if s.value < 0]
    check("the sync counters are not negative", not negative, negative)


def csv_checks(base, metrics):
    summary, (status, ctype, body), after = around(base, lambda: http_get(base + "/export.csv"))
    check("GET /export.csv answers 200 text/csv", status == 200 and ctype.startswith("text/csv"),
          f"status {status}, content type {ctype!r}\n{body[:500]}")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    check("the sites CSV has the expected header", rows[:1] == [SITES_CSV_HEADER], f"header {rows[:1]}")
    data = [dict(zip(rows[0], r)) for r in rows[1:]] if rows else []
    names = [s["site"] for s in summary["sites"]]
    check(f"the sites CSV has one row per site ({len(names)})",
          sorted(r.get("site") for r in data) == sorted(names) and all(len(r) == len(SITES_CSV_HEADER) for r in rows),
          f"rows: {rows[1:]}")
    by_site = {r.get("site"): r for r in data}
    backlog_after = site_values(after, "backlog")
    bad = [f"{s['site']}: csv backlog {by_site.get(s['site'], {}).get('backlog')!r}, JSON {s['backlog']} before, "
           f"{backlog_after.get(s['site'])} after"
           for s in summary["sites"]
           if not by_site.get(s["site"], {}).get("backlog") == str(s["backlog"]) == str(backlog_after.get(s["site"]))]
    bad += breached_between(summary, after, {site: r.get("breached_now") for site, r in by_site.items()})
    check("each CSV row's backlog equals /api/summary's and its breached_now lies between breachedNow before and after",
          not bad, "\n".join(bad))

    status, ctype, body = http_get(base + "/export.csv?table=metrics")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    values = {r[0]: r[1] for r in rows[1:] if len(r) == 2}
    check("/export.csv?table=metrics: a metric,value table whose 'created' is the JSON's created count",
          status == 200 and rows[:1] == [["metric", "value"]] and values.get("created") == str(metrics["metrics"]["created"]),
          f"status {status}; header {rows[:1]}; created {values.get('created')!r}, JSON {metrics['metrics']['created']}")


def promtool_checks(text):
    """Prometheus's own linter accepts the text: every family has # HELP and # TYPE, names follow its rules."""
    helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    typed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    check(f"every family of /metrics has a # HELP line ({len(typed)} families)", typed and typed <= helped,
          f"no # HELP: {sorted(typed - helped)}")
    promtool = shutil.which("promtool")
    if not check("promtool is installed (Debian's prometheus package; see .ci/run)", promtool is not None,
                 "install it: apt-get install -y prometheus"):
        return
    try:
        done = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = 124, b"", b"(timed out after 60 s)"
    check("promtool check metrics accepts /metrics (exit 0)", rc == 0,
          f"exit {rc}\n{(out + err).decode(errors='replace')[:1500]}")


def bad_query_checks(base, names):
    for path in ("/api/summary?site=nrth", "/api/metrics?site=nrth"):
        status, ctype, body = http_get(base + path)
        try:
            err = json.loads(body)
        except ValueError:
            err = None
        check(f"GET {path} answers 400 with a JSON error naming the parameter 'site' and the known sites, not zeros",
              status == 400 and ctype.startswith("application/json") and isinstance(err, dict) and err.get("parameter") == "site"
              and all(n in err.get("error", "") for n in names),
              f"status {status}, content type {ctype!r}, body {body[:500]!r}")
    status, ctype, body = http_get(base + "/api/metrics?days=0")
    try:
        err = json.loads(body)
    except ValueError:
        err = None
    check("GET /api/metrics?days=0 answers 400 with a JSON body naming the parameter 'days'",
          status == 400 and ctype.startswith("application/json") and isinstance(err, dict)
          and err.get("parameter") == "days" and isinstance(err.get("error"), str) and err["error"],
          f"status {status}, content type {ctype!r}, body {body[:500]!r}")


def usage_checks(work):
    """The dashboard's flags: bad values exit 2 naming the flag; a missing store exits 1 saying what to do."""
    cases = [
        (["dashboard", "--listen", "nowhere"], 2, "--listen"),
        (["dashboard", "--listen", "127.0.0.1:0", "--refresh-millis", "5"], 2, "--refresh-millis"),
        (["serve", "--store", os.path.join(work, "none"), "--http", "127.0.0.1:99999"], 2, "port"),
        (["dashboard", "--store", os.path.join(work, "none"), "--listen", "127.0.0.1:0"], 1, "init"),
    ]
    for args, code, word in cases:
        rc, out, err = run_bounded([BIN] + args, 60)
        text = err.decode(errors="replace")
        check(f"tierline {' '.join(args[:1] + args[-2:])} exits {code} and mentions {word!r}",
              rc == code and word in text, f"exit {rc}, stderr {text[:400]!r}")


def run():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-dashboard-browser.")
    proc = None
    log = None
    log_path = os.path.join(work, "node.log")
    if os.path.exists(SCREENSHOT):
        os.remove(SCREENSHOT)  # a screenshot left by an earlier run must not pass for this run's
    try:
        global BIN
        # A private copy, so a `swift build` relinking the binary meanwhile cannot disturb the run.
        shutil.copy2(BIN, os.path.join(work, "tierline"))
        print(f"tierline: {BIN}")
        BIN = os.path.join(work, "tierline")
        chromium = shutil.which("chromium")
        check("chromium is installed (for the headless browser checks)", chromium is not None,
              "no `chromium` on PATH: install Debian's chromium package: apt-get install -y chromium fonts-dejavu-core")

        fleet = os.path.join(work, "fleet")
        rc, out, err = run_bounded([BIN, "demo", "--dir", fleet, "--short", "--dashboard", "off", "--json"], 600)
        if not check("tierline demo --dir TMP/fleet --short --json exits 0 and keeps the stores", rc == 0,
                     f"exit {rc}\nstderr: {err.decode('utf-8', 'replace')[-1500:]}"):
            return
        demo = json.loads(out)
        hubs = [s["site"] for s in demo.get("sites", []) if s.get("role") == "coordinator"]
        hub = os.path.join(fleet, hubs[0] if hubs else "hub")
        if not check(f"the demo left the coordinator's store at fleet/{os.path.basename(hub)}",
                     os.path.isfile(os.path.join(hub, "tierline.sqlite")),
                     f"fleet folder: {sorted(os.listdir(fleet)) if os.path.isdir(fleet) else 'missing'}"):
            return

        # A manager to sign in as, published by the hub (the coordinator) and given a password and a token there.
        global TOKEN
        rc, out, err = run_bounded([BIN, "agent", "add", AGENT, "--display-name", "Dashboard Viewer", "--site", os.path.basename(hub),
                                    "--role", "manager", "--store", hub], 60)
        if not check(f"tierline agent add {AGENT} --role manager at the hub exits 0", rc == 0, err.decode(errors="replace")):
            return
        rc, out, err = run_bounded([BIN, "agent", "password", AGENT, "--generate", "--json", "--store", hub], 60)
        password = json.loads(out).get("password") if rc == 0 else None
        if not check(f"tierline agent password {AGENT} --generate --json prints a password", isinstance(password, str) and len(password) >= 10,
                     err.decode(errors="replace")):
            return
        rc, out, err = run_bounded([BIN, "agent", "token", AGENT, "--label", "dashboard-browser", "--json", "--store", hub], 60)
        TOKEN = json.loads(out).get("token") if rc == 0 else None
        if not check(f"tierline agent token {AGENT} --json prints a tla_ token", isinstance(TOKEN, str) and TOKEN.startswith("tla_"),
                     err.decode(errors="replace")):
            return

        # The escalation ticker off: it would write SLA and ladder records while the checks compare the
        # artefacts with /api/summary (those records are escalation.sh's and the node tests' business).
        config = os.path.join(work, "node.json")
        with open(config, "w") as f:
            json.dump({"escalationMillis": 0}, f)
        log = open(log_path, "w+")
        proc = subprocess.Popen([BIN, "serve", "--store", hub, "--http", "127.0.0.1:0", "--config", config],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        base = None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            # swift-log puts the metadata first: "... address=http://127.0.0.1:PORT/ [tierline] dashboard listening"
            with open(log_path) as f:
                found = [m.group(1) for line in f if "dashboard listening" in line
                         for m in [re.search(r"address=(http://[0-9.]+:\d+)/", line)] if m]
            if found:
                base = found[0]
                break
            time.sleep(0.05)
        if not check(f"tierline serve --http 127.0.0.1:0 logs 'dashboard listening address=http://...' within {START_TIMEOUT} s",
                     base is not None, f"exit code {proc.poll()}\n" + open(log_path).read()[-1500:]):
            return
        print(f"dashboard: {base}/")

        summary = None
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            try:
                summary = get_json(base + "/api/summary")
                last = summary.get("pendingFacts")
                if last == 0:
                    break
            except (OSError, ValueError, AssertionError) as e:
                last = repr(e)
            time.sleep(0.25)
        if not check(f"/api/summary answers with pendingFacts 0 within {START_TIMEOUT} s", isinstance(summary, dict) and last == 0,
                     f"last answer: pendingFacts {last!r}"):
            return
        names = [s["site"] for s in summary["sites"]]
        check(f"/api/summary lists the demo's sites ({', '.join(names)})",
              sorted(names) == sorted(s["site"] for s in demo["sites"]),
              f"summary {sorted(names)}, demo {sorted(s['site'] for s in demo['sites'])}")
        sites = get_json(base + "/api/sites")
        check("/api/sites lists the same sites as /api/summary", [s["site"] for s in sites] == names,
              f"/api/sites {[s.get('site') for s in sites]}")
        metrics = get_json(base + "/api/metrics")

        if chromium is not None:
            browser_checks(chromium, work, base, metrics, password)
        prometheus_checks(base)
        csv_checks(base, metrics)
        bad_query_checks(base, names)
        usage_checks(work)
        check("the node is still running after all requests", proc.poll() is None, f"exit code {proc.poll()}")
    except Exception:  # a crash of this script is a failure, with its traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    check("the node stops within 60 s of SIGTERM", False, "killed with SIGKILL")
                    proc.kill()
                    proc.wait(timeout=5)
            if failed and log is not None:
                log.seek(0)
                print("node log (last lines):")
                for line in log.read().splitlines()[-15:]:
                    print(f"      {line}")
        if log is not None:
            log.close()
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(SCREENSHOT):
            print(f"screenshot: {os.path.relpath(SCREENSHOT, REPO)}")
        print(f"---- {passed} passed, {failed} failed ({int((time.monotonic() - started) * 1000)} ms)")


run()
sys.exit(1 if failed else 0)
