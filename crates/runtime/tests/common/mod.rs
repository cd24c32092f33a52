//! Shared fixtures for the runtime's integration tests: a busybox rootfs, bundles,
//! and runners for oxcart-runtime and runc. Needs root and Debian's busybox-static.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The runtime under test: `$OXCART_RUNTIME` when set (scripts/test.sh runs the
/// lifecycle suites against the static release build, the binary users get, that
/// way), else the debug build cargo made for these tests.
pub fn oxcart() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("OXCART_RUNTIME")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_oxcart-runtime").to_string())
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A busybox rootfs shared by all tests of this process (read-only use only).
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        // Built once per process under cargo's per-target test scratch dir, so a
        // failed run leaves nothing in /tmp.
        let dir = tmp().join(format!("rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
            .expect("busybox-static is needed: apt-get install busybox-static");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                // Relative links: the rootfs is used at another path inside the container.
                std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\ntty:x:5:\nnobody:x:65534:\n",
        )
        .unwrap();
        std::fs::set_permissions(
            dir.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        dir
    })
}

/// Scratch space for tests (cargo's CARGO_TARGET_TMPDIR, inside target/).
pub fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// A bundle directory with a config.json (runc's default, made non-interactive) and
/// a bind of the shared rootfs.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tmp().join(unique("bundle"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(oxcart())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        config["root"]["path"] = Value::String(rootfs().display().to_string());
        let b = Bundle { dir, config };
        b.write();
        b
    }
    /// Give the container a cgroupsPath of its own, `/<prefix>-<unique>`, and return
    /// it (for checks that it is made and removed); the caller writes the config.
    pub fn own_cgroup(&mut self, prefix: &str) -> String {
        let cg = format!("/{}", unique(prefix));
        self.config["linux"]["cgroupsPath"] = Value::String(cg.clone());
        cg
    }
    pub fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run a command with stdout to /dev/null and stderr captured through a file, so a
/// container that (wrongly) survives cannot hold a pipe open and hang the test.
pub fn status_err(mut c: Command) -> (bool, String) {
    let errf = tmp().join(unique("stderr"));
    let f = std::fs::File::create(&errf).unwrap();
    let st = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let _ = std::fs::remove_file(&errf);
    (st.success(), err)
}

/// One runtime under test, with a private --root so parallel tests never collide.
pub struct Runtime {
    pub bin: String,
    pub root: PathBuf,
}

impl Runtime {
    pub fn oxcart() -> Runtime {
        Runtime {
            bin: oxcart().to_string(),
            root: PathBuf::from(format!("/run/{}", unique("oxcart-test-root"))),
        }
    }
    pub fn runc() -> Runtime {
        Runtime {
            bin: "runc".to_string(),
            root: PathBuf::from(format!("/run/{}", unique("oxcart-test-runc-root"))),
        }
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        out
    }
    /// `run` a bundle in the foreground and return (exit code, stdout, stderr).
    pub fn run_bundle(&self, b: &Bundle) -> (i32, String, String) {
        let id = unique("c");
        let out = self
            .cmd()
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    /// Run a command whose container outlives it (`create`, `run -d`): the
    /// container inherits stdio, so pipes would never reach EOF. stdout goes to
    /// /dev/null and stderr to a file. Returns (success, stderr).
    pub fn detached(&self, args: &[&str], bundle: &Bundle, id: &str) -> (bool, String) {
        let mut c = self.cmd();
        c.args(args).arg("--bundle").arg(&bundle.dir).arg(id);
        status_err(c)
    }
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Force-delete whatever a failed test left, then the root itself.
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd().args(["delete", "-f", &id]).output();
            }
        }
        // Each root sits directly in /run: a shared parent removed by the last
        // test to finish raced a concurrent test's mkdir of its own root under it.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn runc_available() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a command with stdout and stderr captured through files (never pipes, so a
/// process that outlives the command cannot hang the test). Returns
/// (exit code or -1, stdout, stderr).
pub fn capture(mut c: Command) -> (i32, String, String) {
    let outf = tmp().join(unique("stdout"));
    let errf = tmp().join(unique("stderr"));
    let st = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&outf).unwrap())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .unwrap();
    let out = std::fs::read_to_string(&outf).unwrap_or_default();
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let _ = std::fs::remove_file(&outf);
    let _ = std::fs::remove_file(&errf);
    (st.code().unwrap_or(-1), out, err)
}

impl Runtime {
    /// `<runtime> exec <args…>`, output captured through files.
    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = self.cmd();
        c.arg("exec").args(args);
        capture(c)
    }
    /// `run -d` a bundle under a fresh id; panics on failure. Returns the id.
    pub fn run_detached(&self, b: &Bundle, prefix: &str) -> String {
        let id = unique(prefix);
        let (ok, err) = self.detached(&["run", "-d"], b, &id);
        assert!(ok, "{} run -d: {err}", self.bin);
        id
    }
    pub fn init_pid(&self, id: &str) -> i64 {
        self.state(id)["pid"].as_i64().unwrap()
    }
}

/// Poll until `f` holds (bounded: ~10 s), for asynchronous outcomes.
pub fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Tests of host programs (podman, containerd, docker, setpriv, newuidmap) cannot run
/// in the cgroup-v2 lane's guest, which has none of them: there they print why and
/// return early; they run on the host in CI. `OXCART_V2_LANE` is set only in the lane.
pub fn skip_in_v2_lane(name: &str, why: &str) -> bool {
    if std::env::var_os("OXCART_V2_LANE").is_some() {
        eprintln!("{name}: skipped in the v2 lane: {why}");
        return true;
    }
    false
}

/// Every cgroup hierarchy's root: `/sys/fs/cgroup` on a pure v2 host, else each
/// mounted hierarchy under it (for "no cgroup left behind" checks).
pub fn cgroup_roots() -> Vec<PathBuf> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return vec!["/sys/fs/cgroup".into()];
    }
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// Panics if the container cgroup `cg` (a cgroupsPath) is left in any hierarchy:
/// a failed create must leave nothing behind.
pub fn assert_no_cgroup_left(cg: &str, what: &str) {
    let left: Vec<PathBuf> = cgroup_roots()
        .into_iter()
        .map(|r| r.join(cg.trim_start_matches('/')))
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "{what}: cgroups left behind: {left:?}");
}
