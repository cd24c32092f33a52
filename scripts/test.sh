#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests on this host (real
# containers, cgroups, mounts, registries), then the cgroup-v2 lane under qemu.
# Run as root after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { echo; echo "=== $* ==="; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log="$(mktemp /tmp/oxcart-test-log.XXXXXX)"
trap 'rm -f "$log"' EXIT

step "cargo test (host: hybrid cgroups)"
cargo test --workspace --no-fail-fast 2>&1 | tee -a "$log"

if [ "${OXCART_SKIP_V2_LANE:-0}" = "1" ]; then
    echo "v2 lane skipped (OXCART_SKIP_V2_LANE=1)"
else
    step "cgroup-v2 lane (qemu)"
    # runc and podman's seccomp profile for the differential tests; the static
    # sd_notify client the host run of the runtime tests built.
    tests/v2-lane/run.sh --copy /usr/sbin/runc --copy /usr/share/containers/seccomp.json \
        --copy "$PWD/target/tmp/sdnotify" 2>&1 | tee -a "$log"
fi

# One closing line over every libtest run above, host and lane.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
