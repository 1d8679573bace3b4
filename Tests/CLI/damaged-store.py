#!/usr/bin/env python3
"""A damaged or unreachable store is refused by every command, with what is wrong and what to do.

Usage: Tests/CLI/damaged-store.py PATH/TO/tierline

Checks, with real stores and processes (issue 22):
  * a store whose database has a table page overwritten in the middle (the `block` table's leaf page,
    found with SQLite's dbstat) is refused by status, ticket list, ticket create, sync, backup, serve and
    serve --check: exit 1, the message says the database is damaged and how to restore it
    (`tierline restore`), and the file is left byte for byte as it was;
  * a store whose index disagrees with its table (an index definition changed under it) passes the
    quick_check every command runs at open, and `serve --check` (SQLite's full integrity_check) refuses it;
  * a store this user may not read or write is refused naming the path and the permission problem, not
    "no store" or "site key missing": as root, the commands run as the user nobody (setpriv), since
    permission bits do not stop root; a site key nobody can read is "permission denied", not "missing";
  * a store on a read-only file system (a read-only bind mount in a mount namespace of its own, made
    with unshare) is refused saying so; skipped, with the reason, where this machine cannot make one.

Standard library only (sqlite3 for dbstat). Binds 127.0.0.1 only; every run is bounded; the temporary
folder is removed.
"""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Stop, check, free_port, require, tl  # noqa: E402

harness.find_binary()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_store(work, name, tickets=0):
    path = os.path.join(work, name)
    r = tl("init", "--store", path, "--site", name)
    require(f"init {name}", r.returncode == 0, r.stderr)
    for i in range(tickets):
        r = tl("ticket", "create", "--subject", f"Printer {i} offline", "--message", f"ticket {i}: " + "the queue stalls again. " * 40,
               "--store", path)
        require(f"create ticket {i} in {name}", r.returncode == 0, r.stderr)
    return path


def every_command(store, port):
    """(what, argv) of the commands that must refuse a damaged store."""
    return [
        ("status", ["status", "--store", store]),
        ("ticket list", ["ticket", "list", "--store", store]),
        ("ticket create", ["ticket", "create", "--subject", "More printers offline", "--store", store]),
        ("sync", ["sync", f"127.0.0.1:{port}", "--store", store]),
        ("backup", ["backup", os.path.join(os.path.dirname(store), "copy.db"), "--store", store]),
        ("serve", ["serve", "--listen", "127.0.0.1:0", "--store", store]),
        ("serve --check", ["serve", "--check", "--listen", "127.0.0.1:0", "--store", store]),
    ]


