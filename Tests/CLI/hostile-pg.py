# A "PostgreSQL" that authenticates any client, says ReadyForQuery, then never answers a query.
import socket, struct, sys, threading, time
port = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(5)
def handle(c):
    try:
        while True:
            hdr = c.recv(8)
            if len(hdr) < 8: return
            n, code = struct.unpack("!ii", hdr)
            rest = c.recv(n - 8) if n > 8 else b""
            if code == 80877103:  # SSLRequest
                c.sendall(b"N"); continue
            break
        c.sendall(b"R" + struct.pack("!ii", 8, 0))
        c.sendall(b"K" + struct.pack("!iii", 12, 1234, 5678))
        c.sendall(b"Z" + struct.pack("!i", 5) + b"I")
        while True:
            d = c.recv(65536)
            if not d: return
            sys.stderr.write("got %d bytes (ignored)\n" % len(d)); sys.stderr.flush()
    except Exception as e:
        sys.stderr.write("err %r\n" % e)
while True:
    c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
