#!/usr/bin/env python3
"""Writes Protocol/vectors/compact.json: test vectors for the compact change set of protocol 3
(section 2.3.1 of Protocol/PROTOCOL.md).

Written from the specification alone, independent of the Swift code in Sources/SyncWire. It imports
make_vectors.py only for its section-1 block encoder (importing it writes nothing), and builds each
compact change set from the blocks' parts (origin, seq, stamp, deps, each change's kind, entity, op
and payload), not by reading block bytes back. Before writing, it decodes every vector with its own
decoder (2.3.1) and checks the blocks it puts back together byte for byte.

Usage:  python3 Protocol/tools/make_compact_vectors.py      (needs the `cryptography` package)
"""

import base64
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_vectors as mv  # noqa: E402

MAX_SITES = 8192
MAX_ENTITIES = 4096 * 256
MAX_BATCH_BYTES = 4194304
SIGNATURE = 64


# ---------------------------------------------------------------------------------------------
# Blocks, kept with their parts

class Block:
    def __init__(self, origin, seq, stamp, deps, changes, key=mv.KEY):
        self.origin, self.seq, self.stamp = origin, seq, stamp
        self.deps = {s: n for s, n in deps.items() if n}
        # Each change as (kind, entity id bytes, op, payload bytes), from the section-1 encoder.
        self.changes = []
        for c in changes:
            encoded = mv.encode_change(c)
            self.changes.append((encoded[0], encoded[1:17], encoded[17], encoded[18:]))
        body = mv.encode_body(origin, seq, stamp, deps, changes)
        self.signature = mv.sign(body, key)
        self.bytes = body + self.signature


def encode_compact(blocks):
    """2.3.1: site table and entity table in order of first use, then one entry per block."""
    sites, entities = [], []
    entries = b""
    previous = None

    def site_index(s):
        if s not in sites:
            sites.append(s)
        return sites.index(s)

    for b in blocks:
        entries += mv.uvarint(site_index(b.origin)) + mv.uvarint(b.seq) + mv.u64(b.stamp)
        deps = sorted(b.deps, key=mv.site_key)
        entries += mv.uvarint(len(deps))
        for s in deps:
            entries += mv.uvarint(site_index(s)) + mv.uvarint(b.deps[s])
        entries += mv.uvarint(len(b.changes))
        for kind, entity, op, payload in b.changes:
            if entity not in entities:
                entities.append(entity)
                ref = 1
            else:
                ref = 0 if entities.index(entity) == previous else entities.index(entity) + 2
            previous = entities.index(entity)
            entries += bytes([kind]) + mv.uvarint(ref) + bytes([op]) + mv.uvarint(len(payload)) + payload
        entries += b.signature
    out = mv.uvarint(len(sites)) + b"".join(mv.site(s) for s in sites)
    out += mv.uvarint(len(entities)) + b"".join(entities)
    return out + entries


class Bad(Exception):
    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")
        self.code = code


def read_uvarint(data, pos):
    value, shift, start = 0, 0, pos
    while True:
        if pos >= len(data):
            raise Bad("bad-batch", "truncated varint")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise Bad("bad-batch", "varint beyond 64 bits")
        value |= (byte & 0x7F) << shift
        if byte & 0x80 == 0:
            if byte == 0 and pos - start > 1:
                raise Bad("bad-batch", "varint not in shortest form")
            return value, pos
        shift += 7


def take(data, pos, n):
    if n > len(data) - pos:
        raise Bad("bad-batch", "truncated")
    return data[pos:pos + n], pos + n


def read_sites(data):
    """The site table at the start of a compact or columnar change set (step 11a): the site ids, and
    where the table ends."""
    n, pos = read_uvarint(data, 0)
    if not 1 <= n <= MAX_SITES:
        raise Bad("bad-batch", "site count")
    sites = []
    for _ in range(n):
        length, pos = read_uvarint(data, pos)
        if length > 32:
            raise Bad("bad-batch", "site too long")
        raw, pos = take(data, pos, length)
        try:
            mv.check_site(raw.decode("ascii"))
        except (AssertionError, UnicodeDecodeError):
            raise Bad("bad-batch", "not a site id")
        if raw.decode("ascii") in sites:
            raise Bad("bad-batch", "site twice")
        sites.append(raw.decode("ascii"))
    return sites, pos


