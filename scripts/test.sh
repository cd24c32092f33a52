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

step "the static release runtime (scripts/build-runtime.sh): lifecycle suites again"
# Users run the static-pie release build, not the debug one the host run used: the
# suites that drive create/start/exec/kill/delete, cgroups, seccomp, hooks, the
# real clients, idmaps and rootless run again against it ($OXCART_RUNTIME).
runtime_static=$(scripts/build-runtime.sh)
OXCART_RUNTIME="$runtime_static" cargo test -p oxcart-runtime --no-fail-fast \
    --test lifecycle --test exec --test cgroups --test seccomp --test hooks \
    --test features --test rootless --test terminal --test idmap --test clients 2>&1 | tee -a "$log"
# ...and the CRI suite (containerd's CRI plugin, as a kubelet drives it; ~30 s).
OXCART_RUNTIME="$runtime_static" cargo test -p oxcart-cri-tests 2>&1 | tee -a "$log"

step "the static release engine (scripts/build-release.sh): run and stats suites again"
# Users get oxcart and oxcart-monitor static too: the engine's end-to-end run
# (`oxcart run` and its verbs, a pull by host name) and stats/events on all three.
release=$(scripts/build-release.sh)
OXCART_BIN="$release/oxcart" OXCART_MONITOR="$release/oxcart-monitor" \
    OXCART_RUNTIME="$runtime_static" cargo test -p oxcart --test run --test stats_events 2>&1 | tee -a "$log"

if [ "${OXCART_SKIP_V2_LANE:-0}" = "1" ]; then
    echo "v2 lane skipped (OXCART_SKIP_V2_LANE=1)"
else
    step "cgroup-v2 lane (qemu, AppArmor test profiles loaded)"
    # runc and podman's seccomp profile for the differential tests; the static
    # sd_notify client the host run of the runtime tests built. --apparmor loads
    # the lane's test profiles into the guest kernel, which runs AppArmor by
    # default: tests/apparmor.rs then checks profiles are applied and enforced
    # (on the host, without AppArmor, it checks runc's error path). No extra boot.
    tests/v2-lane/run.sh --apparmor --copy /usr/sbin/runc --copy /usr/share/containers/seccomp.json \
        --copy "$PWD/target/tmp/sdnotify" 2>&1 | tee -a "$log"

    step "SELinux lane (qemu, enforcing test policy)"
    # Only the label tests (crates/runtime/tests/selinux.rs): the host has no
    # SELinux, so there they check runc's error path; here they check that labels
    # are applied. The host run above built both executables; cargo says where.
    selinux_json=$(cargo test -p oxcart-runtime --test selinux --no-run --message-format=json 2>/dev/null)
    selinux_test=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "selinux" and .profile.test) | .executable' <<<"$selinux_json")
    runtime_bin=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "oxcart-runtime" and (.target.kind | index("bin"))) | .executable' <<<"$selinux_json")
    [ -n "$selinux_test" ] && [ -n "$runtime_bin" ] || { echo "SELinux lane: cargo built no selinux test executable" >&2; exit 1; }
    tests/v2-lane/run.sh --selinux enforcing --timeout 300 --test "$selinux_test" \
        --copy "$runtime_bin" 2>&1 | tee -a "$log"
fi

# One closing line over every libtest run above, host and lane.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
