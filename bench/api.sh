#!/usr/bin/env bash
# The Engine API service against podman's (`podman system service`), both driven by
# Debian's docker CLI over their unix sockets, with private roots and the same
# busybox image (imported from busybox-static into each):
#   1. `docker run --rm --network none IMG true`, alternating oxcart/podman each round,
#      0.25 s pause before every timed run; medians and the median per-pair ratio;
#   2. `GET /containers/json?all=1` with 100 containers on each, alternating likewise;
#   3. each service's RSS while idle (VmRSS: the service process; podman's is one
#      process too), after start-up and after the runs.
#
# Usage: sudo bench/api.sh [--rounds 20] [--oxcart target/release/oxcart]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20 ox=target/release/oxcart
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --oxcart) ox=$2; shift 2 ;;
        *) echo "api.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
ox=$(readlink -f "$ox")
dir=$(mktemp -d /tmp/oxcart-apibench.XXXXXX)
oxpid= podpid=
cleanup() {
    [ -n "$oxpid" ] && kill "$oxpid" 2>/dev/null
    [ -n "$podpid" ] && kill "$podpid" 2>/dev/null
    wait 2>/dev/null
    "$ox" --root "$dir/ox" --runroot "$dir/oxrun" rm -f $("$ox" --root "$dir/ox" --runroot "$dir/oxrun" ps -aq) >/dev/null 2>&1 || true
    podman --root "$dir/pod" --runroot "$dir/podrun" rm -af >/dev/null 2>&1 || true
    podman --root "$dir/pod" --runroot "$dir/podrun" rmi -af >/dev/null 2>&1 || true
    # (not `system reset`: it would also drop the host's podman networks)
    grep -o " $dir[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s%N); awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f\n", d / 1e6}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss() { awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/$1/status"; }

# One image for both: busybox-static as a rootfs.
mkdir -p "$dir/rootfs/bin"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$dir/rootfs/bin/$a"; done
tar -C "$dir/rootfs" -cf "$dir/bb.tar" .
"$ox" --root "$dir/ox" --runroot "$dir/oxrun" import "$dir/bb.tar" bench/bb:latest >/dev/null
podman --root "$dir/pod" --runroot "$dir/podrun" import "$dir/bb.tar" localhost/bench/bb:latest >/dev/null

"$ox" --root "$dir/ox" --runroot "$dir/oxrun" system service --time 0 "unix://$dir/ox.sock" 2>/dev/null &
oxpid=$!
podman --root "$dir/pod" --runroot "$dir/podrun" system service --time 0 "unix://$dir/pod.sock" 2>/dev/null &
podpid=$!
for s in ox pod; do
    for _ in $(seq 100); do [ -S "$dir/$s.sock" ] && break; sleep 0.1; done
done
sleep 1
echo "idle RSS after start-up: oxcart $(rss $oxpid), podman $(rss $podpid)"
dox() { DOCKER_HOST="unix://$dir/ox.sock" DOCKER_CONFIG="$dir" /usr/bin/docker "$@"; }
dpod() { DOCKER_HOST="unix://$dir/pod.sock" DOCKER_CONFIG="$dir" /usr/bin/docker "$@"; }
dox run --rm --network none bench/bb true >/dev/null
# podman's compat API asks the OCI runtime for RLIMIT_NOFILE/NPROC above a hard limit
# a sandbox without CAP_SYS_RESOURCE cannot raise: then it runs nothing, and only
# oxcart's side is timed (said so below).
pod_runs=1
if ! err=$(dpod run --rm --network none localhost/bench/bb true 2>&1 >/dev/null); then
    pod_runs=
    echo "podman system service cannot run a container here: $err"
fi

: >"$dir/t.ox"; : >"$dir/t.pod"; : >"$dir/t.ratio"
for _ in $(seq "$rounds"); do
    sleep 0.25; a=$(ms dox run --rm --network none bench/bb true)
    echo "$a" >>"$dir/t.ox"
    [ -n "$pod_runs" ] || continue
    sleep 0.25; b=$(ms dpod run --rm --network none localhost/bench/bb true)
    echo "$b" >>"$dir/t.pod"
    awk -v a="$a" -v b="$b" 'BEGIN {print a / b}' >>"$dir/t.ratio"
done
if [ -n "$pod_runs" ]; then
    echo "docker run --rm --network none IMG true: oxcart $(median <"$dir/t.ox") ms, podman $(median <"$dir/t.pod") ms, per-pair ratio $(median <"$dir/t.ratio")"
else
    echo "docker run --rm --network none IMG true: oxcart $(median <"$dir/t.ox") ms (podman: no figure, above)"
fi

for _ in $(seq 100); do
    dox create --network none bench/bb true >/dev/null
    dpod create --network none localhost/bench/bb true >/dev/null
done
list() { curl -sf --unix-socket "$1" "http://d/v1.41/containers/json?all=1" -o /dev/null; }
list "$dir/ox.sock"; list "$dir/pod.sock"
: >"$dir/l.ox"; : >"$dir/l.pod"; : >"$dir/l.ratio"
for _ in $(seq "$rounds"); do
    sleep 0.25; a=$(ms list "$dir/ox.sock")
    sleep 0.25; b=$(ms list "$dir/pod.sock")
    echo "$a" >>"$dir/l.ox"; echo "$b" >>"$dir/l.pod"
    awk -v a="$a" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}' >>"$dir/l.ratio"
done
echo "GET /containers/json?all=1, 100 containers: oxcart $(median <"$dir/l.ox") ms, podman $(median <"$dir/l.pod") ms, per-pair ratio $(median <"$dir/l.ratio")"
sleep 2
echo "idle RSS after the runs: oxcart $(rss $oxpid), podman $(rss $podpid)"
