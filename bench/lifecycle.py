#!/usr/bin/env python3
"""Time `create` + `start` + `delete -f` of a busybox container running `true`,
oxcart-runtime against runc (and crun / youki when installed), side by side.

Method (../shared/BENCHMARKING.md): the kernel tears containers down asynchronously,
so every timed run is preceded by a pause, runtimes alternate within each round, and
we report the median of per-round ratios against runc. `--calibrate` times runc
against itself, which must come out near 1.0 for the method to be trusted.

Usage: sudo bench/lifecycle.py [--rounds 30] [--pause 0.25] [--calibrate]
                               [--oxcart target/release/oxcart-runtime]
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
    ap.add_argument("--oxcart", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "oxcart-runtime"))
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
        for i in range(a.rounds):
            order = runtimes if i % 2 == 0 else list(reversed(runtimes))
            for name, binary, root in order:
                time.sleep(a.pause)
                times[name].append(lifecycle(binary, root, bundle, f"b{i}", errf))
        base = times["runc"]
        print(f"create+start+delete -f of `true`, {a.rounds} rounds, pause {a.pause}s, medians:")
        for name, _, _ in runtimes:
            ratios = [t / b for t, b in zip(times[name], base)]
            print(f"  {name:12s} {statistics.median(times[name]) * 1000:7.1f} ms   ratio to runc (median of per-round ratios): {statistics.median(ratios):.3f}")
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.rmtree(roots, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
