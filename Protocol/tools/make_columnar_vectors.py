#!/usr/bin/env python3
"""Writes Protocol/vectors/columnar.json: test vectors for the columnar change set of protocol 5
(section 2.3.3 of Protocol/PROTOCOL.md).

Written from the specification alone, independent of the Swift code in Sources/SyncWire. It imports
make_vectors.py for its section-1 block encoder and make_compact_vectors.py for its blocks kept with
their parts (importing either writes nothing). It builds each columnar change set from the blocks'
parts, and decodes every vector with its own decoder, which reads each payload by the grammar of
sections 1.5 and 1.6 and looks held entities up in the blocks the receiver holds, before writing.

Usage:  python3 Protocol/tools/make_columnar_vectors.py      (needs the `cryptography` package)
"""

import base64
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_vectors as mv  # noqa: E402
import make_compact_vectors as cv  # noqa: E402

Block, Bad = cv.Block, cv.Bad
MAX_SITES = 8192
MAX_ENTITIES = 4096 * 256
MAX_BATCH_BYTES = 4194304
SIGNATURE = 64
MAX_HELD_BLOCKS = 4096
FIELD_OPS = {2, 3, 4}  # set, add, remove: a field or set byte follows the op


# ---------------------------------------------------------------------------------------------
# Writing (2.3.3, "Writing")

def held_changes(batch, holds):
    """For each entity of `batch`, its smallest change (site id bytewise, seq, index) in `holds`."""
    wanted = {entity for b in batch for (_, entity, _, _) in b.changes}
    found = {}
    for b in holds:
        for index, (_, entity, _, _) in enumerate(b.changes):
            key = (mv.site_key(b.origin), b.seq, index)
            if entity in wanted and (entity not in found or key < found[entity][0]):
                found[entity] = (key, (b.origin, b.seq, index))
    return {entity: dot for entity, (_, dot) in found.items()}


def plane_width(entities):
    return 1 if entities <= 1 << 8 else 2 if entities <= 1 << 16 else 3


def encode_columnar(blocks, held=None, cap=True):
    """`held` maps an entity id (16 bytes) to the change (origin, seq, index) that names it. With
    `cap`, the writing rule: an entity whose change would lie in a block beyond the first
    MAX_HELD_BLOCKS named goes by id (without it, for an invalid vector)."""
    held = held or {}
    sites, ids, used_held, named_blocks = [], [], {}, set()

    def site_index(s):
        if s not in sites:
            sites.append(s)
        return sites.index(s)

    headers = b""
    for b in blocks:
        headers += mv.uvarint(site_index(b.origin)) + mv.uvarint(b.seq) + mv.u64(b.stamp)
        deps = sorted(b.deps, key=mv.site_key)
        headers += mv.uvarint(len(deps))
        for s in deps:
            headers += mv.uvarint(site_index(s)) + mv.uvarint(b.deps[s])
        headers += mv.uvarint(len(b.changes))
        for (_, entity, _, _) in b.changes:
            if entity in used_held or entity in ids:
                continue
            if entity in held and (not cap or len(named_blocks) < MAX_HELD_BLOCKS or held[entity][:2] in named_blocks):
                named_blocks.add(held[entity][:2])
                used_held[entity] = held[entity]
            else:
                ids.append(entity)
    held_order = sorted(used_held.items(), key=lambda item: (mv.site_key(item[1][0]), item[1][1], item[1][2]))
    for _, (origin, _, _) in held_order:
        site_index(origin)
    number = {entity: i for i, entity in enumerate(ids)}
    for i, (entity, _) in enumerate(held_order):
        number[entity] = len(ids) + i
    out = mv.uvarint(len(sites)) + b"".join(mv.site(s) for s in sites)
    out += mv.uvarint(len(ids)) + b"".join(ids)
    out += mv.uvarint(len(held_order))
    previous = 0
    for _, (origin, seq, index) in held_order:
        out += mv.uvarint(sites.index(origin)) + mv.svarint(seq - previous) + mv.uvarint(index)
        previous = seq
    out += headers
    changes = [c for b in blocks for c in b.changes]
    out += bytes(kind for (kind, _, _, _) in changes)
    classes = {}
    for (kind, entity, op, payload) in changes:
        if op in FIELD_OPS:
            out += bytes([op, payload[0]])
            key, rest = (op, payload[0]), payload[1:]
        else:
            out += bytes([op])
            key, rest = (op, 0), payload
        classes.setdefault(key, []).append(rest)
    width = plane_width(len(ids) + len(held_order))
    for plane in range(width):
        shift = 8 * (width - 1 - plane)
        out += bytes((number[entity] >> shift) & 0xFF for (_, entity, _, _) in changes)
    for key in sorted(classes):
        out += b"".join(classes[key])
    return out + b"".join(b.signature for b in blocks)


