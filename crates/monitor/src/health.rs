//! docker's healthcheck (moby `daemon/health.go`), run by the monitor: no daemon
//! and no systemd timer. A probe is the runtime's `exec` of the process file the
//! engine wrote; its stdout and stderr share one pipe, of which the first 4096
//! bytes are kept ("..." marks the rest, docker's limitedBuffer); a probe past its
//! timeout is SIGKILLed. The state goes to `health.jsonl` in the container's
//! directory: a first line `{"Status","FailingStreak"}`, then the last five
//! results in docker's `HealthcheckResult` shape, oldest first.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oxcart_jsonlog::Timestamp;

use crate::args::{Args, HealthArgs, OnFailure};
use crate::{json, sys};

pub const FILE: &str = "health.jsonl";
const PIDFILE: &str = "health.pid";
const RUNTIME_LOG: &str = "health-runtime.log";
/// docker's maxOutputLen and maxLogEntries.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

struct Probe {
    pid: libc::pid_t,
    out: Option<OwnedFd>,
    buf: Vec<u8>,
    truncated: bool,
    start: Timestamp,
    start_at: Instant,
    deadline: Instant,
    timed_out: bool,
}

pub struct Health {
    cfg: HealthArgs,
    dir: PathBuf,
    status: Status,
    /// A status the last probe changed to, not yet announced as an event.
    changed: Option<Status>,
    streak: u32,
    log: VecDeque<String>,
    /// When this run of the container started (docker's State.StartedAt).
    run_start: Instant,
    next: Option<Instant>,
    probe: Option<Probe>,
}

/// A status change worth acting on: the container turned unhealthy with a
/// `--health-on-failure` other than `none`.
pub type Action = OnFailure;

impl Health {
    /// The state kept from an earlier run (its results stay, as docker keeps
    /// `Health.Log` across restarts).
    pub fn new(cfg: HealthArgs, dir: &Path) -> Health {
        let log = std::fs::read_to_string(dir.join(FILE))
            .map(|s| {
                s.lines()
                    .skip(1)
                    .filter(|l| l.starts_with('{'))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Health {
            cfg,
            dir: dir.to_path_buf(),
            status: Status::Starting,
            changed: None,
            streak: 0,
            log,
            run_start: Instant::now(),
            next: None,
            probe: None,
        }
    }

    /// A run of the container began: docker's initHealthMonitor (starting, no
    /// failing streak, the first probe one interval away).
    pub fn reset(&mut self) {
        self.kill_probe();
        self.status = Status::Starting;
        self.streak = 0;
        self.run_start = Instant::now();
        self.next = Some(self.run_start + self.interval());
        self.save();
    }

    /// The run ended: no more probes until the next reset.
    pub fn stop(&mut self) {
        self.kill_probe();
        self.next = None;
    }

    /// docker's getInterval: the start interval while starting within the start
    /// period, else the interval.
    fn interval(&self) -> Duration {
        let in_start = self.run_start.elapsed() < Duration::from_nanos(self.cfg.start_period_ns);
        if in_start && self.status == Status::Starting {
            Duration::from_nanos(self.cfg.start_interval_ns)
        } else {
            Duration::from_nanos(self.cfg.interval_ns)
        }
    }

    /// The next moment the loop must wake for: a probe due or a probe's timeout.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) if !p.timed_out => Some(p.deadline),
            Some(_) => None,
            None => self.next,
        }
    }

    pub fn probe_pid(&self) -> Option<libc::pid_t> {
        self.probe.as_ref().map(|p| p.pid)
    }

    pub fn output_fd(&self) -> Option<&OwnedFd> {
        self.probe.as_ref().and_then(|p| p.out.as_ref())
    }

    /// `healthcheck run`: probe now (unless one runs).
    pub fn probe_now(&mut self) {
        if self.probe.is_none() && self.next.is_some() {
            self.next = Some(Instant::now());
        }
    }

    /// Start a due probe, or kill one past its timeout.
    pub fn tick(&mut self, a: &Args, now: Instant) {
        if let Some(p) = &mut self.probe {
            if !p.timed_out && now >= p.deadline {
                p.timed_out = true;
                kill_probe_processes(&self.dir, p.pid);
            }
            return;
        }
        if self.next.is_some_and(|n| now >= n) {
            self.next = None;
            // A frozen container would hold the exec until its timeout: skip the
            // probe while paused (the engine writes `paused` after the freeze).
            if self.dir.join("paused").exists() {
                self.next = Some(now + self.interval());
                return;
            }
            match spawn_probe(a, &self.dir) {
                Ok((pid, out)) => {
                    self.probe = Some(Probe {
                        pid,
                        out: Some(out),
                        buf: Vec::new(),
                        truncated: false,
                        start: Timestamp::now(),
                        start_at: now,
                        deadline: now + Duration::from_nanos(self.cfg.timeout_ns),
                        timed_out: false,
                    })
                }
                Err(msg) => self.record(-1, &msg, Timestamp::now(), now),
            }
        }
    }

