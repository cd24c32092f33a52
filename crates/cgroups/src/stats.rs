//! Statistics for `events --stats`, in the JSON shape of runc's
//! `types/events.go` `Stats` (field names and `omitempty` behaviour: a Go
//! `omitempty` integer is left out when zero, a struct never is).

use crate::apply::Target;
use crate::dircache::DirCache;
use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::manager::Manager;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc fills this from the container's network namespace; the cgroup
    /// layer has none, which runc encodes as `null`.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServicedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioQueueRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioWaitTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioMergedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "sectorsRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    #[serde(default)]
    pub kernel: u64,
    #[serde(default)]
    pub user: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(default)]
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    #[serde(default)]
    pub mem_hardwall: u64,
    #[serde(default)]
    pub mem_exclusive: u64,
    #[serde(default)]
    pub memory_migrate: u64,
    #[serde(default)]
    pub memory_spread_page: u64,
    #[serde(default)]
    pub memory_spread_slab: u64,
    #[serde(default)]
    pub memory_pressure: u64,
    #[serde(default)]
    pub sched_load_balance: u64,
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryEntry {
    #[serde(default)]
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Intel RDT is not a cgroup; runc reports an empty object without it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IntelRdt {}

/// runc's NetworkInterface (Go field names, no json tags).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

fn opt_u64(d: &Path, file: &str) -> Result<u64> {
    if !fsutil::exists(d, file) {
        return Ok(0);
    }
    fsutil::read_u64(d, file)
}

fn keyed(d: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    if !fsutil::exists(d, file) {
        return Ok(BTreeMap::new());
    }
    Ok(fsutil::read_flat_keyed(d, file)?.into_iter().collect())
}

fn u64_list(d: &Path, file: &str) -> Result<Vec<u64>> {
    if !fsutil::exists(d, file) {
        return Ok(Vec::new());
    }
    let s = fsutil::read_string(d, file)?;
    s.split_whitespace()
        .map(|v| {
            v.parse().map_err(|_| CgroupError::Parse {
                path: d.join(file),
                msg: format!("{v:?} is not a number"),
            })
        })
        .collect()
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

fn list16(d: &Path, file: &str) -> Result<Vec<u16>> {
    if !fsutil::exists(d, file) {
        return Ok(Vec::new());
    }
    let s = fsutil::read_string(d, file)?;
    let set = crate::cpulist::parse(&s).ok_or_else(|| CgroupError::Parse {
        path: d.join(file),
        msg: format!("{:?} is not a CPU list", s.trim()),
    })?;
    Ok(set
        .into_iter()
        .filter_map(|v| u16::try_from(v).ok())
        .collect())
}

/// "max" (u64::MAX) or a number, as runc reports limits.
fn limit_of(d: &Path, file: &str) -> Result<u64> {
    opt_u64(d, file)
}

/// The few figures `docker stats` shows, read with as few files as possible
/// ([`Manager::usage`]); [`Manager::stats`] is the full runc shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`).
    pub cpu_ns: u64,
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`.
    pub mem_usage: u64,
    /// v1 `memory.limit_in_bytes`, v2 `memory.max` (`u64::MAX` for none).
    pub mem_limit: u64,
    /// The inactive file cache docker's CLI subtracts: v1 `total_inactive_file`,
    /// v2 `inactive_file` of `memory.stat`.
    pub mem_inactive_file: u64,
    pub pids: u64,
    /// Bytes read and written by the block layer (v1 `io_service_bytes_recursive`,
    /// v2 `io.stat` `rbytes`/`wbytes`), summed over devices.
    pub blk_read: u64,
    pub blk_write: u64,
}

/// Where [`Manager::usage_in`] reads: by path, or through a [`DirCache`]; of the
/// manager's cgroup, or of its child cgroup `.1` ([`Manager::child_usage_in`]).
#[derive(Clone, Copy)]
struct Reader<'a>(Option<&'a DirCache>, Option<&'a str>);

impl Reader<'_> {
    /// A file's text, `None` if it does not exist (a controller the host lacks);
    /// one open instead of a stat and an open.
    fn opt(self, d: &Path, file: &str) -> Result<Option<String>> {
        // Only the single-record stats files are read here (crate::seqfile).
        let r = match (self.0, self.1) {
            (Some(c), Some(child)) => c.read_child(d, child, file),
            (Some(c), None) => c.read(d, file),
            (None, Some(child)) => fsutil::read_record(&d.join(child), file),
            (None, None) => fsutil::read_record(d, file),
        };
        match r {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn u64(self, d: &Path, file: &str) -> Result<u64> {
        Ok(self
            .opt(d, file)?
            .and_then(|s| fsutil::parse_u64(s.trim()))
            .unwrap_or(0))
    }
}

/// What v1 `memory.limit_in_bytes` reads without a limit: the page counter's
/// maximum (`PAGE_COUNTER_MAX`, `LONG_MAX / PAGE_SIZE` pages) in bytes,
/// 9223372036854771712 with 4 KiB pages.
fn v1_no_limit() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096);
    i64::MAX as u64 / page * page
}

fn key_of(text: &str, key: &str) -> u64 {
    let [v] = keys_of(text, [key]);
    v
}

/// The values of `keys` in a flat-keyed file ("key value" lines: memory.stat,
/// cpu.stat), each from the first line of its key whose value parses, else 0.
/// One pass for all keys, the lines found by a plain byte loop: v1's memory.stat
/// has ~35 short lines and `stats` wants two keys of it per container, and
/// splitting it once per key with memchr and memcmp calls per line cost 16 % of
/// `stats --no-stream`'s instructions (docs/benchmarks.md, 2026-12-07).
fn keys_of<const N: usize>(text: &str, keys: [&str; N]) -> [u64; N] {
    let mut out = [0; N];
    let mut found = [false; N];
    let mut left = N;
    for line in text.as_bytes().split(|&b| b == b'\n') {
        let Some(&first) = line.first() else {
            continue;
        };
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_bytes();
            if found[i] || key.first() != Some(&first) || line.get(key.len()) != Some(&b' ') {
                continue;
            }
            let Some(rest) = line.strip_prefix(key) else {
                continue;
            };
            let value = std::str::from_utf8(&rest[1..]).ok();
            if let Some(v) = value.and_then(|v| v.trim().parse().ok()) {
                out[i] = v;
                found[i] = true;
                left -= 1;
            }
        }
        if left == 0 {
            break;
        }
    }
    out
}

impl Manager {
    /// The figures of [`Usage`], for `stats` over many containers: only the files
    /// that hold them are read (a fifth of what [`Manager::stats`] reads on v1).
    pub fn usage(&self) -> Result<Usage> {
        self.usage_with(Reader(None, None))
    }

    /// [`Manager::usage`] through `cache`, for many containers in one pass: the same
    /// figures, with the cgroups' parent directories opened once.
    pub fn usage_in(&self, cache: &DirCache) -> Result<Usage> {
        self.usage_with(Reader(Some(cache), None))
    }

    /// [`Manager::usage_in`] of the child cgroup `name` of this manager's cgroup:
    /// the figures a manager of `<cgroup>/<name>` reads, without making one per
    /// child (a manager is a dozen paths; `stats` reads 50 siblings under one
    /// parent). `name` is one path component.
    pub fn child_usage_in(&self, name: &str, cache: &DirCache) -> Result<Usage> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(CgroupError::Invalid {
                field: "child cgroup".into(),
                msg: format!("{name:?} is not one path component"),
            });
        }
        self.usage_with(Reader(Some(cache), Some(name)))
    }

    /// `target` for reading: on a v2 host whether a controller is usable is the
    /// same answer for every container, so through a cache it is read once.
    fn usage_target(&self, r: Reader<'_>, v1: &str, v2: &str) -> Option<Target<'_>> {
        let Some(cache) = r.0 else {
            return self.target(v1, v2, "stats").ok();
        };
        if let Some(p) = self.v1_path(v1) {
            return Some(Target::V1(p));
        }
        let u = self.unified.as_ref()?;
        let has = |dir: &Path, file: &str| {
            cache
                .shared(dir, file)
                .is_some_and(|s| s.split_whitespace().any(|c| c == v2))
        };
        // The same test as `v2_has`.
        // The parent of the cgroup read: this manager's own for a child's figures.
        let parent = if r.1.is_some() {
            Some(u.path.as_path())
        } else {
            u.path.parent()
        };
        let usable = has(&u.mountpoint, "cgroup.controllers")
            && (self.delegate || parent.is_some_and(|p| has(p, "cgroup.subtree_control")));
        usable.then_some(Target::V2(&u.path))
    }

    fn usage_with(&self, r: Reader<'_>) -> Result<Usage> {
        let mut u = Usage::default();
        match self.usage_target(r, "cpuacct", "cpu") {
            Some(Target::V1(d)) => u.cpu_ns = r.u64(d, "cpuacct.usage")?,
            Some(Target::V2(d)) => {
                u.cpu_ns = r
                    .opt(d, "cpu.stat")?
                    .map_or(0, |s| key_of(&s, "usage_usec").saturating_mul(1000))
            }
            None => {}
        }
        match self.usage_target(r, "memory", "memory") {
            Some(Target::V1(d)) => {
                u.mem_usage = r.u64(d, "memory.usage_in_bytes")?;
                let stat = r.opt(d, "memory.stat")?;
                let stat = stat.as_deref().unwrap_or_default();
                let [inactive, hierarchical_limit] =
                    keys_of(stat, ["total_inactive_file", "hierarchical_memory_limit"]);
                u.mem_inactive_file = inactive;
                u.mem_limit = match hierarchical_limit {
                    // The smallest limit of the cgroup and its ancestors
                    // (memcg1_stat_format): when that is "none", the cgroup's own
                    // memory.limit_in_bytes is "none" too, the same number — one
                    // file fewer per container. Else the own limit is read.
                    h if h == v1_no_limit() => h,
                    _ => r.u64(d, "memory.limit_in_bytes")?,
                };
            }
            Some(Target::V2(d)) => {
                u.mem_usage = r.u64(d, "memory.current")?;
                u.mem_limit = r.u64(d, "memory.max")?;
                u.mem_inactive_file = r
                    .opt(d, "memory.stat")?
                    .map_or(0, |s| key_of(&s, "inactive_file"));
            }
            None => {}
        }
        if let Some(Target::V1(d) | Target::V2(d)) = self.usage_target(r, "pids", "pids") {
            u.pids = r.u64(d, "pids.current")?;
        }
        match self.usage_target(r, "blkio", "io") {
            Some(Target::V1(d)) => {
                // runc's preference: CFQ's files, else BFQ's, else the throttle layer's.
                // Which exist is the host kernel's (its I/O schedulers), the same for
                // every cgroup: the one found last is tried first.
                const FILES: [&str; 3] = [
                    "blkio.io_service_bytes_recursive",
                    "blkio.bfq.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                ];
                static FOUND: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let first = FOUND.load(std::sync::atomic::Ordering::Relaxed);
                for i in (first..FILES.len()).chain(0..first) {
                    if let Some(text) = r.opt(d, FILES[i])? {
                        FOUND.store(i, std::sync::atomic::Ordering::Relaxed);
                        for l in text.lines() {
                            let mut it = l.split_whitespace();
                            let (Some(dev), Some(op), Some(v)) = (it.next(), it.next(), it.next())
                            else {
                                continue;
                            };
                            if !dev.contains(':') {
                                continue;
                            }
                            let v: u64 = v.parse().unwrap_or(0);
                            match op {
                                "Read" => u.blk_read += v,
                                "Write" => u.blk_write += v,
                                _ => {}
                            }
                        }
                        break;
                    }
                }
            }
            Some(Target::V2(d)) => {
                for l in r.opt(d, "io.stat")?.unwrap_or_default().lines() {
                    for kv in l.split_whitespace().skip(1) {
                        match kv.split_once('=') {
                            Some(("rbytes", v)) => u.blk_read += v.parse().unwrap_or(0),
                            Some(("wbytes", v)) => u.blk_write += v.parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
            }
            None => {}
        }
        Ok(u)
    }

    /// Current statistics of every controller the cgroup has.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Ok(t) = self.target("cpuacct", "cpu", "stats") {
            self.cpu_stats(t, &mut s)?;
        }
        if let Some(d) = self.v1_path("cpu") {
            let st = keyed(d, "cpu.stat")?;
            s.cpu.throttling = Throttling {
                periods: st.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: st.get("throttled_time").copied().unwrap_or(0),
            };
        }
        if let Ok(t) = self.target("cpuset", "cpuset", "stats") {
            s.cpuset = cpuset_stats(t)?;
        }
        if let Ok(t) = self.target("memory", "memory", "stats") {
            s.memory = memory_stats(t)?;
        }
        if let Ok(t) = self.target("pids", "pids", "stats") {
            let d = match t {
                Target::V1(d) | Target::V2(d) => d,
            };
            let limit = opt_u64(d, "pids.max")?;
            s.pids = Pids {
                current: opt_u64(d, "pids.current")?,
                limit: if limit == u64::MAX { 0 } else { limit },
            };
        }
        if let Ok(t) = self.target("blkio", "io", "stats") {
            s.blkio = blkio_stats(t)?;
        }
        if let Ok(t) = self.target("hugetlb", "hugetlb", "stats") {
            for size in crate::apply::hugepage_sizes() {
                let h = match t {
                    Target::V1(d) => Hugetlb {
                        usage: opt_u64(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                        max: opt_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                        failcnt: opt_u64(d, &format!("hugetlb.{size}.failcnt"))?,
                    },
                    Target::V2(d) => {
                        if !fsutil::exists(d, &format!("hugetlb.{size}.current")) {
                            continue;
                        }
                        let ev = keyed(d, &format!("hugetlb.{size}.events"))?;
                        Hugetlb {
                            usage: opt_u64(d, &format!("hugetlb.{size}.current"))?,
                            max: 0,
                            failcnt: ev.get("max").copied().unwrap_or(0),
                        }
                    }
                };
                s.hugetlb.insert(size, h);
            }
        }
        Ok(s)
    }

    fn cpu_stats(&self, t: Target<'_>, s: &mut Stats) -> Result<()> {
        match t {
            Target::V1(d) => {
                let u = &mut s.cpu.usage;
                u.total = opt_u64(d, "cpuacct.usage")?;
                u.percpu = u64_list(d, "cpuacct.usage_percpu")?;
                u.percpu_kernel = u64_list(d, "cpuacct.usage_percpu_sys")?;
                u.percpu_user = u64_list(d, "cpuacct.usage_percpu_user")?;
                // cpuacct.stat is in USER_HZ ticks.
                let st = keyed(d, "cpuacct.stat")?;
                let ns = 1_000_000_000 / clk_tck();
                u.user = st.get("user").copied().unwrap_or(0) * ns;
                u.kernel = st.get("system").copied().unwrap_or(0) * ns;
            }
            Target::V2(d) => {
                let st = keyed(d, "cpu.stat")?;
                let g = |k: &str| st.get(k).copied().unwrap_or(0);
                s.cpu.usage.total = g("usage_usec") * 1000;
                s.cpu.usage.user = g("user_usec") * 1000;
                s.cpu.usage.kernel = g("system_usec") * 1000;
                s.cpu.throttling = Throttling {
                    periods: g("nr_periods"),
                    throttled_periods: g("nr_throttled"),
                    throttled_time: g("throttled_usec") * 1000,
                };
            }
        }
        Ok(())
    }
}

fn cpuset_stats(t: Target<'_>) -> Result<CpuSet> {
    Ok(match t {
        Target::V1(d) => CpuSet {
            cpus: list16(d, "cpuset.cpus")?,
            cpu_exclusive: opt_u64(d, "cpuset.cpu_exclusive")?,
            mems: list16(d, "cpuset.mems")?,
            mem_hardwall: opt_u64(d, "cpuset.mem_hardwall")?,
            mem_exclusive: opt_u64(d, "cpuset.mem_exclusive")?,
            memory_migrate: opt_u64(d, "cpuset.memory_migrate")?,
            memory_spread_page: opt_u64(d, "cpuset.memory_spread_page")?,
            memory_spread_slab: opt_u64(d, "cpuset.memory_spread_slab")?,
            memory_pressure: opt_u64(d, "cpuset.memory_pressure")?,
            sched_load_balance: opt_u64(d, "cpuset.sched_load_balance")?,
            sched_relax_domain_level: if fsutil::exists(d, "cpuset.sched_relax_domain_level") {
                fsutil::read_string(d, "cpuset.sched_relax_domain_level")?
                    .trim()
                    .parse()
                    .unwrap_or(-1)
            } else {
                0
            },
        },
        Target::V2(d) => CpuSet {
            cpus: list16(d, "cpuset.cpus.effective")?,
            mems: list16(d, "cpuset.mems.effective")?,
            ..Default::default()
        },
    })
}

fn memory_stats(t: Target<'_>) -> Result<Memory> {
    Ok(match t {
        Target::V1(d) => {
            let entry = |prefix: &str| -> Result<MemoryEntry> {
                let p = |f: &str| format!("{prefix}.{f}");
                Ok(MemoryEntry {
                    limit: limit_of(d, &p("limit_in_bytes"))?,
                    usage: opt_u64(d, &p("usage_in_bytes"))?,
                    max: opt_u64(d, &p("max_usage_in_bytes"))?,
                    failcnt: opt_u64(d, &p("failcnt"))?,
                })
            };
            let raw = keyed(d, "memory.stat")?;
            Memory {
                cache: raw.get("cache").copied().unwrap_or(0),
                usage: entry("memory")?,
                swap: entry("memory.memsw")?,
                kernel: entry("memory.kmem")?,
                kernel_tcp: entry("memory.kmem.tcp")?,
                raw,
            }
        }
        Target::V2(d) => {
            let raw = keyed(d, "memory.stat")?;
            let events = keyed(d, "memory.events")?;
            let usage = MemoryEntry {
                limit: limit_of(d, "memory.max")?,
                usage: opt_u64(d, "memory.current")?,
                max: opt_u64(d, "memory.peak")?,
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            // v1 reported memory+swap; keep that meaning for consumers.
            let swap_cur = opt_u64(d, "memory.swap.current")?;
            let swap_max = limit_of(d, "memory.swap.max")?;
            let swap = MemoryEntry {
                limit: if swap_max == u64::MAX || usage.limit == u64::MAX {
                    u64::MAX
                } else {
                    swap_max + usage.limit
                },
                usage: swap_cur + usage.usage,
                max: 0,
                failcnt: 0,
            };
            Memory {
                cache: raw.get("file").copied().unwrap_or(0),
                usage,
                swap,
                kernel: MemoryEntry::default(),
                kernel_tcp: MemoryEntry::default(),
                raw,
            }
        }
    })
}

/// v1 `maj:min Op value` lines ("Total N" lines carry no device, skipped).
fn blkio_entries(d: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    if !fsutil::exists(d, file) {
        return Ok(Vec::new());
    }
    let text = fsutil::read_string(d, file)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            continue;
        }
        let Some((ma, mi)) = f[0].split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        let (op, v) = if f.len() == 3 {
            (f[1].to_string(), f[2])
        } else {
            (String::new(), f[1])
        };
        let Ok(value) = v.parse() else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op,
            value,
        });
    }
    Ok(out)
}

fn blkio_stats(t: Target<'_>) -> Result<Blkio> {
    match t {
        Target::V1(d) => {
            // CFQ files when present, else BFQ's, else the throttle layer's
            // (the same preference as runc).
            let pick = |a: &str, b: &str, c: &str| -> Result<Vec<BlkioEntry>> {
                for f in [a, b, c] {
                    if !f.is_empty() && fsutil::exists(d, f) {
                        return blkio_entries(d, f);
                    }
                }
                Ok(Vec::new())
            };
            Ok(Blkio {
                io_service_bytes_recursive: pick(
                    "blkio.io_service_bytes_recursive",
                    "blkio.bfq.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                )?,
                io_serviced_recursive: pick(
                    "blkio.io_serviced_recursive",
                    "blkio.bfq.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                )?,
                io_queued_recursive: pick("blkio.io_queued_recursive", "", "")?,
                io_service_time_recursive: pick("blkio.io_service_time_recursive", "", "")?,
                io_wait_time_recursive: pick("blkio.io_wait_time_recursive", "", "")?,
                io_merged_recursive: pick("blkio.io_merged_recursive", "", "")?,
                io_time_recursive: pick("blkio.time_recursive", "", "")?,
                sectors_recursive: pick("blkio.sectors_recursive", "", "")?,
            })
        }
        Target::V2(d) => {
            let mut b = Blkio::default();
            if !fsutil::exists(d, "io.stat") {
                return Ok(b);
            }
            let text = fsutil::read_string(d, "io.stat")?;
            for line in text.lines() {
                let mut it = line.split_whitespace();
                let Some((ma, mi)) = it.next().and_then(|x| x.split_once(':')) else {
                    continue;
                };
                let (Ok(major), Ok(minor)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
                    continue;
                };
                for kv in it {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let Ok(value) = v.parse::<u64>() else {
                        continue;
                    };
                    let (list, op) = match k {
                        "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                        "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                        "rios" => (&mut b.io_serviced_recursive, "Read"),
                        "wios" => (&mut b.io_serviced_recursive, "Write"),
                        _ => continue,
                    };
                    list.push(BlkioEntry {
                        major,
                        minor,
                        op: op.into(),
                        value,
                    });
                }
            }
            Ok(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_keys() {
        let stat = "cache 5\ntotal_inactive_file 7\ninactive_file 3\n";
        assert_eq!(key_of(stat, "total_inactive_file"), 7);
        assert_eq!(key_of(stat, "inactive_file"), 3);
        assert_eq!(key_of(stat, "missing"), 0);
        // The first line, a key that only ends another one, a key with no value
        // after it, a value that does not parse before one that does, no final
        // newline.
        assert_eq!(key_of(stat, "cache"), 5);
        assert_eq!(key_of("total_inactive_file 7\n", "inactive_file"), 0);
        assert_eq!(key_of("cache_x 1\ncache", "cache"), 0);
        assert_eq!(key_of("usage_usec x\nusage_usec 12", "usage_usec"), 12);
        assert_eq!(key_of("a 1\nusage_usec 12 \n", "usage_usec"), 12);
        assert_eq!(key_of("usage_usec\nusage_usec 4", "usage_usec"), 4);
        assert_eq!(key_of("\n\nusage_usec 4\n\n", "usage_usec"), 4);
    }

    #[test]
    fn several_keys_in_one_pass() {
        let stat = "cache 5\nhierarchical_memory_limit 9\ntotal_cache 6\ntotal_inactive_file 7\n";
        assert_eq!(
            keys_of(stat, ["total_inactive_file", "hierarchical_memory_limit"]),
            [7, 9]
        );
        // Each key from its own first good line, whichever order the file has; a
        // key absent is 0 and does not stop the others.
        assert_eq!(
            keys_of(stat, ["missing", "cache", "total_cache"]),
            [0, 5, 6]
        );
        assert_eq!(keys_of("a x\nb 2\na 1\nb 3\n", ["a", "b"]), [1, 2]);
        // The same answers as one key at a time, over a real v1 memory.stat's keys.
        let real = "cache 0\nrss 49152\nrss_huge 0\nshmem 0\nmapped_file 0\n\
                    hierarchical_memory_limit 9223372036854771712\n\
                    total_cache 4096\ntotal_inactive_file 8192\ntotal_active_file 1\n";
        for a in [
            "cache",
            "rss",
            "total_inactive_file",
            "hierarchical_memory_limit",
        ] {
            for b in ["total_active_file", "rss_huge", "nope", "total_cache"] {
                assert_eq!(keys_of(real, [a, b]), [key_of(real, a), key_of(real, b)]);
            }
        }
        assert_eq!(
            key_of(real, "hierarchical_memory_limit"),
            9223372036854771712
        );
    }

    #[test]
    fn json_shape_matches_runc() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "blkio",
                "cpu",
                "cpuset",
                "hugetlb",
                "intel_rdt",
                "memory",
                "network_interfaces",
                "pids"
            ]
        );
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(
            v["cpu"],
            serde_json::json!({"usage": {"kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
        assert!(v["memory"].get("kernelTCP").is_some());
        let mut s = Stats::default();
        s.cpu.throttling.throttled_periods = 3;
        s.blkio.io_queued_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 1,
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(v["blkio"]["ioQueueRecursive"][0]["op"], "Read");
    }
}
