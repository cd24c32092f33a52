#!/usr/bin/env bash
# Checks of the lane itself, for whoever changes run.sh or init.sh: the lane
# must pass a passing set and fail on a failing test, a timeout, a test killed
# by the in-guest test timeout, and a guest whose /init never runs.
# About 25 s. Not part of CI (CI runs run.sh, whose self-test covers the
# passing path).
set -uo pipefail
lane=$(dirname "${BASH_SOURCE[0]}")/run.sh
fails=0
expect() { # expect RC DESCRIPTION -- RUN.SH ARGS...
	local want=$1 what=$2 got out
	shift 3
	out=$("$lane" "$@" 2>&1)
	got=$?
	if [[ $got -eq $want ]]; then
		echo "ok   $what (exit $got)"
	else
		echo "FAIL $what: exit $got, want $want; output:"
		printf '%s\n' "$out" | tail -n 30
		fails=$((fails + 1))
	fi
}
expect 0 "self-test passes" -- --self-test
expect 1 "a failing test fails the lane" -- -- /bin/false
expect 1 "a run over --timeout fails the lane" -- --timeout 10 -- /bin/sleep 60
expect 1 "a test over --test-timeout fails the lane" -- --test-timeout 2 -- /bin/sleep 60
expect 1 "a guest whose /init never runs fails the lane" -- --append "rdinit=/nonexistent" -- /bin/true
expect 2 "a missing --copy path is a setup error" -- --copy /nonexistent/v2-lane -- /bin/true
[[ $fails -eq 0 ]] || { echo "check.sh: $fails check(s) failed"; exit 1; }
echo "check.sh: all checks passed"
