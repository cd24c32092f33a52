#!/usr/bin/env bash
# The cgroup-v2 test lane: run test executables inside a pure cgroup-v2 guest.
#
# Our hosts are hybrid-cgroup machines, so the pure v2 code paths need their own
# kernel. This boots Debian's linux-image-cloud-amd64 kernel under
# `qemu-system-x86_64 -accel tcg` (KVM does not work on our machines, see
# /work/shared/V2-LANE.md) with an initramfs holding busybox, the test
# executables and every file they need at the SAME absolute paths as on the
# host, runs the tests inside, reads the results back from the serial console
# and exits non-zero if any test failed, the guest never reported, or the run
# timed out. Full documentation: docs/v2-lane.md.
set -euo pipefail
# The whole script is one brace group, parsed before any of it runs, so that
# editing this file while a lane is running cannot derail that run.
{

LANE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$LANE_DIR/../.." && pwd -P)
PROG=tests/v2-lane/run.sh

DEFAULT_PACKAGES=(oxcart_cgroups oxcart-runtime)
# Modules the lifecycle and network tests need. Loaded when the kernel has them
# as modules; a note is printed when the kernel lacks one entirely.
DEFAULT_MODULES=(overlay veth bridge)

usage() {
	cat <<EOF
usage: $PROG [OPTIONS] [-- COMMAND [ARGS]...]

Runs tests inside a pure cgroup-v2 guest (qemu TCG, Debian cloud kernel).
With no test-selecting option it builds the test executables of the packages
${DEFAULT_PACKAGES[*]} (cargo test --no-run) and runs them, plus the lane's own
self-test. Every test runs with OXCART_V2_LANE=1 in its environment.

Test-selecting options (any of them replaces the default set):
  --package PKG       cargo-build PKG's test executables and run each with
                      --test-threads=1 (repeatable)
  --test PATH         a libtest executable to run with --test-threads=1
                      (repeatable)
  --self-test         run the lane self-test (tests/v2-lane/selftest.{sh,rs})
  -- COMMAND [ARGS]   one more command, run verbatim (no extra arguments)

Other options:
  --test-arg ARG      extra argument for every --package/--test executable,
                      e.g. a test-name filter or --nocapture (repeatable)
  --copy PATH         file or directory to put in the guest at the same
                      absolute path (repeatable); ELF files get their ldd libs
  --env NAME=VALUE    extra environment for every test (repeatable)
  --test-cgroup PATH  run each test in this cgroup (e.g. /lane.slice/tests.scope,
                      as a systemd service would be) instead of the root cgroup
  --module NAME       extra kernel module to insmod (repeatable)
  --lib SONAME        extra shared library a test dlopen()s, found with
                      ldconfig -p (repeatable)
  --no-self-test      in the default set, skip the self-test
  --kernel PATH       kernel image (default: newest /boot/vmlinuz-*-cloud-amd64)
  --timeout SECS      whole run, build excluded (default \$OXCART_V2_LANE_TIMEOUT or 900)
  --test-timeout SECS per test executable, inside the guest (default 300)
  --memory MB         guest memory (default 2048)
  --smp N             guest CPUs (default 2)
  --append ARGS       extra kernel command line
  --selinux MODE      boot with SELinux (security=selinux) and load the lane's
                      test policy (tests/v2-lane/selinux/policy.conf, compiled
                      with checkpolicy); MODE is enforcing or permissive. Tests
                      get OXCART_V2_LANE_SELINUX=MODE
  --apparmor          load the lane's AppArmor test profiles (tests/v2-lane/
                      apparmor/*, compiled with apparmor_parser) in the guest,
                      whose kernel boots AppArmor by default. Tests get
                      OXCART_V2_LANE_APPARMOR=1. Not with --selinux
  --accel ACCEL       qemu accelerator (default tcg: KVM fails on our machines)
  --keep              keep the temp dir (initramfs, console log) and print its path
  -h, --help          this text

Exit status: 0 all tests passed; 1 a test failed, the guest did not report or
timed out; 2 usage or setup error.
EOF
}

note() { printf 'v2-lane: %s\n' "$*" >&2; }
die() {
	printf 'v2-lane: error: %s\n' "$*" >&2
	exit 2
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- arguments
packages=()
tests=()
test_args=()
copies=()
extra_env=()
extra_modules=()
extra_libs=()
test_cgroup=
raw_cmd=()
self_test=
no_self_test=0
kernel=
timeout_s=${OXCART_V2_LANE_TIMEOUT:-900}
test_timeout_s=300
mem=2048
smp=2
append=
selinux=
apparmor=0
accel=${OXCART_V2_LANE_ACCEL:-tcg}
keep=0
selected=0

need_arg() { [[ $# -ge 2 ]] || die "$1 needs an argument (see --help)"; }
while [[ $# -gt 0 ]]; do
	case $1 in
	--package) need_arg "$@"; packages+=("$2"); selected=1; shift 2 ;;
	--test) need_arg "$@"; tests+=("$2"); selected=1; shift 2 ;;
	--self-test) self_test=1; selected=1; shift ;;
	--no-self-test) no_self_test=1; shift ;;
	--test-arg) need_arg "$@"; test_args+=("$2"); shift 2 ;;
	--copy) need_arg "$@"; copies+=("$2"); shift 2 ;;
	--env) need_arg "$@"; [[ $2 == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE, got '$2'"; extra_env+=("$2"); shift 2 ;;
	--module) need_arg "$@"; extra_modules+=("$2"); shift 2 ;;
	--lib) need_arg "$@"; extra_libs+=("$2"); shift 2 ;;
	--test-cgroup) need_arg "$@"; test_cgroup=$2; shift 2 ;;
	--kernel) need_arg "$@"; kernel=$2; shift 2 ;;
	--timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
	--test-timeout) need_arg "$@"; test_timeout_s=$2; shift 2 ;;
	--memory) need_arg "$@"; mem=$2; shift 2 ;;
	--smp) need_arg "$@"; smp=$2; shift 2 ;;
	--append) need_arg "$@"; append=$2; shift 2 ;;
	--selinux) need_arg "$@"; [[ $2 == enforcing || $2 == permissive ]] || die "--selinux wants enforcing or permissive, got '$2'"; selinux=$2; shift 2 ;;
	--apparmor) apparmor=1; shift ;;
	--accel) need_arg "$@"; accel=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; [[ $# -gt 0 ]] || die "'--' must be followed by a command"; raw_cmd=("$@"); selected=1; break ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
for n in "$timeout_s" "$test_timeout_s" "$mem" "$smp"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "expected a positive integer, got '$n'"
done
if [[ -n $test_cgroup ]]; then
	[[ $test_cgroup =~ ^(/[A-Za-z0-9_.@:-]+)+$ && ! $test_cgroup =~ /\.\.?(/|$) ]] ||
		die "--test-cgroup wants an absolute cgroup path like /lane.slice/tests.scope, got '$test_cgroup'"
fi
if [[ $selected -eq 0 ]]; then
	packages=("${DEFAULT_PACKAGES[@]}")
	[[ $no_self_test -eq 1 ]] || self_test=1
fi

# -------------------------------------------------------------- host checks
for tool in qemu-system-x86_64 cpio ldd realpath timeout awk; do
	command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install qemu-system-x86 cpio)"
done
if [[ -z $kernel ]]; then
	kernel=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1) ||
		true
	[[ -n $kernel ]] || die "no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64) and no --kernel"
fi
[[ -r $kernel ]] || die "kernel image $kernel is not readable"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[[ -f $moddir/modules.dep ]] || die "no $moddir/modules.dep for kernel $kernel (release '$kver' taken from its file name)"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox not found (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; the guest needs busybox-static (apt-get install busybox-static)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/oxcart-v2-lane.XXXXXX")
qpid=
cleanup() {
	local rc=$?
	if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	if [[ $keep -eq 1 ]]; then
		note "kept temp dir $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
root=$tmp/root
mkdir -p "$root/lane/tests"
t_start=$(now)

# ------------------------------------------------------------------ staging
# Copy host paths into $root at the same absolute path. Symlinked components
# of a path (Debian's merged /usr: /lib -> usr/lib, /lib64/ld-linux... ->
# /lib/x86_64-linux-gnu/...) are recreated as the same symlinks, and content is
# copied to its real path, so nothing is ever written through a symlink that
# points outside $root.
mirror_links() {
	local path=$1 depth=${2:-0} cur= comp rp tgt
	[[ $depth -lt 40 ]] || die "too many levels of symbolic links under $path"
	local -a parts
	IFS=/ read -ra parts <<<"${path#/}"
	for comp in "${parts[@]}"; do
		[[ -n $comp && $comp != . ]] || continue
		if [[ -L $cur/$comp ]]; then
			rp=$(realpath -e "${cur:-/}")
			[[ $rp == / ]] && rp=
			tgt=$(readlink "$cur/$comp")
			mkdir -p "$root$rp"
			if [[ ! -e $root$rp/$comp && ! -L $root$rp/$comp ]]; then
				ln -s "$tgt" "$root$rp/$comp"
			fi
			# The link's target may itself go through links.
			if [[ $tgt == /* ]]; then
				mirror_links "$tgt" $((depth + 1))
			else
				mirror_links "$rp/$tgt" $((depth + 1))
			fi
		fi
		cur=$cur/$comp
	done
}

# Paths the guest mounts over (/tmp and /run are carried into their tmpfs by
# /init, so they are fine).
check_guest_path() {
	case $1 in
	/ | /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /lane | /lane/* | /init)
		die "cannot put $1 into the guest: the lane owns that path" ;;
	esac
}

stage_path() {
	local p=$1 real
	[[ $p == /* ]] || p=$(pwd -P)/$p
	[[ -e $p ]] || die "no such file or directory: $p"
	check_guest_path "$p"
	mirror_links "$p"
	real=$(realpath -e "$p")
	check_guest_path "$real"
	if [[ -d $real ]]; then
		mkdir -p "$root$real"
		cp -a "$real/." "$root$real/"
	elif [[ ! -e $root$real ]]; then
		mkdir -p "$root${real%/*}"
		cp -a "$real" "$root$real"
	fi
}

declare -A staged_libs=()
# A file, plus the shared libraries and dynamic loader ldd names for it.
stage_exe() {
	local f=$1 lib
	stage_path "$f"
	# ldd fails for static executables and scripts; those need nothing else.
	while read -r lib; do
		[[ -n $lib && -z ${staged_libs[$lib]:-} ]] || continue
		staged_libs[$lib]=1
		stage_path "$lib"
	done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }' || true)
}

test_count=0
expected_names=()
shq() { [[ $# -eq 0 ]] || printf '%q ' "$@"; }
# add_test NAME CWD ENV... -- ARGV...
add_test() {
	# Names go on marker lines the host splits on blanks.
	local name=${1//[[:space:]]/_} cwd=$2 n
	shift 2
	for n in "${expected_names[@]}"; do
		[[ $n != "$name" ]] || name=$name#$((test_count + 1))
	done
	local -a env=()
	[[ -z $test_cgroup ]] || env+=("OXCART_V2_LANE_TEST_CGROUP=$test_cgroup")
	while [[ $1 != -- ]]; do env+=("$1"); shift; done
	shift
	test_count=$((test_count + 1))
	local dir
	dir=$root/lane/tests/$(printf '%03d' "$test_count")
	mkdir -p "$dir"
	printf '%s\n' "$name" >"$dir/name"
	{
		echo "cd $(shq "$cwd") || exit 125"
		[[ -z $test_cgroup ]] || echo "echo \$\$ >/sys/fs/cgroup$test_cgroup/cgroup.procs || exit 125"
		echo "exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root LOGNAME=root \\"
		echo "  TMPDIR=/tmp TERM=dumb RUST_BACKTRACE=1 OXCART_V2_LANE=1 $(shq "${env[@]}" "${extra_env[@]}")\\"
		echo "  timeout -s KILL $test_timeout_s $(shq "$@")"
	} >"$dir/run"
	expected_names+=("$name")
}

# Guest layout: mirror the host's merged-/usr links so host paths resolve the
# same way inside; busybox installs its applets into these at boot.
for d in /bin /sbin /lib /lib64 /usr/bin /usr/sbin /usr/lib; do
	if [[ -L $d ]]; then mirror_links "$d"; else mkdir -p "$root$d"; fi
done
stage_path "$busybox"
# /init's interpreter is /bin/busybox.
[[ -e $root/bin/busybox ]] || ln -s "$(realpath -e "$busybox")" "$root/bin/busybox"
install -m 0755 "$LANE_DIR/init.sh" "$root/init"
mkdir -p "$root/etc" "$root/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '127.0.0.1 localhost oxcart-v2-lane\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
printf 'hosts: files\npasswd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
ln -s /proc/self/mounts "$root/etc/mtab"

# Kernel modules, in load order: modules.dep lists every (transitive)
# dependency, and modprobe loads them last-listed first (modules.dep(5)).
declare -A mod_done=()
mod_list=()
stage_module_file() {
	local rel=$1 src=$moddir/$1 dst
	[[ -z ${mod_done[$rel]:-} ]] || return 0
	mod_done[$rel]=1
	dst=$root$moddir/${rel%.ko*}.ko
	mkdir -p "${dst%/*}"
	case $rel in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "unknown module file format: $src" ;;
	esac
	mod_list+=("$moddir/${rel%.ko*}.ko")
}
stage_module() {
	local name=$1 required=$2 alt line i
	alt=${name//-/_}
	line=$(grep -E "(^|/)(${name}|${alt}|${alt//_/-})\.ko(\.(xz|zst|gz))?:" "$moddir/modules.dep" | head -n 1 || true)
	if [[ -z $line ]]; then
		if grep -qE "(^|/)(${name}|${alt})\.ko(\.(xz|zst|gz))?$" "$moddir/modules.builtin" 2>/dev/null; then
			return 0 # built into the kernel
		fi
		[[ $required -eq 0 ]] || die "kernel $kver has no module '$name' (not in $moddir/modules.dep nor modules.builtin)"
		note "kernel $kver has no module '$name'; tests needing it will fail"
		return 0
	fi
	local -a deps
	read -ra deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do stage_module_file "${deps[i]}"; done
	stage_module_file "${line%%:*}"
}
mirror_links "$moddir"
for m in "${DEFAULT_MODULES[@]}"; do stage_module "$m" 0; done
for m in "${extra_modules[@]}"; do stage_module "$m" 1; done
[[ ${#mod_list[@]} -eq 0 ]] || printf '%s\n' "${mod_list[@]}" >"$root/lane/modules"
[[ -z $test_cgroup ]] || printf '%s\n' "$test_cgroup" >"$root/lane/test-cgroup"
cp "$moddir"/modules.{dep,alias,builtin,order} "$root$moddir/" 2>/dev/null || true

# dlopen()ed libraries: the host's loader cache says where each soname lives.
stage_soname() { # SONAME
	local path
	path=$("$(command -v ldconfig || echo /sbin/ldconfig)" -p 2>/dev/null | awk -v so="$1" '$1 == so && /x86-64/ && !found { print $NF; found = 1 }')
	[[ -n $path ]] || die "--lib $1: not in the host's loader cache (ldconfig -p)"
	stage_exe "$path"
}
for l in "${extra_libs[@]}"; do stage_soname "$l"; done

for c in "${copies[@]}"; do
	if [[ -f $c ]]; then stage_exe "$c"; else stage_path "$c"; fi
done

# SELinux: the kernel has it built in but Debian boots AppArmor, the first
# exclusive LSM in its CONFIG_LSM; security=selinux picks SELinux instead
# (CONFIG_SECURITY_SELINUX_BOOTPARAM is off, so selinux=1 means nothing).
# The policy is compiled here, MLS (-M) with handle_unknown=allow (-U allow):
# see policy.conf. Version 33 is the newest a 6.1 kernel loads.
if [[ -n $selinux ]]; then
	command -v checkpolicy >/dev/null || die "--selinux needs checkpolicy (apt-get install checkpolicy)"
	mkdir -p "$root/lane/selinux"
	checkpolicy -M -U allow -c 33 -o "$root/lane/selinux/policy" "$LANE_DIR/selinux/policy.conf" >"$tmp/checkpolicy.log" 2>&1 ||
		die "checkpolicy failed on $LANE_DIR/selinux/policy.conf: $(cat "$tmp/checkpolicy.log")"
	printf '%s\n' "$selinux" >"$root/lane/selinux/mode"
	extra_env+=("OXCART_V2_LANE_SELINUX=$selinux")
	append="security=selinux${append:+ $append}"
fi
# --apparmor: the cloud kernel's default LSM already is AppArmor
# (CONFIG_DEFAULT_SECURITY_APPARMOR), so only the profiles are needed. They are
# compiled here, without the guest kernel's feature set (the host kernel has
# no AppArmor: apparmor_parser falls back to its built-in default ABI, which
# 6.1 accepts), into one binary policy for /init to write to
# /sys/kernel/security/apparmor/.load, as `apparmor_parser -a` does.
if [[ $apparmor -eq 1 ]]; then
	[[ -z $selinux ]] || die "--apparmor and --selinux exclude each other: the kernel runs one of the two (exclusive LSMs)"
	command -v apparmor_parser >/dev/null || die "--apparmor needs apparmor_parser (apt-get install apparmor)"
	mkdir -p "$root/lane/apparmor"
	for prof in "$LANE_DIR"/apparmor/*; do
		[[ -f $prof ]] || continue
		# -Q: do not load into the host kernel; -o: the binary policy.
		apparmor_parser -Q -o "$root/lane/apparmor/${prof##*/}.bin" "$prof" >"$tmp/apparmor_parser.log" 2>&1 ||
			die "apparmor_parser failed on $prof: $(cat "$tmp/apparmor_parser.log")"
	done
	ls "$root/lane/apparmor/"*.bin >/dev/null 2>&1 || die "--apparmor: no profiles in $LANE_DIR/apparmor"
	extra_env+=("OXCART_V2_LANE_APPARMOR=1")
fi

# ---------------------------------------------------------------- test sets
# Cargo's own answer covers CARGO_TARGET_DIR and build.target-dir alike.
meta=
if [[ ${#packages[@]} -gt 0 ]]; then
	command -v cargo >/dev/null || die "cargo not found"
	command -v jq >/dev/null || die "jq not found (apt-get install jq)"
	meta=$(cd "$REPO_ROOT" && cargo metadata --no-deps --format-version 1) || die "cargo metadata failed in $REPO_ROOT"
	target_dir=$(jq -r .target_directory <<<"$meta")
else
	target_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
	[[ $target_dir == /* ]] || target_dir=$REPO_ROOT/$target_dir
fi

if [[ -n $self_test ]]; then
	command -v rustc >/dev/null || die "rustc not found (needed for the lane self-test)"
	# Built with rustc directly: it is not a workspace member. It lives in the
	# target dir, not $tmp, so it keeps one path on host and guest.
	st_bin=$target_dir/v2-lane/selftest
	mkdir -p "${st_bin%/*}"
	rustc --edition 2021 --test -C opt-level=1 -C debuginfo=1 -o "$st_bin" "$LANE_DIR/selftest.rs" ||
		die "building the lane self-test failed"
	stage_exe "$st_bin"
	stage_path "$LANE_DIR/selftest.sh"
	add_test lane/selftest.sh "$LANE_DIR" -- /bin/sh "$LANE_DIR/selftest.sh"
	add_test lane/selftest.rs "$LANE_DIR" -- "$st_bin" --test-threads=1 "${test_args[@]}"
fi

t_build=$(now)
if [[ ${#packages[@]} -gt 0 ]]; then
	pkg_flags=()
	declare -A pkg_of_manifest=()
	for p in "${packages[@]}"; do
		mf=$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .manifest_path' <<<"$meta")
		if [[ -z $mf ]]; then
			note "package '$p' is not in the workspace at $REPO_ROOT: skipped"
			continue
		fi
		pkg_flags+=(-p "$p")
		pkg_of_manifest[$mf]=$p
	done
	if [[ ${#pkg_flags[@]} -gt 0 ]]; then
		note "building test executables: cargo test --no-run ${pkg_flags[*]} (target dir $target_dir)"
		(cd "$REPO_ROOT" && cargo test --no-run --message-format=json-render-diagnostics "${pkg_flags[@]}") >"$tmp/cargo.json" ||
			die "cargo test --no-run ${pkg_flags[*]} failed"
		n_exe=0
		while IFS=$'\t' read -r is_test exe mf kind tname; do
			if [[ $is_test != true ]]; then
				# Binaries the tests reach through env!("CARGO_BIN_EXE_<name>").
				stage_exe "$exe"
				continue
			fi
			pkg=${pkg_of_manifest[$mf]:-}
			[[ -n $pkg ]] || continue # a dependency's test target: not asked for
			stage_exe "$exe"
			n_exe=$((n_exe + 1))
			# cargo test runs each executable in its package root with these set.
			add_test "$pkg/$kind/$tname" "${mf%/*}" CARGO_MANIFEST_DIR="${mf%/*}" CARGO_PKG_NAME="$pkg" \
				-- "$exe" --test-threads=1 "${test_args[@]}"
		done < <(jq -r 'select(.reason == "compiler-artifact" and .executable != null)
			| [(.profile.test | tostring), .executable, .manifest_path, (.target.kind | join(",")), .target.name] | @tsv' "$tmp/cargo.json")
		# Integration tests' scratch dir, env!("CARGO_TARGET_TMPDIR"):
		# cargo creates it before running tests, so do the same.
		mkdir -p "$root$target_dir/tmp"
		if [[ $n_exe -eq 0 ]]; then
			note "packages ${pkg_flags[*]} have no test executables yet: nothing of theirs to run"
		else
			# Tests find fixtures through CARGO_MANIFEST_DIR: give them the
			# workspace's sources (tracked and untracked-not-ignored files).
			if git -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
				mkdir -p "$root$REPO_ROOT"
				(cd "$REPO_ROOT" && git ls-files -z -co --exclude-standard |
					tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$root$REPO_ROOT"
			fi
		fi
	else
		note "none of the packages ${packages[*]} exist: nothing of theirs to run"
	fi
fi
t_built=$(now)

for t in "${tests[@]}"; do
	[[ -f $t && -x $t ]] || die "--test $t: not an executable file"
	[[ $t == /* ]] || t=$(pwd -P)/$t
	stage_exe "$t"
	add_test "${t##*/}" / -- "$t" --test-threads=1 "${test_args[@]}"
done
if [[ ${#raw_cmd[@]} -gt 0 ]]; then
	c=${raw_cmd[0]}
	# A busybox applet path (/bin/sh, /bin/true, ...) is the guest's busybox;
	# any other path with a slash is copied from the host; a bare name is
	# looked up in the guest's PATH.
	if [[ $c == */* ]] && ! "$busybox" --list-full | grep -qxF "${c#/}"; then
		[[ -e $c ]] || die "command $c does not exist"
		[[ $c == /* ]] || c=$(pwd -P)/$c
		stage_exe "$c"
		raw_cmd[0]=$c
	fi
	add_test "${raw_cmd[*]}" / -- "${raw_cmd[@]}"
fi

if [[ $test_count -eq 0 ]]; then
	note "no test executables to run: not booting the guest"
	exit 0
fi

# Busybox applets, except where a program of that name was staged from the
# host: a copied /usr/bin/ip (iproute2) must not lose to busybox's /sbin/ip,
# which comes first in PATH.
applet_dirs=(usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin)
while read -r app; do
	name=${app##*/}
	for d in "${applet_dirs[@]}"; do
		[[ ! -L $root/$d/$name && ! -e $root/$d/$name ]] || continue 2
	done
	ln -s /bin/busybox "$root/$app"
done < <("$busybox" --list-full)

# ---------------------------------------------------------------- initramfs
# Uncompressed cpio: under TCG the guest decompresses several times slower than
# the host, and qemu loads the file straight into guest memory.
initrd=$tmp/initrd.cpio
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$initrd"
t_staged=$(now)
note "initramfs: $(du -m "$initrd" | cut -f1) MiB, $test_count test executable(s), modules: ${mod_list[*]##*/}"

# --------------------------------------------------------------------- boot
cmdline="console=ttyS0 quiet panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all random.trust_cpu=on"
[[ -z $append ]] || cmdline+=" $append"
log=$tmp/console.log
: >"$log"
note "booting $kernel ($accel, ${mem} MiB, $smp cpus, timeout ${timeout_s}s)"
timeout -k 10 "$timeout_s" qemu-system-x86_64 -accel "$accel" -cpu max -m "$mem" -smp "$smp" \
	-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline" </dev/null >"$log" 2>&1 &
qpid=$!
# Stream the console (minus the serial line's CRs) while the guest runs. In
# the background, so that `wait` (unlike a foreground pipeline) lets the
# INT/TERM traps run at once.
tail -n +1 -f --pid="$qpid" "$log" | tr -d '\r\000' &
tailpid=$!
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$tailpid" || true
t_end=$(now)

# -------------------------------------------------------------------- verdict
# NULs too: contexts read from /proc end in one, and a test printing one must
# not make grep call the log binary and lose the markers.
tr -d '\r\000' <"$log" >"$log.txt"
declare -A rc_of=()
while read -r _ _ name rc _; do
	rc_of[$name]=$rc
done < <(grep -E '^@@LANE RESULT [^ ]+ rc=' "$log.txt")
status=0
echo
echo "================ v2-lane summary ================"
booted=$(grep -m1 '^@@LANE BOOTED ' "$log.txt" || true)
[[ -n $booted ]] && echo "guest: ${booted#@@LANE BOOTED }"
for name in "${expected_names[@]}"; do
	r=${rc_of[$name]:-}
	if [[ -z $r ]]; then
		printf 'NOT RUN  %s\n' "$name"
		status=1
	elif [[ $r == rc=0 ]]; then
		printf 'ok       %s\n' "$name"
	elif [[ $r == rc=137 ]]; then
		printf 'FAILED   %s (%s: SIGKILL, from the %ss --test-timeout or the OOM killer)\n' "$name" "$r" "$test_timeout_s"
		status=1
	else
		printf 'FAILED   %s (%s)\n' "$name" "$r"
		status=1
	fi
done
if grep -q '^@@LANE FATAL ' "$log.txt"; then
	grep '^@@LANE FATAL ' "$log.txt"
	status=1
fi
if [[ $qrc -eq 124 || $qrc -eq 137 ]]; then
	echo "TIMEOUT: the guest did not finish within ${timeout_s}s (--timeout / OXCART_V2_LANE_TIMEOUT)"
	status=1
elif [[ $qrc -ne 0 ]]; then
	echo "qemu exited with status $qrc"
	status=1
fi
if ! grep -q '^@@LANE DONE ' "$log.txt"; then
	[[ -n $booted ]] || grep -q "^@@LANE FATAL " "$log.txt" || echo "the guest never got through /init's setup (no @@LANE BOOTED line)"
	echo "the guest never reported completion (no @@LANE DONE line)"
	status=1
fi
printf 'time: %ss total (cargo build %ss, initramfs %ss, qemu boot+tests %ss)\n' \
	"$(elapsed "$t_start" "$t_end")" "$(elapsed "$t_build" "$t_built")" \
	"$(elapsed "$t_built" "$t_staged")" "$(elapsed "$t_staged" "$t_end")"
if [[ $status -eq 0 ]]; then echo "v2-lane: PASSED"; else echo "v2-lane: FAILED"; fi
exit "$status"
}
