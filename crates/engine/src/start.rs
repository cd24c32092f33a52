//! `start` (and `run`'s second half): mount the snapshot, write the bundle, hand the
//! container to a new monitor, then — once the caller has attached, if it will —
//! release it with the runtime's `start`. Any failure undoes what this start did.

use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use crate::etcfiles::{self, write_atomic};
use crate::lock::CtrLock;
use crate::record::Record;
use crate::runtime::Runtime;
use crate::snapshot::Snapshot;
use crate::state::{
    Status, CANCELED_FILE, EXIT_FILE, MONITOR_FILE, PAUSED_FILE, RESTART_FILE, STOPPED_FILE,
};
use std::path::{Path, PathBuf};

/// A container the monitor has created but the runtime has not started: attach now,
/// then [`Starting::finish`]. Dropped unfinished, it is torn down.
pub struct Starting<'e> {
    engine: &'e mut Engine,
    pub record: Record,
    pub monitor_pid: i32,
    pub ctr_pid: i32,
    runtime: Runtime,
    lock: Option<CtrLock>,
    done: bool,
}

/// How a start went: it ran, or it was already running (docker's `start` is then a
/// no-op that still prints the name).
pub enum StartOutcome<'e> {
    Starting(Box<Starting<'e>>),
    AlreadyRunning(Box<Record>),
}

/// The cgroup the engine gives a container (`--cgroup-parent` or `/oxcart`), cgroupfs
/// style as docker's default driver on these hosts.
pub fn cgroups_path(rec: &Record) -> String {
    cgroups_path_of(&rec.host_config.cgroup_parent, &rec.id)
}

/// [`cgroups_path`] of a container's id and `--cgroup-parent`.
pub fn cgroups_path_of(cgroup_parent: &str, id: &str) -> String {
    format!("{}/{id}", cgroup_parent_path(cgroup_parent))
}

/// The cgroup a container's cgroup is made in: its `--cgroup-parent`, absolute,
/// or `/oxcart`.
pub fn cgroup_parent_path(cgroup_parent: &str) -> String {
    let parent = cgroup_parent.trim_end_matches('/');
    let parent = if parent.is_empty() { "/oxcart" } else { parent };
    if parent.starts_with('/') {
        parent.to_string()
    } else {
        format!("/{parent}")
    }
}

/// The files whose `oom_kill` counter tells the monitor the container was OOM-killed:
/// v1 `memory.oom_control` where the memory controller is v1 (hybrid hosts), else
/// v2 `memory.events` (kernel ≥ 4.13 both).
pub fn oom_files(cg: &str) -> Vec<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.oom_control").exists() {
        return vec![v1
            .join(cg.trim_start_matches('/'))
            .join("memory.oom_control")];
    }
    let v2 = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Path::new("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup/unified")
    };
    vec![v2.join(cg.trim_start_matches('/')).join("memory.events")]
}

/// docker maps a runtime's exec failure to 127 (not found) or 126 (cannot run).
pub fn classify_runtime_error(op: &str, msg: String) -> EngineError {
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        EngineError::CommandNotFound(format!("OCI runtime {op} failed: {msg}"))
    } else if m.contains("permission denied") || m.contains("exec format error") {
        EngineError::CommandCannotRun(format!("OCI runtime {op} failed: {msg}"))
    } else {
        EngineError::Runtime {
            op: op.to_string(),
            msg,
        }
    }
}