def read_ids(data, pos):
    """A table of entity ids (step 11b of 2.3.1 and of 2.3.3): the ids, and where the table ends."""
    m, pos = read_uvarint(data, pos)
    if m > MAX_ENTITIES:
        raise Bad("bad-batch", "entity count")
    if m * 16 > len(data) - pos:
        raise Bad("bad-batch", "entity table truncated")
    ids = []
    for _ in range(m):
        entity, pos = take(data, pos, 16)
        if entity in ids:
            raise Bad("bad-batch", "entity twice")
        ids.append(entity)
    return ids, pos


def read_header(data, pos, n):
    """A block's header in a compact or columnar change set, against a site table of `n`: origin
    index, seq, the 8 stamp bytes, the deps as (site index, seq), the change count; and where it ends."""
    origin, pos = read_uvarint(data, pos)
    if origin >= n:
        raise Bad("bad-batch", "origin index")
    seq, pos = read_uvarint(data, pos)
    stamp, pos = take(data, pos, 8)
    dep_count, pos = read_uvarint(data, pos)
    if dep_count > mv.MAX_DEPS:
        raise Bad("bad-batch", "dep count")
    deps = []
    for _ in range(dep_count):
        s, pos = read_uvarint(data, pos)
        if s >= n:
            raise Bad("bad-batch", "dep site index")
        dep_seq, pos = read_uvarint(data, pos)
        deps.append((s, dep_seq))
    change_count, pos = read_uvarint(data, pos)
    if not 1 <= change_count <= mv.MAX_CHANGES:
        raise Bad("bad-batch", "change count")
    return origin, seq, stamp, deps, change_count, pos


def decode_compact(data, count, max_batch_bytes=MAX_BATCH_BYTES):
    """Puts `count` blocks back together; returns their bytes (section-1 decoding is left to the
    caller, as step 11 of 2.3.1 says)."""
    names, pos = read_sites(data)
    n, sites = len(names), [mv.site(s) for s in names]
    entities, pos = read_ids(data, pos)
    m = len(entities)
    blocks, previous, introduced, total = [], None, 0, 0
    for _ in range(count):
        origin, seq, stamp, deps, change_count, pos = read_header(data, pos, n)
        body = bytes([1]) + sites[origin] + mv.uvarint(seq) + stamp + mv.uvarint(len(deps))
        for s, dep_seq in deps:
            body += sites[s] + mv.uvarint(dep_seq)
        body += mv.uvarint(change_count)
        for _ in range(change_count):
            kind, pos = take(data, pos, 1)
            ref, pos = read_uvarint(data, pos)
            if ref == 0:
                if previous is None:
                    raise Bad("bad-batch", "entity 0 on the first change")
                index = previous
            elif ref == 1:
                if introduced >= m:
                    raise Bad("bad-batch", "entity 1 with every entity introduced")
                index = introduced
                introduced += 1
            elif ref - 2 >= m:
                raise Bad("bad-batch", "entity index")
            else:
                index = ref - 2
            previous = index
            op, pos = take(data, pos, 1)
            length, pos = read_uvarint(data, pos)
            if length > mv.MAX_BLOCK_BYTES:
                raise Bad("bad-batch", "payload length")
            payload, pos = take(data, pos, length)
            body += kind + entities[index] + op + payload
            if len(body) + SIGNATURE > mv.MAX_BLOCK_BYTES:
                raise Bad("bad-batch", "block over 1 MiB")
        signature, pos = take(data, pos, SIGNATURE)
        block = body + signature
        total += len(block)
        if total > max_batch_bytes:
            raise Bad("too-large", "blocks over maxBatchBytes")
        blocks.append(block)
    if pos != len(data):
        raise Bad("bad-batch", "bytes after the last block")
    return blocks


# ---------------------------------------------------------------------------------------------
# The blocks of the vectors

H = mv.hlc(1_741_082_400_000)
TICKET_A = "01955f3a-0b4c-7d2e-9f10-3c4d5e6f7a8b"
TICKET_B = "01955f3a-0b4c-7d2e-9f10-3c4d5e6f7a8c"
EVENT = "01955f3a-0b4c-7d2e-9f10-000000000001"

