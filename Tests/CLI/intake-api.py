#!/usr/bin/env python3
"""The intake API end to end: real HTTP on 127.0.0.1 against the real binary, checked with the CLI.

Usage: Tests/CLI/intake-api.py [PATH/TO/tierline]      (default: .build/debug/tierline)

Makes a store (site north) and API tokens with `tierline intake token add`, serves the store with
`tierline serve --http 127.0.0.1:0` (the port is read from the log line `address=http://127.0.0.1:PORT/
... dashboard listening`) and checks the contract of the intake API (Docs/intake-openapi.yaml):

  - each of the 7 channels opens a ticket: 201, `ticket.channel`, and `tierline ticket show --json`
    has the channel and the first message as a `customer_message` event;
  - email replies reach the ticket by `ticket`, by `externalThreadId` and by `[NORTH-n]` in `subject`;
  - redeliveries (same channel and externalMessageId) answer 200 `duplicate: true` and store nothing;
    the same id on another channel is another message;
  - 401 without a token, with a wrong one and with a revoked one; 403 (field `channel`) for a token
    limited to email used for chat;
  - 400 with the exact `field` for bad bodies, 400 for a body that is not JSON, 415 for another
    Content-Type, 413 for a body over 1 MiB, 404 for a ticket, thread or subject that names nothing;
  - text limits count characters, not bytes;
  - a bot handoff: channel `bot`, customer lines as `customer_message`, bot lines as `auto_reply`,
    `firstResponseClockStartedAt`;
  - CSAT: the survey token printed by `ticket update --status solved --json` takes one answer (201,
    then 409), an unknown token is 404, and `ticket show` has custom field `csat_score`;
  - knowledge search answers 200 and names a bad `q` or `limit`;
  - a reply that matches no ticket opens one for its `customer` (or `from`, the old name) by default,
    and is refused (400/404) by a token made with `--unmatched-replies refuse`;
  - `ticket list`, `ticket show`, `customer list` and `customer show` print ESC, BEL and OSC
    sequences of intake text escaped (`--json` keeps the text exactly);
  - on a full disk (the store on a 4 MiB tmpfs, filled by another file; skipped with the reason when
    no tmpfs can be mounted) a new ticket is answered JSON 503, and 201 again once there is room.

Standard library only. Binds 127.0.0.1 only; every request and command is bounded; the node is stopped
by its own pid in a finally block; the temporary folder is removed. Prints PASS/FAIL lines and a
summary; exits 1 if any check failed.
"""
import datetime
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Tests/CLI/harness.py: what the Python CLI scripts share)
from harness import Stop, check, procs, require, start, tail, tl  # noqa: E402

harness.find_binary()
# Bounds only, generous so that a machine whose cores are all busy fails no check: a request takes
# milliseconds and the node logs its port within a second.
HTTP_TIMEOUT = 60          # every HTTP request, in seconds
START_TIMEOUT = 120        # until the node logs its port
CHANNELS = ["email", "chat", "phone", "social", "portal", "bot", "api"]
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DISPLAY_NUMBER = re.compile(r"^NORTH-[0-9]+$")
SUMMARY_KEYS = {"id", "displayNumber", "subject", "status", "priority", "channel", "group", "tags", "customer", "customerTier"}
MIB = 1 << 20

STORE = None
BASE = None
TOKEN = None
TOKENS = {}


class Answer:
    """An HTTP answer: status (None when the request got no answer), headers, text, JSON (or None)."""

    def __init__(self, status, headers, text, error=None):
        self.status = status
        self.headers = headers
        self.text = text
        self.error = error
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None

    def get(self, *path):
        """The value at PATH (keys and indexes) of the JSON body, or None."""
        value = self.json
        for key in path:
            if isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
                value = value[key]
            elif isinstance(key, str) and isinstance(value, dict):
                value = value.get(key)
            else:
                return None
        return value

    def __str__(self):
        if self.status is None:
            return f"no answer: {self.error}"
        return f"status {self.status}, content type {self.headers.get('Content-Type')!r}, body {self.text[:700]!r}"


def call(method, path, body=None, token="default", content_type="application/json", raw=None, authorization=None):
    """Sends METHOD PATH with BODY as JSON (or RAW bytes) and the bearer TOKEN ("default": the test's
    all-channel token; None: no Authorization header). AUTHORIZATION, when given, is sent as the
    Authorization header as it is."""
    data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
    headers = {}
    if data is not None and content_type is not None:
        headers["Content-Type"] = content_type
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = "Bearer " + (TOKEN if token == "default" else token)
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as r:
            return Answer(r.status, r.headers, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read().decode("utf-8", "replace"))
    except (OSError, urllib.error.URLError) as e:
        return Answer(None, {}, "", error=repr(e))


