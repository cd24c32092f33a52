//! `docker run` / `docker create` flags and docker's rules for turning them into a
//! container's `Config` and `HostConfig` (docker CLI `cli/command/container/opts.go`,
//! `opts/`, `go-units`; the daemon's create-time defaults in `adaptContainerSettings`).
//! Errors use docker's wording: `invalid argument "x" for "-m, --memory" flag: …`.

use oxcart_engine::types::{
    BindOptions, Config, DeviceMapping, HealthConfig, HostConfig, LogConfig, Mount, PortBinding,
    RestartPolicy, TmpfsOptions, Ulimit,
};
use std::collections::BTreeMap;

/// docker's `run`/`create` flags. `-h` is `--hostname`, as in docker, so the command
/// that flattens these has only a long `--help`.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(disable_help_flag = true)]
pub struct RunFlags {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run in the background and print the container id
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long, value_name = "list")]
    pub label_file: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int")]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "int")]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "uint16")]
    pub blkio_weight: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub shm_size: Option<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long, value_name = "list")]
    pub device_cgroup_rule: Vec<String>,
    /// Add Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long, value_name = "list")]
    pub security_opt: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Signal to stop the container
    #[arg(long, value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Logging driver for the container
    #[arg(long, value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long, value_name = "list")]
    pub log_opt: Vec<String>,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string")]
    pub pull: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Add additional groups to join
    #[arg(long, value_name = "list")]
    pub group_add: Vec<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long, value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Connect a container to a network
    #[arg(long, visible_alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long, visible_alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long, value_name = "string")]
    pub mac_address: Option<String>,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "bool")]
    pub sig_proxy: bool,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    /// Command to run to check health
    #[arg(long, value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Action when the container turns unhealthy: none, kill, restart, stop (podman's)
    #[arg(long, value_name = "action")]
    pub health_on_failure: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long, value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, value_name = "list")]
    pub dns_search: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, value_name = "list")]
    pub add_host: Vec<String>,
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

/// What `run`/`create` use but a container's record does not keep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CliOnly {
    pub name: Option<String>,
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    /// `--sig-proxy` (default true): forward signals to the container.
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
    pub pull: PullPolicy,
    pub platform: Option<String>,
    pub cidfile: Option<String>,
    /// Every `--network` given (the first is also `HostConfig.NetworkMode`).
    pub networks: Vec<String>,
    pub network_aliases: Vec<String>,
    pub ip: Option<String>,
    pub ip6: Option<String>,
    /// podman's `--health-on-failure`.
    pub health_on_failure: Option<String>,
}

/// A bad flag value, in docker's words.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunOptsError {
    /// pflag's `invalid argument "VALUE" for "FLAG" flag: WHY`.
    #[error("invalid argument {value:?} for {flag:?} flag: {why}")]
    InvalidArgument {
        value: String,
        flag: &'static str,
        why: String,
    },
    /// docker's own messages (`--ipc: invalid IPC mode`, `Conflicting options: …`).
    #[error("{0}")]
    Invalid(String),
    /// Reading `--env-file`, `--label-file` or a seccomp profile.
    #[error("{0}")]
    File(String),
}

fn invalid(flag: &'static str, value: &str, why: impl Into<String>) -> RunOptsError {
    RunOptsError::InvalidArgument {
        value: value.to_string(),
        flag,
        why: why.into(),
    }
}

type R<T> = Result<T, RunOptsError>;

