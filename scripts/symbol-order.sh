#!/usr/bin/env bash
# Regenerates scripts/oxcart.symorder: the functions `oxcart`'s everyday verbs execute,
# for lld's --symbol-ordering-file in scripts/build-release.sh. lld places them first in
# the text, together, instead of spread over its 11 MB: a cold `stats --no-stream` of 50
# containers faulted in 88 text windows and now ~25, ~0.5 ms of each command
# (docs/architecture.md, "The engine's text in execution order"; docs/benchmarks.md).
#
# The names are mangled (Rust's v0 mangling names each crate with a hash of its cargo
# metadata: the profile, the features, the dependencies' versions). A build whose names
# no longer match still works, with fewer functions placed; build-release.sh says how
# many it placed. Regenerate after a toolchain or dependency update, or when that count
# drops. Needs root (it runs containers in a private root) and valgrind.
#
#   sudo scripts/symbol-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
command -v valgrind >/dev/null || { echo "symbol-order: valgrind is needed (apt install valgrind)" >&2; exit 1; }

runtime=$(scripts/build-runtime.sh)
dir=$(dirname "$runtime")
triple=$(basename "$(dirname "$dir")")
cargo build --release -p oxcart-monitor --target "$triple" \
    --config "target.$triple.rustflags = [$(scripts/build-runtime.sh --rustflags)]" >&2
# The release build's own names: the same profile and flags, only not stripped
# (`cargo rustc`'s extra flags reach the final crate alone, not the metadata).
cargo rustc --release -p oxcart --bin oxcart --target "$triple" \
    --config "target.$triple.rustflags = [$(scripts/build-runtime.sh --rustflags)]" \
    -- -C strip=none >&2
ox="$dir/oxcart"

tmp=$(mktemp -d)
base=("$ox" --root "$tmp/root" --runroot "$tmp/run")
cleanup() {
    "${base[@]}" rm -f $("${base[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    "${base[@]}" network prune -f >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

tar=$(python3 -c "import sys; sys.path.insert(0, 'bench'); import engine; print(engine.make_tar(sys.argv[1]))" "$tmp")
"${base[@]}" import "$tar" bb >/dev/null
for i in 1 2 3; do
    "${base[@]}" run -d --name "s$i" --network none bb sleep 1000 >/dev/null
done
"${base[@]}" run --name exited --network none bb true >/dev/null

# The verbs in the order their functions should come: `stats` and `ps` first (read
# often, by scripts), then the lifecycle. Each run's functions are listed once, at
# their first appearance.
n=0
profile() {
    n=$((n + 1))
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$tmp/cg.$n" \
        "${base[@]}" "$@" >/dev/null 2>&1 || true
}
profile stats --no-stream
profile stats --no-stream -a --format '{{.Name}} {{.CPUPerc}}'
profile ps -a
profile ps
profile run --rm --network none bb true
profile run -d --name d1 --network none bb sleep 1000
profile stop -t 1 d1
profile start d1
profile inspect d1
profile logs d1
profile exec d1 true
profile rm -f d1
profile run --rm bb true
profile create --name c1 --network none bb true
profile rm c1
profile images

nm --defined-only "$ox" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u > "$tmp/defined"
for f in $(ls "$tmp"/cg.* | sort -t. -k2 -n); do
    sed -nE 's/^c?fn=\([0-9]+\) (.*)$/\1/p' "$f"
done | awk '!seen[$0]++' | grep -xFf "$tmp/defined" > scripts/oxcart.symorder
echo "symbol-order: $(wc -l < scripts/oxcart.symorder) functions in scripts/oxcart.symorder" >&2
