#!/usr/bin/env python3
"""Writes Protocol/vectors/frames.json: test vectors for section 2 of Protocol/PROTOCOL.md.

Like make_vectors.py (section 1), this is written from the specification alone, independent of the
Swift code. It imports make_vectors.py only for its section-1 block encoder, so every block carried
in a `blocks` frame here is a canonical, signed block.

The file holds, besides the frame vectors, the lines of the annotated example session of section
2.10 (as valid vectors named `example-…`), worked examples of the signed authentication message of
section 2.6 (`authMessages`) and worked examples of the signed roster of section 2.6.1 (`rosters`). A small reference decoder at the end of this file decodes every vector
before it is written and checks that it gives the recorded frame or error code.

Usage:
    python3 Protocol/tools/make_frame_vectors.py            writes Protocol/vectors/frames.json
    python3 Protocol/tools/make_frame_vectors.py --example  prints the example session of 2.10

Needs the `cryptography` package (as make_vectors.py does: `pip install cryptography`).

The output is deterministic: keys and nonces are derived from fixed labels, Ed25519 signatures are
deterministic, and zlib output is fixed for a given zlib build. (Another zlib implementation, such as
zlib-ng, may compress differently; the decoded content of every vector stays the same.)
"""

import base64
import hashlib
import json
import os
import re
import sys
import zlib
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_vectors as mv  # noqa: E402  (the section-1 encoder; importing it writes nothing)

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Constants of section 2

MAX_LINE_BYTES = 8_388_608
MAX_BATCH_BYTES = 4_194_304
MAX_BATCH_BLOCKS = 4096
MAX_ENTRY_BYTES = 1 << 20  # a block, section 1.9
MAX_SOFTWARE_BYTES = 64
INT_MAX = (1 << 63) - 1
ROLES = ("site", "coordinator", "laptop")
AUTH_CONTEXT = b"tierline-auth-v1"
ROSTER_CONTEXT = b"tierline-roster-v1"
MAX_ROSTER_DOCUMENT_BYTES = 1 << 20
MAX_ROSTER_SITES = 4096
MAX_ROSTER_RELEASES = 256

SITE_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
HEX128_RE = re.compile(r"[0-9a-f]{128}")
BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")

# ---------------------------------------------------------------------------------------------
# Keys, nonces, time


def private_key(label):
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"tierline frame vectors key: " + label.encode()).digest())


