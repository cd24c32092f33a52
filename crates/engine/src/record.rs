//! A container's record: what was asked (docker's `Config`/`HostConfig`) and what the
//! engine itself decided (id, name, image, the resolved command, the runtime). Kept as
//! JSON in `containers.db`; whether the container runs is never stored here but derived
//! (state.rs).

use crate::types::{Config, HostConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// `sha256:…` of the image config.
    pub image_id: String,
    pub config: Config,
    pub host_config: HostConfig,
    /// docker's `Path` and `Args`: the resolved Entrypoint + Cmd.
    pub path: String,
    pub args: Vec<String>,
    /// The runtime's name (`oxcart-runtime`, `runc`, a configured name or a path).
    pub runtime: String,
    #[serde(default)]
    pub history: History,
    /// The container's volumes, resolved at `create` (volumes.rs): what `start`
    /// mounts, `rm -v` removes and `volume rm` finds in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<crate::volumes::VolumeMount>,
    /// podman's `--health-on-failure` (docker has no such field): `none`, `kill`,
    /// `restart` or `stop`; empty is `none`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_on_failure: String,
}

/// What happened to the container over its life that the monitor's files do not
/// keep across runs: docker shows these after a restart too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub restart_count: i64,
    /// The last run's end, copied from `exit.json` by cleanup, so a new start (which
    /// removes `exit.json`) keeps `FinishedAt` as docker does.
    #[serde(default)]
    pub last_exit: Option<ExitInfo>,
    /// A start failed after the monitor had made the container, or cleanup failed:
    /// docker's `State.Error`.
    #[serde(default)]
    pub error: String,
    /// `stop`/`kill` asked by the user: a restart policy must not undo it.
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// `exit.json`, as the monitor writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExitInfo {
    pub exit_code: i64,
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// Set by the engine, not the monitor: why the exit is not the container's own
    /// (the monitor died, the host rebooted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `monitor.json`, as the monitor writes it once the container exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitorInfo {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: a reused pid is not our monitor.
    pub start_time: u64,
    pub boot_id: String,
    pub ctr_pid: i32,
    pub started_at: String,
}
