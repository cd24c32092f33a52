//! The real monitor with real runtimes (runc and this workspace's oxcart-runtime) on
//! a busybox bundle: output, exit codes, stdin, tty, detach, the monitor's death,
//! create failures and the exit command. Run as root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use oxcart_engine::attach::{self, AttachEnd, RelayIo};
use oxcart_engine::monitor::{self, MonitorArgs, MonitorError, Started};
use oxcart_jsonlog::{ReadOptions, Stream};

const RUNC: &str = "/usr/sbin/runc";

/// Both runtimes; oxcart-runtime from this target dir (`cargo build -p oxcart-runtime`).
fn runtimes() -> Vec<PathBuf> {
    let monitor = PathBuf::from(env!("CARGO_BIN_EXE_oxcart-monitor"));
    let ours = std::env::var_os("OXCART_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| monitor.with_file_name("oxcart-runtime"));
    assert!(
        ours.exists(),
        "{} missing: build it with `cargo build -p oxcart-runtime` (or set OXCART_RUNTIME)",
        ours.display()
    );
    vec![PathBuf::from(RUNC), ours]
}

fn setup_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Every test sets the same value before any spawn.
    ONCE.call_once(|| {
        std::env::set_var("OXCART_MONITOR", env!("CARGO_BIN_EXE_oxcart-monitor"));
        // Exited monitors (and a container whose monitor was killed) are reparented
        // to us and reaped here, instead of staying zombies under a pid 1 that does
        // not reap (this sandbox's).
        // SAFETY: plain prctl.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
            0
        );
    });
}

/// A container under test: its bundle, directory and runtime state in one temp dir,
/// deleted through the runtime (and the monitor killed) on drop.
struct Ctr {
    tmp: tempfile::TempDir,
    id: String,
    runtime: PathBuf,
    started: Option<Started>,
}

/// Puts the container's directory deeper than a socket address (108 bytes) reaches:
/// the attach and console sockets must work at any `--root`.
const LONG: &str = "a-directory-name-long-enough-that-no-socket-path-under-it-fits-in-sun-path-of-108-bytes-on-linux";

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Ctr {
    fn new(runtime: &Path, args: &[&str], tty: bool) -> Ctr {
        Ctr::with_config(runtime, args, tty, |_| {})
    }

    fn with_config(
        runtime: &Path,
        args: &[&str],
        tty: bool,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Ctr {
        setup_env();
        let tmp = tempfile::tempdir().unwrap();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("oxmon-{}-{n}", std::process::id());
        let bundle = tmp.path().join("bundle");
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for app in [
            "sh", "cat", "echo", "sleep", "stty", "kill", "yes", "head", "tr", "tail",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(app)).unwrap();
        }
        let st = Command::new(RUNC)
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .unwrap();
        assert!(st.success());
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["args"] = serde_json::json!(args);
        cfg["process"]["terminal"] = tty.into();
        cfg["linux"]["cgroupsPath"] = format!("/{id}").into();
        edit(&mut cfg);
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        std::fs::create_dir_all(tmp.path().join(LONG).join("ctr")).unwrap();
        std::fs::create_dir(tmp.path().join("rt")).unwrap();
        Ctr {
            tmp,
            id,
            runtime: runtime.to_path_buf(),
            started: None,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join(LONG).join("ctr")
    }

    fn args(&self) -> MonitorArgs {
        MonitorArgs {
            id: self.id.clone(),
            ctr_dir: self.dir(),
            bundle: self.tmp.path().join("bundle"),
            runtime: self.runtime.clone(),
            runtime_root: self.tmp.path().join("rt"),
            ..Default::default()
        }
    }

    fn spawn(&mut self, a: &MonitorArgs) -> Result<Started, MonitorError> {
        let s = monitor::spawn(a)?;
        self.started = Some(s);
        Ok(s)
    }

    fn runtime_cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.runtime)
            .arg("--root")
            .arg(self.tmp.path().join("rt"))
            .args(args)
            .output()
            .unwrap()
    }

    fn start(&self) {
        let out = self.runtime_cmd(&["start", &self.id]);
        assert!(
            out.status.success(),
            "start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn status(&self) -> String {
        let out = self.runtime_cmd(&["state", &self.id]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    }

    fn exit_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("exit.json")).unwrap()).unwrap()
    }

    fn log(&self) -> Vec<(Stream, String)> {
        let mut v = Vec::new();
        oxcart_jsonlog::read(
            &self.dir().join("ctr.log"),
            &ReadOptions::default(),
            &mut |e| {
                v.push((e.stream, e.log));
                Ok(())
            },
        )
        .unwrap();
        v
    }

    /// Waits (without a time limit: the test harness has one) for the monitor to exit.
    fn wait_monitor(&self) {
        wait_pid_gone(self.started.unwrap().monitor_pid);
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        std::thread::scope(|sc| {
            // An init whose monitor was killed is our child now: reap it as the
            // runtime's delete kills it, or the delete waits for the zombie.
            if let Some(s) = self
                .started
                .filter(|s| ppid(s.ctr_pid) == Some(std::process::id() as i32))
            {
                sc.spawn(move || wait_pid_gone(s.ctr_pid));
            }
            let _ = self.runtime_cmd(&["delete", "--force", &self.id]);
        });
        if let Some(s) = self.started {
            // Through a pidfd, so a reused pid is never signalled.
            if let Some(pfd) = pidfd(s.monitor_pid) {
                // SAFETY: pidfd_send_signal(2) on a descriptor we own.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pfd.as_raw_fd(),
                        libc::SIGKILL,
                        0,
                        0,
                    )
                };
                wait_pid_gone(s.monitor_pid);
            }
        }
    }
}

