#!/bin/bash
# The cost of a healthcheck every second (issue 16: ≤ 1% of one core), oxcart vs
# docker, side by side. One container runs `sleep` with `--health-cmd true
# --health-interval 1s`; after a warm-up, the CPU time of everything that serves its
# checks is counted over $SECS seconds:
#  - oxcart: its monitor (utime+stime, and cutime+cstime: the runtime `exec`s it
#    reaps, with what they reaped) + the container's cgroup (the probes themselves);
#  - docker: dockerd, its containerd and the container's shim (each with its reaped
#    children) + the container's cgroup.
# A process that joins the container's cgroup is counted twice (an upper bound).
# The same container without a healthcheck is measured too (the idle cost).
#
#   bench/health.sh
#   SECS=60 OXCART=target/release/oxcart bench/health.sh
#
# Needs (Debian 12): docker.io, busybox-static, root. Everything lives under $W (a
# fresh mktemp dir); the private dockerd (its own daemon.json, no iptables, no
# bridge, vfs, cgroupfs under a private cgroup parent) is stopped at exit.
set -euo pipefail

SECS=${SECS:-60}
WARM=${WARM:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OXCART=${OXCART:-$HERE/target/release/oxcart}
W=$(mktemp -d /tmp/oxhb.XXXXXX)
OX=(env OXCART_CONFIG=/dev/null "$OXCART" --root "$W/ox" --runroot "$W/oxr")
DSOCK="unix://$W/d.sock"
DK=(docker -H "$DSOCK")
TCK=$(getconf CLK_TCK)
CGP=oxhb-$$
RUN_DOCKER_EXISTED=$([ -d /run/docker ] && echo 1 || echo 0)

cleanup() {
    set +e
    "${OX[@]}" rm -f hc idle >/dev/null 2>&1
    if [ -f "$W/d.pid" ]; then
        "${DK[@]}" rm -f hc idle >/dev/null 2>&1
        kill "$(cat "$W/d.pid")" 2>/dev/null
        for _ in $(seq 50); do [ -e "$W/d.pid" ] || break; sleep 0.2; done
    fi
    # dockerd 20.10 hard-codes /run/docker: gone again if we made it.
    if [ "$RUN_DOCKER_EXISTED" = 0 ]; then
        rmdir /run/docker/plugins /run/docker 2>/dev/null
    fi
    find /sys/fs/cgroup -depth -type d -path "*/$CGP*" -exec rmdir {} + 2>/dev/null
    # Only mounts below our own directory: a prefix match on the mount point (an
    # empty variable must match nothing, never every absolute path).
    [ -n "$W" ] && awk -v d="$W/" 'index($2, d) == 1 {print $2}' /proc/self/mounts |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

[ -x "$OXCART" ] || { echo "build first: cargo build --release -p oxcart -p oxcart-monitor -p oxcart-runtime" >&2; exit 1; }

# CPU seconds (×100) of a process: its own and its reaped children's (proc(5) 14–17).
ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# Nanoseconds of CPU a cgroup used (v1 cpuacct, or v2 cpu.stat).
cg_ns() {
    local rel=$1
    if [ -f "/sys/fs/cgroup/cpuacct/$rel/cpuacct.usage" ]; then
        cat "/sys/fs/cgroup/cpuacct/$rel/cpuacct.usage"
    elif [ -f "/sys/fs/cgroup/$rel/cpu.stat" ]; then
        awk '/^usage_usec/ { print $2 * 1000 }' "/sys/fs/cgroup/$rel/cpu.stat"
    else
        echo 0
    fi
}
# Percent of one core used by pids ($2…) and cgroup $1 over $SECS seconds.
measure() {
    local cg=$1; shift
    local t0=0 t1=0 c0 c1 p
    for p in "$@"; do t0=$((t0 + $(ticks "$p"))); done
    c0=$(cg_ns "$cg")
    sleep "$SECS"
    for p in "$@"; do t1=$((t1 + $(ticks "$p"))); done
    c1=$(cg_ns "$cg")
    awk -v t="$((t1 - t0))" -v tck="$TCK" -v c="$((c1 - c0))" -v s="$SECS" \
        'BEGIN { printf "%.3f %.3f\n", 100 * t / tck / s, 100 * c / 1e9 / s }'
}

# A busybox image for both engines.
R=$W/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp "$(command -v busybox)" "$R/bin/busybox"
for a in sh true sleep; do ln -s busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
tar -C "$R" -cf "$W/rootfs.tar" .
"${OX[@]}" import "$W/rootfs.tar" bb >/dev/null
"${OX[@]}" save -o "$W/bb.tar" bb

run_ox() {
    local name=$1; shift
    "${OX[@]}" run -d --network none --name "$name" "$@" bb sleep 100000 >/dev/null
    local id mon
    id=$("${OX[@]}" inspect -f '{{.Id}}' "$name")
    mon=$(sed 's/.*"pid":\([0-9]*\).*/\1/' "$W/ox/containers/$id/monitor.json")
    sleep "$WARM"
    read -r p c < <(measure "oxcart/$id" "$mon")
    printf '| oxcart %-24s | %6s | %6s |\n' "$name" "$p" "$c"
    "${OX[@]}" rm -f "$name" >/dev/null
}

echo "| $SECS s | engine processes (% of a core) | container cgroup (%) |"
echo "|---|---|---|"
run_ox hc --health-cmd true --health-interval 1s
run_ox idle

# docker: a private daemon.
# deprecated-key-path: otherwise dockerd 20.10 writes /etc/docker/key.json.
echo "{\"deprecated-key-path\": \"$W/key.json\"}" >"$W/daemon.json"
dockerd --config-file "$W/daemon.json" --data-root "$W/dd" --exec-root "$W/dx" \
    --pidfile "$W/d.pid" -H "$DSOCK" \
    --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
    --storage-driver=vfs --exec-opt=native.cgroupdriver=cgroupfs --cgroup-parent="/$CGP" \
    >"$W/dockerd.log" 2>&1 &
for _ in $(seq 100); do "${DK[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
"${DK[@]}" load -i "$W/bb.tar" >/dev/null
DPID=$(cat "$W/d.pid")
CPID=$(pgrep -P "$DPID" containerd | head -1)
run_docker() {
    local name=$1; shift
    "${DK[@]}" run -d --network none --name "$name" "$@" bb sleep 100000 >/dev/null
    local id shim
    id=$("${DK[@]}" inspect -f '{{.Id}}' "$name")
    shim=$(pgrep -f "containerd-shim.*-id $id" | head -1)
    sleep "$WARM"
    read -r p c < <(measure "$CGP/$id" "$DPID" "$CPID" "$shim")
    printf '| docker %-24s | %6s | %6s |\n' "$name" "$p" "$c"
    "${DK[@]}" rm -f "$name" >/dev/null
}
run_docker hc --health-cmd true --health-interval 1s
run_docker idle