impl RunFlags {
    /// Apply docker's parsing rules: `image` and the command `args` after it; `-e KEY`
    /// and `--env-file` lines without `=` take their value from `lookup_env` (a name it
    /// does not know is kept bare, which unsets the image's variable, as in docker).
    pub fn into_docker(
        self,
        image: &str,
        args: Vec<String>,
        lookup_env: impl Fn(&str) -> Option<String>,
    ) -> R<(Config, HostConfig, CliOnly)> {
        let cli = self.cli_only()?;
        let mut config = self.config(image, args, &lookup_env)?;
        let mut hc = self.host_config()?;
        self.apply_resources(&mut hc)?;
        self.apply_mounts(&mut hc)?;
        // docker's CLI: `-v /path` is an anonymous volume, kept in Config.Volumes.
        for v in self.volume.iter().filter(|v| !v.contains(':')) {
            config
                .volumes
                .get_or_insert_with(Default::default)
                .insert(v.clone(), Default::default());
        }
        self.apply_network(&mut config, &mut hc)?;
        self.apply_security(&mut hc)?;
        if hc.auto_remove && !matches!(hc.restart_policy.name.as_str(), "" | "no") {
            return Err(RunOptsError::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        // The daemon's create-time defaults, so the record and `inspect` show what
        // the container gets.
        oxcart_engine::spec::apply_daemon_defaults(&mut hc);
        config.attach_stdin = self.interactive && !self.detach;
        config.attach_stdout = !self.detach;
        config.attach_stderr = !self.detach;
        config.stdin_once = config.attach_stdin;
        Ok((config, hc, cli))
    }

    fn cli_only(&self) -> R<CliOnly> {
        let pull = match self.pull.as_deref() {
            None | Some("missing") => PullPolicy::Missing,
            Some("always") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            Some(p) => {
                return Err(RunOptsError::Invalid(format!(
                "invalid pull option: '{p}': must be one of \"always\", \"missing\" or \"never\""
            )))
            }
        };
        Ok(CliOnly {
            name: self.name.clone(),
            detach: self.detach,
            interactive: self.interactive,
            tty: self.tty,
            sig_proxy: self.sig_proxy,
            detach_keys: self.detach_keys.clone(),
            pull,
            platform: self.platform.clone(),
            cidfile: self.cidfile.clone(),
            networks: self.network.clone(),
            network_aliases: self.network_alias.clone(),
            ip: self.ip.clone(),
            ip6: self.ip6.clone(),
            health_on_failure: self.health_on_failure.clone(),
        })
    }

    fn config(
        &self,
        image: &str,
        args: Vec<String>,
        lookup_env: &impl Fn(&str) -> Option<String>,
    ) -> R<Config> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(parse_kv_file(f, Some(lookup_env))?);
        }
        for e in &self.env {
            env.push(env_value(e, lookup_env));
        }
        let mut labels = BTreeMap::new();
        for f in &self.label_file {
            for l in parse_kv_file(f, None)? {
                insert_label(&mut labels, &l);
            }
        }
        for l in &self.label {
            insert_label(&mut labels, l);
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                return Err(RunOptsError::Invalid(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        // docker: `--entrypoint ""` resets the image's entrypoint ([""]).
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let stop_timeout = self
            .stop_timeout
            .as_deref()
            .map(|s| parse_int(s, "--stop-timeout"))
            .transpose()?;
        if let Some(s) = &self.stop_signal {
            parse_signal(s)?;
        }
        Ok(Config {
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            tty: self.tty,
            open_stdin: self.interactive,
            env: (!env.is_empty()).then_some(env),
            cmd: (!args.is_empty()).then_some(args),
            healthcheck: self.healthcheck()?,
            image: image.to_string(),
            working_dir: self.workdir.clone().unwrap_or_default(),
            entrypoint,
            mac_address: self.mac_address.clone().unwrap_or_default(),
            labels,
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout,
            ..Default::default()
        })
    }

    fn healthcheck(&self) -> R<Option<HealthConfig>> {
        let durations = [
            (&self.health_interval, "--health-interval"),
            (&self.health_timeout, "--health-timeout"),
            (&self.health_start_period, "--health-start-period"),
            (&self.health_start_interval, "--health-start-interval"),
        ];
        let any_health = self.health_cmd.is_some()
            || self.health_retries.is_some()
            || self.health_on_failure.is_some()
            || durations.iter().any(|(v, _)| v.is_some());
        if self.no_healthcheck {
            if any_health {
                return Err(RunOptsError::Invalid(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }));
        }
        if !any_health {
            return Ok(None);
        }
        let mut ns = [0i64; 4];
        for (slot, (v, flag)) in ns.iter_mut().zip(durations) {
            if let Some(v) = v {
                *slot = parse_go_duration(v).map_err(|why| invalid(flag, v, why))?;
                if *slot < 0 {
                    return Err(RunOptsError::Invalid(format!("{flag} cannot be negative")));
                }
            }
        }
        let retries = match &self.health_retries {
            Some(r) => parse_int(r, "--health-retries")?,
            None => 0,
        };
        if retries < 0 {
            return Err(RunOptsError::Invalid(
                "--health-retries cannot be negative".into(),
            ));
        }
        Ok(Some(HealthConfig {
            test: self.health_cmd.as_deref().map(health_test).transpose()?,
            interval: ns[0],
            timeout: ns[1],
            start_period: ns[2],
            start_interval: ns[3],
            retries,
        }))
    }

    fn host_config(&self) -> R<HostConfig> {
        let restart_policy = match &self.restart {
            Some(r) => parse_restart(r)?,
            None => RestartPolicy {
                name: "no".into(),
                maximum_retry_count: 0,
            },
        };
        let log_config = self.log_config()?;
        check_mode(
            "--ipc",
            "IPC",
            &self.ipc,
            &["", "host", "private", "shareable", "none"],
            true,
        )?;
        check_mode("--pid", "PID", &self.pid, &["", "host"], true)?;
        check_mode("--uts", "UTS", &self.uts, &["", "host"], false)?;
        check_mode(
            "--cgroupns",
            "CGROUP",
            &self.cgroupns,
            &["", "host", "private"],
            false,
        )?;
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        Ok(HostConfig {
            container_id_file: self.cidfile.clone().unwrap_or_default(),
            log_config,
            restart_policy,
            auto_remove: self.rm,
            cap_add: list(&self.cap_add),
            cap_drop: list(&self.cap_drop),
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            group_add: list(&self.group_add),
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            pid_mode: self.pid.clone().unwrap_or_default(),
            uts_mode: self.uts.clone().unwrap_or_default(),
            cgroup_parent: self.cgroup_parent.clone().unwrap_or_default(),
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            runtime: self.runtime.clone().unwrap_or_default(),
            init: self.init.then_some(true),
            ..Default::default()
        })
    }

    fn log_config(&self) -> R<LogConfig> {
        let mut log_config = LogConfig {
            kind: self
                .log_driver
                .clone()
                .unwrap_or_else(|| "json-file".into()),
            config: BTreeMap::new(),
        };
        for o in &self.log_opt {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                invalid(
                    "--log-opt",
                    o,
                    "invalid key value pair format in logging options",
                )
            })?;
            log_config.config.insert(k.into(), v.into());
        }
        if log_config.kind == "none" && !log_config.config.is_empty() {
            return Err(RunOptsError::Invalid(
                "invalid logging opts for driver none".into(),
            ));
        }
        Ok(log_config)
    }

    fn apply_resources(&self, hc: &mut HostConfig) -> R<()> {
        let mem =
            |v: &Option<String>, flag| v.as_deref().map(|s| ram_in_bytes(s, flag)).transpose();
        hc.memory = mem(&self.memory, "-m, --memory")?.unwrap_or(0);
        hc.memory_reservation = mem(&self.memory_reservation, "--memory-reservation")?.unwrap_or(0);
        hc.shm_size = mem(&self.shm_size, "--shm-size")?.unwrap_or(0);
        hc.memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => -1,
            Some(s) => ram_in_bytes(s, "--memory-swap")?,
            None => 0,
        };
        if let Some(s) = &self.memory_swappiness {
            let v = parse_int(s, "--memory-swappiness")?;
            // -1 is docker's "unset".
            hc.memory_swappiness = (v != -1).then_some(v);
        }
        hc.oom_kill_disable = Some(self.oom_kill_disable);
        if let Some(c) = &self.cpus {
            hc.nano_cpus = parse_nano_cpus(c).map_err(|why| invalid("--cpus", c, why))?;
        }
        let int = |v: &Option<String>, flag| v.as_deref().map(|s| parse_int(s, flag)).transpose();
        hc.cpu_shares = int(&self.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0);
        hc.cpu_period = int(&self.cpu_period, "--cpu-period")?.unwrap_or(0);
        hc.cpu_quota = int(&self.cpu_quota, "--cpu-quota")?.unwrap_or(0);
        hc.pids_limit = int(&self.pids_limit, "--pids-limit")?;
        hc.oom_score_adj = int(&self.oom_score_adj, "--oom-score-adj")?.unwrap_or(0);
        if let Some(b) = &self.blkio_weight {
            hc.blkio_weight = b.parse().map_err(|_| {
                invalid(
                    "--blkio-weight",
                    b,
                    format!("strconv.ParseUint: parsing {b:?}: invalid syntax"),
                )
            })?;
        }
        hc.cpuset_cpus = self.cpuset_cpus.clone().unwrap_or_default();
        hc.cpuset_mems = self.cpuset_mems.clone().unwrap_or_default();
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<R<Vec<_>>>()?;
        hc.ulimits = (!ulimits.is_empty()).then_some(ulimits);
        hc.devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<R<_>>()?;
        for r in &self.device_cgroup_rule {
            if !valid_cgroup_rule(r) {
                return Err(invalid(
                    "--device-cgroup-rule",
                    r,
                    format!("invalid device cgroup format '{r}'"),
                ));
            }
        }
        hc.device_cgroup_rules =
            (!self.device_cgroup_rule.is_empty()).then(|| self.device_cgroup_rule.clone());
        Ok(())
    }

