#!/usr/bin/env bash
# A one-container pod through containerd's CRI: RunPodSandbox + CreateContainer +
# StartContainer, then StopPodSandbox + RemovePodSandbox, with oxcart-runtime and
# with runc as the runtime handler, alternating, 20+ pairs, medians of per-pair
# ratios (method: crates/cri-tests/tests/cri/bench.rs, /work/shared/BENCHMARKING.md).
#
# The runtime is the static release build users get (scripts/build-runtime.sh),
# unless OXCART_RUNTIME names another. The harness is the CRI suite's own (one
# private containerd, registry and CNI bridge); its own time is gRPC calls, so
# the debug build the suite uses serves (the release profile's fat LTO of tonic
# would cost minutes of build for nothing measured).
#
# Usage: sudo bench/cri.sh [--pairs 20] [--pause 0.25] [--calibrate]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

pairs=20 pause=0.25
while [ $# -gt 0 ]; do
    case $1 in
        --pairs) pairs=$2; shift 2 ;;
        --pause) pause=$2; shift 2 ;;
        --calibrate) export OXCRI_BENCH_CALIBRATE=1; shift ;;
        *) echo "cri.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export OXCRI_BENCH_PAIRS=$pairs OXCRI_BENCH_PAUSE=$pause
: "${OXCART_RUNTIME:=$(scripts/build-runtime.sh)}"
export OXCART_RUNTIME
out=$(cargo test -p oxcart-cri-tests --test cri -- --ignored --exact bench --nocapture 2>&1) || {
    echo "$out" >&2
    exit 1
}
json=$(sed -n 's/^OXCRI_BENCH //p' <<<"$out")
[ -n "$json" ] || { echo "$out" >&2; echo "cri.sh: no result" >&2; exit 1; }
jq . <<<"$json"
jq -r '"pod up (RunPodSandbox+CreateContainer+StartContainer): \(.a) \(.up_ms.a|.*10|round/10) ms, \(.b) \(.up_ms.b|.*10|round/10) ms, ratio \(.up_ms.ratio|.*1000|round/1000)",
       "teardown (StopPodSandbox+RemovePodSandbox):             \(.a) \(.teardown_ms.a|.*10|round/10) ms, \(.b) \(.teardown_ms.b|.*10|round/10) ms, ratio \(.teardown_ms.ratio|.*1000|round/1000)",
       "whole pod, median per-pair ratio: \(.total_ratio|.*1000|round/1000)"' <<<"$json"
