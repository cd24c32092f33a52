//! Operations on a live container's cgroups: pause, resume, update, ps, events
//! (runc's commands of the same names; the cgroup work is oxcart_cgroups').

use crate::cg::cg_err;
use crate::cg::Cg;
use crate::error::{Error, Result};
use crate::lifecycle::Global;
use crate::state::{self, Saved, StateDir};
use oxcart_spec::{LinuxResources, Status};
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

/// Overlay `new` on `old`: objects merge key by key, anything else set in `new`
/// replaces. runc's `update` changes only the fields given.
fn merge(old: &mut serde_json::Value, new: &serde_json::Value) {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            for (k, v) in n {
                if v.is_null() {
                    continue;
                }
                merge(o.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (o, n) => *o = n.clone(),
    }
}

/// `update`: apply new limits to a running container and record them, so a later
/// `update` or `state` sees the container's real configuration.
pub fn update(g: &Global, id: &str, delta: &LinuxResources) -> Result<()> {
    let (sd, mut saved, cg, status) = open(g, id, true)?;
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    cg.manager().update(delta).map_err(cg_err)?;
    let linux = saved
        .config
        .spec_mut()?
        .linux
        .get_or_insert_with(Default::default);
    let mut cur = serde_json::to_value(linux.resources.clone().unwrap_or_default())
        .map_err(|e| Error::Other(e.to_string()))?;
    let new = serde_json::to_value(delta).map_err(|e| Error::Other(e.to_string()))?;
    merge(&mut cur, &new);
    linux.resources = Some(serde_json::from_value(cur).map_err(|e| Error::Other(e.to_string()))?);
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
    #[test]
    fn merge_only_set_fields() {
        let mut old =
            serde_json::json!({"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}});
        let new = serde_json::json!({"memory": {"limit": 300, "swap": null}, "cpu": {"shares": 2}});
        super::merge(&mut old, &new);
        assert_eq!(
            old,
            serde_json::json!({"memory": {"limit": 300, "swap": 200}, "pids": {"limit": 5}, "cpu": {"shares": 2}})
        );
    }
}
