//! Validation of `linux.resources` against the value rules and this host,
//! before anything is written.

use super::v1::blkio_weight_files;
use super::{f, hugepage_sizes, v2::swap_to_v2, Target};
use crate::cpulist;
use crate::devices;
use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::layout::HostMode;
use crate::manager::Manager;
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

impl Manager {
    pub(super) fn validate(&self, r: &LinuxResources) -> Result<()> {
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
        let cpus = c.cpus.as_deref().filter(|s| !s.trim().is_empty());
        let mems = c.mems.as_deref().filter(|s| !s.trim().is_empty());
        if cpus.is_some() || mems.is_some() {
            self.target("cpuset", "cpuset", &f("cpu"))?;
        }
        if let Some(cpus) = cpus {
            check_list(
                &f("cpu.cpus"),
                cpus,
                "/sys/devices/system/cpu/online",
                "online CPUs",
            )?;
        }
        if let Some(mems) = mems {
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
}

fn online(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
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
