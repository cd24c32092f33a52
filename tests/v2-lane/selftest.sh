#!/bin/sh
# Lane self-test, plain-shell half (runs inside the v2 guest under busybox sh):
# the guest is a pure cgroup-v2 machine whose controllers a runtime can use.
# tests/v2-lane/selftest.rs checks the same from a Rust test binary, plus
# enforcement of memory.max.
set -u
fails=0
check() { # check DESCRIPTION COMMAND...
	d=$1
	shift
	if "$@"; then echo "ok   $d"; else echo "FAIL $d"; fails=$((fails + 1)); fi
}
CG=/sys/fs/cgroup
child=$CG/oxcart-lane-selftest-sh.$$
sleeper=
cleanup() {
	[ -z "$sleeper" ] || { kill -9 "$sleeper" 2>/dev/null; wait "$sleeper" 2>/dev/null; }
	[ ! -d "$child" ] || rmdir "$child" || echo "FAIL could not remove $child"
}
trap cleanup EXIT

# It writes to /sys/fs/cgroup: refuse to go on anywhere but in the lane.
if [ "${OXCART_V2_LANE:-}" != 1 ]; then
	echo "FAIL not inside the v2 lane (OXCART_V2_LANE unset): refusing to touch $CG"
	exit 1
fi
# CGROUP2_SUPER_MAGIC (linux/magic.h); busybox stat has no name for it.
if [ "$(stat -f -c %t $CG)" != 63677270 ]; then
	echo "FAIL $CG is not cgroup2: refusing to touch it"
	exit 1
fi
echo "ok   OXCART_V2_LANE=1 is set"
echo "ok   /sys/fs/cgroup is cgroup2"
check "no cgroup v1 hierarchy is mounted" sh -c '! grep -q " cgroup " /proc/mounts'
check "kernel booted with cgroup_no_v1=all" grep -qw cgroup_no_v1=all /proc/cmdline
for c in memory pids cpu; do
	check "controller $c available at the root" grep -qw $c $CG/cgroup.controllers
	check "controller $c delegated to children" grep -qw $c $CG/cgroup.subtree_control
done
check "create child cgroup" mkdir "$child"
check "child sees memory pids cpu" sh -c "grep -qw memory $child/cgroup.controllers && grep -qw pids $child/cgroup.controllers && grep -qw cpu $child/cgroup.controllers"
echo 67108864 >"$child/memory.max"
check "memory.max set to 64 MiB" [ "$(cat "$child/memory.max")" = 67108864 ]
echo 16 >"$child/pids.max"
check "pids.max set to 16" [ "$(cat "$child/pids.max")" = 16 ]
echo "50000 100000" >"$child/cpu.max"
check "cpu.max set to 50000 100000" [ "$(cat "$child/cpu.max")" = "50000 100000" ]
sleep 60 &
sleeper=$!
echo "$sleeper" >"$child/cgroup.procs"
check "process moved into the child" grep -qx "$sleeper" "$child/cgroup.procs"
check "/proc/PID/cgroup names the child" [ "$(cat /proc/$sleeper/cgroup)" = "0::/${child#$CG/}" ]
check "pids.current counts it" [ "$(cat "$child/pids.current")" = 1 ]
# pids.max is enforced: with the limit at the current count, a shell that
# joins the cgroup (migration ignores the limit) cannot fork.
echo 1 >"$child/pids.max"
out=$(sh -c "echo \$\$ >$child/cgroup.procs && /bin/true && echo forked" 2>&1)
check "fork beyond pids.max fails" [ "${out#*forked}" = "$out" ]
check "pids.events counts the refused fork" sh -c "[ \$(awk '/^max /{print \$2}' $child/pids.events) -ge 1 ]"

# Runtimes pivot_root into each container: / must not be the initramfs rootfs,
# where pivot_root(2) fails with EINVAL.
check "pivot_root works in a new mount namespace" unshare -m sh -c '
	mount --make-rprivate / && d=$(mktemp -d) && mount -t tmpfs lane-pivot "$d" &&
	mkdir "$d/old" && cd "$d" && pivot_root . old && [ -d /old/proc ]'

if [ "$fails" -ne 0 ]; then
	echo "selftest.sh: $fails check(s) failed"
	exit 1
fi
echo "selftest.sh: all checks passed"