# ---------------------------------------------------------------------------------------------
# Reading (2.3.3, "Decoding")

read_uvarint, take = cv.read_uvarint, cv.take


def read_svarint(data, pos):
    raw, pos = read_uvarint(data, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def read_string(data, pos):
    length, pos = read_uvarint(data, pos)
    if length > mv.MAX_BLOCK_BYTES:
        raise Bad("bad-batch", "string length")
    return take(data, pos, length)


def payload_end(data, pos, op, field):
    """Where the payload of a change of `op` (and `field`) that starts at `pos` ends (1.5, 1.6)."""
    if op == 1:
        return read_uvarint(data, pos)[1]
    if op == 2:
        if field == mv.CUSTOM:
            pos = read_string(data, pos)[1]
        tag, pos = take(data, pos, 1)
        tag = tag[0]
        if tag == 0:
            return pos
        if tag == 1:
            return read_string(data, pos)[1]
        if tag == 2:
            return read_uvarint(data, pos)[1]
        if tag == 3:
            return take(data, pos, 1)[1]
        if tag == 4:
            return take(data, pos, 16)[1]
        if tag == 5:
            return read_uvarint(data, read_uvarint(data, pos)[1])[1]
        if tag == 6:
            return read_string(data, read_uvarint(data, pos)[1])[1]
        raise Bad("bad-batch", "unknown value tag %d" % tag)
    if op == 3:
        return read_string(data, pos)[1]
    if op == 4:
        pos = read_string(data, pos)[1]
        dots, pos = read_uvarint(data, pos)
        if dots > mv.MAX_DOTS:
            raise Bad("bad-batch", "observed dots")
        for _ in range(dots):
            pos = read_string(data, pos)[1]
            pos = read_uvarint(data, read_uvarint(data, pos)[1])[1]
        return pos
    pos = take(data, pos, 18)[1]
    return read_string(data, read_string(data, pos)[1])[1]


def change_entities(block):
    """The entity id of each change of a block given as bytes, read by section 1."""
    pos = 1
    pos = read_string(block, pos)[1]
    pos = read_uvarint(block, pos)[1] + 8
    deps, pos = read_uvarint(block, pos)
    for _ in range(deps):
        pos = read_uvarint(block, read_string(block, pos)[1])[1]
    count, pos = read_uvarint(block, pos)
    out = []
    for _ in range(count):
        out.append(block[pos + 1:pos + 17])
        op = block[pos + 17]
        pos += 18
        field = None
        if op in FIELD_OPS:
            field = block[pos]
            pos += 1
        pos = payload_end(block, pos, op, field)
    return out


def decode_columnar(data, count, holds=(), max_batch_bytes=MAX_BATCH_BYTES):
    """Puts `count` blocks back together, looking held entities up in `holds` (the bytes of the
    blocks the receiver holds); returns their bytes (section-1 decoding is step 11l, left to the
    caller)."""
    held_blocks = {}
    for raw in holds:
        origin, pos = read_string(raw, 1)
        held_blocks[(origin.decode("ascii"), read_uvarint(raw, pos)[0])] = raw
    # 11a
    sites, pos = cv.read_sites(data)
    n = len(sites)
    # 11b
    ids, pos = cv.read_ids(data, pos)
    id_count = len(ids)
    # 11c
    held_count, pos = read_uvarint(data, pos)
    if held_count > MAX_ENTITIES - id_count:
        raise Bad("bad-batch", "held count")
    held, seq = [], 0
    for _ in range(held_count):
        s, pos = read_uvarint(data, pos)
        if s >= n:
            raise Bad("bad-batch", "held site index")
        step, pos = read_svarint(data, pos)
        seq += step
        if not 1 <= seq < 1 << 63:
            raise Bad("bad-batch", "held seq")
        index, pos = read_uvarint(data, pos)
        if index >= mv.MAX_CHANGES:
            raise Bad("bad-batch", "held index")
        held.append((sites[s], seq, index))
    entities = id_count + held_count
    if entities < 1:
        raise Bad("bad-batch", "no entities")
    # 11d
    headers, total_changes = [], 0
    for _ in range(count):
        origin, block_seq, stamp, deps, change_count, pos = cv.read_header(data, pos, n)
        headers.append((origin, block_seq, stamp, deps, change_count))
        total_changes += change_count
    # 11e
    kinds, pos = take(data, pos, total_changes)
    # 11f
    ops, fields = [], []
    for _ in range(total_changes):
        op, pos = take(data, pos, 1)
        op = op[0]
        if not 1 <= op <= 5:
            raise Bad("bad-batch", "unknown op")
        ops.append(op)
        if op in FIELD_OPS:
            field, pos = take(data, pos, 1)
            fields.append(field[0])
        else:
            fields.append(0)
    # 11g
    width = plane_width(entities)
    if width * total_changes > len(data) - pos:
        raise Bad("bad-batch", "entity planes truncated")
    numbers = [0] * total_changes
    for _ in range(width):
        plane, pos = take(data, pos, total_changes)
        numbers = [(number << 8) | byte for number, byte in zip(numbers, plane)]
    if any(number >= entities for number in numbers):
        raise Bad("bad-batch", "entity number")
    # 11h
    payloads = [None] * total_changes
    for i in sorted(range(total_changes), key=lambda i: (ops[i], fields[i], i)):
        end = payload_end(data, pos, ops[i], fields[i] if ops[i] in FIELD_OPS else None)
        if end - pos > mv.MAX_BLOCK_BYTES:
            raise Bad("bad-batch", "payload over 1 MiB")
        payloads[i], pos = data[pos:end], end
    # 11i
    if len(data) - pos != count * SIGNATURE:
        raise Bad("bad-batch", "signatures")
    signatures = data[pos:]
    # 11j: sizes first, with 16 bytes for every entity: nothing is looked up for an oversized batch.
    def put_together(entity_of):
        blocks, change = [], 0
        for b, (origin, block_seq, stamp, deps, change_count) in enumerate(headers):
            body = bytes([1]) + mv.site(sites[origin]) + mv.uvarint(block_seq) + stamp + mv.uvarint(len(deps))
            for s, dep_seq in deps:
                body += mv.site(sites[s]) + mv.uvarint(dep_seq)
            body += mv.uvarint(change_count)
            for _ in range(change_count):
                body += bytes([kinds[change]]) + entity_of(numbers[change]) + bytes([ops[change]])
                if ops[change] in FIELD_OPS:
                    body += bytes([fields[change]])
                body += payloads[change]
                change += 1
            blocks.append(body + signatures[b * SIGNATURE:(b + 1) * SIGNATURE])
        return blocks

    total = 0
    for block in put_together(lambda number: bytes(16)):
        if len(block) > mv.MAX_BLOCK_BYTES:
            raise Bad("bad-batch", "block over 1 MiB")
        total += len(block)
        if total > max_batch_bytes:
            raise Bad("too-large", "blocks over maxBatchBytes")
    # 11k
    used = sorted(number - id_count for number in set(numbers) if number >= id_count)
    if len({held[entry][:2] for entry in used}) > MAX_HELD_BLOCKS:
        raise Bad("bad-batch", "held changes in too many blocks")
    resolved = {}
    for entry in used:
        origin, seq, index = held[entry]
        block = held_blocks.get((origin, seq))
        found = change_entities(block) if block is not None else []
        if index >= len(found):
            raise Bad("bad-batch", "held entity not held")
        resolved[id_count + entry] = found[index]
    return put_together(lambda number: ids[number] if number < id_count else resolved[number])


# ---------------------------------------------------------------------------------------------
# The vectors

north1, north2, south1, central1, ALL = cv.north1, cv.north2, cv.south1, cv.central1, cv.ALL
A, B = cv.A, cv.B

valid, invalid, frames = [], [], []


def add_valid(name, description, blocks, holds=()):
    held = held_changes(blocks, holds)
    columnar = encode_columnar(blocks, held)
    assert decode_columnar(columnar, len(blocks), [h.bytes for h in holds]) == [b.bytes for b in blocks], name
    valid.append({"name": name, "description": description, "count": len(blocks), "holds": [h.bytes.hex() for h in holds],
                  "columnar": columnar.hex(), "blocks": [b.bytes.hex() for b in blocks]})
    return columnar


def add_invalid(name, description, columnar, count, error, holds=()):
    try:
        decode_columnar(columnar, count, [h.bytes for h in holds])
    except Bad as bad:
        assert bad.code == error, (name, bad)
    else:
        # Only a block that does not decode once put back together passes here (step 11l, section 1).
        assert error == "bad-batch" and name.startswith("block-"), name
    item = {"name": name, "description": description, "count": count, "error": error, "holds": [h.bytes.hex() for h in holds]}
    if len(columnar) > 4096:
        item["columnarZlibBase64"] = base64.b64encode(zlib.compress(columnar, 9)).decode("ascii")
    else:
        item["columnar"] = columnar.hex()
    invalid.append(item)


def wide_blocks():
    """Two blocks of north creating 300 tickets between them: entity numbers need two planes."""
    tickets = ["01955f3a-0b4c-7d2e-9f10-%012d" % i for i in range(300)]
    first = Block("north", 1, cv.H, {}, [mv.create(t, i + 1) for i, t in enumerate(tickets[:150])]
                  + [mv.set_(t, "status", ("text", "new")) for t in tickets[:100]])
    second = Block("north", 2, cv.H + 1, {"north": 1}, [mv.create(t, i + 151) for i, t in enumerate(tickets[150:])]
                   + [mv.set_(t, "status", ("text", "open")) for t in tickets[:100]])
    return [first, second]


one = add_valid("one-block", "One block of one origin, no entity held: an id table of one, one plane of entity numbers, "
                "payloads grouped by op and field (create; set of subject, status; add; event).", [north1])
add_valid("relay-three-origins", "Four blocks of three origins, as a relay sends them to a node that holds none: deps name sites "
          "by index; the remove's observed dots stay in its payload.", ALL)
held_two = add_valid("held-entities", "The receiver holds north 1 and 2; south 1 and central 1 name tickets A and B by their "
                     "smallest held changes (north 1 change 0, north 2 change 1): an empty id table.", [south1, central1], [north1, north2])
add_valid("held-and-new", "The receiver holds north 1: ticket A goes by north 1 change 0, ticket B, created in the batch, by id; "
          "ids are numbered first, then held entries.", [north2, south1, central1], [north1])
add_valid("wide-entity-numbers", "300 tickets created in two blocks: numbers below 300 take two planes, all first bytes, then all second bytes.",
          wide_blocks())


def split(columnar):
    """The parts of a valid columnar change set of no held entry: (sites, ids, rest after the held count)."""
    n, pos = read_uvarint(columnar, 0)
    for _ in range(n):
        length, pos = read_uvarint(columnar, pos)
        pos += length
    sites_end = pos
    m, pos = read_uvarint(columnar, pos)
    ids_end = pos + 16 * m
    h, pos = read_uvarint(columnar, ids_end)
    assert h == 0
    return columnar[:sites_end], columnar[sites_end:ids_end], columnar[pos:]


def tables(sites, ids, held=()):
    out = mv.uvarint(len(sites)) + b"".join(mv.raw_string(s) for s in sites) + mv.uvarint(len(ids)) + b"".join(ids)
    out += mv.uvarint(len(held))
    for s, step, index in held:
        out += mv.uvarint(s) + mv.svarint(step) + mv.uvarint(index)
    return out


_, _, one_rest = split(one)
# one_rest: north 1's header (origin 0, seq 1, 8 bytes of hlc, 0 deps, 5 changes), then the columns.
HEADER = 1 + 1 + 8 + 1 + 1
add_invalid("empty", "No bytes at all: the site count is missing.", b"", 1, "bad-batch")
add_invalid("no-sites", "A site table of 0 sites.", tables([], [A]) + one_rest, 1, "bad-batch")
add_invalid("site-twice", "The site table lists north twice.", tables(["north", "north"], [A]) + one_rest, 1, "bad-batch")
add_invalid("id-twice", "The id table lists ticket A twice.", tables(["north"], [A, A]) + one_rest, 1, "bad-batch")
add_invalid("id-table-truncated", "The id count says 3 ids; only 2 follow before the change set ends.",
            mv.uvarint(1) + mv.raw_string("north") + mv.uvarint(3) + A + B, 1, "bad-batch")
add_invalid("held-site-outside", "A held entry names site index 1 of a site table of 1.",
            tables(["north"], [A], [(1, 1, 0)]) + one_rest, 1, "bad-batch")
add_invalid("held-seq-zero", "A held entry's seq step of 0 from 0: seq 0 names no block.",
            tables(["north"], [A], [(0, 0, 0)]) + one_rest, 1, "bad-batch")
add_invalid("held-index-256", "A held entry names change 256; a block holds at most 256 (0 … 255).",
            tables(["north"], [A], [(0, 1, 256)]) + one_rest, 1, "bad-batch")
add_invalid("no-entities", "Empty id and held tables: no change can name an entity.", tables(["north"], []) + one_rest, 1, "bad-batch")
add_invalid("origin-index-outside", "The block names origin index 1 of a site table of 1.",
            tables(["north"], [A]) + mv.uvarint(1) + one_rest[1:], 1, "bad-batch")
add_invalid("zero-changes", "A header with a change count of 0.",
            tables(["north"], [A]) + one_rest[:HEADER - 1] + mv.uvarint(0) + one_rest[HEADER:], 1, "bad-batch")
add_invalid("257-changes", "A header with a change count of 257.",
            tables(["north"], [A]) + one_rest[:HEADER - 1] + mv.uvarint(257) + one_rest[HEADER:], 1, "bad-batch")
add_invalid("kinds-truncated", "The change set ends after 3 of the 5 kind bytes.",
            tables(["north"], [A]) + one_rest[:HEADER + 3], 1, "bad-batch")
add_invalid("unknown-op", "The first change's op is 0x06, which section 1.5 does not define.",
            tables(["north"], [A]) + one_rest[:HEADER + 5] + b"\x06" + one_rest[HEADER + 6:], 1, "bad-batch")
OPS = HEADER + 5 + 1 + 2 + 2 + 2 + 1  # kinds; create; set subject; set status; add tags; event
assert one_rest[OPS - 1] == 5
add_invalid("entity-number-outside", "The first change names entity 1 of 1 (numbers run 0 … 0).",
            tables(["north"], [A]) + one_rest[:OPS] + b"\x01" + one_rest[OPS + 1:], 1, "bad-batch")
STATUS = one_rest.index(bytes([1, 3]) + b"new")  # the status payload: text tag, length 3, "new"
add_invalid("payload-unknown-value-tag", "The status payload's value tag is 0x09: its end cannot be read (section 1.6).",
            tables(["north"], [A]) + one_rest[:STATUS] + b"\x09" + one_rest[STATUS + 1:], 1, "bad-batch")
add_invalid("payload-beyond-end", "The event payload's body length runs past the end of the change set.",
            (tables(["north"], [A]) + one_rest)[:-SIGNATURE - 1 - len("It prints blank pages.")] + mv.uvarint(2000), 1, "bad-batch")
add_invalid("signature-cut", "The change set ends 1 byte into the signature.", one[:-1], 1, "bad-batch")
add_invalid("trailing-byte", "One byte after the signatures.", one + b"\x00", 1, "bad-batch")
add_invalid("count-too-high", "The frame's count says 2 blocks; the change set holds 1.", one, 2, "bad-batch")
add_invalid("non-canonical-varint", "The site count written as 81 00 (1 in two bytes).", b"\x81\x00" + one[1:], 1, "bad-batch")
add_invalid("held-block-not-held", "A valid change set naming tickets A and B by changes of north 1 and 2, given to a receiver "
            "that holds only north 1 (step 11k).", held_two, 2, "bad-batch", [north1])
add_invalid("held-change-not-there", "south 1 naming ticket A by north 1 change 5 (ticket B by id), to a receiver that holds "
            "north 1, whose changes are 0 … 4 (step 11k).", encode_columnar([south1], {A: ("north", 1, 5)}), 1, "bad-batch", [north1])
add_invalid("block-bad-status", "Put back together, the block does not decode: the status is the text \"nwe\", not a status "
            "(section 1: invalidValue).", one.replace(bytes([1, 3]) + b"new", bytes([1, 3]) + b"nwe"), 1, "bad-batch")



def held_in_many_blocks(n):
    """Blocks of one origin whose changes use `n` held entities, each named by a change in a block of
    its own (north seq 1 … n, change 0); the receiver holds none of them."""
    tickets = ["01955f3a-0b4c-7d2e-9f10-%012d" % (100000 + i) for i in range(n)]
    blocks = []
    for b in range((n + 255) // 256):
        part = tickets[b * 256:(b + 1) * 256]
        blocks.append(Block("south", b + 1, cv.H + b, {"south": b} if b else {},
                            [mv.set_(t, "deleted", ("flag", True)) for t in part], key=mv.OTHER_KEY))
    held = {mv.uuid(t): ("north", i + 1, 0) for i, t in enumerate(tickets)}
    # The writing rule names 4096 of them and sends the last by id; this vector breaks the rule.
    return blocks, encode_columnar(blocks, held, cap=False)


wide_held_blocks, wide_held = held_in_many_blocks(4097)
add_invalid("held-in-4097-blocks", "%d blocks whose 4097 changes each use a held entity named in a block of its own: more than "
            "the 4096 blocks one batch may make a receiver look up (step 11k, refused before any look-up)." % len(wide_held_blocks),
            wide_held, len(wide_held_blocks), "bad-batch")

many, many_bytes = cv.many_small_changes(MAX_BATCH_BYTES)
many_columnar = encode_columnar(many)
assert len(many_columnar) <= MAX_BATCH_BYTES < many_bytes and len(many) <= 4096, (len(many_columnar), many_bytes)
add_invalid("blocks-over-max-batch-bytes",
            "%d blocks of 256 short notes on one ticket: %d bytes put back together, over the 4 194 304 of maxBatchBytes, "
            "from a columnar change set of %d bytes, under it (step 11j, not step 4)." % (len(many), many_bytes, len(many_columnar)),
            many_columnar, len(many), "too-large")


def blocks_line(batch, blocks, held, level=6):
    columnar = encode_columnar(blocks, held)
    data = base64.b64encode(zlib.compress(columnar, level)).decode("ascii")
    return json.dumps({"type": "blocks", "batch": batch, "count": len(blocks), "size": len(columnar), "data": data},
                      separators=(",", ":"))


for name, blocks, holds in [("frame-relay", ALL, []), ("frame-held", [south1, central1], [north1, north2])]:
    text = blocks_line(1, blocks, held_changes(blocks, holds))
    obj = json.loads(text)
    raw = zlib.decompress(base64.b64decode(obj["data"]))
    assert len(raw) == obj["size"] and decode_columnar(raw, obj["count"], [h.bytes for h in holds]) == [b.bytes for b in blocks]
    frames.append({"name": name, "description": "A protocol-5 blocks frame: base64 of the zlib stream of the columnar change set.",
                   "holds": [h.bytes.hex() for h in holds], "line": text, "blocks": [b.bytes.hex() for b in blocks]})


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "vectors", "columnar.json")
    names = [v["name"] for v in valid + invalid + frames]
    assert len(names) == len(set(names)), "vector names must be unique"
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"comment": "Columnar change sets of protocol 5 (Protocol/PROTOCOL.md 2.3.3), written by tools/make_columnar_vectors.py. "
                   "`holds` lists the blocks the receiver holds, for held entities.",
                   "keys": {"north": mv.public_hex(mv.KEY), "south": mv.public_hex(mv.OTHER_KEY), "central": mv.public_hex(mv.OTHER_KEY)},
                   "valid": valid, "invalid": invalid, "frames": frames}, f, indent=2)
        f.write("\n")
    print(f"wrote {path}: {len(valid)} valid, {len(invalid)} invalid, {len(frames)} frames")
