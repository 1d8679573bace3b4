#!/usr/bin/env python3
"""Writes Protocol/vectors/blocks.json: test vectors for section 1 of Protocol/PROTOCOL.md.

This is an implementation of the block encoding written from the specification alone, independent
of the Swift code in Sources/TicketModel. The Swift test suite decodes every vector and re-creates
some of them with `Block.make`, so the two implementations are checked against each other.

Usage:  python3 Protocol/tools/make_vectors.py        (needs the `cryptography` package)

The output is deterministic: Ed25519 signatures are deterministic and all inputs are fixed.
"""

import hashlib
import json
import os
import re
import uuid as uuidlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# ---------------------------------------------------------------------------------------------
# Constants of section 1

VERSION = 1
SIGNATURE_BYTES = 64
MAX_BLOCK_BYTES = 1 << 20
MAX_CHANGES = 256
MAX_DEPS = 4096
MAX_DOTS = 4096
MAX_TEXT = 4096
MAX_BODY = 65536
MAX_NAME = 256
MAX_SITE = 32

ENTITY_TICKET, ENTITY_CONFIG, ENTITY_CUSTOMER, ENTITY_ARTICLE = 1, 2, 3, 4
RECORD_KINDS = {ENTITY_CUSTOMER, ENTITY_ARTICLE}
OP_CREATE, OP_SET, OP_ADD, OP_REMOVE, OP_EVENT = 1, 2, 3, 4, 5
SETS = {"tags": 1, "watchers": 2, "links": 3}
EVENT_KINDS = {"customer_message": 1, "agent_reply": 2, "internal_note": 3, "handoff_note": 4,
               "auto_reply": 5, "escalation": 6, "config_version": 7, "attachment": 8,
               "attribution": 9}
VISIBILITY = {"public": 1, "internal": 2}
TAG_NULL, TAG_TEXT, TAG_INTEGER, TAG_FLAG, TAG_TICKET, TAG_LEVEL, TAG_OWNER = range(7)
CUSTOM = 0xFF

STATUSES = {"new", "open", "pending_customer", "pending_third_party", "on_hold", "solved", "closed"}
PRIORITIES = {"low", "normal", "high", "urgent"}

# field name -> (code, accepted value kinds, optional text domain)
FIELDS = {
    "subject": (1, {"text"}, None),
    "status": (2, {"text"}, STATUSES),
    "priority": (3, {"text"}, PRIORITIES),
    "assignee": (4, {"text", "null"}, None),
    "group": (5, {"text", "null"}, None),
    "category": (6, {"text", "null"}, None),
    "customer": (7, {"text", "null"}, None),
    "channel": (8, {"text", "null"}, None),
    "pending_until": (9, {"integer", "null"}, None),
    "escalation": (10, {"level"}, None),
    "owning_site": (11, {"owner"}, None),
    "merged_into": (12, {"ticket", "null"}, None),
    "deleted": (13, {"flag"}, None),
}
CUSTOM_KINDS = {"text", "null"}

SITE_RE = re.compile(r"\A[a-z][a-z0-9-]{0,31}\Z")

# ---------------------------------------------------------------------------------------------
# Primitives (1.1)


def uvarint(n):
    assert 0 <= n < 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def svarint(n):
    assert -(1 << 63) <= n < 1 << 63
    return uvarint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def u64(n):
    return n.to_bytes(8, "big")


def string(s, limit):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    assert len(b) <= limit, f"string of {len(b)} bytes over {limit}"
    return uvarint(len(b)) + b


def raw_string(b):
    """A string with no checks at all, for invalid vectors."""
    b = b.encode("utf-8") if isinstance(b, str) else bytes(b)
    return uvarint(len(b)) + b


def uuid(text):
    return uuidlib.UUID(text).bytes


def check_site(s):
    assert SITE_RE.match(s), f"bad site id {s!r}"
    return s


def site(s):
    return string(check_site(s), MAX_SITE)


def site_key(s):
    """Bytewise order of site ids (they are ASCII, so this is the UTF-8 byte order)."""
    return s.encode("ascii")


# ---------------------------------------------------------------------------------------------
# Values (1.6) and changes (1.5)
#
# A value is a tuple: ("null",), ("text", s), ("integer", n), ("flag", b), ("ticket", uuid-text),
# ("level", cycle, level), ("owner", epoch, site).


