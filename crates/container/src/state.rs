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
/// Where a container's cgroups are, written by `create` before it makes any of
/// them, so `delete` can remove them after a `create` that died before
/// `state.json` (which then holds the same, and more).
pub const CGROUP_FILE: &str = "cgroup.json";

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
    pub config: SavedConfig,
    /// oxcart_cgroups manager state (resolved paths), opaque here.
    #[serde(default)]
    pub cgroup: serde_json::Value,
    #[serde(default)]
    pub systemd_cgroup: bool,
    #[serde(default)]
    pub rootless: bool,
    /// The container has no mount namespace of its own: the id of the rootfs
    /// bind init made in the runtime's mount namespace, which `delete` detaches
    /// with every mount of the container beneath it (rootfs::detach_shared_root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_mount: Option<u64>,
}

/// The config in `state.json`, parsed only as far as a command needs it: `start`
/// and `delete` read at most its hooks, and parsing the whole config costs a cold
/// process ~0.1 ms (serde's code for it is most of the binary's data-handling
/// code), on every one of those commands.
#[derive(Debug, Clone)]
pub struct SavedConfig {
    /// As read from `state.json`; `None` for a config made in this process.
    raw: Option<Box<serde_json::value::RawValue>>,
    spec: std::cell::OnceCell<Spec>,
}

/// What hooks need of the config: `ociVersion` for their state, and the hooks.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookConfig {
    #[serde(default)]
    pub oci_version: String,
    #[serde(default)]
    pub hooks: Option<oxcart_spec::Hooks>,
}

impl SavedConfig {
    pub fn new(spec: Spec) -> SavedConfig {
        SavedConfig {
            raw: None,
            spec: std::cell::OnceCell::from(spec),
        }
    }

    fn corrupt(e: serde_json::Error) -> Error {
        Error::Other(format!("{STATE_FILE}: corrupt config: {e}"))
    }

    /// The whole config.
    pub fn spec(&self) -> Result<&Spec> {
        if let Some(s) = self.spec.get() {
            return Ok(s);
        }
        let raw = self.raw.as_ref().map_or("null", |r| r.get());
        let parsed: Spec = serde_json::from_str(raw).map_err(Self::corrupt)?;
        Ok(self.spec.get_or_init(|| parsed))
    }

    /// The whole config, to change; `state.json` then gets the changed one.
    pub fn spec_mut(&mut self) -> Result<&mut Spec> {
        self.spec()?;
        self.raw = None;
        self.spec
            .get_mut()
            .ok_or_else(|| Error::Other(format!("{STATE_FILE}: config not loaded")))
    }

    /// `ociVersion` and the hooks, without parsing the rest (serde skips it).
    pub fn hook_config(&self) -> Result<HookConfig> {
        if let Some(s) = self.spec.get() {
            return Ok(HookConfig {
                oci_version: s.oci_version.clone(),
                hooks: s.hooks.clone(),
            });
        }
        let raw = self.raw.as_ref().map_or("{}", |r| r.get());
        serde_json::from_str(raw).map_err(Self::corrupt)
    }
}

impl Serialize for SavedConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match (self.spec.get(), &self.raw) {
            (Some(spec), _) => spec.serialize(s),
            (None, Some(raw)) => raw.serialize(s),
            (None, None) => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for SavedConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(SavedConfig {
            raw: Some(Deserialize::deserialize(d)?),
            spec: std::cell::OnceCell::new(),
        })
    }
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

    /// Record where the container's cgroups will be, before any exists (see
    /// [`CGROUP_FILE`]). One write(2) to a new file, not a temp file and a rename:
    /// a write to a regular file is not cut short by a signal, so a `create`
    /// killed here leaves the file absent, empty or whole, and an empty one
    /// means that no cgroup was made yet. On `create`'s path: 3 syscalls.
    pub fn record_cgroups(&self, cgroup: &serde_json::Value) -> Result<()> {
        use std::io::Write;
        let data = serde_json::to_vec(cgroup)
            .map_err(|e| Error::Other(format!("serialize cgroup state: {e}")))?;
        let p = self.dir.join(CGROUP_FILE);
        let fd = sys::open(
            &sys::cpath(&p)?,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .ctx(|| format!("create {}", p.display()))?;
        File::from(fd)
            .write_all(&data)
            .ctx(|| format!("write {}", p.display()))
    }

    /// The cgroups recorded by [`StateDir::record_cgroups`]; `None` if the
    /// `create` died before it recorded them (and so before it made any).
    pub fn recorded_cgroups(&self) -> Result<Option<serde_json::Value>> {
        let p = self.dir.join(CGROUP_FILE);
        match std::fs::read(&p) {
            Ok(b) if b.is_empty() => Ok(None),
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Other(format!("{}: corrupt cgroup state: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::sys(format!("read {}", p.display()), e)),
        }
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
    match sys::proc_stat_state(pid) {
        Ok((st, t)) => t == start_time && st != 'Z' && st != 'X',
        Err(_) => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"ociVersion":"1.0.2","hooks":{"poststop":[{"path":"/bin/true"}]},"linux":{"resources":{"pids":{"limit":5}}}}"#;

    #[test]
    fn a_saved_config_is_written_back_as_it_was_read_until_changed() {
        let c: SavedConfig = serde_json::from_str(CONFIG).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), CONFIG);
        let mut c = c;
        let linux = c.spec_mut().unwrap().linux.as_mut().unwrap();
        linux.resources.as_mut().unwrap().pids = None;
        let v: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert!(v["linux"]["resources"].get("pids").is_none(), "{v}");
        assert_eq!(v["hooks"]["poststop"][0]["path"], "/bin/true");
    }

    #[test]
    fn hooks_are_read_without_parsing_the_rest_of_the_config() {
        // `linux` of the wrong type: a full parse fails, reading the hooks does not.
        let raw = r#"{"ociVersion":"1.0.2","hooks":{"poststart":[{"path":"/x"}]},"linux":5}"#;
        let c: SavedConfig = serde_json::from_str(raw).unwrap();
        let hc = c.hook_config().unwrap();
        assert_eq!(hc.oci_version, "1.0.2");
        assert_eq!(hc.hooks.unwrap().poststart[0].path, "/x");
        let err = c.spec().unwrap_err().to_string();
        assert!(err.contains("corrupt config"), "{err}");
    }
}
