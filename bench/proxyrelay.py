#!/usr/bin/env python3
"""Round trips through oxcart's port proxy alone (`oxcart network-proxy`, no container):
a local TCP server on 127.0.0.1, reached directly and through the proxy, in turns.

  one   the server answers each 4-byte request with one 100-byte write
  two   the server sets TCP_NODELAY and answers in two 50-byte writes 0.5 ms apart (a
        header, then a body): a relay that leaves Nagle on holds the second write
        until the client's delayed ACK of the first (~40 ms)

The client binds to 127.0.0.1 before connecting, so the proxy's kernel bypass of the
relay for the host's loopback (docs/networking.md) leaves it to the relay.

Before 2026-12-06 the proxy spliced with SPLICE_F_MORE (every reply corked, ~0.4 s)
and without TCP_NODELAY; docs/benchmarks.md has the figures. Give `--oxcart` an older
build to see them.

Usage: sudo bench/proxyrelay.py [--oxcart target/release/oxcart] [--exchanges 200] [--rounds 5]
"""
import argparse, json, os, socket, statistics, subprocess, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))


def server(pattern):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def handle(c):
        if pattern == "two":
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while c.recv(64):
            if pattern == "two":
                c.sendall(b"h" * 50)
                time.sleep(0.0005)  # the body is ready a moment after the header
                c.sendall(b"b" * 50)
            else:
                c.sendall(b"x" * 100)
        c.close()

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def proxy(binary, target, tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    spec = {"ctr_ip": "127.0.0.1",
            "ports": [{"proto": "tcp", "host_ip": "127.0.0.1", "host_lo": port, "host_hi": port,
                       "ctr_port": target}]}
    p = subprocess.Popen([binary, "network-proxy", json.dumps(spec), os.path.join(tmp, f"{port}.pid")],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    rep = json.loads(p.stdout.readline())
    assert rep.get("error") is None, rep
    return p, port


def exchanges(port, n):
    # Bound to 127.0.0.1 before connecting: the proxy's kernel bypass (bypass.rs) leaves
    # such a socket to the relay, which is what this measures (both arms alike).
    c = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.1", 0))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.settimeout(5)
    lat = []
    for i in range(n + 10):
        t = time.perf_counter()
        c.sendall(b"ping")
        got = 0
        while got < 100:
            b = c.recv(100)
            assert b, "closed"
            got += len(b)
        if i >= 10:
            lat.append(time.perf_counter() - t)
    c.close()
    return statistics.median(lat) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oxcart", default=os.path.join(HERE, "..", "target", "release", "oxcart"))
    ap.add_argument("--exchanges", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="oxproxyrelay-")
    procs = []
    try:
        for pattern in ("one", "two"):
            target = server(pattern)
            p, port = proxy(os.path.abspath(a.oxcart), target, tmp)
            procs.append(p)
            res = {"direct": [], "proxy": []}
            for r in range(a.rounds):
                arms = [("direct", target), ("proxy", port)]
                for name, pt in (arms if r % 2 == 0 else arms[::-1]):
                    time.sleep(0.1)
                    res[name].append(exchanges(pt, a.exchanges))
            d, x = statistics.median(res["direct"]), statistics.median(res["proxy"])
            print(f"{pattern}: direct {d:.0f} us, through the proxy {x:.0f} us per round trip "
                  f"(median of {a.rounds} x {a.exchanges})")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
