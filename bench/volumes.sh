#!/bin/bash
# Volumes, oxcart vs podman, private stores on a loop-mounted ext4 (as bench/pull.sh):
#  1. copy-up: `run --rm -v NEWVOL:/payload img true` where the image's /payload holds
#     100 MB (1,000 files of 100 KiB in 100 directories): the volume is filled from the
#     image before the container runs. One cold and one warm run each (a fresh volume
#     every time), and the same `run` without the volume as the baseline.
#  2. `volume ls` with 1,000 volumes (hyperfine, $RUNS runs).
#
#   bench/volumes.sh
#   RUNS=20 OXCART=target/release/oxcart bench/volumes.sh
#
# Needs (Debian 12): podman runc busybox-static hyperfine, and root. Everything lives
# under $WORK (a fresh mktemp dir) and is removed at exit.
set -euo pipefail

# A private mount namespace: the loop mount and every volume mount vanish with it.
if [ -z "${OXCART_BENCH_NS:-}" ]; then
    OXCART_BENCH_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

RUNS=${RUNS:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OXCART=${OXCART:-$HERE/target/release/oxcart}
WORK=$(mktemp -d /var/tmp/oxcart-bench-vol.XXXXXX)
FS=$WORK/fs
OX=(env OXCART_CONFIG=/dev/null "$OXCART" --root "$FS/ox" --runroot "$FS/ox-run")
PM=(podman --root "$FS/pm" --runroot "$FS/pm-run" --tmpdir "$FS/pm-tmp" --storage-driver overlay
    --cgroup-manager cgroupfs --events-backend file --runtime runc)
# These hosts' hard limits are below podman's defaults.
PMRUN=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network none)

cleanup() {
    set +e # best effort: one failing step must not skip the rest
    "${OX[@]}" rm -af >/dev/null 2>&1
    "${PM[@]}" rm -af >/dev/null 2>&1
    "${PM[@]}" system reset -f >/dev/null 2>&1
    # Only mounts below our own directory: a prefix match on the mount point (an
    # empty variable must match nothing, never every absolute path).
    [ -n "$WORK" ] && awk -v d="$WORK/" 'index($2, d) == 1 {print $2}' /proc/self/mounts |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for t in podman runc busybox hyperfine; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
[ -x "$OXCART" ] || { echo "build oxcart first: cargo build --release -p oxcart (or set OXCART=)" >&2; exit 1; }

truncate -s 4G "$WORK/fs.img"
mkfs.ext4 -q "$WORK/fs.img"
mkdir -p "$FS"
mount -o loop "$WORK/fs.img" "$FS"

# The image: busybox and /payload, imported into both stores.
R=$WORK/rootfs
mkdir -p "$R/bin" "$R/payload"
cp "$(command -v busybox)" "$R/bin/busybox"
for a in sh true ls; do ln -s busybox "$R/bin/$a"; done
for d in $(seq -w 0 99); do
    mkdir "$R/payload/d$d"
    for f in $(seq -w 0 9); do head -c 102400 /dev/urandom >"$R/payload/d$d/f$f"; done
done
tar -C "$R" -cf "$WORK/rootfs.tar" .
echo "payload: $(du -sh "$R/payload" | cut -f1) in $(find "$R/payload" -type f | wc -l) files"
"${OX[@]}" import "$WORK/rootfs.tar" localhost/volbench:1 >/dev/null
"${PM[@]}" import -q "$WORK/rootfs.tar" localhost/volbench:1 >/dev/null

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
declare -A T
for round in cold warm; do
    T[ox-base-$round]=$(ms "${OX[@]}" run --rm --network none localhost/volbench:1 true)
    T[pm-base-$round]=$(ms "${PM[@]}" run --rm "${PMRUN[@]}" localhost/volbench:1 true)
    T[ox-$round]=$(ms "${OX[@]}" run --rm --network none -v "v$round:/payload" localhost/volbench:1 true)
    T[pm-$round]=$(ms "${PM[@]}" run --rm "${PMRUN[@]}" -v "v$round:/payload" localhost/volbench:1 true)
done
# The copies are complete: both volumes hold the 100 MB.
du -s "$FS/ox/volumes/vwarm/_data" "$("${PM[@]}" volume inspect -f '{{.Mountpoint}}' vwarm)" | cut -f1 | tr '\n' ' '
echo
echo
echo "| run -v NEWVOL:/payload (100 MB copy-up) | oxcart (ms) | podman (ms) | oxcart / podman |"
echo "|---|---|---|---|"
for round in cold warm; do
    o=${T[ox-$round]} p=${T[pm-$round]}
    echo "| $round, with copy-up | $o | $p | $(echo "scale=2; $o / $p" | bc) |"
    o=${T[ox-base-$round]} p=${T[pm-base-$round]}
    echo "| $round, same run without the volume | $o | $p | $(echo "scale=2; $o / $p" | bc) |"
done

# 2. volume ls with 1,000 volumes.
for i in $(seq 1000); do "${OX[@]}" volume create "bench$i" >/dev/null; done
for i in $(seq 1000); do "${PM[@]}" volume create "bench$i" >/dev/null; done
[ "$("${OX[@]}" volume ls -q | wc -l)" -ge 1000 ] && [ "$("${PM[@]}" volume ls -q | wc -l)" -ge 1000 ]
# -N: no shell between hyperfine and either command.
export OXCART_CONFIG=/dev/null
hyperfine -N --runs "$RUNS" --warmup 2 --style basic --export-json "$WORK/ls.json" \
    -n oxcart "${OX[*]:2} volume ls" -n podman "${PM[*]} volume ls" >/dev/null
echo
echo "| volume ls, 1,000 volumes | mean (ms) |"
echo "|---|---|"
jq -r '.results[] | "| \(.command) | \(.mean * 1000 | floor) |"' "$WORK/ls.json"
jq -r '.results as $r | "| oxcart / podman | \(($r[0].mean / $r[1].mean * 100 | floor) / 100) |"' "$WORK/ls.json"
