//! The engine's side of the monitor (docs/engine.md "The monitor"): find
//! `oxcart-monitor`, start it for a container and read its report.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `--log-driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogDriver {
    #[default]
    JsonFile,
    None,
}

/// Everything the monitor's command line carries.
#[derive(Debug, Clone, Default)]
pub struct MonitorArgs {
    pub id: String,
    /// The container's directory (`<root>/containers/<id>`).
    pub ctr_dir: PathBuf,
    pub bundle: PathBuf,
    /// The OCI runtime's executable.
    pub runtime: PathBuf,
    /// The runtime's global flags, before its `--root` (e.g. `--systemd-cgroup`).
    pub runtime_args: Vec<OsString>,
    /// The runtime's state directory, its `--root`.
    pub runtime_root: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_driver: LogDriver,
    /// `--log-opt max-size` in bytes.
    pub log_max_size: Option<u64>,
    /// `--log-opt max-file`.
    pub log_max_file: Option<u32>,
    /// The cgroup files whose `oom_kill` counter tells an OOM kill.
    pub oom_files: Vec<PathBuf>,
    /// Run (and waited for) after `exit.json` is written: `oxcart … container cleanup ID`.
    pub exit_command: Vec<OsString>,
    /// The container's stop signal (a number) and timeout (seconds, < 0: none), for
    /// `--health-on-failure stop|restart`.
    pub stop_signal: i32,
    pub stop_timeout: i64,
    pub health: Option<HealthArgs>,
    /// The events journal, for the `oom` and `die` events (docs/engine.md "Events").
    pub events_dir: Option<PathBuf>,
    pub events_max_size: u64,
    /// The container's event attributes (docker's labels, `image`, `name`).
    pub event_attrs: Vec<(String, String)>,
}

/// The healthcheck the monitor runs: docker's timings with its defaults applied.
#[derive(Debug, Clone, Default)]
pub struct HealthArgs {
    /// The probe's OCI process (for the runtime's `exec --process`).
    pub process: PathBuf,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
    pub retries: i64,
    /// podman's `--health-on-failure`: none, kill, restart, stop.
    pub on_failure: String,
}

/// A monitor that has the container created (not yet started: the engine runs the
/// runtime's `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub monitor_pid: i32,
    pub ctr_pid: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("oxcart-monitor not found: not in $OXCART_MONITOR, next to {exe}, or on $PATH")]
    NotFound { exe: PathBuf },
    #[error("$OXCART_MONITOR={0}: not an executable file")]
    BadEnv(PathBuf),
    #[error("starting {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime's own message (from its `--log` or stderr), or the monitor's
    /// reason it could not create the container.
    #[error("{0}")]
    Runtime(String),
    #[error("{path} exited ({status}) without reporting")]
    NoReport { path: PathBuf, status: String },
    #[error("the monitor's report is not understood: {0:?}")]
    BadReport(String),
    #[error("reading the monitor's report: {0}")]
    Io(#[source] std::io::Error),
}

/// The file the monitor's late errors (after its report) go to, in the container's
/// directory.
pub const MONITOR_LOG: &str = "monitor.log";

/// The sync descriptor's number in the monitor.
const SYNC_FD: i32 = 3;