north1 = Block("north", 1, H, {}, [
    mv.create(TICKET_A, 1),
    mv.set_(TICKET_A, "subject", ("text", "Printer offline on floor 3")),
    mv.set_(TICKET_A, "status", ("text", "new")),
    mv.add(TICKET_A, "tags", "printer"),
    mv.event(TICKET_A, EVENT, "customer_message", "public", "anna@example.com", "It prints blank pages."),
])
north2 = Block("north", 2, H + 5, {"north": 1}, [
    mv.set_(TICKET_A, "priority", ("text", "high")),
    mv.create(TICKET_B, 2),
    mv.set_(TICKET_B, "subject", ("text", "VPN drops every hour")),
])
south1 = Block("south", 1, H + 9, {"north": 2}, [
    mv.set_(TICKET_B, "status", ("text", "open")),
    mv.remove(TICKET_A, "tags", "printer", [("north", 1, 3)]),
    mv.set_(TICKET_A, "status", ("text", "solved")),
], key=mv.OTHER_KEY)
central1 = Block("central", 1, H + 12, {"north": 2, "south": 1}, [
    mv.set_(TICKET_B, "group", ("text", "network-l2")),
], key=mv.OTHER_KEY)

valid, invalid, frames = [], [], []


def add_valid(name, description, blocks):
    compact = encode_compact(blocks)
    assert decode_compact(compact, len(blocks)) == [b.bytes for b in blocks]
    valid.append({"name": name, "description": description, "count": len(blocks), "compact": compact.hex(),
                  "blocks": [b.bytes.hex() for b in blocks]})
    return compact


def add_invalid(name, description, compact, count, error):
    try:
        decode_compact(compact, count)
    except Bad as bad:
        assert bad.code == error, (name, bad)
    else:
        # Only a block that does not decode once put back together passes here (step 11, section 1).
        assert error == "bad-batch" and name.startswith("block-"), name
        assert compact != encode_compact([north1]), name
    item = {"name": name, "description": description, "count": count, "error": error}
    if len(compact) > 4096:
        # Large change sets travel as the base64 of their zlib stream, as in a frame.
        item["compactZlibBase64"] = base64.b64encode(zlib.compress(compact, 9)).decode("ascii")
    else:
        item["compact"] = compact.hex()
    invalid.append(item)


ALL = [north1, north2, south1, central1]
add_valid("one-block", "One block of one origin: a site table of one, an entity table of one, entity 1 (introduced) on the first change and 0 (the previous change's) after it.", [north1])
add_valid("two-tickets", "Two blocks of north: the second refers back to ticket A (entity 2, entry 0) and introduces ticket B (entity 1).", [north1, north2])
good = add_valid("relay-three-origins", "Four blocks of three origins, as a relay sends them: deps name sites by index; a remove's dots stay in its payload.", ALL)


def entries_of(blocks, sites, entities):
    """The entry bytes for `blocks` against given tables (to build broken change sets)."""
    full = encode_compact(blocks)
    n, pos = read_uvarint(full, 0)
    for _ in range(n):
        length, pos = read_uvarint(full, pos)
        pos += length
    m, pos = read_uvarint(full, pos)
    return full[pos + 16 * m:]


def tables(sites, entities):
    return mv.uvarint(len(sites)) + b"".join(mv.raw_string(s) for s in sites) + mv.uvarint(len(entities)) + b"".join(entities)


A, B = mv.uuid(TICKET_A), mv.uuid(TICKET_B)


def second_change_as_new(entries):
    """`entries` of north 1 with the second change's entity 0 written as 1."""
    first_payload = len(north1.changes[0][3])
    at = 12 + 3 + 1 + first_payload  # kind, entity, op, length, payload of the first change
    assert entries[at + 1] == 0
    return entries[:at + 1] + mv.uvarint(1) + entries[at + 2:]
