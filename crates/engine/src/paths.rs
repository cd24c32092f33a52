//! Where the engine keeps things (docs/engine.md, "Where things live").

use std::path::{Path, PathBuf};

/// The engine's two roots: persistent state and run-time state.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `--root`: images, `containers.db`, `containers/<id>/` (survives a reboot).
    pub root: PathBuf,
    /// `--runroot`: the runtimes' state (`/run` is emptied by a reboot).
    pub runroot: PathBuf,
}

impl Layout {
    /// The default roots, as podman's `/var/lib/containers` and `/run/containers`.
    pub const DEFAULT_ROOT: &'static str = "/var/lib/oxcart";
    pub const DEFAULT_RUNROOT: &'static str = "/run/oxcart/engine";

    pub fn new(root: &Path, runroot: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("containers.db")
    }

    /// The events journal (docs/engine.md "Events").
    pub fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn ctr_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// The `--root` handed to a runtime: one directory per runtime name, so two
    /// runtimes never read each other's state files.
    pub fn runtime_root(&self, runtime: &str) -> PathBuf {
        self.runroot.join("runtime").join(runtime)
    }
}

/// ext2/3/4's `FS_TOPDIR_FL` (`chattr +T`), not in the libc crate.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Mark `dir` (one of ours: `containers/`, a runtime's state root) as a top of a
/// directory hierarchy, so ext4's Orlov allocator places each new subdirectory in a
/// block group of its own choosing (by a hash of its name) instead of the parent's,
/// and the files made in it follow it there. Why: on an ext4 without a journal (the
/// project's machines) every new inode is found by scanning the group's free
/// inodes past each one deleted in the last 60–360 s (`recently_deleted` in
/// fs/ext4/ialloc.c); with every container's ~25 inodes made and deleted in one
/// group, a `run`'s allocations scanned thousands of them — 4.5–6.6 ms against
/// 0.8–0.9 ms for a container's tree spread this way (docs/benchmarks.md). A hint
/// only: on other filesystems the ioctl fails, and nothing changes.
pub(crate) fn spread_subdirs(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(dir) else {
        return;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's ABI, whatever the
    // macro's `long` says) through a pointer to ours.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return;
    }
    if flags & FS_TOPDIR_FL == 0 {
        flags |= FS_TOPDIR_FL;
        // SAFETY: as above; the kernel reads one int.
        unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
    }
}

/// This program's path, for the commands it starts and the ones it leaves behind
/// (a monitor's exit command runs long after). When the binary was replaced while
/// this process ran (a package upgrade under a long-lived `system service`), the
/// kernel's link reads `PATH (deleted)`; the new binary at PATH is the one to run,
/// so the suffix goes when PATH exists again (a monitor given the suffixed name
/// could never run its cleanup: `--rm` containers would stay).
pub fn self_exe() -> std::io::Result<PathBuf> {
    std::fs::read_link("/proc/self/exe").map(undeleted)
}

fn undeleted(p: PathBuf) -> PathBuf {
    match p.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(orig) if Path::new(orig).exists() => PathBuf::from(orig),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_binary_is_run_from_its_path() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("oxcart");
        let gone = std::path::PathBuf::from(format!("{} (deleted)", bin.display()));
        // Deleted and not replaced: the kernel's name stays (it fails, naming it).
        assert_eq!(super::undeleted(gone.clone()), gone);
        std::fs::write(&bin, b"new").unwrap();
        assert_eq!(super::undeleted(gone), bin);
        assert_eq!(super::undeleted(bin.clone()), bin);
        assert!(super::self_exe().unwrap().is_absolute());
    }

    use super::*;
    use std::os::fd::AsRawFd;

    fn flags(p: &Path) -> Option<libc::c_int> {
        let f = std::fs::File::open(p).ok()?;
        let mut v: libc::c_int = 0;
        // SAFETY: as in spread_subdirs.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut v) };
        (r == 0).then_some(v)
    }

    #[test]
    fn spread_subdirs_sets_topdir_on_ext4_and_leaves_other_filesystems_alone() {
        let t = tempfile::tempdir().unwrap();
        let before = flags(t.path());
        spread_subdirs(t.path());
        spread_subdirs(t.path());
        // SAFETY: statfs(2) fills the zeroed struct for a valid path.
        let fs_type = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            let c = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(libc::statfs(c.as_ptr(), &mut st), 0);
            st.f_type
        };
        const EXT_SUPER_MAGIC: libc::c_long = 0xEF53;
        if fs_type as libc::c_long == EXT_SUPER_MAGIC {
            let after = flags(t.path()).unwrap();
            assert_ne!(after & FS_TOPDIR_FL, 0, "flags {after:#x}");
            assert_eq!(after & !FS_TOPDIR_FL, before.unwrap() & !FS_TOPDIR_FL);
        } else {
            assert_eq!(flags(t.path()), before);
        }
    }
}