/// Reaps the monitor of container `id` that reported a failure (the engine never
/// learns its pid): our child, as we are a subreaper.
fn reap_monitor_of(id: &str) {
    let me = std::process::id() as i32;
    let needle = format!("--id\0{id}\0");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = ppid(pid) == Some(me);
        // A zombie's cmdline is empty: match its comm instead.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let is_it = String::from_utf8_lossy(&cmdline).contains(&needle)
            || (cmdline.is_empty() && comm.trim() == "oxcart-monitor");
        if ours && is_it {
            wait_pid_gone(pid);
        }
    }
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new descriptor when non-negative.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits for `pid` to exit: reaping it when it is our child (the monitors are: we
/// are a subreaper), else through a pidfd.
fn wait_pid_gone(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    exited_within(pid, -1);
}

/// Whether `pid` has exited (or is gone) within `ms` milliseconds (-1: no limit),
/// through its pidfd, which is readable once the process has exited.
fn exited_within(pid: i32, ms: i32) -> bool {
    let Some(fd) = pidfd(pid) else { return true };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            n if n > 0 => return true,
            0 => return false,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return false,
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: room for two fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: just created.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Relays with `input` on stdin; returns (end, stdout, stderr).
fn relay(
    conn: attach::AttachConn,
    input: &[u8],
    detach: Option<&[u8]>,
) -> (AttachEnd, String, String) {
    let (r, w) = pipe();
    std::fs::File::from(w).write_all(input).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let end = conn
        .relay(RelayIo {
            stdin: Some(r.as_fd()),
            stdout: &mut out,
            stderr: &mut err,
            detach_keys: detach,
            resize: None,
        })
        .unwrap();
    (
        end,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn output_stdin_exit_code_and_log() {
    for rt in runtimes() {
        let mut c = Ctr::new(
            &rt,
            &["sh", "-c", "read x; echo out-$x; echo err-$x >&2; exit 3"],
            false,
        );
        let mut a = c.args();
        a.stdin = true;
        let s = c.spawn(&a).unwrap();
        assert!(alive(s.monitor_pid) && alive(s.ctr_pid));
        let mj: serde_json::Value =
            serde_json::from_slice(&std::fs::read(c.dir().join("monitor.json")).unwrap()).unwrap();
        assert_eq!(mj["pid"], s.monitor_pid);
        assert_eq!(mj["ctr_pid"], s.ctr_pid);
        // Attached before start: nothing is missed.
        let conn = attach::connect(&c.dir()).unwrap();
        c.start();
        let (end, out, err) = relay(conn, b"hello\n", None);
        assert_eq!(
            end,
            AttachEnd::Exited {
                code: 3,
                oom_killed: false,
                cleanup: false
            },
            "{rt:?}"
        );
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("out-hello\n", "err-hello\n"),
            "{rt:?}"
        );
        c.wait_monitor();
        assert_eq!(
            c.log(),
            [
                (Stream::Stdout, "out-hello\n".to_string()),
                (Stream::Stderr, "err-hello\n".to_string())
            ]
        );
        assert_eq!(c.exit_json()["exit_code"], 3);
        assert_eq!(c.exit_json()["oom_killed"], false);
        assert!(
            !c.dir().join("attach").exists(),
            "the socket is removed at exit"
        );
        assert!(!c.dir().join(".exit.json.tmp").exists());
    }
}

#[test]
fn signal_exit_and_exit_command_after_exit_json() {
    for rt in runtimes() {
        let mut c = Ctr::new(&rt, &["sleep", "1000"], false);
        let mut a = c.args();
        let seen = c.tmp.path().join("seen");
        let script = format!("cat {}/exit.json > {}", c.dir().display(), seen.display());
        a.exit_command = vec!["/bin/sh".into(), "-c".into(), script.into()];
        c.spawn(&a).unwrap();
        let conn = attach::connect(&c.dir()).unwrap();
        c.start();
        let out = c.runtime_cmd(&["kill", &c.id, "KILL"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (end, _, _) = relay(conn, b"", None);
        assert_eq!(
            end,
            AttachEnd::Exited {
                code: 137,
                oom_killed: false,
                cleanup: false
            }
        );
        c.wait_monitor();
        assert_eq!(c.exit_json()["exit_code"], 137);
        // The exit command ran, and saw the complete exit.json.
        let seen: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
        assert_eq!(seen, c.exit_json());
    }
}

/// The cleanup handoff (docs/engine.md "Attach protocol"): a client that asked
/// for it, even before the start of a container that exits at once, is told so in
/// its exit frame (another client is not), and the monitor waits for it to hang
/// up. If the client removed the container's directory, the exit command does not
/// run; if it hung up without (it died), the exit command does the cleanup.
#[test]
fn the_cleanup_is_handed_to_the_client_that_asks_and_taken_back_if_it_does_not() {
    for rt in runtimes() {
        for removes in [true, false] {
            let mut c = Ctr::new(&rt, &["sh", "-c", "exit 0"], false);
            let mut a = c.args();
            let ran = c.tmp.path().join("exit-command-ran");
            a.exit_command = vec!["/bin/touch".into(), ran.clone().into()];
            c.spawn(&a).unwrap();
            let cleaner = attach::connect(&c.dir()).unwrap();
            let hold = cleaner.request_cleanup().unwrap();
            let other = attach::connect(&c.dir()).unwrap();
            c.start();
            let (end, _, _) = relay(cleaner, b"", None);
            let handed = AttachEnd::Exited {
                code: 0,
                oom_killed: false,
                cleanup: true,
            };
            assert_eq!(end, handed, "{rt:?}");
            // Without stdin: its frame waits in the socket, which the monitor has
            // closed by now; a stdin EOF sent first would meet EPIPE before it.
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let end = other
                .relay(RelayIo {
                    stdin: None,
                    stdout: &mut out,
                    stderr: &mut err,
                    detach_keys: None,
                    resize: None,
                })
                .unwrap();
            assert_eq!(
                end,
                AttachEnd::Exited {
                    code: 0,
                    oom_killed: false,
                    cleanup: false
                }
            );
            // The monitor waits for our hang-up before anything else.
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(alive(c.started.unwrap().monitor_pid), "{rt:?}");
            assert!(!ran.exists());
            if removes {
                std::fs::rename(c.dir(), c.tmp.path().join("removed")).unwrap();
            }
            drop(hold);
            c.wait_monitor();
            assert_eq!(ran.exists(), !removes, "{rt:?} removes={removes}");
        }
    }
}

/// An OOM kill (busybox `tail` keeps a line without a newline in memory as it grows,
/// past a 16 MiB limit): `oom_killed` with 137, and the `oom` then `die` events in the
/// journal — on whatever cgroup layout the host has (hybrid here, pure v2 in the v2
/// lane): the engine's own choice of counter file is used.
#[test]
fn oom_kill_is_recorded_with_oom_and_die_events() {
    for rt in runtimes() {
        let limit = 16 << 20;
        let mut c = Ctr::with_config(&rt, &["tail", "/dev/zero"], false, |cfg| {
            cfg["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": limit, "swap": limit});
        });
        let mut a = c.args();
        a.oom_files = oxcart_engine::start::oom_files(&format!("/{}", c.id));
        let events = c.tmp.path().join("events");
        a.events_dir = Some(events.clone());
        a.events_max_size = 1 << 20;
        a.event_attrs = vec![("name".into(), "oomer".into())];
        c.spawn(&a).unwrap();
        c.start();
        c.wait_monitor();
        let x = c.exit_json();
        assert_eq!(x["exit_code"], 137, "{x} ({})", rt.display());
        assert_eq!(x["oom_killed"], true, "{x} ({})", rt.display());
        let journal = std::fs::read_to_string(events.join("events.log")).unwrap();
        let ev: Vec<serde_json::Value> = journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ev.len(), 2, "{journal}");
        assert_eq!(ev[0]["Action"], "oom");
        assert_eq!(ev[1]["Action"], "die");
        assert_eq!(ev[1]["Actor"]["Attributes"]["exitCode"], "137");
        assert_eq!(ev[1]["Actor"]["Attributes"]["name"], "oomer");
        assert_eq!(ev[1]["Actor"]["ID"], c.id.as_str());
    }
}

#[test]
fn stdin_once_closes_container_stdin() {
    for rt in runtimes() {
        let mut c = Ctr::new(&rt, &["cat"], false);
        let mut a = c.args();
        a.stdin = true;
        a.stdin_once = true;
        c.spawn(&a).unwrap();
        let conn = attach::connect(&c.dir()).unwrap();
        c.start();
        // Our stdin ends after "abc": cat sees EOF and exits 0.
        let (end, out, _) = relay(conn, b"abc", None);
        assert_eq!(
            end,
            AttachEnd::Exited {
                code: 0,
                oom_killed: false,
                cleanup: false
            }
        );
        assert_eq!(out, "abc");
        c.wait_monitor();
        assert_eq!(
            c.log(),
            [(Stream::Stdout, "abc".to_string())],
            "a partial line at close"
        );
    }
}

#[test]
fn stdin_stays_open_without_stdin_once() {
    let mut c = Ctr::new(Path::new(RUNC), &["cat"], false);
    let mut a = c.args();
    a.stdin = true;
    c.spawn(&a).unwrap();
    let watcher = attach::connect(&c.dir()).unwrap();
    c.start();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut out = ChanWriter(tx);
            watcher
                .relay(RelayIo {
                    stdin: None,
                    stdout: &mut out,
                    stderr: &mut Vec::new(),
                    detach_keys: None,
                    resize: None,
                })
                .unwrap()
        });
        let mut out = String::new();
        let mut wait_for = |want: &str| {
            while !out.contains(want) {
                let chunk = rx
                    .recv()
                    .unwrap_or_else(|_| panic!("no {want:?} in {out:?}"));
                out.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        // A client whose stdin ends, then goes away...
        let first = attach::connect(&c.dir()).unwrap();
        first.send_stdin(b"one\n").unwrap();
        first.close_stdin().unwrap();
        drop(first);
        wait_for("one\n");
        // ...leaves the container's stdin open for the next one.
        let second = attach::connect(&c.dir()).unwrap();
        second.send_stdin(b"two\n").unwrap();
        wait_for("two\n");
        assert_eq!(c.status(), "running");
        let out = c.runtime_cmd(&["kill", &c.id, "KILL"]);
        assert!(out.status.success());
        assert_eq!(
            h.join().unwrap(),
            AttachEnd::Exited {
                code: 137,
                oom_killed: false,
                cleanup: false
            }
        );
    });
    c.wait_monitor();
    let logs: String = c.log().into_iter().map(|(_, l)| l).collect();
    assert_eq!(logs, "one\ntwo\n");
}

/// Hands each write to the test thread.
struct ChanWriter(std::sync::mpsc::Sender<Vec<u8>>);

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(b.to_vec())
            .map_err(|_| std::io::Error::other("receiver gone"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tty_with_resize() {
    for rt in runtimes() {
        let mut c = Ctr::new(
            &rt,
            &["sh", "-c", "read x; stty size; read y; stty size; exit 5"],
            true,
        );
        let mut a = c.args();
        a.tty = true;
        a.stdin = true;
        c.spawn(&a).unwrap();
        let watcher = attach::connect(&c.dir()).unwrap();
        let control = attach::connect(&c.dir()).unwrap();
        c.start();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                let mut out = ChanWriter(tx);
                watcher
                    .relay(RelayIo {
                        stdin: None,
                        stdout: &mut out,
                        stderr: &mut Vec::new(),
                        detach_keys: None,
                        resize: None,
                    })
                    .unwrap()
            });
            let mut out = String::new();
            let mut wait_for = |want: &str| {
                while !out.contains(want) {
                    let chunk = rx
                        .recv()
                        .unwrap_or_else(|_| panic!("{rt:?}: no {want:?} in {out:?}"));
                    out.push_str(&String::from_utf8_lossy(&chunk));
                }
            };
            // The monitor handles one client's messages in order: the resize is
            // applied before the line that makes the container look.
            control.resize(30, 100).unwrap();
            control.send_stdin(b"go\n").unwrap();
            // A tty: \r\n line ends, the echo of our input, one stream.
            wait_for("30 100\r\n");
            control.resize(40, 120).unwrap();
            control.send_stdin(b"go\n").unwrap();
            wait_for("40 120\r\n");
            assert!(out.contains("go\r\n"), "{out:?}");
            assert_eq!(
                h.join().unwrap(),
                AttachEnd::Exited {
                    code: 5,
                    oom_killed: false,
                    cleanup: false
                },
                "{rt:?}"
            );
        });
        c.wait_monitor();
        assert!(c.log().iter().all(|(s, _)| *s == Stream::Stdout));
    }
}

