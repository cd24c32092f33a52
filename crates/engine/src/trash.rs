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
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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

/// Start `monitor --empty-trash TRASH [--older-than SECS]` detached: fork, fork again and exec, the
/// middle process reaped here at once, so neither this process (the API service
/// lives long) nor anyone else keeps a zombie. Between fork and exec only
/// async-signal-safe calls (fork(2) of a threaded process, signal-safety(7)):
/// everything they use is made before the first fork.
fn spawn_remover(monitor: &Path, trash: &Path, older_than: Option<u64>) -> std::io::Result<()> {
    let bad = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let prog = CString::new(monitor.as_os_str().as_bytes()).map_err(bad)?;
    let mut args = vec![
        CString::new("--empty-trash").map_err(bad)?,
        CString::new(trash.as_os_str().as_bytes()).map_err(bad)?,
    ];
    if let Some(s) = older_than {
        args.push(CString::new("--older-than").map_err(bad)?);
        args.push(CString::new(s.to_string()).map_err(bad)?);
    }
    let argv: Vec<*const libc::c_char> = std::iter::once(prog.as_ptr())
        .chain(args.iter().map(|a| a.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let devnull: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into();
    let null = devnull.as_raw_fd();
    // SAFETY: sigset_t is plain data, filled by sigemptyset.
    let empty = unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        s
    };
    // SAFETY: the child runs only async-signal-safe calls on data made above, and
    // leaves by execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            libc::setsid();
            // `oxcart run` blocks the signals it forwards: not ours to inherit.
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            // Only stdio: no lock or database descriptor of ours outlives us there.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 {
            break;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // Reaped by someone else's waitpid(-1): it has exited all the same.
            _ => break,
        }
    }
    drop(devnull);
    Ok(())
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
