//! End-to-end tests: real clients (podman with conmon, containerd with its runc v2
//! shim) drive oxcart-runtime in place of runc. How each client is configured, and
//! why, is in docs/clients.md.
//!
//! Every client gets private roots in a fresh temp dir, so these tests run in
//! parallel with each other and with the rest of the suite, and never touch the
//! host's podman or containerd state. Every client command is bounded by a timeout
//! (the client is killed by its own pid), and Drop guards remove containers,
//! daemons, mounts and temp dirs even when an assertion fails.
//!
//! A missing client is a failure, not a skip: CI installs podman and containerd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{oxcart, skip_in_v2_lane};

/// Why these tests stop in the cgroup-v2 lane (see `skip_in_v2_lane`).
const CLIENTS_IN_LANE: &str = "client end-to-end tests run on the host";

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Generous: a debug runtime under a loaded CI machine running the whole suite.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fail (never skip) when a client is not installed.
fn require(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("`{bin}` is not installed: these end-to-end tests need it (apt-get install {package})");
}

/// A finished client command.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Run a client command with a deadline. stdout/stderr go to files, not pipes: a
/// daemonised child (conmon, a shim, a container) may inherit them and would keep a
/// pipe open forever. On timeout the client is killed by its own pid and the test
/// fails naming the command.
fn bounded(mut cmd: Command, scratch: &Path, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    let name = unique("out");
    let (outp, errp) = (
        scratch.join(format!("{name}.stdout")),
        scratch.join(format!("{name}.stderr")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&outp).unwrap())
        .stderr(fs::File::create(&errp).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = fs::read_to_string(&errp).unwrap_or_default();
            panic!("{what} did not finish within {timeout:?}; killed it\nstderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Out {
        code: status.code(),
        stdout: fs::read_to_string(&outp).unwrap_or_default(),
        stderr: fs::read_to_string(&errp).unwrap_or_default(),
        what,
    };
    let _ = fs::remove_file(&outp);
    let _ = fs::remove_file(&errp);
    out
}

/// A private temp dir. Short and under /tmp because unix socket paths (containerd's
/// gRPC address, conmon's attach socket) are limited to 108 bytes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = PathBuf::from("/tmp").join(unique(prefix));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        kill_processes_under(&self.0);
        unmount_under(&self.0);
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// Mount points below `dir`, deepest first (from /proc/self/mountinfo; octal escapes
/// such as `\040` are decoded).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detach whatever the clients left mounted in our temp dir (podman's shm tmpfs,
/// containerd's rootfs mounts). Only mounts below our own dir are touched.
fn unmount_under(dir: &Path) {
    for m in mounts_under(dir) {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH never blocks.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether a NUL-separated command line names `dir` itself or a path below it: an
/// occurrence of `dir` followed by '/' or by the end of an argument. A bare
/// substring match would take `/tmp/oxd-1-3` to name `/tmp/oxd-1-37/…`, another
/// test's dir.
fn cmdline_names_dir(cmdline: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return false;
    }
    cmdline
        .windows(dir.len())
        .enumerate()
        .filter(|(_, w)| *w == dir)
        .any(|(i, _)| matches!(cmdline.get(i + dir.len()), None | Some(b'/') | Some(0)))
}

/// Processes whose command line names our temp dir were started by this test (the
/// client daemons, conmon, shims, our runtime wrapper): kill them, never others.
fn kill_processes_under(dir: &Path) {
    let needle = dir.as_os_str().as_encoded_bytes().to_vec();
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline_names_dir(&cmdline, &needle) {
            // SAFETY: plain kill(2) of a pid we started (its argv names our dir).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn cmdline_match_is_by_path_not_substring() {
    let dir = b"/tmp/oxd-1-3";
    assert!(cmdline_names_dir(
        b"dockerd\0--data-root\0/tmp/oxd-1-3/data\0",
        dir
    ));
    assert!(cmdline_names_dir(b"x\0--root=/tmp/oxd-1-3\0", dir));
    assert!(cmdline_names_dir(b"x\0/tmp/oxd-1-3", dir));
    assert!(!cmdline_names_dir(b"dockerd\0/tmp/oxd-1-37/data\0", dir));
    assert!(!cmdline_names_dir(
        b"x\0/tmp/oxd-1-3x\0/tmp/oxd-1-30\0",
        dir
    ));
}

/// A cgroup parent private to one test (`/<name>` in every hierarchy), so the
/// clients' containers never land in shared parents (`/libpod_parent`, `/docker`,
/// `/<namespace>`) that a test could not remove without racing another. Drop removes
/// the tree, deepest first, once its processes are gone.
struct CgroupParent(String);

impl CgroupParent {
    fn new(prefix: &str) -> CgroupParent {
        CgroupParent(unique(prefix))
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        // Every mounted hierarchy: v1 controllers, the hybrid unified mount, or the
        // v2 root itself.
        let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for root in roots {
            let top = root.join(&self.0);
            if !top.is_dir() {
                continue;
            }
            let mut dirs = vec![];
            let mut stack = vec![top];
            while let Some(d) = stack.pop() {
                if let Ok(rd) = fs::read_dir(&d) {
                    stack.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
                dirs.push(d);
            }
            dirs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
            for d in dirs {
                // A cgroup whose last process just died can be EBUSY for a moment.
                for _ in 0..100 {
                    if fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// A busybox rootfs tarball (like tests/common `rootfs()`), built without a registry.
fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is needed: apt-get install busybox-static");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the busybox rootfs failed");
    fs::remove_dir_all(&root).unwrap();
    tar
}

/// A wrapper in front of oxcart-runtime that records every argv (so tests can check
/// what the client really passes) and gives the runtime a private --root (podman's
/// cleanup process does not forward `--runtime-flag`, so a flag would not do).
fn runtime_wrapper(dir: &Path, name: &str, root: Option<&Path>) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = dir.join("runtime-argv.log");
    let wrapper = bin.join(name);
    let root_arg = match root {
        Some(r) => format!("--root '{}' ", r.display()),
        None => String::new(),
    };
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' {root_arg}\"$@\"\n",
            log.display(),
            oxcart()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, log)
}

// ---------------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------------

/// An isolated podman: its own storage, run root, tmpdir, containers.conf and
/// storage.conf, cgroupfs, file events, no network. Drop removes every container.
struct Podman {
    dir: TempDir,
    // After `dir`: fields drop in order, so processes are gone before the rmdir.
    _cgroup: CgroupParent,
    cgroup_path: String,
    podman: PathBuf,
    wrapper: PathBuf,
    argv_log: PathBuf,
    image: String,
}

impl Podman {
    fn new() -> Podman {
        let podman = require("podman", "podman");
        require("conmon", "conmon");
        let dir = TempDir::new("oxp");
        let d = dir.0.clone();
        let (wrapper, argv_log) = runtime_wrapper(&d, "oxcart", Some(&d.join("runtime-root")));
        for sub in ["storage", "runroot", "tmp", "networks"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        // runtime_supports_json: podman passes `--log-format=json --log <oci-log>`
        // only to runtimes named there (default: crun, runc, kata, runsc, youki,
        // krun, ocijail); without it our errors reach podman as text on stderr.
        // default_ulimits: podman's defaults exceed this machine's hard limits.
        fs::write(
            d.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"

[network]
network_config_dir = "{d}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime = "oxcart"
runtime_supports_json = ["oxcart"]
tmp_dir = "{d}/tmp"
volume_path = "{d}/storage/volumes"

[engine.runtimes]
oxcart = ["{w}"]
"#,
                d = d.display(),
                w = wrapper.display()
            ),
        )
        .unwrap();
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{d}/runroot\"\ngraphroot = \"{d}/storage\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        let cgroup = CgroupParent::new("oxp");
        let p = Podman {
            dir,
            cgroup_path: format!("/{}", cgroup.0),
            _cgroup: cgroup,
            podman,
            wrapper,
            argv_log,
            image: format!("localhost/{}:latest", unique("oxbb")),
        };
        let tar = busybox_tar(&p.dir.0);
        let mut c = p.cmd();
        c.arg("import").arg(&tar).arg(&p.image);
        p.run(c).ok();
        fs::remove_file(&tar).unwrap();
        p
    }

    fn cmd(&self) -> Command {
        let d = &self.dir.0;
        let mut c = Command::new(&self.podman);
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env_remove("CONTAINERS_REGISTRIES_CONF")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("file")
            // The runtime by path, as `podman --runtime /path/to/runtime` users do;
            // podman names it after the file name ("oxcart"), which containers.conf
            // lists in runtime_supports_json.
            .arg("--runtime")
            .arg(&self.wrapper);
        c
    }

    fn run(&self, c: Command) -> Out {
        bounded(c, &self.dir.0, CLIENT_TIMEOUT)
    }

    fn podman(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        self.run(c)
    }

    /// `podman run` with the flags every test container needs.
    fn run_args<'a>(&'a self, extra: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_path,
        ];
        v.extend_from_slice(extra);
        v.push(&self.image);
        v.extend_from_slice(cmd);
        v
    }

    fn argv(&self) -> Vec<String> {
        logged_argv(&self.argv_log)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.podman(&["inspect", "--format", format, name])
            .ok()
            .stdout
            .trim()
            .to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first (conmon, the runtime's state, podman's shm mounts), then
        // TempDir's Drop kills stragglers, detaches mounts and removes the tree.
        let mut c = self.cmd();
        c.args(["rm", "--all", "--force", "--time", "0"]);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bounded(c, &self.dir.0, CLIENT_TIMEOUT)
        }));
    }
}

