//! Operations on a live container's cgroups: pause, resume, update, ps, events
//! (runc's commands of the same names; the cgroup work is oxcart_cgroups').

use crate::cg::cg_err;
use crate::cg::Cg;
use crate::error::{Error, Result};
use crate::lifecycle::Global;
use crate::state::{self, Saved, StateDir};
use oxcart_spec::{LinuxBlockIo, LinuxMemory, LinuxResources, Status};
use std::time::Duration;

fn open(g: &Global, id: &str, exclusive: bool) -> Result<(StateDir, Saved, Cg, Status)> {
    let sd = StateDir::open(&g.root, id, exclusive)?;
    let saved = sd
        .load()?
        .ok_or_else(|| Error::State("container not running".into()))?;
    let cg = Cg::from_state(&saved.cgroup)?;
    let status = state::derive_status(&sd, &saved, cg.frozen());
    Ok((sd, saved, cg, status))
}

/// `pause`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).
pub fn pause(g: &Global, id: &str) -> Result<()> {
    let (_sd, _s, cg, status) = open(g, id, true)?;
    match status {
        Status::Running | Status::Created => cg.manager().freeze().map_err(cg_err),
        Status::Paused => Err(Error::State("container already paused".into())),
        _ => Err(Error::State("container not running".into())),
    }
}

/// `resume`: thaw a paused container.
pub fn resume(g: &Global, id: &str) -> Result<()> {
    let (_sd, _s, cg, status) = open(g, id, true)?;
    match status {
        Status::Paused => cg.manager().thaw().map_err(cg_err),
        _ => Err(Error::State("container not paused".into())),
    }
}

/// Pids of every process in the container's cgroup.
pub fn pids(g: &Global, id: &str) -> Result<Vec<i32>> {
    let (_sd, _s, cg, status) = open(g, id, false)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    cg.manager().pids().map_err(cg_err)
}