def damaged_checks(work):
    store = make_store(work, "north", tickets=40)
    db = os.path.join(store, "tierline.sqlite")
    # Every page into the database file first (the write-ahead log may still hold the newest ones), so
    # the page overwritten below is the one SQLite reads.
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = c.execute("PRAGMA page_size").fetchone()[0]
    pages = [p for (p,) in c.execute("SELECT pageno FROM dbstat WHERE name = 'block' AND pagetype = 'leaf' ORDER BY pageno")]
    c.close()
    require("the write-ahead log is empty (the database file holds every page)",
            not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0, os.listdir(store))
    require(f"the block table spans several leaf pages ({len(pages)})", len(pages) >= 3, pages)
    victim = pages[len(pages) // 2]
    with open(db, "r+b") as f:
        # Everything after the page header: the cell pointers and the records.
        f.seek((victim - 1) * page_size + 8)
        f.write(bytes([0xA5]) * (page_size - 8))
    before = digest(db)
    port = free_port()
    for what, args in every_command(store, port):
        r = tl(*args, timeout=120)
        text = r.stderr
        check(f"{what} refuses the damaged store: exit 1, says it is damaged and how to restore it",
              r.returncode == 1 and "is damaged" in text and "tierline restore" in text and "Backup and restore" in text
              and not r.stdout.strip(),
              f"exit {r.returncode}\nstdout {r.stdout[:300]!r}\nstderr {text[:600]!r}")
    check("the damaged database is left byte for byte as it was", digest(db) == before)
    check("no backup was written from it", not os.path.exists(os.path.join(work, "copy.db")), os.listdir(work))


def index_checks(work):
    store = make_store(work, "south", tickets=3)
    db = os.path.join(store, "tierline.sqlite")
    # An index whose entries no longer match its definition: every page is well formed (quick_check
    # passes), but the index disagrees with its table, which only integrity_check compares.
    c = sqlite3.connect(db)
    c.execute("PRAGMA writable_schema = ON")
    c.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX ticket_on_customer ON ticket (subject)' WHERE name = 'ticket_on_customer'")
    c.commit()
    c.close()
    r = tl("status", "--store", store)
    check("status opens a store whose pages are whole (quick_check passes)", r.returncode == 0, r.stderr[:600])
    r = tl("serve", "--check", "--listen", "127.0.0.1:0", "--store", store, timeout=120)
    check("serve --check runs integrity_check and refuses the index that disagrees with its table (exit 1)",
          r.returncode == 1 and "integrity_check" in r.stderr and "tierline restore" in r.stderr,
          f"exit {r.returncode}\nstderr {r.stderr[:600]!r}")


def as_other_user():
    """The command prefix that runs the binary as a user permission bits apply to, or None with why not."""
    if os.geteuid() != 0:
        return [], None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None, "running as root, where permission bits do not apply, and setpriv (util-linux) is missing"
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"], None


def run_as(prefix, *args):
    try:
        return subprocess.run(prefix + [harness.BIN, *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", "timed out after 60 s")


def permission_checks(work):
    prefix, why = as_other_user()
    if prefix is None:
        print(f"SKIP: permission checks: {why}")
        return
    # The user running the commands must reach the binary and the work folder.
    os.chmod(work, 0o755)
    store = make_store(work, "east")
    uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    for root, dirs, files in os.walk(store):
        for name in [root] + [os.path.join(root, f) for f in files]:
            os.chown(name, uid, gid)
    # A read-only store: the folder and its files without write permission.
    os.chmod(store, 0o500)
    for f in os.listdir(store):
        os.chmod(os.path.join(store, f), 0o400)
    for what, args in [("status", ["status", "--store", store]), ("ticket list", ["ticket", "list", "--store", store])]:
        r = run_as(prefix, *args)
        check(f"{what} on a store without write permission says permission denied, naming the path, not 'site key missing'",
              r.returncode == 1 and "permission denied" in r.stderr and store in r.stderr and "missing" not in r.stderr,
              f"exit {r.returncode}\nstderr {r.stderr[:600]!r}")
    # Writable again, but the key unreadable: it exists, so it is not "missing".
    os.chmod(store, 0o700)
    for f in os.listdir(store):
        os.chmod(os.path.join(store, f), 0o600)
    key = os.path.join(store, "site.key")
    os.chmod(key, 0o000)
    r = run_as(prefix, "status", "--store", store)
    check("status with a site key this user cannot read says permission denied on site.key, not 'missing'",
          r.returncode == 1 and "permission denied" in r.stderr and key in r.stderr and "missing" not in r.stderr,
          f"exit {r.returncode}\nstderr {r.stderr[:600]!r}")
    os.chmod(key, 0o600)
    r = run_as(prefix, "status", "--store", store)
    check("status works again once the permissions are right", r.returncode == 0, r.stderr[:600])
    # Another user's store: the folder cannot even be entered, so the database looks absent.
    if os.geteuid() == 0:
        other = make_store(work, "west")
        os.chmod(other, 0o700)
        r = run_as(prefix, "status", "--store", other)
        check("status on another user's store says permission denied and who owns it, not 'no store'",
              r.returncode == 1 and "permission denied" in r.stderr and "root" in r.stderr and "no store" not in r.stderr,
              f"exit {r.returncode}\nstderr {r.stderr[:600]!r}")


def read_only_fs_checks(work):
    store = make_store(work, "lap")
    probe = os.path.join(work, "probe")
    os.mkdir(probe)
    mount = f'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1"'
    prefix = None
    for candidate in (["unshare", "--mount"], ["unshare", "--map-root-user", "--mount"]):
        if shutil.which("unshare") is None:
            break
        r = subprocess.run(candidate + ["sh", "-c", mount + ' && ! touch "$1/x" 2>/dev/null', "sh", probe],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            prefix = candidate
            break
    if prefix is None:
        print("SKIP: read-only file system check: this machine cannot make a read-only bind mount (no unshare, or no mount namespaces)")
        return
    r = subprocess.run(prefix + ["sh", "-c", mount + ' && exec "$2" status --store "$1"', "sh", store, harness.BIN],
                       capture_output=True, text=True, timeout=60)
    check("status on a store on a read-only file system says so, naming the path",
          r.returncode == 1 and "read-only file system" in r.stderr and store in r.stderr and "missing" not in r.stderr,
          f"exit {r.returncode}\nstderr {r.stderr[:600]!r}")


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-damaged-")
    try:
        harness.private_copy(work)
        os.chmod(harness.BIN, 0o755)
        damaged_checks(work)
        index_checks(work)
        permission_checks(work)
        read_only_fs_checks(work)
    except Stop:
        pass
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        harness.summary("damaged-store", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
