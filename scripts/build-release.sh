#!/usr/bin/env bash
# Builds the release binaries users install — oxcart, oxcart-monitor and
# oxcart-runtime, each one static-pie executable — and prints the directory that
# holds them (target/<host triple>/release).
#
# Why static (docs/architecture.md, "Principles": "`oxcart` and `oxcart-monitor` are
# static-pie executables too"; measured in docs/benchmarks.md): every verb is a fresh
# `oxcart` process and every container a fresh monitor, and a dynamic one first maps,
# faults and relocates libc.so, libm.so and libgcc_s.so. For `stats --no-stream` of
# 50 containers that was ~2 ms of ~12.
# Still PIE (randomised). Host names (a registry's) still resolve as before: glibc's
# static getaddrinfo has its `files` and `dns` sources built in (nsswitch.conf's
# defaults), and loads any other source the host names from the host's glibc.
#
# The runtime is built on its own (scripts/build-runtime.sh): cargo unifies the
# features of the packages of one invocation, and the runtime's build stays what it
# was. crt-static reaches only the final links: with an explicit --target, cargo keeps
# target rustflags away from build scripts and proc macros (which must stay dynamic).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

runtime=$(scripts/build-runtime.sh)
dir=$(dirname "$runtime")
triple=$(basename "$(dirname "$dir")")
flags="target.$triple.rustflags = [$(scripts/build-runtime.sh --rustflags)]"
cargo build --release -p oxcart-monitor --target "$triple" --config "$flags" >&2
# oxcart's everyday functions first in its text, together, in the order of
# scripts/oxcart.symorder (lld's --symbol-ordering-file; scripts/symbol-order.sh says
# how the list is made, docs/architecture.md why). lld warns of each listed name this
# build does not have: their count says how stale the list is.
order="$PWD/scripts/oxcart.symorder"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo rustc --release -p oxcart --bin oxcart --target "$triple" --config "$flags" \
    -- -C link-arg=-Wl,--symbol-ordering-file="$order" -W linker-messages 2>"$log"; then
    cat "$log" >&2
    exit 1
fi
listed=$(wc -l < "$order")
missing=$(grep -c 'symbol ordering file: no such symbol' "$log" || true)
placed=$((listed - missing))
echo "build-release: $placed of $listed functions of scripts/oxcart.symorder placed first in oxcart" >&2
if [ $((placed * 10)) -lt $((listed * 8)) ]; then
    echo "build-release: warning: the list is stale; regenerate it: sudo scripts/symbol-order.sh" >&2
fi
for b in oxcart oxcart-monitor oxcart-runtime; do
    # RUSTFLAGS in the environment replaces config rustflags: make sure each really is.
    if readelf -lW "$dir/$b" | grep -q 'Requesting program interpreter'; then
        echo "build-release: $dir/$b is dynamically linked (is RUSTFLAGS set? it overrides crt-static)" >&2
        exit 1
    fi
    if ! readelf -SW "$dir/$b" | grep -q '\.relr\.dyn'; then
        echo "build-release: $dir/$b has no DT_RELR relocations (binutils < 2.38?)" >&2
        exit 1
    fi
done
echo "$dir"
