//! A container's status, derived from the monitor's files, whether its process lives,
//! and (only when the monitor died) the runtime's state — never from a stored field, so
//! a crash anywhere leaves something the next command reads truthfully
//! (docs/engine.md, "Status is derived").

use crate::error::{io_err, Result};
use crate::record::{ExitInfo, MonitorInfo, Record};
use crate::runtime::Runtime;
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
}

pub const MONITOR_FILE: &str = "monitor.json";
pub const EXIT_FILE: &str = "exit.json";
/// Present while the container is paused (written after the runtime's `pause`
/// succeeded): `ps` then needs no runtime call to tell paused from running.
pub const PAUSED_FILE: &str = "paused";

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        // A file that does not parse was not written by an atomic rename of ours
        // (a disk error, a hand edit): treated as absent, so the state falls back to
        // the runtime's word rather than failing every command on this container.
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

pub fn read_monitor(ctr_dir: &Path) -> Result<Option<MonitorInfo>> {
    read_json(&ctr_dir.join(MONITOR_FILE))
}

pub fn read_exit(ctr_dir: &Path) -> Result<Option<ExitInfo>> {
    read_json(&ctr_dir.join(EXIT_FILE))
}

/// This boot's id: a `monitor.json` from another boot describes processes that are gone.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks), or None if no such
/// process. The command name (field 2) may hold spaces and parentheses: split after
/// the last `)`.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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
    let monitor = read_monitor(ctr_dir)?;
    let exit = read_exit(ctr_dir)?;
    let mut o = Observed {
        status: Status::Created,
        pid: 0,
        monitor_alive: false,
        exit: exit.clone().or_else(|| rec.history.last_exit.clone()),
        started_at: String::new(),
        error: rec.history.error.clone(),
        monitor: monitor.clone(),
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
        o.status = if ctr_dir.join(PAUSED_FILE).exists() {
            Status::Paused
        } else {
            Status::Running
        };
        return Ok(o);
    }
    o.status = Status::Exited;
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
            o.error = "oxcart-monitor died: the container runs without log or exit code collection; stop or rm -f it".into();
        }
        _ => {
            o.error = "oxcart-monitor died: the container's exit code is unknown".into();
        }
    }
    Ok(o)
}