def post(path, body, **kwargs):
    return call("POST", path, body, **kwargs)


def cli_json(*args):
    """`tierline ARGS --json --store STORE` parsed; raises Stop when it fails."""
    r = tl(*args, "--json", "--store", STORE)
    if r.returncode != 0:
        check(f"tierline {' '.join(args)} --json exits 0", False, f"exit {r.returncode}\n{r.stderr[-1500:]}")
        raise Stop(f"tierline {' '.join(args)}")
    return json.loads(r.stdout)


def show(ref):
    return cli_json("ticket", "show", ref)


def ticket_count():
    return len(cli_json("ticket", "list"))


def customer_messages(detail):
    return [e.get("body") for e in detail.get("events", []) if e.get("kind") == "customer_message"]


def check_error(name, answer, status, field=..., detail=""):
    """NAME: ANSWER has STATUS and the error body {"error": non-empty text, "field": FIELD}
    (FIELD ...: any value, the key must be there)."""
    body = answer.json
    ok = (answer.status == status and isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip() != ""
          and "field" in body and (field is ... or body["field"] == field))
    want = f"{status}" + ("" if field is ... else f" with field {field!r}")
    return check(name, ok, f"want {want}; got {answer}" + (f"\n{detail}" if detail else ""))


def new_ticket(channel, n, **extra):
    body = {"channel": channel, "subject": f"{channel} ticket {n}: the app crashes on start",
            "message": f"First message via {channel} ({n}): the app closes as soon as it opens.",
            "customer": {"email": f"{channel}.{n}@example.com", "name": f"Customer {n}"},
            "externalMessageId": f"e2e-{channel}-{n}", "externalThreadId": f"e2e-thread-{channel}-{n}"}
    body.update(extra)
    return body


# ---- the checks -------------------------------------------------------------------------------------

def channel_checks():
    """Each channel opens a ticket. Returns {channel: (request body, answer)}."""
    opened = {}
    for channel in CHANNELS:
        body = new_ticket(channel, 1)
        a = post("/api/intake/tickets", body)
        opened[channel] = (body, a)
        number = a.get("ticket", "displayNumber")
        check(f"{channel}: POST /api/intake/tickets answers 201 with ticket.channel {channel!r} and a display number",
              a.status == 201 and a.get("ticket", "channel") == channel and isinstance(number, str) and DISPLAY_NUMBER.match(number),
              a)
        if a.status != 201 or not isinstance(number, str):
            continue
        detail = show(number)
        check(f"{channel}: ticket show {number} --json has channel {channel!r}", detail.get("channel") == channel,
              f"channel {detail.get('channel')!r}")
        bodies = customer_messages(detail)
        check(f"{channel}: ticket show {number} has the message as its customer_message event",
              bodies == [body["message"]], f"customer_message bodies {bodies}")

    body, a = opened["email"]
    ticket = a.get("ticket")
    check("201 body: duplicate false, a uuid messageId, routing null or {rule, fallback, explanation}, every TicketSummary key",
          a.get("duplicate") is False and isinstance(a.get("messageId"), str) and UUID.match(a.get("messageId"))
          and isinstance(a.json, dict) and "routing" in a.json
          and (a.get("routing") is None or {"rule", "fallback", "explanation"} <= set(a.get("routing")))
          and isinstance(ticket, dict) and SUMMARY_KEYS <= set(ticket) and UUID.match(str(ticket.get("id"))),
          f"{a}\nmissing TicketSummary keys: {sorted(SUMMARY_KEYS - set(ticket or {}))}")
    check("201 body: the ticket has the request's subject, status new, priority normal, customer = the email",
          isinstance(ticket, dict) and ticket.get("subject") == body["subject"] and ticket.get("status") == "new"
          and ticket.get("priority") == "normal" and ticket.get("customer") == body["customer"]["email"], a)
    if a.status == 201:
        events = show(ticket["displayNumber"]).get("events", [])
        ids = [str(e.get("id")).lower() for e in events if e.get("kind") == "customer_message"]
        check("messageId is the id of the customer_message event in ticket show", ids == [str(a.get("messageId")).lower()],
              f"messageId {a.get('messageId')!r}; customer_message ids {ids}")
    return opened


