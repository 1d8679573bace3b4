#!/usr/bin/env python3
"""The agent workspace in a real browser, against two real nodes: north (a site) and hq (the hub).

Usage: Tests/CLI/workspace-browser.py [PATH/TO/tierline]      (default: .build/debug/tierline)

hq publishes a configuration (a 3-second first-response SLA for chat, agents nina at north and hal and
aga at hq); both nodes run `tierline serve` with --listen/--peer and --http on 127.0.0.1; passwords and
tokens are made with `tierline agent password` / `agent token`. A chat ticket arrives at north through
the intake API with `<script>` and `onerror=` markup in its subject and message. Then, in headless
Chromium driven by Playwright (Debian's /usr/bin/chromium):

  - signed out, /desk, /api/tickets and /api/events are refused (303 to /login, 401, 401);
  - nina signs in at north through /login, opens the breached queue (waiting until the SLA fact says
    breached), sees the ticket, opens it: the markup is shown as text, no script ran, no element with an
    onerror handler exists, in the queue and the ticket view;
  - hal signs in at hq and opens the handoffs queue before anything is asked of hq;
  - nina replies, then escalates to tier2@hq with the four-part handoff note; hal's open queue shows the
    ticket without a reload (the delay is printed as a figure, not asserted);
  - aga (role agent) is refused 403 when accepting; a session form post without its anti-forgery token
    is refused 403;
  - hal opens the ticket and accepts; north's open ticket page shows the new owner (hq) without a
    reload (delay printed);
  - hq is stopped: north's page shows the banner that the hub is silent, nina adds a note through the
    page and it is stored; hq starts again and the note reaches it; the banner goes.

Screenshots of the queue and the ticket view go to Tests/artifacts/ (workspace-queue.png,
workspace-ticket.png, workspace-offline.png) for people to look at. Bounded waits only: every wait has a
generous limit and nothing asserts a duration. Needs the PyPI package playwright and Debian's chromium.
Prints PASS/FAIL lines; exits 1 if any check fails.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Stop, check, free_port, require, start_node, stop_all, tail, tl  # noqa: E402

harness.find_binary()
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "artifacts")
WAIT = 90             # seconds: the generous bound of every wait for something to appear
PASSWORD = {"nina": "north-secret-1", "hal": "hub-secret-22", "aga": "agent-secret-3"}
MARKUP = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'

CONFIG = {
    "policies": [
        {"name": "chat-fast", "version": 1, "position": 1, "match": {"channel": ["chat"]}, "calendar": "24x7",
         "clocks": {"firstResponse": {"targets": {"normal": "3s", "high": "3s", "urgent": "3s", "low": "3s"}}}},
        {"name": "standard", "version": 1, "position": 2, "match": {}, "calendar": "24x7",
         "clocks": {"firstResponse": {"targets": {"normal": "1d"}}}},
    ],
    "matrix": {"version": 1, "grace": "3s", "entries": []},
    "agents": [
        {"name": "nina", "version": 1, "displayName": "Nina North", "site": "north", "groups": ["tier1"], "role": "lead"},
        {"name": "hal", "version": 1, "displayName": "Hal Hub", "site": "hq", "groups": ["tier2"], "role": "lead"},
        {"name": "aga", "version": 1, "displayName": "Aga Agent", "site": "hq", "groups": ["tier2"], "role": "agent"},
    ],
}


def request(method, url, body=None, headers=None):
    """(status, headers, text) of one bounded HTTP request; redirects are not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if isinstance(body, (dict, list)):
        req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def wait_for(what, predicate, within=WAIT):
    """Polls PREDICATE until it is true or WITHIN seconds pass; True if it became true."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - a page between loads, a store busy: poll again
            pass
        time.sleep(0.25)
    return False


def node_config(work, name, listen, peers, http):
    path = os.path.join(work, f"{name}.json")
    settings = {"listen": f"127.0.0.1:{listen}", "peers": [f"127.0.0.1:{p}" for p in peers], "http": f"127.0.0.1:{http}",
                "pollMillis": 100, "reconnectMinMillis": 100, "reconnectMaxMillis": 1000,
                "workspace": {"hubQuietMillis": 3000}}
    with open(path, "w") as f:
        json.dump(settings, f)
    return path


def sign_in(page, base, name):
    page.goto(f"{base}/desk")
    require(f"{name}: a signed-out /desk leads to the sign-in page", "/login" in page.url, page.url)
    page.get_by_label("Agent name").fill(name)
    page.get_by_label("Password").fill(PASSWORD[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/desk**", timeout=WAIT * 1000)
    check(f"{name} signs in and lands on the workspace", page.url.startswith(f"{base}/desk"), page.url)


def no_script_ran(page, where):
    state = page.evaluate("() => ({xss: window.__xss === undefined ? null : window.__xss, "
                          "handlers: document.querySelectorAll('[onerror], script:not([src])').length})")
    check(f"{where}: the ticket's markup is inert (no script ran, no inline handler or script element)",
          state["xss"] is None and state["handlers"] == 0, state)


def run():
    from playwright.sync_api import sync_playwright
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-workspace.")
    os.makedirs(ARTIFACTS, exist_ok=True)
    try:
        print(f"tierline: {harness.private_copy(work)}")
        stores = harness.setup_stores(work, [("north", "north", "site")])
        north, hq = stores["north"][0], os.path.join(work, "hq")
        cfg = os.path.join(work, "config.json")
        with open(cfg, "w") as f:
            json.dump(CONFIG, f)
        r = tl("config", "publish", cfg, "--store", hq, "--actor", "ops")
        require("hq publishes the SLA policies and the agents", r.returncode == 0, r.stderr)
        hq_sync, north_sync, hq_http, north_http = free_port(), free_port(), free_port(), free_port()
        hq_cfg = node_config(work, "hq", hq_sync, [], hq_http)
        north_cfg = node_config(work, "north", north_sync, [hq_sync], north_http)
        hq_log, north_log = os.path.join(work, "hq.log"), os.path.join(work, "north.log")
        hq_node = start_node(["serve", "--store", hq, "--config", hq_cfg], hq_log, "hq")
        start_node(["serve", "--store", north, "--config", north_cfg], north_log, "north")
        hub, branch = f"http://127.0.0.1:{hq_http}", f"http://127.0.0.1:{north_http}"
        require("north receives the agent directory from hq",
                wait_for("agents at north", lambda: "nina" in tl("agent", "list", "--store", north).stdout), tail(north_log))
        for name, store in [("nina", north), ("hal", hq), ("aga", hq)]:
            pw = os.path.join(work, f"{name}.pw")
            with open(pw, "w") as f:
                f.write(PASSWORD[name] + "\n")
            r = tl("agent", "password", name, "--password-file", pw, "--store", store)
            require(f"agent password {name} at its node", r.returncode == 0, r.stderr)
        r = tl("agent", "token", "aga", "--store", hq, "--json")
        require("agent token aga", r.returncode == 0, r.stderr)
        aga_token = json.loads(r.stdout)["token"]
        r = tl("intake", "token", "add", "chatbridge", "--channel", "chat", "--store", north, "--json")
        require("an intake token at north", r.returncode == 0, r.stderr)
        intake = json.loads(r.stdout)["token"]

        # Signed out: nothing but the sign-in page.
        status, headers, _ = request("GET", f"{branch}/desk?view=breached")
        check("signed out, /desk is a redirect to /login", status == 303 and headers.get("Location", "").startswith("/login"), (status, headers))
        for path in ["/api/tickets", "/api/tickets/NORTH-1", "/api/events", "/api/summary"]:
            status, _, _ = request("GET", f"{branch}{path}")
            check(f"signed out, {path} is 401", status == 401, status)

        status, _, text = request("POST", f"{branch}/api/intake/tickets", {
            "channel": "chat", "subject": f"Checkout fails {MARKUP}", "message": f"It breaks at payment. {MARKUP}",
            "customer": {"email": "kim@example.com", "name": "Kim <b onmouseover=alert(1)>"},
            "externalMessageId": "wb-1", "externalThreadId": "wb-thread-1"}, {"Authorization": f"Bearer {intake}"})
        require("a chat ticket with markup arrives at north through the intake API", status == 201, text)
        ticket = json.loads(text)["ticket"]
        number, ticket_id = ticket["displayNumber"], ticket["id"]

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            north_page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            hub_page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            sign_in(north_page, branch, "nina")
            wrong = browser.new_context().new_page()
            wrong.goto(f"{branch}/login")
            wrong.get_by_label("Agent name").fill("nina")
            wrong.get_by_label("Password").fill("not-her-password")
            wrong.get_by_role("button", name="Sign in").click()
            check("a wrong password stays on the sign-in page with an error",
                  "/login" in wrong.url and "wrong agent name or password" in wrong.content(), wrong.url)

            # The breached queue: the 3-second SLA passes and the dashboard's facts say so.
            def breached_listed():
                north_page.goto(f"{branch}/desk?view=breached")
                return north_page.locator(f"tr[data-ticket='{ticket_id}']").count() == 1
            require("the breached queue lists the chat ticket once its 3 s SLA has passed", wait_for("breached", breached_listed),
                    north_page.content()[:2000])
            no_script_ran(north_page, "the breached queue")
            check("the queue shows the subject's markup as text",
                  "<script>" in north_page.locator(f"tr[data-ticket='{ticket_id}'] td").nth(1).inner_text(), "")
            north_page.screenshot(path=os.path.join(ARTIFACTS, "workspace-queue.png"), full_page=True)

            sign_in(hub_page, hub, "hal")
            hub_page.goto(f"{hub}/desk?view=handoffs")
            check("hal's handoffs queue is empty before north asks", hub_page.locator(f"tr[data-ticket='{ticket_id}']").count() == 0, "")

            north_page.click(f"a[href='/desk/tickets/{number}']")
            north_page.wait_for_url(f"**/desk/tickets/{number}", timeout=WAIT * 1000)
            no_script_ran(north_page, "the ticket view")
            check("the ticket view shows the message's markup as text", "onerror=" in north_page.locator("#history").inner_text(), "")
            north_page.get_by_label("Reply to the customer", exact=True).fill("Thanks Kim, we are on it.")
            north_page.get_by_role("button", name="Send reply").click()
            north_page.wait_for_load_state()
            check("nina's reply is in the history, by nina",
                  wait_for("reply", lambda: "Thanks Kim, we are on it." in north_page.locator("#history").inner_text()), north_page.url)
            north_page.get_by_label("To (group@site)", exact=True).fill("tier2@hq")
            north_page.get_by_label("Summary", exact=True).fill("Checkout fails at payment for a chat customer")
            north_page.get_by_label("Verified facts", exact=True).fill("Card declined message although the bank approves")
            north_page.get_by_label("Steps tried", exact=True).fill("Cleared the cart, tried another browser")
            north_page.get_by_label("Requested action", exact=True).fill("Check the payment gateway logs")
            escalated_at = time.monotonic()
            north_page.get_by_role("button", name="Escalate").click()
            north_page.wait_for_load_state()
            check("the page says the ticket was escalated", wait_for("escalated", lambda: "Escalated" in north_page.content()), north_page.url)

            seen = wait_for("the handoff at hq", lambda: hub_page.locator(f"tr[data-ticket='{ticket_id}']").count() == 1)
            check("hal's open handoffs queue shows the ticket without a reload", seen, hub_page.content()[:1500])
            if seen:
                print(f"figure: the handoff appeared in hq's open page {time.monotonic() - escalated_at:.1f} s after north's click")

            status, _, text = request("POST", f"{hub}/api/tickets/{ticket_id}/handoff/accept", b"",
                                      {"Authorization": f"Bearer {aga_token}", "Content-Type": "application/json"})
            check("aga (role agent) may not accept the handoff: 403", status == 403, (status, text))
            hub_page.click(f"tr[data-ticket='{ticket_id}'] a")
            hub_page.wait_for_url(f"**/desk/tickets/**", timeout=WAIT * 1000)
            check("hq's ticket view shows the four-part handoff note",
                  all(part in hub_page.content() for part in ["Check the payment gateway logs", "Cleared the cart"]), "")
            forged = hub_page.evaluate("""async (id) => {
                const r = await fetch(`/api/tickets/${id}/notes`, {method: 'POST',
                    headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'body=forged'});
                return r.status; }""", ticket_id)
            check("a session form post without the anti-forgery token is refused 403", forged == 403, forged)
            accepted_at = time.monotonic()
            hub_page.get_by_role("button", name="Accept the handoff").click()
            hub_page.wait_for_load_state()
            check("hal's page says the handoff was accepted", wait_for("accepted", lambda: "accepted" in hub_page.content()), hub_page.url)
            moved = wait_for("the new owner at north", lambda: north_page.locator("dd.owner").inner_text().strip() == "hq")
            check("north's open ticket page shows the new owner (hq) without a reload", moved, north_page.locator("dd.owner").inner_text())
            if moved:
                print(f"figure: north's open page showed owner hq {time.monotonic() - accepted_at:.1f} s after hal's click")
            north_page.screenshot(path=os.path.join(ARTIFACTS, "workspace-ticket.png"), full_page=True)

            # The hub goes away: north keeps working, says so, and converges when it is back.
            hq_node.terminate()
            hq_node.wait(timeout=60)
            banner = wait_for("banner", lambda: north_page.locator("#banner").is_visible())
            check("with hq stopped, north's page shows the hub-silence banner", banner, north_page.locator("#banner").inner_text() if banner else "")
            north_page.get_by_label("Internal note", exact=True).fill("Working while the hub is away")
            north_page.get_by_role("button", name="Add note").click()
            north_page.wait_for_load_state()
            check("nina's note is stored at north while hq is down",
                  wait_for("note", lambda: "Working while the hub is away" in tl("ticket", "show", number, "--store", north, "--json").stdout), "")
            north_page.screenshot(path=os.path.join(ARTIFACTS, "workspace-offline.png"), full_page=True)
            start_node(["serve", "--store", hq, "--config", hq_cfg], hq_log, "hq again")
            check("after hq returns, the note reaches it",
                  wait_for("converged", lambda: "Working while the hub is away" in tl("ticket", "show", number, "--store", hq, "--json").stdout),
                  tail(hq_log))
            check("after hq returns, north's banner goes", wait_for("banner gone", lambda: not north_page.locator("#banner").is_visible()), "")
            browser.close()
    except Stop:
        pass
    except Exception:  # noqa: BLE001
        check("the run completes", False, traceback.format_exc())
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    harness.summary("workspace-browser", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    run()
