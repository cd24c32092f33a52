//! A container's status, derived from the monitor's files, whether its process lives,
//! and (only when the monitor died) the runtime's state — never from a stored field, so
//! a crash anywhere leaves something the next command reads truthfully
//! (docs/engine.md, "Status is derived").

use crate::error::{io_err, Result};
use crate::record::{ExitInfo, MonitorInfo, Record};
use crate::runtime::Runtime;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// docker's `State.Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Everything `ps` and `inspect` show about a container's state.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: Status,
    /// The container's init on the host, while it runs; else 0.
    pub pid: i32,
    pub monitor: Option<MonitorInfo>,
    pub monitor_alive: bool,
    /// This run's exit, or the last run's.
    pub exit: Option<ExitInfo>,
    pub started_at: String,
    pub error: String,
    /// docker's RestartCount: the monitor's `restart.json` since the last start,
    /// else the record's.
    pub restart_count: i64,
    /// docker's `State.Health`, once a run with a healthcheck began.
    pub health: Option<Health>,
    /// The exit is the engine's 255, not one the monitor recorded.
    pub exit_is_guess: bool,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    /// docker's `HealthcheckResult`s, oldest first (at most 5).
    pub log: Vec<serde_json::Value>,
}

/// `restart.json`, as the monitor writes it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RestartInfo {
    pub restart_count: i64,
    /// A restart is pending (its backoff, or the runtime's create).
    pub restarting: bool,
    /// The run that ended last.
    pub exit_code: i64,
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

pub const MONITOR_FILE: &str = "monitor.json";
pub const EXIT_FILE: &str = "exit.json";
/// Present while the container is paused (written after the runtime's `pause`
/// succeeded): `ps` then needs no runtime call to tell paused from running.
pub const PAUSED_FILE: &str = "paused";
/// The monitor's restarts (monitor/src/restart.rs).
pub const RESTART_FILE: &str = "restart.json";
/// Written by `start` and `update --restart`: the policy the monitor applies.
pub const POLICY_FILE: &str = "restart-policy";
/// docker's HasBeenManuallyStopped: a user's `stop` or `kill`, until the next start.
pub const STOPPED_FILE: &str = "stopped-by-user";
/// docker's ExitOnNext: no policy restarts the container until the next start.
pub const CANCELED_FILE: &str = "restart-canceled";
/// The monitor's healthcheck state (monitor/src/health.rs).
pub const HEALTH_FILE: &str = "health.jsonl";

/// A container's directory as one `observe` reads it: opened once, each file then
/// opened relative to it. Why: `observe` looks up six names per container (four of
/// them usually absent), and by path every lookup walks `<root>/containers/<id>/`
/// again — a listing of 50 containers spent a good part of its kernel time in
/// those walks. Where the directory cannot be opened the files are read by path, so
/// every answer and error stays what it was.
struct CtrFiles<'a> {
    path: &'a Path,
    fd: Option<OwnedFd>,
}

impl<'a> CtrFiles<'a> {
    fn open(path: &'a Path) -> CtrFiles<'a> {
        let fd = std::ffi::CString::new(path.as_os_str().as_bytes())
            .ok()
            .and_then(|c| {
                // SAFETY: c is NUL-terminated; the fd is owned below.
                let fd = unsafe {
                    libc::open(
                        c.as_ptr(),
                        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    )
                };
                // SAFETY: a fresh fd we own.
                (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            });
        CtrFiles { path, fd }
    }

    fn by_path(path: &'a Path) -> CtrFiles<'a> {
        CtrFiles { path, fd: None }
    }

    /// The whole file, as `fs::read` would return it.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        match &self.fd {
            Some(dir) => read_at(dir, name),
            None => std::fs::read(self.path.join(name)),
        }
    }

    /// `Path::exists` of the file (following a symlink, as it does).
    fn exists(&self, name: &str) -> bool {
        let Some(dir) = &self.fd else {
            return self.path.join(name).exists();
        };
        let Ok(c) = c_name(name) else {
            return false;
        };
        // SAFETY: c is NUL-terminated; st is written by the call.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, 0) == 0 }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        parse_state(self.read(name), &|| self.path.join(name))
    }

    /// `health.jsonl`: `{"Status","FailingStreak"}`, then one result a line. docker
    /// shows a container whose checks stopped (it exited) as `unhealthy`.
    fn health(&self, running: bool) -> Option<Health> {
        let s = String::from_utf8(self.read(HEALTH_FILE).ok()?).ok()?;
        let mut lines = s.lines();
        let head: serde_json::Value = serde_json::from_str(lines.next()?).ok()?;
        let status = head.get("Status")?.as_str()?.to_string();
        Some(Health {
            status: if running { status } else { "unhealthy".into() },
            failing_streak: head
                .get("FailingStreak")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            log: lines.filter_map(|l| serde_json::from_str(l).ok()).collect(),
        })
    }
}

fn c_name(name: &str) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "name contains a NUL byte")
    })
}