def encode_value(v):
    kind = v[0]
    if kind == "null":
        return bytes([TAG_NULL])
    if kind == "text":
        return bytes([TAG_TEXT]) + string(v[1], MAX_TEXT)
    if kind == "integer":
        return bytes([TAG_INTEGER]) + svarint(v[1])
    if kind == "flag":
        return bytes([TAG_FLAG, 1 if v[1] else 0])
    if kind == "ticket":
        return bytes([TAG_TICKET]) + uuid(v[1])
    if kind == "level":
        return bytes([TAG_LEVEL]) + uvarint(v[1]) + uvarint(v[2])
    if kind == "owner":
        return bytes([TAG_OWNER]) + uvarint(v[1]) + site(v[2])
    raise ValueError(kind)


def validate_set(field, value):
    if field.startswith("custom:"):
        name = field[len("custom:"):].encode("utf-8")
        assert 1 <= len(name) <= MAX_NAME
        assert value[0] in CUSTOM_KINDS
        return
    _, kinds, domain = FIELDS[field]
    assert value[0] in kinds, f"{field} does not take {value[0]}"
    if domain is not None:
        assert value[1] in domain, f"{field} does not take {value[1]!r}"


# A change is a dict with "entity" (uuid text) and "op", plus the op's fields.


def create(entity, number):
    return {"entity": entity, "op": "create", "number": number}


def set_(entity, field, value):
    return {"entity": entity, "op": "set", "field": field, "value": value}


def add(entity, set_name, element):
    return {"entity": entity, "op": "add", "set": set_name, "element": element}


def remove(entity, set_name, element, dots):
    return {"entity": entity, "op": "remove", "set": set_name, "element": element, "dots": dots}


def event(entity, event_id, kind, visibility, actor, body):
    return {"entity": entity, "op": "event", "id": event_id, "kind": kind, "visibility": visibility,
            "actor": actor, "body": body}


def encode_change(c):
    kind = c.get("entityKind", ENTITY_TICKET)
    out = bytes([kind]) + uuid(c["entity"])
    op = c["op"]
    # Schema 2: a configuration entity takes only config_version events, and only it does.
    assert (kind == ENTITY_CONFIG) == (op == "event" and c.get("kind") == "config_version")
    # Schema 3: customers and articles take only sets of custom fields to text or null.
    if kind in RECORD_KINDS:
        assert op == "set" and c["field"].startswith("custom:")
    if op == "create":
        assert c["number"] >= 1
        return out + bytes([OP_CREATE]) + uvarint(c["number"])
    if op == "set":
        field, value = c["field"], c["value"]
        validate_set(field, value)
        if field.startswith("custom:"):
            head = bytes([CUSTOM]) + string(field[len("custom:"):], MAX_NAME)
        else:
            head = bytes([FIELDS[field][0]])
        return out + bytes([OP_SET]) + head + encode_value(value)
    if op in ("add", "remove"):
        element = c["element"]
        assert len(element.encode("utf-8")) >= 1
        out += bytes([OP_ADD if op == "add" else OP_REMOVE, SETS[c["set"]]]) + string(element, MAX_NAME)
        if op == "add":
            return out
        dots = sorted(set(c["dots"]), key=lambda d: (site_key(d[0]), d[1], d[2]))
        assert len(dots) <= MAX_DOTS
        out += uvarint(len(dots))
        for origin, seq, index in dots:
            assert seq >= 1 and 0 <= index < MAX_CHANGES
            out += site(origin) + uvarint(seq) + uvarint(index)
        return out
    if op == "event":
        return (out + bytes([OP_EVENT]) + uuid(c["id"]) + bytes([EVENT_KINDS[c["kind"]], VISIBILITY[c["visibility"]]])
                + string(c["actor"], MAX_NAME) + string(c["body"], MAX_BODY))
    raise ValueError(op)