    /// The probe's output is readable.
    pub fn read_output(&mut self) {
        let Some(p) = &mut self.probe else { return };
        let Some(fd) = &p.out else { return };
        let mut buf = [0u8; 4096];
        loop {
            match sys::read(fd.as_fd(), &mut buf) {
                Ok(0) => {
                    p.out = None;
                    return;
                }
                Ok(n) => {
                    let keep = (MAX_OUTPUT - p.buf.len()).min(n);
                    p.buf.extend_from_slice(&buf[..keep]);
                    p.truncated |= keep < n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    p.out = None;
                    return;
                }
            }
        }
    }

    /// The status the last probe changed to, once (for the `health_status` event).
    pub fn take_change(&mut self) -> Option<Status> {
        self.changed.take()
    }

    /// The probe's runtime process was reaped: record its result. Returns the
    /// action to take if the container just turned unhealthy.
    pub fn finished(&mut self, status: libc::c_int) -> Option<Action> {
        self.read_output();
        let p = self.probe.take()?;
        let mut out = String::from_utf8_lossy(&p.buf).into_owned();
        if p.truncated {
            out.push_str("...");
        }
        let runtime_error = take_runtime_error(&self.dir);
        let _ = std::fs::remove_file(self.dir.join(PIDFILE));
        let (code, output) = if p.timed_out {
            let t = go_duration(self.cfg.timeout_ns);
            let msg = if out.is_empty() {
                format!("Health check exceeded timeout ({t})")
            } else {
                format!("Health check exceeded timeout ({t}): {out}")
            };
            (-1, msg)
        } else if let Some(msg) = runtime_error {
            // The runtime could not run the probe (docker: the exec's error, -1).
            (-1, msg)
        } else {
            (sys::exit_code(status), out)
        };
        let before = self.status;
        self.record(code, &output, p.start, p.start_at);
        if self.status != before {
            self.changed = Some(self.status);
        }
        let turned = before != Status::Unhealthy && self.status == Status::Unhealthy;
        (turned && self.cfg.on_failure != OnFailure::None).then_some(self.cfg.on_failure)
    }

    /// docker's handleProbeResult, then the next probe one interval after this one.
    fn record(&mut self, code: i32, output: &str, start: Timestamp, start_at: Instant) {
        let end = Timestamp::now();
        self.log.push_back(format!(
            "{{\"Start\":\"{start}\",\"End\":\"{end}\",\"ExitCode\":{code},\"Output\":{}}}",
            json::string(output)
        ));
        while self.log.len() > MAX_LOG {
            self.log.pop_front();
        }
        if code == 0 {
            self.streak = 0;
            self.status = Status::Healthy;
        } else {
            // Failures inside the start period do not count while still starting.
            let since_start = start_at.saturating_duration_since(self.run_start);
            let in_start = self.status == Status::Starting
                && since_start < Duration::from_nanos(self.cfg.start_period_ns);
            if !in_start {
                self.streak += 1;
                if self.streak >= self.cfg.retries.max(1) {
                    self.status = Status::Unhealthy;
                }
            }
        }
        self.save();
        self.next = Some(Instant::now() + self.interval());
    }

    fn save(&self) {
        let mut s = format!(
            "{{\"Status\":\"{}\",\"FailingStreak\":{}}}\n",
            self.status.as_str(),
            self.streak
        );
        for l in &self.log {
            s.push_str(l);
            s.push('\n');
        }
        // A full disk loses one result; the next probe writes the whole state again.
        let _ = crate::write_atomic(&self.dir, FILE, &s);
    }

    fn kill_probe(&mut self) {
        if let Some(p) = self.probe.take() {
            kill_probe_processes(&self.dir, p.pid);
            // Reaped by the loop (we are its parent); its result no longer matters.
        }
        let _ = std::fs::remove_file(self.dir.join(PIDFILE));
        let _ = std::fs::remove_file(self.dir.join(RUNTIME_LOG));
    }
}

/// SIGKILL the probe inside the container (its pid from the runtime's
/// `--pid-file`) and the runtime's exec process, which then exits and is reaped.
fn kill_probe_processes(dir: &Path, runtime_pid: libc::pid_t) {
    if let Some(pid) = std::fs::read_to_string(dir.join(PIDFILE))
        .ok()
        .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
    {
        sys::kill(pid, libc::SIGKILL);
    }
    sys::kill(runtime_pid, libc::SIGKILL);
}

