#!/bin/busybox sh
# /init of the cgroup-v2 test lane guest (see docs/v2-lane.md).
#
# PID 1 of a busybox initramfs built by tests/v2-lane/run.sh. It sets up a
# minimal pure-cgroup-v2 userspace, runs every test listed under /lane/tests in
# order and reports on the serial console with lines the host parses:
#   @@LANE BOOTED kernel=<release> controllers=<list> selinux=<mode|off> apparmor=<on|off>[:<n> profiles]
#   @@LANE BEGIN <name>
#   @@LANE RESULT <name> rc=<N> secs=<S>
#   @@LANE DONE total=<N> failed=<M>
#   @@LANE FATAL <reason>          (setup failed; no test ran)
# then powers the VM off. If this script dies, the kernel panics (panic=-1 plus
# qemu -no-reboot ends the VM) and the host reports the missing DONE line.

# The initramfs is the kernel's rootfs, the one mount with no parent, and
# pivot_root(2) fails with EINVAL whenever the current root is such a mount
# ("it is not possible to pivot_root the rootfs", see pivot_root(2) and
# switch_root(8)). Runtimes pivot_root into every container, so move a bind
# mount of / over / and chroot into it, as switch_root does, before anything
# else is mounted: then / is an ordinary mount, as on a real host.
if [ "${1:-}" != --stage2 ]; then
	/bin/busybox mkdir -p /.lane-root &&
		/bin/busybox mount --bind / /.lane-root &&
		cd /.lane-root &&
		/bin/busybox mount --move . / &&
		exec /bin/busybox chroot . /init --stage2
	echo "@@LANE FATAL could not make / an ordinary mount"
	/bin/busybox poweroff -f
fi
/bin/busybox rmdir /.lane-root 2>/dev/null

