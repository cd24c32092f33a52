//! Docker's container `Config` + `HostConfig` → the OCI `config.json` a runtime runs.
//!
//! What docker's daemon does at create and start (moby `daemon/commit.go` merge,
//! `oci/defaults.go`, `daemon/oci_linux.go`), with podman's default seccomp profile
//! (`/usr/share/containers/seccomp.json`) evaluated as docker evaluates its own.
//! Everything read from the image's rootfs (`/etc/passwd`, `/etc/group`) is opened with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink the image planted cannot reach the host.
//!
//! Known, intended differences from podman (the differential test asserts them):
//! docker's 14 default capabilities (podman: 11), docker's masked/read-only paths, no
//! default rlimits or pids limit (podman: nofile/nproc, pids 2048), `/dev/shm` a tmpfs
//! (podman and docker bind a per-container directory), no `container=podman` env, the
//! init at docker's `/sbin/docker-init` (podman: `/run/podman-init`).

mod caps;
mod merge;
mod mounts;
mod resources;
mod seccomp;
mod user;

pub use caps::{all_capabilities, DEFAULT_CAPABILITIES};
pub use merge::{image_config_from_json, merge_image_config, DEFAULT_PATH};
pub(crate) use resources::build as build_resources;
pub use resources::{apply_daemon_defaults, validate_host_config, DEFAULT_SHM_SIZE};
pub use user::{resolve_user, ExecUser};

use crate::types::{Config, HostConfig};
use oxcart_spec::{Linux, LinuxCapabilities, LinuxNamespace, Process, Root, Spec, User};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where Debian's `golang-github-containers-common` puts podman's default profile.
pub const DEFAULT_SECCOMP_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Where docker mounts the init binary for `--init` (`daemon/oci_linux.go`).
pub const INIT_DESTINATION: &str = "/sbin/docker-init";

/// Init binaries `--init` looks for, in order: podman's catatonit, docker's own
/// (`docker-init`, a tini build), then Debian's tini.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
    "/usr/sbin/docker-init",
    "/usr/bin/docker-init",
    "/usr/bin/tini-static",
    "/usr/bin/tini",
];

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// A new, private namespace (loopback only until someone configures it).
    New,
    /// The host's (`--network host`).
    Host,
    /// Join this namespace (a bind-mounted nsfs file or `/proc/<pid>/ns/net`).
    Path(PathBuf),
}

/// What [`build`] needs to know about one container.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The full container id (the hostname's default is its first 12 characters).
    pub id: &'a str,
    /// The merged config ([`merge_image_config`]).
    pub config: &'a Config,
    pub host_config: &'a HostConfig,
    /// The mounted, merged rootfs (`root.path`; users and groups are read from it).
    pub rootfs: &'a Path,
    /// The container's directory: `hostname`, `hosts` and `resolv.conf` found there
    /// are bind-mounted at `/etc/…`.
    pub container_dir: &'a Path,
    /// `linux.cgroupsPath`.
    pub cgroups_path: &'a str,
    pub network: NetNs,
    /// The default seccomp profile; `None`: [`DEFAULT_SECCOMP_PROFILE`].
    pub seccomp_profile: Option<&'a Path>,
    /// The `--init` binary; `None`: the first of [`INIT_CANDIDATES`] that exists.
    pub init_path: Option<&'a Path>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// docker: `no command specified` (neither Entrypoint nor Cmd).
    #[error("no command specified")]
    NoCommand,
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    #[error("reading {path} in the container's rootfs: {source}")]
    ReadRootfs {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("seccomp profile {path}: {msg}")]
    Seccomp { path: String, msg: String },
    #[error("invalid --security-opt: {0:?}")]
    SecurityOpt(String),
    /// docker's wording for a `--mount type=bind` whose source is missing.
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSourceMissing(String),
    #[error("invalid mount config: {0}")]
    Mount(String),
    #[error("creating the bind source {path}: {source}")]
    CreateBindSource {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--init: no init binary found (looked for {0})")]
    InitNotFound(String),
    #[error("error gathering device information while adding custom device {path:?}: {msg}")]
    Device { path: String, msg: String },
    #[error("{0}")]
    Sysctl(String),
    /// One of docker's resource validation messages (`daemon/daemon_unix.go`).
    #[error("{0}")]
    Resources(String),
    /// Something docker can do and oxcart cannot yet (`named volumes are not
    /// supported yet`).
    #[error("{0} not supported yet")]
    Unsupported(String),
}