def reply_checks(opened):
    body, a = opened["email"]
    number = a.get("ticket", "displayNumber")
    require("the email ticket was opened (the replies need it)", a.status == 201 and isinstance(number, str), a)
    replies = [
        ("by its number (ticket)", {"channel": "email", "ticket": number, "message": "Reply 1, by number: still crashing.",
                                    "externalMessageId": "e2e-email-1-r1"}),
        ("by externalThreadId", {"channel": "email", "externalThreadId": body["externalThreadId"],
                                 "message": "Reply 2, by thread: here is the crash log.", "externalMessageId": "e2e-email-1-r2"}),
        (f"by [{number}] in the subject", {"channel": "email", "subject": f"Re: [{number}] {body['subject']}",
                                           "message": "Reply 3, by subject: any news?", "externalMessageId": "e2e-email-1-r3"}),
    ]
    want = [body["message"]]
    for how, reply in replies:
        r = post("/api/intake/messages", reply)
        check(f"an email reply {how} answers 201 for {number}, duplicate false, routing null",
              r.status == 201 and r.get("ticket", "displayNumber") == number and r.get("ticket", "id") == a.get("ticket", "id")
              and r.get("duplicate") is False and isinstance(r.json, dict) and "routing" in r.json and r.get("routing") is None
              and UUID.match(str(r.get("messageId"))), r)
        want.append(reply["message"])
        bodies = customer_messages(show(number))
        check(f"ticket show {number}: the reply {how} is the next customer_message event", bodies == want,
              f"want {want}\ngot  {bodies}")

    # Redelivery of a reply: stored once.
    before = customer_messages(show(number))
    r = post("/api/intake/messages", replies[0][1])
    check("a redelivered reply answers 200 with duplicate true and the same ticket",
          r.status == 200 and r.get("duplicate") is True and r.get("ticket", "displayNumber") == number, r)
    after = customer_messages(show(number))
    check(f"the redelivered reply is stored once ({len(before)} customer messages before and after)", after == before,
          f"before {before}\nafter  {after}")
    return number


def duplicate_checks(opened):
    body, first = opened["chat"]
    require("the chat ticket was opened (the redelivery checks need it)", first.status == 201, first)
    count = ticket_count()
    a = post("/api/intake/tickets", body)
    check("a redelivered create (same channel and externalMessageId) answers 200 with duplicate true",
          a.status == 200 and a.get("duplicate") is True, a)
    check("the redelivery names the same ticket and message id",
          a.get("ticket", "id") == first.get("ticket", "id") and a.get("messageId") == first.get("messageId"),
          f"first {first.get('ticket', 'id')} {first.get('messageId')}; again {a.get('ticket', 'id')} {a.get('messageId')}")
    check(f"the redelivery opened no ticket (ticket list --json: {count} before and after)", ticket_count() == count)

    changed = dict(body, subject="A different subject on the same message id")
    a = post("/api/intake/tickets", changed)
    number = first.get("ticket", "displayNumber")
    check("a redelivery with a changed body is still a redelivery (200, duplicate true), and changes nothing",
          a.status == 200 and a.get("duplicate") is True and a.get("ticket", "id") == first.get("ticket", "id")
          and show(number).get("subject") == body["subject"] and ticket_count() == count, a)

    other = dict(body, channel="social")
    a = post("/api/intake/tickets", other)
    check("the same externalMessageId on another channel is another message: 201, a new ticket",
          a.status == 201 and a.get("duplicate") is False and a.get("ticket", "id") not in (None, first.get("ticket", "id"))
          and ticket_count() == count + 1, a)


def auth_checks(tokens):
    body = new_ticket("email", 90)
    check_error("no Authorization header: 401 with field 'Authorization'", post("/api/intake/tickets", body, token=None),
                401, "Authorization")
    check_error("a wrong token: 401 with field 'Authorization'",
                post("/api/intake/tickets", body, token="tl_" + "A" * 43), 401, "Authorization")
    check_error("an Authorization header that is not Bearer: 401 with field 'Authorization'",
                post("/api/intake/tickets", body, authorization="Basic dXNlcjpwYXNz"), 401, "Authorization")
    check_error("GET /api/kb/search without a token: 401", call("GET", "/api/kb/search?q=refund", token=None), 401, "Authorization")

    a = post("/api/intake/tickets", new_ticket("email", 91), token=tokens["later-revoked"])
    check("the token about to be revoked works: 201", a.status == 201, a)
    r = tl("intake", "token", "revoke", "later-revoked", "--store", STORE)
    require("tierline intake token revoke later-revoked exits 0", r.returncode == 0, r.stderr)
    check_error("the revoked token: 401 with field 'Authorization'",
                post("/api/intake/tickets", new_ticket("email", 92), token=tokens["later-revoked"]), 401, "Authorization")

    a = post("/api/intake/tickets", new_ticket("email", 93), token=tokens["mail-only"])
    check("a token limited to --channel email opens an email ticket: 201", a.status == 201, a)
    count = ticket_count()
    check_error("the email-only token used for chat: 403 with field 'channel'",
                post("/api/intake/tickets", new_ticket("chat", 94), token=tokens["mail-only"]), 403, "channel")
    check_error("the email-only token used for a bot handoff (channel bot by default): 403 with field 'channel'",
                post("/api/intake/handoffs", handoff_body(94), token=tokens["mail-only"]), 403, "channel")
    check("the refused requests opened no ticket", ticket_count() == count)


