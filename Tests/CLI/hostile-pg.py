# A "PostgreSQL" that authenticates any client, says ReadyForQuery, then never answers a query.
# With --version NUM TEXT it answers every query instead with one row (NUM as int8, TEXT as text), as
# a server of that version answers `SELECT current_setting('server_version_num')::int8,
# current_setting('server_version')`: an old server, for the mirror's version check.
#   python3 hostile-pg.py PORT [--version 110022 11.22]
import socket, struct, sys, threading
port = int(sys.argv[1])
version = (int(sys.argv[3]), sys.argv[4]) if len(sys.argv) > 4 and sys.argv[2] == "--version" else None
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(5)

def recv_exact(c, n):
    data = b""
    while len(data) < n:
        part = c.recv(n - len(data))
        if not part: raise EOFError
        data += part
    return data

def message(kind, body):
    return kind + struct.pack("!i", len(body) + 4) + body

def answer(c):
    """Answers each extended-protocol query (Parse … Sync) with the one row of `version`."""
    num, text = version
    field = lambda name, oid, size: name + b"\0" + struct.pack("!ihihih", 0, 0, oid, size, -1, 1)
    while True:
        kind = recv_exact(c, 1)
        n, = struct.unpack("!i", recv_exact(c, 4))
        recv_exact(c, n - 4)
        if kind == b"X": return
        if kind != b"S": continue
        row = struct.pack("!h", 2) + struct.pack("!i", 8) + struct.pack("!q", num) + struct.pack("!i", len(text.encode())) + text.encode()
        c.sendall(message(b"1", b"") + message(b"t", struct.pack("!h", 0))
                  + message(b"T", struct.pack("!h", 2) + field(b"current_setting", 20, 8) + field(b"current_setting", 25, -1))
                  + message(b"2", b"") + message(b"D", row) + message(b"C", b"SELECT 1\0") + message(b"Z", b"I"))

def handle(c):
    try:
        while True:
            hdr = recv_exact(c, 8)
            n, code = struct.unpack("!ii", hdr)
            rest = recv_exact(c, n - 8) if n > 8 else b""
            if code == 80877103:  # SSLRequest
                c.sendall(b"N"); continue
            break
        c.sendall(b"R" + struct.pack("!ii", 8, 0))
        c.sendall(b"K" + struct.pack("!iii", 12, 1234, 5678))
        c.sendall(b"Z" + struct.pack("!i", 5) + b"I")
        if version:
            return answer(c)
        while True:
            d = c.recv(65536)
            if not d: return
            sys.stderr.write("got %d bytes (ignored)\n" % len(d)); sys.stderr.flush()
    except EOFError:
        return
    except Exception as e:
        sys.stderr.write("err %r\n" % e)
while True:
    c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