#[test]
fn detach_leaves_container_running() {
    for rt in runtimes() {
        // `run -it`'s case: a tty, stdin, stdin-once.
        let mut c = Ctr::new(&rt, &["sh", "-c", "exec sleep 1000"], true);
        let mut a = c.args();
        a.tty = true;
        a.stdin = true;
        a.stdin_once = true;
        let s = c.spawn(&a).unwrap();
        let conn = attach::connect(&c.dir()).unwrap();
        c.start();
        let (end, _, _) = relay(conn, b"abc\x10\x11", Some(attach::DEFAULT_DETACH_KEYS));
        assert_eq!(end, AttachEnd::Detached, "{rt:?}");
        assert_eq!(c.status(), "running");
        assert!(alive(s.monitor_pid));
        assert!(!c.dir().join("exit.json").exists());
        // Attaching again works, and sees the end.
        let conn = attach::connect(&c.dir()).unwrap();
        let out = c.runtime_cmd(&["kill", &c.id, "KILL"]);
        assert!(out.status.success());
        let (end, _, _) = relay(conn, b"", None);
        assert_eq!(
            end,
            AttachEnd::Exited {
                code: 137,
                oom_killed: false,
                cleanup: false
            },
            "{rt:?}"
        );
    }
}

#[test]
fn monitor_killed_leaves_container_running() {
    for rt in runtimes() {
        let mut c = Ctr::new(&rt, &["sleep", "1000"], false);
        let s = c.spawn(&c.args()).unwrap();
        c.start();
        // SAFETY: the monitor this test started, alive (checked) right now.
        assert!(alive(s.monitor_pid));
        unsafe { libc::kill(s.monitor_pid, libc::SIGKILL) };
        c.wait_monitor();
        assert!(
            alive(s.ctr_pid),
            "{rt:?}: the container outlives its monitor"
        );
        assert_eq!(c.status(), "running");
        assert!(!c.dir().join("exit.json").exists());
        // Drop deletes it through the runtime.
    }
}