def bad_request_checks(email_number):
    count = ticket_count()
    base = new_ticket("email", 50)
    missing = {k: v for k, v in base.items() if k != "subject"}
    check_error("a missing subject: 400 with field 'subject'", post("/api/intake/tickets", missing), 400, "subject")
    check_error("an unknown key 'colour': 400 with field 'colour'", post("/api/intake/tickets", dict(base, colour="blue")),
                400, "colour")
    check_error("an unknown key inside customer: 400 with field 'customer.nickname'",
                post("/api/intake/tickets", dict(base, customer={"email": "a@example.com", "nickname": "A"})), 400, "customer.nickname")
    bad_size = dict(base, attachments=[{"name": "log.txt", "contentType": "text/plain", "size": "large"}])
    check_error("attachments[0].size of the wrong type: 400 with field 'attachments[0].size'",
                post("/api/intake/tickets", bad_size), 400, "attachments[0].size")
    check_error("channel 'fax': 400 with field 'channel'", post("/api/intake/tickets", dict(base, channel="fax")), 400, "channel")
    check_error("a customer with no id, email or phone: 400 with field 'customer'",
                post("/api/intake/tickets", dict(base, customer={"name": "Nobody"})), 400, "customer")
    check_error("a customer whose only email is blank: 400 with field 'customer'",
                post("/api/intake/tickets", dict(base, customer={"email": "   "})), 400, "customer")
    check_error("a message of only whitespace: 400 with field 'message'",
                post("/api/intake/tickets", dict(base, message=" \n\t ")), 400, "message")
    check_error("category null (omit a key instead): 400 with field 'category'",
                post("/api/intake/tickets", dict(base, category=None)), 400, "category")
    check_error("priority 'asap': 400 with field 'priority'", post("/api/intake/tickets", dict(base, priority="asap")),
                400, "priority")
    check_error("21 tags: 400 with field 'tags'", post("/api/intake/tickets", dict(base, tags=[f"t{i}" for i in range(21)])),
                400, "tags")
    check_error("a body that is not JSON: 400 with field null",
                post("/api/intake/tickets", None, raw=b'{"channel": "email", "subject": '), 400, None)
    check_error("a JSON array instead of an object: 400", post("/api/intake/tickets", [base]), 400)
    check_error("Content-Type text/plain: 415", post("/api/intake/tickets", base, content_type="text/plain"), 415)
    big = dict(base, message="x" * (MIB + 1024))
    check_error("a body over 1 MiB: 413", post("/api/intake/tickets", big), 413)
    check("none of the refused requests opened a ticket", ticket_count() == count, f"{count} before, {ticket_count()} after")

    reply = {"channel": "email", "message": "Where is my ticket?"}
    strict = TOKENS["strict"]  # made with --unmatched-replies refuse
    check_error("a reply naming no ticket, thread or subject, by an integration that refuses unmatched replies: 400 with field 'ticket'",
                post("/api/intake/messages", reply, token=strict), 400, "ticket")
    check_error("a reply to an unknown ticket: 404 with field 'ticket'",
                post("/api/intake/messages", dict(reply, ticket="NORTH-99999")), 404, "ticket")
    check_error("a reply to an unknown thread (refusing integration): 404 with field 'externalThreadId'",
                post("/api/intake/messages", dict(reply, externalThreadId="e2e-no-such-thread"), token=strict), 404, "externalThreadId")
    check_error("a reply whose subject names an unknown ticket (refusing integration): 404 with field 'subject'",
                post("/api/intake/messages", dict(reply, subject="Re: [NORTH-99999] lost"), token=strict), 404, "subject")
    check_error("a reply to an unknown thread by the default integration, without customer (nobody to open a ticket for): 404 with field 'externalThreadId'",
                post("/api/intake/messages", dict(reply, externalThreadId="e2e-no-such-thread")), 404, "externalThreadId")
    check_error("a reply naming nothing, without customer: 400 with field 'ticket'", post("/api/intake/messages", reply), 400, "ticket")
    check("none of the refused replies opened a ticket", ticket_count() == count, f"{count} before, {ticket_count()} after")
    a = post("/api/intake/messages", dict(reply, externalThreadId="e2e-lost-thread", externalMessageId="e2e-lost-1",
                                          customer={"email": "lost@example.com"}))
    check("a reply to an unknown thread with its customer, by the default integration: 201, openedTicket true, a new ticket",
          a.status == 201 and a.get("openedTicket") is True and a.get("ticket", "customer") == "lost@example.com"
          and ticket_count() == count + 1, a)
    a = post("/api/intake/messages", dict(reply, externalThreadId="e2e-lost-thread", message="Hello?", externalMessageId="e2e-lost-2",
                                          **{"from": {"email": "lost@example.com"}}))
    check("the next message of that thread (customer given as `from`, its old name) lands on it: 201, openedTicket false",
          a.status == 201 and a.get("openedTicket") is False and ticket_count() == count + 1, a)
    before = customer_messages(show(email_number))
    check_error("a reply with an unknown key: 400 with field 'cc'",
                post("/api/intake/messages", dict(reply, ticket=email_number, cc="x@example.com")), 400, "cc")
    check("the refused replies added nothing", customer_messages(show(email_number)) == before)