/// The runtime command lines the argv-logging wrapper recorded, one per line.
fn logged_argv(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Wait until a daemon we started answers (`up`), failing with its log if it exits
/// or does not come up within the client timeout.
fn wait_daemon_up<T>(
    name: &str,
    guard: &mut T,
    daemon: impl Fn(&mut T) -> &mut std::process::Child,
    log: &Path,
    up: impl Fn(&T) -> bool,
) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        if let Some(st) = daemon(guard).try_wait().unwrap() {
            panic!(
                "{name} exited ({st}): {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if up(guard) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not come up: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn podman_run_logs_and_errors() {
    if skip_in_v2_lane("podman_run_logs_and_errors", CLIENTS_IN_LANE) {
        return;
    }
    let p = Podman::new();

    // run --rm: output and exit status of the container.
    let out = p.podman(&p.run_args(
        &["--rm"],
        &["sh", "-c", "echo hello from $(hostname); exit 3"],
    ));
    assert_eq!(out.code, Some(3), "run --rm exit status: {out:?}");
    assert!(
        out.stdout.contains("hello from"),
        "run --rm output: {out:?}"
    );
    let out = p.podman(&p.run_args(&["--rm"], &["echo", "ok"])).ok();
    assert_eq!(out.stdout.trim(), "ok");

    // podman really passed runc's JSON log flags to our runtime.
    let argv = p.argv();
    let create = argv
        .iter()
        .find(|l| l.contains(" create "))
        .unwrap_or_else(|| panic!("no create in the runtime's argv log: {argv:?}"));
    assert!(
        create.contains("--log-format=json") && create.contains("--log "),
        "podman did not pass --log-format=json: {create}"
    );
    for cmd in ["start ", "delete --force "] {
        assert!(
            argv.iter().any(|l| l.starts_with(cmd)),
            "podman never ran `{cmd}…` through oxcart-runtime: {argv:?}"
        );
    }

    // A missing executable: the runtime's error, in runc's words, reaches podman
    // through the JSON oci-log, and podman maps it to 127.
    let out = p.podman(&p.run_args(&["--rm"], &["/nonexistent"]));
    assert_eq!(out.code, Some(127), "missing executable: {out:?}");
    assert!(
        out.stderr.contains("no such file or directory"),
        "runtime error not in podman's message: {out:?}"
    );
    assert!(
        !out.stderr.contains("level=error"),
        "the error came as a text log line, not through the JSON oci-log: {out:?}"
    );
    let out = p.podman(&p.run_args(&["--rm"], &["nonexistent-program"]));
    assert_eq!(out.code, Some(127), "executable not in $PATH: {out:?}");
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "runtime error not in podman's message: {out:?}"
    );

    // run -d + logs.
    let name = unique("logs");
    p.podman(&p.run_args(
        &["-d", "--name", &name],
        &[
            "sh",
            "-c",
            "echo first line; echo second line >&2; sleep 1000",
        ],
    ))
    .ok();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let out = p.podman(&["logs", &name]).ok();
        let all = format!("{}{}", out.stdout, out.stderr);
        if all.contains("first line") && all.contains("second line") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "podman logs never showed output: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    p.podman(&["rm", "--force", "--time", "0", &name]).ok();
}

#[test]
fn podman_exec_stop_kill_pause() {
    if skip_in_v2_lane("podman_exec_stop_kill_pause", CLIENTS_IN_LANE) {
        return;
    }
    let p = Podman::new();
    let name = unique("life");
    // Exits 7 on SIGTERM so `stop` is visible in the exit code.
    p.podman(&p.run_args(
        &["-d", "--name", &name],
        &[
            "sh",
            "-c",
            "trap 'echo got term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    ))
    .ok();
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");

    // exec: output and exit status, environment and working directory.
    let out = p.podman(&[
        "exec",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo $GREETING from $(pwd); exit 5",
    ]);
    assert_eq!(out.code, Some(5), "exec exit status: {out:?}");
    assert_eq!(out.stdout.trim(), "hi from /tmp");
    // exec of a missing program: runc's words, podman's 127.
    let out = p.podman(&["exec", &name, "/nonexistent"]);
    assert_eq!(out.code, Some(127), "exec of a missing program: {out:?}");
    assert!(
        out.stderr.contains("no such file or directory"),
        "runtime error not in podman's message: {out:?}"
    );
    assert!(
        p.argv()
            .iter()
            .any(|l| l.contains(" exec ") && l.contains("--detach")),
        "podman's exec did not reach oxcart-runtime: {:?}",
        p.argv()
    );

    // pause/unpause.
    p.podman(&["pause", &name]).ok();
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "paused");
    let out = p.podman(&["exec", &name, "true"]);
    assert_ne!(
        out.code,
        Some(0),
        "exec into a paused container succeeded: {out:?}"
    );
    p.podman(&["unpause", &name]).ok();
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    p.podman(&["exec", &name, "true"]).ok();
    let argv = p.argv();
    for cmd in ["pause ", "resume "] {
        assert!(
            argv.iter().any(|l| l.starts_with(cmd)),
            "no `{cmd}` in the runtime's argv: {argv:?}"
        );
    }

    // stop: SIGTERM via `kill <id> 15`; the trap's exit code is recorded.
    p.podman(&["stop", "--time", "30", &name]).ok();
    assert_eq!(
        p.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    let logs = p.podman(&["logs", &name]).ok();
    assert!(
        logs.stdout.contains("ready") && logs.stdout.contains("got term"),
        "{logs:?}"
    );

    // kill -s KILL: 128+9.
    let k = unique("kill");
    p.podman(&p.run_args(&["-d", "--name", &k], &["sleep", "1000"]))
        .ok();
    p.podman(&["kill", "--signal", "KILL", &k]).ok();
    let out = p.podman(&["wait", &k]).ok();
    assert_eq!(out.stdout.trim(), "137");
    assert_eq!(
        p.inspect(&k, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    assert!(
        p.argv()
            .iter()
            .any(|l| l.starts_with("kill ") && l.ends_with(" 9")),
        "podman's kill did not reach oxcart-runtime: {:?}",
        p.argv()
    );
    // kill of an exited container is podman's error, not a hang.
    let out = p.podman(&["kill", &k]);
    assert_ne!(out.code, Some(0), "kill of an exited container: {out:?}");

    p.podman(&["rm", &name, &k]).ok();
    // Nothing left in the runtime's state.
    let left = fs::read_dir(p.dir.0.join("runtime-root"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "seccomp-cache")
                .collect::<Vec<_>>()
        })
        .expect("the runtime never used its private --root");
    assert!(
        left.is_empty(),
        "containers left in oxcart's state: {left:?}"
    );
}

// ---------------------------------------------------------------------------
// containerd + containerd-shim-runc-v2 (driven with ctr)
// ---------------------------------------------------------------------------

/// A docker-archive (`docker save` layout: manifest.json, config, one layer tar) of
/// the busybox rootfs, which `ctr image import` reads without any registry.
fn busybox_docker_archive(dir: &Path, reference: &str) -> PathBuf {
    let layer = busybox_tar(dir);
    let sum = Command::new("sha256sum").arg(&layer).output().unwrap();
    assert!(sum.status.success(), "sha256sum failed");
    let diff_id = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let arch = dir.join("archive");
    fs::create_dir_all(&arch).unwrap();
    fs::rename(&layer, arch.join("layer.tar")).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    });
    fs::write(arch.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [reference],
        "Layers": ["layer.tar"],
    }]);
    fs::write(arch.join("manifest.json"), manifest.to_string()).unwrap();
    let tar = dir.join("image.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&arch)
        .arg("-cf")
        .arg(&tar)
        .args(["manifest.json", "config.json", "layer.tar"])
        .status()
        .unwrap();
    assert!(st.success(), "tar of the docker archive failed");
    fs::remove_dir_all(&arch).unwrap();
    tar
}

/// A private containerd (own root, state, gRPC/ttrpc sockets; CRI and the other
/// plugins we do not need disabled) with an image imported into a private namespace.
/// Drop kills and deletes every task and container, then stops the daemon by its pid.
struct Containerd {
    dir: TempDir,
    /// Also the containerd namespace, so ctr's default cgroupsPath `/<ns>/<id>`
    /// lands in it (and the shim's runtime root is `<runc-root>/<ns>`).
    ns: CgroupParent,
    ctr: PathBuf,
    daemon: Option<std::process::Child>,
    wrapper: PathBuf,
    argv_log: PathBuf,
    image: String,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    fn new() -> Containerd {
        let containerd = require("containerd", "containerd");
        require("containerd-shim-runc-v2", "containerd");
        let ctr = require("ctr", "containerd");
        let dir = TempDir::new("oxc");
        let d = dir.0.clone();
        // No --root in the wrapper: the shim passes its own (`--runc-root`).
        let (wrapper, argv_log) = runtime_wrapper(&d, "oxcart-runtime", None);
        fs::write(
            d.join("config.toml"),
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"
"#,
                d = d.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new(containerd)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut c = Containerd {
            dir,
            ns: CgroupParent::new("oxns"),
            ctr,
            daemon: Some(daemon),
            wrapper,
            argv_log,
            image: format!("localhost/{}:latest", unique("oxbb")),
            ids: Default::default(),
        };
        // Ready when the API answers.
        wait_daemon_up(
            "containerd",
            &mut c,
            |c| c.daemon.as_mut().unwrap(),
            &d.join("containerd.log"),
            |c| d.join("c.sock").exists() && c.ctr(&["version"]).code == Some(0),
        );
        let tar = busybox_docker_archive(&d, &c.image);
        let tar_s = tar.display().to_string();
        c.ctr(&["image", "import", "--snapshotter", "native", &tar_s])
            .ok();
        fs::remove_file(&tar).unwrap();
        c
    }

    fn ctr(&self, args: &[&str]) -> Out {
        let mut c = Command::new(&self.ctr);
        c.arg("--address")
            .arg(self.dir.0.join("c.sock"))
            .arg("--namespace")
            .arg(&self.ns.0)
            .args(args);
        bounded(c, &self.dir.0, CLIENT_TIMEOUT)
    }

    /// `ctr run` with the runc v2 shim pointed at oxcart-runtime (`--runc-binary`,
    /// stored in the container's runtime options, so `task exec`/`kill`/`pause`
    /// later use it too) and a private runtime root.
    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Out {
        self.ids.borrow_mut().push(id.to_string());
        let d = &self.dir.0;
        let (bin, root, fifo) = (
            self.wrapper.display().to_string(),
            d.join("runc").display().to_string(),
            d.join("fifo").display().to_string(),
        );
        let mut args = vec![
            "run",
            "--runtime",
            "io.containerd.runc.v2",
            "--runc-binary",
            &bin,
            "--runc-root",
            &root,
            "--fifo-dir",
            &fifo,
            "--snapshotter",
            "native",
        ];
        args.extend_from_slice(extra);
        args.push(&self.image);
        args.push(id);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    fn argv(&self) -> Vec<String> {
        logged_argv(&self.argv_log)
    }

    fn task_status(&self, id: &str) -> String {
        let out = self.ctr(&["task", "ls"]).ok();
        out.stdout
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
            })
            .unwrap_or_else(|| panic!("task {id} not in `ctr task ls`: {out:?}"))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for id in self.ids.borrow().iter() {
                self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
                self.ctr(&["task", "delete", "--force", id]);
                self.ctr(&["container", "delete", id]);
            }
        }));
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: kill(2) of the containerd we spawned, by its pid.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // TempDir's Drop then kills any shim of ours (its argv names our socket),
        // detaches rootfs mounts and removes the tree.
    }
}