#[test]
fn create_failure_reports_runtime_message_and_leaves_nothing() {
    for rt in runtimes() {
        let mut c = Ctr::new(&rt, &["/no/such/command"], false);
        let err = c.spawn(&c.args()).unwrap_err();
        reap_monitor_of(&c.id);
        match &err {
            MonitorError::Runtime(msg) => {
                assert!(msg.contains("/no/such/command"), "{rt:?}: {msg}")
            }
            other => panic!("{rt:?}: {other:?}"),
        }
        let mut left: Vec<String> = std::fs::read_dir(c.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.retain(|n| n != monitor::MONITOR_LOG);
        assert!(left.is_empty(), "{rt:?}: left behind {left:?}");
        assert_eq!(c.status(), "", "no container in the runtime");
    }
}

#[test]
fn log_rotation_by_the_monitor() {
    let mut c = Ctr::new(
        Path::new(RUNC),
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
        false,
    );
    let mut a = c.args();
    a.log_max_size = Some(2000);
    a.log_max_file = Some(3);
    c.spawn(&a).unwrap();
    c.start();
    c.wait_monitor();
    let files = oxcart_jsonlog::log_files(&c.dir().join("ctr.log"));
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 2000);
    }
    let log = c.log();
    assert_eq!(log.last().unwrap().1, "line-199\n");
    // Entries are contiguous up to the end: nothing lost inside the kept window.
    let first: usize = log[0].1.trim().trim_start_matches("line-").parse().unwrap();
    let want: Vec<String> = (first..200).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(log.into_iter().map(|(_, l)| l).collect::<Vec<_>>(), want);
}