    fn apply_mounts(&self, hc: &mut HostConfig) -> R<()> {
        for v in &self.volume {
            check_bind(v)?;
        }
        let binds: Vec<String> = self
            .volume
            .iter()
            .filter(|v| v.contains(':'))
            .cloned()
            .collect();
        hc.binds = (!binds.is_empty()).then_some(binds);
        hc.volumes_from = (!self.volumes_from.is_empty()).then(|| self.volumes_from.clone());
        hc.mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<R<_>>()?;
        let mut tmpfs = BTreeMap::new();
        for t in &self.tmpfs {
            let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            if !dst.starts_with('/') {
                return Err(invalid(
                    "--tmpfs",
                    t,
                    format!("invalid mount path: '{dst}' mount path must be absolute"),
                ));
            }
            tmpfs.insert(dst.to_string(), opts.to_string());
        }
        hc.tmpfs = (!tmpfs.is_empty()).then_some(tmpfs);
        Ok(())
    }

    fn apply_network(&self, config: &mut Config, hc: &mut HostConfig) -> R<()> {
        hc.network_mode = self
            .network
            .first()
            .cloned()
            .unwrap_or_else(|| "default".into());
        hc.publish_all_ports = self.publish_all;
        let mut exposed = oxcart_engine::types::EmptySet::new();
        for e in &self.expose {
            for port in expand_expose(e)? {
                exposed.insert(port, Default::default());
            }
        }
        for p in &self.publish {
            for (port, binding) in parse_publish(p)? {
                exposed.insert(port.clone(), Default::default());
                hc.port_bindings
                    .entry(port)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(binding);
            }
        }
        config.exposed_ports = (!exposed.is_empty()).then_some(exposed);
        for d in &self.dns {
            if d.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid("--dns", d, format!("{d} is not an ip address")));
            }
        }
        hc.dns = self.dns.clone();
        hc.dns_options = self.dns_option.clone();
        hc.dns_search = self.dns_search.clone();
        for h in &self.add_host {
            check_extra_host(h)?;
        }
        hc.extra_hosts = (!self.add_host.is_empty()).then(|| self.add_host.clone());
        Ok(())
    }

    fn apply_security(&self, hc: &mut HostConfig) -> R<()> {
        let mut opts = Vec::new();
        for o in &self.security_opt {
            opts.push(parse_security_opt(o)?);
        }
        hc.security_opt = (!opts.is_empty()).then_some(opts);
        let mut sysctls = BTreeMap::new();
        for s in &self.sysctl {
            let (k, v) = s
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| invalid("--sysctl", s, format!("invalid sysctl format: '{s}'")))?;
            sysctls.insert(k.to_string(), v.to_string());
        }
        hc.sysctls = (!sysctls.is_empty()).then_some(sysctls);
        Ok(())
    }
}

fn check_mode(flag: &str, what: &str, v: &Option<String>, ok: &[&str], container: bool) -> R<()> {
    let Some(v) = v else { return Ok(()) };
    if ok.contains(&v.as_str())
        || (container && v.strip_prefix("container:").is_some_and(|c| !c.is_empty()))
    {
        return Ok(());
    }
    Err(RunOptsError::Invalid(format!(
        "{flag}: invalid {what} mode"
    )))
}

fn env_value(e: &str, lookup_env: &impl Fn(&str) -> Option<String>) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match lookup_env(e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }
}

fn insert_label(labels: &mut BTreeMap<String, String>, l: &str) {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    labels.insert(k.to_string(), v.to_string());
}

/// docker's `ParseEnvFile` (and, without `lookup`, its label-file twin).
/// Looks a variable up in the caller's environment.
type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn parse_kv_file(path: &str, lookup: Option<EnvLookup<'_>>) -> R<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| RunOptsError::File(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw).map_err(|_| {
            RunOptsError::File(format!(
                "env file {path} contains invalid utf8 bytes at line {}",
                n + 1
            ))
        })?;
        let line = line.trim_start().trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.contains(char::is_whitespace) {
            return Err(RunOptsError::File(format!(
                "poorly formatted environment: variable '{key}' contains whitespaces"
            )));
        }
        if key.is_empty() {
            return Err(RunOptsError::File(format!(
                "poorly formatted environment: no variable name on line '{line}'"
            )));
        }
        out.push(match (value, lookup) {
            (Some(v), _) => format!("{key}={v}"),
            (None, Some(look)) => {
                look(key).map_or_else(|| key.to_string(), |v| format!("{key}={v}"))
            }
            (None, None) => key.to_string(),
        });
    }
    Ok(out)
}

