//! Writing `linux.resources` (config-linux.md "Control groups") to v1
//! controllers and cgroup v2 files.
//!
//! `apply` validates everything first (values, the host's controllers and
//! files) and only then writes, so a config the host cannot honour fails
//! before the cgroup is touched. Write ordering follows runc's fs/fs2
//! managers where the kernel cares about order.

use crate::bpf;
use crate::devices::{self, DeviceState};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_field};
use crate::layout::HostMode;
use crate::manager::Manager;
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

mod v1;
mod v2;
mod validate;

use v1::{write_blkio_v1, write_cpu_v1, write_memory_v1};
pub use v2::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
use v2::{write_blkio_v2, write_cpu_v2, write_memory_v2};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

pub(crate) const R: &str = "linux.resources";

pub(crate) fn f(s: &str) -> String {
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
        // An empty list means "not set" (runc skips it too); writing it would
        // leave a v1 cpuset that cannot take tasks.
        let cpus = c.cpus.as_deref().filter(|s| !s.trim().is_empty());
        let mems = c.mems.as_deref().filter(|s| !s.trim().is_empty());
        if cpus.is_none() && mems.is_none() {
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
        if let Some(cpus) = cpus {
            write_field(&f("cpu.cpus"), d, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = mems {
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

pub(crate) fn dev_line(major: i64, minor: i64, v: impl std::fmt::Display) -> String {
    format!("{major}:{minor} {v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        use super::v2::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
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
