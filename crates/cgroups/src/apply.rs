//! Writing `linux.resources` (config-linux.md "Control groups") to v1
//! controllers and cgroup v2 files.
//!
//! `apply` validates everything first (values, the host's controllers and
//! files) and only then writes, so a config the host cannot honour fails
//! before the cgroup is touched. Write ordering follows runc's fs/fs2
//! managers where the kernel cares about order.

use crate::bpf;
use crate::cpulist;
use crate::devices::{self, DeviceState};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use crate::layout::HostMode;
use crate::manager::Manager;
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

const R: &str = "linux.resources";

fn f(s: &str) -> String {
    format!("{R}.{s}")
}

/// Sizes the kernel supports, as cgroup file names spell them ("2MB", "1GB").
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(kb) = n
                .strip_prefix("hugepages-")
                .and_then(|s| s.strip_suffix("kB"))
            {
                if let Ok(kb) = kb.parse::<u64>() {
                    out.push(hugepage_name(kb * 1024));
                }
            }
        }
    }
    out.sort();
    out
}

/// mm/hugetlb_cgroup.c mem_fmt(): KB, MB or GB, largest exact unit.
fn hugepage_name(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MB", bytes >> 20)
    } else {
        format!("{}KB", bytes >> 10)
    }
}

fn online(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262142
}

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000].
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// runc's ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap
/// (the v1 memsw meaning); v2's memory.swap.max is swap alone.
pub fn swap_to_v2(swap: i64, limit: i64) -> std::result::Result<i64, String> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err("a swap limit requires a memory limit".into());
    }
    if limit < 0 {
        return Err(format!("invalid memory limit {limit}"));
    }
    if swap < limit {
        return Err(format!(
            "memory+swap limit {swap} is below the memory limit {limit}"
        ));
    }
    Ok(swap - limit)
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

