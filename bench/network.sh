#!/usr/bin/env bash
# `oxcart run --rm IMG true` on the default bridge against `--network none`, and
# podman's default network when podman has the image, alternating within each round;
# medians in ms. Then published-port throughput from 127.0.0.1 (through oxcart's
# userland proxy) of a 64 MiB body. Last, bench/netpeers.py: DNS latency and port
# throughput against podman + netavark + aardvark-dns.
#
# Usage: sudo bench/network.sh [--rounds 20] [--oxcart target/release/oxcart] [--image busybox]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20 ox=target/release/oxcart img=busybox
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --oxcart) ox=$2; shift 2 ;;
        --image) img=$2; shift 2 ;;
        *) echo "network.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
pod=
if command -v podman >/dev/null && podman image exists "$img" 2>/dev/null; then pod=1; fi
: >/tmp/oxnet.bridge; : >/tmp/oxnet.none; : >/tmp/oxnet.podman
$ox run --rm "$img" true >/dev/null   # first use records the network
for _ in $(seq "$rounds"); do
    ms $ox run --rm "$img" true >>/tmp/oxnet.bridge; sleep 0.2
    ms $ox run --rm --network none "$img" true >>/tmp/oxnet.none; sleep 0.2
    if [ -n "$pod" ]; then ms podman run --rm "$img" true >>/tmp/oxnet.podman; sleep 0.2; fi
done
echo "run --rm true, default bridge: $(median </tmp/oxnet.bridge) ms"
echo "run --rm true, --network none: $(median </tmp/oxnet.none) ms"
[ -n "$pod" ] && echo "podman run --rm true (default network): $(median </tmp/oxnet.podman) ms"

# Throughput from 127.0.0.1: a 64 MiB body served by busybox nc in the container
# (oxcart alone; netpeers.py below has it side by side with podman).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
$ox run -d --name oxnet-bench -p "$port:8080" "$img" sh -c \
    'dd if=/dev/zero bs=1M count=64 2>/dev/null > /tmp/body; nc -ll -p 8080 -e cat /tmp/body' >/dev/null
sleep 0.5
python3 - "$port" <<'PY'
import socket, sys, time
t0 = time.perf_counter(); n = 0
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
while True:
    b = s.recv(1 << 20)
    if not b: break
    n += len(b)
dt = time.perf_counter() - t0
print(f"127.0.0.1 -> published port (userland proxy): {n / dt / 1e6:.0f} MB/s ({n} bytes)")
PY
$ox rm -f oxnet-bench >/dev/null
$ox network prune -f >/dev/null   # the default bridge and the table go when idle

# Side by side with podman 4.3 + netavark + aardvark-dns, in private roots: name
# resolution latency inside a container, and published-port throughput from 127.0.0.1.
python3 bench/netpeers.py --oxcart "$ox" --rounds "${NETPEERS_ROUNDS:-7}"
