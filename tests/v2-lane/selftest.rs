//! Lane self-test, Rust half: proves the cgroup-v2 lane guest is what the
//! lifecycle and cgroup tests need, through the same path they take (a libtest
//! executable with shared libraries, run with `--test-threads=1`).
//!
//! Built by tests/v2-lane/run.sh with `rustc --test` (std only; not a
//! workspace member) and meant to run only inside the lane: on a hybrid host
//! these tests fail, by design.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const ROOT: &str = "/sys/fs/cgroup";

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: impl AsRef<Path>, value: &str) {
    let path = path.as_ref();
    fs::write(path, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()))
}

/// `key value` lines of a flat-keyed cgroup file (memory.events, pids.events).
fn keyed(path: impl AsRef<Path>, key: &str) -> u64 {
    let text = read(path.as_ref());
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}: {text:?}", path.as_ref().display()))
}

/// A child of the root cgroup, killed and removed on drop even if the test
/// fails.
struct TestCgroup {
    path: PathBuf,
    name: String,
}

/// Refuses to go on outside the lane guest: these tests write to
/// /sys/fs/cgroup, which on a host belongs to the host.
fn assert_in_lane() {
    assert_eq!(
        std::env::var("OXCART_V2_LANE").as_deref(),
        Ok("1"),
        "not inside the v2 lane (OXCART_V2_LANE unset): refusing to touch {ROOT}"
    );
    let own = read("/proc/self/cgroup");
    assert!(
        own.starts_with("0::/") && own.lines().count() == 1,
        "not a v2-only kernel ({own:?}): refusing to touch {ROOT}"
    );
}

impl TestCgroup {
    fn new(tag: &str) -> Self {
        assert_in_lane();
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "oxcart-lane-selftest-rs-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let path = Path::new(ROOT).join(&name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path, name }
    }

    fn file(&self, f: &str) -> PathBuf {
        self.path.join(f)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // cgroup.kill (Linux 5.14) SIGKILLs every member; rmdir succeeds once
        // they are reaped, which may take a moment.
        let _ = fs::write(self.file("cgroup.kill"), "1");
        for _ in 0..200 {
            if fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("selftest: could not remove {}", self.path.display());
    }
}

/// A spawned child killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sh -c SCRIPT` that first moves itself into `cg` (so everything it runs is
/// charged there), then runs `script`.
fn sh_in(cg: &TestCgroup, script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(format!(
        "echo $$ > {} && {script}",
        cg.file("cgroup.procs").display()
    ));
    cmd
}

#[test]
fn runs_inside_the_lane() {
    assert_eq!(std::env::var("OXCART_V2_LANE").as_deref(), Ok("1"));
    let cmdline = read("/proc/cmdline");
    assert!(
        cmdline.split_whitespace().any(|w| w == "cgroup_no_v1=all"),
        "{cmdline}"
    );
}

#[test]
fn overlay_veth_bridge_are_loaded() {
    // run.sh insmods them from the kernel's modules (lifecycle and network
    // tests need overlayfs, veth pairs and bridges).
    let filesystems = read("/proc/filesystems");
    assert!(
        filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("overlay")),
        "{filesystems}"
    );
    for m in ["veth", "bridge"] {
        assert!(
            Path::new("/sys/module").join(m).exists(),
            "module {m} not loaded"
        );
    }
}

#[test]
fn cgroup2_is_the_only_hierarchy() {
    let mountinfo = read("/proc/self/mountinfo");
    let mut cgroup2_at_root = false;
    for line in mountinfo.lines() {
        // mountinfo(5): fields, then " - ", then fstype source options.
        let (pre, post) = line.split_once(" - ").expect("mountinfo line has ' - '");
        let mount_point = pre.split(' ').nth(4).expect("mount point field");
        let fstype = post.split(' ').next().expect("fstype field");
        assert_ne!(fstype, "cgroup", "a cgroup v1 hierarchy is mounted: {line}");
        if mount_point == ROOT && fstype == "cgroup2" {
            cgroup2_at_root = true;
        }
    }
    assert!(cgroup2_at_root, "no cgroup2 at {ROOT}:\n{mountinfo}");
    // On a v2-only kernel a process belongs to exactly one hierarchy: the
    // root cgroup, or the one --test-cgroup named.
    let own = read("/proc/self/cgroup");
    let want = std::env::var("OXCART_V2_LANE_TEST_CGROUP").unwrap_or_else(|_| "/".into());
    assert_eq!(own, format!("0::{want}\n"));
}

#[test]
fn root_delegates_memory_pids_cpu() {
    let available = read(format!("{ROOT}/cgroup.controllers"));
    let delegated = read(format!("{ROOT}/cgroup.subtree_control"));
    for c in ["memory", "pids", "cpu"] {
        assert!(
            available.split_whitespace().any(|w| w == c),
            "{c} not in {available:?}"
        );
        assert!(
            delegated.split_whitespace().any(|w| w == c),
            "{c} not in {delegated:?}"
        );
    }
}

#[test]
fn child_cgroup_takes_limits_and_members() {
    let cg = TestCgroup::new("limits");
    let controllers = read(cg.file("cgroup.controllers"));
    for c in ["memory", "pids", "cpu"] {
        assert!(
            controllers.split_whitespace().any(|w| w == c),
            "{c} not in {controllers:?}"
        );
    }
    write(cg.file("memory.max"), "33554432");
    assert_eq!(read(cg.file("memory.max")), "33554432\n");
    write(cg.file("pids.max"), "8");
    assert_eq!(read(cg.file("pids.max")), "8\n");
    write(cg.file("cpu.max"), "25000 100000");
    assert_eq!(read(cg.file("cpu.max")), "25000 100000\n");
    write(cg.file("cpu.weight"), "50");
    assert_eq!(read(cg.file("cpu.weight")), "50\n");

    let child = Reaped(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = child.0.id();
    write(cg.file("cgroup.procs"), &pid.to_string());
    let procs = read(cg.file("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "{pid} not in {procs:?}"
    );
    assert_eq!(
        read(format!("/proc/{pid}/cgroup")),
        format!("0::/{}\n", cg.name)
    );
    assert_eq!(read(cg.file("pids.current")), "1\n");
    drop(child);
}

#[test]
fn memory_max_is_enforced() {
    let cg = TestCgroup::new("oom");
    write(cg.file("memory.max"), &(16 << 20).to_string());
    if cg.file("memory.swap.max").exists() {
        write(cg.file("memory.swap.max"), "0");
    }
    // busybox dd allocates its 64 MiB buffer and fills it from /dev/zero:
    // four times the limit, so the cgroup's OOM killer must SIGKILL it.
    let status = sh_in(&cg, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
        .stdout(Stdio::null())
        .status()
        .expect("spawn sh");
    assert_eq!(
        status.signal(),
        Some(9),
        "dd was not OOM-killed: {status:?}"
    );
    assert!(keyed(cg.file("memory.events"), "oom_kill") >= 1);
}

#[test]
fn pids_max_is_enforced() {
    let cg = TestCgroup::new("pids");
    write(cg.file("pids.max"), "1");
    // Migration ignores pids.max, so the shell gets in; its next fork must fail.
    let out = sh_in(&cg, "/bin/true && echo forked")
        .output()
        .expect("spawn sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "fork succeeded under pids.max=1: {stdout}"
    );
    assert!(!stdout.contains("forked"));
    assert!(keyed(cg.file("pids.events"), "max") >= 1);
}