#[test]
fn slow_client_is_dropped_not_waited_for() {
    // 3 MB of output; the client never reads, so its queue passes the 1 MiB limit.
    let line = "x".repeat(99);
    let cmd = format!("yes {line} | head -n 30000; echo done");
    let mut c = Ctr::new(Path::new(RUNC), &["sh", "-c", &cmd], false);
    let mut a = c.args();
    a.log_driver = monitor::LogDriver::None;
    c.spawn(&a).unwrap();
    let conn = attach::connect(&c.dir()).unwrap();
    c.start();
    // The container runs to its end although this client reads nothing.
    c.wait_monitor();
    assert_eq!(c.exit_json()["exit_code"], 0);
    assert!(!c.dir().join("ctr.log").exists(), "--log-driver none");
    // What was queued before the drop is there, then the end without an exit frame.
    let mut out = Vec::new();
    let end = conn
        .relay(RelayIo {
            stdin: None,
            stdout: &mut out,
            stderr: &mut Vec::new(),
            detach_keys: None,
            resize: None,
        })
        .unwrap();
    assert_eq!(end, AttachEnd::Closed);
    assert!(!out.is_empty() && out.len() < 3_000_000, "{}", out.len());
}

#[test]
fn oom_kill_is_reported() {
    // 32 MiB with no swap beyond it.
    let mut c = Ctr::with_config(
        Path::new(RUNC),
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        false,
        |cfg| {
            cfg["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": 33554432, "swap": 33554432})
        },
    );
    let mut a = c.args();
    // The engine's choice: v1 memory.oom_control here, v2 memory.events in the lane.
    a.oom_files = oxcart_engine::start::oom_files(&format!("/{}", c.id));
    c.spawn(&a).unwrap();
    let conn = attach::connect(&c.dir()).unwrap();
    c.start();
    let (end, out, _) = relay(conn, b"", None);
    // The shell itself holds the string: it is the one killed.
    assert_eq!(
        end,
        AttachEnd::Exited {
            code: 137,
            oom_killed: true,
            cleanup: false
        },
        "{out:?}"
    );
    c.wait_monitor();
    assert_eq!(c.exit_json()["oom_killed"], true);
}