/// Build the OCI spec docker would give this container.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let hc = input.host_config;
    validate_host_config(hc)?;
    let sec = SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or_default())?;
    let caps = caps::effective_set(hc)?;
    let mut process = build_process(input, &caps, &sec)?;
    let (mounts, rootfs_propagation) = mounts::build(input, &mut process.args)?;
    let mut linux = Linux {
        rootfs_propagation,
        namespaces: namespaces(input)?,
        cgroups_path: Some(input.cgroups_path.to_string()),
        resources: Some(resources::build(hc)?),
        sysctl: resources::sysctls(hc, &input.network)?,
        ..Default::default()
    };
    resources::devices(hc, &mut linux)?;
    if !hc.privileged && !sec.systempaths_unconfined {
        linux.masked_paths = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        linux.readonly_paths = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
    }
    linux.seccomp = seccomp::for_container(input, &sec, &caps)?;
    let hostname = (!uts_is_host(hc)).then(|| hostname(input));
    let domainname = Some(input.config.domainname.clone()).filter(|d| !d.is_empty());
    Ok(Spec {
        oci_version: oxcart_spec::OCI_VERSION.to_string(),
        process: Some(process),
        root: Some(Root {
            path: input.rootfs.to_string_lossy().into_owned(),
            readonly: hc.readonly_rootfs,
        }),
        hostname,
        domainname,
        mounts,
        annotations: annotations(input),
        linux: Some(linux),
        hooks: None,
    })
}

/// docker's masked paths (`oci/defaults.go`, plus `/sys/devices/virtual/powercap`,
/// masked since docker 20.10.? for CVE-2020-8694, the RAPL power side channel).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths (`oci/defaults.go`).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `--security-opt` as docker reads it (`daemon/daemon_unix.go` parseSecurityOpt).
#[derive(Debug, Default)]
pub(crate) struct SecurityOpts {
    /// `seccomp=unconfined`.
    seccomp_unconfined: bool,
    /// `seccomp=<profile JSON>` (the CLI stores the file's content, as docker's does).
    seccomp_profile: Option<String>,
    no_new_privileges: bool,
    apparmor: Option<String>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    systempaths_unconfined: bool,
}

impl SecurityOpts {
    fn parse(opts: &[String]) -> Result<Self, SpecError> {
        let mut s = SecurityOpts::default();
        for opt in opts {
            if opt == "no-new-privileges" {
                s.no_new_privileges = true;
                continue;
            }
            // docker accepts `key=value` and the older `key:value`.
            let (k, v) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .ok_or_else(|| SpecError::SecurityOpt(opt.clone()))?;
            match k {
                "seccomp" if v == "unconfined" => s.seccomp_unconfined = true,
                "seccomp" => s.seccomp_profile = Some(v.to_string()),
                "no-new-privileges" => {
                    s.no_new_privileges = v
                        .parse::<bool>()
                        .map_err(|_| SpecError::SecurityOpt(opt.clone()))?
                }
                "apparmor" => s.apparmor = Some(v.to_string()),
                "systempaths" if v == "unconfined" => s.systempaths_unconfined = true,
                // SELinux is not enabled on the hosts we run on; docker ignores `label`
                // options when SELinux is disabled, and so do we.
                "label" => {}
                _ => return Err(SpecError::SecurityOpt(opt.clone())),
            }
        }
        Ok(s)
    }
}

fn build_process(
    input: &SpecInput<'_>,
    caps: &[String],
    sec: &SecurityOpts,
) -> Result<Process, SpecError> {
    let cfg = input.config;
    let args = command(cfg)?;
    let user = resolve_user(
        input.rootfs,
        &cfg.user,
        input.host_config.group_add.as_deref(),
    )?;
    let env = environment(input, &user);
    let cwd = if cfg.working_dir.is_empty() {
        "/".to_string()
    } else {
        cfg.working_dir.clone()
    };
    let set = Some(caps.to_vec());
    let hc = input.host_config;
    Ok(Process {
        terminal: cfg.tty,
        user: User {
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            ..Default::default()
        },
        args,
        env,
        cwd,
        // docker since 20.10.14 (CVE-2022-24769): no inheritable set, no ambient.
        capabilities: Some(LinuxCapabilities {
            bounding: set.clone(),
            effective: set.clone(),
            permitted: set,
            inheritable: None,
            ambient: None,
        }),
        rlimits: resources::rlimits(hc),
        no_new_privileges: sec.no_new_privileges,
        apparmor_profile: apparmor_profile(hc, sec),
        // runtime-spec: absent means "leave it"; docker always writes its value.
        oom_score_adj: i32::try_from(hc.oom_score_adj).ok().filter(|v| *v != 0),
        ..Default::default()
    })
}

