//! Deferred deletion of removed containers' directories.
//!
//! Deleting a container's directory (its writable layer, overlay's work directory, the
//! bundle and state files) is the slowest part of a removal on a filesystem mounted
//! with `discard` (ext4's online discard issues a synchronous TRIM for every extent it
//! frees: 0.1–3.7 ms per directory or non-empty file measured on the project's
//! machines, about 18 of them per container; docs/benchmarks.md). Nothing a user or a
//! client sees depends on those bytes being gone: once the row is deleted and the
//! directory has left `containers/`, the container does not exist. So `rm` and a
//! `--rm` container's cleanup rename the directory into `<root>/trash/` (same
//! filesystem, one atomic rename) and hand the deletion to a detached
//! `oxcart-monitor --empty-trash` process, at the lowest best-effort I/O priority.
//!
//! Nothing is left behind: a remover killed part-way leaves its entries, and the next
//! `create` or `container prune` ([`collect_stale`]) starts a remover for whatever has
//! waited in the trash longer than [`STALE_SECS`]. The deleting itself is the
//! monitor's (crates/monitor/src/trash.rs): each remover first renames an entry to a
//! name of its own, so two never work on the same tree.

use crate::error::{io_err, Result};
use crate::paths::Layout;
use std::path::{Path, PathBuf};

/// How long an entry may wait before a command deletes it itself: a remover has long
/// finished a container's directory by then, unless it was killed.
pub const STALE_SECS: u64 = 60;

pub fn trash_dir(layout: &Layout) -> PathBuf {
    layout.root.join("trash")
}

/// Move `dir` (a container directory nothing is mounted in) into the trash and start
/// a remover for it. On return the directory has left its place; if no remover can
/// be started, it is deleted here instead.
pub(crate) fn discard(layout: &Layout, dir: &Path, id: &str) -> Result<()> {
    let trash = trash_dir(layout);
    std::fs::create_dir_all(&trash).map_err(io_err(&trash))?;
    let to = trash.join(format!("{id}.{}.{}", now_secs(), std::process::id()));
    std::fs::rename(dir, &to).map_err(io_err(dir))?;
    let spawned = crate::monitor::find_monitor()
        .ok()
        .and_then(|m| spawn_remover(&m, &trash, None).ok());
    if spawned.is_none() {
        remove_tree(&to).map_err(io_err(&to))?;
    }
    Ok(())
}

/// Delete what removers left behind (killed, or never started) for longer than
/// [`STALE_SECS`]: a remover is started for them only when there are some, so a
/// `create` pays nothing while the trash holds only what live removers work on.
pub(crate) fn collect_stale(layout: &Layout) {
    let trash = trash_dir(layout);
    let Ok(rd) = std::fs::read_dir(&trash) else {
        return;
    };
    let now = now_secs();
    let stale = rd.flatten().any(|e| {
        entry_secs(&e.file_name().to_string_lossy())
            .is_some_and(|t| now.saturating_sub(t) > STALE_SECS)
    });
    if stale {
        if let Ok(m) = crate::monitor::find_monitor() {
            let _ = spawn_remover(&m, &trash, Some(STALE_SECS));
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The time an entry went to the trash: `<id>.<secs>.<pid>`, or that name claimed by
/// a remover (`.claim-<pid>-<id>.<secs>.<pid>`; oxcart-monitor's trash.rs reads the
/// same names).
fn entry_secs(name: &str) -> Option<u64> {
    let mut parts = name.rsplit('.');
    let _pid = parts.next()?;
    parts.next()?.parse().ok()
}

/// `remove_dir_all`, which never follows a symlink the container planted
/// (CVE-2022-21658 is fixed in the std we build with); gone already is done.
fn remove_tree(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The remover's process name (`comm`, set by the monitor's `--empty-trash` mode):
/// what the API service's reaper looks for among its zombie children.
pub const REMOVER_COMM: &str = "oxcart-trash";

/// Start `monitor --empty-trash TRASH [--older-than SECS]`, not waited for: spawned
/// as std does it (vfork and exec: this process waits only for the exec, where a
/// double fork of a large process cost ~0.6 ms on `run --rm`'s path), in a process
/// group of its own with stdio on /dev/null, so it outlives us and no caller reading our
/// output waits for it. A CLI exits and init reaps it; the API service reaps its
/// zombie children named [`REMOVER_COMM`] (crates/api/src/server.rs).
fn spawn_remover(monitor: &Path, trash: &Path, older_than: Option<u64>) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(monitor);
    cmd.arg("--empty-trash").arg(trash);
    if let Some(s) = older_than {
        cmd.arg("--older-than").arg(s.to_string());
    }
    cmd.env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // A group of its own: a ^C meant for `oxcart run` does not reach it.
        .process_group(0);
    // Dropping the Child neither waits nor kills.
    cmd.spawn().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_name_gives_its_time_claimed_or_not() {
        assert_eq!(entry_secs("abc.1700000000.42"), Some(1_700_000_000));
        assert_eq!(
            entry_secs(".claim-7-abc.1700000000.42"),
            Some(1_700_000_000)
        );
        assert_eq!(entry_secs("junk"), None);
    }
}
