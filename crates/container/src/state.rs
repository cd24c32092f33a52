//! The state directory (`--root/<id>`): created atomically with mkdir, locked with
//! flock for every command, `state.json` replaced atomically, and the status
//! *derived* from the kernel rather than trusted from the file (DESIGN.md "State").

use crate::error::{Ctx, Error, Result};
use crate::sys;
use oxcart_spec::{Spec, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// What we persist about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// Host pid of the container's init (0 until init exists).
    pub pid: i32,
    /// Start time of init in clock ticks (/proc/<pid>/stat field 22): with the pid,
    /// identifies the process even if the pid is later reused.
    pub start_time: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The config as it was at create time (exec and hooks need it later).
    pub config: Spec,
    /// oxcart_cgroups manager state (resolved paths), opaque here.
    #[serde(default)]
    pub cgroup: serde_json::Value,
    #[serde(default)]
    pub systemd_cgroup: bool,
    #[serde(default)]
    pub rootless: bool,
}

/// An open, locked container state directory.
pub struct StateDir {
    pub dir: PathBuf,
    pub id: String,
    // Held for the lifetime of the command: flock(2) is released on close.
    _lock: File,
}

fn flock(f: &File, exclusive: bool) -> io::Result<()> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Make sure `--root` exists and is private to its owner.
pub fn ensure_root(root: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .ctx(|| format!("create state root {}", root.display()))
}

impl StateDir {
    /// Create `<root>/<id>`; fails if the id is in use. mkdir is the atomic step, so
    /// two concurrent creates of one id cannot both win.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        oxcart_spec::validate::validate_id(id).map_err(Error::InvalidId)?;
        ensure_root(root)?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("create state directory {}", dir.display()),
                    e,
                ))
            }
        }
        let lock = File::open(&dir).ctx(|| format!("open {}", dir.display()))?;
        flock(&lock, true).ctx(|| format!("lock {}", dir.display()))?;
        Ok(StateDir {
            dir,
            id: id.to_string(),
            _lock: lock,
        })
    }

    /// Open and lock an existing container's state directory.
    pub fn open(root: &Path, id: &str, exclusive: bool) -> Result<StateDir> {
        oxcart_spec::validate::validate_id(id).map_err(Error::InvalidId)?;
        let dir = root.join(id);
        let lock = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_string()))
            }
            Err(e) => return Err(Error::sys(format!("open {}", dir.display()), e)),
        };
        flock(&lock, exclusive).ctx(|| format!("lock {}", dir.display()))?;
        // The directory may have been removed by a delete that held the lock first.
        if !dir.exists() {
            return Err(Error::NotExist(id.to_string()));
        }
        Ok(StateDir {
            dir,
            id: id.to_string(),
            _lock: lock,
        })
    }

    /// The fd that holds the flock. A forked init must close its copy at once: an
    /// flock belongs to the open file description, so an inherited copy would keep
    /// the container locked until init execs, and `run`/`start` would deadlock.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    pub fn save(&self, s: &Saved) -> Result<()> {
        let data =
            serde_json::to_vec(s).map_err(|e| Error::Other(format!("serialize state: {e}")))?;
        let p = self.dir.join(STATE_FILE);
        sys::write_atomic(&p, &data, 0o600).ctx(|| format!("write {}", p.display()))
    }

    /// Load state.json. `None` when the container is still being created (no file yet).
    pub fn load(&self) -> Result<Option<Saved>> {
        let p = self.dir.join(STATE_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Other(format!("{}: corrupt state: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::sys(format!("read {}", p.display()), e)),
        }
    }

    /// Remove the state directory and everything in it.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::sys(format!("remove {}", self.dir.display()), e)),
        }
    }
}

/// Is `pid` still the process we started (same start time, not a zombie)?
pub fn init_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match (sys::proc_start_time(pid), sys::proc_state(pid)) {
        (Ok(t), Ok(st)) => t == start_time && st != 'Z' && st != 'X',
        _ => false,
    }
}

/// Derive the status: never trust a stored one (DESIGN.md "State").
pub fn derive_status(dir: &StateDir, saved: &Saved, frozen: bool) -> Status {
    if !init_alive(saved.pid, saved.start_time) {
        return Status::Stopped;
    }
    if dir.fifo_path().exists() {
        return Status::Created;
    }
    if frozen {
        return Status::Paused;
    }
    Status::Running
}

/// The user name owning a uid, from the host's /etc/passwd (runc reports a name).
pub fn owner_name(uid: u32) -> String {
    if let Ok(p) = std::fs::read_to_string("/etc/passwd") {
        for line in p.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(_), Some(u)) = (f.next(), f.next(), f.next()) {
                if u.parse::<u32>().ok() == Some(uid) {
                    return name.to_string();
                }
            }
        }
    }
    format!("#{uid}")
}

/// List container ids under root (directories only).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::sys(format!("read {}", root.display()), e)),
    };
    let mut ids = Vec::new();
    for ent in rd.flatten() {
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(n) = ent.file_name().to_str() {
                if oxcart_spec::validate::validate_id(n).is_ok() {
                    ids.push(n.to_string());
                }
            }
        }
    }
    ids.sort();
    Ok(ids)
}