one = encode_compact([north1])
one_entries = entries_of([north1], None, None)
add_invalid("empty", "No bytes at all: the site count is missing.", b"", 1, "bad-batch")
add_invalid("no-sites", "A site table of 0 sites.", tables([], [A]) + one_entries, 1, "bad-batch")
add_invalid("site-not-an-id", "The site table lists \"North\" (upper case).", tables(["North"], [A]) + one_entries, 1, "bad-batch")
add_invalid("site-twice", "The site table lists north twice.", tables(["north", "north"], [A]) + one_entries, 1, "bad-batch")
add_invalid("entity-twice", "The entity table lists ticket A twice.", tables(["north"], [A, A]) + one_entries, 1, "bad-batch")
add_invalid("entity-table-truncated", "The entity count says 3 ids; only 2 follow before the change set ends.",
            mv.uvarint(1) + mv.raw_string("north") + mv.uvarint(3) + A + B, 1, "bad-batch")
add_invalid("origin-index-outside", "The block names origin index 1 of a site table of 1.",
            tables(["north"], [A]) + mv.uvarint(1) + one_entries[1:], 1, "bad-batch")
two = encode_compact([north1, north2])
two_entries = entries_of([north1, north2], None, None)
head2 = tables(["north"], [A, B])
# north2 entry starts after north1's entry: find it by encoding north1 alone against the same tables.
n1_len = len(entries_of([north1], None, None))
n2 = two_entries[n1_len:]
add_invalid("dep-index-outside", "north 2's deps entry names site index 1 of a site table of 1.",
            head2 + two_entries[:n1_len] + n2[:11] + mv.uvarint(1) + n2[12:], 2, "bad-batch")
add_invalid("entity-zero-first", "The first change of the change set refers to entity 0 (the previous change's).",
            tables(["north"], [A]) + one_entries[:13] + mv.uvarint(0) + one_entries[14:], 1, "bad-batch")
add_invalid("entity-index-outside", "A change refers to entity 3 (entry 1) of an entity table of 1.",
            tables(["north"], [A]) + one_entries[:13] + mv.uvarint(3) + one_entries[14:], 1, "bad-batch")
add_invalid("entity-none-left-to-introduce", "The second change of ticket A says entity 1 (the next new one), but the table of 1 was used up by the first.",
            tables(["north"], [A]) + second_change_as_new(one_entries), 1, "bad-batch")
add_invalid("zero-changes", "A block entry with a change count of 0.",
            tables(["north"], [A]) + one_entries[:11] + mv.uvarint(0) + one_entries[12:], 1, "bad-batch")
add_invalid("257-changes", "A block entry with a change count of 257.",
            tables(["north"], [A]) + one_entries[:11] + mv.uvarint(257) + one_entries[12:], 1, "bad-batch")
add_invalid("4097-deps", "A block entry with a dep count of 4097.",
            tables(["north"], [A]) + one_entries[:10] + mv.uvarint(4097), 1, "bad-batch")
add_invalid("payload-beyond-end", "The last change's payload length runs past the end of the change set.",
            one[:-SIGNATURE - len(north1.changes[-1][3]) - 1] + mv.uvarint(200), 1, "bad-batch")
add_invalid("signature-cut", "The change set ends 1 byte into the last block's signature.", one[:-63], 1, "bad-batch")
add_invalid("trailing-byte", "One byte after the last block.", one + b"\x00", 1, "bad-batch")
add_invalid("count-too-high", "The frame's count says 2 blocks; the change set holds 1.", one, 2, "bad-batch")
add_invalid("non-canonical-varint", "The site count written as 81 00 (1 in two bytes).", b"\x81\x00" + one[1:], 1, "bad-batch")
add_invalid("block-bad-payload", "Put back together, the block does not decode: the status payload is the value tag 0x09 (section 1: badTag).",
            one.replace(bytes([2, 6, 2, 1, 3]) + b"new", bytes([2, 6, 2, 9, 3]) + b"new"), 1, "bad-batch")


def many_small_changes(total):
    """Blocks of one origin whose bytes together exceed `total`: each holds 256 short notes on ticket A,
    so after the first every change refers to its entity with 0 and costs 2 bytes where its block
    spends 17 on the kind and id; the compact change set stays well under `total`."""
    blocks, seq = [], 1
    size = 0
    while size <= total:
        notes = [mv.event(TICKET_A, "01955f3a-0b4c-7d2e-9f10-%06d%06d" % (seq, i), "internal_note", "internal", "agent", "n")
                 for i in range(256)]
        b = Block("north", seq, H + seq, {"north": seq - 1} if seq > 1 else {}, notes)
        blocks.append(b)
        size += len(b.bytes)
        seq += 1
    return blocks, size