fn parse_int(s: &str, flag: &'static str) -> R<i64> {
    s.parse::<i64>().map_err(|_| {
        invalid(
            flag,
            s,
            format!("strconv.ParseInt: parsing {s:?}: invalid syntax"),
        )
    })
}

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512KiB`, `100` — powers of 1024.
pub fn ram_in_bytes(s: &str, flag: &'static str) -> R<i64> {
    let bad = || invalid(flag, s, format!("invalid size: '{s}'"));
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = value * mult;
    if bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// docker's `NanoCPUs.Set`: a rational number of CPUs, at most nanosecond precision.
fn parse_nano_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_ns: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    let nano = int
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(bad)?;
    Ok(if neg { -nano } else { nano })
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            unit => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * mult;
        rest = &rest[u..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// go-units `ParseUlimit`: `nofile=1024[:2048]`, -1 unlimited.
fn parse_ulimit(u: &str) -> R<Ulimit> {
    let bad = |why: String| invalid("--ulimit", u, why);
    let (name, limits) = u
        .split_once('=')
        .ok_or_else(|| bad(format!("invalid ulimit argument: {u}")))?;
    if !ULIMITS.contains(&name) {
        return Err(bad(format!("invalid ulimit type: {name}")));
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| bad(format!("strconv.ParseInt: parsing {s:?}: invalid syntax")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let s = num(limits)?;
            (s, s)
        }
    };
    if hard != -1 && soft > hard {
        return Err(bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

fn valid_device_mode(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 3
        && m.chars().all(|c| "rwm".contains(c))
        && m.chars().collect::<std::collections::HashSet<_>>().len() == m.len()
}

/// docker's `parseDevice`: `/dev/x[:/dev/y][:rwm]`.
fn parse_device(d: &str) -> R<DeviceMapping> {
    let bad = |why: String| invalid("--device", d, why);
    let parts: Vec<&str> = d.split(':').collect();
    let (src, dst, perms) = match parts[..] {
        [src] => (src, src, "rwm"),
        [src, x] if valid_device_mode(x) => (src, src, x),
        [src, dst] => (src, dst, "rwm"),
        [src, dst, perms] if valid_device_mode(perms) => (src, dst, perms),
        [_, _, perms] => return Err(bad(format!("invalid device mode: {perms}"))),
        _ => return Err(bad(format!("invalid device specification: {d}"))),
    };
    if !dst.starts_with('/') {
        return Err(bad(format!("{dst} is not an absolute path")));
    }
    Ok(DeviceMapping {
        path_on_host: src.into(),
        path_in_container: dst.into(),
        cgroup_permissions: perms.into(),
    })
}

fn valid_cgroup_rule(r: &str) -> bool {
    let f: Vec<&str> = r.split(' ').collect();
    let num = |s: &str| s == "*" || (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()));
    matches!(f[..], [t, nums, access]
        if matches!(t, "a" | "b" | "c")
            && nums.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
            && valid_device_mode(access))
}

const BIND_MODES: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "consistent",
    "cached",
    "delegated",
];

/// `-v /host:/ctr[:opts]`, `-v NAME:/ctr[:opts]` (a named volume) or `-v /ctr` (an
/// anonymous one).
fn check_bind(v: &str) -> R<()> {
    let bad = |why: String| invalid("-v, --volume", v, why);
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts[..] {
        [d] => ("", d, ""),
        [s, d] => (s, d, ""),
        [s, d, m] => (s, d, m),
        _ => return Err(bad(format!("invalid volume specification: '{v}'"))),
    };
    let volume = !src.starts_with('/');
    if volume && !src.is_empty() && !oxcart_engine::volumes::valid_name(src) {
        return Err(bad(format!("create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")));
    }
    if !dst.starts_with('/') {
        return Err(bad(format!("invalid volume specification: '{v}': invalid mount path: '{dst}' mount path must be absolute")));
    }
    if dst.trim_end_matches('/').is_empty() {
        return Err(bad(format!("invalid volume specification: '{v}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'")));
    }
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        if !(BIND_MODES.contains(&m) || volume && m == "nocopy") {
            return Err(bad(format!(
                "invalid volume specification: '{v}': invalid mode: {m}"
            )));
        }
    }
    Ok(())
}

/// Split a CSV record as Go's `encoding/csv` does for one line (quotes allowed).
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `--mount`'s fields as given, before docker's checks of their combination.
#[derive(Default)]
struct MountFields {
    m: Mount,
    bind: Option<BindOptions>,
    tmpfs: Option<TmpfsOptions>,
    volume_opt: bool,
    /// docker's `VolumeOptions` (`volume-nocopy`, `volume-label`, `volume-driver`,
    /// `volume-opt`), as the engine takes them.
    volume: serde_json::Map<String, serde_json::Value>,
}

/// docker's `--mount` (`opts.MountOpt.Set`): CSV `key=value` fields, then the checks
/// of what they combine to.
fn parse_mount(spec: &str) -> R<Mount> {
    let bad = |why: String| invalid("--mount", spec, why);
    let MountFields {
        mut m,
        bind,
        tmpfs,
        volume_opt,
        volume,
    } = mount_fields(spec)?;
    if m.target.is_empty() {
        return Err(bad("target is required".into()));
    }
    let why = match m.kind.as_str() {
        "volume" if bind.is_some() => {
            Some("cannot mix 'bind-*' options with mount type 'volume'".into())
        }
        "volume" if tmpfs.is_some() => {
            Some("cannot mix 'tmpfs-*' options with mount type 'volume'".into())
        }
        "volume" if !m.source.is_empty() && !oxcart_engine::volumes::valid_name(&m.source) => {
            Some(format!(
                "invalid mount config for type \"volume\": invalid volume name {:?}",
                m.source
            ))
        }
        "volume" => None,
        "bind" | "tmpfs" if volume_opt => Some(format!(
            "cannot mix 'volume-*' options with mount type '{}'",
            m.kind
        )),
        "bind" if tmpfs.is_some() => {
            Some("cannot mix 'tmpfs-*' options with mount type 'bind'".into())
        }
        "tmpfs" if bind.is_some() => {
            Some("cannot mix 'bind-*' options with mount type 'tmpfs'".into())
        }
        "tmpfs" if !m.source.is_empty() => Some(
            "invalid mount config for type \"tmpfs\": field Source must not be specified".into(),
        ),
        "bind" if m.source.is_empty() => {
            Some("invalid mount config for type \"bind\": field Source must not be empty".into())
        }
        "bind" | "tmpfs" => None,
        t => Some(format!("mount type '{t}' is not supported")),
    };
    if let Some(why) = why {
        return Err(bad(why));
    }
    if let Some(b) = &bind {
        if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
            return Err(bad(format!("invalid bind propagation: {}", b.propagation)));
        }
    }
    m.bind_options = bind;
    m.tmpfs_options = tmpfs;
    m.volume_options = (!volume.is_empty()).then_some(serde_json::Value::Object(volume));
    Ok(m)
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// `--mount`'s keys and docker's aliases; the type defaults to `volume`, as docker's.
fn mount_fields(spec: &str) -> R<MountFields> {
    let bad = |why: String| invalid("--mount", spec, why);
    let mut f = MountFields {
        m: Mount {
            kind: "volume".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    for field in csv_fields(spec) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        // `readonly` alone means true; a value must be one of Go's booleans.
        let flag_value = |v: &Option<String>| match v {
            None => Ok(true),
            Some(v) => parse_bool(v).ok_or_else(|| bad(format!("invalid value for {key}: {v}"))),
        };
        let need = |v: Option<String>| {
            v.ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        match key.as_str() {
            "readonly" | "ro" => f.m.read_only = flag_value(&value)?,
            "type" => f.m.kind = need(value)?.to_ascii_lowercase(),
            "source" | "src" => f.m.source = need(value)?,
            "target" | "dst" | "destination" => f.m.target = need(value)?,
            "consistency" => f.m.consistency = need(value)?,
            "bind-nonrecursive" => {
                f.bind.get_or_insert_with(Default::default).non_recursive = flag_value(&value)?
            }
            "bind-propagation" => {
                f.bind.get_or_insert_with(Default::default).propagation =
                    need(value)?.to_ascii_lowercase()
            }
            "volume-nocopy" => {
                let b = flag_value(&value)?;
                f.volume.insert("NoCopy".into(), b.into());
                f.volume_opt = true;
            }
            "volume-driver" | "volume-label" | "volume-opt" => {
                let v = need(value)?;
                f.volume_opt = true;
                mount_volume_opt(&mut f.volume, &key, &v);
            }
            "tmpfs-size" => {
                f.tmpfs.get_or_insert_with(Default::default).size_bytes =
                    ram_in_bytes(&need(value)?, "--mount")?
            }
            "tmpfs-mode" => {
                let v = need(value)?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| bad(format!("invalid value for {key}: {v}")))?;
                f.tmpfs.get_or_insert_with(Default::default).mode = Some(mode);
            }
            _ if value.is_none() => {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    Ok(f)
}

/// `volume-label=k=v`, `volume-opt=k=v`, `volume-driver=d` into docker's
/// `VolumeOptions` JSON (`Labels`, `DriverConfig{Name, Options}`).
fn mount_volume_opt(vo: &mut serde_json::Map<String, serde_json::Value>, key: &str, v: &str) {
    let (k, val) = v.split_once('=').unwrap_or((v, ""));
    match key {
        "volume-label" => {
            let l = vo.entry("Labels").or_insert_with(|| serde_json::json!({}));
            l[k] = val.into();
        }
        "volume-driver" => {
            let d = vo
                .entry("DriverConfig")
                .or_insert_with(|| serde_json::json!({}));
            d["Name"] = v.into();
        }
        _ => {
            let d = vo
                .entry("DriverConfig")
                .or_insert_with(|| serde_json::json!({}));
            if d.get("Options").is_none() {
                d["Options"] = serde_json::json!({});
            }
            d["Options"][k] = val.into();
        }
    }
}

/// `--health-cmd`: docker's string, run by the container's shell (`CMD-SHELL`);
/// podman's additions: a JSON array (`["CMD", "arg"]`, `CMD` when its first word is
/// not a probe type) and `none` (`NONE`: no check, as `--no-healthcheck`).
fn health_test(c: &str) -> R<Vec<String>> {
    if c.eq_ignore_ascii_case("none") {
        return Ok(vec!["NONE".into()]);
    }
    if c.trim_start().starts_with('[') {
        let v: Vec<String> = serde_json::from_str(c).map_err(|e| {
            invalid(
                "--health-cmd",
                c,
                format!("not a JSON array of strings: {e}"),
            )
        })?;
        return Ok(match v.first().map(String::as_str) {
            None => return Err(invalid("--health-cmd", c, "empty command")),
            Some("CMD" | "CMD-SHELL" | "NONE") => v,
            Some(_) => std::iter::once("CMD".to_string()).chain(v).collect(),
        });
    }
    Ok(vec!["CMD-SHELL".into(), c.to_string()])
}

/// `--restart` (also `update --restart`).
pub fn parse_restart(r: &str) -> R<RestartPolicy> {
    let parts: Vec<&str> = r.split(':').collect();
    let (name, count) =
        match parts[..] {
            [n] => (n, None),
            [n, c] => (
                n,
                Some(c.parse::<i64>().map_err(|_| {
                    invalid("--restart", r, "maximum retry count must be an integer")
                })?),
            ),
            _ => return Err(invalid("--restart", r, "invalid restart policy format")),
        };
    match (name, count) {
        ("no" | "always" | "unless-stopped", Some(_)) => Err(RunOptsError::Invalid(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        ))),
        ("on-failure", Some(c)) if c < 0 => Err(RunOptsError::Invalid(
            "maximum retry count cannot be negative".into(),
        )),
        ("no" | "always" | "unless-stopped" | "on-failure", c) => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: c.unwrap_or(0),
        }),
        _ => Err(RunOptsError::Invalid(format!(
            "invalid restart policy '{name}'"
        ))),
    }
}

/// A signal name (`SIGTERM`, `TERM`, `term`) or number, as docker's `ParseSignal`.
fn parse_signal(s: &str) -> R<()> {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
        "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP",
        "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok());
    let num_ok = s.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n));
    if NAMES.contains(&name) || rt || num_ok {
        Ok(())
    } else {
        Err(RunOptsError::Invalid(format!("Invalid signal: {s}")))
    }
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => s.parse().ok().map(|p| (p, p)),
    }
}

fn split_proto(s: &str) -> R<(&str, &str)> {
    let (port, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(RunOptsError::Invalid(format!("invalid proto: {proto}")));
    }
    Ok((port, proto))
}

fn expand_expose(e: &str) -> R<Vec<String>> {
    let (port, proto) = split_proto(e)?;
    let (a, b) = parse_port_range(port).ok_or_else(|| {
        invalid(
            "--expose",
            e,
            format!("invalid range format for --expose: {e}"),
        )
    })?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// docker's `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`, ranges
/// allowed, an IPv6 address in brackets.
fn parse_publish(p: &str) -> R<Vec<(String, PortBinding)>> {
    let bad = |why: String| invalid("-p, --publish", p, why);
    let (spec, proto) = split_proto(p).map_err(|e| bad(e.to_string()))?;
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r
            .split_once("]:")
            .ok_or_else(|| bad(format!("invalid IP address: {spec}")))?;
        (ip.to_string(), rest)
    } else {
        match spec.matches(':').count() {
            0 | 1 => (String::new(), spec),
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or(("", spec));
                (ip.to_string(), rest)
            }
            _ => return Err(bad(format!("invalid port format: {p}"))),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(format!("invalid IP address: {ip}")));
    }
    let (host, ctr) = rest.split_once(':').unwrap_or(("", rest));
    let (c0, c1) =
        parse_port_range(ctr).ok_or_else(|| bad(format!("invalid containerPort: {ctr}")))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_port_range(host).ok_or_else(|| bad(format!("invalid hostPort: {host}")))?)
    };
    let n = c1 - c0;
    if let Some((h0, h1)) = host_range {
        if n > 0 && h1 - h0 != n {
            return Err(bad(format!(
                "invalid ranges specified for container and host Ports: {ctr} and {host}"
            )));
        }
    }
    Ok((0..=n)
        .map(|i| {
            let host_port = match host_range {
                None => String::new(),
                // One container port, a host range: docker keeps the range.
                Some((h0, h1)) if n == 0 && h1 > h0 => format!("{h0}-{h1}"),
                Some((h0, _)) => (h0 + i).to_string(),
            };
            (
                format!("{}/{proto}", c0 + i),
                PortBinding {
                    host_ip: ip.clone(),
                    host_port,
                },
            )
        })
        .collect())
}

/// `host:ip` (or `host=ip`); `host-gateway` stands for the host's address.
fn check_extra_host(h: &str) -> R<()> {
    let (name, ip) = h
        .split_once([':', '='])
        .filter(|(n, ip)| !n.is_empty() && !ip.is_empty())
        .ok_or_else(|| invalid("--add-host", h, format!("bad format for add-host: {h:?}")))?;
    let _ = name;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(
            "--add-host",
            h,
            format!("invalid IP address in add-host: {ip:?}"),
        ));
    }
    Ok(())
}

/// `seccomp=PATH` becomes `seccomp=<the profile's JSON>` (docker's CLI sends the
/// content, so the container does not depend on the file later).
fn parse_security_opt(o: &str) -> R<String> {
    if o == "no-new-privileges" {
        return Ok(o.into());
    }
    let (k, v) = o
        .split_once('=')
        .or_else(|| o.split_once(':'))
        .ok_or_else(|| RunOptsError::Invalid(format!("Invalid --security-opt: {o:?}")))?;
    match k {
        "seccomp" if v != "unconfined" => {
            let text = std::fs::read(v).map_err(|e| {
                RunOptsError::File(format!("opening seccomp profile ({v}) failed: {e}"))
            })?;
            let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                RunOptsError::File(format!(
                    "compacting json for seccomp profile ({v}) failed: {e}"
                ))
            })?;
            Ok(format!("seccomp={json}"))
        }
        "seccomp" | "apparmor" | "label" | "systempaths" => Ok(o.into()),
        "no-new-privileges" if parse_bool(v).is_some() => Ok(o.into()),
        _ => Err(RunOptsError::Invalid(format!(
            "Invalid --security-opt: {o:?}"
        ))),
    }
}

