//! `stop`, `kill`, `wait`, `pause`, `unpause`, `restart`: signals go through the
//! runtime; the exit is the monitor's to record. None of these holds the container's
//! lock while it waits, since the monitor's cleanup takes that lock.

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::{ExitInfo, Record};
use crate::restart::UserStop;
use crate::state::{read_exit, read_restart, Observed, Status, PAUSED_FILE};
use crate::wait::{until, wait_pid_exit};
use std::time::Duration;

/// docker's default `stop` timeout.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl Engine {
    /// Send a signal (`kill -s`); the container must run.
    pub fn kill(&mut self, key: &str, signal: &str) -> Result<Record> {
        let mut rec = self.find(key)?;
        let obs = self.observe(&rec)?;
        if !obs.status.is_running() {
            return Err(EngineError::NotRunning(rec.id.clone()));
        }
        let sig = normalise_signal(signal)?;
        // docker's killWithSignal: every kill is the user's (HasBeenManuallyStopped);
        // SIGKILL, the stop signal, or any signal when none is set also cancels the
        // restart policy (ExitOnNext).
        let n = signal_number(&sig)?;
        let cancels = n == libc::SIGKILL
            || rec.config.stop_signal.is_empty()
            || signal_number(&rec.config.stop_signal)? == n;
        let how = if cancels {
            UserStop::Canceled
        } else {
            UserStop::Stopped
        };
        self.mark_user_stop(&mut rec, how)?;
        let obs = self.observe(&rec)?;
        if obs.status == Status::Restarting || !obs.status.is_running() {
            // Nothing to signal: the monitor, woken, ends the pending restart.
            return Ok(rec);
        }
        // Before the signal: the monitor's `die` it may cause must come after it.
        self.emit_ctr(&rec, "kill", &[("signal", &n.to_string())]);
        self.runtime_of(&rec)?.kill(&rec.id, &sig, false)?;
        if obs.status == Status::Paused && (sig == "KILL" || sig == "9") {
            // A frozen process gets SIGKILL only once thawed.
            let _ = self.runtime_of(&rec)?.resume(&rec.id);
        }
        Ok(rec)
    }

    /// `stop -t N`: the stop signal, then SIGKILL after the timeout; returns once the
    /// container has exited and its exit is recorded.
    pub fn stop(&mut self, key: &str, timeout: Option<i64>) -> Result<Record> {
        self.stop_with_signal(key, timeout, None)
    }

    /// `stop -s SIG`: this stop's signal instead of the container's (docker ≥ 23).
    pub fn stop_with_signal(
        &mut self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<Record> {
        let mut rec = self.find(key)?;
        if !self.observe(&rec)?.status.is_running() {
            return Ok(rec);
        }
        self.mark_user_stop(&mut rec, UserStop::Canceled)?;
        let obs = self.observe(&rec)?;
        if obs.status == Status::Restarting {
            // docker's stop of a restarting container: the pending restart is
            // cancelled and the monitor, woken by the markers, ends it.
            self.wait_recorded(&rec, &obs)?;
            return Ok(rec);
        }
        if !obs.status.is_running() {
            return Ok(rec);
        }
        let rt = self.runtime_of(&rec)?;
        if obs.status == Status::Paused {
            rt.resume(&rec.id)?;
            let _ = std::fs::remove_file(self.ctr_dir(&rec.id).join(PAUSED_FILE));
        }
        let t = timeout
            .or(rec.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let sig = match signal {
            Some(s) => normalise_signal(s)?,
            None if rec.config.stop_signal.is_empty() => "TERM".to_string(),
            None => normalise_signal(&rec.config.stop_signal)?,
        };
        if t != 0 {
            // The process may be gone already; its exit is what we wait for below.
            self.emit_ctr(
                &rec,
                "kill",
                &[("signal", &signal_number(&sig)?.to_string())],
            );
            let _ = rt.kill(&rec.id, &sig, false);
        }
        let grace = if t < 0 {
            None
        } else {
            Some(Duration::from_secs(t as u64))
        };
        if !wait_pid_exit(obs.pid, grace) {
            self.emit_ctr(&rec, "kill", &[("signal", "9")]);
            let _ = rt.kill(&rec.id, "KILL", true);
            wait_pid_exit(obs.pid, Some(Duration::from_secs(10)));
        }
        self.wait_recorded(&rec, &obs)?;
        self.emit_ctr(&rec, "stop", &[]);
        Ok(rec)
    }

    /// After the container's init is gone: wait for the monitor to record the exit
    /// and clean up; if the monitor is dead, record and clean up ourselves.
    pub(crate) fn wait_recorded(&mut self, rec: &Record, obs: &Observed) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        if obs.monitor_alive {
            let pid = obs.monitor.as_ref().map(|m| m.pid).unwrap_or(0);
            // The monitor exits after its cleanup ran (the record may be gone: --rm).
            wait_pid_exit(pid, Some(Duration::from_secs(30)));
            return Ok(());
        }
        until(Duration::from_secs(2), || {
            dir.join(crate::state::EXIT_FILE).exists()
        });
        if read_exit(&dir)?.is_none() {
            let e = ExitInfo {
                exit_code: 137,
                finished_at: crate::time::now(),
                oom_killed: false,
                error: obs.error.clone(),
            };
            let json = serde_json::to_vec(&e).map_err(|e| EngineError::Invalid(e.to_string()))?;
            crate::etcfiles::write_atomic(&dir.join(crate::state::EXIT_FILE), &json)?;
            // The monitor that would have said it is dead.
            self.emit_ctr(rec, "die", &[("exitCode", "137")]);
        }
        self.cleanup(&rec.id)
    }

    /// `wait`: block until the container is not running; its exit code.
    pub fn wait(&mut self, key: &str) -> Result<i64> {
        let rec = self.find(key)?;
        loop {
            let obs = self.observe(&rec)?;
            if !obs.status.is_running() {
                if obs.status == Status::Created && obs.exit.is_none() {
                    // docker's `wait` on a created container waits for it to run
                    // and exit (condition not-running counts created as not running:
                    // it returns at once with 0).
                    return Ok(0);
                }
                return Ok(obs.exit.map(|e| e.exit_code).unwrap_or(0));
            }
            if obs.monitor_alive {
                let dir = self.ctr_dir(&rec.id);
                let restarts = |d: &std::path::Path| {
                    read_restart(d)
                        .ok()
                        .flatten()
                        .map(|r| r.restart_count)
                        .unwrap_or(0)
                };
                let before = restarts(&dir);
                if obs.status != Status::Restarting {
                    wait_pid_exit(obs.pid, None);
                }
                let pid = obs.monitor.as_ref().map(|m| m.pid).unwrap_or(0);
                // exit.json is written before the monitor's cleanup; wait for it, or
                // for the restart that follows an exit (docker's wait returns when a
                // container begins restarting too).
                until(Duration::from_secs(30), || {
                    dir.join(crate::state::EXIT_FILE).exists()
                        || restarts(&dir) > before
                        || wait_pid_exit(pid, Some(Duration::ZERO))
                });
                if let Some(e) = read_exit(&dir)? {
                    return Ok(e.exit_code);
                }
                if let Some(r) = read_restart(&dir)?.filter(|r| r.restart_count > before) {
                    return Ok(r.exit_code);
                }
                if obs.status == Status::Restarting {
                    continue;
                }
                if let Ok(Some(r)) = self.db.get(&rec.id) {
                    if let Some(e) = r.history.last_exit {
                        return Ok(e.exit_code);
                    }
                }
            } else {
                wait_pid_exit(obs.pid, None);
            }
        }
    }

    pub fn pause(&mut self, key: &str) -> Result<Record> {
        let rec = self.find(key)?;
        let _lock = crate::lock::CtrLock::acquire(&self.ctr_dir(&rec.id))?;
        match self.observe(&rec)?.status {
            Status::Running => {}
            Status::Restarting => return Err(crate::exec::restarting(&rec.id)),
            Status::Paused => {
                return Err(EngineError::WrongState {
                    op: "pause".into(),
                    id: rec.id.clone(),
                    why: format!("Container {} is already paused", rec.id),
                })
            }
            _ => return Err(EngineError::NotRunning(rec.id.clone())),
        }
        self.runtime_of(&rec)?.pause(&rec.id)?;
        crate::etcfiles::write_atomic(&self.ctr_dir(&rec.id).join(PAUSED_FILE), b"")?;
        self.emit_ctr(&rec, "pause", &[]);
        Ok(rec)
    }

    pub fn unpause(&mut self, key: &str) -> Result<Record> {
        let rec = self.find(key)?;
        let _lock = crate::lock::CtrLock::acquire(&self.ctr_dir(&rec.id))?;
        if self.observe(&rec)?.status != Status::Paused {
            return Err(EngineError::NotPaused(rec.id.clone()));
        }
        self.runtime_of(&rec)?.resume(&rec.id)?;
        let p = self.ctr_dir(&rec.id).join(PAUSED_FILE);
        std::fs::remove_file(&p).map_err(crate::error::io_err(&p))?;
        self.emit_ctr(&rec, "unpause", &[]);
        Ok(rec)
    }
}

/// A signal's number (`TERM`, `SIGTERM`, `15`, `RTMIN+1`); "" is docker's default
/// SIGTERM. The names are the runtime library's table, so the engine and the runtime
/// never disagree on one.
pub fn signal_number(s: &str) -> Result<i32> {
    if s.is_empty() {
        return Ok(libc::SIGTERM);
    }
    let t = normalise_signal(s)?;
    oxcart_container::sys::signal_number(&t)
        .ok_or_else(|| EngineError::Invalid(format!("Invalid signal: {s}")))
}

/// `KILL`, `SIGKILL`, `9` → the runtime's spelling (runc takes names without `SIG`
/// and numbers); anything else is docker's error naming it.
pub fn normalise_signal(s: &str) -> Result<String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_prefix("SIG").unwrap_or(&t).to_string();
    if let Ok(n) = t.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n.to_string());
        }
    }
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
    ];
    if NAMES.contains(&t.as_str()) || t.starts_with("RTMIN") || t.starts_with("RTMAX") {
        return Ok(t);
    }
    Err(EngineError::Invalid(format!("Invalid signal: {s}")))
}