#[test]
fn containerd_run_and_errors() {
    if skip_in_v2_lane("containerd_run_and_errors", CLIENTS_IN_LANE) {
        return;
    }
    let c = Containerd::new();

    // ctr run --rm: output and exit status come back through the shim.
    let out = c.run(
        &["--rm"],
        &unique("rm"),
        &["sh", "-c", "echo hello from shim; exit 3"],
    );
    assert_eq!(out.code, Some(3), "ctr run exit status: {out:?}");
    assert_eq!(out.stdout.trim(), "hello from shim");

    // The shim drove our runtime with its JSON log and a private root.
    let argv = c.argv();
    let create = argv
        .iter()
        .find(|l| l.contains(" create "))
        .unwrap_or_else(|| panic!("no create in the runtime's argv log: {argv:?}"));
    assert!(
        create.contains("--log-format json") && create.contains("log.json"),
        "the shim did not pass --log-format json: {create}"
    );
    assert!(create.contains(&c.dir.0.join("runc").display().to_string()));
    for cmd in ["start ", "delete "] {
        assert!(
            argv.iter().any(|l| l.contains(&format!(" json {cmd}"))),
            "the shim never ran `{cmd}…` through oxcart-runtime: {argv:?}"
        );
    }

    // Runtime errors reach ctr in runc's words: the shim finds them as the last
    // `"level":"error"` object of log.json (getLastRuntimeError).
    let out = c.run(&["--rm"], &unique("missing"), &["/nonexistent"]);
    assert_ne!(out.code, Some(0), "missing executable: {out:?}");
    assert!(
        out.stderr.contains("OCI runtime create failed")
            && out.stderr.contains("no such file or directory"),
        "runtime error not in ctr's message: {out:?}"
    );
    let out = c.run(&["--rm"], &unique("notinpath"), &["nonexistent-program"]);
    assert_ne!(out.code, Some(0), "executable not in $PATH: {out:?}");
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "runtime error not in ctr's message: {out:?}"
    );
    // A failed create leaves no task behind.
    let ls = c.ctr(&["task", "ls", "--quiet"]).ok();
    assert_eq!(ls.stdout.trim(), "", "tasks left after failed creates");
}