/// `exec --env-file`: the same file format as `run`'s, names without a value taken
/// from this process's environment.
pub fn read_env_file(path: &std::path::Path) -> R<Vec<String>> {
    let lookup = |k: &str| std::env::var(k).ok();
    parse_kv_file(&path.to_string_lossy(), Some(&lookup))
}

#[cfg(test)]
mod podman_diff;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Cmd {
        #[command(flatten)]
        flags: RunFlags,
        image: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    }

    fn run(argv: &[&str]) -> R<(Config, HostConfig, CliOnly)> {
        let cmd = Cmd::try_parse_from(std::iter::once("run").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("clap: {e}"));
        cmd.flags.into_docker(&cmd.image, cmd.args, |k| {
            (k == "FROM_ENV").then(|| "yes".into())
        })
    }

    /// `run` of a command line split at spaces.
    fn runs(line: &str) -> R<(Config, HostConfig, CliOnly)> {
        run(&line.split(' ').collect::<Vec<_>>())
    }

    fn errs(line: &str) -> String {
        err(&line.split(' ').collect::<Vec<_>>())
    }

    fn err(argv: &[&str]) -> String {
        run(argv).expect_err(&argv.join(" ")).to_string()
    }

    #[test]
    fn basic_flags() {
        let (c, h, cli) = run(&[
            "-d",
            "-i",
            "-t",
            "--rm",
            "--name",
            "web",
            "-w",
            "/srv",
            "-u",
            "alice:wheel",
            "-h",
            "box",
            "--read-only",
            "--init",
            "--privileged",
            "--runtime",
            "runc",
            "--pull",
            "never",
            "--platform",
            "linux/amd64",
            "--sig-proxy=false",
            "--detach-keys",
            "ctrl-x",
            "--cidfile",
            "/tmp/cid",
            "--stop-signal",
            "SIGQUIT",
            "--stop-timeout",
            "5",
            "--group-add",
            "10",
            "--oom-score-adj",
            "-5",
            "--net",
            "none",
            "--cap-add",
            "SYS_ADMIN",
            "--cap-drop",
            "chown",
            "img",
            "sh",
            "-c",
            "echo hi",
        ])
        .expect("parse");
        assert_eq!(c.image, "img");
        assert_eq!(
            c.cmd.as_deref(),
            Some(&["sh".to_string(), "-c".into(), "echo hi".into()][..])
        );
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str(), c.hostname.as_str()),
            ("/srv", "alice:wheel", "box")
        );
        assert!(c.tty && c.open_stdin && !c.attach_stdin && !c.attach_stdout && !c.stdin_once);
        assert_eq!(
            (c.stop_signal.as_str(), c.stop_timeout),
            ("SIGQUIT", Some(5))
        );
        assert!(h.auto_remove && h.readonly_rootfs && h.privileged && h.init == Some(true));
        assert_eq!(
            (h.runtime.as_str(), h.network_mode.as_str(), h.oom_score_adj),
            ("runc", "none", -5)
        );
        assert_eq!(h.cap_add, Some(vec!["SYS_ADMIN".to_string()]));
        assert_eq!(h.shm_size, 64 << 20);
        assert_eq!(h.log_config.kind, "json-file");
        assert_eq!(h.restart_policy.name, "no");
        assert_eq!(
            (
                cli.name.as_deref(),
                cli.detach,
                cli.sig_proxy,
                cli.pull,
                cli.platform.as_deref()
            ),
            (
                Some("web"),
                true,
                false,
                PullPolicy::Never,
                Some("linux/amd64")
            )
        );
        assert_eq!(cli.detach_keys.as_deref(), Some("ctrl-x"));
        // Attached -i: stdin attached once.
        let (c, _, cli) = runs("-i img").expect("parse");
        assert!(c.attach_stdin && c.stdin_once && c.attach_stdout && cli.sig_proxy);
        assert_eq!(c.cmd, None);
    }

    #[test]
    fn env_and_labels() {
        let dir = tempfile::tempdir().expect("tmp");
        let envf = dir.path().join("env");
        std::fs::write(&envf, "# comment\n\n  A=file\nFROM_ENV\nMISSING\nB=x=y\n").expect("write");
        let lf = dir.path().join("labels");
        std::fs::write(&lf, "a=1\nflag\n").expect("write");
        let (c, _, _) = run(&[
            "--env-file",
            envf.to_str().expect("utf8"),
            "-e",
            "A=cli",
            "-e",
            "FROM_ENV",
            "-e",
            "NOPE",
            "--label-file",
            lf.to_str().expect("utf8"),
            "-l",
            "b=2",
            "--label",
            "a=cli",
            "img",
        ])
        .expect("parse");
        let env = c.env.expect("env");
        assert_eq!(
            env,
            [
                "A=file",
                "FROM_ENV=yes",
                "MISSING",
                "B=x=y",
                "A=cli",
                "FROM_ENV=yes",
                "NOPE"
            ]
        );
        assert_eq!(c.labels.get("a").map(String::as_str), Some("cli"));
        assert_eq!(c.labels.get("flag").map(String::as_str), Some(""));
        assert_eq!(c.labels.get("b").map(String::as_str), Some("2"));
        std::fs::write(&envf, "BAD KEY=1\n").expect("write");
        let e = err(&["--env-file", envf.to_str().expect("utf8"), "img"]);
        assert_eq!(
            e,
            "poorly formatted environment: variable 'BAD KEY' contains whitespaces"
        );
        let e = errs("--env-file /nonexistent/env img");
        assert!(e.starts_with("open /nonexistent/env: "), "{e}");
    }

    #[test]
    fn entrypoint_forms() {
        let (c, _, _) = run(&["--entrypoint", "", "img"]).expect("parse");
        assert_eq!(c.entrypoint, Some(vec![String::new()]));
        let (c, _, _) = runs("--entrypoint /bin/sh img").expect("parse");
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string()]));
        let (c, _, _) = runs("img").expect("parse");
        assert_eq!(c.entrypoint, None);
        assert_eq!(
            errs("-w rel img"),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
    }

    #[test]
    fn memory_and_cpu() {
        let (_, h, _) = runs("-m 64m --memory-reservation 32MiB --memory-swappiness 10 --oom-kill-disable --cpus 1.5 -c 512 --cpuset-cpus 0 --cpuset-mems 0 --pids-limit 100 --blkio-weight 300 --shm-size 1g img")
        .expect("parse");
        assert_eq!(
            (h.memory, h.memory_swap, h.memory_reservation),
            (64 << 20, 128 << 20, 32 << 20)
        );
        assert_eq!(
            (h.memory_swappiness, h.oom_kill_disable),
            (Some(10), Some(true))
        );
        assert_eq!(
            (h.nano_cpus, h.cpu_shares, h.pids_limit),
            (1_500_000_000, 512, Some(100))
        );
        assert_eq!((h.blkio_weight, h.shm_size), (300, 1 << 30));
        let (_, h, _) = runs("-m 1.5k --memory-swap -1 --cpu-period 50000 --cpu-quota 25000 img")
            .expect("parse");
        assert_eq!(
            (h.memory, h.memory_swap, h.cpu_period, h.cpu_quota),
            (1536, -1, 50000, 25000)
        );
        assert_eq!(ram_in_bytes("10b", "x"), Ok(10));
        assert_eq!(ram_in_bytes("2 GB", "x"), Ok(2 << 30));
        assert_eq!(
            errs("-m lots img"),
            r#"invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'"#
        );
        assert_eq!(
            errs("--memory-swap 1x img"),
            r#"invalid argument "1x" for "--memory-swap" flag: invalid size: '1x'"#
        );
        assert_eq!(
            errs("--shm-size -1 img"),
            r#"invalid argument "-1" for "--shm-size" flag: invalid size: '-1'"#
        );
        assert_eq!(
            errs("--cpus one img"),
            r#"invalid argument "one" for "--cpus" flag: failed to parse one as a rational number"#
        );
        assert_eq!(
            errs("--cpus 0.0000000001 img"),
            r#"invalid argument "0.0000000001" for "--cpus" flag: value is too precise"#
        );
        assert!(errs("-c x img").starts_with(r#"invalid argument "x" for "-c, --cpu-shares" flag"#));
        assert!(errs("--pids-limit many img").contains(r#"for "--pids-limit" flag"#));
        assert!(errs("--blkio-weight 99999 img").contains(r#"for "--blkio-weight" flag"#));
    }

    #[test]
    fn ulimits_and_devices() {
        let (_, h, _) = run(&[
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "core=-1",
            "--device",
            "/dev/fuse",
            "--device",
            "/dev/sda:/dev/xvda:r",
            "--device",
            "/dev/null:rw",
            "--device-cgroup-rule",
            "c 13:* rwm",
            "img",
        ])
        .expect("parse");
        let u = h.ulimits.expect("ulimits");
        assert_eq!(
            (u[0].name.as_str(), u[0].soft, u[0].hard),
            ("nofile", 1024, 2048)
        );
        assert_eq!((u[1].soft, u[1].hard), (-1, -1));
        let d: Vec<_> = h
            .devices
            .iter()
            .map(|d| {
                (
                    d.path_on_host.as_str(),
                    d.path_in_container.as_str(),
                    d.cgroup_permissions.as_str(),
                )
            })
            .collect();
        assert_eq!(
            d,
            [
                ("/dev/fuse", "/dev/fuse", "rwm"),
                ("/dev/sda", "/dev/xvda", "r"),
                ("/dev/null", "/dev/null", "rw")
            ]
        );
        assert_eq!(
            errs("--ulimit nofile=2:1 img"),
            r#"invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1"#
        );
        assert_eq!(
            errs("--ulimit bogus=1 img"),
            r#"invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus"#
        );
        assert_eq!(
            errs("--ulimit nofile img"),
            r#"invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile"#
        );
        assert_eq!(
            errs("--device /dev/a:/dev/b:xyz img"),
            r#"invalid argument "/dev/a:/dev/b:xyz" for "--device" flag: invalid device mode: xyz"#
        );
        assert_eq!(
            errs("--device /dev/a:rel img"),
            r#"invalid argument "/dev/a:rel" for "--device" flag: rel is not an absolute path"#
        );
        assert!(err(&["--device-cgroup-rule", "z 1:1 rwm", "img"])
            .contains("invalid device cgroup format 'z 1:1 rwm'"));
    }

    #[test]
    fn volumes_mounts_tmpfs() {
        let (_, h, _) = runs("-v /src:/dst:ro,rshared --mount type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave --mount type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770 --mount type=bind,source=/c,target=/d,ro=false,bind-nonrecursive --tmpfs /run:size=10m,exec --tmpfs /x img")
        .expect("parse");
        assert_eq!(h.binds, Some(vec!["/src:/dst:ro,rshared".to_string()]));
        let m = &h.mounts;
        assert_eq!(
            (
                m[0].kind.as_str(),
                m[0].source.as_str(),
                m[0].target.as_str(),
                m[0].read_only
            ),
            ("bind", "/a", "/b", true)
        );
        assert_eq!(
            m[0].bind_options.as_ref().map(|b| b.propagation.as_str()),
            Some("rslave")
        );
        let t = m[1].tmpfs_options.as_ref().expect("tmpfs");
        assert_eq!((t.size_bytes, t.mode), (64 << 20, Some(0o1770)));
        assert!(!m[2].read_only && m[2].bind_options.as_ref().is_some_and(|b| b.non_recursive));
        let tm = h.tmpfs.expect("tmpfs");
        assert_eq!(
            (tm["/run"].as_str(), tm["/x"].as_str()),
            ("size=10m,exec", "")
        );
        let (c, h, _) =
            runs("-v data:/d:ro,nocopy -v /anon --volumes-from other:ro img").expect("volumes");
        assert_eq!(h.binds, Some(vec!["data:/d:ro,nocopy".to_string()]));
        assert!(c.volumes.expect("anonymous").contains_key("/anon"));
        assert_eq!(h.volumes_from, Some(vec!["other:ro".to_string()]));
        assert!(errs("-v a/b:/d img").contains("invalid characters for a local volume name"));
        assert!(errs("-v /h:/d:nocopy img").ends_with("invalid mode: nocopy"));
        assert!(errs("-v /a:/b:bogus img").ends_with("invalid mode: bogus"));
        assert!(errs("-v /a:/ img").contains("destination can't be '/'"));
        let (_, h, _) = runs("--mount type=volume,src=v,dst=/d,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs img")
            .expect("volume mount");
        let vo = h.mounts[0].volume_options.clone().expect("options");
        assert_eq!(vo["NoCopy"], true);
        assert_eq!(vo["Labels"]["a"], "b");
        assert_eq!(vo["DriverConfig"]["Options"]["type"], "tmpfs");
        assert!(errs("--mount src=v,dst=/d,bind-propagation=rshared img")
            .ends_with("cannot mix 'bind-*' options with mount type 'volume'"));
        assert!(errs("--mount type=bind,src=/a img").ends_with("target is required"));
        assert!(errs("--mount type=bind,src=/a,dst=/b,color=red img")
            .ends_with("unexpected key 'color' in 'color=red'"));
        assert!(errs("--mount type=bind,src=/a,dst=/b,junk img")
            .ends_with("invalid field 'junk' must be a key=value pair"));
        assert!(errs("--mount type=bind,src=/a,dst=/b,tmpfs-size=1m img")
            .ends_with("cannot mix 'tmpfs-*' options with mount type 'bind'"));
        assert!(
            errs("--mount type=tmpfs,dst=/b,tmpfs-size=big img").contains("invalid size: 'big'")
        );
        assert!(errs("--tmpfs rel img").contains(r#"for "--tmpfs" flag"#));
    }

    #[test]
    fn security_and_namespaces() {
        let dir = tempfile::tempdir().expect("tmp");
        let prof = dir.path().join("p.json");
        std::fs::write(&prof, "{ \"defaultAction\": \"SCMP_ACT_ALLOW\" }").expect("write");
        let seccomp = format!("seccomp={}", prof.display());
        let (_, h, _) = run(&[
            "--security-opt",
            &seccomp,
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "apparmor=unconfined",
            "--sysctl",
            "net.core.somaxconn=1024",
            "--ipc",
            "host",
            "--pid",
            "host",
            "--uts",
            "host",
            "--cgroupns",
            "private",
            "--cgroup-parent",
            "/mine",
            "img",
        ])
        .expect("parse");
        let so = h.security_opt.expect("secopt");
        assert_eq!(so[0], r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(&so[1..], ["no-new-privileges", "apparmor=unconfined"]);
        assert_eq!(h.sysctls.expect("sysctls")["net.core.somaxconn"], "1024");
        assert_eq!(
            (
                h.ipc_mode.as_str(),
                h.pid_mode.as_str(),
                h.uts_mode.as_str()
            ),
            ("host", "host", "host")
        );
        assert_eq!(
            (h.cgroupns_mode.as_str(), h.cgroup_parent.as_str()),
            ("private", "/mine")
        );
        assert_eq!(errs("--ipc bogus img"), "--ipc: invalid IPC mode");
        assert_eq!(errs("--pid bogus img"), "--pid: invalid PID mode");
        assert_eq!(errs("--uts container:x img"), "--uts: invalid UTS mode");
        assert_eq!(errs("--cgroupns x img"), "--cgroupns: invalid CGROUP mode");
        assert_eq!(
            errs("--security-opt bogus img"),
            r#"Invalid --security-opt: "bogus""#
        );
        assert!(errs("--security-opt seccomp=/nonexistent.json img")
            .starts_with("opening seccomp profile (/nonexistent.json) failed"));
        assert!(errs("--sysctl novalue img").contains(r#"for "--sysctl" flag"#));
        assert_eq!(
            errs("--pull sometimes img"),
            r#"invalid pull option: 'sometimes': must be one of "always", "missing" or "never""#
        );
    }

    #[test]
    fn network_flags() {
        let (c, h, cli) = runs("-p 8080:80 -p 127.0.0.1:53:53/udp -p [::1]:9000-9001:90-91 -p 7000 -P --expose 100-101 --dns 1.1.1.1 --dns-search example.com --dns-option ndots:2 --add-host db:10.0.0.2 --add-host gw:host-gateway --network mynet --network-alias web --ip 10.0.0.5 img")
        .expect("parse");
        let pb = &h.port_bindings;
        let one = |k: &str| pb[k].as_ref().expect("bindings")[0].clone();
        assert_eq!(
            (one("80/tcp").host_ip, one("80/tcp").host_port),
            (String::new(), "8080".into())
        );
        assert_eq!(
            (one("53/udp").host_ip, one("53/udp").host_port),
            ("127.0.0.1".into(), "53".into())
        );
        assert_eq!(
            (one("91/tcp").host_ip, one("91/tcp").host_port),
            ("::1".into(), "9001".into())
        );
        assert_eq!(one("7000/tcp").host_port, "");
        let exposed: Vec<_> = c.exposed_ports.expect("exposed").into_keys().collect();
        assert_eq!(
            exposed,
            ["100/tcp", "101/tcp", "53/udp", "7000/tcp", "80/tcp", "90/tcp", "91/tcp"]
        );
        assert!(h.publish_all_ports);
        assert_eq!(
            (h.dns.clone(), h.dns_search.clone(), h.dns_options.clone()),
            (
                vec!["1.1.1.1".to_string()],
                vec!["example.com".to_string()],
                vec!["ndots:2".to_string()]
            )
        );
        assert_eq!(h.extra_hosts.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            (
                h.network_mode.as_str(),
                cli.network_aliases.clone(),
                cli.ip.as_deref()
            ),
            ("mynet", vec!["web".to_string()], Some("10.0.0.5"))
        );
        assert!(errs("-p 80:abc img").ends_with("invalid containerPort: abc"));
        assert!(errs("-p x:80 img").ends_with("invalid hostPort: x"));
        assert!(errs("-p 80/icmp img").ends_with("invalid proto: icmp"));
        assert!(errs("-p 1.2.3:80:80 img").ends_with("invalid IP address: 1.2.3"));
        assert!(errs("--dns dns.example img").ends_with("dns.example is not an ip address"));
        assert!(errs("--add-host nohost img").contains("bad format for add-host"));
        assert!(errs("--add-host a:not-ip img").contains("invalid IP address in add-host"));
        assert_eq!(errs("--stop-signal SIGNOPE img"), "Invalid signal: SIGNOPE");
    }

    #[test]
    fn restart_and_health() {
        let (c, h, _) = runs("--restart on-failure:3 --health-cmd true --health-interval 1m30s --health-timeout 500ms --health-start-period 2s --health-retries 4 img")
            .expect("parse");
        assert_eq!(
            (
                h.restart_policy.name.as_str(),
                h.restart_policy.maximum_retry_count
            ),
            ("on-failure", 3)
        );
        let hc = c.healthcheck.expect("health");
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".to_string(), "true".into()]));
        assert_eq!(
            (hc.interval, hc.timeout, hc.start_period, hc.retries),
            (90_000_000_000, 500_000_000, 2_000_000_000, 4)
        );
        let (c, h, _) = runs("--no-healthcheck img").expect("parse");
        assert_eq!(
            c.healthcheck.and_then(|h| h.test),
            Some(vec!["NONE".to_string()])
        );
        assert_eq!(h.network_mode, "default");
        assert_eq!(
            errs("--no-healthcheck --health-cmd x img"),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(
            errs("--health-interval 5x img"),
            r#"invalid argument "5x" for "--health-interval" flag: time: unknown unit "x" in duration "5x""#
        );
        assert_eq!(
            errs("--health-timeout -1s img"),
            "--health-timeout cannot be negative"
        );
        assert_eq!(
            errs("--restart always:3 img"),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(
            errs("--restart sometimes img"),
            "invalid restart policy 'sometimes'"
        );
        assert_eq!(
            errs("--restart on-failure:x img"),
            r#"invalid argument "on-failure:x" for "--restart" flag: maximum retry count must be an integer"#
        );
        assert_eq!(
            errs("--restart always --rm img"),
            "Conflicting options: --restart and --rm"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3.5s"), Ok(3_723_500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
    }

    #[test]
    fn short_h_is_hostname_and_help_is_long() {
        let cmd = Cmd::try_parse_from(["run", "-h", "box", "img"]).expect("parse");
        assert_eq!(cmd.flags.hostname.as_deref(), Some("box"));
        let e = Cmd::try_parse_from(["run", "--help"])
            .map(|_| ())
            .expect_err("help");
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    }
}