impl Manager {
    /// Validate `r` against this host and then write it to the cgroup
    /// (also what `update` uses: only the fields present are written). On
    /// error the caller destroys the cgroup (create) or reports (update).
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.validate(r)?;
        self.write_resources(r)
    }

    /// `update`: the same as [`Manager::apply`] on an existing cgroup; only
    /// the fields present in `r` change (memory swap -1 = unlimited).
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.apply(r)
    }

    fn describe_host(&self) -> String {
        match self.mode {
            HostMode::V1 => "cgroup v1 host".into(),
            HostMode::V2 => "cgroup v2 host".into(),
            HostMode::Hybrid => "hybrid host".into(),
        }
    }

    /// Can `ctrl` be used through the unified hierarchy?
    fn v2_has(&self, ctrl: &str) -> bool {
        let Some(u) = &self.unified else {
            return false;
        };
        let Ok(avail) = fsutil::read_string(&u.mountpoint, "cgroup.controllers") else {
            return false;
        };
        if !avail.split_whitespace().any(|c| c == ctrl) {
            return false;
        }
        // Without delegation we may only use what is already enabled for
        // our cgroup by its parent.
        self.delegate
            || u.path.parent().is_some_and(|p| {
                fsutil::read_string(p, "cgroup.subtree_control")
                    .is_ok_and(|s| s.split_whitespace().any(|c| c == ctrl))
            })
    }

    pub(crate) fn target(&self, v1: &str, v2: &str, field: &str) -> Result<Target<'_>> {
        if let Some(p) = self.v1_path(v1) {
            return Ok(Target::V1(p));
        }
        if !v2.is_empty() && self.v2_has(v2) {
            if let Some(u) = self.unified_path() {
                return Ok(Target::V2(u));
            }
        }
        let name = if self.mode == HostMode::V2 || v1.is_empty() {
            v2
        } else {
            v1
        };
        let why = match (&self.unified, self.delegate) {
            (Some(u), false) if !v2.is_empty() => format!(
                " (not enabled in {})",
                u.path
                    .parent()
                    .unwrap_or(&u.path)
                    .join("cgroup.subtree_control")
                    .display()
            ),
            _ => String::new(),
        };
        Err(CgroupError::invalid(
            field,
            format!(
                "the {name} controller is not available on this {}{why}",
                self.describe_host()
            ),
        ))
    }

    /// Enable `ctrl` in the subtree_control of every ancestor of our v2
    /// cgroup (top-down, as the kernel requires).
    fn ensure_v2(&self, ctrl: &str, field: &str) -> Result<()> {
        let Some(u) = &self.unified else {
            return Ok(());
        };
        let Ok(rel) = u.path.strip_prefix(&u.mountpoint) else {
            return Ok(());
        };
        let mut cur = u.mountpoint.clone();
        let comps: Vec<_> = rel.components().collect();
        let created = self.to_state().created;
        for c in comps {
            let has = fsutil::read_string(&cur, "cgroup.subtree_control")?
                .split_whitespace()
                .any(|x| x == ctrl);
            if !has {
                if !self.delegate && !created.contains(&cur) {
                    return Err(CgroupError::invalid(
                        field,
                        format!(
                            "the {ctrl} controller is not enabled in {}",
                            cur.join("cgroup.subtree_control").display()
                        ),
                    ));
                }
                write_field(field, &cur, "cgroup.subtree_control", &format!("+{ctrl}"))?;
            }
            cur.push(c);
        }
        Ok(())
    }

    fn validate(&self, r: &LinuxResources) -> Result<()> {
        if let Some(m) = &r.memory {
            self.validate_memory(m)?;
        }
        if let Some(c) = &r.cpu {
            self.validate_cpu(c)?;
        }
        if r.pids.is_some() {
            self.target("pids", "pids", &f("pids"))?;
        }
        if let Some(b) = &r.block_io {
            self.validate_blkio(b)?;
        }
        if !r.hugepage_limits.is_empty() {
            let t = self.target("hugetlb", "hugetlb", &f("hugepageLimits"))?;
            let sizes = hugepage_sizes();
            for (i, h) in r.hugepage_limits.iter().enumerate() {
                if !sizes.contains(&h.page_size) {
                    return Err(CgroupError::invalid(
                        f(&format!("hugepageLimits[{i}].pageSize")),
                        format!(
                            "{:?} is not a huge page size of this host (have {})",
                            h.page_size,
                            sizes.join(", ")
                        ),
                    ));
                }
                if let Target::V1(p) = t {
                    let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
                    if !fsutil::exists(p, &file) {
                        return Err(CgroupError::invalid(
                            f(&format!("hugepageLimits[{i}]")),
                            format!("{} does not exist", p.join(file).display()),
                        ));
                    }
                }
            }
        }
        if let Some(n) = &r.network {
            if self.mode == HostMode::V2 {
                return Err(CgroupError::invalid(
                    f("network"),
                    "net_cls and net_prio are cgroup v1 controllers; this is a cgroup v2 host",
                ));
            }
            if n.class_id.is_some() {
                self.target("net_cls", "", &f("network.classID"))?;
            }
            if !n.priorities.is_empty() {
                self.target("net_prio", "", &f("network.priorities"))?;
            }
            for (i, p) in n.priorities.iter().enumerate() {
                if p.name.is_empty() || p.name.contains(char::is_whitespace) {
                    return Err(CgroupError::invalid(
                        f(&format!("network.priorities[{i}].name")),
                        format!("{:?} is not an interface name", p.name),
                    ));
                }
            }
        }
        if let Some(rd) = &r.rdma {
            if !rd.is_empty() {
                self.target("rdma", "rdma", &f("rdma"))?;
            }
            for dev in rd.keys() {
                if dev.is_empty() || dev.contains(char::is_whitespace) {
                    return Err(CgroupError::invalid(
                        f(&format!("rdma.{dev}")),
                        "invalid device name",
                    ));
                }
            }
        }
        if !r.devices.is_empty() {
            devices::state_from_spec(&r.devices)?;
            if self.v1_path("devices").is_none() && self.unified.is_none() {
                return Err(CgroupError::invalid(
                    f("devices"),
                    "this host has neither the v1 devices controller nor cgroup v2",
                ));
            }
        }
        if let Some(u) = &r.unified {
            self.validate_unified(u)?;
        }
        Ok(())
    }

    fn validate_memory(&self, m: &LinuxMemory) -> Result<()> {
        let t = self.target("memory", "memory", &f("memory"))?;
        if let Some(s) = m.swappiness {
            if s > 100 {
                return Err(CgroupError::invalid(
                    f("memory.swappiness"),
                    format!("{s} is outside 0-100"),
                ));
            }
        }
        let limit = m.limit.unwrap_or(0);
        let swap = m.swap.unwrap_or(0);
        for (name, v) in [
            ("limit", m.limit),
            ("reservation", m.reservation),
            ("swap", m.swap),
        ] {
            if let Some(v) = v {
                if v < -1 {
                    return Err(CgroupError::invalid(
                        f(&format!("memory.{name}")),
                        format!("{v} is negative"),
                    ));
                }
            }
        }
        match t {
            Target::V1(p) => {
                if swap > 0 && limit > 0 && swap < limit {
                    return Err(CgroupError::invalid(
                        f("memory.swap"),
                        format!("memory+swap limit {swap} is below the memory limit {limit}"),
                    ));
                }
                if swap != 0 && !fsutil::exists(p, "memory.memsw.limit_in_bytes") {
                    return Err(CgroupError::invalid(
                        f("memory.swap"),
                        "swap accounting is disabled on this host (no memory.memsw.limit_in_bytes)",
                    ));
                }
                if m.kernel.is_some() && !fsutil::exists(p, "memory.kmem.limit_in_bytes") {
                    return Err(CgroupError::invalid(
                        f("memory.kernel"),
                        "kernel memory limits are not supported by this kernel",
                    ));
                }
                if m.kernel_tcp.is_some() && !fsutil::exists(p, "memory.kmem.tcp.limit_in_bytes") {
                    return Err(CgroupError::invalid(
                        f("memory.kernelTCP"),
                        "kernel TCP memory limits are not supported by this kernel",
                    ));
                }
            }
            Target::V2(_) => {
                if m.swappiness.is_some() {
                    return Err(CgroupError::invalid(
                        f("memory.swappiness"),
                        "not supported by cgroup v2 (no per-cgroup swappiness file)",
                    ));
                }
                if m.disable_oom_killer == Some(true) {
                    return Err(CgroupError::invalid(
                        f("memory.disableOOMKiller"),
                        "cgroup v2 cannot disable the OOM killer",
                    ));
                }
                if m.kernel.is_some() {
                    return Err(CgroupError::invalid(
                        f("memory.kernel"),
                        "cgroup v2 has no separate kernel memory limit",
                    ));
                }
                if m.kernel_tcp.is_some() {
                    return Err(CgroupError::invalid(
                        f("memory.kernelTCP"),
                        "cgroup v2 has no separate kernel TCP memory limit",
                    ));
                }
                if m.use_hierarchy == Some(false) {
                    return Err(CgroupError::invalid(
                        f("memory.useHierarchy"),
                        "cgroup v2 is always hierarchical",
                    ));
                }
                if m.swap.is_some() || limit == -1 {
                    swap_to_v2(swap, limit)
                        .map_err(|e| CgroupError::invalid(f("memory.swap"), e))?;
                }
            }
        }
        if m.check_before_update == Some(true) && limit > 0 {
            let (dir, file) = match t {
                Target::V1(p) => (p, "memory.usage_in_bytes"),
                Target::V2(p) => (p, "memory.current"),
            };
            if dir.join(file).exists() {
                let usage = fsutil::read_u64(dir, file)?;
                if usage > limit as u64 {
                    return Err(CgroupError::invalid(
                        f("memory.limit"),
                        format!(
                            "{limit} is below the current usage {usage} ({})",
                            dir.join(file).display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_cpu(&self, c: &LinuxCpu) -> Result<()> {
        let wants_cpu = c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
            || c.idle.is_some();
        if wants_cpu {
            let t = self.target("cpu", "cpu", &f("cpu"))?;
            if let Some(s) = c.shares {
                if s != 0 && !(2..=262144).contains(&s) {
                    return Err(CgroupError::invalid(
                        f("cpu.shares"),
                        format!("{s} is outside 2-262144"),
                    ));
                }
            }
            if let Some(p) = c.period {
                if p != 0 && !(1000..=1_000_000).contains(&p) {
                    return Err(CgroupError::invalid(
                        f("cpu.period"),
                        format!("{p} is outside 1000-1000000 (µs)"),
                    ));
                }
            }
            if let Some(q) = c.quota {
                if q != -1 && q != 0 && q < 1000 {
                    return Err(CgroupError::invalid(
                        f("cpu.quota"),
                        format!("{q} is below the minimum 1000 (µs)"),
                    ));
                }
            }
            if let Some(i) = c.idle {
                if i != 0 && i != 1 {
                    return Err(CgroupError::invalid(
                        f("cpu.idle"),
                        format!("{i} is not 0 or 1"),
                    ));
                }
            }
            match t {
                Target::V1(p) => {
                    let need = [
                        (c.burst.is_some(), "cpu.burst", "cpu.cfs_burst_us"),
                        (c.idle.is_some(), "cpu.idle", "cpu.idle"),
                        (
                            c.realtime_runtime.is_some(),
                            "cpu.realtimeRuntime",
                            "cpu.rt_runtime_us",
                        ),
                        (
                            c.realtime_period.is_some(),
                            "cpu.realtimePeriod",
                            "cpu.rt_period_us",
                        ),
                    ];
                    for (want, field, file) in need {
                        if want && !fsutil::exists(p, file) {
                            return Err(CgroupError::invalid(
                                f(field),
                                format!(
                                    "not supported by this kernel (no {})",
                                    p.join(file).display()
                                ),
                            ));
                        }
                    }
                }
                Target::V2(p) => {
                    if c.realtime_runtime.is_some() || c.realtime_period.is_some() {
                        return Err(CgroupError::invalid(
                            f(if c.realtime_runtime.is_some() {
                                "cpu.realtimeRuntime"
                            } else {
                                "cpu.realtimePeriod"
                            }),
                            "real-time scheduling limits are not supported by cgroup v2",
                        ));
                    }
                    // The files appear once the controller is enabled; only
                    // check when it already is.
                    if fsutil::exists(p, "cpu.max") {
                        for (want, field, file) in [
                            (c.burst.is_some(), "cpu.burst", "cpu.max.burst"),
                            (c.idle.is_some(), "cpu.idle", "cpu.idle"),
                        ] {
                            if want && !fsutil::exists(p, file) {
                                return Err(CgroupError::invalid(
                                    f(field),
                                    format!(
                                        "not supported by this kernel (no {})",
                                        p.join(file).display()
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
        }
        if c.cpus.is_some() || c.mems.is_some() {
            self.target("cpuset", "cpuset", &f("cpu"))?;
        }
        if let Some(cpus) = &c.cpus {
            check_list(
                &f("cpu.cpus"),
                cpus,
                "/sys/devices/system/cpu/online",
                "online CPUs",
            )?;
        }
        if let Some(mems) = &c.mems {
            check_list(
                &f("cpu.mems"),
                mems,
                "/sys/devices/system/node/online",
                "online memory nodes",
            )?;
        }
        Ok(())
    }

    fn validate_blkio(&self, b: &LinuxBlockIo) -> Result<()> {
        let t = self.target("blkio", "io", &f("blockIO"))?;
        let weights = [
            ("blockIO.weight", b.weight),
            ("blockIO.leafWeight", b.leaf_weight),
        ];
        for (name, w) in weights {
            if let Some(w) = w {
                if w != 0 && !(10..=1000).contains(&w) {
                    return Err(CgroupError::invalid(
                        f(name),
                        format!("{w} is outside 10-1000"),
                    ));
                }
            }
        }
        for (i, d) in b.weight_device.iter().enumerate() {
            for (name, w) in [("weight", d.weight), ("leafWeight", d.leaf_weight)] {
                if let Some(w) = w {
                    if w != 0 && !(10..=1000).contains(&w) {
                        return Err(CgroupError::invalid(
                            f(&format!("blockIO.weightDevice[{i}].{name}")),
                            format!("{w} is outside 10-1000"),
                        ));
                    }
                }
            }
        }
        let all_dev = b
            .weight_device
            .iter()
            .map(|d| (d.major, d.minor, "weightDevice"))
            .chain(
                b.throttle_read_bps_device
                    .iter()
                    .map(|d| (d.major, d.minor, "throttleReadBpsDevice")),
            )
            .chain(
                b.throttle_write_bps_device
                    .iter()
                    .map(|d| (d.major, d.minor, "throttleWriteBpsDevice")),
            )
            .chain(
                b.throttle_read_iops_device
                    .iter()
                    .map(|d| (d.major, d.minor, "throttleReadIOPSDevice")),
            )
            .chain(
                b.throttle_write_iops_device
                    .iter()
                    .map(|d| (d.major, d.minor, "throttleWriteIOPSDevice")),
            );
        for (major, minor, name) in all_dev {
            if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
                return Err(CgroupError::invalid(
                    f(&format!("blockIO.{name}")),
                    format!("device {major}:{minor} is invalid"),
                ));
            }
        }
        match t {
            Target::V1(p) => {
                let (wfile, wdfile) = blkio_weight_files(p);
                let mut need: Vec<(bool, String, &str)> = vec![
                    (b.weight.is_some_and(|w| w != 0), f("blockIO.weight"), wfile),
                    (
                        b.leaf_weight.is_some_and(|w| w != 0),
                        f("blockIO.leafWeight"),
                        "blkio.leaf_weight",
                    ),
                ];
                for (i, d) in b.weight_device.iter().enumerate() {
                    need.push((
                        d.weight.is_some_and(|w| w != 0),
                        f(&format!("blockIO.weightDevice[{i}].weight")),
                        wdfile,
                    ));
                    need.push((
                        d.leaf_weight.is_some_and(|w| w != 0),
                        f(&format!("blockIO.weightDevice[{i}].leafWeight")),
                        "blkio.leaf_weight_device",
                    ));
                }
                for (want, field, file) in need {
                    if want && !fsutil::exists(p, file) {
                        return Err(CgroupError::invalid(
                            field,
                            format!(
                                "not supported by this host's I/O scheduler (no {})",
                                p.join(file).display()
                            ),
                        ));
                    }
                }
            }
            Target::V2(p) => {
                if b.leaf_weight.is_some_and(|w| w != 0)
                    || b.weight_device
                        .iter()
                        .any(|d| d.leaf_weight.is_some_and(|w| w != 0))
                {
                    return Err(CgroupError::invalid(
                        f("blockIO.leafWeight"),
                        "leaf weights do not exist in cgroup v2",
                    ));
                }
                if b.weight_device
                    .iter()
                    .any(|d| d.weight.is_some_and(|w| w != 0))
                    && p.join("io.max").exists()
                    && !fsutil::exists(p, "io.bfq.weight")
                {
                    return Err(CgroupError::invalid(
                        f("blockIO.weightDevice"),
                        "per-device weights need the BFQ I/O scheduler (no io.bfq.weight)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_unified(&self, u: &std::collections::BTreeMap<String, String>) -> Result<()> {
        if self.unified.is_none() {
            return Err(CgroupError::invalid(
                f("unified"),
                "this host has no cgroup v2 hierarchy (pure cgroup v1)",
            ));
        }
        for key in u.keys() {
            let field = f(&format!("unified.{key}"));
            let Some((ctrl, _)) = key.split_once('.') else {
                return Err(CgroupError::invalid(
                    field,
                    "not a cgroup v2 file name (<controller>.<name>)",
                ));
            };
            if key.contains('/') || key.starts_with('.') || ctrl.is_empty() {
                return Err(CgroupError::invalid(field, "not a cgroup v2 file name"));
            }
            if ctrl == "cgroup" {
                continue;
            }
            if self.mode == HostMode::Hybrid && self.v1_path(ctrl).is_some() {
                return Err(CgroupError::invalid(
                    field,
                    format!("the {ctrl} controller is bound to cgroup v1 on this hybrid host; set it through its linux.resources field"),
                ));
            }
            if !self.v2_has(ctrl) {
                return Err(CgroupError::invalid(
                    field,
                    format!("the {ctrl} controller is not available in the cgroup v2 hierarchy"),
                ));
            }
        }
        Ok(())
    }

    fn write_resources(&self, r: &LinuxResources) -> Result<()> {
        if let Some(c) = &r.cpu {
            self.write_cpuset(c)?;
            self.write_cpu(c)?;
        }
        if let Some(m) = &r.memory {
            self.write_memory(m)?;
        }
        if let Some(p) = &r.pids {
            let v = if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".to_string()
            };
            match self.target("pids", "pids", &f("pids"))? {
                Target::V1(d) => write_field(&f("pids.limit"), d, "pids.max", &v)?,
                Target::V2(d) => {
                    self.ensure_v2("pids", &f("pids"))?;
                    write_field(&f("pids.limit"), d, "pids.max", &v)?
                }
            }
        }
        if let Some(b) = &r.block_io {
            self.write_blkio(b)?;
        }
        if !r.hugepage_limits.is_empty() {
            let t = self.target("hugetlb", "hugetlb", &f("hugepageLimits"))?;
            if let Target::V2(_) = t {
                self.ensure_v2("hugetlb", &f("hugepageLimits"))?;
            }
            for (i, h) in r.hugepage_limits.iter().enumerate() {
                let field = f(&format!("hugepageLimits[{i}].limit"));
                let v = h.limit.to_string();
                let (d, file, rsvd) = match t {
                    Target::V1(d) => (
                        d,
                        format!("hugetlb.{}.limit_in_bytes", h.page_size),
                        format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size),
                    ),
                    Target::V2(d) => (
                        d,
                        format!("hugetlb.{}.max", h.page_size),
                        format!("hugetlb.{}.rsvd.max", h.page_size),
                    ),
                };
                write_field(&field, d, &file, &v)?;
                // Reservations (Linux 5.7+) are limited too, so a process
                // cannot reserve beyond the limit and fault later (runc
                // does the same).
                if fsutil::exists(d, &rsvd) {
                    write_field(&field, d, &rsvd, &v)?;
                }
            }
        }
        if let Some(n) = &r.network {
            if let Some(id) = n.class_id {
                if let Target::V1(d) = self.target("net_cls", "", &f("network.classID"))? {
                    write_field(&f("network.classID"), d, "net_cls.classid", &id.to_string())?;
                }
            }
            for (i, p) in n.priorities.iter().enumerate() {
                if let Target::V1(d) = self.target("net_prio", "", &f("network.priorities"))? {
                    write_field(
                        &f(&format!("network.priorities[{i}]")),
                        d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name, p.priority),
                    )?;
                }
            }
        }
        if let Some(rd) = &r.rdma {
            for (dev, l) in rd {
                let t = self.target("rdma", "rdma", &f("rdma"))?;
                let d = match t {
                    Target::V1(d) => d,
                    Target::V2(d) => {
                        self.ensure_v2("rdma", &f("rdma"))?;
                        d
                    }
                };
                let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
                let line = format!(
                    "{dev} hca_handle={} hca_object={}",
                    n(l.hca_handles),
                    n(l.hca_objects)
                );
                write_field(&f(&format!("rdma.{dev}")), d, "rdma.max", &line)?;
            }
        }
        if !r.devices.is_empty() {
            let state = devices::state_from_spec(&r.devices)?;
            self.write_devices(&state)?;
        }
        if let Some(u) = &r.unified {
            let Some(dir) = self.unified_path() else {
                return Err(CgroupError::invalid(f("unified"), "no cgroup v2 hierarchy"));
            };
            for (k, v) in u {
                let field = f(&format!("unified.{k}"));
                if let Some((ctrl, _)) = k.split_once('.') {
                    if ctrl != "cgroup" {
                        self.ensure_v2(ctrl, &field)?;
                    }
                }
                if !fsutil::exists(dir, k) {
                    return Err(CgroupError::invalid(
                        field,
                        format!("{} does not exist", dir.join(k).display()),
                    ));
                }
                write_field(&field, dir, k, v)?;
            }
        }
        Ok(())
    }

    /// Apply a device rule state: v1 `devices` controller when mounted,
    /// else an eBPF program on the v2 cgroup.
    fn write_devices(&self, state: &DeviceState) -> Result<()> {
        if let Some(d) = self.v1_path("devices") {
            let current = fsutil::read_string(d, "devices.list")
                .ok()
                .and_then(|l| DeviceState::from_v1_list(&l));
            for (allow, line) in state.v1_transition(current.as_ref()) {
                let file = if allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write_field(&f("devices"), d, file, &line)?;
            }
            return Ok(());
        }
        match self.unified_path() {
            Some(u) => bpf::set_device_filter(u, state)
                .map_err(|e| CgroupError::invalid(f("devices"), e.to_string())),
            None => Err(CgroupError::invalid(
                f("devices"),
                "no devices controller and no cgroup v2 hierarchy",
            )),
        }
    }

    fn write_cpuset(&self, c: &LinuxCpu) -> Result<()> {
        if c.cpus.is_none() && c.mems.is_none() {
            return Ok(());
        }
        let t = self.target("cpuset", "cpuset", &f("cpu"))?;
        let d = match t {
            Target::V1(d) => d,
            Target::V2(d) => {
                self.ensure_v2("cpuset", &f("cpu.cpus"))?;
                d
            }
        };
        if let Some(cpus) = &c.cpus {
            write_field(&f("cpu.cpus"), d, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = &c.mems {
            write_field(&f("cpu.mems"), d, "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn write_cpu(&self, c: &LinuxCpu) -> Result<()> {
        let any = c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
            || c.idle.is_some();
        if !any {
            return Ok(());
        }
        match self.target("cpu", "cpu", &f("cpu"))? {
            Target::V1(d) => write_cpu_v1(d, c),
            Target::V2(d) => {
                self.ensure_v2("cpu", &f("cpu"))?;
                write_cpu_v2(d, c)
            }
        }
    }

    fn write_memory(&self, m: &LinuxMemory) -> Result<()> {
        match self.target("memory", "memory", &f("memory"))? {
            Target::V1(d) => write_memory_v1(d, m),
            Target::V2(d) => {
                self.ensure_v2("memory", &f("memory"))?;
                write_memory_v2(d, m)
            }
        }
    }

    fn write_blkio(&self, b: &LinuxBlockIo) -> Result<()> {
        match self.target("blkio", "io", &f("blockIO"))? {
            Target::V1(d) => write_blkio_v1(d, b),
            Target::V2(d) => {
                self.ensure_v2("io", &f("blockIO"))?;
                write_blkio_v2(d, b)
            }
        }
    }
}

fn check_list(field: &str, value: &str, online_file: &str, what: &str) -> Result<()> {
    let want = cpulist::parse(value).ok_or_else(|| {
        CgroupError::invalid(field, format!("{value:?} is not a list like \"0-3,5\""))
    })?;
    // Without NUMA the node directory may be absent: node 0 only.
    let on_text = online(online_file).unwrap_or_else(|| "0".into());
    let on = cpulist::parse(&on_text).unwrap_or_default();
    if !want.is_subset(&on) {
        return Err(CgroupError::invalid(
            field,
            format!("{value:?} is outside {what} {on_text}"),
        ));
    }
    Ok(())
}

/// blkio weight files: CFQ's `blkio.weight`, or BFQ's `blkio.bfq.weight`.
fn blkio_weight_files(d: &Path) -> (&'static str, &'static str) {
    if fsutil::exists(d, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    }
}

fn write_cpu_v1(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares.filter(|s| *s != 0) {
        write_field(&f("cpu.shares"), d, "cpu.shares", &s.to_string())?;
        // The kernel clamps silently; report it instead (runc does too).
        let got = fsutil::read_u64(d, "cpu.shares")?;
        if got != s {
            return Err(CgroupError::invalid(
                f("cpu.shares"),
                format!("the kernel set {got} instead of {s}"),
            ));
        }
    }
    // A smaller period can be refused (EINVAL) while the old quota/new
    // period ratio exceeds the parent's; if a quota follows, retry the
    // period after it (runc's ordering).
    let mut period_pending = None;
    if let Some(p) = c.period.filter(|p| *p != 0) {
        if let Err(e) = write_field(&f("cpu.period"), d, "cpu.cfs_period_us", &p.to_string()) {
            if e.raw_os_error() != Some(libc::EINVAL) || c.quota.is_none_or(|q| q == 0) {
                return Err(e);
            }
            period_pending = Some(p);
        }
    }
    if let Some(q) = c.quota.filter(|q| *q != 0) {
        write_field(&f("cpu.quota"), d, "cpu.cfs_quota_us", &q.to_string())?;
        if let Some(p) = period_pending {
            write_field(&f("cpu.period"), d, "cpu.cfs_period_us", &p.to_string())?;
        }
    }
    if let Some(b) = c.burst {
        write_field(&f("cpu.burst"), d, "cpu.cfs_burst_us", &b.to_string())?;
    }
    // Period before runtime: the runtime is checked against the period.
    if let Some(p) = c.realtime_period.filter(|p| *p != 0) {
        write_field(
            &f("cpu.realtimePeriod"),
            d,
            "cpu.rt_period_us",
            &p.to_string(),
        )?;
    }
    if let Some(r) = c.realtime_runtime.filter(|r| *r != 0) {
        write_field(
            &f("cpu.realtimeRuntime"),
            d,
            "cpu.rt_runtime_us",
            &r.to_string(),
        )?;
    }
    if let Some(i) = c.idle {
        write_field(&f("cpu.idle"), d, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn write_cpu_v2(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares.filter(|s| *s != 0) {
        write_field(
            &f("cpu.shares"),
            d,
            "cpu.weight",
            &shares_to_weight(s).to_string(),
        )?;
    }
    if c.quota.is_some_and(|q| q != 0) || c.period.is_some_and(|p| p != 0) {
        // cpu.max is "$MAX $PERIOD"; keep the half the caller did not set
        // (an update of only the period must not lift the quota).
        let cur = fsutil::read_string(d, "cpu.max").unwrap_or_default();
        let mut it = cur.split_whitespace();
        let (cur_q, cur_p) = (
            it.next().unwrap_or("max").to_string(),
            it.next().unwrap_or("100000").to_string(),
        );
        let q = match c.quota.filter(|q| *q != 0) {
            Some(q) => max_or(q),
            None => cur_q,
        };
        let p = match c.period.filter(|p| *p != 0) {
            Some(p) => p.to_string(),
            None => cur_p,
        };
        write_field(&f("cpu.quota"), d, "cpu.max", &format!("{q} {p}"))?;
    }
    if let Some(b) = c.burst {
        write_field(&f("cpu.burst"), d, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle {
        write_field(&f("cpu.idle"), d, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn v1_limit_error(
    e: CgroupError,
    field: &str,
    d: &Path,
    value: i64,
    usage_file: &str,
) -> CgroupError {
    // EBUSY: the kernel could not reclaim down to the new limit.
    if e.raw_os_error() == Some(libc::EBUSY) {
        let usage = fsutil::read_u64(d, usage_file)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "unknown".into());
        return CgroupError::invalid(
            field,
            format!(
                "{value} is below the current usage {usage} of {} (the kernel refused it: EBUSY)",
                d.display()
            ),
        );
    }
    e
}

fn write_memory_v1(d: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit.unwrap_or(0);
    let mut swap = m.swap.unwrap_or(0);
    let has_memsw = fsutil::exists(d, "memory.memsw.limit_in_bytes");
    // Unlimited memory with swap unset means unlimited memory+swap too.
    if limit == -1 && swap == 0 && has_memsw {
        swap = -1;
    }
    let set_limit = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        write_field(
            &f("memory.limit"),
            d,
            "memory.limit_in_bytes",
            &v.to_string(),
        )
        .map_err(|e| v1_limit_error(e, &f("memory.limit"), d, v, "memory.usage_in_bytes"))
    };
    let set_swap = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        write_field(
            &f("memory.swap"),
            d,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
        )
        .map_err(|e| v1_limit_error(e, &f("memory.swap"), d, v, "memory.memsw.usage_in_bytes"))
    };
    // The kernel keeps memory.limit <= memsw.limit at every step: when
    // raising, memsw must go first; when lowering, memory first.
    if limit != 0 && swap != 0 {
        let cur = fsutil::read_u64(d, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            set_swap(swap)?;
            set_limit(limit)?;
        } else {
            set_limit(limit)?;
            set_swap(swap)?;
        }
    } else {
        set_limit(limit)?;
        set_swap(swap)?;
    }
    if let Some(r) = m.reservation.filter(|r| *r != 0) {
        write_field(
            &f("memory.reservation"),
            d,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
        )?;
    }
    if let Some(k) = m.kernel.filter(|k| *k != 0) {
        write_field(
            &f("memory.kernel"),
            d,
            "memory.kmem.limit_in_bytes",
            &k.to_string(),
        )?;
    }
    if let Some(k) = m.kernel_tcp.filter(|k| *k != 0) {
        write_field(
            &f("memory.kernelTCP"),
            d,
            "memory.kmem.tcp.limit_in_bytes",
            &k.to_string(),
        )?;
    }
    if let Some(o) = m.disable_oom_killer {
        write_field(
            &f("memory.disableOOMKiller"),
            d,
            "memory.oom_control",
            if o { "1" } else { "0" },
        )?;
    }
    if let Some(s) = m.swappiness {
        write_field(
            &f("memory.swappiness"),
            d,
            "memory.swappiness",
            &s.to_string(),
        )?;
    }
    if let Some(h) = m.use_hierarchy {
        write_field(
            &f("memory.useHierarchy"),
            d,
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
        )?;
    }
    Ok(())
}

fn write_memory_v2(d: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit.unwrap_or(0);
    let swap = m.swap.unwrap_or(0);
    if m.swap.is_some() || limit == -1 {
        let v = swap_to_v2(swap, limit).map_err(|e| CgroupError::invalid(f("memory.swap"), e))?;
        if v != 0 {
            if !fsutil::exists(d, "memory.swap.max") {
                return Err(CgroupError::invalid(
                    f("memory.swap"),
                    format!(
                        "swap accounting is disabled (no {})",
                        d.join("memory.swap.max").display()
                    ),
                ));
            }
            write_field(&f("memory.swap"), d, "memory.swap.max", &max_or(v))?;
        }
    }
    if limit != 0 {
        write_field(&f("memory.limit"), d, "memory.max", &max_or(limit))?;
    }
    if let Some(r) = m.reservation.filter(|r| *r != 0) {
        write_field(&f("memory.reservation"), d, "memory.low", &max_or(r))?;
    }
    Ok(())
}

fn dev_line(major: i64, minor: i64, v: impl std::fmt::Display) -> String {
    format!("{major}:{minor} {v}")
}

fn write_blkio_v1(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let (wfile, wdfile) = blkio_weight_files(d);
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        write_field(&f("blockIO.weight"), d, wfile, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight.filter(|w| *w != 0) {
        write_field(
            &f("blockIO.leafWeight"),
            d,
            "blkio.leaf_weight",
            &w.to_string(),
        )?;
    }
    for (i, wd) in b.weight_device.iter().enumerate() {
        if let Some(w) = wd.weight.filter(|w| *w != 0) {
            write_field(
                &f(&format!("blockIO.weightDevice[{i}].weight")),
                d,
                wdfile,
                &dev_line(wd.major, wd.minor, w),
            )?;
        }
        if let Some(w) = wd.leaf_weight.filter(|w| *w != 0) {
            write_field(
                &f(&format!("blockIO.weightDevice[{i}].leafWeight")),
                d,
                "blkio.leaf_weight_device",
                &dev_line(wd.major, wd.minor, w),
            )?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            &b.throttle_read_bps_device,
            "blkio.throttle.read_bps_device",
        ),
        (
            "throttleWriteBpsDevice",
            &b.throttle_write_bps_device,
            "blkio.throttle.write_bps_device",
        ),
        (
            "throttleReadIOPSDevice",
            &b.throttle_read_iops_device,
            "blkio.throttle.read_iops_device",
        ),
        (
            "throttleWriteIOPSDevice",
            &b.throttle_write_iops_device,
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (name, list, file) in throttles {
        for (i, t) in list.iter().enumerate() {
            write_field(
                &f(&format!("blockIO.{name}[{i}]")),
                d,
                file,
                &dev_line(t.major, t.minor, t.rate),
            )?;
        }
    }
    Ok(())
}

fn write_blkio_v2(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        // BFQ takes the v1 range directly; io.weight needs conversion.
        if fsutil::exists(d, "io.bfq.weight") {
            write_field(&f("blockIO.weight"), d, "io.bfq.weight", &w.to_string())?;
        } else {
            write_field(
                &f("blockIO.weight"),
                d,
                "io.weight",
                &blkio_weight_to_io_weight(w).to_string(),
            )?;
        }
    }
    for (i, wd) in b.weight_device.iter().enumerate() {
        if let Some(w) = wd.weight.filter(|w| *w != 0) {
            write_field(
                &f(&format!("blockIO.weightDevice[{i}].weight")),
                d,
                "io.bfq.weight",
                &dev_line(wd.major, wd.minor, w),
            )?;
        }
    }
    let throttles = [
        ("throttleReadBpsDevice", &b.throttle_read_bps_device, "rbps"),
        (
            "throttleWriteBpsDevice",
            &b.throttle_write_bps_device,
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            &b.throttle_read_iops_device,
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            &b.throttle_write_iops_device,
            "wiops",
        ),
    ];
    for (name, list, key) in throttles {
        for (i, t) in list.iter().enumerate() {
            // 0 means "no limit" in the v1 files; v2 spells it "max".
            let v = if t.rate == 0 {
                "max".to_string()
            } else {
                t.rate.to_string()
            };
            write_field(
                &f(&format!("blockIO.{name}[{i}]")),
                d,
                "io.max",
                &format!("{}:{} {key}={v}", t.major, t.minor),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(swap_to_v2(0, -1), Ok(-1));
        assert_eq!(swap_to_v2(-1, 100), Ok(-1));
        assert_eq!(swap_to_v2(300, 100), Ok(200));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(hugepage_name(2 << 20), "2MB");
        assert_eq!(hugepage_name(1 << 30), "1GB");
        assert_eq!(hugepage_name(64 << 10), "64KB");
    }
}