#[test]
fn containerd_exec_pause_kill() {
    if skip_in_v2_lane("containerd_exec_pause_kill", CLIENTS_IN_LANE) {
        return;
    }
    let c = Containerd::new();
    let id = unique("d");
    // Exits 7 on SIGTERM so the kill is visible in the exit code.
    c.run(
        &["--detach"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ],
    )
    .ok();
    assert_eq!(c.task_status(&id), "RUNNING");

    // task exec: output and exit status.
    let fifo = c.dir.0.join("fifo").display().to_string();
    let out = c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "e1",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo exec in $(pwd); exit 4",
    ]);
    assert_eq!(out.code, Some(4), "task exec exit status: {out:?}");
    assert_eq!(out.stdout.trim(), "exec in /tmp");
    // exec of a missing program: runc's words through the shim.
    let out = c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "e2",
        &id,
        "/nonexistent",
    ]);
    assert_ne!(out.code, Some(0), "exec of a missing program: {out:?}");
    assert!(
        out.stderr.contains("OCI runtime exec failed")
            && out.stderr.contains("no such file or directory"),
        "runtime error not in ctr's message: {out:?}"
    );

    // task ps goes through `ps --format json`.
    let ps = c.ctr(&["task", "ps", &id]).ok();
    assert!(ps.stdout.lines().count() >= 2, "task ps: {ps:?}");

    // pause/resume.
    c.ctr(&["task", "pause", &id]).ok();
    assert_eq!(c.task_status(&id), "PAUSED");
    c.ctr(&["task", "resume", &id]).ok();
    assert_eq!(c.task_status(&id), "RUNNING");

    // kill (SIGTERM by default): the trap's exit status reaches containerd.
    c.ctr(&["task", "kill", &id]).ok();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while c.task_status(&id) != "STOPPED" {
        assert!(Instant::now() < deadline, "task never stopped after kill");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = c.ctr(&["task", "delete", &id]).ok();
    assert!(
        out.stderr.contains("exit code 7"),
        "exit status of the killed task: {out:?}"
    );
    c.ctr(&["container", "delete", &id]).ok();

    // SIGKILL: 128+9 is not reported as an exit code by ctr, but the task stops.
    let k = unique("k");
    c.run(&["--detach"], &k, &["sleep", "1000"]).ok();
    c.ctr(&["task", "kill", "--signal", "SIGKILL", &k]).ok();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while c.task_status(&k) != "STOPPED" {
        assert!(
            Instant::now() < deadline,
            "task never stopped after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = c.ctr(&["task", "delete", &k]).ok();
    assert!(out.stderr.contains("exit code 137"), "{out:?}");
    c.ctr(&["container", "delete", &k]).ok();

    let argv = c.argv();
    for cmd in ["exec ", "pause ", "resume ", "kill ", "ps "] {
        assert!(
            argv.iter().any(|l| l.contains(&format!(" json {cmd}"))),
            "the shim never ran `{cmd}…` through oxcart-runtime: {argv:?}"
        );
    }
    assert_eq!(c.ctr(&["task", "ls", "--quiet"]).ok().stdout.trim(), "");
    // Nothing left in the runtime's state (the shim's --root/<namespace>).
    let left: Vec<_> = fs::read_dir(c.dir.0.join("runc").join(&c.ns.0))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .expect("the runtime never used the shim's --runc-root");
    assert!(
        left.is_empty(),
        "containers left in oxcart's state: {left:?}"
    );
}

// ---------------------------------------------------------------------------
// docker (Debian's docker.io: dockerd with its managed containerd and runc v2 shim)
// ---------------------------------------------------------------------------

/// A private dockerd: own data root, exec root, socket, pidfile, daemon.json (so the
/// host's /etc/docker/daemon.json is not read) and trust key; no iptables, no bridge,
/// vfs storage, cgroupfs. `--add-runtime oxcart=<wrapper>` registers our runtime.
struct Docker {
    dir: TempDir,
    /// Drop guard only; after `dir` so processes are gone before the rmdir.
    _cgroup: CgroupParent,
    docker: PathBuf,
    daemon: Option<std::process::Child>,
    argv_log: PathBuf,
    image: String,
    /// /run/docker and /run/docker/plugins are hard-coded in dockerd 20.10: shared
    /// by every Docker of this process; dropped after the daemon is stopped.
    _run_docker: RunDockerUser,
}

/// The Dockers of this process using /run/docker, and whether it existed before the
/// first of them started.
struct RunDockerUsers {
    users: u32,
    existed_before: bool,
}

static RUN_DOCKER: std::sync::Mutex<RunDockerUsers> = std::sync::Mutex::new(RunDockerUsers {
    users: 0,
    existed_before: true,
});

/// One Docker's use of /run/docker. The last user to finish removes
/// /run/docker/plugins and /run/docker, and only if neither existed before the
/// first user started: a test that finishes first never pulls them from under
/// another test's dockerd that is still starting or running.
struct RunDockerUser;

impl RunDockerUser {
    fn acquire() -> RunDockerUser {
        let mut u = RUN_DOCKER.lock().unwrap_or_else(|e| e.into_inner());
        if u.users == 0 {
            u.existed_before = Path::new("/run/docker").exists();
        }
        u.users += 1;
        RunDockerUser
    }
}

impl Drop for RunDockerUser {
    fn drop(&mut self) {
        let mut u = RUN_DOCKER.lock().unwrap_or_else(|e| e.into_inner());
        u.users -= 1;
        if u.users == 0 && !u.existed_before {
            // remove_dir, not remove_dir_all: only if empty.
            let _ = fs::remove_dir("/run/docker/plugins");
            let _ = fs::remove_dir("/run/docker");
        }
    }
}

impl Docker {
    fn new() -> Docker {
        let dockerd = require("dockerd", "docker.io");
        let docker = require("docker", "docker.io");
        // Before the dir: on a panic below, the dir's Drop kills the daemon first.
        let run_docker = RunDockerUser::acquire();
        let dir = TempDir::new("oxd");
        let cgroup = CgroupParent::new("oxd");
        let d = dir.0.clone();
        let (wrapper, argv_log) = runtime_wrapper(&d, "oxcart-runtime", None);
        // deprecated-key-path: otherwise dockerd 20.10 writes /etc/docker/key.json.
        fs::write(
            d.join("daemon.json"),
            serde_json::json!({"deprecated-key-path": d.join("key.json")}).to_string(),
        )
        .unwrap();
        let log = fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = Command::new(dockerd)
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                "--storage-driver=vfs",
                "--exec-opt=native.cgroupdriver=cgroupfs",
            ])
            .arg(format!("--cgroup-parent=/{}", cgroup.0))
            .arg(format!("--add-runtime=oxcart={}", wrapper.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut dk = Docker {
            dir,
            _cgroup: cgroup,
            docker,
            daemon: Some(daemon),
            argv_log,
            image: format!("localhost/{}:latest", unique("oxbb")),
            _run_docker: run_docker,
        };
        wait_daemon_up(
            "dockerd",
            &mut dk,
            |dk| dk.daemon.as_mut().unwrap(),
            &d.join("dockerd.log"),
            |dk| d.join("docker.sock").exists() && dk.docker(&["version"]).code == Some(0),
        );
        let tar = busybox_docker_archive(&d, &dk.image);
        let tar_s = tar.display().to_string();
        dk.docker(&["load", "--input", &tar_s]).ok();
        fs::remove_file(&tar).unwrap();
        dk
    }

    fn docker(&self, args: &[&str]) -> Out {
        let d = &self.dir.0;
        let mut c = Command::new(&self.docker);
        c.env("DOCKER_CONFIG", d.join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(args);
        bounded(c, d, CLIENT_TIMEOUT)
    }

    /// `docker run --runtime oxcart --network none [extra] IMAGE cmd…`
    fn run(&self, extra: &[&str], cmd: &[&str]) -> Out {
        let mut args = vec!["run", "--runtime", "oxcart", "--network", "none"];
        args.extend_from_slice(extra);
        args.push(&self.image);
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    fn argv(&self) -> Vec<String> {
        logged_argv(&self.argv_log)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "--format", format, name])
            .ok()
            .stdout
            .trim()
            .to_string()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let ids = self.docker(&["ps", "--all", "--quiet"]);
            for id in ids.stdout.split_whitespace() {
                self.docker(&["rm", "--force", id]);
            }
        }));
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: kill(2) of the dockerd we spawned, by its pid; it stops its
            // managed containerd on SIGTERM.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // `_run_docker` is released after this, once the fields before it (the
        // dir's guard kills whatever dockerd left) are dropped.
    }
}

