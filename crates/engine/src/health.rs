//! Healthchecks, the engine's side (docs/engine.md "Healthchecks"): docker's checks
//! of a `HealthConfig`, the probe's process file and timings handed to the monitor
//! (which runs the probes: monitor/src/health.rs), and podman's `healthcheck run`.

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::etcfiles::write_atomic;
use crate::exec::ExecOptions;
use crate::monitor::HealthArgs;
use crate::record::Record;
use crate::state::{boot_id, monitor_alive, read_health, Status};
use crate::types::HealthConfig;
use std::path::Path;
use std::time::Duration;

/// docker's defaults (daemon/health.go).
const DEFAULT_INTERVAL: i64 = 30_000_000_000;
const DEFAULT_TIMEOUT: i64 = 30_000_000_000;
const DEFAULT_START_INTERVAL: i64 = 5_000_000_000;
const DEFAULT_RETRIES: i64 = 3;
/// docker's `MinimumDuration`.
const MINIMUM_NS: i64 = 1_000_000;

/// The probe's OCI process, in the container's directory.
pub const PROCESS_FILE: &str = "health-process.json";

/// docker's daemon checks (`validateHealthCheck`), and the probe type: docker
/// ignores an unknown one with a warning; here it is an error, never a container
/// silently without its check.
pub fn validate(h: Option<&HealthConfig>) -> Result<()> {
    let Some(h) = h else { return Ok(()) };
    for (v, what) in [
        (h.interval, "Interval"),
        (h.timeout, "Timeout"),
        (h.start_period, "StartPeriod"),
        (h.start_interval, "StartInterval"),
    ] {
        if v != 0 && v < MINIMUM_NS {
            return Err(EngineError::Invalid(format!(
                "{what} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(EngineError::Invalid(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    match h.test.as_deref().unwrap_or_default() {
        [] => Ok(()),
        [kind, ..] if kind == "NONE" => Ok(()),
        [kind] if kind == "CMD" || kind == "CMD-SHELL" => Err(EngineError::Invalid(format!(
            "healthcheck {kind} has no command"
        ))),
        [kind, ..] if kind == "CMD" || kind == "CMD-SHELL" => Ok(()),
        [kind, ..] => Err(EngineError::Invalid(format!(
            "unknown healthcheck type '{kind}' (expected CMD, CMD-SHELL or NONE)"
        ))),
    }
}

/// podman's `--health-on-failure` actions.
pub fn validate_on_failure(s: &str) -> Result<()> {
    match s {
        "" | "none" | "kill" | "restart" | "stop" => Ok(()),
        _ => Err(EngineError::Invalid(format!(
            "invalid on-failure action \"{s}\" for health check: supported actions are none,kill,restart,stop"
        ))),
    }
}

/// The probe's command: CMD's arguments, or CMD-SHELL's string under the
/// container's shell (`Config.Shell`, else `/bin/sh -c`); None without a check.
pub fn probe_command(rec: &Record) -> Option<Vec<String>> {
    let test = rec.config.healthcheck.as_ref()?.test.as_ref()?;
    match test.split_first()? {
        (kind, args) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
        (kind, args) if kind == "CMD-SHELL" && !args.is_empty() => {
            let mut cmd = rec
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            cmd.extend(args.iter().cloned());
            Some(cmd)
        }
        _ => None,
    }
}

fn or(v: i64, default: i64) -> i64 {
    if v == 0 {
        default
    } else {
        v
    }
}

/// For `start`: the probe's process file (the container's own process from its
/// config.json, as docker's exec of a probe: its env, user and working directory,
/// no tty) and the monitor's arguments; None without a healthcheck.
pub(crate) fn monitor_health(dir: &Path, rec: &Record) -> Result<Option<HealthArgs>> {
    let (Some(cmd), Some(h)) = (probe_command(rec), rec.config.healthcheck.as_ref()) else {
        return Ok(None);
    };
    let opts = ExecOptions {
        cmd,
        ..Default::default()
    };
    let p = crate::exec::exec_process(dir, rec, &opts)?;
    let json = serde_json::to_vec(&p).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let path = dir.join(PROCESS_FILE);
    write_atomic(&path, &json)?;
    Ok(Some(HealthArgs {
        process: path,
        interval_ns: or(h.interval, DEFAULT_INTERVAL),
        timeout_ns: or(h.timeout, DEFAULT_TIMEOUT),
        start_period_ns: h.start_period,
        start_interval_ns: or(h.start_interval, DEFAULT_START_INTERVAL),
        retries: or(h.retries, DEFAULT_RETRIES),
        on_failure: rec.health_on_failure.clone(),
    }))
}

/// One probe's outcome for `healthcheck run`.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub exit_code: i64,
    /// The container's health after it.
    pub status: String,
}

impl Engine {
    /// podman's `healthcheck run`: the monitor probes now (so the result lands in
    /// the container's health log, as podman records it) and we read the result.
    pub fn healthcheck_run(&mut self, key: &str) -> Result<ProbeRun> {
        let rec = self.find(key)?;
        if probe_command(&rec).is_none() {
            return Err(EngineError::Invalid(format!(
                "container {} has no defined healthcheck",
                rec.name
            )));
        }
        let obs = self.observe(&rec)?;
        let m = obs.monitor.as_ref().filter(|_| obs.monitor_alive);
        let (Status::Running, Some(m)) = (obs.status, m) else {
            return Err(EngineError::NotRunning(rec.name.clone()));
        };
        let dir = self.ctr_dir(&rec.id);
        let last = |d: &Path| read_health(d, true).and_then(|h| h.log.last().cloned());
        let before = last(&dir);
        if !monitor_alive(m, &boot_id()) {
            return Err(EngineError::NotRunning(rec.name.clone()));
        }
        // SAFETY: kill(2) of our monitor (pid and start time checked); SIGUSR2 is
        // blocked into its signalfd.
        unsafe { libc::kill(m.pid, libc::SIGUSR2) };
        let timeout = rec
            .config
            .healthcheck
            .as_ref()
            .map(|h| or(h.timeout, DEFAULT_TIMEOUT))
            .unwrap_or(DEFAULT_TIMEOUT);
        let wait = Duration::from_nanos(timeout as u64) + Duration::from_secs(10);
        let mut got = None;
        crate::wait::until(wait, || {
            got = last(&dir).filter(|l| Some(l) != before.as_ref());
            got.is_some()
        });
        let entry = got.ok_or_else(|| EngineError::WrongState {
            op: "run the healthcheck of".into(),
            id: rec.name.clone(),
            why: "the monitor did not report a result".into(),
        })?;
        let status = read_health(&dir, true)
            .map(|h| h.status)
            .unwrap_or_default();
        Ok(ProbeRun {
            exit_code: entry.get("ExitCode").and_then(|c| c.as_i64()).unwrap_or(-1),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn checks_are_dockers() {
        assert!(validate(Some(&hc(&["CMD-SHELL", "true"]))).is_ok());
        assert!(validate(Some(&hc(&["NONE"]))).is_ok());
        assert!(validate(Some(&hc(&["CMD"]))).is_err());
        assert!(validate(Some(&hc(&["WHAT", "x"]))).is_err());
        let mut h = hc(&["CMD", "true"]);
        h.interval = 10;
        assert_eq!(
            validate(Some(&h)).unwrap_err().to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert!(validate_on_failure("restart").is_ok());
        assert!(validate_on_failure("reboot").is_err());
    }
}