/// The whole file `name` below `dir`, as `fs::read` would return it.
fn read_at(dir: &OwnedFd, name: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = oxcart_cgroups::dircache::open_below(dir.as_fd(), &c_name(name)?)?;
    // Through `take`: no size and position queries for these small files (state
    // files are a few hundred bytes; the buffer grows for a long health log).
    let mut b = Vec::with_capacity(1024);
    f.take(u64::MAX).read_to_end(&mut b)?;
    Ok(b)
}

/// [`parse_state`] of `<id>/<name>` below `dir`, read the way `stats` needs it
/// cheap (three state files per container): the relative path made on the stack,
/// and one `read` where the first one returns the whole object. A short read of a
/// regular file is its end, but that is not promised everywhere (FUSE, NFS); a
/// JSON object is whole only with its closing brace, so the text is read on to
/// EOF, as `fs::read` does, unless it parsed. `Ok(None)` for a file that does
/// not parse, an error for one that cannot be read (absent: `NotFound`).
fn read_json_below<T: serde::de::DeserializeOwned>(
    dir: &OwnedFd,
    id: &str,
    name: &str,
) -> std::io::Result<Option<T>> {
    use std::io::Read;
    let mut rel = [0u8; 160];
    let len = id.len() + 1 + name.len();
    if len >= rel.len() || id.contains('\0') || name.contains('\0') {
        let read = read_at(dir, &format!("{id}/{name}"));
        return read.map(|b| serde_json::from_slice(&b).ok());
    }
    rel[..id.len()].copy_from_slice(id.as_bytes());
    rel[id.len()] = b'/';
    rel[id.len() + 1..len].copy_from_slice(name.as_bytes());
    // Zeroed past `len`, no NUL before it (checked above).
    let rel = std::ffi::CStr::from_bytes_until_nul(&rel)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut f = oxcart_cgroups::dircache::open_below(dir.as_fd(), rel)?;
    let mut b = Vec::with_capacity(1024);
    let want = b.capacity();
    let n = loop {
        let spare = b.spare_capacity_mut();
        // SAFETY: read(2) writes at most `want` bytes into the spare capacity.
        let n = unsafe { libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        if n >= 0 {
            break n as usize;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // SAFETY: the kernel initialised the `n` (<= want) bytes it reported.
    unsafe { b.set_len(n) };
    if n > 0 && n < want {
        if let Ok(v) = serde_json::from_slice(&b) {
            return Ok(Some(v));
        }
    }
    f.read_to_end(&mut b)?;
    Ok(serde_json::from_slice(&b).ok())
}

/// A state file as read: absent is `None`.
fn parse_state<T: serde::de::DeserializeOwned>(
    read: std::io::Result<Vec<u8>>,
    path: &dyn Fn() -> std::path::PathBuf,
) -> Result<Option<T>> {
    match read {
        // A file that does not parse was not written by an atomic rename of ours
        // (a disk error, a hand edit): treated as absent, so the state falls back to
        // the runtime's word rather than failing every command on this container.
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path())(e)),
    }
}

/// Every container's directory opened once, for one pass that reads a few state
/// files of many containers (`stats`): `<id>/monitor.json` relative to it is one
/// lookup, where [`observe`] opens each container's directory first.
pub struct CtrsDir {
    path: std::path::PathBuf,
    fd: Option<OwnedFd>,
}

impl CtrsDir {
    pub fn open(path: std::path::PathBuf) -> CtrsDir {
        let fd = CtrFiles::open(&path).fd;
        CtrsDir { path, fd }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, id: &str, name: &str) -> Result<Option<T>> {
        let path = || self.path.join(id).join(name);
        let Some(dir) = &self.fd else {
            return parse_state(std::fs::read(path()), &path);
        };
        match read_json_below(dir, id, name) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path())(e)),
        }
    }

    /// What a container's monitor files say of its current run, read without
    /// asking whether the monitor lives (see [`FilesSay`]).
    pub fn files_say(&self, id: &str) -> FilesSay {
        let m: MonitorInfo = match self.json(id, MONITOR_FILE) {
            // No monitor started it: created, or exited before this root's monitor
            // files existed (the record's last exit) — `observe_run`'s answer too.
            Ok(None) => return FilesSay::Stopped,
            Ok(Some(m)) => m,
            Err(_) => return FilesSay::Unsure,
        };
        match self.json::<ExitInfo>(id, EXIT_FILE) {
            Ok(None) => {}
            // The monitor recorded this run's exit: exited, whatever restart.json
            // says (`observe`).
            Ok(Some(_)) => return FilesSay::Stopped,
            Err(_) => return FilesSay::Unsure,
        }
        match self.json::<RestartInfo>(id, RESTART_FILE) {
            Ok(None) => FilesSay::Started(m),
            Ok(Some(r)) if !r.restarting => FilesSay::Started(m),
            _ => FilesSay::Unsure,
        }
    }
}