/// The container's resources after `update` with `delta`, runc's `update`
/// semantics (runc update.go): the memory limit, reservation and swap, every
/// cpu field, the blkio weight, the pids limit and `unified` entries that
/// `delta` sets replace the saved ones; everything else is kept. The rest of
/// `delta` is ignored as runc ignores it: containerd's CRI sends the
/// container's whole `linux.resources` on every UpdateContainerResources,
/// device rules included (`[{"allow":false,"access":"rwm"}]`, containerd's
/// default spec, without runc's default allowed devices), and applying those
/// would take /dev/null away from a running container.
fn updated_resources(cur: &LinuxResources, delta: &LinuxResources) -> LinuxResources {
    let mut out = cur.clone();
    if let Some(d) = &delta.memory {
        let m = out.memory.get_or_insert_with(Default::default);
        m.limit = d.limit.or(m.limit);
        m.reservation = d.reservation.or(m.reservation);
        m.swap = d.swap.or(m.swap);
        // runc: an unlimited memory limit with swap not given means "memory
        // and swap unlimited" (what cgroup v1 requires anyway).
        if d.limit == Some(-1) && d.swap.is_none() {
            m.swap = Some(-1);
        }
    }
    if let Some(d) = &delta.cpu {
        let c = out.cpu.get_or_insert_with(Default::default);
        c.shares = d.shares.or(c.shares);
        c.quota = d.quota.or(c.quota);
        c.burst = d.burst.or(c.burst);
        c.period = d.period.or(c.period);
        c.realtime_runtime = d.realtime_runtime.or(c.realtime_runtime);
        c.realtime_period = d.realtime_period.or(c.realtime_period);
        c.idle = d.idle.or(c.idle);
        // runc skips an empty cpuset list: "not set", not "no cpus".
        let set = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        c.cpus = set(&d.cpus).or(c.cpus.take());
        c.mems = set(&d.mems).or(c.mems.take());
    }
    if let Some(w) = delta.block_io.as_ref().and_then(|b| b.weight) {
        out.block_io.get_or_insert_with(Default::default).weight = Some(w);
    }
    // A pids limit of 0 is runc's "unset" (libcontainer writes nothing for it).
    if let Some(p) = delta.pids.as_ref().filter(|p| p.limit != 0) {
        out.pids = Some(p.clone());
    }
    if let Some(u) = &delta.unified {
        out.unified
            .get_or_insert_with(Default::default)
            .extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// What `update` writes to the cgroup: the fields `update` can change, with
/// their values after the update (not only the changed ones: swap on v2 and
/// the v1 memory/memsw write order depend on the limit, so the cgroup code
/// needs the pair), and `delta`'s own `unified` entries. Device rules and the
/// other create-time settings are not rewritten.
fn update_writes(new: &LinuxResources, delta: &LinuxResources) -> LinuxResources {
    LinuxResources {
        memory: new.memory.as_ref().map(|m| LinuxMemory {
            limit: m.limit,
            reservation: m.reservation,
            swap: m.swap,
            // An instruction for this write only (runc's checkBeforeUpdate).
            check_before_update: delta.memory.as_ref().and_then(|d| d.check_before_update),
            ..Default::default()
        }),
        cpu: new.cpu.clone(),
        block_io: new
            .block_io
            .as_ref()
            .and_then(|b| b.weight)
            .map(|w| LinuxBlockIo {
                weight: Some(w),
                ..Default::default()
            }),
        pids: new.pids.clone(),
        unified: delta.unified.clone(),
        ..Default::default()
    }
}

/// `update`: apply new limits to a running container and record them, so a later
/// `update` or `state` sees the container's real configuration.
pub fn update(g: &Global, id: &str, delta: &LinuxResources) -> Result<()> {
    let (sd, mut saved, cg, status) = open(g, id, true)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    let linux = saved
        .config
        .spec_mut()?
        .linux
        .get_or_insert_with(Default::default);
    let new = updated_resources(&linux.resources.clone().unwrap_or_default(), delta);
    cg.manager()
        .update(&update_writes(&new, delta))
        .map_err(cg_err)?;
    linux.resources = Some(new);
    sd.save(&saved)
}

/// One `events` record, as runc prints it (`types/events.go` Event).
pub fn stats_event(g: &Global, id: &str) -> Result<serde_json::Value> {
    let (_sd, _s, cg, status) = open(g, id, false)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    let st = cg.manager().stats().map_err(cg_err)?;
    Ok(serde_json::json!({"type": "stats", "id": id, "data": st}))
}

/// `events` without `--stats`: call `emit` with a stats record every `interval`
/// and an `oom` record whenever the kernel OOM-kills in the container, until the
/// container stops.
pub fn events(
    g: &Global,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&serde_json::Value) -> Result<()>,
) -> Result<()> {
    let (_sd, _s, cg, status) = open(g, id, false)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    let mut watcher = cg.manager().oom_watcher().map_err(cg_err)?;
    loop {
        match watcher.wait(Some(interval)).map_err(cg_err)? {
            oxcart_cgroups::OomEvent::Oom(_) => {
                emit(&serde_json::json!({"type": "oom", "id": id}))?
            }
            oxcart_cgroups::OomEvent::CgroupGone => return Ok(()),
            oxcart_cgroups::OomEvent::Timeout => match stats_event(g, id) {
                Ok(ev) => emit(&ev)?,
                // The container stopped between two intervals: the stream ends.
                Err(Error::State(_)) | Err(Error::NotExist(_)) => return Ok(()),
                Err(e) => return Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    /// What containerd 1.6's CRI sends for a memory update: the whole
    /// resources, with its default deny-all device rule and hugepage limits.
    #[test]
    fn update_keeps_devices_and_unset_fields() {
        let cur = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
            "memory": {"limit": 100, "swap": 200, "kernel": 7},
            "pids": {"limit": 5},
            "cpu": {"cpus": "0", "shares": 10},
            "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
        }));
        let delta = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 300},
            "cpu": {"shares": 2, "cpus": ""},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "blockIO": {"weight": 500, "throttleReadBpsDevice": []},
        }));
        let new = updated_resources(&cur, &delta);
        assert_eq!(new.devices, cur.devices);
        assert!(new.hugepage_limits.is_empty());
        let m = new.memory.clone().unwrap();
        assert_eq!((m.limit, m.swap, m.kernel), (Some(300), Some(200), Some(7)));
        assert_eq!(new.pids.clone().unwrap().limit, 5);
        let c = new.cpu.clone().unwrap();
        assert_eq!((c.shares, c.cpus.as_deref()), (Some(2), Some("0")));
        let b = new.block_io.clone().unwrap();
        assert_eq!(b.weight, Some(500));
        assert_eq!(b.throttle_read_bps_device.len(), 1);
        // The cgroup gets the changeable fields only: no device rule, no kmem.
        let w = update_writes(&new, &delta);
        assert!(w.devices.is_empty() && w.hugepage_limits.is_empty());
        let wm = w.memory.unwrap();
        assert_eq!((wm.limit, wm.swap, wm.kernel), (Some(300), Some(200), None));
        assert!(w.block_io.unwrap().throttle_read_bps_device.is_empty());
    }

    #[test]
    fn unlimited_memory_means_unlimited_swap_and_zero_pids_is_unset() {
        let cur =
            res(serde_json::json!({"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}}));
        let new = updated_resources(
            &cur,
            &res(serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": 0}})),
        );
        let m = new.memory.unwrap();
        assert_eq!((m.limit, m.swap), (Some(-1), Some(-1)));
        assert_eq!(new.pids.unwrap().limit, 5);
    }
}
