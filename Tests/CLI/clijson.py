"""JSON helpers shared by the CLI scripts' python3 snippets."""
import json
import sys


def load(path):
    """The one JSON document in `path`, or a failure quoting what was there."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        fail(f"{path}: not one JSON document ({e}): {text[:300]!r}")


def fail(msg):
    print(msg)
    sys.exit(1)


def ensure(cond, msg):
    if not cond:
        fail(msg)


def where(items, **fields):
    """The dicts of `items` whose keys equal every given value, e.g. where(records, type="sla_breach")."""
    return [x for x in items if isinstance(x, dict) and all(x.get(k) == v for k, v in fields.items())]