/// [`CtrsDir::files_say`]'s answer.
#[derive(Debug, Clone)]
pub enum FilesSay {
    /// Not running, as [`observe`] would say too.
    Stopped,
    /// Its monitor started it, recorded no exit, and is not between two runs of a
    /// restart policy: it runs if the monitor (or, if that died, the container)
    /// lives — which the caller must tell from elsewhere (`stats`: processes in the
    /// container's cgroup), or leave to [`observe`].
    Started(MonitorInfo),
    /// Only [`observe`] can tell (a restart pending, a file unreadable).
    Unsure,
}

pub fn read_monitor(ctr_dir: &Path) -> Result<Option<MonitorInfo>> {
    CtrFiles::by_path(ctr_dir).json(MONITOR_FILE)
}

pub fn read_exit(ctr_dir: &Path) -> Result<Option<ExitInfo>> {
    CtrFiles::by_path(ctr_dir).json(EXIT_FILE)
}

pub fn read_restart(ctr_dir: &Path) -> Result<Option<RestartInfo>> {
    CtrFiles::by_path(ctr_dir).json(RESTART_FILE)
}

/// `health.jsonl`: `{"Status","FailingStreak"}`, then one result a line. docker shows
/// a container whose checks stopped (it exited) as `unhealthy`.
pub fn read_health(ctr_dir: &Path, running: bool) -> Option<Health> {
    CtrFiles::by_path(ctr_dir).health(running)
}