def limit_checks():
    """Text limits count characters (Swift's String.count), not bytes."""
    wide = new_ticket("portal", 60, subject="é" * 1000, customer={"id": "é" * 200})
    a = post("/api/intake/tickets", wide)
    check("a subject of 1000 'é' (2000 bytes) and a customer id of 200 'é': 201", a.status == 201, a)
    if a.status == 201:
        detail = show(a.get("ticket", "displayNumber"))
        check("ticket show has the 1000-character subject whole", detail.get("subject") == "é" * 1000,
              f"subject of {len(detail.get('subject') or '')} characters")
    a = post("/api/intake/tickets", new_ticket("portal", 61, message="😀" * 16000))
    check("a message of 16000 emoji (64000 bytes): 201", a.status == 201, a)
    check_error("a subject of 1001 characters: 400 with field 'subject'",
                post("/api/intake/tickets", new_ticket("portal", 62, subject="a" * 1001)), 400, "subject")
    check_error("a message of 16001 characters: 400 with field 'message'",
                post("/api/intake/tickets", new_ticket("portal", 63, message="a" * 16001)), 400, "message")
    check_error("a tag of 65 characters: 400 with field 'tags[0]'",
                post("/api/intake/tickets", new_ticket("portal", 64, tags=["a" * 65])), 400, "tags[0]")


def handoff_body(n, **extra):
    body = {"bot": "helper-bot", "customer": {"id": f"crm-{n}", "name": "Robin"}, "subject": f"Bot handoff {n}: refund",
            "transcript": [{"from": "customer", "text": f"I want a refund ({n})."},
                           {"from": "bot", "text": "I can look at your last order."},
                           {"from": "customer", "text": "Please get me a person."}],
            "reason": "the customer asked for a person", "externalMessageId": f"e2e-handoff-{n}"}
    body.update(extra)
    return body


def handoff_checks():
    body = handoff_body(1)
    sent = datetime.datetime.now(datetime.timezone.utc)
    a = post("/api/intake/handoffs", body)
    answered = datetime.datetime.now(datetime.timezone.utc)
    number = a.get("ticket", "displayNumber")
    check("POST /api/intake/handoffs answers 201 with ticket.channel 'bot' (the default) and duplicate false",
          a.status == 201 and a.get("ticket", "channel") == "bot" and a.get("duplicate") is False and isinstance(number, str), a)
    started = a.get("firstResponseClockStartedAt")
    try:
        at = datetime.datetime.fromisoformat(started.replace("Z", "+00:00")) if isinstance(started, str) else None
    except ValueError:
        at = None
    # Between the request and its answer (a second of slack either way for a time written in whole seconds).
    slack = datetime.timedelta(seconds=1)
    check("firstResponseClockStartedAt is an ISO 8601 time of the handoff (between the request and its answer)",
          at is not None and at.tzinfo is not None and sent - slack <= at <= answered + slack,
          f"firstResponseClockStartedAt {started!r}; request sent at {sent.isoformat()}, answered at {answered.isoformat()}")
    if a.status != 201 or not isinstance(number, str):
        return
    detail = show(number)
    check(f"ticket show {number} has channel 'bot'", detail.get("channel") == "bot", f"channel {detail.get('channel')!r}")
    lines = body["transcript"]
    want_customer = [t["text"] for t in lines if t["from"] == "customer"]
    want_bot = [t["text"] for t in lines if t["from"] == "bot"]
    events = detail.get("events", [])
    got_customer = [e.get("body") for e in events if e.get("kind") == "customer_message"]
    got_bot = [e.get("body") for e in events if e.get("kind") == "auto_reply"]
    check("the transcript's customer lines are customer_message events", got_customer == want_customer,
          f"want {want_customer}\ngot  {got_customer}")
    check("the transcript's bot lines are auto_reply events", got_bot == want_bot, f"want {want_bot}\ngot  {got_bot}")
    order = [e.get("body") for e in events if e.get("kind") in ("customer_message", "auto_reply")]
    check("ticket show lists the transcript in its order", order == [t["text"] for t in lines], f"order {order}")

    count = ticket_count()
    again = post("/api/intake/handoffs", body)
    check("a redelivered handoff answers 200, duplicate true, the same ticket, firstResponseClockStartedAt, no new ticket",
          again.status == 200 and again.get("duplicate") is True and again.get("ticket", "id") == a.get("ticket", "id")
          and isinstance(again.get("firstResponseClockStartedAt"), str) and ticket_count() == count, again)
    check_error("a transcript line from 'agent': 400 with field 'transcript[1].from'",
                post("/api/intake/handoffs", handoff_body(2, transcript=[{"from": "customer", "text": "hi"},
                                                                         {"from": "agent", "text": "hello"}])),
                400, "transcript[1].from")
    check_error("an empty transcript: 400 with field 'transcript'",
                post("/api/intake/handoffs", handoff_body(3, transcript=[])), 400, "transcript")
    a = post("/api/intake/handoffs", handoff_body(4, channel="chat"))
    check("a handoff with channel 'chat' opens a chat ticket", a.status == 201 and a.get("ticket", "channel") == "chat", a)


