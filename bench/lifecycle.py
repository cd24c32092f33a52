#!/usr/bin/env python3
"""Time `create` + `start` + `delete -f` of a busybox container running `true`,
oxcart-runtime against runc (and crun / youki when installed), side by side.

Method (../shared/BENCHMARKING.md): the kernel tears containers down asynchronously,
so every timed run is preceded by a pause, runtimes alternate within each round, and
we report the median of per-round ratios against runc. `--calibrate` times runc
against itself, which must come out near 1.0 for the method to be trusted.

Modes:
  --mode lifecycle   create + start + delete -f of `true` (default)
  --mode exec        `exec` of `true` into a running container
  --mode concurrent  100 containers `run -d` concurrently, then all deleted (total wall)
  --mode rss         peak RSS of each process of `create` (/usr/bin/time -v per run)

Usage: sudo bench/lifecycle.py [--mode M] [--rounds 30] [--pause 0.25] [--calibrate]
                               [--oxcart target/x86_64-unknown-linux-gnu/release/oxcart-runtime]
                               [--oxcart-b OTHER-BUILD]  (A/B: also reports B/A)
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

def make_bundle(oxcart):
    d = tempfile.mkdtemp(prefix="oxcart-bench-")
    rootfs = os.path.join(d, "rootfs", "bin")
    os.makedirs(rootfs)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "busybox"))
    for a in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split():
        if a != "busybox":
            os.symlink("busybox", os.path.join(rootfs, a))
    # runc's default config (cgroups on), made non-interactive, running `true`.
    subprocess.run([oxcart, "spec", "--bundle", d], check=True)
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    # The oldest 1.0.x version every runtime accepts (crun 1.8 refuses 1.2.0).
    cfg["ociVersion"] = "1.0.2"
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    return d

def lifecycle(binary, root, bundle, cid, errf):
    # The container inherits stdio: a pipe would keep subprocess.run waiting for EOF
    # until the container exits, so stderr goes to a file.
    devnull = subprocess.DEVNULL
    t0 = time.perf_counter()
    for args in (["create", "--bundle", bundle, cid], ["start", cid], ["delete", "-f", cid]):
        errf.seek(0)
        errf.truncate()
        r = subprocess.run([binary, "--root", root] + args, stdin=devnull, stdout=devnull, stderr=errf)
        if r.returncode != 0:
            errf.seek(0)
            raise RuntimeError(f"{binary} {' '.join(args)}: {errf.read().decode().strip()}")
    return time.perf_counter() - t0

def exec_true(binary, root, cid, errf):
    errf.seek(0)
    errf.truncate()
    t0 = time.perf_counter()
    r = subprocess.run([binary, "--root", root, "exec", cid, "true"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=errf)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        errf.seek(0)
        raise RuntimeError(f"{binary} exec: {errf.read().decode().strip()}")
    return dt

def concurrent(binary, root, bundle, n, tag):
    """`run -d` n containers at once, then delete them all; total wall time."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([binary, "--root", root, "run", "-d", "--bundle", bundle, f"{tag}{i}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(n)]
    failed = sum(1 for p in procs if p.wait() != 0)
    procs = [subprocess.Popen([binary, "--root", root, "delete", "-f", f"{tag}{i}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(n)]
    for p in procs:
        p.wait()
    if failed:
        raise RuntimeError(f"{binary}: {failed} of {n} concurrent runs failed")
    return time.perf_counter() - t0

def peak_rss_kb(binary, root, bundle, cid, errf):
    """Max RSS of the `create` process (GNU time -v); init is a fork of it."""
    out = tempfile.NamedTemporaryFile()
    r = subprocess.run(["/usr/bin/time", "-v", "-o", out.name, binary, "--root", root, "create", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
    subprocess.run([binary, "--root", root, "delete", "-f", cid], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{binary} create failed")
    for line in open(out.name):
        if "Maximum resident set size" in line:
            return int(line.split(":")[1])
    raise RuntimeError("no RSS in /usr/bin/time output")

def works(binary, root, bundle, errf):
    try:
        lifecycle(binary, root, bundle, "probe-%d" % os.getpid(), errf)
        return None
    except Exception as e:  # report, don't hide (BENCHMARKING.md)
        return str(e)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--pause", type=float, default=0.25)
    ap.add_argument("--calibrate", action="store_true", help="time runc against runc")
    ap.add_argument("--mode", default="lifecycle", choices=["lifecycle", "exec", "concurrent", "rss"])
    ap.add_argument("--count", type=int, default=100, help="containers for --mode concurrent")
    # The release build users get: static, from scripts/build-runtime.sh.
    ap.add_argument("--oxcart", default=os.path.join(os.path.dirname(__file__), "..", "target", "x86_64-unknown-linux-gnu", "release", "oxcart-runtime"))
    # A/B of two oxcart builds: both alternate with runc within each round, and the
    # median of the per-round B/A ratios is reported too.
    ap.add_argument("--oxcart-b", help="a second oxcart-runtime build to compare with --oxcart (A/B)")
    a = ap.parse_args()
    oxcart = os.path.abspath(a.oxcart)
    bundle = make_bundle(oxcart)
    roots = tempfile.mkdtemp(prefix="oxcart-bench-roots-", dir="/run")
    errf = tempfile.TemporaryFile()
    try:
        cands = [("runc", shutil.which("runc"))]
        if a.calibrate:
            cands.append(("runc(again)", shutil.which("runc")))
        else:
            cands.append(("oxcart", oxcart))
            if a.oxcart_b:
                cands.append(("oxcart-b", os.path.abspath(a.oxcart_b)))
            for name in ("crun", "youki"):
                if shutil.which(name):
                    cands.append((name, shutil.which(name)))
        runtimes = []
        for name, binary in cands:
            root = os.path.join(roots, name.replace("(", "_").replace(")", ""))
            err = works(binary, root, bundle, errf)
            if err:
                print(f"{name}: cannot run here: {err}")
            else:
                runtimes.append((name, binary, root))
        times = {n: [] for n, _, _ in runtimes}
        if a.mode == "exec":
            # One long-running container per runtime; exec `true` into it.
            cfg_path = os.path.join(bundle, "config.json")
            cfg = json.load(open(cfg_path))
            cfg["process"]["args"] = ["sleep", "100000"]
            json.dump(cfg, open(cfg_path, "w"))
            for name, binary, root in runtimes:
                r = subprocess.run([binary, "--root", root, "run", "-d", "--bundle", bundle, "ex"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if r.returncode != 0:
                    raise RuntimeError(f"{name}: run -d failed")
        try:
            for i in range(a.rounds):
                order = runtimes if i % 2 == 0 else list(reversed(runtimes))
                for name, binary, root in order:
                    time.sleep(a.pause)
                    if a.mode == "lifecycle":
                        times[name].append(lifecycle(binary, root, bundle, f"b{i}", errf))
                    elif a.mode == "exec":
                        times[name].append(exec_true(binary, root, "ex", errf))
                    elif a.mode == "concurrent":
                        time.sleep(1.0)  # let the previous batch's teardown finish
                        times[name].append(concurrent(binary, root, bundle, a.count, f"c{i}-"))
                    else:
                        times[name].append(peak_rss_kb(binary, root, bundle, f"r{i}", errf) / 1000.0)
        finally:
            if a.mode == "exec":
                for name, binary, root in runtimes:
                    subprocess.run([binary, "--root", root, "delete", "-f", "ex"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = times["runc"]
        what = {"lifecycle": "create+start+delete -f of `true`", "exec": "exec of `true`",
                "concurrent": f"{a.count} containers run -d concurrently, then deleted (total)",
                "rss": "peak RSS of `create` (MB, not ms)"}[a.mode]
        unit = "MB" if a.mode == "rss" else "ms"
        scale = 1 if a.mode == "rss" else 1000
        print(f"{what}, {a.rounds} rounds, pause {a.pause}s, medians:")
        for name, _, _ in runtimes:
            ratios = [t / b for t, b in zip(times[name], base)]
            print(f"  {name:12s} {statistics.median(times[name]) * scale:9.1f} {unit}   ratio to runc (median of per-round ratios): {statistics.median(ratios):.3f}")
        if "oxcart-b" in times and "oxcart" in times:
            ab = [t / b for t, b in zip(times["oxcart-b"], times["oxcart"])]
            print(f"  oxcart-b / oxcart (median of per-round ratios): {statistics.median(ab):.3f}")
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.rmtree(roots, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
