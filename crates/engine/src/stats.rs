//! `stats`: one sample of a container's resource use, from its cgroup (the cgroups
//! crate's `Manager::usage`, v1, v2 and hybrid alike) and its network namespace
//! (`/proc/<pid>/net/dev`). The figures docker's CLI derives are computed here
//! (memory without the inactive file cache, block I/O summed by direction); the
//! CLI turns two samples into a CPU percentage and prints.

use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::state::{CtrsDir, FilesSay, Observed};
use oxcart_cgroups::{DirCache, Layout as CgLayout, Manager};

/// One sample. Zero everywhere for a container that does not run (docker prints
/// `0.00%`, `0B / 0B` for those).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub running: bool,
    /// Nanoseconds of CPU the cgroup used.
    pub cpu_ns: u64,
    /// The host's CPU time (all CPUs) in nanoseconds, from /proc/stat (docker's
    /// `system_cpu_usage`).
    pub system_ns: u64,
    pub online_cpus: u32,
    /// When the sample was taken and when the container started (unix nanoseconds).
    pub at_ns: i64,
    pub started_ns: i64,
    /// docker CLI's memory usage: usage minus `total_inactive_file` (v1) or
    /// `inactive_file` (v2).
    pub mem_usage: u64,
    /// The cgroup's limit, or the host's memory when it has none (docker's daemon).
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

/// What `stats` needs of a container's record (`Db::list_for_stats` reads no more:
/// a whole record is ~1.7 KB of JSON, and 50 of them parsed into `Record`s were a
/// tenth of `stats --no-stream`'s time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsCtr {
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    pub network_mode: String,
    pub cgroup_parent: String,
}

impl StatsCtr {
    pub fn of(rec: &Record) -> StatsCtr {
        StatsCtr {
            id: rec.id.clone(),
            name: rec.name.clone(),
            network_mode: rec.host_config.network_mode.clone(),
            cgroup_parent: rec.host_config.cgroup_parent.clone(),
        }
    }
}

/// No endpoint of its own: docker shows 0B / 0B for `host` and `none`.
fn has_endpoints(network_mode: &str) -> bool {
    !matches!(network_mode, "host" | "none")
}

/// The host's memory in bytes (`MemTotal` of /proc/meminfo; 0 if unreadable): docker's
/// limit for a container without one, and `info`'s `MemTotal`.
pub fn mem_total() -> u64 {
    // sysinfo(2)'s totalram is the figure /proc/meminfo prints as MemTotal (both
    // totalram_pages()), without opening, reading and parsing a 1.5 KB file.
    // SAFETY: an all-zero sysinfo is valid; the call fills the one we own.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a sysinfo struct.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return 0;
    }
    si.totalram.saturating_mul(u64::from(si.mem_unit))
}

/// What is read once per `stats` command (the cgroup layout, the host's memory) or
/// once per frame (the host's CPU time) rather than per container.
pub struct StatsHost {
    layout: CgLayout,
    mem_total: u64,
    system: (u64, u32),
    /// The containers' cgroup parents, opened once per frame (cgroups' dircache.rs).
    dirs: DirCache,
    /// The engine's containers directory, opened once per frame (`quick_sample`).
    ctrs: Option<CtrsDir>,
    /// Managers of the containers' cgroup parents by `--cgroup-parent` (`None`
    /// where the parent has none, e.g. the hierarchy's root: then each container
    /// gets its own manager).
    parents: std::sync::Mutex<Vec<(String, Option<std::sync::Arc<Manager>>)>>,
}