#[test]
fn docker_runs_oxcart() {
    if skip_in_v2_lane("docker_runs_oxcart", CLIENTS_IN_LANE) {
        return;
    }
    let dk = Docker::new();

    // run --rm: output and exit status.
    let out = dk.run(&["--rm"], &["sh", "-c", "echo hello from docker; exit 3"]);
    assert_eq!(out.code, Some(3), "docker run exit status: {out:?}");
    assert_eq!(out.stdout.trim(), "hello from docker");
    let argv = dk.argv();
    let create = argv
        .iter()
        .find(|l| l.contains(" create "))
        .unwrap_or_else(|| panic!("docker never created through oxcart-runtime: {argv:?}"));
    assert!(create.contains("--log-format json"), "{create}");

    // Runtime errors in runc's words; docker's 127 for a missing executable.
    let out = dk.run(&["--rm"], &["/nonexistent"]);
    assert_eq!(out.code, Some(127), "missing executable: {out:?}");
    assert!(
        out.stderr.contains("OCI runtime create failed")
            && out.stderr.contains("no such file or directory"),
        "runtime error not in docker's message: {out:?}"
    );
    let out = dk.run(&["--rm"], &["nonexistent-program"]);
    assert_eq!(out.code, Some(127), "executable not in $PATH: {out:?}");
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "runtime error not in docker's message: {out:?}"
    );

    // run -d, logs, exec, pause/unpause, stop, kill, inspect exit codes.
    let name = unique("d");
    dk.run(
        &["--detach", "--name", &name],
        &[
            "sh",
            "-c",
            "trap 'echo got term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    )
    .ok();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while !dk.docker(&["logs", &name]).ok().stdout.contains("ready") {
        assert!(Instant::now() < deadline, "docker logs never showed output");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = dk.docker(&[
        "exec",
        "--workdir",
        "/tmp",
        &name,
        "sh",
        "-c",
        "pwd; exit 4",
    ]);
    assert_eq!(out.code, Some(4), "docker exec exit status: {out:?}");
    assert_eq!(out.stdout.trim(), "/tmp");
    // docker maps every failed exec start to 126 (with runc too).
    let out = dk.docker(&["exec", &name, "/nonexistent"]);
    assert_eq!(out.code, Some(126), "exec of a missing program: {out:?}");
    assert!(
        out.stdout.contains("no such file or directory")
            || out.stderr.contains("no such file or directory"),
        "runtime error not in docker's message: {out:?}"
    );
    dk.docker(&["pause", &name]).ok();
    assert_eq!(dk.inspect(&name, "{{.State.Status}}"), "paused");
    dk.docker(&["unpause", &name]).ok();
    assert_eq!(dk.inspect(&name, "{{.State.Status}}"), "running");
    dk.docker(&["stop", "--time", "30", &name]).ok();
    assert_eq!(
        dk.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert!(dk.docker(&["logs", &name]).ok().stdout.contains("got term"));

    let k = unique("k");
    dk.run(&["--detach", "--name", &k], &["sleep", "1000"]).ok();
    dk.docker(&["kill", &k]).ok();
    assert_eq!(dk.docker(&["wait", &k]).ok().stdout.trim(), "137");
    dk.docker(&["rm", &name, &k]).ok();

    let argv = dk.argv();
    for cmd in ["start ", "exec ", "pause ", "resume ", "kill ", "delete "] {
        assert!(
            argv.iter().any(|l| l.contains(&format!(" json {cmd}"))),
            "docker never ran `{cmd}…` through oxcart-runtime: {argv:?}"
        );
    }
}

/// A cgroup file of the container's own cgroup, on v1 (`<controller>/<v1>`) or v2
/// (`<v2>`): a shell snippet that prints it.
fn cgroup_cat(controller: &str, v1: &str, v2: &str) -> String {
    format!("cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{controller}/{v1}")
}

#[test]
fn podman_terminal_restrictions_restart() {
    if skip_in_v2_lane("podman_terminal_restrictions_restart", CLIENTS_IN_LANE) {
        return;
    }
    let p = Podman::new();
    // A terminal: conmon passes --console-socket and gets the pty master back.
    let out = p
        .podman(&p.run_args(&["--rm", "--tty"], &["sh", "-c", "tty; echo done"]))
        .ok();
    assert_eq!(out.stdout, "/dev/pts/0\r\ndone\r\n", "run --tty: {out:?}");
    assert!(
        p.argv()
            .iter()
            .any(|l| l.contains(" create ") && l.contains("--console-socket")),
        "conmon did not pass --console-socket: {:?}",
        p.argv()
    );

    // podman's hardening flags become config.json fields the runtime must apply.
    let mem = cgroup_cat("memory", "memory.limit_in_bytes", "memory.max");
    let pids = cgroup_cat("pids", "pids.max", "pids.max");
    let script = format!("id; grep CapEff /proc/self/status; {mem}; {pids}; touch /x");
    let out = p.podman(&p.run_args(
        &[
            "--rm",
            "--read-only",
            "--user",
            "65534:65534",
            "--cap-drop",
            "all",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
        ],
        &["sh", "-c", &script],
    ));
    assert_eq!(
        out.code,
        Some(1),
        "touch on a read-only root must fail: {out:?}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "uid=65534(65534) gid=65534(65534) groups=65534(65534)",
            "CapEff:\t0000000000000000",
            "67108864",
            "50"
        ],
        "{out:?}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");

    // --init: podman bind-mounts catatonit as pid 1.
    let out = p
        .podman(&p.run_args(&["--rm", "--init"], &["ps", "-o", "pid,args"]))
        .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim() == "1 /run/podman-init -- ps -o pid,args"),
        "--init: {out:?}"
    );

    // exec --tty, top, restart (delete + create + start of the same id).
    let name = unique("t");
    p.podman(&p.run_args(&["-d", "--name", &name], &["sleep", "1000"]))
        .ok();
    let out = p.podman(&["exec", "--tty", &name, "tty"]).ok();
    assert_eq!(out.stdout, "/dev/pts/0\r\n", "exec --tty: {out:?}");
    let top = p.podman(&["top", &name]).ok();
    assert!(top.stdout.contains("sleep 1000"), "{top:?}");
    let before = p.inspect(&name, "{{.State.Pid}}");
    p.podman(&["restart", "--time", "0", &name]).ok();
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    assert_ne!(
        p.inspect(&name, "{{.State.Pid}}"),
        before,
        "restart kept the old process"
    );
    p.podman(&["rm", "--force", "--time", "0", &name]).ok();
}