#[test]
fn no_oom_without_a_kill() {
    let mut c = Ctr::new(Path::new(RUNC), &["sh", "-c", "exit 0"], false);
    let mut a = c.args();
    // The engine's choice: v1 memory.oom_control here, v2 memory.events in the lane.
    a.oom_files = oxcart_engine::start::oom_files(&format!("/{}", c.id));
    c.spawn(&a).unwrap();
    c.start();
    c.wait_monitor();
    assert_eq!(c.exit_json()["oom_killed"], false);
}

#[test]
fn logs_follow_a_running_container_across_rotations() {
    let mut c = Ctr::new(
        Path::new(RUNC),
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; printf end",
        ],
        false,
    );
    let mut a = c.args();
    // About a dozen entries per file, and every file kept: many rotations between
    // two looks of the follower, none losing entries.
    a.log_max_size = Some(1000);
    a.log_max_file = Some(100);
    c.spawn(&a).unwrap();
    let log = c.dir().join("ctr.log");
    let exit = c.dir().join("exit.json");
    let follower = std::thread::spawn(move || {
        let mut got = Vec::new();
        oxcart_jsonlog::follow(
            &log,
            &ReadOptions::default(),
            &mut || exit.exists(),
            &mut |e| {
                got.push(e.log);
                Ok(())
            },
        )
        .unwrap();
        got
    });
    c.start();
    c.wait_monitor();
    let got = follower.join().unwrap();
    let mut want: Vec<String> = (0..300).map(|i| format!("line-{i}\n")).collect();
    // The unterminated last line is flushed before exit.json appears.
    want.push("end".into());
    assert_eq!(got, want);
    assert!(oxcart_jsonlog::log_files(&c.dir().join("ctr.log")).len() > 10);
}

