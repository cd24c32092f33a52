//! Writers for cgroup v1 controller files (runc's libcontainer/cgroups/fs
//! ordering rules).

use super::{dev_line, f};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::Path;

/// blkio weight files: CFQ's `blkio.weight`, or BFQ's `blkio.bfq.weight`.
pub(super) fn blkio_weight_files(d: &Path) -> (&'static str, &'static str) {
    if fsutil::exists(d, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    }
}

pub(super) fn write_cpu_v1(d: &Path, c: &LinuxCpu) -> Result<()> {
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

pub(super) fn write_memory_v1(d: &Path, m: &LinuxMemory) -> Result<()> {
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

pub(super) fn write_blkio_v1(d: &Path, b: &LinuxBlockIo) -> Result<()> {
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