#[test]
fn docker_terminal_update_restart() {
    if skip_in_v2_lane("docker_terminal_update_restart", CLIENTS_IN_LANE) {
        return;
    }
    let dk = Docker::new();
    // A terminal through the shim's console socket.
    let out = dk
        .run(&["--rm", "--tty"], &["sh", "-c", "tty; echo done"])
        .ok();
    assert_eq!(out.stdout, "/dev/pts/0\r\ndone\r\n", "run --tty: {out:?}");

    // Resources at create, then `docker update` (the shim's `update --resources -`).
    let mem = cgroup_cat("memory", "memory.limit_in_bytes", "memory.max");
    let k = unique("u");
    dk.run(
        &["--detach", "--name", &k, "--memory", "64m"],
        &["sleep", "1000"],
    )
    .ok();
    let out = dk.docker(&["exec", &k, "sh", "-c", &mem]).ok();
    assert_eq!(out.stdout.trim(), "67108864");
    dk.docker(&["update", "--memory", "128m", "--memory-swap", "256m", &k])
        .ok();
    let out = dk.docker(&["exec", &k, "sh", "-c", &mem]).ok();
    assert_eq!(out.stdout.trim(), "134217728", "after docker update");
    assert!(
        dk.argv().iter().any(|l| l.contains(" json update ")),
        "docker update did not reach oxcart-runtime: {:?}",
        dk.argv()
    );

    let top = dk.docker(&["top", &k]).ok();
    assert!(top.stdout.contains("sleep 1000"), "{top:?}");
    let before = dk.inspect(&k, "{{.State.Pid}}");
    dk.docker(&["restart", "--time", "0", &k]).ok();
    assert_eq!(dk.inspect(&k, "{{.State.Status}}"), "running");
    assert_ne!(
        dk.inspect(&k, "{{.State.Pid}}"),
        before,
        "restart kept the old process"
    );
    dk.docker(&["rm", "--force", &k]).ok();
}