impl StatsHost {
    pub fn new() -> Result<StatsHost> {
        let layout =
            CgLayout::detect().map_err(|e| EngineError::Invalid(format!("cgroups: {e}")))?;
        Ok(StatsHost {
            layout,
            mem_total: mem_total(),
            system: system_cpu(),
            dirs: DirCache::new(),
            ctrs: None,
            parents: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn parent_manager(&self, cgroup_parent: &str) -> Option<std::sync::Arc<Manager>> {
        let mut g = self
            .parents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, m)) = g.iter().find(|(p, _)| p == cgroup_parent) {
            return m.clone();
        }
        let path = crate::start::cgroup_parent_path(cgroup_parent);
        let m = Manager::with_layout(&self.layout, Some(&path), "")
            .ok()
            .map(std::sync::Arc::new);
        g.push((cgroup_parent.to_string(), m.clone()));
        m
    }

    /// [`StatsHost::new`] for a pass over the containers below `containers_dir`
    /// ([`quick_sample`]).
    pub fn for_containers(containers_dir: std::path::PathBuf) -> Result<StatsHost> {
        let mut h = StatsHost::new()?;
        h.ctrs = Some(CtrsDir::open(containers_dir));
        Ok(h)
    }

    /// Read the host's CPU time again, and open the cgroups' parents anew (once per
    /// frame).
    pub fn refresh(&mut self) {
        self.system = system_cpu();
        self.dirs.clear();
    }
}

/// The host's CPU time in nanoseconds and the number of online CPUs, as docker's
/// daemon reads them (the `cpu` line of /proc/stat, USER_HZ ticks).
pub fn system_cpu() -> (u64, u32) {
    // One read, as /proc/meminfo above (show_stat is single_open too).
    let Ok(s) = oxcart_cgroups::seqfile::read_path("/proc/stat".as_ref()) else {
        return (0, 0);
    };
    let mut total = 0u64;
    let mut cpus = 0u32;
    for l in s.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest is in user).
            total = rest
                .split_whitespace()
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
        } else if l.starts_with("cpu") {
            cpus += 1;
        }
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    (total * (1_000_000_000 / hz), cpus)
}

/// Received and sent bytes over the interfaces of `pid`'s network namespace, the
/// loopback excluded (docker counts the container's endpoints only).
pub fn net_bytes(pid: i32) -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    let (mut rx, mut tx) = (0, 0);
    for l in s.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// A sample of a container as `Engine::observe` left it. Needs no engine, so the
/// caller may sample many containers on several threads.
pub fn sample(host: &StatsHost, rec: &Record, obs: &Observed) -> Result<Sample> {
    if !obs.status.is_running() || obs.pid <= 0 {
        return Ok(Sample::default());
    }
    let hc = &rec.host_config;
    let u = usage(host, &hc.cgroup_parent, &rec.id)?;
    let net = if has_endpoints(&hc.network_mode) {
        net_bytes(obs.pid)
    } else {
        (0, 0)
    };
    Ok(from_usage(host, &u, net, &obs.started_at))
}

/// A container's sample read without `Engine::observe`, for `stats` over many
/// containers: `Some` of a running container's sample, or of the zeros of a
/// stopped one; `None` where this cannot tell — then `observe` and [`sample`]
/// decide, as they did for every container before.
///
/// Why it may skip `observe`: that proves the monitor alive (`/proc/<pid>/stat`,
/// a tenth of the pass) and reads the health log and paused marker, none of which a
/// sample needs. Here the container runs when its monitor's files say it started
/// and did not exit (`CtrsDir::files_say`) and its own cgroup — named by its id,
/// so never another container's — holds processes (`pids.current` > 0): true of a
/// running or paused container whatever became of its monitor, false after an exit
/// (the cgroup emptied or removed) or a reboot (no cgroup). The container's pid,
/// which another process may have reused, is trusted only where it must be (its
/// network namespace's counters) and only once the monitor is proven alive.
pub fn quick_sample(host: &StatsHost, c: &StatsCtr) -> Option<Sample> {
    let m = match host.ctrs.as_ref()?.files_say(&c.id) {
        FilesSay::Stopped => return Some(Sample::default()),
        FilesSay::Started(m) => m,
        FilesSay::Unsure => return None,
    };
    let u = usage(host, &c.cgroup_parent, &c.id).ok()?;
    if u.pids == 0 {
        return None;
    }
    let net = if has_endpoints(&c.network_mode) {
        if !crate::state::monitor_alive(&m, &crate::state::boot_id()) {
            return None;
        }
        net_bytes(m.ctr_pid)
    } else {
        (0, 0)
    };
    Some(from_usage(host, &u, net, &m.started_at))
}