/// This boot's id: a `monitor.json` from another boot describes processes that are gone.
/// Read once per process (a process does not outlive its boot): listings ask once per
/// container.
pub fn boot_id() -> String {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            read_proc("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// A small single-record procfs file (`/proc/<pid>/stat`; boot_id, a sysctl, is
/// copied out whole as well) in one read: procfs reports size 0, so
/// `fs::read_to_string` would ask for the size and position and then read up from
/// a 32-byte probe, and a short read is the end (oxcart_cgroups::seqfile).
fn read_proc(path: &str) -> std::io::Result<String> {
    oxcart_cgroups::seqfile::read_path(path.as_ref())
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks), or None if no such
/// process. The command name (field 2) may hold spaces and parentheses: split after
/// the last `)`.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = read_proc(&format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // After ") " the fields start at 3 (state); starttime is field 22.
    if f.first() == Some(&"Z") {
        return None;
    }
    f.get(22 - 3)?.parse().ok()
}

/// Whether the monitor described by `m` is alive: same pid, same start time, this boot.
pub fn monitor_alive(m: &MonitorInfo, boot: &str) -> bool {
    m.boot_id == boot && proc_start_time(m.pid) == Some(m.start_time)
}

/// Derive a container's state. `runtime` is asked for (and consulted) only when the monitor died
/// without writing an exit: then the runtime alone knows whether the container runs.
pub fn observe(
    ctr_dir: &Path,
    rec: &Record,
    runtime: &dyn Fn() -> Option<Runtime>,
) -> Result<Observed> {
    let files = CtrFiles::open(ctr_dir);
    let mut o = observe_run(&files, rec, runtime)?;
    let restart: Option<RestartInfo> = files.json(RESTART_FILE)?;
    if let Some(r) = &restart {
        o.restart_count = r.restart_count;
    }
    if let Some(r) = restart.filter(|r| r.restarting) {
        let last = ExitInfo {
            exit_code: r.exit_code,
            finished_at: r.finished_at,
            oom_killed: r.oom_killed,
            error: String::new(),
        };
        if o.monitor_alive && o.status == Status::Running {
            // The monitor waits out the backoff: docker's Restarting (Pid 0, the
            // last run's exit code and finish time).
            o.status = Status::Restarting;
            o.pid = 0;
            o.exit = Some(last);
        } else if o.status == Status::Exited && !o.monitor_alive && o.exit_is_guess {
            // Killed (or rebooted) while restarting: the last exit is known, the
            // restart never happened.
            o.exit = Some(last);
            if o.monitor.as_ref().is_some_and(|m| m.boot_id == boot_id()) {
                o.error = "oxcart-monitor died while the container was restarting".into();
            }
        }
    }
    o.health = files.health(o.status == Status::Running);
    Ok(o)
}

/// The state of the current run alone, before restarts and health are read.
fn observe_run(
    files: &CtrFiles<'_>,
    rec: &Record,
    runtime: &dyn Fn() -> Option<Runtime>,
) -> Result<Observed> {
    let monitor: Option<MonitorInfo> = files.json(MONITOR_FILE)?;
    let exit: Option<ExitInfo> = files.json(EXIT_FILE)?;
    let mut o = Observed {
        status: Status::Created,
        pid: 0,
        monitor_alive: false,
        exit: exit.clone().or_else(|| rec.history.last_exit.clone()),
        started_at: String::new(),
        error: rec.history.error.clone(),
        monitor: monitor.clone(),
        restart_count: rec.history.restart_count,
        health: None,
        exit_is_guess: false,
    };
    let Some(m) = monitor else {
        if o.exit.is_some() {
            o.status = Status::Exited;
        }
        return Ok(o);
    };
    o.started_at = m.started_at.clone();
    if let Some(e) = exit {
        o.status = Status::Exited;
        o.error = e.error.clone();
        return Ok(o);
    }
    let boot = boot_id();
    if monitor_alive(&m, &boot) {
        o.monitor_alive = true;
        o.pid = m.ctr_pid;
        o.status = if files.exists(PAUSED_FILE) {
            Status::Paused
        } else {
            Status::Running
        };
        return Ok(o);
    }
    o.status = Status::Exited;
    o.exit_is_guess = true;
    o.exit = Some(ExitInfo {
        exit_code: 255,
        finished_at: String::new(),
        oom_killed: false,
        error: String::new(),
    });
    if m.boot_id != boot {
        o.error = "the host rebooted while the container ran".into();
        return Ok(o);
    }
    // The monitor died (kill -9, OOM): ask the runtime, then the container's pid.
    let rt_state = match runtime() {
        Some(rt) => rt.state(&rec.id).ok().flatten(),
        None => None,
    };
    match rt_state {
        Some(s) if s.status == "running" || s.status == "paused" => {
            o.status = if s.status == "paused" {
                Status::Paused
            } else {
                Status::Running
            };
            o.pid = s.pid;
            o.exit = None;
            o.exit_is_guess = false;
            o.error = "oxcart-monitor died: the container runs without log or exit code collection; stop or rm -f it".into();
        }
        _ => {
            o.error = "oxcart-monitor died: the container's exit code is unknown".into();
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        serde_json::from_str(
            r#"{"id":"c","name":"c","created":"","image_id":"","config":{},
                "host_config":{},"path":"","args":[],"runtime":""}"#,
        )
        .expect("a minimal record")
    }

    /// Our own process as the "monitor": alive by pid and start time, so only the
    /// boot id can tell the run is from before a reboot.
    fn write_monitor(dir: &Path, boot: &str) {
        let pid = std::process::id() as i32;
        let m = serde_json::json!({
            "pid": pid, "start_time": proc_start_time(pid).expect("our stat"),
            "boot_id": boot, "ctr_pid": 1, "started_at": "2024-01-01T00:00:00Z",
        });
        std::fs::write(dir.join(MONITOR_FILE), m.to_string()).expect("write");
    }

    #[test]
    fn a_run_from_another_boot_is_never_trusted() {
        let d = tempfile::tempdir().expect("tempdir");
        write_monitor(d.path(), &boot_id());
        assert_eq!(
            observe(d.path(), &record(), &|| None)
                .expect("observe")
                .status,
            Status::Running
        );
        write_monitor(d.path(), "another-boot");
        let o = observe(d.path(), &record(), &|| None).expect("observe");
        assert_eq!(o.status, Status::Exited);
        assert_eq!(o.exit.map(|e| e.exit_code), Some(255));
        assert!(o.error.contains("rebooted"), "{}", o.error);
    }

    #[test]
    fn restarting_comes_from_restart_json_while_the_monitor_lives() {
        let d = tempfile::tempdir().expect("tempdir");
        write_monitor(d.path(), &boot_id());
        let r = r#"{"restart_count":3,"restarting":true,"exit_code":7,"finished_at":"2024-01-01T00:00:01Z"}"#;
        std::fs::write(d.path().join(RESTART_FILE), r).expect("write");
        let o = observe(d.path(), &record(), &|| None).expect("observe");
        assert_eq!(
            (o.status, o.pid, o.restart_count),
            (Status::Restarting, 0, 3)
        );
        assert_eq!(o.exit.map(|e| e.exit_code), Some(7));
        // The same files after a reboot: exited with the last run's code.
        write_monitor(d.path(), "another-boot");
        let o = observe(d.path(), &record(), &|| None).expect("observe");
        assert_eq!(o.status, Status::Exited);
        assert_eq!(o.exit.map(|e| e.exit_code), Some(7));
        assert!(o.error.contains("rebooted"), "{}", o.error);
    }

    /// The state files `stats` reads in one `read`: whole objects, objects longer
    /// than the first read, text that does not parse, absent files, long names.
    #[test]
    fn state_files_read_below_the_containers_dir() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("c")).expect("mkdir");
        let dir = CtrFiles::open(root.path()).fd.expect("dir fd");
        let read = |name: &str| read_json_below::<serde_json::Value>(&dir, "c", name);
        let write = |name: &str, text: &str| {
            std::fs::write(root.path().join("c").join(name), text).expect("write")
        };
        write("small", r#"{"a":1}"#);
        assert_eq!(
            read("small").expect("read"),
            Some(serde_json::json!({"a": 1}))
        );
        // Past the first read's 1 KiB, and exactly at it: read on to the end.
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(5000));
        write("long", &long);
        assert_eq!(
            read("long").expect("read").expect("parsed")["a"]
                .as_str()
                .map(str::len),
            Some(5000)
        );
        let exact = format!(r#"{{"a":"{}"}}"#, "y".repeat(1024 - 8));
        assert_eq!(exact.len(), 1024);
        write("exact", &exact);
        assert!(read("exact").expect("read").is_some());
        // Not JSON (a hand edit, a torn write): absent, as parse_state says.
        write("bad", r#"{"a":"#);
        assert_eq!(read("bad").expect("read"), None);
        write("empty", "");
        assert_eq!(read("empty").expect("read"), None);
        assert_eq!(
            read("missing").unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        // A name too long for the stack buffer goes the allocating way.
        let name = "n".repeat(200);
        write(&name, r#"{"b":2}"#);
        assert_eq!(
            read(&name).expect("read"),
            Some(serde_json::json!({"b": 2}))
        );
    }

    /// `files_say` never calls running what `observe` does not, nor stopped what
    /// `observe` calls running (`stats` trusts its Stopped and, with processes in
    /// the cgroup, its Started).
    #[test]
    fn files_say_what_observe_says_of_the_same_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("c");
        std::fs::create_dir(&dir).expect("mkdir");
        let ctrs = CtrsDir::open(root.path().to_path_buf());
        let status = || observe(&dir, &record(), &|| None).expect("observe").status;

        // Created: no monitor started it.
        assert!(matches!(ctrs.files_say("c"), FilesSay::Stopped));
        assert_eq!(status(), Status::Created);
        // Running.
        write_monitor(&dir, &boot_id());
        match ctrs.files_say("c") {
            FilesSay::Started(m) => assert_eq!(m.started_at, "2024-01-01T00:00:00Z"),
            other => panic!("{other:?}"),
        }
        assert_eq!(status(), Status::Running);
        // Between two runs of a restart policy: only observe can tell.
        let r = r#"{"restart_count":1,"restarting":true,"exit_code":1,"finished_at":""}"#;
        std::fs::write(dir.join(RESTART_FILE), r).expect("write");
        assert!(matches!(ctrs.files_say("c"), FilesSay::Unsure));
        assert_eq!(status(), Status::Restarting);
        // Restarted: running again.
        let r = r#"{"restart_count":1,"restarting":false,"exit_code":1,"finished_at":""}"#;
        std::fs::write(dir.join(RESTART_FILE), r).expect("write");
        assert!(matches!(ctrs.files_say("c"), FilesSay::Started(_)));
        assert_eq!(status(), Status::Running);
        // Exited: the monitor recorded it.
        let e = r#"{"exit_code":0,"finished_at":"2024-01-01T00:00:02Z"}"#;
        std::fs::write(dir.join(EXIT_FILE), e).expect("write");
        assert!(matches!(ctrs.files_say("c"), FilesSay::Stopped));
        assert_eq!(status(), Status::Exited);
        // A state file that cannot be read (a directory in its place): unsure.
        std::fs::remove_file(dir.join(EXIT_FILE)).expect("rm");
        std::fs::create_dir(dir.join(EXIT_FILE)).expect("mkdir");
        assert!(matches!(ctrs.files_say("c"), FilesSay::Unsure));
        // A container that is not there at all: no monitor started it.
        assert!(matches!(ctrs.files_say("gone"), FilesSay::Stopped));
    }
}