impl Engine {
    /// Everything of `start` up to the runtime's `start`.
    pub fn start_prepare(&mut self, key: &str) -> Result<StartOutcome<'_>> {
        let mut rec = self.find(key)?;
        let dir = self.ctr_dir(&rec.id);
        let lock = CtrLock::acquire(&dir)?;
        // Re-read under the lock: a concurrent rename or cleanup may have changed it.
        rec = self
            .db
            .get(&rec.id)?
            .ok_or_else(|| EngineError::NoSuchContainer(key.to_string()))?;
        let obs = self.observe(&rec)?;
        match obs.status {
            Status::Running | Status::Restarting => {
                return Ok(StartOutcome::AlreadyRunning(Box::new(rec)))
            }
            Status::Paused => {
                return Err(EngineError::WrongState {
                    op: "start".into(),
                    id: rec.name.clone(),
                    why: "the container is paused: unpause it".into(),
                })
            }
            _ => {}
        }
        let runtime = self.runtime_of(&rec)?;
        // A previous run's leftovers (its monitor died before cleanup): clear them.
        self.teardown_run(&rec, &runtime)?;
        // A user's start begins a new restart manager (docker's
        // ResetRestartManager(true)): no count, no stop markers.
        for f in [RESTART_FILE, STOPPED_FILE, CANCELED_FILE] {
            crate::restart::remove_file(&dir.join(f))?;
        }
        rec.history.restart_count = 0;
        let started = self.launch(&rec, &runtime, &dir);
        let (monitor_pid, ctr_pid) = match started {
            Ok(p) => p,
            Err(e) => {
                let _ = self.teardown_run(&rec, &runtime);
                let _ = self.volumes_release(&rec);
                // docker keeps a failed start's reason in `State.Error`.
                rec.history.error = e.to_string();
                let _ = self.db.update(&rec);
                return Err(e);
            }
        };
        rec.history.stopped_by_user = false;
        rec.history.error.clear();
        self.db.update(&rec)?;
        Ok(StartOutcome::Starting(Box::new(Starting {
            engine: self,
            record: rec,
            monitor_pid,
            ctr_pid,
            runtime,
            lock: Some(lock),
            done: false,
        })))
    }

    /// Mount, write the bundle, spawn the monitor (which runs the runtime's create).
    fn launch(&mut self, rec: &Record, runtime: &Runtime, dir: &Path) -> Result<(i32, i32)> {
        let lowers = match self.layers_hint.take() {
            Some((image_id, dirs)) if image_id == rec.image_id => dirs,
            _ => {
                let images = self.open_images()?;
                let img = images.find(&rec.image_id)?;
                images.layer_dirs(&img)
            }
        };
        let snap = Snapshot::open(dir)?;
        // A `--rm` container's layer is deleted when it exits: no syncfs at unmount.
        if rec.host_config.auto_remove {
            snap.mount_volatile(&lowers)?;
        } else {
            snap.mount(&lowers)?;
        }
        // Volumes as binds of their `_data`, made ready (mounted, copied up) first.
        let (host_config, _vol_locks) = self.volumes_for_start(rec, &dir.join("rootfs"))?;
        let (netns, own) = self.netns_for(rec)?;
        etcfiles::write_all(dir, rec, own)?;
        if let Some(other) = rec.host_config.network_mode.strip_prefix("container:") {
            // docker shares the joined container's resolv.conf: on a user network, the
            // same resolver and so the same names.
            let from = self.ctr_dir(&self.find(other)?.id).join("resolv.conf");
            if let Ok(b) = std::fs::read(&from) {
                write_atomic(&dir.join("resolv.conf"), &b)?;
            }
        }
        let cg = cgroups_path(rec);
        let spec = crate::spec::build(&crate::spec::SpecInput {
            id: &rec.id,
            config: &rec.config,
            host_config: &host_config,
            rootfs: &dir.join("rootfs"),
            container_dir: dir,
            cgroups_path: &cg,
            network: netns,
            seccomp_profile: None,
            init_path: None,
        })?;
        let json = serde_json::to_vec_pretty(&spec)
            .map_err(|e| EngineError::Invalid(format!("config.json: {e}")))?;
        write_atomic(&dir.join("config.json"), &json)?;
        std::fs::create_dir_all(runtime.root()).map_err(io_err(runtime.root()))?;
        crate::paths::spread_subdirs(runtime.root());
        crate::restart::write_policy(dir, &rec.host_config.restart_policy)?;
        let health = crate::health::monitor_health(dir, rec)?;
        let exe = crate::paths::self_exe().map_err(io_err("/proc/self/exe"))?;
        let lc = &rec.host_config.log_config;
        let args = crate::monitor::MonitorArgs {
            id: rec.id.clone(),
            ctr_dir: dir.to_path_buf(),
            bundle: dir.to_path_buf(),
            runtime: runtime.path.clone(),
            runtime_args: runtime.args.iter().map(Into::into).collect(),
            runtime_root: runtime.root().to_path_buf(),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            log_driver: if lc.kind == "none" {
                crate::monitor::LogDriver::None
            } else {
                crate::monitor::LogDriver::JsonFile
            },
            log_max_size: lc
                .config
                .get("max-size")
                .map(|s| parse_size(s))
                .transpose()?,
            log_max_file: lc
                .config
                .get("max-file")
                .map(|s| parse_max_file(s))
                .transpose()?,
            oom_files: oom_files(&cg),
            exit_command: vec![
                exe.into_os_string(),
                "--root".into(),
                self.layout.root.clone().into_os_string(),
                "--runroot".into(),
                self.layout.runroot.clone().into_os_string(),
                "container".into(),
                "cleanup".into(),
                rec.id.clone().into(),
            ],
            stop_signal: crate::stop::signal_number(&rec.config.stop_signal)?,
            stop_timeout: rec
                .config
                .stop_timeout
                .unwrap_or(crate::stop::DEFAULT_STOP_TIMEOUT),
            health,
            events_dir: Some(self.layout.events_dir()),
            events_max_size: self.config.events_max_size(),
            event_attrs: crate::events::container_attrs(rec),
        };
        let started = crate::monitor::spawn(&args).map_err(|e| match e {
            crate::monitor::MonitorError::Runtime(msg) => classify_runtime_error("create", msg),
            e => EngineError::Invalid(format!("oxcart-monitor: {e}")),
        })?;
        Ok((started.monitor_pid, started.ctr_pid))
    }

    /// The network namespace a container joins, and its address on a bridge network.
    fn netns_for(&self, rec: &Record) -> Result<(crate::spec::NetNs, Option<etcfiles::OwnAddr>)> {
        let mode = rec.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok((crate::spec::NetNs::Host, None));
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.find(other)?;
            let obs = self.observe(&o)?;
            if obs.status != Status::Running || obs.pid <= 0 {
                return Err(EngineError::WrongState {
                    op: "join the network of".into(),
                    id: o.name,
                    why: "it is not running".into(),
                });
            }
            return Ok((
                crate::spec::NetNs::Path(PathBuf::from(format!("/proc/{}/ns/net", obs.pid))),
                None,
            ));
        }
        Ok(match crate::network::setup(&self.layout, rec)? {
            Some((path, ep, embedded_dns)) => {
                self.emit_net_connect("connect", &rec.id, &ep.network);
                (
                    crate::spec::NetNs::Path(path),
                    Some(etcfiles::OwnAddr {
                        embedded_dns,
                        ip: ep.ip,
                        gateway: ep.network.gateway.parse().map_err(|_| {
                            EngineError::Invalid(format!(
                                "network {}: bad gateway",
                                ep.network.name
                            ))
                        })?,
                    }),
                )
            }
            None => (crate::spec::NetNs::New, None),
        })
    }

    /// Undo a run: the runtime's container, the mount, the run's files. Idempotent:
    /// cleanup, `rm` and a new `start` all call it for whatever is left.
    pub(crate) fn teardown_run(&self, rec: &Record, runtime: &Runtime) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        // The runtime can know the container only if a start wrote its bundle:
        // config.json is written before the monitor (hence the runtime's `create`)
        // runs, and never removed. A container never started needs no runtime call.
        if dir.join("config.json").exists() {
            runtime.delete_if_exists(&rec.id)?;
        }
        Snapshot::open(&dir)?.unmount()?;
        crate::network::release_for_mode(&self.layout, &rec.id, &rec.host_config.network_mode)?;
        for f in [MONITOR_FILE, EXIT_FILE, PAUSED_FILE, "pidfile"] {
            match std::fs::remove_file(dir.join(f)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(dir.join(f))(e)),
            }
        }
        Ok(())
    }
}

