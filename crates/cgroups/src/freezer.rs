//! Freezing a cgroup: v1 `freezer.state`, v2 `cgroup.freeze`.

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::manager::Manager;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    /// Freezing was requested and the kernel has not finished yet.
    Freezing,
    Frozen,
}

impl Manager {
    pub(crate) fn freezer(&self) -> Result<Freezer<'_>> {
        if let Some(p) = self.v1_path("freezer") {
            return Ok(Freezer::V1(p));
        }
        if let Some(u) = self.unified_path() {
            if fsutil::exists(u, "cgroup.freeze") || !u.exists() {
                return Ok(Freezer::V2(u));
            }
        }
        Err(CgroupError::invalid(
            "freezer",
            "this host has neither the v1 freezer controller nor cgroup v2 cgroup.freeze",
        ))
    }

    /// Freeze every process of the cgroup and wait until the kernel reports
    /// the cgroup frozen. On failure the cgroup is thawed again.
    pub fn freeze(&self) -> Result<()> {
        let r = match self.freezer()? {
            Freezer::V1(p) => freeze_v1(p),
            Freezer::V2(p) => set_v2_frozen(p, true),
        };
        if r.is_err() {
            let _ = self.thaw();
        }
        r
    }

    /// Thaw the cgroup and wait until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(p) => {
                let deadline = Instant::now() + FREEZE_TIMEOUT;
                loop {
                    fsutil::write(p, "freezer.state", "THAWED")?;
                    if fsutil::read_string(p, "freezer.state")?.trim() == "THAWED" {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(CgroupError::Timeout(format!(
                            "{}: still not THAWED after {:?}",
                            p.join("freezer.state").display(),
                            FREEZE_TIMEOUT
                        )));
                    }
                    sleep(Duration::from_millis(1));
                }
            }
            Freezer::V2(p) => set_v2_frozen(p, false),
        }
    }

    pub fn freezer_state(&self) -> Result<FreezerState> {
        match self.freezer()? {
            Freezer::V1(p) => {
                let s = fsutil::read_string(p, "freezer.state")?;
                match s.trim() {
                    "THAWED" => Ok(FreezerState::Thawed),
                    "FREEZING" => Ok(FreezerState::Freezing),
                    "FROZEN" => Ok(FreezerState::Frozen),
                    other => Err(CgroupError::Parse {
                        path: p.join("freezer.state"),
                        msg: format!("unknown state {other:?}"),
                    }),
                }
            }
            Freezer::V2(p) => {
                let want = fsutil::read_string(p, "cgroup.freeze")?.trim() == "1";
                let frozen = v2_events_frozen(p)?;
                Ok(match (want, frozen) {
                    (_, true) => FreezerState::Frozen,
                    (true, false) => FreezerState::Freezing,
                    (false, false) => FreezerState::Thawed,
                })
            }
        }
    }
}

pub(crate) enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

fn freeze_v1(p: &Path) -> Result<()> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut i: u32 = 0;
    loop {
        // A task in vfork(2) or an uninterruptible sleep can keep the v1
        // freezer in FREEZING; thawing and retrying every so often lets it
        // make the progress it needs (runc does the same).
        if i > 0 && i.is_multiple_of(50) {
            fsutil::write(p, "freezer.state", "THAWED")?;
        }
        fsutil::write(p, "freezer.state", "FROZEN")?;
        match fsutil::read_string(p, "freezer.state")?.trim() {
            "FROZEN" => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(CgroupError::Timeout(format!(
                    "{}: not FROZEN after {:?}",
                    p.join("freezer.state").display(),
                    FREEZE_TIMEOUT
                )))
            }
            _ => {}
        }
        i += 1;
        sleep(Duration::from_millis(1));
    }
}

fn v2_events_frozen(p: &Path) -> Result<bool> {
    let ev = fsutil::read_flat_keyed(p, "cgroup.events")?;
    Ok(ev.iter().any(|(k, v)| k == "frozen" && *v == 1))
}

fn set_v2_frozen(p: &Path, frozen: bool) -> Result<()> {
    fsutil::write(p, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    while v2_events_frozen(p)? != frozen {
        if Instant::now() > deadline {
            return Err(CgroupError::Timeout(format!(
                "{}: \"frozen\" did not become {} within {:?}",
                p.join("cgroup.events").display(),
                u8::from(frozen),
                FREEZE_TIMEOUT
            )));
        }
        sleep(Duration::from_millis(1));
    }
    Ok(())
}
