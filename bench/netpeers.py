#!/usr/bin/env python3
"""Network figures of issue 14 side by side with podman 4.3 + netavark + aardvark-dns
(rootful, runc), in one run (../shared/BENCHMARKING.md): the engines alternate within
every round and we report medians and their ratio.

  dns   name-resolution latency inside a container: a client container sends N UDP
        queries, one at a time, for another container's name to the nameserver its
        /etc/resolv.conf names (oxcart: its resolver on 127.0.0.11 inside the
        container; podman: aardvark-dns on the network's gateway) and times each
        round trip. The client is the host's python3, mounted read-only.
  port  published-port throughput from the host's 127.0.0.1: a body (--mib, 64 MiB)
        served by busybox nc in the container, read by a client on the host; and the
        CPU time of the path per 64 MiB (class Cpu: client, proxy, container), which
        the host's other load does not inflate. oxcart's proxy has the kernel rewrite
        the client's connect() to the container's address (a cgroup connect4 program:
        one TCP connection from the gateway, no relay; docs/networking.md); podman's
        netavark DNATs 127.0.0.1 in the kernel (it sets route_localnet=1).
        --baseline OTHER_OXCART adds another build to the same rounds (main's relay).
  rtt   request/response round trip through a published port from 127.0.0.1: one
        connection to busybox `nc -e cat` (an echo) in the container, N exchanges of
        64 bytes, one at a time, without closing (a relay that holds a burst's tail
        shows here, not in `port`, where the close flushes everything).

Everything lives in a private temp dir (both engines' roots, podman's network config
and containers.conf); networks use 10.203.0.0/24 (oxcart) and 10.203.1.0/24 (podman).

Usage: sudo bench/netpeers.py [--rounds 7] [--queries 2000] [--exchanges 500]
                              [--only dns,port,rtt] [--mib 64]
                              [--oxcart target/release/oxcart] [--baseline OTHER]
"""
import argparse, os, shutil, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from engine import make_tar, sh  # noqa: E402

LIBS = ["-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro"]

QLOOP = r"""
import socket, struct, sys, time
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
name, n = sys.argv[1], int(sys.argv[2])
def q(i):
    return (struct.pack('>HHHHHH', i, 0x0100, 1, 0, 0, 0)
            + b''.join(bytes([len(p)]) + p.encode() for p in name.split('.'))
            + b'\0' + struct.pack('>HH', 1, 1))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ns, 53)); s.settimeout(2)
lat = []
for i in range(n + 100):
    m = q(i & 0xffff)
    t = time.perf_counter(); s.send(m); r = s.recv(512); dt = time.perf_counter() - t
    assert r[:2] == m[:2] and struct.unpack('>H', r[6:8])[0] >= 1, r
    if i >= 100:
        lat.append(dt)
lat.sort()
print(ns, lat[len(lat) // 2] * 1e6, lat[len(lat) * 99 // 100] * 1e6)
"""


class Engine:
    def run(self, *a, **kw):
        return subprocess.run(self.base + list(a), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, check=True, env=self.env, **kw).stdout

    def quiet(self, *a):
        subprocess.run(self.base + list(a), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=self.env)


class Oxcart(Engine):
    def __init__(self, binary, tmp, tar, name="oxcart", subnet="10.203.0.0/24"):
        self.name = name
        self.base = [binary, "--root", os.path.join(tmp, name + "-root"), "--runroot", os.path.join(tmp, name + "-run")]
        self.env = None
        self.run("import", tar, "bb")
        self.image, self.extra, self.subnet = "bb", [], subnet

    def cleanup(self):
        ids = self.run("ps", "-aq").split()
        if ids:
            self.quiet("rm", "-f", *ids)
        self.quiet("network", "prune", "-f")
        self.quiet("rmi", "-f", "bb")


