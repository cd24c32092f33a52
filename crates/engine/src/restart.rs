//! Restart policies, the engine's side (docs/engine.md "Restart policies"): the
//! monitor applies them (monitor/src/restart.rs); the engine writes the policy it
//! reads, the user's stop/kill markers it obeys, and brings containers back after a
//! reboot (`system boot`, docker's daemon restore).

use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use crate::etcfiles::write_atomic;
use crate::lock::CtrLock;
use crate::record::{ExitInfo, Record};
use crate::state::{
    boot_id, monitor_alive, read_exit, read_monitor, CANCELED_FILE, EXIT_FILE, POLICY_FILE,
    RESTART_FILE, STOPPED_FILE,
};
use crate::types::RestartPolicy;
use std::path::Path;

/// docker's daemon checks of a restart policy at create and update.
pub fn validate(p: &RestartPolicy, auto_remove: bool) -> Result<()> {
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(EngineError::Invalid(format!(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure', got '{}'",
                    p.name
                )));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(EngineError::Invalid(
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                ));
            }
        }
        n => {
            return Err(EngineError::Invalid(format!(
                "invalid restart policy: unknown policy '{n}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(EngineError::Invalid(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

/// The policy in docker's CLI syntax, as the monitor reads it.
pub fn policy_text(p: &RestartPolicy) -> String {
    match p.name.as_str() {
        "on-failure" if p.maximum_retry_count > 0 => {
            format!("on-failure:{}", p.maximum_retry_count)
        }
        "" => "no".into(),
        n => n.to_string(),
    }
}

/// `no` is the monitor's reading of a missing file: most containers (every `--rm`
/// one) then cost no inode for it — on a no-journal ext4 each new inode scans past
/// the recently deleted ones (docs/benchmarks.md).
pub(crate) fn write_policy(dir: &Path, p: &RestartPolicy) -> Result<()> {
    let text = policy_text(p);
    if text == "no" {
        return remove_file(&dir.join(POLICY_FILE));
    }
    write_atomic(&dir.join(POLICY_FILE), text.as_bytes())
}

/// docker's `RestartManager.ShouldRestart` for a container that is not running
/// (its decision at daemon start): the policy, the last exit code, whether the
/// user stopped it and how many restarts it had.
pub fn should_restart(p: &RestartPolicy, exit_code: i64, stopped: bool, count: i64) -> bool {
    match p.name.as_str() {
        "always" => true,
        "unless-stopped" => !stopped,
        "on-failure" => {
            (p.maximum_retry_count == 0 || count < p.maximum_retry_count) && exit_code != 0
        }
        _ => false,
    }
}

/// Remove a file; one already gone is fine.
pub(crate) fn remove_file(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(p)(e)),
        _ => Ok(()),
    }
}

fn touch(p: &Path) -> Result<()> {
    std::fs::write(p, b"").map_err(io_err(p))
}

/// A user's stop or kill the monitor must see before it restarts the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStop {
    /// docker's HasBeenManuallyStopped only (a `kill -s` of another signal than
    /// the stop signal, when one is set).
    Stopped,
    /// And docker's ExitOnNext: no policy restarts it (`stop`, `kill`, `rm -f`).
    Canceled,
}

impl Engine {
    /// Leave the user's markers, under the container's lock (so a monitor
    /// restarting the container either sees them or has finished its restart), then
    /// wake the monitor if it waits out a backoff.
    pub(crate) fn mark_user_stop(&mut self, rec: &mut Record, how: UserStop) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        {
            let _lock = CtrLock::acquire(&dir)?;
            touch(&dir.join(STOPPED_FILE))?;
            if how == UserStop::Canceled {
                touch(&dir.join(CANCELED_FILE))?;
            }
        }
        rec.history.stopped_by_user = true;
        self.db.update(rec)?;
        if let Some(m) = read_monitor(&dir)? {
            if monitor_alive(&m, &boot_id()) {
                // SAFETY: plain kill(2) of the monitor we just checked is ours (pid
                // and start time); SIGUSR1 is blocked into its signalfd.
                unsafe { libc::kill(m.pid, libc::SIGUSR1) };
            }
        }
        Ok(())
    }

    /// `update --restart`: the record, and the file a running monitor reads at the
    /// container's next exit.
    pub fn update_restart(&mut self, key: &str, p: &RestartPolicy) -> Result<Record> {
        let rec = self.find(key)?;
        let dir = self.ctr_dir(&rec.id);
        let _lock = CtrLock::acquire(&dir)?;
        let mut rec = self
            .db
            .get(&rec.id)?
            .ok_or_else(|| EngineError::NoSuchContainer(key.to_string()))?;
        // docker's update: its own wording for an --rm container.
        if rec.host_config.auto_remove && !matches!(p.name.as_str(), "" | "no") {
            return Err(EngineError::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        validate(p, false)?;
        rec.host_config.restart_policy = p.clone();
        self.db.update(&rec)?;
        if dir.join(POLICY_FILE).exists() || self.observe(&rec)?.status.is_running() {
            write_policy(&dir, p)?;
        }
        Ok(rec)
    }
}

/// What `system boot` did with one container.
#[derive(Debug, Clone)]
pub struct BootAction {
    pub name: String,
    /// Reclaimed: it ran before the reboot (or its monitor died) and was cleaned up.
    pub reclaimed: bool,
    /// Started again by its policy; `Err` says why that failed.
    pub started: Option<std::result::Result<(), String>>,
}

/// `<runroot>/booted`: `system boot` ran in this boot (`/run` is emptied by a
/// reboot), so a second run does not start again what the user stopped since.
const BOOTED: &str = "booted";

impl Engine {
    /// `system boot`: after a reboot (docker's daemon restore): every container
    /// whose run belongs to a dead monitor — another boot's, or one killed — is
    /// reclaimed (runtime state, mounts, leases, ports: nothing of it is trusted),
    /// then those docker's restart manager would restart come back: `always`,
    /// `unless-stopped` unless the user stopped them, `on-failure` after a failure
    /// with retries left. Containers running in this boot are left alone.
    pub fn boot(&mut self) -> Result<Vec<BootAction>> {
        let marker = self.layout.runroot.join(BOOTED);
        let first = !marker.exists();
        let mut out = Vec::new();
        let mut todo = Vec::new();
        for rec in self.list()? {
            let dir = self.ctr_dir(&rec.id);
            let obs = self.observe(&rec)?;
            let stale = obs.monitor.is_some() && !obs.monitor_alive && !obs.status.is_running();
            // A run cut short (no exit recorded) is what a reboot leaves; one that
            // exited is reclaimed too, in case its cleanup was cut, but not reported.
            let cut = stale && read_exit(&dir)?.is_none();
            if stale {
                self.reclaim(&rec, &dir)?;
            }
            let Some(rec) = self.db.get(&rec.id)? else {
                // --rm: docker removes those at daemon start too.
                continue;
            };
            let obs = self.observe(&rec)?;
            let started_before = obs.monitor.is_some() || rec.history.last_exit.is_some();
            let code = obs.exit.as_ref().map(|e| e.exit_code).unwrap_or(0);
            let wanted = first
                && !obs.status.is_running()
                && started_before
                && should_restart(
                    &rec.host_config.restart_policy,
                    code,
                    dir.join(STOPPED_FILE).exists(),
                    obs.restart_count,
                );
            if wanted {
                todo.push(rec.clone());
            }
            if cut || wanted {
                out.push(BootAction {
                    name: rec.name.clone(),
                    reclaimed: cut,
                    started: None,
                });
            }
        }
        // Containers sharing another's network namespace start after it (docker
        // waits for the ones a container depends on).
        todo.sort_by_key(|r| r.host_config.network_mode.starts_with("container:"));
        for rec in todo {
            let r = match self.start_prepare(&rec.id) {
                Ok(crate::start::StartOutcome::Starting(s)) => s.finish().map(drop),
                Ok(crate::start::StartOutcome::AlreadyRunning(_)) => Ok(()),
                Err(e) => Err(e),
            };
            if let Some(a) = out.iter_mut().find(|a| a.name == rec.name) {
                a.started = Some(r.map_err(|e| e.to_string()));
            }
        }
        std::fs::create_dir_all(&self.layout.runroot).map_err(io_err(&self.layout.runroot))?;
        touch(&marker)?;
        Ok(out)
    }

    /// A run whose monitor is gone: record its end (255, docker's exit code of a
    /// container that did not survive the daemon) and undo everything it held.
    fn reclaim(&mut self, rec: &Record, dir: &Path) -> Result<()> {
        if read_exit(dir)?.is_none() {
            let obs = self.observe(rec)?;
            let e = ExitInfo {
                exit_code: obs.exit.as_ref().map(|e| e.exit_code).unwrap_or(255),
                finished_at: crate::time::now(),
                oom_killed: false,
                error: obs.error.clone(),
            };
            let json = serde_json::to_vec(&e).map_err(|e| EngineError::Invalid(e.to_string()))?;
            write_atomic(&dir.join(EXIT_FILE), &json)?;
        }
        // The monitor's restarts ended with it.
        if let Some(mut r) = crate::state::read_restart(dir)? {
            if r.restarting {
                r.restarting = false;
                let v = serde_json::json!({
                    "restart_count": r.restart_count, "restarting": false,
                    "exit_code": r.exit_code, "finished_at": r.finished_at,
                    "oom_killed": r.oom_killed,
                });
                write_atomic(&dir.join(RESTART_FILE), v.to_string().as_bytes())?;
            }
        }
        self.cleanup(&rec.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, n: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: n,
        }
    }

    #[test]
    fn boot_decisions_are_the_restart_managers() {
        assert!(should_restart(&p("always", 0), 0, true, 5));
        assert!(should_restart(&p("unless-stopped", 0), 255, false, 0));
        assert!(!should_restart(&p("unless-stopped", 0), 255, true, 0));
        assert!(should_restart(&p("on-failure", 0), 255, false, 9));
        assert!(!should_restart(&p("on-failure", 3), 255, false, 3));
        assert!(!should_restart(&p("on-failure", 3), 0, false, 0));
        assert!(!should_restart(&p("no", 0), 255, false, 0));
    }

    #[test]
    fn policies_are_checked_as_dockers_daemon() {
        assert!(validate(&p("always", 0), true).is_err());
        assert!(validate(&p("always", 2), false).is_err());
        assert!(validate(&p("on-failure", -1), false).is_err());
        assert!(validate(&p("sometimes", 0), false).is_err());
        assert!(validate(&p("on-failure", 2), false).is_ok());
        assert_eq!(policy_text(&p("on-failure", 2)), "on-failure:2");
        assert_eq!(policy_text(&p("", 0)), "no");
    }
}