def csat_checks(number, second):
    solved = cli_json("ticket", "update", number, "--status", "solved")
    token = solved.get("surveyToken")
    require(f"ticket update {number} --status solved --json prints a surveyToken", isinstance(token, str) and token != "",
            f"keys {sorted(solved)}; surveyToken {token!r}")
    answer = {"token": token, "score": 5, "comment": "Fixed quickly, thanks."}
    a = post("/api/intake/csat", answer)
    check(f"POST /api/intake/csat with the token and score 5: 201 {{ticket: {number}, score: 5, comment}}",
          a.status == 201 and a.get("ticket") == number and a.get("score") == 5 and a.get("comment") == answer["comment"], a)
    check_error("the same survey answered again: 409 with field 'token'", post("/api/intake/csat", answer), 409, "token")
    check_error("an unknown survey token: 404 with field 'token'",
                post("/api/intake/csat", dict(answer, token="cs_" + "Q" * 24)), 404, "token")
    fields = show(number).get("customFields") or {}
    check(f"ticket show {number} --json has customFields csat_score '5'", fields.get("csat_score") == "5", f"customFields {fields}")

    if not check("the phone ticket is there for a second survey", isinstance(second, str), second):
        return
    solved = cli_json("ticket", "update", second, "--status", "solved")
    token = solved.get("surveyToken")
    check_error("score 6: 400 with field 'score'", post("/api/intake/csat", {"token": str(token), "score": 6}), 400, "score")
    check_error("score '5' as text: 400 with field 'score'", post("/api/intake/csat", {"token": str(token), "score": "5"}),
                400, "score")
    a = post("/api/intake/csat", {"token": str(token), "score": 3, "comment": "é" * 1000})
    check("a comment of 1000 'é' (2000 bytes) is within the 1000-character limit: 201", a.status == 201, a)


def kb_checks(solved):
    a = call("GET", "/api/kb/search?q=crash&limit=5")
    check("GET /api/kb/search?q=crash&limit=5 before any article: 200 {query: 'crash', results: []}",
          a.status == 200 and a.get("query") == "crash" and a.get("results") == [], a)
    r = tl("kb", "add", solved, "--title", "App crashes on start after the update", "--summary", "Clear the app cache.",
           "--root-cause", "A stale cache from the old version.", "--steps", "Settings, Storage, Clear cache; start the app again.",
           "--store", STORE)
    require(f"tierline kb add {solved} (an article to search for)", r.returncode == 0, r.stderr)
    a = call("GET", "/api/kb/search?q=crashes&limit=5")
    hit = a.get("results", 0)
    check("GET /api/kb/search?q=crashes finds it: {id: uuid, ref: KB-8 hex, title, summary, site north, score: number}",
          a.status == 200 and len(a.get("results") or []) == 1 and isinstance(hit, dict) and UUID.match(str(hit.get("id")))
          and re.fullmatch(r"KB-[0-9a-f]{8}", str(hit.get("ref"))) is not None and hit.get("title") == "App crashes on start after the update"
          and hit.get("summary") == "Clear the app cache." and hit.get("site") == "north"
          and isinstance(hit.get("score"), (int, float)) and not isinstance(hit.get("score"), bool), a)
    check_error("GET /api/kb/search without q: 400 with field 'q'", call("GET", "/api/kb/search"), 400, "q")
    check_error("GET /api/kb/search?q=x&limit=0: 400 with field 'limit'", call("GET", "/api/kb/search?q=x&limit=0"), 400, "limit")
    check_error("GET /api/kb/search?q=x&limit=51: 400 with field 'limit'", call("GET", "/api/kb/search?q=x&limit=51"), 400, "limit")