# Busybox's applet links were made by run.sh (see there for why not
# `busybox --install`).
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /root /var/tmp
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Markers start on a fresh line so output a test left without a trailing
# newline cannot hide them from the host's line parser.
marker() { printf '\n@@LANE %s\n' "$*"; }
fatal() {
	marker "FATAL $*"
	poweroff -f
	reboot -f
	exit 1
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

mount -t proc -o nosuid,nodev,noexec proc /proc || fatal "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fatal "mount /sys"
# securityfs, as systemd mounts it on every real host: AppArmor's interface
# (/sys/kernel/security/apparmor: .load, profiles) lives there, and runc's
# apparmor.IsEnabled requires that directory besides the module parameter.
mount -t securityfs -o nosuid,nodev,noexec securityfs /sys/kernel/security || fatal "mount /sys/kernel/security"
# run.sh --apparmor: load the test profiles the host compiled. Each file is one
# binary policy; .load takes it in one write(2) (aa_write_load: no partial
# writes), hence dd with a block larger than the file, as for SELinux below.
if [ -d /lane/apparmor ]; then
	[ -w /sys/kernel/security/apparmor/.load ] || fatal "--apparmor: no /sys/kernel/security/apparmor/.load (kernel booted without AppArmor: security= on the command line?)"
	for p in /lane/apparmor/*.bin; do
		dd if="$p" of=/sys/kernel/security/apparmor/.load bs=16M 2>/dev/null ||
			fatal "load the AppArmor policy $p (dmesg: $(dmesg | grep -i apparmor | tail -n 3 | tr '\n' ' '))"
	done
fi
# run.sh --selinux: load the test policy the host compiled. selinuxfs takes the
# whole policy in one write(2) at offset 0 (sel_write_load), hence dd with a
# block larger than the file; then the requested mode (enforce: 1 or 0).
if [ -f /lane/selinux/policy ]; then
	[ -d /sys/fs/selinux ] || fatal "--selinux: no /sys/fs/selinux (kernel booted without SELinux: is security=selinux on the command line?)"
	mount -t selinuxfs -o nosuid,noexec selinuxfs /sys/fs/selinux || fatal "mount selinuxfs"
	dd if=/lane/selinux/policy of=/sys/fs/selinux/load bs=16M 2>/dev/null || fatal "load the SELinux policy (dmesg: $(dmesg | grep -i selinux | tail -n 3 | tr '\n' ' '))"
	case $(cat /lane/selinux/mode) in
	enforcing) echo 1 >/sys/fs/selinux/enforce ;;
	*) echo 0 >/sys/fs/selinux/enforce ;;
	esac || fatal "set the SELinux mode"
fi
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fatal "mount /dev"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,gid=5,mode=620,ptmxmode=0666 devpts /dev/pts || fatal "mount /dev/pts"
# With newinstance, /dev/ptmx must point into this devpts instance.
rm -f /dev/ptmx && ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm || fatal "mount /dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue || fatal "mount /dev/mqueue"
# tmpfs on /run and /tmp, carrying over what the host staged there (test
# executables built under a /tmp target dir must stay reachable).
mount_tmpfs() { # DIR MODE
	if [ -n "$(ls -A "$1")" ]; then
		mkdir -p /lane/staged && mv "$1" "/lane/staged$1" && mkdir "$1" || fatal "move staged $1 aside"
	fi
	mount -t tmpfs -o "nosuid,nodev,mode=$2" tmpfs "$1" || fatal "mount $1"
	if [ -d "/lane/staged$1" ]; then
		cp -a "/lane/staged$1/." "$1/" && rm -rf "/lane/staged$1" || fatal "copy staged files into $1"
	fi
}
mount_tmpfs /run 0755
mount_tmpfs /tmp 1777
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

# Pure cgroup v2, mounted the way systemd does on a unified host
# (cgroup_no_v1=all on the kernel command line keeps every v1 hierarchy away).
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	fatal "mount cgroup2 at /sys/fs/cgroup"
mount -t bpf -o nosuid,nodev,noexec bpf /sys/fs/bpf 2>/dev/null
# Delegate every available controller to children of the root, as systemd does.
for c in cpuset cpu io memory pids hugetlb rdma misc; do
	if grep -qw "$c" /sys/fs/cgroup/cgroup.controllers; then
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || fatal "enable controller $c in the root cgroup"
	fi
done

# --test-cgroup: the tests' own cgroup, every controller delegated down to it,
# the way systemd runs a service in a leaf below the root.
if [ -f /lane/test-cgroup ]; then
	cg=/sys/fs/cgroup
	for part in $(tr '/' ' ' </lane/test-cgroup); do
		cg=$cg/$part
		mkdir -p "$cg" || fatal "mkdir $cg"
		if [ "$cg" != "/sys/fs/cgroup$(cat /lane/test-cgroup)" ]; then
			for c in $(cat "$cg/cgroup.controllers"); do
				echo "+$c" >"$cg/cgroup.subtree_control" || fatal "enable $c in $cg"
			done
		fi
	done
fi

# Kernel modules, in dependency order (computed by the host from modules.dep).
if [ -f /lane/modules ]; then
	while read -r ko; do
		[ -n "$ko" ] || continue
		insmod "$ko" || fatal "insmod $ko"
	done </lane/modules
fi

hostname oxcart-v2-lane
ip link set lo up || fatal "bring up loopback"

selinux=off
[ ! -f /sys/fs/selinux/enforce ] || selinux=$(sed 's/^1$/enforcing/; s/^0$/permissive/' /sys/fs/selinux/enforce)
# apparmor=on:<n> (profiles loaded) where the kernel runs AppArmor, else off.
apparmor=off
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] && [ -d /sys/kernel/security/apparmor ]; then
	apparmor=on:$(wc -l </sys/kernel/security/apparmor/profiles | tr -d ' ')
fi
marker "BOOTED kernel=$(uname -r) uptime=$(uptime_s) controllers=$(tr ' ' ',' </sys/fs/cgroup/cgroup.subtree_control) selinux=$selinux apparmor=$apparmor"

total=0
failed=0
for t in /lane/tests/*; do
	[ -f "$t/run" ] || continue
	name=$(cat "$t/name")
	total=$((total + 1))
	marker "BEGIN $name"
	start=$(uptime_s)
	# Tests get a fresh stdin (/dev/null) so nothing waits on the console.
	sh "$t/run" </dev/null
	rc=$?
	end=$(uptime_s)
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
	marker "RESULT $name rc=$rc secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
done
marker "DONE total=$total failed=$failed uptime=$(uptime_s)"
sync
poweroff -f
reboot -f
