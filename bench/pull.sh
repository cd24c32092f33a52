#!/bin/bash
# Pull + unpack of a ~200 MB multi-layer Debian image from a local docker-registry:
# oxcart vs podman pull vs skopeo copy + umoci unpack, cold stores, same run.
#
#   bench/pull.sh                 # debootstrap a bookworm rootfs (needs debootstrap + a Debian mirror)
#   ROOTFS=/path/to/rootfs bench/pull.sh
#   RUNS=10 OXCART=target/release/oxcart bench/pull.sh
#
# Needs (Debian 12): docker-registry skopeo umoci podman hyperfine jq debootstrap, and root.
# Everything lives under $WORK (default: a fresh mktemp dir) and is removed at exit,
# except the debootstrapped rootfs cache ($ROOTFS_CACHE) so reruns are quick.
set -euo pipefail

# Run in a private mount namespace: the stores live on a loop-mounted, journaled ext4
# made for this run (the usual Debian setup). This host's root ext4 has no journal,
# and there inode allocation scans recently deleted inodes (ext4 ialloc.c
# recently_deleted()), which makes file creation 2-5x slower right after `rm -rf`
# and turns a store-reset benchmark into noise. The mount vanishes with the namespace.
if [ -z "${OXCART_BENCH_NS:-}" ]; then
    OXCART_BENCH_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

RUNS=${RUNS:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OXCART=${OXCART:-$HERE/target/release/oxcart}
ROOTFS_CACHE=${ROOTFS_CACHE:-/var/tmp/oxcart-bench-rootfs}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
WORK=$(mktemp -d /var/tmp/oxcart-bench.XXXXXX)
REG_PID=

cleanup() {
    set +e # best effort: one failing step must not skip the rest
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; fi
    podman --root "$WORK/fs/podman" --runroot "$WORK/fs/podman-run" --storage-driver overlay rmi -af >/dev/null 2>&1 || true
    # podman's overlay driver may leave its own mount of the storage home; only ours.
    # Only mounts below our own directory: a prefix match on the mount point (an
    # empty variable must match nothing, never every absolute path).
    [ -n "$WORK" ] && awk -v d="$WORK/" 'index($2, d) == 1 {print $2}' /proc/self/mounts |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for t in docker-registry skopeo umoci podman hyperfine jq; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
[ -x "$OXCART" ] || { echo "build oxcart first: cargo build --release -p oxcart (or set OXCART=)" >&2; exit 1; }

# 1. A Debian rootfs, ~200 MB once apt's caches are dropped.
if [ -z "${ROOTFS:-}" ]; then
    ROOTFS=$ROOTFS_CACHE
    if [ ! -x "$ROOTFS/usr/bin/apt" ]; then
        command -v debootstrap >/dev/null || { echo "apt install debootstrap, or set ROOTFS=" >&2; exit 1; }
        debootstrap bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log"
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*_Packages "$ROOTFS"/var/cache/apt/*.bin
    fi
fi
echo "rootfs: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"

# 2. An OCI image with 5 gzip layers: usr/lib, usr/share, usr/bin+sbin, var, the rest.
# Layers are made with GNU tar + gzip -6 (what docker uses): umoci 0.4.7's `insert`
# writes a truncated tar for this usr/lib.
L=$WORK/layout
mkdir -p "$L/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
DIFFS=() LAYERS=()
add_layer() {
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$ROOTFS" -cf "$WORK/layer.tar" "$@"
    local diff dig size
    diff=$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)
    gzip -6 -n -c "$WORK/layer.tar" >"$WORK/layer.tgz"
    dig=$(sha256sum "$WORK/layer.tgz" | cut -d' ' -f1)
    size=$(stat -c %s "$WORK/layer.tgz")
    mv "$WORK/layer.tgz" "$L/blobs/sha256/$dig"
    rm -f "$WORK/layer.tar"
    DIFFS+=("\"sha256:$diff\"")
    LAYERS+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}")
}
blob() { # stdin -> blob; prints "digest size"
    cat >"$WORK/blob"
    local dig
    dig=$(sha256sum "$WORK/blob" | cut -d' ' -f1)
    mv "$WORK/blob" "$L/blobs/sha256/$dig"
    echo "sha256:$dig $(stat -c %s "$L/blobs/sha256/$dig")"
}
add_layer usr/lib
add_layer usr/share
add_layer usr/bin usr/sbin
add_layer var
add_layer --exclude=./usr/lib --exclude=./usr/share --exclude=./usr/bin --exclude=./usr/sbin \
    --exclude=./var --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' .
join() { local IFS=,; echo "$*"; }
read -r CD CS < <(printf '{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Cmd":["/bin/bash"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$(join "${DIFFS[@]}")" | blob)
read -r MD MS < <(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' "$CD" "$CS" "$(join "${LAYERS[@]}")" | blob)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' "$MD" "$MS" >"$L/index.json"

# 3. A plain-HTTP docker-registry on a free loopback port, and the image pushed to it.
# A free port: nothing answers on it (random in the ephemeral-free range 20000-29999).
while :; do
    PORT=$((20000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
REF=127.0.0.1:$PORT/bench/debian:bench
skopeo copy --quiet --dest-tls-verify=false "oci:$L:bench" "docker://$REF"
SIZE=$(skopeo inspect --tls-verify=false --raw "docker://$REF" | jq '[.layers[].size] | add')
NLAYERS=$(skopeo inspect --tls-verify=false --raw "docker://$REF" | jq '.layers | length')
echo "image: $REF, $NLAYERS layers, $((SIZE / 1000000)) MB compressed"

# 4. Cold pull + unpack, each tool into its own fresh store on the loop-mounted ext4.
truncate -s 8G "$WORK/fs.img"
mkfs.ext4 -q "$WORK/fs.img"
mkdir -p "$WORK/fs"
mount -o loop "$WORK/fs.img" "$WORK/fs"
FS=$WORK/fs
OXR=$FS/oxcart PR=$FS/podman PRR=$FS/podman-run OL=$FS/oci B=$FS/bundle
export OXR PR PRR OL B REF OXCART
hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/results.json" --style basic \
    --prepare "rm -rf $OXR" -n oxcart \
    "$OXCART --root $OXR pull -q $REF" \
    --prepare "podman --root $PR --runroot $PRR --storage-driver overlay rmi -af >/dev/null 2>&1; true" -n podman \
    "podman --root $PR --runroot $PRR --storage-driver overlay pull -q --tls-verify=false $REF" \
    --prepare "rm -rf $OL $B" -n skopeo+umoci \
    "skopeo copy --quiet --src-tls-verify=false docker://$REF oci:$OL:bench && umoci unpack --image $OL:bench $B >/dev/null"

echo
echo "| tool | mean (s) | stddev (s) | vs oxcart |"
echo "|---|---|---|---|"
jq -r '.results as $r | ($r[] | select(.command=="oxcart") | .mean) as $ox
  | $r[] | "| \(.command) | \(.mean*1000|round/1000) | \(.stddev*1000|round/1000) | \((.mean/$ox*100|round)/100)x |"' "$WORK/results.json"
echo
echo "(machine: $(nproc) cores, $(uname -r); oxcart $("$OXCART" --version))"