def encode_body(origin, seq, hlc, deps, changes):
    """The canonical body (1.2), checking every rule an encoder is responsible for."""
    check_site(origin)
    assert 1 <= seq < 1 << 63 and 0 <= hlc < 1 << 64
    deps = {s: n for s, n in deps.items() if n != 0}
    assert deps.get(origin, 0) == seq - 1, "deps must name seq - 1 for the origin"
    assert len(deps) <= MAX_DEPS
    assert 1 <= len(changes) <= MAX_CHANGES
    registers = set()
    for c in changes:
        if c["op"] == "set":
            key = (c["entity"], c["field"])
            assert key not in registers, f"two sets of {key}"
            registers.add(key)
    out = bytes([VERSION]) + site(origin) + uvarint(seq) + u64(hlc)
    out += uvarint(len(deps))
    for s in sorted(deps, key=site_key):
        out += site(s) + uvarint(deps[s])
    out += uvarint(len(changes))
    for c in changes:
        out += encode_change(c)
    return out


# ---------------------------------------------------------------------------------------------
# Keys, signing, hashing (1.7, 1.8)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))


def public_hex(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(body, key=KEY):
    sig = key.sign(body)
    assert len(sig) == SIGNATURE_BYTES
    return sig


def hlc(millis, counter=0):
    assert millis < 1 << 48 and counter < 1 << 16
    return millis << 16 | counter


# ---------------------------------------------------------------------------------------------
# Fixed ids

T1 = "3f2a8c10-5b7e-4c1d-9a6f-0e1d2c3b4a59"
T2 = "6c0ffee0-0000-4000-8000-000000000002"
T3 = "00000000-0000-0000-0000-000000000000"
T4 = "ffffffff-ffff-ffff-ffff-ffffffffffff"
E1 = "e0000000-0000-7000-8000-000000000001"
E2 = "e0000000-0000-7000-8000-000000000002"
E3 = "e0000000-0000-7000-8000-000000000003"
E4 = "e0000000-0000-7000-8000-000000000004"
E5 = "e0000000-0000-7000-8000-000000000005"
E6 = "e0000000-0000-7000-8000-000000000006"
E7 = "e0000000-0000-7000-8000-000000000007"

H0 = hlc(1_700_000_000_000)

valid = []
invalid = []


def add_valid(name, description, origin, seq, stamp, deps, changes, key=KEY):
    body = encode_body(origin, seq, stamp, deps, changes)
    block = body + sign(body, key)
    assert len(block) <= MAX_BLOCK_BYTES
    valid.append({
        "name": name,
        "description": description,
        "hex": block.hex(),
        "publicKey": public_hex(KEY),
        "signatureValid": key is KEY,
        "hash": hashlib.sha256(body).hexdigest(),
        "origin": origin,
        "seq": seq,
        "hlc": stamp,
        "deps": {s: n for s, n in sorted(deps.items(), key=lambda e: site_key(e[0])) if n != 0},
        "changeCount": len(changes),
    })
    return body


def add_invalid(name, description, body, error, signed=True):
    """`body` is the (bad) body; a signature over it is appended unless `signed` is False."""
    data = body + sign(body) if signed else body
    invalid.append({"name": name, "description": description, "hex": data.hex(), "error": error})


# ---------------------------------------------------------------------------------------------
# Valid vectors

ticket_changes = [
    create(T1, 1),
    set_(T1, "subject", ("text", "Printer offline on floor 3")),
    set_(T1, "status", ("text", "new")),
    set_(T1, "priority", ("text", "high")),
    set_(T1, "assignee", ("null",)),
    set_(T1, "group", ("text", "it-support")),
    set_(T1, "category", ("text", "hardware")),
    set_(T1, "customer", ("text", "ACME Corp")),
    set_(T1, "channel", ("text", "email")),
    set_(T1, "pending_until", ("integer", -1_234_567_890_123)),
    set_(T1, "escalation", ("level", 1, 2)),
    set_(T1, "owning_site", ("owner", 3, "north")),
    set_(T1, "merged_into", ("ticket", T2)),
    set_(T1, "deleted", ("flag", False)),
    set_(T1, "custom:région", ("text", "Île-de-France")),
    set_(T1, "custom:sla-tier", ("null",)),
]
ticket_body = add_valid(
    "ticket-create-and-sets",
    "Block 1 of north: creates ticket NORTH-1 and sets every built-in field once (text, null, integer "
    "(negative), level, owner, ticket, flag) and two custom fields (one with a non-ASCII name and value, "
    "one null).",
    "north", 1, H0, {}, ticket_changes)

tag_changes = [
    add(T1, "tags", "printer"),
    add(T1, "watchers", "alice@north"),
    add(T1, "links", "https://kb.example/printers#floor-3"),
    # Given out of order and with a repeat: the encoder sorts and deduplicates.
    remove(T1, "tags", "urgent", [("south", 2, 0), ("north", 2, 4), ("north", 1, 3), ("north", 2, 4)]),
    remove(T1, "watchers", "bob@south", []),
    add(T1, "tags", "urgent"),
]
add_valid(
    "tags-add-remove",
    "Block 3 of south: adds to each of the three sets, removes a tag with three observed dots (sorted by "
    "origin, seq, index), removes a watcher with no observed dots, and re-adds the removed tag.",
    "south", 3, hlc(1_700_000_060_000, 7), {"north": 2, "south": 2}, tag_changes)

long_body = ("Hello, the printer on floor 3 still shows 'offline' after the restart you suggested. "
             "Tried a new cable too. Ünïcödé ✓ and a 4-byte one: 🖨️. Thanks!")
event_changes = [
    event(T1, E1, "customer_message", "public", "customer@acme.example", long_body),
    event(T1, E2, "agent_reply", "public", "alice", "We are sending a technician."),
    event(T1, E3, "internal_note", "internal", "", "checked driver version 4.2"),
    event(T1, E4, "handoff_note", "internal", "alice",
          "summary: printer offline\nverified: cable, power\ntried: restart\nrequested: on-site visit"),
    event(T2, E5, "customer_message", "public", "someone", ""),
]
add_valid(
    "events-each-kind",
    "Block 1 of central: one event of each kind (customer_message, agent_reply, internal_note, handoff_note) "
    "with both visibilities, an empty actor, an empty body, a body over 127 bytes (two-byte length) with "
    "2-, 3- and 4-byte UTF-8.",
    "central", 1, hlc(1_700_000_120_000, 0), {"north": 2, "south": 3}, event_changes)

add_valid(
    "many-deps",
    "Block 7 of lab-2 with eight deps in bytewise order (lab < lab-10 < lab-2 < lab0 < laba shows that '-' "
    "sorts before digits and letters and a prefix first), multi-byte seq values, and an HLC with a counter.",
    "lab-2", 7, hlc(1_700_000_123_456, 513),
    {"south": 3, "north": 2, "laba": 1, "lab0": 1 << 32, "lab-2": 6, "lab-10": 300, "lab": 1, "central": 1},
    [set_(T1, "status", ("text", "open"))])

# Schema 2: a configuration version on a configuration entity, and a ticket's escalation record and
# auto reply. The bodies are opaque strings to the block format; PROTOCOL.md 1.8 describes them.
CONFIG_ENTITY = "9b0f3c1e-2d4a-5b6c-8d7e-0f1a2b3c4d5e"
config_version = dict(event(CONFIG_ENTITY, "3f2e1d0c-bbaa-5988-8776-655443322110", "config_version", "internal", "ops",
                            '{"matrix":{"entries":[],"grace":"2m","version":1}}'), entityKind=ENTITY_CONFIG)
add_valid(
    "schema2-config-and-escalation",
    "Block 2 of central (schema 2): a published matrix version on a configuration entity (kind 2), a "
    "level_fired escalation record and an auto reply on a ticket.",
    "central", 2, hlc(1_700_000_200_000, 0), {"central": 1},
    [config_version,
     event(T1, E6, "escalation", "internal", "tierline",
           '{"assignment":"notify","at":1700000190000,"level":1,"loop":0,"targets":["lead@north"],"type":"level_fired"}'),
     event(T1, E7, "auto_reply", "public", "bot", "We received your message.")])

# Schema 3: a customer record and a knowledge article (named text registers), and an attachment's
# metadata on a ticket.
CUSTOMER = "5a1b2c3d-4e5f-5061-8273-8495a6b7c8d9"
ARTICLE = "01a20f04-1100-7538-a5f6-a71f49283fb6"
add_valid(
    "schema3-customer-article-attachment",
    "Block 3 of central (schema 3): a customer (kind 3) with its key, name and tier, a knowledge article "
    "(kind 4) with title and steps and a cleared field, and an attachment event on a ticket.",
    "central", 3, hlc(1_700_000_300_000, 0), {"central": 2},
    [dict(set_(CUSTOMER, "custom:key", ("text", "C-1001")), entityKind=ENTITY_CUSTOMER),
     dict(set_(CUSTOMER, "custom:name", ("text", "Ada Lovelace")), entityKind=ENTITY_CUSTOMER),
     dict(set_(CUSTOMER, "custom:tier", ("text", "platinum")), entityKind=ENTITY_CUSTOMER),
     dict(set_(ARTICLE, "custom:title", ("text", "Spooler crash after a driver update")), entityKind=ENTITY_ARTICLE),
     dict(set_(ARTICLE, "custom:steps", ("text", "Roll back the driver; restart the spooler.")), entityKind=ENTITY_ARTICLE),
     dict(set_(ARTICLE, "custom:author", ("null",)), entityKind=ENTITY_ARTICLE),
     event(T1, E5, "attachment", "public", "intake",
           '{"contentType":"application/pdf","message":"' + E1 + '","name":"invoice.pdf","size":48213}')])

# Schema 4: an attribution event (empty body) saying who made the block's field and tag changes.
add_valid(
    "schema4-attribution",
    "Block 4 of central (schema 4): an attribution event naming alice, then the assignee and status she set "
    "and a tag she added, in the same block.",
    "central", 4, hlc(1_700_000_400_000, 0), {"central": 3},
    [event(T1, E7, "attribution", "internal", "alice", ""),
     set_(T1, "assignee", ("text", "alice")),
     set_(T1, "status", ("text", "open")),
     add(T1, "tags", "billing")])

SITE32 = "z" + "0123456789-abcdefghijklmnopqrst"  # 32 bytes
assert len(SITE32) == 32
add_valid(
    "extremes",
    "Boundary values: seq 2^63-1 (9-byte varint), hlc 2^64-1, a 32-byte site id, create number 2^63-1, "
    "pending_until at both ends of the signed 64-bit range, an escalation cycle of 2^63-1, a text of exactly "
    "4096 bytes, a custom field name of exactly 256 bytes, nil and max uuids, and a dot index of 255.",
    "z", (1 << 63) - 1, (1 << 64) - 1, {"z": (1 << 63) - 2, SITE32: 1},
    [
        create(T3, (1 << 63) - 1),
        set_(T3, "pending_until", ("integer", -(1 << 63))),
        set_(T4, "pending_until", ("integer", (1 << 63) - 1)),
        set_(T3, "escalation", ("level", (1 << 63) - 1, 0)),
        set_(T4, "owning_site", ("owner", 0, SITE32)),
        set_(T3, "subject", ("text", "x" * 4096)),
        set_(T3, "custom:" + "n" * 256, ("text", "")),
        remove(T4, "links", "l", [(SITE32, 1, 255)]),
    ])

add_valid(
    "same-field-two-entities",
    "The one-set-per-register rule is per entity and per custom name: status on two tickets, and two "
    "different custom fields on one ticket, in one block. Also a deleted flag set to true.",
    "north", 2, hlc(1_700_000_000_500), {"north": 1},
    [
        set_(T1, "status", ("text", "solved")),
        set_(T2, "status", ("text", "closed")),
        set_(T2, "custom:a", ("text", "1")),
        set_(T2, "custom:b", ("text", "2")),
        set_(T2, "deleted", ("flag", True)),
        set_(T2, "merged_into", ("null",)),
        set_(T2, "pending_until", ("null",)),
    ])

minimal_changes = [set_(T1, "subject", ("text", ""))]
add_valid(
    "minimal",
    "The smallest kind of block: seq 1, hlc 0, no deps, one change (an empty subject).",
    "a", 1, 0, {}, minimal_changes)

add_valid(
    "bad-signature",
    "A well-formed block (it decodes) whose signature was made with another key than publicKey: the "
    "signature check must fail.",
    "north", 1, H0, {}, [create(T1, 1)], key=OTHER_KEY)

# ---------------------------------------------------------------------------------------------
# Invalid vectors
#
# Bodies are assembled by hand from primitives, so each breaks exactly one rule.


def head(origin=b"north", seq=1, stamp=H0, deps=(), version=VERSION):
    """version, origin, seq, hlc, deps (a list of (site bytes, seq), written as given)."""
    out = bytes([version]) + raw_string(origin) + uvarint(seq) + u64(stamp) + uvarint(len(deps))
    for s, n in deps:
        out += raw_string(s) + uvarint(n)
    return out


def changes(*encoded):
    return uvarint(len(encoded)) + b"".join(encoded)


def ticket(op, payload=b"", entity=T1, kind=ENTITY_TICKET):
    return bytes([kind]) + uuid(entity) + bytes([op]) + payload


def set_raw(code, value, name=None):
    return ticket(OP_SET, bytes([code]) + (raw_string(name) if name is not None else b"") + value)


def text(s):
    return bytes([TAG_TEXT]) + raw_string(s)


SUBJECT = set_raw(1, text("Printer offline"))
GOOD = head() + changes(SUBJECT)

ticket_block = bytes.fromhex(valid[0]["hex"])
add_invalid("truncated-body",
            "A valid block with the last 5 bytes of its body cut off (the signature kept).",
            ticket_body[:-5], "truncated")
add_invalid("signature-only", "64 bytes: no room for a body.", bytes(64), "truncated", signed=False)
add_invalid("truncated-signature", "A valid block with its last 10 bytes cut off: the body loses its tail.",
            ticket_block[:-10], "truncated", signed=False)
add_invalid("trailing-bytes", "A valid body followed by one extra 0x00 byte, then the signature.",
            GOOD + b"\x00", "trailingBytes")
add_invalid("non-minimal-varint", "seq 1 written as two bytes 81 00.",
            bytes([1]) + raw_string("north") + bytes([0x81, 0x00]) + u64(H0) + uvarint(0) + changes(SUBJECT),
            "nonCanonical")
add_invalid("non-minimal-varint-zero", "The deps count 0 written as 80 00.",
            bytes([1]) + raw_string("north") + uvarint(1) + u64(H0) + bytes([0x80, 0x00]) + changes(SUBJECT),
            "nonCanonical")
add_invalid("varint-overflow", "A create number whose 10th varint byte is 02 (beyond 64 bits).",
            head() + changes(ticket(OP_CREATE, bytes([0xFF] * 9 + [0x02]))), "nonCanonical")
add_invalid("create-number-2^63", "A create number of 2^63: counters, sequence numbers, levels and epochs "
            "must fit a signed 64-bit integer.",
            head() + changes(ticket(OP_CREATE, uvarint(1 << 63))), "invalidValue")
add_invalid("seq-2^63", "seq 2^63 (with deps naming 2^63-1 for the origin).",
            bytes([1]) + raw_string("north") + uvarint(1 << 63) + u64(H0) + uvarint(1) + raw_string("north")
            + uvarint((1 << 63) - 1) + changes(SUBJECT), "invalidValue")
add_invalid("version-2", "Version byte 2.", head(version=2) + changes(SUBJECT), "badVersion")
add_invalid("version-0", "Version byte 0.", head(version=0) + changes(SUBJECT), "badVersion")
add_invalid("unknown-op", "Operation byte 6.", head() + changes(ticket(6, uvarint(1))), "badTag")
add_invalid("op-zero", "Operation byte 0.", head() + changes(ticket(0, uvarint(1))), "badTag")
add_invalid("unknown-entity-kind", "Entity kind 5.",
            head() + changes(ticket(OP_CREATE, uvarint(1), kind=5)), "badTag")
add_invalid("customer-create", "A create on a customer entity (kind 3): records take only sets.",
            head() + changes(ticket(OP_CREATE, uvarint(1), kind=3)), "badTag")
add_invalid("article-event", "An internal_note event on a knowledge article entity (kind 4).",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([3, 2]) + raw_string("a") + raw_string("b"), kind=4)), "badTag")
add_invalid("customer-tag", "A tag added to a customer entity (kind 3).",
            head() + changes(ticket(OP_ADD, bytes([1]) + raw_string("vip"), kind=3)), "badTag")
