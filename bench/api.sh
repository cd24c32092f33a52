#!/usr/bin/env bash
# The Engine API service against podman's (`podman system service`), both driven by
# Debian's docker CLI over their unix sockets, with private roots and the same
# busybox image (imported from busybox-static into each):
#   1. `docker run --rm --network none IMG true`, both sides in every round, which one
#      goes first alternating from round to round, 0.25 s pause before every timed run;
#      medians and the median of the per-pair ratios (docs/benchmarks.md);
#   2. `GET /containers/json?all=1` with 100 containers on each, alternating likewise,
#      timed as the request itself (curl's `%{time_total}`: connect to the last byte)
#      so curl's own start-up (~5-8 ms, the same on both sides) does not dilute the
#      ratio;
#   3. each service's RSS while idle (VmRSS: the service process; podman's is one
#      process too), after start-up and after the runs.
#
# podman runs with its own containers.conf (CONTAINERS_CONF): runc (crun refuses these
# hosts' hybrid cgroups), cgroupfs, file events, a private network config directory,
# and `default_ulimits` for both RLIMIT_NOFILE and RLIMIT_NPROC. Without the last,
# podman 4.3 asks the runtime for 1048576 of each (pkg/specgen/generate/oci.go,
# addRlimits: any of the two the request does not set) and a host whose hard limits
# are lower and that has no CAP_SYS_RESOURCE fails every start ("error setting rlimit
# type 7: operation not permitted"). Setting only one of the two leaves the other at
# 1048576. The docker CLI's command line is the same on both sides.
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
[ -d "$dir" ] || { echo "api.sh: mktemp failed" >&2; exit 1; }
oxpid= podpid=
# (an array, not a function: `pm … &` would make $! a subshell's pid, not podman's)
pm=(podman --root "$dir/pod" --runroot "$dir/podrun" --tmpdir "$dir/podtmp")
export CONTAINERS_CONF="$dir/containers.conf"
printf '%s\n' '[containers]' 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' \
    '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' \
    '[network]' "network_config_dir = \"$dir/podnet\"" >"$CONTAINERS_CONF"
cleanup() {
    # (never with an empty $dir: the mount pattern below would then match every mount)
    case $dir in /tmp/oxcart-apibench.?*) ;; *) return 0 ;; esac
    [ -n "$oxpid" ] && kill "$oxpid" 2>/dev/null
    [ -n "$podpid" ] && kill "$podpid" 2>/dev/null
    wait 2>/dev/null
    "$ox" --root "$dir/ox" --runroot "$dir/oxrun" rm -f $("$ox" --root "$dir/ox" --runroot "$dir/oxrun" ps -aq) >/dev/null 2>&1 || true
    "${pm[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    # (its network config directory is private: reset drops no host network)
    "${pm[@]}" system reset -f >/dev/null 2>&1 || true
    # what is still mounted under our directory (the overlay driver's own bind
    # mount): mount points that start with "$dir/", deepest first
    awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
# milliseconds of a command, its output discarded
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s%N); awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f\n", d / 1e6}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss() { awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/$1/status"; }

# One image for both: busybox-static as a rootfs.
mkdir -p "$dir/rootfs/bin"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$dir/rootfs/bin/$a"; done
tar -C "$dir/rootfs" -cf "$dir/bb.tar" .
"$ox" --root "$dir/ox" --runroot "$dir/oxrun" import "$dir/bb.tar" bench/bb:latest >/dev/null
"${pm[@]}" import -q "$dir/bb.tar" localhost/bench/bb:latest >/dev/null

"$ox" --root "$dir/ox" --runroot "$dir/oxrun" system service --time 0 "unix://$dir/ox.sock" 2>/dev/null &
oxpid=$!
"${pm[@]}" system service --time 0 "unix://$dir/pod.sock" 2>/dev/null &
podpid=$!
for s in ox pod; do
    for _ in $(seq 100); do [ -S "$dir/$s.sock" ] && break; sleep 0.1; done
done
sleep 1
echo "idle RSS after start-up: oxcart $(rss $oxpid), podman $(rss $podpid)"
dox() { DOCKER_HOST="unix://$dir/ox.sock" DOCKER_CONFIG="$dir" /usr/bin/docker "$@"; }
dpod() { DOCKER_HOST="unix://$dir/pod.sock" DOCKER_CONFIG="$dir" /usr/bin/docker "$@"; }
# One untimed run on each side (first-use costs); a side that cannot run a container
# ends the benchmark here, with the daemon's answer.
for side in dox dpod; do
    img=bench/bb
    [ $side = dpod ] && img=localhost/bench/bb
    if ! err=$($side run --rm --network none $img true 2>&1 >/dev/null); then
        echo "$side: docker run failed: $err" >&2
        exit 1
    fi
done

runox() { ms dox run --rm --network none bench/bb true; }
runpod() { ms dpod run --rm --network none localhost/bench/bb true; }
: >"$dir/t.ox"; : >"$dir/t.pod"; : >"$dir/t.ratio"
for r in $(seq "$rounds"); do
    # the side that goes first alternates, so neither always pays for the other's
    # asynchronous teardown
    if [ $((r % 2)) = 1 ]; then
        sleep 0.25; a=$(runox); sleep 0.25; b=$(runpod)
    else
        sleep 0.25; b=$(runpod); sleep 0.25; a=$(runox)
    fi
    echo "$a" >>"$dir/t.ox"; echo "$b" >>"$dir/t.pod"
    awk -v a="$a" -v b="$b" 'BEGIN {print a / b}' >>"$dir/t.ratio"
done
echo "docker run --rm --network none IMG true: oxcart $(median <"$dir/t.ox") ms, podman $(median <"$dir/t.pod") ms, per-pair ratio $(median <"$dir/t.ratio")"

for _ in $(seq 100); do
    dox create --network none bench/bb true >/dev/null
    dpod create --network none localhost/bench/bb true >/dev/null
done
# The request's own time in ms, from connect to the last byte (curl's time_total):
# curl's start-up, the same ~5-8 ms on both sides, is not in it.
list() { curl -sf --unix-socket "$1" "http://d/v1.41/containers/json?all=1" -o /dev/null -w '%{time_total}\n' | awk '{printf "%.2f\n", $1 * 1000}'; }
list "$dir/ox.sock" >/dev/null; list "$dir/pod.sock" >/dev/null
: >"$dir/l.ox"; : >"$dir/l.pod"; : >"$dir/l.ratio"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then
        sleep 0.25; a=$(list "$dir/ox.sock"); sleep 0.25; b=$(list "$dir/pod.sock")
    else
        sleep 0.25; b=$(list "$dir/pod.sock"); sleep 0.25; a=$(list "$dir/ox.sock")
    fi
    [ -n "$a" ] && [ -n "$b" ] || { echo "GET /containers/json failed" >&2; exit 1; }
    echo "$a" >>"$dir/l.ox"; echo "$b" >>"$dir/l.pod"
    awk -v a="$a" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}' >>"$dir/l.ratio"
done
echo "GET /containers/json?all=1, 100 containers (request time): oxcart $(median <"$dir/l.ox") ms, podman $(median <"$dir/l.pod") ms, per-pair ratio $(median <"$dir/l.ratio")"
sleep 2
echo "idle RSS after the runs: oxcart $(rss $oxpid), podman $(rss $podpid)"
