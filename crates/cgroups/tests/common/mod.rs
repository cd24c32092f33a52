//! Shared helpers for the integration tests: unique cgroup paths, a guard
//! that kills and removes everything a test made (even when it panics), and
//! busybox child processes started inside a cgroup.
#![allow(dead_code)]

use oxcart_cgroups::Manager;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `/oxcart-test-<pid>-<n>-<tag>`: unique across parallel tests and runs.
pub fn unique_path(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("/oxcart-test-{}-{n}-{nanos}-{tag}", std::process::id())
}

/// Owns a manager (and its children): on drop, kills every process in the
/// cgroup, reaps our children and destroys the cgroup.
pub struct Guard {
    pub m: Manager,
    pub children: Vec<Child>,
}

impl Guard {
    pub fn new(m: Manager) -> Guard {
        Guard {
            m,
            children: Vec::new(),
        }
    }

    /// Start `busybox sh -c <script>` inside the cgroup: the shell waits on
    /// stdin until it has been moved in, so the script runs entirely inside.
    pub fn spawn(&mut self, script: &str) -> u32 {
        let mut child = Command::new(BUSYBOX)
            .args(["sh", "-c", &format!("read _go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn busybox");
        let pid = child.id();
        self.m.add_pid(pid as i32).expect("add_pid");
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        self.children.push(child);
        pid
    }

    /// Reap every child started with `spawn` (they must exit by themselves).
    pub fn wait_children(&mut self) {
        for c in &mut self.children {
            let _ = c.wait();
        }
    }

    /// Wait (bounded) until the cgroup holds no process.
    pub fn wait_empty(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for c in &mut self.children {
            let _ = c.wait();
        }
        while !self.m.pids().unwrap_or_default().is_empty() {
            assert!(Instant::now() < deadline, "cgroup still has processes");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.m.thaw();
        let _ = self.m.kill_all(libc::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.m.pids().unwrap_or_default().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.m.destroy();
    }
}

/// A directory the test made by hand, rmdir'ed (if empty) when the test ends.
pub struct RmDir(pub std::path::PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Is /sys/fs/cgroup a pure cgroup2 mount? Tests that need it print a
/// skip note elsewhere; the v2 lane (tests/v2-lane, OXCART_V2_LANE=1) is
/// where they really run, and there a missing v2 host is a failure.
pub fn require_pure_v2(test: &str) -> bool {
    if oxcart_cgroups::layout::is_pure_v2_host() {
        return true;
    }
    if std::env::var_os("OXCART_V2_LANE").is_some() {
        panic!("{test}: OXCART_V2_LANE is set but /sys/fs/cgroup is not a pure cgroup2 host");
    }
    note(&format!(
        "{test}: skipped: not a pure v2 host (runs in the v2 lane, tests/v2-lane/run.sh)"
    ));
    false
}

/// Print a note that libtest's output capture does not swallow: a skipped
/// test must be visible in a plain `cargo test` run, not silently green.
/// (Capture only intercepts the print macros, not writes to the handle.)
pub fn note(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n{msg}");
}

/// Is this the hybrid layout the hybrid tests were written for?
pub fn require_hybrid(test: &str) -> bool {
    let ok = oxcart_cgroups::Layout::detect()
        .and_then(|l| l.mode())
        .is_ok_and(|m| m == oxcart_cgroups::HostMode::Hybrid);
    if !ok {
        note(&format!(
            "{test}: skipped: not a hybrid (v1 + unified) host"
        ));
    }
    ok
}

/// A shell snippet that records whether each device can be opened for
/// reading (the probe's own `>/dev/null` needs /dev/null writable):
/// lines `<dev> ok` or `<dev> denied` appended to `out`.
pub fn device_probe_script(out: &Path) -> String {
    let o = out.display();
    format!(
        "for d in /dev/null /dev/zero /dev/full; do \
           if head -c 1 $d >/dev/null 2>&1; then echo \"$d ok\" >> {o}; \
           else echo \"$d denied\" >> {o}; fi; done"
    )
}

pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique_path(tag).trim_start_matches('/'));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Wait (bounded, generous) until the counter changes.
pub fn wait_progress(read_n: &dyn Fn() -> Option<u64>) {
    let start = read_n();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = read_n();
        if now.is_some() && now != start {
            return;
        }
        assert!(Instant::now() < deadline, "process made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A whole-disk block device of this machine (throttle rules are refused
/// for partitions and for devices that do not exist): the disk under `/`
/// if it has one, else the first disk with a driver, else any disk.
pub fn block_device() -> (i64, i64) {
    let parse = |s: &str| -> Option<(i64, i64)> {
        let (a, b) = s.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let root_dev = std::fs::metadata("/").map(|m| {
        use std::os::unix::fs::MetadataExt;
        let d = m.dev();
        (libc::major(d) as i64, libc::minor(d) as i64)
    });
    if let Ok((ma, mi)) = root_dev {
        let sys = std::path::PathBuf::from(format!("/sys/dev/block/{ma}:{mi}"));
        if sys.exists() {
            let disk = if sys.join("partition").exists() {
                sys.join("..")
            } else {
                sys
            };
            if let Some(d) = std::fs::read_to_string(disk.join("dev"))
                .ok()
                .and_then(|s| parse(&s))
            {
                return d;
            }
        }
    }
    let mut disks: Vec<_> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    disks.sort();
    let pick = disks
        .iter()
        .find(|d| d.join("device").exists())
        .or(disks.first())
        .expect("no block device");
    parse(&std::fs::read_to_string(pick.join("dev")).unwrap()).unwrap()
}