/// The cgroup figures of container `id` made under `cgroup_parent`.
fn usage(host: &StatsHost, cgroup_parent: &str, id: &str) -> Result<oxcart_cgroups::Usage> {
    let stats_err = |e| EngineError::Invalid(format!("stats of {id}: {e}"));
    // Through the parent's manager, made once per parent (not a dozen paths per
    // container).
    if let Some(parent) = host.parent_manager(cgroup_parent) {
        return parent.child_usage_in(id, &host.dirs).map_err(stats_err);
    }
    let cg = crate::start::cgroups_path_of(cgroup_parent, id);
    let m = Manager::with_layout(&host.layout, Some(&cg), id)
        .map_err(|e| EngineError::Invalid(format!("cgroup of {id}: {e}")))?;
    m.usage_in(&host.dirs).map_err(stats_err)
}

/// The sample of a running container from its cgroup's figures.
fn from_usage(
    host: &StatsHost,
    u: &oxcart_cgroups::Usage,
    (net_rx, net_tx): (u64, u64),
    started_at: &str,
) -> Sample {
    // docker CLI's calculateMemUsageUnixNoCache.
    let mem_usage = if u.mem_inactive_file < u.mem_usage {
        u.mem_usage - u.mem_inactive_file
    } else {
        u.mem_usage
    };
    let mem_limit = match u.mem_limit {
        0 => host.mem_total,
        l if host.mem_total > 0 => l.min(host.mem_total),
        l => l,
    };
    let (system_ns, online_cpus) = host.system;
    Sample {
        running: true,
        cpu_ns: u.cpu_ns,
        system_ns,
        online_cpus,
        at_ns: oxcart_jsonlog::events::now_nanos(),
        started_ns: crate::time::parse(started_at)
            .map(|(s, n)| s * 1_000_000_000 + i64::from(n))
            .unwrap_or(0),
        mem_usage,
        mem_limit,
        net_rx,
        net_tx,
        blk_read: u.blk_read,
        blk_write: u.blk_write,
        pids: u.pids,
    }
}

/// docker CLI's CPU percentage between two samples (calculateCPUPercentUnix):
/// the container's share of the host's CPU time, times the online CPUs.
pub fn cpu_percent(prev: &Sample, cur: &Sample) -> f64 {
    let cpu = cur.cpu_ns as f64 - prev.cpu_ns as f64;
    let sys = cur.system_ns as f64 - prev.system_ns as f64;
    if cpu > 0.0 && sys > 0.0 {
        cpu / sys * f64::from(cur.online_cpus.max(1)) * 100.0
    } else {
        0.0
    }
}

/// The CPU percentage of a single sample: the average since the container started
/// (podman's `stats --no-stream`; docker's waits a second for a second sample).
pub fn cpu_percent_since_start(s: &Sample) -> f64 {
    let wall = (s.at_ns - s.started_ns) as f64;
    if s.started_ns <= 0 || wall <= 0.0 {
        return 0.0;
    }
    s.cpu_ns as f64 / wall * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_as_docker() {
        let a = Sample {
            cpu_ns: 1_000,
            system_ns: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let b = Sample {
            cpu_ns: 2_000,
            system_ns: 20_000,
            online_cpus: 2,
            ..Default::default()
        };
        assert!((cpu_percent(&a, &b) - 20.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&b, &b), 0.0);
        let s = Sample {
            cpu_ns: 500_000_000,
            at_ns: 2_000_000_000,
            started_ns: 1_000_000_000,
            ..Default::default()
        };
        assert!((cpu_percent_since_start(&s) - 50.0).abs() < 1e-9);
    }

    /// sysinfo's total is /proc/meminfo's MemTotal, which docker's daemon reads.
    #[test]
    fn mem_total_is_meminfos() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        let kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("MemTotal");
        assert_eq!(mem_total(), kb * 1024);
    }

    #[test]
    fn proc_stat_has_the_host_cpus() {
        let (ns, cpus) = system_cpu();
        assert!(ns > 0 && cpus >= 1);
        let (rx, tx) = net_bytes(std::process::id() as i32);
        let _ = (rx, tx);
    }
}