many, many_bytes = many_small_changes(MAX_BATCH_BYTES)
many_compact = encode_compact(many)
# Step 11d is what refuses it: the compact change set is within step 4's limit, so a frame carrying it
# passes steps 1 to 10, and only the blocks put back together go over.
assert len(many_compact) <= MAX_BATCH_BYTES < many_bytes and len(many) <= 4096, (len(many_compact), many_bytes)
add_invalid("blocks-over-max-batch-bytes",
            "%d blocks of 256 short notes on one ticket: %d bytes put back together, over the 4 194 304 of maxBatchBytes, "
            "from a compact change set of %d bytes, under it (step 11d, not step 4)." % (len(many), many_bytes, len(many_compact)),
            many_compact, len(many), "too-large")


# ---------------------------------------------------------------------------------------------
# A whole `blocks` frame of protocol 3

def blocks_line(batch, blocks, level=6):
    compact = encode_compact(blocks)
    data = base64.b64encode(zlib.compress(compact, level)).decode("ascii")
    return json.dumps({"type": "blocks", "batch": batch, "count": len(blocks), "size": len(compact), "data": data},
                      separators=(",", ":"))


for name, blocks in [("frame-relay", ALL), ("frame-one", [north1])]:
    text = blocks_line(1, blocks)
    obj = json.loads(text)
    raw = zlib.decompress(base64.b64decode(obj["data"]))
    assert len(raw) == obj["size"] and decode_compact(raw, obj["count"]) == [b.bytes for b in blocks]
    frames.append({"name": name, "description": "A protocol-3 blocks frame: base64 of the zlib stream of the compact change set.",
                   "line": text, "blocks": [b.bytes.hex() for b in blocks]})


# Binary members of protocol 3 (2.5): base64 instead of hex in `auth` and in `heads`.
import hashlib  # noqa: E402

auth_signature = mv.sign(b"tierline-auth-v1\x00" + bytes(64) + b"south\x00north")
binary = [
    {"name": "auth-base64", "description": "An auth frame of protocol 3: the signature in 88 characters of base64.",
     "line": json.dumps({"type": "auth", "signature": base64.b64encode(auth_signature).decode("ascii")}, separators=(",", ":")),
     "expect": {"signature": auth_signature.hex()}},
    {"name": "vector-heads-base64", "description": "A vector frame of protocol 3: the head's hash in 44 characters of base64.",
     "line": json.dumps({"type": "vector", "vector": {"north": 2},
                         "heads": {"north": {"seq": 2, "hash": base64.b64encode(hashlib.sha256(north2.bytes[:-SIGNATURE]).digest()).decode("ascii")}}},
                        separators=(",", ":")),
     "expect": {"hash": hashlib.sha256(north2.bytes[:-SIGNATURE]).hexdigest()}},
]
binary_invalid = [
    {"name": "auth-base64-not-canonical", "description": "88 characters of base64 whose last character before the padding has a low bit set.",
     "line": json.dumps({"type": "auth", "signature": base64.b64encode(auth_signature).decode("ascii")[:85] + "B=="}, separators=(",", ":")),
     "error": "bad-field"},
    {"name": "auth-87-characters", "description": "A signature of 87 characters: neither hex nor base64 of 64 bytes.",
     "line": json.dumps({"type": "auth", "signature": base64.b64encode(auth_signature).decode("ascii")[:87]}, separators=(",", ":")),
     "error": "bad-field"},
]


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "vectors", "compact.json")
    names = [v["name"] for v in valid + invalid + frames + binary + binary_invalid]
    assert len(names) == len(set(names)), "vector names must be unique"
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"comment": "Compact change sets of protocol 3 (Protocol/PROTOCOL.md 2.3.1), written by tools/make_compact_vectors.py.",
                   "keys": {"north": mv.public_hex(mv.KEY), "south": mv.public_hex(mv.OTHER_KEY), "central": mv.public_hex(mv.OTHER_KEY)},
                   "valid": valid, "invalid": invalid, "frames": frames,
                   "binaryFrames": binary, "binaryInvalid": binary_invalid}, f, indent=2)
        f.write("\n")
    print(f"wrote {path}: {len(valid)} valid, {len(invalid)} invalid, {len(frames)} frames")
