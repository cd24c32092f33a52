//! Writers for cgroup v2 files and runc's v1 → v2 value conversions
//! (libcontainer/cgroups/utils.go, fs2).

use super::{dev_line, f};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::Path;

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

pub(super) fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub(super) fn write_cpu_v2(d: &Path, c: &LinuxCpu) -> Result<()> {
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

pub(super) fn write_memory_v2(d: &Path, m: &LinuxMemory) -> Result<()> {
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

pub(super) fn write_blkio_v2(d: &Path, b: &LinuxBlockIo) -> Result<()> {
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