/// Entrypoint + Cmd as docker joins them; an Entrypoint of `[""]` (`--entrypoint ""`)
/// means "none" (docker CLI: "if `--entrypoint=` is parsed then Entrypoint is reset").
fn command(cfg: &Config) -> Result<Vec<String>, SpecError> {
    let ep: &[String] = match cfg.entrypoint.as_deref() {
        Some([only]) if only.is_empty() => &[],
        Some(ep) => ep,
        None => &[],
    };
    let cmd = cfg.cmd.as_deref().unwrap_or_default();
    let args: Vec<String> = ep.iter().chain(cmd).cloned().collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// docker's `CreateDaemonEnvironment`: PATH, HOSTNAME, TERM with a tty, then the
/// config's Env replacing or appending by key (an entry without `=` unsets). HOME from
/// the user's passwd entry when the config has none (runc and podman do the same).
fn environment(input: &SpecInput<'_>, user: &ExecUser) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={}", hostname(input)),
    ];
    if input.config.tty {
        env.push("TERM=xterm".to_string());
    }
    let env = merge::replace_or_append_env(env, input.config.env.as_deref().unwrap_or_default());
    let mut env: Vec<String> = env;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// The configured hostname; else docker's default: the host's with `--network host`,
/// the id's first 12 characters otherwise.
fn hostname(input: &SpecInput<'_>) -> String {
    if !input.config.hostname.is_empty() {
        return input.config.hostname.clone();
    }
    if input.network == NetNs::Host {
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            return h.trim().to_string();
        }
    }
    input.id.chars().take(12).collect()
}

fn uts_is_host(hc: &HostConfig) -> bool {
    hc.uts_mode == "host"
}

/// docker applies AppArmor only where the host has it enabled (an explicit profile
/// included: docker ignores it elsewhere); `docker-default` only when that profile is
/// loaded; none for a privileged container or `apparmor=unconfined`.
fn apparmor_profile(hc: &HostConfig, sec: &SecurityOpts) -> Option<String> {
    if !apparmor_enabled() {
        return None;
    }
    match sec.apparmor.as_deref() {
        Some("unconfined") => None,
        Some(p) => Some(p.to_string()),
        None if hc.privileged => None,
        None => apparmor_default_loaded().then(|| "docker-default".to_string()),
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

fn apparmor_default_loaded() -> bool {
    std::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
        .map(|s| s.lines().any(|l| l.starts_with("docker-default ")))
        .unwrap_or(false)
}

fn namespaces(input: &SpecInput<'_>) -> Result<Vec<LinuxNamespace>, SpecError> {
    let hc = input.host_config;
    let ns = |t: &str| LinuxNamespace {
        typ: t.to_string(),
        path: None,
    };
    let mut out = vec![ns("mount")];
    match &input.network {
        NetNs::New => out.push(ns("network")),
        NetNs::Host => {}
        NetNs::Path(p) => out.push(LinuxNamespace {
            typ: "network".into(),
            path: Some(p.to_string_lossy().into_owned()),
        }),
    }
    if !uts_is_host(hc) {
        out.push(ns("uts"));
    }
    match hc.pid_mode.as_str() {
        "" | "private" => out.push(ns("pid")),
        "host" => {}
        m => return Err(SpecError::Unsupported(format!("--pid {m} is"))),
    }
    match hc.ipc_mode.as_str() {
        "" | "private" | "shareable" | "none" => out.push(ns("ipc")),
        "host" => {}
        m => return Err(SpecError::Unsupported(format!("--ipc {m} is"))),
    }
    if cgroupns_private(hc) {
        out.push(ns("cgroup"));
    }
    Ok(out)
}

/// docker's default cgroup namespace mode: `private` on a cgroup v2 host, `host` on v1
/// and hybrid hosts (where a private one would hide the v1 hierarchies' paths).
fn cgroupns_private(hc: &HostConfig) -> bool {
    match hc.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        _ => resources::unified_cgroup_host(),
    }
}

fn annotations(input: &SpecInput<'_>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let sig = &input.config.stop_signal;
    if !sig.is_empty() {
        // The OCI image-spec annotation runtimes and tools read the stop signal from.
        a.insert("org.opencontainers.image.stopSignal".into(), sig.clone());
    }
    a
}

#[cfg(test)]
mod tests;
