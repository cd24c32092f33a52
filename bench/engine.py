#!/usr/bin/env python3
"""The engine's figures of issue 13, oxcart against podman (+ runc) in the same run.

Method (../shared/BENCHMARKING.md): the kernel tears containers down asynchronously,
so every timed command is preceded by a pause, the two engines alternate within each
pair (who goes first alternates too), and we report the median of the per-pair
ratios oxcart/podman. `--calibrate` times podman against podman, which must come out
near 1.0 for the method to be trusted.

Figures (--only picks some):
  run     `run --rm --network none IMG true`
  detach  `run -d --network none IMG sleep 1000` + `rm -f`
  ps      `ps -a` with 100 created containers
  logs    1 GiB of lines to stdout: `run -d` + `wait` until the log has it all, then
          `logs` read back to /dev/null (json-file via oxcart-monitor vs k8s-file via conmon)
  rss     VmRSS of oxcart-monitor vs conmon for one running container
  stats   `stats --no-stream` of 50 running containers (`sleep 1000`, --network none)
  bridge  `run --rm IMG true` on each engine's default network (oxcart's bridge,
          podman's CNI or netavark bridge), with oxcart's `--network none` in the same
          rounds: ratio to podman, and oxcart's bridge minus its `none` (issue 14)

Everything lives in a private temp dir: oxcart's --root/--runroot, podman's --root,
--runroot, --tmpdir and events log; the host's podman and oxcart state is not touched.
All containers, images and roots made are removed at the end.

Usage: sudo bench/engine.py [--pairs 20] [--pause 0.25] [--only run,detach,ps,logs,rss,stats,bridge]
                            [--oxcart target/x86_64-unknown-linux-gnu/release/oxcart] [--calibrate]
                            [--log-mib 1024] [--log-pairs 3]
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
LINES_FILE = 8 * 1024 * 1024


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, **kw)


def make_tar(tmp):
    """A busybox-static image as a plain tar (both engines `import` it)."""
    root = os.path.join(tmp, "bbroot")
    os.makedirs(os.path.join(root, "bin"))
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        os.makedirs(os.path.join(root, d))
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    apps = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    for a in apps.stdout.split():
        if a != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")
    # 8 MiB of 100-byte lines, `cat` 128 times per GiB by the log figure: no `yes |
    # head`, whose `yes` spins forever where a runtime leaves SIGPIPE ignored.
    with open(os.path.join(root, "lines"), "w") as f:
        f.write(("a" * 99 + "\n") * (LINES_FILE // 100) + "a" * (LINES_FILE % 100 - 1) + "\n")
    tar = os.path.join(tmp, "bb.tar")
    sh(["tar", "-C", root, "-cf", tar, "."])
    return tar


class Oxcart:
    name = "oxcart"

    def __init__(self, binary, tmp, tar):
        self.base = [binary, "--root", os.path.join(tmp, "ox-root"), "--runroot", os.path.join(tmp, "ox-run")]
        sh(self.base + ["import", tar, "bb"], stdout=subprocess.DEVNULL)
        self.image = "bb"

    def run_args(self):
        return []

    def rm_args(self):
        return []

    def cmd(self, *a):
        return self.base + list(a)

    def monitor_pid(self, cid):
        out = subprocess.run(self.cmd("inspect", "--format", "{{.State.Pid}}", cid),
                             capture_output=True, text=True, check=True).stdout.strip()
        # The monitor is the container init's parent (it is a subreaper).
        return int(open(f"/proc/{out}/stat").read().rsplit(")", 1)[1].split()[1])

    def rm_all(self):
        ids = subprocess.run(self.cmd("ps", "-aq"), capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(self.cmd("rm", "-f", *ids), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cleanup(self):
        self.rm_all()
        subprocess.run(self.cmd("rmi", "-f", "bb"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The default bridge and this root's nftables table go when idle.
        subprocess.run(self.cmd("network", "prune", "-f"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Podman:
    def __init__(self, tmp, tar, tag="podman"):
        self.name = tag
        d = os.path.join(tmp, tag)
        os.makedirs(os.path.join(d, "tmp"))
        self.base = ["podman", "--root", os.path.join(d, "storage"), "--runroot", os.path.join(d, "run"),
                     "--tmpdir", os.path.join(d, "tmp"), "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--runtime", "runc"]
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"))
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write(f'[engine]\nevents_logfile_path = "{d}/events.log"\n')
        sh(self.base + ["import", tar, "localhost/bb"], stdout=subprocess.DEVNULL, env=self.env)
        self.image = "localhost/bb"

    def run_args(self):
        # podman's default ulimits exceed these hosts' hard limits (docs/clients.md).
        return ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    def rm_args(self):
        # podman's `rm -f` stops with the stop timeout (10 s for a `sleep` that ignores
        # SIGTERM as pid 1); docker's `rm -f` (and oxcart's) kills at once: -t 0 is that.
        return ["-t", "0"]

    def cmd(self, *a):
        return self.base + list(a)

    def monitor_pid(self, cid):
        out = subprocess.run(self.cmd("inspect", "--format", "{{.State.ConmonPid}}", cid),
                             capture_output=True, text=True, check=True, env=self.env).stdout
        return int(out.strip())

    def rm_all(self):
        subprocess.run(self.cmd("rm", "-af", "-t0"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)

    def cleanup(self):
        self.rm_all()
        subprocess.run(self.cmd("rmi", "-af"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        # podman leaves its overlay/shm mounts under its own root mounted.
        d = os.path.dirname(self.base[2])
        mounts = [l.split()[1] for l in open("/proc/self/mounts") if l.split()[1].startswith(d + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


def timed(e, args, stdout=subprocess.DEVNULL):
    t0 = time.perf_counter()
    r = subprocess.run(e.cmd(*args), stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                       env=getattr(e, "env", None))
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{e.name} {' '.join(args)}: exit {r.returncode}: {r.stderr.decode().strip()}")
    return dt, r


def pairs(a, b, n, pause, one):
    """n pairs of `one(engine)` alternating a and b; (median a, median b, median ratio a/b)."""
    ta, tb, ratios = [], [], []
    for i in range(n):
        res = {}
        for e in ((a, b) if i % 2 == 0 else (b, a)):
            time.sleep(pause)
            res[e] = one(e)
        ta.append(res[a]); tb.append(res[b]); ratios.append(res[a] / res[b])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def fig_run(e):
    return timed(e, ["run", "--rm", "--network", "none"] + e.run_args() + [e.image, "true"])[0]


def fig_bridge(e):
    return timed(e, ["run", "--rm"] + e.run_args() + [e.image, "true"])[0]


def bridge_rounds(ox, pod, n, pause):
    """oxcart bridge, oxcart none and podman bridge in every round, in rotating order."""
    kinds = [("ox-bridge", ox, fig_bridge), ("ox-none", ox, fig_run), ("podman-bridge", pod, fig_bridge)]
    t = {k: [] for k, _, _ in kinds}
    for i in range(n):
        for k, e, f in kinds[i % 3:] + kinds[:i % 3]:
            time.sleep(pause)
            t[k].append(f(e))
    med = {k: statistics.median(v) * 1000 for k, v in t.items()}
    ratio = statistics.median(b / p for b, p in zip(t["ox-bridge"], t["podman-bridge"]))
    diff = statistics.median((b - z) * 1000 for b, z in zip(t["ox-bridge"], t["ox-none"]))
    print(f"{'run --rm IMG true, default bridge':<42} {ox.name} {med['ox-bridge']:8.1f} ms   "
          f"{pod.name} {med['podman-bridge']:8.1f} ms   ratio {ratio:.3f}  ({n} rounds)", flush=True)
    print(f"{'  oxcart --network none, same rounds':<42} {ox.name} {med['ox-none']:8.1f} ms   "
          f"bridge minus none (median of per-round differences) {diff:+.1f} ms", flush=True)


def fig_detach(e):
    dt, r = timed(e, ["run", "-d", "--network", "none"] + e.run_args() + [e.image, "sleep", "1000"],
                  stdout=subprocess.PIPE)
    cid = r.stdout.decode().strip()
    return dt + timed(e, ["rm", "-f"] + e.rm_args() + [cid])[0]


def fig_ps(e):
    return timed(e, ["ps", "-a"])[0]


def fill(e, n):
    for i in range(n):
        # Named: generated names may collide within 100 creates.
        sh(e.cmd("create", "--name", f"ps{i}", "--network", "none", *e.run_args(), e.image, "true"),
           stdout=subprocess.DEVNULL, env=getattr(e, "env", None))


def log_cmd(mib):
    # 100-byte lines: line-oriented, as a chatty service writes.
    n = mib * 1024 * 1024 // LINES_FILE
    return ["sh", "-c", f"i=0; while [ $i -lt {n} ]; do cat /lines; i=$((i+1)); done"]


def fig_logs(e, mib):
    """(seconds until `wait` returns for a container writing mib MiB, seconds for `logs`)."""
    dt, r = timed(e, ["run", "-d", "--network", "none"] + e.run_args() + [e.image] + log_cmd(mib),
                  stdout=subprocess.PIPE)
    cid = r.stdout.decode().strip()
    dt += timed(e, ["wait", cid])[0]
    dl, r = timed(e, ["logs", cid], stdout=subprocess.DEVNULL)
    timed(e, ["rm", "-f"] + e.rm_args() + [cid])
    return dt, dl


def start_sleepers(e, n):
    for i in range(n):
        sh(e.cmd("run", "-d", "--name", f"st{i}", "--network", "none", *e.run_args(), e.image,
                 "sleep", "1000"), stdout=subprocess.DEVNULL, env=getattr(e, "env", None))


def fig_stats(e):
    dt, r = timed(e, ["stats", "--no-stream"], stdout=subprocess.PIPE)
    rows = len(r.stdout.decode().splitlines()) - 1
    if rows != 50:
        raise RuntimeError(f"{e.name} stats --no-stream listed {rows} containers, not 50")
    return dt


def rss_kib(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
    return 0


def fig_rss(e):
    dt, r = timed(e, ["run", "-d", "--network", "none"] + e.run_args() + [e.image, "sleep", "1000"],
                  stdout=subprocess.PIPE)
    cid = r.stdout.decode().strip()
    time.sleep(0.5)
    kib = rss_kib(e.monitor_pid(cid))
    timed(e, ["rm", "-f"] + e.rm_args() + [cid])
    return kib


def report(what, a, b, ma, mb, ratio, n):
    print(f"{what:<42} {a.name} {ma * 1000:8.1f} ms   {b.name} {mb * 1000:8.1f} ms   "
          f"ratio {ratio:.3f}  ({n} pairs)", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--pause", type=float, default=0.25)
    p.add_argument("--only", default="run,detach,ps,logs,rss")
    # The release build users get: static, from scripts/build-release.sh (its monitor
    # and runtime beside it).
    p.add_argument("--oxcart", default=os.path.join(HERE, "..", "target", "x86_64-unknown-linux-gnu", "release", "oxcart"))
    p.add_argument("--calibrate", action="store_true", help="podman against podman")
    p.add_argument("--log-mib", type=int, default=1024)
    p.add_argument("--log-pairs", type=int, default=3)
    o = p.parse_args()
    # A timeout's SIGTERM still runs the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = set(o.only.split(","))
    tmp = tempfile.mkdtemp(prefix="oxb-", dir="/tmp")
    engines = []
    try:
        tar = make_tar(tmp)
        b = Podman(tmp, tar); engines.append(b)
        if o.calibrate:
            a = Podman(tmp, tar, "podman2")
        else:
            a = Oxcart(os.path.abspath(o.oxcart), tmp, tar)
        engines.append(a)
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} {os.uname().release}, {os.cpu_count()} cpus; "
              f"{a.name} vs {b.name}; pause {o.pause}s", flush=True)
        for e in (a, b):  # warm caches (binaries, image store) outside the timing
            fig_run(e)
        if "run" in only:
            report("run --rm --network none IMG true", a, b, *pairs(a, b, o.pairs, o.pause, fig_run), o.pairs)
        if "detach" in only:
            report("run -d IMG sleep 1000 + rm -f", a, b, *pairs(a, b, o.pairs, o.pause, fig_detach), o.pairs)
        if "ps" in only:
            fill(a, 100); fill(b, 100)
            report("ps -a, 100 containers", a, b, *pairs(a, b, o.pairs, o.pause, fig_ps), o.pairs)
            a.rm_all(); b.rm_all()
        if "stats" in only:
            start_sleepers(a, 50); start_sleepers(b, 50)
            report("stats --no-stream, 50 running containers", a, b,
                   *pairs(a, b, o.pairs, o.pause, fig_stats), o.pairs)
            a.rm_all(); b.rm_all()
        if "logs" in only:
            w, r = [], []
            for i in range(o.log_pairs):
                res = {}
                for e in ((a, b) if i % 2 == 0 else (b, a)):
                    time.sleep(1.0)
                    res[e] = fig_logs(e, o.log_mib)
                w.append((res[a][0], res[b][0])); r.append((res[a][1], res[b][1]))
            for what, xs in ((f"{o.log_mib} MiB stdout -> log (run -d + wait)", w), ("logs > /dev/null", r)):
                report(what, a, b, statistics.median(x for x, _ in xs), statistics.median(y for _, y in xs),
                       statistics.median(x / y for x, y in xs), o.log_pairs)
        if "bridge" in only and not o.calibrate:
            fig_bridge(a); fig_bridge(b)  # the first use makes the bridge
            bridge_rounds(a, b, o.pairs, o.pause)
        if "rss" in only:
            ka, kb = fig_rss(a), fig_rss(b)
            print(f"{'monitor VmRSS, one running container':<42} {a.name} {ka / 1024:8.2f} MiB   "
                  f"{b.name} {kb / 1024:8.2f} MiB   ratio {ka / kb:.3f}", flush=True)
    finally:
        for e in engines:
            try:
                e.cleanup()
            except Exception as ex:  # keep cleaning the others
                print(f"cleanup {e.name}: {ex}", file=sys.stderr)
        mounts = [l.split()[1] for l in open("/proc/self/mounts") if l.split()[1].startswith(tmp + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