impl Starting<'_> {
    /// The runtime's `start`: the container's process runs from here on.
    pub fn finish(mut self) -> Result<Record> {
        // docker: the volumes' `mount` (after an `attach`), then `start` — written
        // before the process is released, so a container that exits at once cannot
        // have its monitor's `die` land first. If the start fails, the abort kills
        // the init and the monitor's `die` follows.
        self.engine.emit_volume_mounts("mount", &self.record);
        self.engine.emit_ctr(&self.record, "start", &[]);
        let r = self.runtime.start(&self.record.id);
        self.done = true;
        if let Err(EngineError::Runtime { msg, .. }) = r {
            self.abort();
            return Err(classify_runtime_error("start", msg));
        }
        r?;
        self.lock.take();
        Ok(self.record.clone())
    }

    pub fn ctr_dir(&self) -> PathBuf {
        self.engine.ctr_dir(&self.record.id)
    }

    /// docker's `attach` event, for a caller that attached before the start.
    pub fn emit_attach(&self) {
        self.engine.emit_ctr(&self.record, "attach", &[]);
    }

    fn abort(&mut self) {
        let _ = self.runtime.kill(&self.record.id, "KILL", true);
        // The monitor sees init die, writes exit.json and runs cleanup (which waits
        // for our lock); tear down what is ours now so the state is clean at once.
        let _ = self.engine.teardown_run(&self.record, &self.runtime);
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.abort();
        }
    }
}

/// docker's `max-size`: a number with an optional k, m or g (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match &t[i..] {
                "b" => 1,
                "k" | "kb" => 1 << 10,
                "m" | "mb" => 1 << 20,
                "g" | "gb" => 1 << 30,
                _ => 0,
            };
            (&t[..i], m)
        }
        None => (t.as_str(), 1),
    };
    match (num.parse::<f64>(), mul) {
        (Ok(n), m) if m > 0 && n > 0.0 => Ok((n * m as f64) as u64),
        _ => Err(EngineError::Invalid(format!(
            "--log-opt max-size={s}: invalid size (a positive number with k, m or g)"
        ))),
    }
}

fn parse_max_file(s: &str) -> Result<u32> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(EngineError::Invalid(format!(
            "--log-opt max-file={s}: must be a positive number"
        ))),
    }
}
