#!/usr/bin/env python3
"""What the port proxies' kernel bypass (crates/engine/src/network/bypass.rs) costs the
rest of the host: every TCP connect() (and getpeername(), and socket close) of every
process runs each running proxy's programs, which compare the destination with that
proxy's ports. A local client connects to a local server on 127.0.0.1 (a port no proxy
publishes) and closes, M times; rounds alternate between no proxy and N proxies
(`oxcart network-proxy`, one published TCP port each, no container), who goes first
alternating. Reported: the median CPU time of one connect + accept + close, and the
difference.

Usage: sudo bench/bypasscost.py [--oxcart target/release/oxcart] [--proxies 1,10,50]
                                [--connects 2000] [--rounds 7]
"""
import argparse, json, os, socket, statistics, subprocess, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))


def server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)

    def loop():
        while True:
            c, _ = srv.accept()
            c.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def proxies(binary, n, tmp):
    out = []
    for i in range(n):
        spec = {"ctr_ip": "192.0.2.254",
                "ports": [{"proto": "tcp", "host_ip": "127.0.0.1", "host_lo": 0, "host_hi": 0,
                           "ctr_port": 80}]}
        p = subprocess.Popen([binary, "network-proxy", json.dumps(spec), os.path.join(tmp, f"{i}.pid")],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        rep = json.loads(p.stdout.readline())
        assert rep.get("error") is None and rep.get("bypass_error") is None, rep
        out.append(p)
    return out


def stop(ps):
    for p in ps:
        p.kill()
    for p in ps:
        p.wait()


def connects(port, m):
    """CPU time of this process (client and server threads; the loopback's softirq
    runs in them) per connect + accept + close, in µs: the host's other load moves the
    wall-clock time of one connect 2x from round to round, the CPU time much less."""
    t = time.process_time()
    for _ in range(m):
        s = socket.create_connection(("127.0.0.1", port))
        s.close()
    return (time.process_time() - t) / m * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oxcart", default=os.path.join(HERE, "..", "target", "release", "oxcart"))
    ap.add_argument("--proxies", default="1,10,50")
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    binary = os.path.abspath(a.oxcart)
    port = server()
    tmp = tempfile.mkdtemp(prefix="oxbypasscost-")
    try:
        for n in map(int, a.proxies.split(",")):
            res = {"none": [], "with": []}
            for r in range(a.rounds):
                for arm in (("none", "with") if r % 2 == 0 else ("with", "none")):
                    ps = proxies(binary, n, tmp) if arm == "with" else []
                    time.sleep(0.2)
                    res[arm].append(connects(port, a.connects))
                    stop(ps)
            d = [w - o for w, o in zip(res["with"], res["none"])]
            print(f"{n:3} proxies: CPU per connect+close {statistics.median(res['with']):.1f} us, without "
                  f"{statistics.median(res['none']):.1f} us, difference {statistics.median(d):+.2f} us "
                  f"(median of {a.rounds} rounds x {a.connects})")
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