// ---------------------------------------------------------------------------
// The runtime's error must reach the client every time, not just usually
// ---------------------------------------------------------------------------

/// The clients above match the runtime's words ("no such file or directory",
/// "executable file not found in $PATH"). Under load, `create` of a container whose
/// program is missing sometimes loses that message and fails with
/// "receive from init channel: Connection reset by peer (os error 104)" instead
/// (seen through ctr and podman). This repeats that `create` from four threads so
/// the race shows up reliably rather than as a rare flake in the client tests.
#[test]
fn create_error_is_never_lost() {
    let dir = TempDir::new("oxe");
    let cgroup = CgroupParent::new("oxe");
    let rootfs = dir.0.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let state_root = dir.0.join("state");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let bundle = dir.0.join(format!("bundle{t}"));
            fs::create_dir_all(&bundle).unwrap();
            let out = Command::new(oxcart())
                .args(["spec", "--bundle"])
                .arg(&bundle)
                .output()
                .unwrap();
            assert!(out.status.success(), "spec: {out:?}");
            let mut config: serde_json::Value =
                serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
            config["process"]["terminal"] = false.into();
            config["process"]["args"] = serde_json::json!(["/nonexistent"]);
            config["root"]["path"] = rootfs.display().to_string().into();
            config["linux"]["cgroupsPath"] = format!("/{}/t{t}", cgroup.0).into();
            fs::write(bundle.join("config.json"), config.to_string()).unwrap();
            let (scratch, state_root) = (dir.0.clone(), state_root.clone());
            std::thread::spawn(move || {
                let mut lost = vec![];
                for i in 0..25 {
                    let id = format!("e{t}-{i}");
                    let mut c = Command::new(oxcart());
                    c.arg("--root").arg(&state_root);
                    c.args(["create", "--bundle"]).arg(&bundle).arg(&id);
                    let out = bounded(c, &scratch, CLIENT_TIMEOUT);
                    let mut d = Command::new(oxcart());
                    d.arg("--root")
                        .arg(&state_root)
                        .args(["delete", "--force", &id]);
                    bounded(d, &scratch, CLIENT_TIMEOUT);
                    assert_ne!(out.code, Some(0), "create of /nonexistent succeeded");
                    if !out.stderr.contains("no such file or directory") {
                        lost.push(out.stderr);
                    }
                }
                lost
            })
        })
        .collect();
    let lost: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of 100 creates lost init's error; e.g. {:?}",
        lost.len(),
        lost.first()
    );
}