def serve(store, log_path):
    """Starts `tierline serve --store STORE --http 127.0.0.1:0`; returns the process and its base URL."""
    node = start(["serve", "--store", store, "--http", "127.0.0.1:0"], log_path, stdout=subprocess.DEVNULL)
    base = None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and node.poll() is None and base is None:
        # swift-log writes the metadata first: "... address=http://127.0.0.1:PORT/ [tierline] dashboard listening"
        with open(log_path, errors="replace") as f:
            for line in f:
                m = re.search(r"address=(http://127\.0\.0\.1:\d+)/", line) if "dashboard listening" in line else None
                if m:
                    base = m.group(1)
                    break
        if base is None:
            time.sleep(0.05)
    require(f"tierline serve --http 127.0.0.1:0 logs 'dashboard listening address=http://127.0.0.1:PORT/' within {START_TIMEOUT} s",
            base is not None, f"exit code {node.poll()}\n{tail(log_path)}")
    return node, base


def terminal_checks():
    """Intake text with ESC, BEL and OSC sequences reaches the terminal escaped: an OSC 52 would
    write to the operator's clipboard, others move the cursor or recolour the screen."""
    nasty = "Printer \x1b]52;c;cm0gLXJmIH4=\x07 jams \x1b[31mred\x1b[0m \x07 \x9b2J \u202egnp.exe"
    body = new_ticket("chat", 70, subject=nasty, message="It prints \x1b[2J garbage\nand beeps \x07",
                      customer={"email": "esc@example.com", "name": "Eve \x1b[2J", "organization": "Acme \x1b]0;pwned\x07"})
    a = post("/api/intake/tickets", body)
    require("a ticket whose subject, message and customer hold ESC, BEL and OSC sequences is taken: 201", a.status == 201, a)
    number = a.get("ticket", "displayNumber")
    for args in [("ticket", "list"), ("ticket", "show", number), ("customer", "list"), ("customer", "show", "esc@example.com")]:
        r = tl(*args, "--store", STORE)
        raw = [c for c in ("\x1b", "\x07", "\x9b", "\u202e") if c in r.stdout]
        check(f"tierline {' '.join(args)} writes no ESC, BEL, CSI or right-to-left override; they show as \\u{{1b}}, \\u{{7}}, \\u{{202e}}",
              r.returncode == 0 and not raw and ("ticket" not in args or "\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}" in r.stdout),
              f"exit {r.returncode}; raw {raw!r}\n{r.stdout[-1500:]}{r.stderr[-500:]}")
    r = tl("customer", "list", "--limit", "1", "--json", "--store", STORE)
    listed = json.loads(r.stdout) if r.returncode == 0 else None
    check("customer list --limit 1 lists one customer and says on stderr that there are more",
          isinstance(listed, list) and len(listed) == 1 and "there are more" in r.stderr, f"exit {r.returncode}; {r.stdout[-300:]}{r.stderr[-300:]}")
    r = tl("ticket", "show", number, "--json", "--store", STORE)
    detail = json.loads(r.stdout) if r.returncode == 0 else {}
    raw = [c for c in ("\x1b", "\x07", "\x9b") if c in r.stdout]
    check("ticket show --json keeps the subject exactly, every control character (C1 too) written as a JSON \\u escape",
          not raw and detail.get("subject") == nasty and customer_messages(detail) == [body["message"]],
          f"raw {raw!r}; subject {detail.get('subject')!r}")


