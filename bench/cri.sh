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
# --breakdown puts a timing wrapper in front of each runtime (its `sh` and `date`
# add ~3 ms per call to both) and sums, per pod, the wall time of the runtime's own
# calls: what a runtime can change of a pod's time, and what is containerd's.
#
# Usage: sudo bench/cri.sh [--pairs 20] [--pause 0.25] [--calibrate] [--breakdown]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

pairs=20 pause=0.25 breakdown=
while [ $# -gt 0 ]; do
    case $1 in
        --pairs) pairs=$2; shift 2 ;;
        --pause) pause=$2; shift 2 ;;
        --calibrate) export OXCRI_BENCH_CALIBRATE=1; shift ;;
        --breakdown) breakdown=1; shift ;;
        *) echo "cri.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export OXCRI_BENCH_PAIRS=$pairs OXCRI_BENCH_PAUSE=$pause
: "${OXCART_RUNTIME:=$(scripts/build-runtime.sh)}"
export OXCART_RUNTIME
if [ -n "$breakdown" ]; then
    tdir=$(mktemp -d /tmp/oxcri-bench.XXXXXX)
    trap 'rm -rf "$tdir"' EXIT
    # One wrapper per runtime: the wall time of each call (µs) and its argv.
    for n in oxcart runc; do
        real=$OXCART_RUNTIME
        [ "$n" = runc ] && real=$(command -v runc)
        printf '#!/bin/sh\ns=$(date +%%s%%N)\n%s "$@"\nrc=$?\ne=$(date +%%s%%N)\necho "$(( (e - s) / 1000 )) $*" >> %s\nexit $rc\n' \
            "'$real'" "'$tdir/$n.log'" > "$tdir/$n"
        chmod +x "$tdir/$n"
    done
    export OXCART_RUNTIME=$tdir/oxcart OXCRI_RUNC=$tdir/runc
fi
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
if [ -n "$breakdown" ]; then
    for n in oxcart runc; do
        # Per pod: two creates (sandbox, container), so pods = creates / 2.
        awk -v n="$n" '
            { verb = "?"; for (i = 2; i <= NF; i++) if ($i ~ /^(create|start|kill|delete|state|update)$/) { verb = $i; break }
              t[verb] += $1 / 1000; c[verb]++; all += $1 / 1000 }
            END { pods = c["create"] / 2; printf "%s: runtime calls per pod %.1f ms (", n, all / pods
                  for (v in t) printf " %s %d× %.1f ms", v, c[v] / pods, t[v] / c[v]; print " mean per call )" }' "$tdir/$n.log"
    done
fi