/// `RUNTIME [args] --root R --log L --log-format json exec --process P --pid-file F
/// ID`, stdout and stderr on one pipe as docker's probe buffer takes both.
fn spawn_probe(a: &Args, dir: &Path) -> Result<(libc::pid_t, OwnedFd), String> {
    let Some(h) = &a.health else {
        return Err("no healthcheck".into());
    };
    let _ = std::fs::remove_file(dir.join(PIDFILE));
    let _ = std::fs::remove_file(dir.join(RUNTIME_LOG));
    let (r, w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    sys::set_nonblock(r.as_fd()).map_err(|e| format!("pipe: {e}"))?;
    let w2 = w.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let child = Command::new(&a.runtime)
        .args(&a.runtime_args)
        .arg("--root")
        .arg(&a.runtime_root)
        .arg("--log")
        .arg(dir.join(RUNTIME_LOG))
        .arg("--log-format")
        .arg("json")
        .arg("exec")
        .arg("--process")
        .arg(&h.process)
        .arg("--pid-file")
        .arg(dir.join(PIDFILE))
        .arg(&a.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn()
        .map_err(|e| format!("running {}: {e}", a.runtime.display()))?;
    Ok((child.id() as libc::pid_t, r))
}

/// The runtime's own error for this probe (its json log has an error line only
/// when the runtime, not the probe, failed); the log is removed.
fn take_runtime_error(dir: &Path) -> Option<String> {
    let p = dir.join(RUNTIME_LOG);
    let log = std::fs::read_to_string(&p).ok();
    let _ = std::fs::remove_file(&p);
    json::last_error_msg(&log?)
}

/// Go's `time.Duration.String()` for the timeout message ("30s", "1.5s", "500ms",
/// "1m30s").
pub fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let frac = |v: u64, unit: u64| {
        let whole = v / unit;
        let mut rest = format!("{:0w$}", v % unit, w = unit.ilog10() as usize);
        while rest.ends_with('0') {
            rest.pop();
        }
        if rest.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{rest}")
        }
    };
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let h = ns / 3_600_000_000_000;
    let m = ns / 60_000_000_000 % 60;
    let s = frac(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(dir: &Path, start_period_ns: u64) -> Health {
        let cfg = HealthArgs {
            process: dir.join("p.json"),
            interval_ns: 1_000_000_000,
            timeout_ns: 1_000_000_000,
            start_period_ns,
            start_interval_ns: 1_000_000,
            retries: 2,
            on_failure: OnFailure::Kill,
        };
        let mut h = Health::new(cfg, dir);
        h.reset();
        h
    }

    fn result(h: &mut Health, code: i32) {
        h.record(code, "out", Timestamp::now(), Instant::now());
    }

    fn file(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(FILE))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn docker_handle_probe_result() {
        let d = tempfile::tempdir().unwrap();
        // Inside the start period a failure leaves it starting, with no streak.
        let mut h = health(d.path(), 3_600_000_000_000);
        result(&mut h, 1);
        assert_eq!((h.status, h.streak), (Status::Starting, 0));
        // While starting inside the period, the start interval applies.
        assert_eq!(h.interval(), Duration::from_millis(1));
        result(&mut h, 0);
        assert_eq!((h.status, h.streak), (Status::Healthy, 0));
        assert_eq!(h.interval(), Duration::from_secs(1));
        // Once healthy, failures count even inside the period; `retries` of them
        // make it unhealthy.
        result(&mut h, 1);
        assert_eq!((h.status, h.streak), (Status::Healthy, 1));
        result(&mut h, 3);
        assert_eq!((h.status, h.streak), (Status::Unhealthy, 2));
        for _ in 0..4 {
            result(&mut h, 0);
        }
        let lines = file(d.path());
        assert_eq!(lines[0], r#"{"Status":"healthy","FailingStreak":0}"#);
        assert_eq!(lines.len(), 1 + MAX_LOG, "the last five results");
        // A new run starts again as starting and keeps the log (docker's Health.Log).
        let h2 = Health::new(h.cfg.clone(), d.path());
        assert_eq!(h2.log.len(), MAX_LOG);
    }

    #[test]
    fn a_failure_turning_unhealthy_asks_for_the_action_once_and_output_is_cut() {
        let d = tempfile::tempdir().unwrap();
        let mut h = health(d.path(), 0);
        let probe = |h: &mut Health, big: bool| {
            h.probe = Some(Probe {
                pid: 0,
                out: None,
                buf: vec![b'x'; if big { MAX_OUTPUT } else { 1 }],
                truncated: big,
                start: Timestamp::now(),
                start_at: Instant::now(),
                deadline: Instant::now(),
                timed_out: false,
            });
        };
        // Exit status 1 << 8: exit code 1.
        probe(&mut h, true);
        assert_eq!(h.finished(1 << 8), None);
        probe(&mut h, false);
        assert_eq!(h.finished(1 << 8), Some(OnFailure::Kill));
        probe(&mut h, false);
        assert_eq!(h.finished(1 << 8), None, "already unhealthy");
        let first = file(d.path())[1].clone();
        let v: Vec<&str> = first.split("\"Output\":\"").collect();
        assert_eq!(v[1], format!("{}...\"}}", "x".repeat(MAX_OUTPUT)));
    }

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }
}