add_invalid("customer-built-in-field", "A set of the built-in subject field (code 1) on a customer: records hold custom fields only.",
            head() + changes(ticket(OP_SET, bytes([1, TAG_TEXT]) + raw_string("x"), kind=3)), "invalidValue")
add_invalid("config-entity-create", "A create on a configuration entity (kind 2): it takes only events.",
            head() + changes(ticket(OP_CREATE, uvarint(1), kind=2)), "badTag")
add_invalid("config-version-on-ticket", "A config_version event (kind 7) on a ticket.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([7, 2]) + raw_string("a") + raw_string("{}"))), "badTag")
add_invalid("ticket-event-on-config", "An agent_reply event on a configuration entity.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([2, 1]) + raw_string("a") + raw_string("b"), kind=2)), "badTag")
add_invalid("unknown-field-code", "Field code 14 (0x0e).", head() + changes(set_raw(14, bytes([TAG_NULL]))), "badTag")
add_invalid("field-code-zero", "Field code 0.", head() + changes(set_raw(0, bytes([TAG_NULL]))), "badTag")
add_invalid("unknown-value-tag", "Value tag 7 on subject.", head() + changes(set_raw(1, bytes([7]))), "badTag")
add_invalid("unknown-set", "Set byte 4 in an add.",
            head() + changes(ticket(OP_ADD, bytes([4]) + raw_string("x"))), "badTag")
add_invalid("unknown-event-kind", "Event kind 10.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([10, 1]) + raw_string("a") + raw_string("b"))),
            "badTag")
add_invalid("unknown-visibility", "Visibility 3.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([1, 3]) + raw_string("a") + raw_string("b"))),
            "badTag")
add_invalid("unsorted-deps", "deps south before north.",
            head(deps=[(b"south", 1), (b"north", 1)]) + changes(SUBJECT), "unsorted")
add_invalid("repeated-dep", "deps name north twice.",
            head(origin=b"south", deps=[(b"north", 1), (b"north", 2)]) + changes(SUBJECT), "unsorted")
add_invalid("unsorted-deps-prefix", "deps lab-2 before lab (a prefix sorts first).",
            head(deps=[(b"lab-2", 1), (b"lab", 1)]) + changes(SUBJECT), "unsorted")
add_invalid("zero-dep", "A deps entry south with seq 0.",
            head(deps=[(b"south", 0)]) + changes(SUBJECT), "nonCanonical")
add_invalid("origin-dep-missing", "seq 2 of north but deps do not name north.",
            head(seq=2, deps=[(b"south", 4)]) + changes(SUBJECT), "invalidValue")
add_invalid("origin-dep-wrong", "seq 3 of north with deps[north] = 1.",
            head(seq=3, deps=[(b"north", 1)]) + changes(SUBJECT), "invalidValue")
add_invalid("origin-dep-on-first-block", "seq 1 of north with deps[north] = 1.",
            head(seq=1, deps=[(b"north", 1)]) + changes(SUBJECT), "invalidValue")
add_invalid("seq-zero", "seq 0.", head(seq=0) + changes(SUBJECT), "invalidValue")
add_invalid("zero-changes", "A change count of 0.", head() + uvarint(0), "invalidValue")
add_invalid("too-many-changes", "A change count of 257 (the changes themselves are not needed to refuse it).",
            head() + uvarint(257), "tooLarge")
add_invalid("too-many-deps", "A deps count of 4097.",
            bytes([1]) + raw_string("north") + uvarint(1) + u64(H0) + uvarint(4097), "tooLarge")
add_invalid("two-sets-one-field", "Two sets of status on one ticket in one block.",
            head() + changes(set_raw(2, text("new")), set_raw(2, text("open"))), "invalidValue")
add_invalid("two-sets-one-custom-field", "Two sets of custom field 'region' on one ticket in one block.",
            head() + changes(set_raw(CUSTOM, text("a"), name="region"), set_raw(CUSTOM, bytes([TAG_NULL]), name="region")),
            "invalidValue")
add_invalid("status-merged", "status set to 'merged', which is derived and never written.",
            head() + changes(set_raw(2, text("merged"))), "invalidValue")
add_invalid("status-null", "status set to null.", head() + changes(set_raw(2, bytes([TAG_NULL]))), "invalidValue")
add_invalid("status-case", "status 'Open' (statuses are compared byte for byte).",
            head() + changes(set_raw(2, text("Open"))), "invalidValue")
add_invalid("priority-unknown", "priority 'critical'.", head() + changes(set_raw(3, text("critical"))), "invalidValue")
add_invalid("subject-integer", "subject given an integer.",
            head() + changes(set_raw(1, bytes([TAG_INTEGER]) + svarint(5))), "invalidValue")
add_invalid("deleted-null", "deleted given null.", head() + changes(set_raw(13, bytes([TAG_NULL]))), "invalidValue")
add_invalid("custom-integer", "A custom field given an integer.",
            head() + changes(set_raw(CUSTOM, bytes([TAG_INTEGER]) + svarint(1), name="x")), "invalidValue")
add_invalid("invalid-utf8", "A subject holding the byte ff.",
            head() + changes(set_raw(1, text(b"caf\xff"))), "invalidValue")
add_invalid("overlong-utf8", "A subject holding the overlong form c0 80 of U+0000.",
            head() + changes(set_raw(1, text(b"a\xc0\x80"))), "invalidValue")
add_invalid("surrogate-utf8", "An event body holding an encoded surrogate ed a0 80.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([1, 1]) + raw_string("a") + raw_string(b"\xed\xa0\x80"))),
            "invalidValue")
add_invalid("bad-site-id-upper", "Origin 'North' (upper case).", head(origin=b"North") + changes(SUBJECT), "invalidValue")
add_invalid("bad-site-id-digit", "Origin '9lives' (leading digit).", head(origin=b"9lives") + changes(SUBJECT),
            "invalidValue")
add_invalid("bad-site-id-empty", "Origin '' (empty).", head(origin=b"") + changes(SUBJECT), "invalidValue")
add_invalid("bad-site-id-long", "Origin of 33 bytes.", head(origin=b"a" * 33) + changes(SUBJECT), "tooLarge")
add_invalid("bad-site-id-in-owner", "owning_site value with site 'no_underscore'.",
            head() + changes(set_raw(11, bytes([TAG_OWNER]) + uvarint(1) + raw_string("no_underscore"))),
            "invalidValue")
add_invalid("flag-byte-2", "deleted with flag byte 02.", head() + changes(set_raw(13, bytes([TAG_FLAG, 2]))),
            "nonCanonical")
add_invalid("create-number-zero", "create with number 0.", head() + changes(ticket(OP_CREATE, uvarint(0))),
            "invalidValue")
add_invalid("custom-name-empty", "A custom field with an empty name.",
            head() + changes(set_raw(CUSTOM, text("x"), name="")), "invalidValue")
add_invalid("custom-name-too-long", "A custom field name of 257 bytes.",
            head() + changes(set_raw(CUSTOM, text("x"), name="n" * 257)), "tooLarge")
add_invalid("element-empty", "A tag add with an empty element.",
            head() + changes(ticket(OP_ADD, bytes([1]) + raw_string(""))), "invalidValue")
add_invalid("text-too-long", "A subject that declares 4097 bytes (refused before the bytes are read).",
            head() + changes(set_raw(1, bytes([TAG_TEXT]) + uvarint(4097))), "tooLarge")
add_invalid("event-body-too-long", "An event body that declares 65537 bytes.",
            head() + changes(ticket(OP_EVENT, uuid(E1) + bytes([1, 1]) + raw_string("a") + uvarint(65537))),
            "tooLarge")


def dot(origin, seq, index):
    return raw_string(origin) + uvarint(seq) + uvarint(index)


def remove_raw(*dots):
    return ticket(OP_REMOVE, bytes([1]) + raw_string("printer") + uvarint(len(dots)) + b"".join(dots))


add_invalid("unsorted-dots", "Observed dots (north,2,0) before (north,1,5).",
            head() + changes(remove_raw(dot("north", 2, 0), dot("north", 1, 5))), "unsorted")
add_invalid("repeated-dot", "The observed dot (north,1,0) twice.",
            head() + changes(remove_raw(dot("north", 1, 0), dot("north", 1, 0))), "unsorted")
add_invalid("dot-index-256", "An observed dot with index 256.",
            head() + changes(remove_raw(dot("north", 1, 256))), "invalidValue")
add_invalid("too-many-dots", "A remove that declares 4097 observed dots.",
            head() + changes(ticket(OP_REMOVE, bytes([1]) + raw_string("printer") + uvarint(4097))), "tooLarge")

# ---------------------------------------------------------------------------------------------

if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "vectors", "blocks.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    names = [v["name"] for v in valid + invalid]
    assert len(names) == len(set(names)), "vector names must be unique"
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"valid": valid, "invalid": invalid}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path}: {len(valid)} valid, {len(invalid)} invalid")
