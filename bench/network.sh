#!/usr/bin/env bash
# `oxcart run --rm IMG true` on the default bridge against its `--network none` and
# podman's (+ runc) default network, rotating within each round (bench/engine.py's
# `bridge` figure: private roots, medians, per-round ratios). Then published-port
# throughput from 127.0.0.1 (through oxcart's userland proxy) of a 64 MiB body, on the
# host's default roots with IMG pulled. Last, bench/netpeers.py: DNS latency, port
# throughput and port round trips against podman + netavark + aardvark-dns.
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
# Latency, side by side with podman (private roots, the same imported busybox image,
# per-round ratios): bench/engine.py's `bridge` figure.
python3 bench/engine.py --only bridge --pairs "$rounds" --oxcart "$ox"

# Throughput from 127.0.0.1: a 64 MiB body served by busybox nc in the container
# (oxcart alone: the proxy's kernel bypass, one TCP connection from the gateway;
# netpeers.py below has it side by side with podman).
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
print(f"127.0.0.1 -> published port (kernel bypass of the proxy): {n / dt / 1e6:.0f} MB/s ({n} bytes)")
PY
$ox rm -f oxnet-bench >/dev/null
$ox network prune -f >/dev/null   # the default bridge and the table go when idle

# Side by side with podman 4.3 + netavark + aardvark-dns, in private roots: name
# resolution latency inside a container, published-port throughput and round trips
# from 127.0.0.1.
python3 bench/netpeers.py --oxcart "$ox" --rounds "${NETPEERS_ROUNDS:-7}"