class Podman(Engine):
    name = "podman"

    def __init__(self, tmp, tar):
        d = os.path.join(tmp, "podman")
        os.makedirs(os.path.join(d, "tmp"))
        os.makedirs(os.path.join(d, "networks"))
        self.base = ["podman", "--root", os.path.join(d, "storage"), "--runroot", os.path.join(d, "run"),
                     "--tmpdir", os.path.join(d, "tmp"), "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--runtime", "runc",
                     "--network-config-dir", os.path.join(d, "networks")]
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"))
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write(f'[engine]\nevents_logfile_path = "{d}/events.log"\n'
                    f'[network]\nnetwork_backend = "netavark"\n')
        self.run("import", tar, "localhost/bb")
        self.image, self.subnet = "localhost/bb", "10.203.1.0/24"
        # podman's default ulimits exceed these hosts' hard limits (docs/clients.md).
        self.extra = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
        backend = self.run("info", "--format", "{{.Host.NetworkBackend}}").strip()
        assert backend == "netavark", backend

    def cleanup(self):
        self.quiet("rm", "-af", "-t0")
        self.quiet("network", "prune", "-f")
        self.quiet("rmi", "-af")
        d = os.path.dirname(self.base[2])
        mounts = [l.split()[1] for l in open("/proc/self/mounts") if l.split()[1].startswith(d + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


def dns_setup(e):
    e.run("network", "create", "--subnet", e.subnet, "benchnet")
    e.run("run", "-d", "--name", "target", "--network", "benchnet", *e.extra, e.image, "sleep", "3600")


def dns_round(e, n):
    out = e.run("run", "--rm", "--network", "benchnet", *e.extra, *LIBS, e.image,
                "/usr/bin/python3", "-c", QLOOP, "target", str(n))
    ns, med, p99 = out.split()
    return ns, float(med), float(p99)


class Cpu:
    """CPU time of a transfer's path, load-independent where throughput is not (on a
    shared 2-core host the MB/s measure the other tenants as much as the path): the
    cpuacct cgroup this process moves itself into (the client, and what the engines
    start from here and leave running: oxcart's proxy, podman's conmon), plus the
    serving container's cgroup. Softirq work done outside these processes (ksoftirqd,
    the idle task) is not counted: perf showed ~2 % of the path for every engine."""

    def __init__(self):
        self.root = self._mount()
        self.mine = None
        if self.root:
            self.mine = os.path.join(self.root, f"oxnetpeers-{os.getpid()}")
            os.makedirs(self.mine, exist_ok=True)
            with open(os.path.join(self.mine, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    @staticmethod
    def _mount():
        for l in open("/proc/self/mountinfo"):
            pre, post = l.split(" - ")
            if post.split()[0] == "cgroup" and "cpuacct" in post.split()[2].split(","):
                return pre.split()[4]
        return None

    def usage(self, pid):
        """ns used by this process's cgroup and by the cgroup of `pid`."""
        if not self.root:
            return 0
        rel = next(l.strip().split(":", 2)[2] for l in open(f"/proc/{pid}/cgroup")
                   if "cpuacct" in l.split(":")[1].split(","))
        total = 0
        for d in (self.mine, self.root + rel):
            with open(os.path.join(d, "cpuacct.usage")) as f:
                total += int(f.read())
        return total

    def close(self):
        if not self.mine:
            return
        with open(os.path.join(self.root, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        # What the engines left here (a conmon still exiting) goes back too.
        for _ in range(50):
            try:
                for pid in open(os.path.join(self.mine, "cgroup.procs")).read().split():
                    with open(os.path.join(self.root, "cgroup.procs"), "w") as f:
                        f.write(pid)
                os.rmdir(self.mine)
                return
            except OSError:
                time.sleep(0.1)


def port_setup(e, port, mib):
    # On the user network: this host has a stale CNI bridge routing podman's default
    # 10.88.0.0/16 elsewhere, and both engines publish the same way on any bridge.
    e.run("run", "-d", "--name", "body", "--network", "benchnet", "-p", f"{port}:8080", *e.extra,
          e.image, "sh", "-c",
          f"dd if=/dev/zero bs=1M count={mib} 2>/dev/null > /tmp/body; nc -ll -p 8080 -e cat /tmp/body")
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return int(e.run("inspect", "--format", "{{.State.Pid}}", "body").strip())


def port_round(port, mib):
    # recv_into one buffer: the client's own cost per byte is the kernel's copy, not
    # Python allocating a bytes object per read.
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    n = 0
    s = socket.create_connection(("127.0.0.1", port))
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        n += k
    dt = time.perf_counter() - t0
    assert n == mib << 20, n
    return n / dt / 1e6


def rtt_setup(e, port):
    e.run("run", "-d", "--name", "echo", "--network", "benchnet", "-p", f"{port}:8081", *e.extra,
          e.image, "nc", "-ll", "-p", "8081", "-e", "cat")
    # Wait for the echo itself, not the port: oxcart's proxy accepts before nc listens.
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.settimeout(1)
            s.sendall(b"x")
            if s.recv(1) == b"x":
                s.close()
                return
        except OSError:
            pass
        time.sleep(0.05)


def rtt_round(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    msg = b"q" * 64
    lat = []
    for i in range(n + 20):
        t = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < len(msg):
            b = s.recv(64)
            assert b, "echo closed"
            got += len(b)
        if i >= 20:
            lat.append(time.perf_counter() - t)
    s.close()
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[len(lat) * 99 // 100] * 1e6


def order(engines, r):
    """Who goes first changes every round (rotation, and reversed every other round)."""
    k = r % len(engines)
    o = engines[k:] + engines[:k]
    return o if r % 2 == 0 else o[::-1]


def free_port():
    s = socket.socket()
    s.bind(("", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--exchanges", type=int, default=500)
    ap.add_argument("--only", default="dns,port,rtt")
    ap.add_argument("--mib", type=int, default=64, help="the port figure's body size")
    ap.add_argument("--oxcart", default=os.path.join(HERE, "..", "target", "release", "oxcart"))
    ap.add_argument("--baseline", help="a second oxcart binary measured in the same rounds")
    a = ap.parse_args()
    only = a.only.split(",")
    tmp = tempfile.mkdtemp(prefix="oxnetpeers-")
    engines = []
    meter = Cpu()
    try:
        tar = make_tar(tmp)
        engines = [Oxcart(os.path.abspath(a.oxcart), tmp, tar), Podman(tmp, tar)]
        if a.baseline:
            # Another oxcart build in the same rounds (e.g. main's, to A/B a change).
            engines.append(Oxcart(os.path.abspath(a.baseline), tmp, tar, "baseline", "10.203.2.0/24"))
        if "dns" in only:
            for e in engines:
                dns_setup(e)
            res = {e.name: [] for e in engines}
            for r in range(a.rounds):
                for e in order(engines, r):
                    time.sleep(0.25)
                    res[e.name].append(dns_round(e, a.queries))
            for e in engines:
                ns = res[e.name][0][0]
                med = statistics.median(x[1] for x in res[e.name])
                p99 = statistics.median(x[2] for x in res[e.name])
                print(f"dns {e.name:7} (nameserver {ns}): median {med:.0f} us, p99 {p99:.0f} us per query")
            ratios = [o[1] / p[1] for o, p in zip(res["oxcart"], res["podman"])]
            print(f"dns oxcart/podman median latency ratio: {statistics.median(ratios):.2f}")
        if "dns" not in only and ("port" in only or "rtt" in only):
            for e in engines:
                e.run("network", "create", "--subnet", e.subnet, "benchnet")
        if "port" in only:
            ports, pids = {}, {}
            for e in engines:
                ports[e.name] = free_port()
                pids[e.name] = port_setup(e, ports[e.name], a.mib)
            res = {e.name: [] for e in engines}
            cpu = {e.name: [] for e in engines}
            for r in range(a.rounds):
                for e in order(engines, r):
                    time.sleep(0.25)
                    c0 = meter.usage(pids[e.name])
                    res[e.name].append(port_round(ports[e.name], a.mib))
                    cpu[e.name].append((meter.usage(pids[e.name]) - c0) / 1e6 / (a.mib / 64))
            for e in engines:
                print(f"port {e.name:7} 127.0.0.1 -> published port: {statistics.median(res[e.name]):.0f} MB/s "
                      f"({a.mib} MiB, median of {a.rounds}); CPU {statistics.median(cpu[e.name]):.1f} ms "
                      f"per 64 MiB (client + relay + container)")
            for e in engines:
                if e.name != "podman":
                    ratios = [o / p for o, p in zip(res[e.name], res["podman"])]
                    print(f"port {e.name}/podman throughput ratio: {statistics.median(ratios):.2f} "
                          f"(per round: {' '.join(f'{x:.2f}' for x in ratios)})")
                    if not meter.root:
                        continue  # no cpuacct hierarchy (a pure v2 host): no CPU figure
                    ratios = [o / p for o, p in zip(cpu[e.name], cpu["podman"])]
                    print(f"port {e.name}/podman CPU per byte ratio: {statistics.median(ratios):.2f} "
                          f"(per round: {' '.join(f'{x:.2f}' for x in ratios)})")
        if "rtt" in only:
            ports = {}
            for e in engines:
                ports[e.name] = free_port()
                rtt_setup(e, ports[e.name])
            res = {e.name: [] for e in engines}
            for r in range(a.rounds):
                for e in order(engines, r):
                    time.sleep(0.25)
                    res[e.name].append(rtt_round(ports[e.name], a.exchanges))
            for e in engines:
                med = statistics.median(x[0] for x in res[e.name])
                p99 = statistics.median(x[1] for x in res[e.name])
                print(f"rtt  {e.name:7} 127.0.0.1 -> published port, 64-byte echo: median {med:.0f} us, "
                      f"p99 {p99:.0f} us ({a.exchanges} exchanges x {a.rounds})")
            for e in engines:
                if e.name != "podman":
                    ratios = [o[0] / p[0] for o, p in zip(res[e.name], res["podman"])]
                    print(f"rtt  {e.name}/podman median round-trip ratio: {statistics.median(ratios):.2f}")
    finally:
        for e in engines:
            e.cleanup()
        meter.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