/// Whether `pid` (our child, as the subreaper) exits within `limit`; reaped if so.
fn exits_within(pid: i32, limit: std::time::Duration) -> bool {
    let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    if !exited_within(pid, ms) {
        return false;
    }
    wait_pid_gone(pid);
    true
}

/// An init that is dead before the runtime's `create` returns (an `rm -f` racing a
/// `run` deletes the container at that point) comes to the monitor, as the
/// subreaper, already a zombie and with the same SIGCHLD as `create` itself. The
/// monitor must still collect its exit and end, not wait for a SIGCHLD that never
/// comes (a CI run once left such a monitor behind).
#[test]
fn an_init_dead_before_create_returns_is_collected() {
    let fake = tempfile::tempdir().unwrap();
    let runtime = fake.path().join("runtime");
    // Only builtins after the `&`: a command dash waits for would reap the child.
    std::fs::write(
        &runtime,
        r#"#!/bin/sh
for a; do
    [ "$prev" = --pid-file ] && pidfile=$a
    prev=$a
done
case " $* " in *" create "*) ;; *) exit 0 ;; esac
/bin/sh -c 'exit 3' &
child=$!
echo "$child" > "$pidfile"
while :; do
    read -r stat < "/proc/$child/stat"
    case "$stat" in *") Z "*) exit 0 ;; esac
done
"#,
    )
    .unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for _ in 0..20 {
        let mut c = Ctr::new(&runtime, &["true"], false);
        let a = c.args();
        let s = c.spawn(&a).unwrap();
        assert!(
            exits_within(s.monitor_pid, std::time::Duration::from_secs(10)),
            "the monitor still waits for an init that exited before create returned"
        );
        assert_eq!(c.exit_json()["exit_code"], 3);
    }
}
