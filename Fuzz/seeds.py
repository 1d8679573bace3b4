#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from Protocol/vectors/.

    seeds.py OUT_DIR

OUT_DIR/FuzzFrame      every line of frames.json (valid and invalid), one file each
OUT_DIR/FuzzChangeSet  the payload of every blocks frame, in the harness's layout (FuzzChangeSet.swift)
OUT_DIR/FuzzBlock      every block of blocks.json and every block inside a blocks frame
OUT_DIR/FuzzColumnar   every columnar change set of columnar.json, in the harness's layout (FuzzColumnar.swift)
OUT_DIR/FuzzChangeSet also gets single-block change sets made from blocks.json, and every target
the files of Protocol/vectors/regressions/ meant for its decoder.

Seeds larger than MAX_SEED bytes (the limit vectors) are left out: libFuzzer would cut them to
-max_len anyway, and they slow every mutation.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import zlib

MAX_SEED = 16384
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "Protocol", "vectors")

# Flags of FuzzChangeSet's first byte.
RAW, TEXT, VIA_FRAME, KEYS = 1, 2, 4, 8


SEEN = set()


def write(directory, name, data):
    """Writes one seed, unless it is too large or the folder has it already."""
    if len(data) > MAX_SEED or (directory, data) in SEEN:
        return
    SEEN.add((directory, data))
    os.makedirs(directory, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(directory, f"{name}-{digest}"), "wb") as f:
        f.write(data)


def change_set_seed(flags, count, size, payload):
    return bytes([flags]) + struct.pack(">hi", max(-32768, min(32767, count)),
                                        max(-2**31, min(2**31 - 1, size))) + payload


def split_change_set(raw):
    """The blocks of an inflated change set, as far as it splits into length-prefixed entries."""
    blocks, i = [], 0
    while i < len(raw):
        length, shift = 0, 0
        while i < len(raw):
            b = raw[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if length > len(raw) - i:
            break
        blocks.append(raw[i:i + length])
        i += length
    return blocks


def main(out):
    with open(os.path.join(VECTORS, "frames.json")) as f:
        frames = json.load(f)
    with open(os.path.join(VECTORS, "blocks.json")) as f:
        block_vectors = json.load(f)

    frame_dir = os.path.join(out, "FuzzFrame")
    change_dir = os.path.join(out, "FuzzChangeSet")
    block_dir = os.path.join(out, "FuzzBlock")

    for kind in ("valid", "invalid"):
        for vector in frames[kind]:
            name = vector["name"]
            if "lineBase64" in vector:
                line = base64.b64decode(vector["lineBase64"])
            else:
                line = vector["line"].encode()
            write(frame_dir, name, line)
            try:
                frame = json.loads(line)
            except ValueError:
                continue
            if not isinstance(frame, dict) or frame.get("type") != "blocks" or not isinstance(frame.get("data"), str):
                continue
            count = frame.get("count") if isinstance(frame.get("count"), int) else 1
            size = frame.get("size") if isinstance(frame.get("size"), int) else 1
            text = frame["data"].encode()
            write(change_dir, name + "-text", change_set_seed(TEXT, count, size, text))
            try:
                stream = base64.b64decode(text, validate=True)
            except ValueError:
                continue
            write(change_dir, name + "-zlib", change_set_seed(0, count, size, stream))
            write(change_dir, name + "-zlib-frame", change_set_seed(VIA_FRAME, count, size, stream))
            try:
                raw = zlib.decompress(stream)
            except zlib.error:
                continue
            write(change_dir, name + "-raw", change_set_seed(RAW, count, size, raw))
            write(change_dir, name + "-raw-frame", change_set_seed(RAW | VIA_FRAME | KEYS, count, size, raw))
            # The limit vectors hold thousands of like filler blocks; a few of each frame are enough.
            for index, block in enumerate(split_change_set(raw)[:8]):
                write(block_dir, f"{name}-{index}", block)

    for kind in ("valid", "invalid"):
        for vector in block_vectors[kind]:
            block = bytes.fromhex(vector["hex"])
            write(block_dir, vector["name"], block)
            entry = bytes([len(block) & 0x7F | 0x80, len(block) >> 7]) if len(block) >= 0x80 else bytes([len(block)])
            write(change_dir, vector["name"] + "-raw", change_set_seed(RAW, 1, 0, entry + block))

    regressions = os.path.join(VECTORS, "regressions")
    with open(os.path.join(regressions, "index.json")) as f:
        for vector in json.load(f)["vectors"]:
            with open(os.path.join(regressions, vector["file"]), "rb") as data:
                content = data.read()
            name = "regression-" + vector["name"]
            if vector["decoder"] == "frame":
                write(frame_dir, name, content)
            elif vector["decoder"] == "block":
                write(block_dir, name, content)
            else:
                write(change_dir, name, change_set_seed(TEXT, vector["count"], vector["size"], content))

    # FuzzColumnar: every columnar change set of columnar.json, as the receiver holding everything
    # (flag 1) and as one holding nothing (flag 0).
    columnar_dir = os.path.join(out, "FuzzColumnar")
    with open(os.path.join(VECTORS, "columnar.json")) as f:
        columnar = json.load(f)
    for vector in columnar["valid"] + columnar["invalid"]:
        if "columnar" not in vector:
            continue
        raw = bytes.fromhex(vector["columnar"])
        for flags in (0, 1):
            write(columnar_dir, vector["name"], struct.pack(">H", vector["count"] & 0xFFFF) + bytes([flags]) + raw)

    for directory in (frame_dir, change_dir, block_dir, columnar_dir):
        print(f"{os.path.basename(directory)}: {len(os.listdir(directory))} seeds")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