/// `$OXCART_MONITOR`, else `oxcart-monitor` next to the running executable (how it
/// is installed and how cargo builds it), else on `$PATH`.
pub fn find_monitor() -> Result<PathBuf, MonitorError> {
    if let Some(p) = std::env::var_os("OXCART_MONITOR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(MonitorError::BadEnv(p))
        };
    }
    let exe = crate::paths::self_exe().unwrap_or_default();
    if let Some(dir) = exe.parent() {
        let p = dir.join("oxcart-monitor");
        if is_executable(&p) {
            return Ok(p);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("oxcart-monitor"))
        .find(|p| is_executable(p))
        .ok_or(MonitorError::NotFound { exe })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The monitor's command line for `a` (docs/engine.md).
pub fn monitor_argv(a: &MonitorArgs) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let mut flag = |f: &str, val: OsString| {
        v.push(f.into());
        v.push(val);
    };
    flag("--id", a.id.clone().into());
    flag("--ctr-dir", a.ctr_dir.clone().into());
    flag("--bundle", a.bundle.clone().into());
    flag("--runtime", a.runtime.clone().into());
    for r in &a.runtime_args {
        flag("--runtime-arg", r.clone());
    }
    flag("--runtime-root", a.runtime_root.clone().into());
    flag(
        "--log-driver",
        match a.log_driver {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
        .into(),
    );
    if let Some(n) = a.log_max_size {
        flag("--log-max-size", n.to_string().into());
    }
    if let Some(n) = a.log_max_file {
        flag("--log-max-file", n.to_string().into());
    }
    for f in &a.oom_files {
        flag("--oom-file", f.clone().into());
    }
    flag("--sync-fd", SYNC_FD.to_string().into());
    for arg in &a.exit_command {
        flag("--exit-command", arg.clone());
    }
    if a.stop_signal > 0 {
        flag("--stop-signal", a.stop_signal.to_string().into());
    }
    flag("--stop-timeout", a.stop_timeout.to_string().into());
    if let Some(h) = &a.health {
        flag("--health-process", h.process.clone().into());
        flag("--health-interval", h.interval_ns.to_string().into());
        flag("--health-timeout", h.timeout_ns.to_string().into());
        flag(
            "--health-start-period",
            h.start_period_ns.to_string().into(),
        );
        flag(
            "--health-start-interval",
            h.start_interval_ns.to_string().into(),
        );
        flag("--health-retries", h.retries.to_string().into());
        let action = if h.on_failure.is_empty() {
            "none"
        } else {
            &h.on_failure
        };
        flag("--health-on-failure", action.into());
    }
    if let Some(d) = &a.events_dir {
        flag("--events-dir", d.clone().into());
        flag("--events-max-size", a.events_max_size.to_string().into());
        for (k, val) in &a.event_attrs {
            flag("--event-attr", format!("{k}={val}").into());
        }
    }
    for (on, f) in [
        (a.tty, "--tty"),
        (a.stdin, "--stdin"),
        (a.stdin_once, "--stdin-once"),
    ] {
        if on {
            v.push(f.into());
        }
    }
    v
}

/// Starts the monitor for `a` and waits until the container is created: returns
/// the monitor's and the container's pids, or the runtime's error.
pub fn spawn(a: &MonitorArgs) -> Result<Started, MonitorError> {
    let path = find_monitor()?;
    let (read_end, write_end) = pipe().map_err(MonitorError::Io)?;
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(a.ctr_dir.join(MONITOR_LOG))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut cmd = Command::new(&path);
    cmd.args(monitor_argv(a))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let w = write_end.as_raw_fd();
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if w == SYNC_FD {
                // dup2 onto itself keeps close-on-exec; clear it instead.
                if libc::fcntl(w, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(w, SYNC_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| MonitorError::Spawn {
        path: path.clone(),
        source,
    })?;
    drop(cmd);
    drop(write_end);
    // The monitor forks at once and its first process exits: reap it.
    let status = child.wait().map_err(MonitorError::Io)?;
    let mut report = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut report)
        .map_err(MonitorError::Io)?;
    if report.trim().is_empty() {
        return Err(MonitorError::NoReport {
            path,
            status: status.to_string(),
        });
    }
    parse_report(report.trim())
}

fn parse_report(report: &str) -> Result<Started, MonitorError> {
    let v: serde_json::Value =
        serde_json::from_str(report).map_err(|_| MonitorError::BadReport(report.into()))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(MonitorError::Runtime(e.to_string()));
    }
    let pid = |k: &str| {
        v.get(k)
            .and_then(|p| p.as_i64())
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 0)
    };
    match (pid("monitor_pid"), pid("pid")) {
        (Some(monitor_pid), Some(ctr_pid)) => Ok(Started {
            monitor_pid,
            ctr_pid,
        }),
        _ => Err(MonitorError::BadReport(report.into())),
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(
            parse_report(r#"{"pid":12,"monitor_pid":7}"#).unwrap(),
            Started {
                monitor_pid: 7,
                ctr_pid: 12
            }
        );
        match parse_report(r#"{"error":"exec: \"x\": not found"}"#) {
            Err(MonitorError::Runtime(m)) => assert_eq!(m, "exec: \"x\": not found"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_report("{\"pid\":0}"),
            Err(MonitorError::BadReport(_))
        ));
    }

    #[test]
    fn argv_order_keeps_exit_command() {
        let a = MonitorArgs {
            id: "c".into(),
            exit_command: vec!["oxcart".into(), "container".into(), "cleanup".into()],
            log_max_file: Some(3),
            ..Default::default()
        };
        let v = monitor_argv(&a);
        let exit: Vec<&OsString> = v
            .windows(2)
            .filter(|w| w[0] == "--exit-command")
            .map(|w| &w[1])
            .collect();
        assert_eq!(exit, ["oxcart", "container", "cleanup"]);
        assert!(v
            .windows(2)
            .any(|w| w[0] == "--log-max-file" && w[1] == "3"));
    }
}