def disk_full_checks(work):
    """A node whose disk is full answers JSON 503 (not an empty 500) and takes requests again once
    there is room: its store on a small tmpfs, filled up by another file."""
    if os.geteuid() != 0:
        print("SKIP the full-disk check: mounting a small tmpfs needs root")
        return
    mount = os.path.join(work, "small-disk")
    os.makedirs(mount)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        print(f"SKIP the full-disk check: cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
        return
    node = None
    try:
        store = os.path.join(mount, "north")
        r = tl("init", "--site", "north", "--role", "site", "--store", store)
        require("tierline init on a 4 MiB tmpfs", r.returncode == 0, r.stderr)
        r = tl("intake", "token", "add", "small", "--json", "--store", store)
        require("intake token add on the tmpfs store", r.returncode == 0, r.stderr)
        token = json.loads(r.stdout)["token"]
        log_path = os.path.join(work, "small-node.log")
        node, base = serve(store, log_path)

        def deliver(n):
            body = json.dumps(new_ticket("email", 800 + n, message=f"full disk {n} " + "x" * 15000)).encode()
            request = urllib.request.Request(base + "/api/intake/tickets", data=body, method="POST",
                                             headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
            try:
                with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:
                    return Answer(answer.status, answer.headers, answer.read().decode("utf-8", "replace"))
            except urllib.error.HTTPError as e:
                return Answer(e.code, e.headers, e.read().decode("utf-8", "replace"))

        check("the node on the tmpfs takes a ticket: 201", deliver(0).status == 201)
        filler = os.path.join(mount, "filler")
        # Unbuffered: a buffered file keeps what a full disk refused and tries it again on close,
        # which raises ENOSPC out of the `with`.
        with open(filler, "wb", buffering=0) as f:
            try:
                for _ in range(4096):  # at most 64 MiB; the tmpfs holds 4
                    f.write(b"\0" * 16384)
                    f.flush()
            except OSError:
                pass
        # SQLite may still have room in its WAL: deliver until a request is refused (bounded).
        refused = None
        for n in range(1, 60):
            a = deliver(n)
            if a.status != 201:
                refused = a
                break
        check_error("with the disk full, a new ticket is answered 503 with a JSON error (field null)", refused or Answer(201, {}, ""), 503, None,
                    tail(log_path))
        os.remove(filler)
        check("with room again, the node takes the ticket: 201", deliver(99).status == 201)
        check("the node still runs", node.poll() is None, tail(log_path))
    finally:
        if node is not None and node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(timeout=30)
        subprocess.run(["umount", mount], capture_output=True, timeout=30)


def run():
    global STORE, BASE, TOKEN
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-intake-api.")
    log_path = os.path.join(work, "node.log")
    node = None
    try:
        print(f"tierline: {harness.private_copy(work)}")
        STORE = os.path.join(work, "north")
        r = tl("init", "--site", "north", "--role", "site", "--store", STORE)
        require("tierline init --site north --role site", r.returncode == 0, r.stderr)
        tokens = {}
        for name, channels in [("e2e", []), ("mail-only", ["email"]), ("later-revoked", []), ("strict", [])]:
            made = cli_json("intake", "token", "add", name, *[a for c in channels for a in ("--channel", c)],
                            *(["--unmatched-replies", "refuse"] if name == "strict" else []))
            tokens[name] = made.get("token")
            check(f"intake token add {name} --json: name, a tl_ token of 43 base64url characters, channels {channels}",
                  made.get("name") == name and isinstance(made.get("token"), str)
                  and re.fullmatch(r"tl_[A-Za-z0-9_-]{43}", made["token"]) is not None and made.get("channels") == channels,
                  json.dumps(made)[:500])
        TOKEN = tokens["e2e"]
        TOKENS.update(tokens)
        check("intake token list --json: strict refuses unmatched replies, the others open a ticket",
              {t.get("name"): t.get("unmatchedReplies") for t in cli_json("intake", "token", "list")}
              == {"e2e": "open", "mail-only": "open", "later-revoked": "open", "strict": "refuse"})
        require("the tokens were made", all(isinstance(t, str) for t in tokens.values()), tokens)

        node, BASE = serve(STORE, log_path)
        print(f"intake API: {BASE}/api/intake/")

        opened = channel_checks()
        email_number = reply_checks(opened)
        duplicate_checks(opened)
        auth_checks(tokens)
        bad_request_checks(email_number)
        limit_checks()
        handoff_checks()
        csat_checks(email_number, opened["phone"][1].get("ticket", "displayNumber"))
        kb_checks(email_number)
        terminal_checks()
        disk_full_checks(work)
        check("the node still runs after all requests", node.poll() is None, f"exit code {node.poll()}\n{tail(log_path)}")
        harness.check_stops(node, log_path)
    except Stop:
        print("(stopping: later checks depend on this step)")
    except Exception:  # a crash of this script is a failure, with its traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        harness.stop_all()
        if harness.failed and os.path.exists(log_path):
            print("node log (last lines):\n" + tail(log_path))
        shutil.rmtree(work, ignore_errors=True)
        harness.summary("intake-api", started)


run()
sys.exit(1 if harness.failed else 0)