def public_bytes(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def nonce(label):
    return hashlib.sha256(b"tierline frame vectors nonce: " + label.encode()).digest()


# west is the removed site of the example roster (2.6.1); it signs nothing here.
KEYS = {site: private_key(site) for site in ("north", "south", "central", "west")}
PUB = {site: public_bytes(k).hex() for site, k in KEYS.items()}


def millis(text):
    """Milliseconds since 1970 of an ISO-8601 UTC time such as 2025-03-04T08:12:05.120."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def auth_message(receiver_nonce, sender_nonce, sender_site, receiver_site):
    """The bytes an `auth` signature covers (2.6)."""
    assert len(receiver_nonce) == 32 and len(sender_nonce) == 32
    return (AUTH_CONTEXT + b"\x00" + receiver_nonce + sender_nonce + sender_site.encode("utf-8") + b"\x00"
            + receiver_site.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# A small history of signed blocks (section 1), shared by the vectors and the example session.
#
# north writes ticket NORTH-1 at 08:12; south (a technician's laptop) syncs once, goes to the
# customer and works offline; the coordinator central sets the group; north's agents go on working.
# At 10:05 south reconnects to north (the example session of 2.10).

TICKET = "01955f3a-0b4c-7d2e-9f10-3c4d5e6f7a8b"
EV = ["01955f3a-0b4c-7d2e-9f10-00000000000" + str(i) for i in range(1, 4)]

BLOCKS = {}   # (origin, seq) -> block bytes
STAMPS = {}   # block bytes -> (hlc, origin, seq)
KNOWN_VALID = set()


def write_block(origin, seq, when, deps, changes):
    body = mv.encode_body(origin, seq, mv.hlc(millis(when)), deps, changes)
    block = body + mv.sign(body, KEYS.get(origin, KEYS["north"]))
    assert len(block) <= MAX_ENTRY_BYTES
    KNOWN_VALID.add(block)
    STAMPS[block] = (mv.hlc(millis(when)), origin, seq)
    return block


def history_block(origin, seq, when, deps, changes):
    block = write_block(origin, seq, when, deps, changes)
    BLOCKS[(origin, seq)] = block
    return block


history_block("north", 1, "2025-03-04T08:12:05.120", {}, [
    mv.create(TICKET, 1),
    mv.set_(TICKET, "subject", ("text", "Printer offline on floor 3")),
    mv.set_(TICKET, "status", ("text", "new")),
    mv.set_(TICKET, "priority", ("text", "high")),
    mv.set_(TICKET, "customer", ("text", "ACME Corp")),
    mv.set_(TICKET, "channel", ("text", "email")),
])
history_block("central", 1, "2025-03-04T09:02:11.500", {"north": 1}, [
    mv.set_(TICKET, "group", ("text", "field-service")),
])
history_block("south", 1, "2025-03-04T09:15:42.010", {"north": 1}, [
    mv.event(TICKET, EV[0], "internal_note", "internal", "tom", "Replaced the fuser unit; test page prints."),
])
history_block("south", 2, "2025-03-04T09:16:03.377", {"north": 1, "south": 1}, [
    mv.set_(TICKET, "status", ("text", "solved")),
])
history_block("north", 2, "2025-03-04T09:20:30.004", {"central": 1, "north": 1}, [
    mv.event(TICKET, EV[1], "agent_reply", "public", "anna", "A technician is on the way."),
])
history_block("north", 3, "2025-03-04T09:21:00.250", {"central": 1, "north": 2}, [
    mv.add(TICKET, "tags", "hardware"),
])
history_block("north", 4, "2025-03-04T10:05:07.815", {"central": 1, "north": 3, "south": 2}, [
    mv.event(TICKET, EV[2], "customer_message", "public", "it@acme.example", "Thanks, it works again!"),
])

# Section-1 invalid blocks (from make_vectors.py), to put a bad block into a batch.
KNOWN_INVALID = {bytes.fromhex(v["hex"]): v["error"] for v in mv.invalid}


def block(origin, seq):
    return BLOCKS[(origin, seq)]


def block_hash(b):
    """The hash of 1.8: SHA-256 of the body, without the 64-byte signature."""
    return hashlib.sha256(b[:-64]).hexdigest()


def heads(vec):
    """The `heads` member of 2.2.3 for a vector over the example history: each origin's newest block."""
    return {o: {"seq": n, "hash": block_hash(block(o, n))} for o, n in vec.items() if n}


# ---------------------------------------------------------------------------------------------
# Building lines


def line(obj):
    """A frame as a sender writes it: compact JSON, members in the given order, UTF-8 as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def uvarint(n):
    return mv.uvarint(n)


def read_uvarint(data, pos):
    """A section-1 uvarint; returns (value, new position); raises ValueError with a section-1 code."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            raise ValueError("truncated")
        byte = data[pos + i]
        if i == 9 and byte > 1:
            raise ValueError("nonCanonical")
        value |= (byte & 0x7F) << (7 * i)
        if byte & 0x80 == 0:
            if i > 0 and byte == 0:
                raise ValueError("nonCanonical")
            return value, pos + i + 1
    raise ValueError("nonCanonical")


def batch_bytes(blocks):
    return b"".join(uvarint(len(b)) + b for b in blocks)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def blocks_frame(batch, blocks, keys=None, level=6):
    """A blocks frame object for `blocks`, with the keys of the sites `keys`, compressed at `level`."""
    payload = batch_bytes(blocks)
    obj = {"type": "blocks", "batch": batch, "count": len(blocks), "size": len(payload)}
    if keys is not None:
        obj["keys"] = {s: PUB[s] for s in keys}
    obj["data"] = b64(zlib.compress(payload, level))
    return obj


def expect_blocks(batch, blocks, keys=None):
    return {"type": "blocks", "batch": batch, "count": len(blocks), "size": len(batch_bytes(blocks)),
            "keys": {s: PUB[s] for s in (keys or [])}, "blocks": [b.hex() for b in blocks]}


def hello(site, role, nonce_bytes, time, software="tierline 0.4.0", protocol=1, min_protocol=1, schema=1,
          public_key=None, roster=None):
    obj = {"type": "hello", "protocol": protocol, "minProtocol": min_protocol, "schema": schema, "site": site,
           "role": role, "publicKey": public_key or PUB[site], "nonce": nonce_bytes.hex(), "time": time}
    if software is not None:
        obj["software"] = software
    if roster is not None:
        obj["roster"] = roster
    return obj


def expect_hello(obj):
    e = {k: obj[k] for k in ("type", "protocol", "minProtocol", "schema", "site", "role", "publicKey", "nonce",
                              "time")}
    e["software"] = obj.get("software")
    if obj.get("roster", 0) != 0:  # absent and 0 both mean "no roster": the expect names it only when not 0
        e["roster"] = obj["roster"]
    if "restored" in obj:
        e["restored"] = obj["restored"]
    return e


valid = []
invalid = []


def add_valid(name, description, text, expect):
    valid.append({"name": name, "description": description, "line": text, "expect": expect})


def add_invalid(name, description, text, error):
    """`text` is a str (the line) or bytes (raw line bytes, written as lineBase64 when not UTF-8)."""
    entry = {"name": name, "description": description, "error": error}
    if isinstance(text, bytes):
        try:
            entry["line"] = text.decode("utf-8")
        except UnicodeDecodeError:
            entry["lineBase64"] = base64.b64encode(text).decode("ascii")
    else:
        entry["line"] = text
    invalid.append(entry)


# ---------------------------------------------------------------------------------------------
# The example session of 2.10. South (a laptop) connects to north (an office node). Both pin central's key and
# hold the same roster: version 3, the example roster of 2.6.1 below (the `roster` vector and rosters[0]), which
# lists north as a site and south as a laptop with the keys of their hellos. With equal versions neither side
# sends a roster frame, and every key, central's included, comes from that roster: the blocks frames carry no
# `keys` (2.7, "Relaying"). The checks after the roster below hold the example to this.

T = millis("2025-03-04T10:05:00.000")
EXAMPLE_ROSTER = 3  # the roster version both sides hold; equal to roster()["version"] (asserted below)
N_NONCE = nonce("north, example session")
S_NONCE = nonce("south, example session")

example = []  # (time offset in ms, sender, comment, frame object)


def say(offset, sender, comment, obj):
    example.append((offset, sender, comment, obj))


def sign_auth(sender, receiver, sender_nonce, receiver_nonce):
    return KEYS[sender].sign(auth_message(receiver_nonce, sender_nonce, sender, receiver)).hex()


say(0, "south",
    "south has connected to north. Each side writes its hello at once, without waiting for the other's. "
    "Both hold version 3 of the roster signed by the coordinator, central (2.6.1), and name it.",
    hello("south", "laptop", S_NONCE, T + 3, roster=EXAMPLE_ROSTER))
say(1, "north", "", hello("north", "site", N_NONCE, T + 1, roster=EXAMPLE_ROSTER))
say(4, "south",
    "Each side has checked the other's hello (protocol 1 is in both ranges, schema 1, different sites). "
    "The roster versions are equal, so neither side sends a roster frame (2.2.10). Each signs the other's "
    "nonce, its own nonce and both site ids with its site key.",
    {"type": "auth", "signature": sign_auth("south", "north", S_NONCE, N_NONCE)})
say(4, "north", "", {"type": "auth", "signature": sign_auth("north", "south", N_NONCE, S_NONCE)})
say(6, "south",
    "Both signatures verify against the keys in the hellos, and each side finds the other in roster 3 with "
    "exactly that key and not removed (2.6.1): north as a site, south as a laptop. Now each sends its version "
    "vector: south has "
    "north's first block and its own two blocks, written offline at the customer.",
    {"type": "vector", "vector": {"north": 1, "south": 2}, "heads": heads({"north": 1, "south": 2})})
say(6, "north", "north has four blocks: three of its own and one from the coordinator, central. Each vector "
    "carries its heads, the hash of the newest block of every origin it covers: south holds north 1, which "
    "north also holds, and the two hashes are equal, so north 1 is the same block on both sides (2.2.3).",
    {"type": "vector", "vector": {"central": 1, "north": 3}, "heads": heads({"central": 1, "north": 3})})
say(9, "north",
    "The session is open. north sends what south lacks, oldest stamp first: central 1 (09:02:11), north 2 "
    "(09:20:30), north 3 (09:21:00). central's block is relayed byte for byte, without keys: south takes "
    "central's key from the roster both hold, as it takes every key.",
    blocks_frame(1, [block("central", 1), block("north", 2), block("north", 3)]))
say(10, "south", "At the same time south sends its two offline blocks. north checks them with south's key from "
    "the roster, the key south proved in its auth.",
    blocks_frame(1, [block("south", 1), block("south", 2)]))
say(11, "north",
    "north has sent everything south lacked, so it says so. Its vector is the one it had when it wrote "
    "the batch; it has not applied south's batch yet.",
    {"type": "synced", "vector": {"central": 1, "north": 3}})
say(12, "south", "", {"type": "synced", "vector": {"north": 1, "south": 2}})
say(25, "north",
    "north has applied south's batch in one transaction and committed it; only then does it acknowledge. "
    "The vector is north's whole vector after the batch.",
    {"type": "ack", "batch": 1, "vector": {"central": 1, "north": 3, "south": 2}, "applied": 2, "held": 0,
     "refused": 0})
say(31, "south", "",
    {"type": "ack", "batch": 1, "vector": {"central": 1, "north": 3, "south": 2}, "applied": 3, "held": 0,
     "refused": 0})
say(7815, "north",
    "Both sides are in sync and stay connected. Seven seconds later the customer answers by e-mail and north "
    "writes block 4. north pushes it to south at once, as batch 2 of this session.",
    blocks_frame(2, [block("north", 4)]))
say(7830, "south", "", {"type": "ack", "batch": 2, "vector": {"central": 1, "north": 4, "south": 2}, "applied": 1,
                        "held": 0, "refused": 0})
say(22816, "north",
    "Nothing happens for 15 seconds after north's last frame, so north sends a ping; south answers with "
    "the same id and its own clock.",
    {"type": "ping", "id": 1, "time": T + 22816})
say(22817, "south", "", {"type": "pong", "id": 1, "time": T + 22820})
say(30002, "south",
    "The technician closes the laptop's sync. Everything south sent is acknowledged and everything it "
    "received is acknowledged, so nothing is lost by leaving. north closes the connection when it reads the bye.",
    {"type": "bye", "reason": "user quit"})


def expect_of(obj):
    """The decoded form of a frame object this file built (checked against the reference decoder)."""
    t = obj["type"]
    if t == "hello":
        return expect_hello(obj)
    if t == "blocks":
        raw = zlib.decompress(base64.b64decode(obj["data"]))
        blocks, pos = [], 0
        while pos < len(raw):
            n, pos = read_uvarint(raw, pos)
            blocks.append(raw[pos:pos + n])
            pos += n
        return {"type": "blocks", "batch": obj["batch"], "count": obj["count"], "size": obj["size"],
                "keys": dict(obj.get("keys", {})), "blocks": [b.hex() for b in blocks]}
    e = dict(obj)
    if "vector" in e:
        e["vector"] = {s: n for s, n in e["vector"].items() if n != 0}
    if t == "bye":
        e.setdefault("reason", None)
    return e


for i, (offset, sender, comment, obj) in enumerate(example, 1):
    receiver = "north" if sender == "south" else "south"
    add_valid(f"example-{i:02d}-{sender}-{obj['type']}",
              f"Line {i} of the example session of 2.10, from {sender} to {receiver}.", line(obj), expect_of(obj))


def example_markdown():
    out = ["```"]
    for i, (offset, sender, comment, obj) in enumerate(example, 1):
        receiver = "north" if sender == "south" else "south"
        if comment:
            if i > 1:
                out.append("")
            words, cur = comment.split(), "#"
            for w in words:
                if len(cur) + 1 + len(w) > 100:
                    out.append(cur)
                    cur = "#"
                cur += " " + w
            out.append(cur)
        seconds = offset / 1000
        out.append(f"# {i:2d}  +{seconds:.3f} s  {sender} → {receiver}")
        out.append(line(obj))
    out.append("```")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The roster (2.6.1): central, the coordinator, signs it with its site key, which every node pins.


def roster_message(document):
    """The bytes the coordinator's roster signature covers: the context, 00, the document's UTF-8 bytes."""
    return ROSTER_CONTEXT + b"\x00" + document.encode("utf-8")


def roster_text(obj):
    """The document as the coordinator writes it: sorted member names, no white space."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_roster(document, signer="central"):
    return KEYS[signer].sign(roster_message(document)).hex()


def roster_member(site, role, key=None, revoked_after=None):
    m = {"site": site, "key": key or PUB[site], "role": role}
    if revoked_after is not None:  # present only for a removed site
        m["revokedAfter"] = revoked_after
    return m


def roster(version=3, sites=None, released=None, coordinator="central"):
    """The example fleet: central (coordinator), north (office), south (laptop) and west, removed after its
    block 12; north's block 4 released from the clock-drift quarantine."""
    if sites is None:
        sites = [roster_member("central", "coordinator"), roster_member("north", "site"),
                 roster_member("south", "laptop"), roster_member("west", "site", revoked_after=12)]
    if released is None:
        released = [{"site": "north", "seq": 4, "hash": block_hash(block("north", 4))}]
    return {"version": version, "coordinator": coordinator, "issued": millis("2025-03-04T09:58:00.000"),
            "sites": sites, "released": released}


ROSTER_DOCUMENT = roster_text(roster())
ROSTER_SIGNATURE = sign_roster(ROSTER_DOCUMENT)

# The example session (2.10) runs on this roster: both hellos name its version, it lists both sides with the
# keys and roles of their hellos and every origin of the example's blocks, and no frame of the session carries
# keys, so a test can pin central's key, adopt this roster on both sides and replay the session.
assert roster()["version"] == EXAMPLE_ROSTER
_members = {m["site"]: m for m in roster()["sites"]}
for _offset, _sender, _comment, _obj in example:
    if _obj["type"] == "hello":
        assert _obj["roster"] == EXAMPLE_ROSTER
        _m = _members[_obj["site"]]
        assert _m["key"] == _obj["publicKey"] and _m["role"] == _obj["role"] and "revokedAfter" not in _m
    if _obj["type"] == "blocks":
        assert "keys" not in _obj
        for _hex in expect_of(_obj)["blocks"]:
            _origin = STAMPS[bytes.fromhex(_hex)][1]
            assert _origin in _members and "revokedAfter" not in _members[_origin]

# ---------------------------------------------------------------------------------------------
# Valid vectors

H_NONCE = nonce("vectors")
H_TIME = millis("2025-03-04T10:00:00.000")

h = hello("north", "site", H_NONCE, H_TIME)
add_valid("hello", "A hello with every member, as a sender writes it.", line(h), expect_hello(h))
h = hello("south", "laptop", H_NONCE, H_TIME, software=None)
add_valid("hello-no-software", "A hello without the optional software member: it decodes as null.",
          line(h), expect_hello(h))
h = hello("central", "coordinator", H_NONCE, 0, software="")
add_valid("hello-coordinator", "Role coordinator, time 0 and an empty software string.", line(h), expect_hello(h))
h = hello("north", "site", H_NONCE, H_TIME, protocol=3, min_protocol=1, schema=2, software="tierline 2.1.0")
add_valid("hello-later-version",
          "A hello from a later version that speaks protocols 1 to 3 and writes schema 2. It decodes; whether a "
          "session can follow is decided by negotiation (2.5), not by the decoder.", line(h), expect_hello(h))
h = hello("z" + "0123456789-abcdefghijklmnopqrst", "site", bytes(32), INT_MAX, protocol=INT_MAX,
          min_protocol=INT_MAX, schema=INT_MAX, software="é" * 32, public_key=PUB["central"])
add_valid("hello-extremes",
          "Boundary values: a 32-byte site id, protocol, minProtocol, schema and time 2^63-1, an all-zero nonce, "
          "and a software string of exactly 64 bytes (32 two-byte characters).", line(h), expect_hello(h))
h = hello("north", "site", H_NONCE, H_TIME)
text = ('{"options":{"compression":["zlib","zstd"],"x":null},"type":"hello","protocol":1,"minProtocol":1,'
        '"schema":1,"site":"north","role":"site","publicKey":"' + PUB["north"] + '","nonce":"' + H_NONCE.hex()
        + '","time":' + str(H_TIME) + ',"software":"tierline 0.4.0","future":[1.5,-2,3e8,true]}')
add_valid("hello-unknown-members",
          "Unknown members (an object, and an array with numbers no integer field would accept) are ignored, "
          "wherever they are; type need not come first.", text, expect_hello(h))
text = ' { "type" : "hello" ,\t"protocol":1, "minProtocol":1, "schema":1, "site":"north", "role":"site", ' \
       '"publicKey":"' + PUB["north"] + '", "nonce":"' + H_NONCE.hex() + '", "time":' + str(H_TIME) + \
       ', "software":"tierline\\u00200.4.0" } '
add_valid("hello-whitespace-and-escapes",
          "Insignificant JSON whitespace (spaces and a tab) between tokens and around the object, and a \\u "
          "escape inside a string.", text, expect_hello(h))
h = hello("north", "site", H_NONCE, H_TIME, roster=3)
add_valid("hello-roster", "A hello from a node that holds version 3 of the roster.", line(h), expect_hello(h))
h = hello("south", "laptop", H_NONCE, H_TIME, roster=0)
add_valid("hello-roster-zero",
          "roster 0 written out: the same as leaving it out (no roster). The expect has no roster member.",
          line(h), expect_hello(h))

sig = sign_auth("north", "south", H_NONCE, nonce("other side"))
add_valid("auth", "An auth frame: 128 lowercase hex digits.", line({"type": "auth", "signature": sig}),
          {"type": "auth", "signature": sig})
ROSTER_FRAME = {"type": "roster", "document": ROSTER_DOCUMENT, "signature": ROSTER_SIGNATURE}
add_valid("roster",
          "A roster frame carrying version 3 of the example roster (rosters[0]), signed by central: central "
          "(coordinator), north (site), south (laptop), west (removed after its block 12), and one release.",
          line(ROSTER_FRAME), dict(ROSTER_FRAME))

add_valid("vector", "A version vector.", line({"type": "vector", "vector": {"central": 1, "north": 3, "south": 2}}),
          {"type": "vector", "vector": {"central": 1, "north": 3, "south": 2}})
add_valid("vector-empty", "The vector of a new, empty store.", line({"type": "vector", "vector": {}}),
          {"type": "vector", "vector": {}})
add_valid("vector-zero-entry", "An entry with value 0 means the same as no entry; it is dropped when decoded.",
          line({"type": "vector", "vector": {"north": 3, "south": 0}}), {"type": "vector", "vector": {"north": 3}})
add_valid("vector-max", "An entry of 2^63-1.", line({"type": "vector", "vector": {"lab-2": INT_MAX}}),
          {"type": "vector", "vector": {"lab-2": INT_MAX}})
_HV = {"central": 1, "north": 3}
add_valid("vector-heads", "A version vector with the heads of 2.2.3: for each origin, the seq the vector gives and "
          "the hash of that block.", line({"type": "vector", "vector": _HV, "heads": heads(_HV)}),
          {"type": "vector", "vector": _HV, "heads": heads(_HV)})
add_valid("vector-heads-empty", "An empty heads object (a new, empty store) means no heads.",
          line({"type": "vector", "vector": {}, "heads": {}}), {"type": "vector", "vector": {}})

# fork (2.2.11): the sender's own block at an (origin, seq) whose head differed, base64, as stored.
_FORK = block("north", 2)
add_valid("fork", "Fork evidence: north's block 2, as the sender holds it (the receiver checks its signature "
          "and compares it with its own block north 2).",
          line({"type": "fork", "block": base64.b64encode(_FORK).decode()}),
          {"type": "fork", "block": _FORK.hex()})

one = [block("north", 1)]
add_valid("blocks-one", "A batch of one block, without keys.", line(blocks_frame(1, one)), expect_blocks(1, one))
two_origins = [block("north", 1), block("south", 1), block("south", 2), block("north", 2)]
add_valid("blocks-two-origins-keys",
          "Four blocks of two origins in stamp order (north 1, south 1, south 2, north 2), with the keys of both "
          "origins.", line(blocks_frame(3, two_origins, keys=["north", "south"])),
          expect_blocks(3, two_origins, keys=["north", "south"]))
for level in (1, 6, 9):
    add_valid(f"blocks-zlib-level-{level}",
              f"The batch of blocks-two-origins-keys compressed at zlib level {level}: every level decodes to the "
              "same blocks.", line(blocks_frame(3, two_origins, keys=["north", "south"], level=level)),
              expect_blocks(3, two_origins, keys=["north", "south"]))
add_valid("blocks-zlib-level-0",
          "The same batch in stored (uncompressed) DEFLATE blocks: still a zlib stream.",
          line(blocks_frame(3, two_origins, keys=["north", "south"], level=0)),
          expect_blocks(3, two_origins, keys=["north", "south"]))
relay = [block("central", 1), block("north", 2), block("north", 3)]
add_valid("blocks-relay-subset-of-keys",
          "A relayed batch with the key of one of its two origins only (keys need not name every origin).",
          line(blocks_frame(7, relay, keys=["central"])), expect_blocks(7, relay, keys=["central"]))
add_valid("blocks-empty-keys", "keys given as an empty object: the same as no keys.",
          line(blocks_frame(1, one, keys=[])), expect_blocks(1, one))
obj = blocks_frame(2, one)
text = line({"data": obj["data"], "size": obj["size"], "count": 1, "batch": 2, "type": "blocks", "note": "x"})
add_valid("blocks-members-reordered", "Members in another order, type last, with an unknown member.", text,
          expect_blocks(2, one))
mv_blocks = [bytes.fromhex(v["hex"]) for v in mv.valid if v["name"] in ("minimal", "ticket-create-and-sets")]
for b, v in zip(mv_blocks, [v for v in mv.valid if v["name"] in ("minimal", "ticket-create-and-sets")]):
    KNOWN_VALID.add(b)
    STAMPS[b] = (v["hlc"], v["origin"], v["seq"])
mv_blocks.sort(key=lambda b: (STAMPS[b][0], STAMPS[b][1].encode(), STAMPS[b][2]))
add_valid("blocks-section-1-vectors",
          "Two valid blocks of Protocol/vectors/blocks.json (minimal, then ticket-create-and-sets, in stamp "
          "order); one has a two-byte length prefix.", line(blocks_frame(1, mv_blocks)), expect_blocks(1, mv_blocks))

ack = {"type": "ack", "batch": 1, "vector": {"central": 1, "north": 3, "south": 2}, "applied": 3, "held": 0,
       "refused": 0}
add_valid("ack", "An ack of batch 1.", line(ack), expect_of(ack))
ack = {"type": "ack", "batch": 4, "vector": {"north": 7, "south": 0}, "applied": 1, "held": 2, "refused": 1}
add_valid("ack-held-refused", "An ack with held and refused blocks; the 0 entry of the vector is dropped.",
          line(ack), expect_of(ack))
syn = {"type": "synced", "vector": {"central": 1, "north": 4, "south": 2}}
add_valid("synced", "A synced frame.", line(syn), expect_of(syn))
syn = {"type": "synced", "vector": {"central": 1, "north": 4}, "awaiting": ["lap", "south"]}
add_valid("synced-awaiting", "The coordinator's synced to a restored site: lap and south have not synced with it "
          "since it learned of the restore (2.2.6).", line(syn), expect_of(syn))
syn = {"type": "synced", "vector": {"central": 1, "north": 4}, "awaiting": []}
add_valid("synced-awaiting-none", "The coordinator has heard from every member since the restore.", line(syn),
          expect_of(syn))
rh = hello("north", "site", H_NONCE, H_TIME, roster=3)
rh["restored"] = H_TIME - 60_000
add_valid("hello-restored", "A hello from a store restored from a backup a minute earlier, whose fence is up: "
          "restored is the restore's id, the time it was restored (2.2.6).", line(rh), expect_hello(rh))
add_valid("ping", "A ping.", line({"type": "ping", "id": 7, "time": H_TIME}), {"type": "ping", "id": 7, "time": H_TIME})
add_valid("pong", "A pong answering ping 7.", line({"type": "pong", "id": 7, "time": H_TIME + 2}),
          {"type": "pong", "id": 7, "time": H_TIME + 2})
add_valid("ping-extremes", "id 0 and time 2^63-1.", line({"type": "ping", "id": 0, "time": INT_MAX}),
          {"type": "ping", "id": 0, "time": INT_MAX})
add_valid("bye", "A bye with a reason.", line({"type": "bye", "reason": "shutting down"}),
          {"type": "bye", "reason": "shutting down"})
add_valid("bye-no-reason", "A bye without a reason: it decodes as null.", line({"type": "bye"}),
          {"type": "bye", "reason": None})
add_valid("bye-unicode", "A reason with raw UTF-8 (é, 2 bytes), an escaped é, and an escaped surrogate pair (🖨, "
          "U+1F5A8).", '{"type":"bye","reason":"café \\u00e9 \\ud83d\\udda8"}',
          {"type": "bye", "reason": "café é 🖨"})
err = {"type": "error", "code": "block-refused", "message": "south 3: signature does not verify", "fatal": False}
add_valid("error-not-fatal", "A block-refused error: not fatal, the session goes on.", line(err), dict(err))
err = {"type": "error", "code": "bad-zlib", "message": "batch 2: incorrect Adler-32 check", "fatal": True}
add_valid("error-fatal", "A fatal error.", line(err), dict(err))
err = {"type": "error", "code": "rate-limited", "message": "", "fatal": False}
add_valid("error-unknown-code",
          "An error code this version does not define (a later version may), with an empty message: it decodes; "
          "the receiver acts on fatal.", line(err), dict(err))

# ---------------------------------------------------------------------------------------------
# Invalid vectors: each is wrong in exactly one way.

PING = '{"type":"ping","id":1,"time":1741082700000}'

add_invalid("empty-line", "An empty line.", "", "bad-json")
add_invalid("not-json", "Text that is not JSON.", "ping 1", "bad-json")
add_invalid("json-unterminated", "A JSON object cut short.", PING[:-1], "bad-json")
add_invalid("json-array", "A JSON array holding a valid frame.", "[" + PING + "]", "bad-json")
add_invalid("json-string", "A JSON string.", '"ping"', "bad-json")
add_invalid("json-number", "A JSON number.", "42", "bad-json")
add_invalid("json-null", "JSON null.", "null", "bad-json")
add_invalid("two-objects", "Two frames on one line.", PING + PING, "bad-json")
add_invalid("trailing-garbage", "A valid frame followed by a stray character.", PING + " x", "bad-json")
add_invalid("invalid-utf8", "A bye whose reason holds the byte ff, which is not UTF-8.",
            b'{"type":"bye","reason":"caf\xff"}', "bad-json")
add_invalid("overlong-utf8", "A bye whose reason holds c0 ae, an overlong encoding of '.'.",
            b'{"type":"bye","reason":"a\xc0\xae"}', "bad-json")
add_invalid("byte-order-mark", "A valid frame preceded by a UTF-8 byte order mark (ef bb bf).",
            "\ufeff" + PING, "bad-json")
add_invalid("lone-surrogate", "A string with an escaped lone surrogate \\ud800, which is no Unicode text.",
            '{"type":"bye","reason":"\\ud800"}', "bad-json")
add_invalid("duplicate-member", "A ping with two id members.",
            '{"type":"ping","id":1,"id":2,"time":1741082700000}', "bad-json")
add_invalid("duplicate-type", "Two type members.", '{"type":"ping","type":"pong","id":1,"time":1741082700000}',
            "bad-json")
add_invalid("duplicate-in-vector", "A vector object naming north twice.",
            '{"type":"vector","vector":{"north":1,"north":2}}', "bad-json")
add_invalid("control-character", "A raw tab inside a JSON string (it must be escaped).",
            '{"type":"bye","reason":"a\tb"}', "bad-json")
add_invalid("nan", "NaN is not JSON.", '{"type":"ping","id":NaN,"time":1741082700000}', "bad-json")
add_invalid("leading-zero", "A number with a leading zero is not JSON.", '{"type":"ping","id":01,"time":1741082700000}',
            "bad-json")
add_invalid("empty-object", "{}: no type member.", "{}", "bad-json")
add_invalid("missing-type", "A ping without its type.", '{"id":1,"time":1741082700000}', "bad-json")
add_invalid("type-not-string", "type is a number.", '{"type":1,"id":1,"time":1741082700000}', "bad-json")
add_invalid("type-null", "type is null.", '{"type":null,"id":1,"time":1741082700000}', "bad-json")
add_invalid("unknown-type", "A frame type this version does not define (not fatal: ignored).",
            '{"type":"gossip","peers":["east"]}', "unknown-frame")
add_invalid("type-case", "Type names are case-sensitive: Hello is unknown.",
            line(dict(hello("north", "site", H_NONCE, H_TIME), type="Hello")), "unknown-frame")

base = hello("north", "site", H_NONCE, H_TIME)


def hello_without(member):
    return line({k: v for k, v in base.items() if k != member})


def hello_with(**changes):
    return line(dict(base, **changes))


for member in ("protocol", "minProtocol", "schema", "site", "role", "publicKey", "nonce", "time"):
    add_invalid(f"hello-missing-{member}", f"A hello without {member}.", hello_without(member), "bad-field")
add_invalid("hello-min-protocol-zero", "minProtocol 0.", hello_with(minProtocol=0), "bad-field")
add_invalid("hello-protocol-string", "protocol given as the string \"1\".", hello_with(protocol="1"), "bad-field")
add_invalid("hello-min-above-protocol", "minProtocol 2 above protocol 1.", hello_with(minProtocol=2), "bad-field")
add_invalid("hello-schema-zero", "schema 0.", hello_with(schema=0), "bad-field")
add_invalid("hello-site-uppercase", "site North.", hello_with(site="North"), "bad-field")
add_invalid("hello-site-too-long", "A site id of 33 bytes.", hello_with(site="a" * 33), "bad-field")
add_invalid("hello-site-leading-digit", "site 9lives.", hello_with(site="9lives"), "bad-field")
add_invalid("hello-site-empty", "An empty site id.", hello_with(site=""), "bad-field")
add_invalid("hello-role-unknown", "role server.", hello_with(role="server"), "bad-field")
add_invalid("hello-role-case", "role Site.", hello_with(role="Site"), "bad-field")
add_invalid("hello-public-key-short", "publicKey of 62 hex digits (31 bytes).",
            hello_with(publicKey=PUB["north"][:62]), "bad-field")
add_invalid("hello-public-key-uppercase", "publicKey in upper-case hex.", hello_with(publicKey=PUB["north"].upper()),
            "bad-field")
add_invalid("hello-nonce-long", "nonce of 66 hex digits (33 bytes).", hello_with(nonce=H_NONCE.hex() + "00"),
            "bad-field")
add_invalid("hello-nonce-not-hex", "nonce with a non-hex digit g.", hello_with(nonce="g" + H_NONCE.hex()[1:]),
            "bad-field")
add_invalid("hello-software-too-long", "software of 65 bytes.", hello_with(software="x" * 65), "bad-field")
add_invalid("hello-software-null", "software given as null: an optional member, when present, has its type.",
            hello_with(software=None), "bad-field")
add_invalid("hello-software-number", "software given as a number.", hello_with(software=4), "bad-field")
add_invalid("hello-time-negative", "time -1.", hello_with(time=-1), "bad-field")
add_invalid("hello-time-fraction", "time with a fraction.", hello_without("time")[:-1] + ',"time":1741082700000.5}',
            "bad-field")
add_invalid("hello-time-too-large", "time 2^63, one above the largest integer.", hello_with(time=1 << 63),
            "bad-field")
add_invalid("hello-time-exponent", "time written with an exponent (1.7410827e12).",
            hello_without("time")[:-1] + ',"time":1.7410827e12}', "bad-field")
add_invalid("hello-roster-negative", "roster -1.", hello_with(roster=-1), "bad-field")
add_invalid("hello-roster-fraction", "roster 1.5: integers have no fraction.", hello_without("roster")[:-1]
            + ',"roster":1.5}', "bad-field")
add_invalid("hello-restored-boolean", "restored given as true: it is the restore's id, an integer.",
            hello_with(restored=True), "bad-field")
add_invalid("hello-restored-zero", "restored 0: a restore's id is at least 1.", hello_with(restored=0), "bad-field")
for name, awaiting, why in (("unsorted", ["south", "lap"], "not in ascending order"),
                            ("repeated", ["lap", "lap"], "with a site twice"),
                            ("bad-site", ["Lap"], "naming an invalid site id (upper case)"),
                            ("string", "lap", "given as a string, not an array")):
    add_invalid(f"synced-awaiting-{name}", f"awaiting {why}.",
                line({"type": "synced", "vector": {"north": 4}, "awaiting": awaiting}), "bad-field")
add_invalid("ping-id-negative-zero", "id written -0: integers have no sign.",
            '{"type":"ping","id":-0,"time":1741082700000}', "bad-field")
add_invalid("ping-id-zero-fraction", "id written 1.0: integers have no fraction, even a zero one.",
            '{"type":"ping","id":1.0,"time":1741082700000}', "bad-field")
add_invalid("ping-id-huge", "id 2^64.", '{"type":"ping","id":18446744073709551616,"time":1741082700000}', "bad-field")
add_invalid("ping-id-string", "id given as a string.", '{"type":"ping","id":"1","time":1741082700000}', "bad-field")
add_invalid("ping-id-bool", "id given as true.", '{"type":"ping","id":true,"time":1741082700000}', "bad-field")
add_invalid("pong-missing-time", "A pong without time.", '{"type":"pong","id":1}', "bad-field")

add_invalid("auth-missing-signature", "An auth frame without signature.", '{"type":"auth"}', "bad-field")
add_invalid("auth-signature-short", "A signature of 126 hex digits (63 bytes).",
            line({"type": "auth", "signature": sig[:126]}), "bad-field")
add_invalid("auth-signature-uppercase", "A signature in upper-case hex.", line({"type": "auth", "signature": sig.upper()}),
            "bad-field")
add_invalid("roster-signature-short", "A roster frame whose signature has 126 hex digits (63 bytes).",
            line(dict(ROSTER_FRAME, signature=ROSTER_SIGNATURE[:126])), "bad-field")
add_invalid("roster-signature-uppercase", "A roster frame whose signature is in upper-case hex.",
            line(dict(ROSTER_FRAME, signature=ROSTER_SIGNATURE.upper())), "bad-field")
add_invalid("roster-missing-document", "A roster frame without document.",
            line({"type": "roster", "signature": ROSTER_SIGNATURE}), "bad-field")
add_invalid("roster-document-object",
            "A roster frame whose document is the roster as a JSON object, not a string holding its text.",
            line(dict(ROSTER_FRAME, document=json.loads(ROSTER_DOCUMENT))), "bad-field")

add_invalid("vector-bad-site", "A vector entry for site North.", '{"type":"vector","vector":{"North":1}}', "bad-field")
add_invalid("vector-negative", "A vector entry of -1.", '{"type":"vector","vector":{"north":-1}}', "bad-field")
add_invalid("vector-string-value", "A vector entry given as a string.", '{"type":"vector","vector":{"north":"1"}}',
            "bad-field")
add_invalid("vector-array", "vector given as an array.", '{"type":"vector","vector":[["north",1]]}', "bad-field")
add_invalid("vector-missing", "A vector frame without its vector.", '{"type":"vector"}', "bad-field")
_H = "ab" * 32
add_invalid("vector-heads-wrong-seq", "A head whose seq is not the vector's entry for its origin.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"north": {"seq": 2, "hash": _H}}}), "bad-field")
add_invalid("vector-heads-not-covered", "A head for an origin the vector does not cover.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"south": {"seq": 1, "hash": _H}}}), "bad-field")
add_invalid("vector-heads-short-hash", "A head whose hash has 62 hex digits.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"north": {"seq": 3, "hash": _H[:62]}}}), "bad-field")
add_invalid("vector-heads-upper-hash", "A head whose hash is upper-case hex.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"north": {"seq": 3, "hash": _H.upper()}}}), "bad-field")
add_invalid("vector-heads-bad-site", "A head for site North.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"North": {"seq": 3, "hash": _H}}}), "bad-field")
add_invalid("vector-heads-array", "heads given as an array.",
            line({"type": "vector", "vector": {"north": 3}, "heads": [["north", 3, _H]]}), "bad-field")
add_invalid("vector-heads-null", "heads given as null; an optional member is left out instead.",
            '{"type":"vector","vector":{"north":3},"heads":null}', "bad-field")
add_invalid("fork-not-base64", "A fork whose block is not base64.", '{"type":"fork","block":"%%%"}', "bad-field")
add_invalid("fork-not-a-block", "A fork whose block is 3 bytes, no block.",
            line({"type": "fork", "block": base64.b64encode(b"abc").decode()}), "bad-field")
add_invalid("fork-missing", "A fork frame without its block.", '{"type":"fork"}', "bad-field")
add_invalid("vector-heads-missing-hash", "A head without its hash.",
            line({"type": "vector", "vector": {"north": 3}, "heads": {"north": {"seq": 3}}}), "bad-field")

add_invalid("ack-batch-zero", "An ack of batch 0.",
            '{"type":"ack","batch":0,"vector":{"north":1},"applied":1,"held":0,"refused":0}', "bad-field")
add_invalid("ack-missing-held", "An ack without held.",
            '{"type":"ack","batch":1,"vector":{"north":1},"applied":1,"refused":0}', "bad-field")
add_invalid("ack-applied-negative", "applied -1.",
            '{"type":"ack","batch":1,"vector":{"north":1},"applied":-1,"held":0,"refused":0}', "bad-field")
add_invalid("synced-missing-vector", "A synced frame without vector.", '{"type":"synced"}', "bad-field")
add_invalid("bye-reason-number", "A bye whose reason is a number.", '{"type":"bye","reason":1}', "bad-field")
add_invalid("error-fatal-string", "An error whose fatal is the string \"true\".",
            '{"type":"error","code":"internal","message":"disk full","fatal":"true"}', "bad-field")
add_invalid("error-fatal-number", "An error whose fatal is the number 1.",
            '{"type":"error","code":"internal","message":"disk full","fatal":1}', "bad-field")
add_invalid("error-missing-code", "An error without code.",
            '{"type":"error","message":"disk full","fatal":true}', "bad-field")
add_invalid("error-message-null", "An error whose message is null.",
            '{"type":"error","code":"internal","message":null,"fatal":true}', "bad-field")

# blocks: JSON members
GOOD_BATCH = [block("north", 1), block("south", 1)]


def bad_blocks(name, description, error, blocks=GOOD_BATCH, key_sites=None, level=6, override=None, drop=()):
    obj = blocks_frame(1, blocks, keys=key_sites, level=level)
    obj.update(override or {})
    add_invalid(name, description, line({k: v for k, v in obj.items() if k not in drop}), error)


bad_blocks("blocks-batch-zero", "batch 0.", "bad-field", override={"batch": 0})
bad_blocks("blocks-batch-negative", "batch -1.", "bad-field", override={"batch": -1})
bad_blocks("blocks-count-zero", "count 0 (the data still holds its two blocks).", "bad-field", override={"count": 0})
bad_blocks("blocks-size-zero", "size 0.", "bad-field", override={"size": 0})
bad_blocks("blocks-count-string", "count given as a string.", "bad-field", override={"count": "2"})
bad_blocks("blocks-missing-data", "No data member.", "bad-field", drop=("data",))
bad_blocks("blocks-data-number", "data given as a number.", "bad-field", override={"data": 12})
bad_blocks("blocks-keys-bad-hex", "A key of 63 hex digits.", "bad-field",
           override={"keys": {"north": PUB["north"][:63]}})
bad_blocks("blocks-keys-uppercase-hex", "A key in upper-case hex.", "bad-field",
           override={"keys": {"north": PUB["north"].upper()}})
bad_blocks("blocks-keys-bad-site", "A key for site North.", "bad-field", override={"keys": {"North": PUB["north"]}})
bad_blocks("blocks-keys-array", "keys given as an array.", "bad-field", override={"keys": [PUB["north"]]})
bad_blocks("blocks-keys-not-an-origin",
           "A key for central, which is the origin of no block in the batch (the batch is north 1, south 1).",
           "bad-field", key_sites=["north", "central"])

# blocks: limits. The data really holds `count` blocks of `size` bytes: only the limit is broken.
many = [write_block("s%04d" % i, 1, "2025-03-04T09:00:00.000", {}, [mv.set_(TICKET, "subject", ("text", ""))])
        for i in range(1, MAX_BATCH_BLOCKS + 2)]
bad_blocks("blocks-count-4097",
           "A batch of 4097 valid blocks (origins s0001 to s4097, in stamp order): one more than maxBatchBlocks.",
           "too-large", blocks=many, level=9)


def big_block(origin, seq, when, deps, length):
    """A valid block of exactly `length` bytes: events with long bodies of one repeated letter."""
    stamp = mv.hlc(millis(when))

    def note(i, size):
        return mv.event(TICKET, "%08x-0000-7000-8000-%012x" % (seq, i), "internal_note", "internal", "", "x" * size)

    def signed_length(events):
        return len(mv.encode_body(origin, seq, stamp, deps, events)) + 64

    events = []
    while signed_length(events + [note(len(events), 60000), note(len(events) + 1, 0)]) <= length:
        events.append(note(len(events), 60000))
    # One more event whose body fills the rest exactly.
    short = signed_length(events + [note(len(events), 0)])
    for size in range(length - short - 3, length - short + 1):
        if size >= 0 and signed_length(events + [note(len(events), size)]) == length:
            body = mv.encode_body(origin, seq, stamp, deps, events + [note(len(events), size)])
            b = body + mv.sign(body, KEYS["north"])
            KNOWN_VALID.add(b)
            STAMPS[b] = (stamp, origin, seq)
            return b
    raise AssertionError("no exact length")


def big_batch(total, n=4):
    """n valid blocks of origin lab whose entries (3-byte length prefix each) add up to exactly `total` bytes."""
    lengths = [(total - 3 * n) // n] * n
    lengths[-1] += (total - 3 * n) % n
    assert all(1 << 14 <= x <= MAX_ENTRY_BYTES for x in lengths)
    blocks = [big_block("lab", seq, "2025-03-04T09:00:%02d.000" % seq, {"lab": seq - 1} if seq > 1 else {}, length)
              for seq, length in enumerate(lengths, 1)]
    assert len(batch_bytes(blocks)) == total
    return blocks


over = big_batch(MAX_BATCH_BYTES + 1)
bad_blocks("blocks-size-4194305",
           "A batch of valid blocks whose entries add up to 4194305 bytes: one more than maxBatchBytes.",
           "too-large", blocks=over, level=9)

# blocks: base64
good = blocks_frame(1, GOOD_BATCH)
data = good["data"]
assert data.endswith("=") and not data.endswith("=="), "the base64 cases below want one padding character"


def with_data(name, description, error, new_data, **override):
    obj = dict(good, data=new_data)
    obj.update(override)
    add_invalid(name, description, line(obj), error)


plus, dash = ("+", "-") if "+" in data else ("/", "_")
with_data("blocks-base64-url-alphabet", f"A '{plus}' replaced by '{dash}' (the URL-safe alphabet is not accepted).",
          "bad-base64", data.replace(plus, dash, 1))
with_data("blocks-data-empty",
          "An empty data string: valid base64 of no bytes, and no bytes are not a zlib stream.", "bad-zlib", "")
with_data("blocks-base64-bad-character", "A '*' in place of the first character.", "bad-base64", "*" + data[1:])
with_data("blocks-base64-space", "A space in the middle of the data.", "bad-base64", data[:40] + " " + data[40:])
with_data("blocks-base64-line-break", "A line break (an escaped \\n) after 76 characters, as MIME writes.",
          "bad-base64", data[:76] + "\n" + data[76:])
with_data("blocks-base64-no-padding", "The padding '=' left off: the length is not a multiple of 4.", "bad-base64",
          data[:-1])
with_data("blocks-base64-extra-padding", "Three more '=' after the padding.", "bad-base64", data + "===")
with_data("blocks-base64-padding-inside", "Padding in the middle: the data is cut in two padded halves.",
          "bad-base64", b64(base64.b64decode(data)[:4]) + b64(base64.b64decode(data)[4:]))
# A base64 quantum "xx=" whose last character carries non-zero bits that the decoder would drop.
last = data[-2]
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
assert alphabet.index(last) & 3 == 0
with_data("blocks-base64-nonzero-pad-bits",
          "The character before the padding has its two unused low bits set: decoders that ignore them would "
          "read the same bytes, but only the canonical encoding is accepted.", "bad-base64",
          data[:-2] + alphabet[alphabet.index(last) | 1] + "=")

# blocks: zlib
payload = batch_bytes(GOOD_BATCH)
stream = zlib.compress(payload, 6)
raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
raw_deflate = raw_deflate.compress(payload) + raw_deflate.flush()
gz = zlib.compressobj(6, zlib.DEFLATED, 31)
gz = gz.compress(payload) + gz.flush()
with_data("blocks-not-zlib", "The data is the batch itself, not compressed.", "bad-zlib", b64(payload))
with_data("blocks-raw-deflate", "Raw DEFLATE data without the zlib header and Adler-32 trailer.", "bad-zlib",
          b64(raw_deflate))
with_data("blocks-gzip", "A gzip (RFC 1952) stream of the batch instead of a zlib stream.", "bad-zlib", b64(gz))
bad_adler = stream[:-1] + bytes([stream[-1] ^ 0x01])
with_data("blocks-zlib-bad-adler", "The last bit of the Adler-32 trailer flipped.", "bad-zlib", b64(bad_adler))
with_data("blocks-zlib-truncated", "The zlib stream cut in the middle of its DEFLATE data.", "bad-zlib",
          b64(stream[:len(stream) // 2]))
with_data("blocks-zlib-no-adler", "The zlib stream without its 4-byte Adler-32 trailer.", "bad-zlib",
          b64(stream[:-4]))
with_data("blocks-zlib-trailing-bytes", "A complete zlib stream followed by one more byte.", "bad-zlib",
          b64(stream + b"\x00"))
zd = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=block("north", 1))
zd = zd.compress(payload) + zd.flush()
with_data("blocks-zlib-dictionary", "A zlib stream that needs a preset dictionary (FDICT set).", "bad-zlib", b64(zd))
with_data("blocks-inflates-too-much", "size one byte smaller than the inflated batch.", "too-large", data,
          size=len(payload) - 1)
with_data("blocks-inflates-too-little", "size one byte larger than the inflated batch.", "bad-batch", data,
          size=len(payload) + 1)

# blocks: the inflated batch


def batch_case(name, description, error, content, count):
    obj = {"type": "blocks", "batch": 1, "count": count, "size": len(content), "data": b64(zlib.compress(content, 6))}
    add_invalid(name, description, line(obj), error)


batch_case("blocks-count-too-high", "count 2, but the batch holds one block.", "bad-batch",
           batch_bytes([block("north", 1)]), 2)
batch_case("blocks-trailing-bytes", "count 1, and a 00 byte after the one block (size includes it).", "bad-batch",
           batch_bytes([block("north", 1)]) + b"\x00", 1)
batch_case("blocks-count-too-low", "count 1, but the batch holds two blocks.", "bad-batch",
           batch_bytes(GOOD_BATCH), 1)
bad_block = next(bytes.fromhex(v["hex"]) for v in mv.invalid if v["name"] == "version-2")
batch_case("blocks-bad-block",
           "The second block is the section-1 vector version-2 (badVersion): the batch is refused whole.",
           "bad-batch", batch_bytes([block("north", 1), bad_block]), 2)
b1 = block("north", 1)
assert 128 <= len(b1) < 1 << 14  # a two-byte length, written here in three bytes
batch_case("blocks-length-noncanonical", "The block's length prefix written with one byte too many (00 at the end).",
           "bad-batch", bytes([(len(b1) & 0x7F) | 0x80, (len(b1) >> 7) | 0x80, 0x00]) + b1, 1)
batch_case("blocks-length-zero", "A block of length 0 (section 1: truncated).", "bad-batch",
           b"\x00", 1)
batch_case("blocks-length-beyond-end", "A length prefix one larger than the bytes that follow.", "bad-batch",
           uvarint(len(b1) + 1) + b1, 1)
junk = (b1 * (MAX_ENTRY_BYTES // len(b1) + 1))[:MAX_ENTRY_BYTES + 1]
batch_case("blocks-entry-over-1mib",
           "One entry of 1048577 bytes: longer than a block may be (section 1: tooLarge).", "bad-batch",
           uvarint(len(junk)) + junk, 1)
batch_case("blocks-out-of-order", "Two valid blocks, south 2 before south 1: not in stamp order.", "bad-batch",
           batch_bytes([block("south", 2), block("south", 1)]), 2)
batch_case("blocks-same-block-twice", "The same block twice in one batch.", "bad-batch",
           batch_bytes([block("north", 1), block("north", 1)]), 2)

# ---------------------------------------------------------------------------------------------
# Worked examples of the auth message (2.6)

auth_messages = []


def add_auth(name, description, sender, receiver, sender_nonce, receiver_nonce, signature, public_key):
    message = auth_message(receiver_nonce, sender_nonce, sender, receiver)
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), message)
        verifies = True
    except InvalidSignature:
        verifies = False
    auth_messages.append({"name": name, "description": description, "senderSite": sender, "receiverSite": receiver,
                          "senderNonce": sender_nonce.hex(), "receiverNonce": receiver_nonce.hex(),
                          "message": message.hex(), "publicKey": public_key, "signature": signature,
                          "verifies": verifies})
    return verifies


s_sig = example[2][3]["signature"]
n_sig = example[3][3]["signature"]
assert add_auth("example-south", "south's auth in the example session (line 3).", "south", "north", S_NONCE, N_NONCE,
                s_sig, PUB["south"])
assert add_auth("example-north", "north's auth in the example session (line 4).", "north", "south", N_NONCE, S_NONCE,
                n_sig, PUB["north"])
assert not add_auth("nonces-swapped",
                    "south's signature checked with the two nonces in the wrong order: it does not verify.",
                    "south", "north", N_NONCE, S_NONCE, s_sig, PUB["south"])
assert not add_auth("replayed-to-other-site",
                    "south's signature presented to a third site, central, with the same nonces: it does not verify.",
                    "south", "central", S_NONCE, N_NONCE, s_sig, PUB["south"])
assert not add_auth("wrong-key", "south's signature checked against north's key.", "south", "north", S_NONCE, N_NONCE,
                    s_sig, PUB["north"])

# ---------------------------------------------------------------------------------------------
# Worked examples of the roster (2.6.1). Each is checked by check_roster below, a receiver's checks written
# from 2.6.1, and `accepted` records its verdict (asserted to be the one each example is meant to show).

rosters = []


def add_roster(name, description, document, signature, pinned_key, accepted):
    reason = check_roster(document, signature, pinned_key)
    assert (reason is None) == accepted, (name, reason)
    rosters.append({"name": name, "description": description, "document": document, "signature": signature,
                    "pinnedKey": pinned_key, "message": roster_message(document).hex(), "accepted": accepted})


def signed(obj, signer="central"):
    """A roster object written as the coordinator writes it, with its signature."""
    text = roster_text(obj)
    return text, sign_roster(text, signer)


def roster_examples():
    pinned = PUB["central"]
    add_roster("valid", "The example roster, version 3, signed by central, checked with central's pinned key: "
               "accepted. The same document and signature as the valid vector roster.",
               ROSTER_DOCUMENT, ROSTER_SIGNATURE, pinned, True)
    add_roster("signed-by-another-key",
               "The same document signed by north, which calls itself coordinator: the signature does not verify "
               "under the pinned key.", ROSTER_DOCUMENT, sign_roster(ROSTER_DOCUMENT, "north"), pinned, False)
    altered = ROSTER_DOCUMENT.replace('"version":3', '"version":4')
    assert len(altered) == len(ROSTER_DOCUMENT) and sum(a != b for a, b in zip(altered, ROSTER_DOCUMENT)) == 1
    add_roster("altered-one-byte",
               "The valid signature over the document with one byte changed (version 3 to 4; the document is "
               "otherwise valid): the signature does not verify.", altered, ROSTER_SIGNATURE, pinned, False)
    altered = ROSTER_DOCUMENT.replace('"role":"laptop","site":"south"', '"role":"coordinator","site":"south"')
    assert altered != ROSTER_DOCUMENT
    add_roster("altered-role",
               "The valid signature over the document with south's role changed from laptop to coordinator: the "
               "signature does not verify.", altered, ROSTER_SIGNATURE, pinned, False)
    rogue = public_bytes(private_key("central, not pinned")).hex()
    sites = roster()["sites"]
    document, signature = signed(roster(sites=[roster_member("central", "coordinator", key=rogue)] + sites[1:]))
    add_roster("coordinator-key-not-pinned",
               "Correctly signed with the pinned key, but the coordinator's entry lists another key: refused.",
               document, signature, pinned, False)
    document, signature = signed(roster(sites=sites[:3] + [roster_member("south", "site")] + sites[3:]))
    add_roster("site-twice", "Correctly signed, but south is listed twice (as laptop and as site): refused.",
               document, signature, pinned, False)
    document, signature = signed(roster(sites=[sites[0], roster_member("north", "coordinator")] + sites[2:]))
    add_roster("two-coordinators", "Correctly signed, but north is a second coordinator: refused.",
               document, signature, pinned, False)
    document, signature = signed(roster(version=0))
    add_roster("version-0", "Correctly signed, but version 0 (versions start at 1): refused.",
               document, signature, pinned, False)
    document, signature = signed(roster(sites=[roster_member("central", "coordinator", revoked_after=9)] + sites[1:]))
    add_roster("coordinator-removed", "Correctly signed, but the coordinator's own entry is removed (revokedAfter 9): "
               "refused.", document, signature, pinned, False)
    document, signature = signed(roster(coordinator="hq"))
    add_roster("coordinator-not-listed",
               "Correctly signed, but it names hq as coordinator, which is not listed (central still has the role and "
               "the pinned key): refused.", document, signature, pinned, False)
    document, signature = signed(roster(sites=[sites[1], sites[0]] + sites[2:]))
    add_roster("sites-out-of-order", "Correctly signed, but north is listed before central (sites must be sorted "
               "by site id bytewise): refused.", document, signature, pinned, False)
    document, signature = signed(roster(sites=sites[:1] + [roster_member("north", "site", key=PUB["north"].upper())] + sites[2:]))
    add_roster("key-uppercase", "Correctly signed, but north's key is written in upper-case hex (keys are 64 "
               "lowercase hex digits): refused.", document, signature, pinned, False)
    release = roster()["released"][0]
    document, signature = signed(roster(released=[dict(release, hash=release["hash"].upper())]))
    add_roster("release-hash-uppercase", "Correctly signed, but the release's hash is written in upper-case hex: "
               "refused.", document, signature, pinned, False)
    null_revoked = [dict(m) for m in sites]
    null_revoked[1]["revokedAfter"] = None
    document, signature = signed(roster(sites=null_revoked))
    add_roster("revoked-after-null", "Correctly signed, but north has \"revokedAfter\": null (the member is left out "
               "for a site that was not removed, never null): refused.", document, signature, pinned, False)
    document = ROSTER_DOCUMENT.replace('"version":3', '"version":3,"version":3', 1)
    add_roster("member-repeated", "Correctly signed, but the member version appears twice (with the same value): "
               "refused, as a frame line with a repeated member is (2.1).", document, sign_roster(document), pinned, False)
    document = ROSTER_DOCUMENT.replace('"version":3', '"version":3.0', 1)
    add_roster("version-not-integer", "Correctly signed, but version is written 3.0: refused, integers are written "
               "as integers (2.1).", document, sign_roster(document), pinned, False)
    document = json.dumps(dict(reversed(list(roster().items()))), indent=1, ensure_ascii=False)
    assert document != ROSTER_DOCUMENT and json.loads(document) == json.loads(ROSTER_DOCUMENT)
    add_roster("not-canonical-text",
               "The contents of the valid example written another way (members in reverse order, indented, with "
               "line breaks) and signed as written: accepted, since the signature covers the bytes received and "
               "receivers do not depend on the canonical form.", document, sign_roster(document), pinned, True)


# ---------------------------------------------------------------------------------------------
# Reference decoder (2.1-2.3), used to check every vector before it is written.


class FrameError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Number:
    """A JSON number as written: integral when it has neither fraction nor exponent."""

    def __init__(self, text, integral):
        self.text, self.integral = text, integral


class Duplicate(Exception):
    pass


def _object(pairs):
    names = [k for k, _ in pairs]
    if len(names) != len(set(names)):
        raise Duplicate()
    return dict(pairs)


def _reject_constant(name):
    raise ValueError(name)


def _check_text(value):
    """No lone surrogates anywhere (they can come only from \\u escapes)."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k)
            _check_text(v)
    elif isinstance(value, list):
        for v in value:
            _check_text(v)


def parse_line(raw):
    if len(raw) > MAX_LINE_BYTES:
        raise FrameError("line-too-long", f"{len(raw)} bytes")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_object, parse_int=lambda s: Number(s, True),
                           parse_float=lambda s: Number(s, False), parse_constant=_reject_constant)
        _check_text(value)
    except (UnicodeError, ValueError, Duplicate) as e:
        raise FrameError("bad-json", str(e))
    if not isinstance(value, dict):
        raise FrameError("bad-json", "not an object")
    return value


def bad(message):
    raise FrameError("bad-field", message)


def integer(obj, name, minimum=0):
    if name not in obj:
        bad(f"{name} missing")
    x = obj[name]
    if not isinstance(x, Number) or not x.integral or x.text.startswith("-"):
        bad(f"{name} is not an integer 0...2^63-1")
    n = int(x.text)
    if n < minimum or n > INT_MAX:
        bad(f"{name} out of range")
    return n


def string(obj, name, optional=False):
    if name not in obj:
        if optional:
            return None
        bad(f"{name} missing")
    if not isinstance(obj[name], str):
        bad(f"{name} is not a string")
    return obj[name]


def matching(obj, name, pattern):
    s = string(obj, name)
    if not pattern.fullmatch(s):
        bad(f"{name} malformed")
    return s


def vector(obj, name):
    if name not in obj or not isinstance(obj[name], dict):
        bad(f"{name} missing or not an object")
    out = {}
    for site in obj[name]:
        if not SITE_RE.fullmatch(site):
            bad("bad site id in vector")
        value = integer(obj[name], site)
        if value:
            out[site] = value
    return out


def decode_vector(obj):
    """2.2.3: the vector, and the optional heads, each naming the block the vector's entry gives."""
    out = {"type": "vector", "vector": vector(obj, "vector")}
    if "heads" in obj:
        raw = obj["heads"]
        if not isinstance(raw, dict):
            bad("heads not an object")
        hs = {}
        for site, head in raw.items():
            if not SITE_RE.fullmatch(site) or not isinstance(head, dict):
                bad("bad site id or head in heads")
            seq = integer(head, "seq", 1)
            if out["vector"].get(site) != seq:
                bad("a head's seq is not the vector's entry")
            hs[site] = {"seq": seq, "hash": matching(head, "hash", HEX64_RE)}
        if hs:
            out["heads"] = hs
    return out


def section1_decode(b):
    """Stands in for a section-1 decoder: the blocks this file uses are known valid or known invalid."""
    if len(b) > MAX_ENTRY_BYTES:
        raise ValueError("tooLarge")
    if len(b) <= 64:
        raise ValueError("truncated")
    if b in KNOWN_INVALID:
        raise ValueError(KNOWN_INVALID[b])
    assert b in KNOWN_VALID, "a block this file did not make"
    return STAMPS[b]


def decode_batch(obj):
    batch = integer(obj, "batch", 1)
    count = integer(obj, "count")
    size = integer(obj, "size")
    keys = {}
    if "keys" in obj:
        if not isinstance(obj["keys"], dict):
            bad("keys is not an object")
        for site, key in obj["keys"].items():
            if not SITE_RE.fullmatch(site) or not isinstance(key, str) or not HEX64_RE.fullmatch(key):
                bad("bad key")
            keys[site] = key
    data = string(obj, "data")
    if count == 0 or size == 0:
        bad("count and size must be at least 1")
    if count > MAX_BATCH_BLOCKS or size > MAX_BATCH_BYTES:
        raise FrameError("too-large", "count or size above the limit")
    if len(data) % 4 or not BASE64_RE.fullmatch(data):
        raise FrameError("bad-base64", "not padded standard base64")
    compressed = base64.b64decode(data, validate=True)
    if b64(compressed) != data:
        raise FrameError("bad-base64", "non-zero bits before the padding")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(compressed, size + 1)
    except zlib.error as e:
        raise FrameError("bad-zlib", str(e))
    if len(out) > size:
        raise FrameError("too-large", "inflates to more than size")
    if not inflater.eof or inflater.unused_data:
        raise FrameError("bad-zlib", "incomplete stream or bytes after it")
    if len(out) != size:
        raise FrameError("bad-batch", "inflates to fewer bytes than size")
    blocks, stamps, pos = [], [], 0
    for i in range(count):
        try:
            length, pos = read_uvarint(out, pos)
            if length > MAX_ENTRY_BYTES:
                raise ValueError("tooLarge")
            if pos + length > len(out):
                raise ValueError("truncated")
            b = out[pos:pos + length]
            stamps.append(section1_decode(b))
        except ValueError as e:
            raise FrameError("bad-batch", f"block {i + 1}: {e}")
        blocks.append(b)
        pos += length
    if pos != len(out):
        raise FrameError("bad-batch", "bytes after the last block")
    order = [(h, o.encode(), s) for h, o, s in stamps]
    if any(a >= b for a, b in zip(order, order[1:])):
        raise FrameError("bad-batch", "blocks not in strictly ascending stamp order")
    origins = {o for _, o, _ in stamps}
    if any(site not in origins for site in keys):
        bad("a key for a site that is not an origin in the batch")
    return {"type": "blocks", "batch": batch, "count": count, "size": size, "keys": keys,
            "blocks": [b.hex() for b in blocks]}


def decode_hello(obj):
    out = {"type": "hello", "protocol": integer(obj, "protocol", 1), "minProtocol": integer(obj, "minProtocol", 1),
           "schema": integer(obj, "schema", 1), "site": matching(obj, "site", SITE_RE)}
    role = string(obj, "role")
    if role not in ROLES:
        bad("unknown role")
    out.update(role=role, publicKey=matching(obj, "publicKey", HEX64_RE), nonce=matching(obj, "nonce", HEX64_RE),
               time=integer(obj, "time"), software=string(obj, "software", optional=True))
    if out["software"] is not None and len(out["software"].encode("utf-8")) > MAX_SOFTWARE_BYTES:
        bad("software too long")
    if out["minProtocol"] > out["protocol"]:
        bad("minProtocol above protocol")
    if "roster" in obj:
        version = integer(obj, "roster")
        if version:  # 0 means no roster, as when absent
            out["roster"] = version
    if "restored" in obj:
        out["restored"] = integer(obj, "restored", 1)
    return out


def decode_synced(obj):
    """2.2.6: the vector, and the coordinator's optional list of members not yet heard from."""
    out = {"type": "synced", "vector": vector(obj, "vector")}
    if "awaiting" in obj:
        sites = obj["awaiting"]
        if not isinstance(sites, list) or len(sites) > 4096:
            bad("awaiting is not an array of at most 4096 site ids")
        for site in sites:
            if not isinstance(site, str) or not SITE_RE.fullmatch(site):
                bad("bad site id in awaiting")
        if any(a.encode() >= b.encode() for a, b in zip(sites, sites[1:])):
            bad("awaiting not in ascending order without repeats")
        out["awaiting"] = list(sites)
    return out


def decode_roster(obj):
    document = string(obj, "document")
    signature = matching(obj, "signature", HEX128_RE)
    if len(document.encode("utf-8")) > MAX_ROSTER_DOCUMENT_BYTES:
        raise FrameError("too-large", "roster document above 1 MiB")
    return {"type": "roster", "document": document, "signature": signature}


class RosterRefused(Exception):
    pass


def _strict_roster(value, depth=1, top=True):
    """What 2.6.1 refuses in a roster beyond the rules of a frame line: a number anywhere (in any
    member, known or not) that is not a plain integer of at most 2^63 - 1 in absolute value, null as
    the value of a top-level member, objects or arrays nested more than 16 deep."""
    if depth > 16:
        raise RosterRefused("nested more than 16 deep")
    if isinstance(value, dict):
        for name, member in value.items():
            if top and member is None:
                raise RosterRefused(f"member {name} is null")
            if isinstance(member, (dict, list)):
                _strict_roster(member, depth + 1, False)
            else:
                _strict_roster(member, depth, False)
    elif isinstance(value, list):
        for member in value:
            _strict_roster(member, depth + 1 if isinstance(member, (dict, list)) else depth, False)
    elif isinstance(value, Number):
        if not value.integral or value.text == "-0" or abs(int(value.text)) > INT_MAX:
            raise RosterRefused(f"{value.text} is not a plain integer")


def check_roster(document, signature, pinned_key):
    """A receiver's checks of 2.6.1: None when the roster is accepted, else why it is refused."""
    try:
        raw = document.encode("utf-8")
        if len(raw) > MAX_ROSTER_DOCUMENT_BYTES:
            raise RosterRefused("above 1 MiB")
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(pinned_key)).verify(bytes.fromhex(signature),
                                                                               roster_message(document))
        except InvalidSignature:
            raise RosterRefused("the signature does not verify under the pinned key")
        # Only now is the document parsed: the exact bytes received, strict JSON (as a line, 2.1).
        try:
            r = parse_line(raw)
        except FrameError as e:
            raise RosterRefused(f"does not parse: {e}")
        _strict_roster(r)
        integer(r, "version", 1)
        coordinator = matching(r, "coordinator", SITE_RE)
        integer(r, "issued")
        sites = r.get("sites")
        if not isinstance(sites, list) or len(sites) > MAX_ROSTER_SITES:
            raise RosterRefused("sites is not an array of at most 4096")
        names = []
        for m in sites:
            if not isinstance(m, dict):
                raise RosterRefused("a site entry is not an object")
            names.append(matching(m, "site", SITE_RE))
            matching(m, "key", HEX64_RE)
            if string(m, "role") not in ROLES:
                raise RosterRefused("unknown role")
            if "revokedAfter" in m:
                integer(m, "revokedAfter")
        if len(set(names)) != len(names):
            raise RosterRefused("a site is listed twice")
        if [n.encode() for n in names] != sorted(n.encode() for n in names):
            raise RosterRefused("sites not sorted by site")
        if sum(m["role"] == "coordinator" for m in sites) != 1:
            raise RosterRefused("not exactly one coordinator")
        entry = next((m for m in sites if m["site"] == coordinator), None)
        if entry is None or entry["role"] != "coordinator" or "revokedAfter" in entry or entry["key"] != pinned_key:
            raise RosterRefused("the coordinator is not listed as coordinator, unremoved, with the pinned key")
        released = r.get("released")
        if not isinstance(released, list) or len(released) > MAX_ROSTER_RELEASES:
            raise RosterRefused("released is not an array of at most 256")
        for e in released:
            if not isinstance(e, dict):
                raise RosterRefused("a release is not an object")
            matching(e, "site", SITE_RE)
            integer(e, "seq", 1)
            matching(e, "hash", HEX64_RE)
    except (RosterRefused, FrameError) as e:
        return str(e)
    return None


def decode_ack(obj):
    return {"type": "ack", "batch": integer(obj, "batch", 1), "vector": vector(obj, "vector"),
            "applied": integer(obj, "applied"), "held": integer(obj, "held"), "refused": integer(obj, "refused")}


def decode_fork(obj):
    """2.2.11: one block, base64 (standard alphabet, padded), that decodes as a section-1 block."""
    text = string(obj, "block")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        bad("block is not base64")
    if len(raw) > MAX_ENTRY_BYTES:
        bad("block larger than a block may be")
    try:
        section1_decode(raw)
    except (ValueError, AssertionError):
        bad("block is not a block")
    return {"type": "fork", "block": raw.hex()}


def decode_error(obj):
    code, message = string(obj, "code"), string(obj, "message")
    if not isinstance(obj.get("fatal"), bool):
        bad("fatal is not a boolean")
    return {"type": "error", "code": code, "message": message, "fatal": obj["fatal"]}


DECODERS = {
    "hello": decode_hello,
    "auth": lambda o: {"type": "auth", "signature": matching(o, "signature", HEX128_RE)},
    "vector": lambda o: decode_vector(o),
    "blocks": decode_batch,
    "ack": decode_ack,
    "synced": decode_synced,
    "ping": lambda o: {"type": "ping", "id": integer(o, "id"), "time": integer(o, "time")},
    "pong": lambda o: {"type": "pong", "id": integer(o, "id"), "time": integer(o, "time")},
    "bye": lambda o: {"type": "bye", "reason": string(o, "reason", optional=True)},
    "error": decode_error,
    "roster": decode_roster,
    "fork": lambda o: decode_fork(o),
}


def decode_frame(raw):
    obj = parse_line(raw)
    if not isinstance(obj.get("type"), str):
        raise FrameError("bad-json", "not an object with a string member type")
    if obj["type"] not in DECODERS:
        raise FrameError("unknown-frame", obj["type"])
    return DECODERS[obj["type"]](obj)


def check_payload(obj, got):
    """Independently of decode_batch: the data round-trips through base64 and zlib to the expected blocks,
    every key in `keys` is its origin's key, and every block's signature verifies (history blocks with their
    origin's key, the blocks taken from blocks.json with make_vectors.py's key)."""
    data = obj["data"]
    compressed = base64.b64decode(data, validate=True)
    assert base64.b64encode(compressed).decode("ascii") == data
    inflated = zlib.decompress(compressed)
    blocks = [bytes.fromhex(h) for h in got["blocks"]]
    assert inflated == batch_bytes(blocks) and len(inflated) == obj["size"] and len(blocks) == obj["count"]
    for b in blocks:
        origin = STAMPS[b][1]
        key = obj.get("keys", {}).get(origin)
        if key is not None:
            assert key == PUB[origin]
        signer = PUB[origin] if b in BLOCKS.values() else mv.public_hex(mv.KEY)
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer)).verify(b[-64:], b[:-64])


def check():
    names = [v["name"] for v in valid + invalid]
    assert len(names) == len(set(names)), "vector names must be unique"
    for v in valid:
        got = decode_frame(v["line"].encode("utf-8"))
        assert got == v["expect"], (v["name"], got, v["expect"])
        assert "\n" not in v["line"] and "\r" not in v["line"]
        if got["type"] == "blocks":
            check_payload(json.loads(v["line"]), got)
        if got["type"] == "roster":
            assert check_roster(got["document"], got["signature"], PUB["central"]) is None, v["name"]
    for v in invalid:
        raw = base64.b64decode(v["lineBase64"]) if "lineBase64" in v else v["line"].encode("utf-8")
        assert b"\n" not in raw and b"\r" not in raw, v["name"]
        try:
            decode_frame(raw)
        except FrameError as e:
            assert e.code == v["error"], (v["name"], e.code, v["error"], str(e))
        else:
            raise AssertionError(f"{v['name']} decoded")


# ---------------------------------------------------------------------------------------------

if __name__ == "__main__":
    roster_examples()
    check()
    names = [r["name"] for r in rosters]
    assert len(names) == len(set(names)), "roster example names must be unique"
    if sys.argv[1:] == ["--example"]:
        print(example_markdown())
        sys.exit(0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "vectors", "frames.json")
    document = {
        "comment": "Test vectors for section 2 of Protocol/PROTOCOL.md (sync sessions over TCP), written by "
                   "Protocol/tools/make_frame_vectors.py. See section 2.11 for the format.",
        "limits": {"maxLineBytes": MAX_LINE_BYTES, "maxBatchBytes": MAX_BATCH_BYTES,
                   "maxBatchBlocks": MAX_BATCH_BLOCKS},
        "valid": valid,
        "invalid": invalid,
        "authMessages": auth_messages,
        "rosters": rosters,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, sort_keys=True, ensure_ascii=True)
        f.write("\n")
    print(f"wrote {path}: {len(valid)} valid, {len(invalid)} invalid, {len(auth_messages)} auth messages, "
          f"{len(rosters)} rosters")
