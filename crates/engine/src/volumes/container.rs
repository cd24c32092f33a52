//! A container's volumes: resolved once at `create` (named volumes made if missing,
//! anonymous ones for `-v /path`, `--mount type=volume` without a source and every
//! image `VOLUME`, `--volumes-from`'s mounts) and kept in its record; made ready at
//! each start (a filesystem-backed volume mounted, copy-up into an empty volume) and
//! handed to the spec as binds; released when the container stops.

use super::{copyup, VolLock, Volume, VolumeCreate, VolumeError, COPYING};
use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use crate::record::Record;
use crate::types::{Config, HostConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One volume (or `--volumes-from` bind) of a container, in docker's `MountPoint`
/// shape (`inspect`'s `Mounts`), plus what the engine needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeMount {
    /// `volume`, or `bind` (a host path taken over by `--volumes-from`).
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
    /// Fill an empty volume with the image's content first (not `nocopy`).
    pub copy: bool,
    /// Made for this container: `rm -v` and `--rm` remove it.
    pub anonymous: bool,
}

fn clean(p: &str) -> PathBuf {
    Path::new(p).components().collect()
}

/// A `-v` string's parts: (source or "", destination, mode).
fn split_bind(b: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = b.splitn(3, ':').collect();
    match parts[..] {
        [d] => ("", d, ""),
        [s, d] => (s, d, ""),
        [s, d, m] => (s, d, m),
        _ => ("", b, ""),
    }
}

/// Whether a `-v` names a volume (named or anonymous) rather than a host path.
pub(crate) fn bind_is_volume(b: &str) -> bool {
    !split_bind(b).0.starts_with('/')
}

fn mode_ro(mode: &str) -> bool {
    mode.split(',').any(|m| m == "ro")
}

fn mode_nocopy(mode: &str) -> bool {
    mode.split(',').any(|m| m == "nocopy")
}

/// `--mount`'s `VolumeOptions` (docker's JSON: `NoCopy`, `Labels`, `DriverConfig`).
fn mount_volume_opts(m: &crate::types::Mount) -> (bool, VolumeCreate) {
    let v = m.volume_options.clone().unwrap_or_default();
    let str_map = |x: Option<&serde_json::Value>| -> BTreeMap<String, String> {
        x.and_then(|o| o.as_object())
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let dc = v.get("DriverConfig");
    let req = VolumeCreate {
        name: None,
        driver: dc
            .and_then(|d| d.get("Name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string(),
        labels: str_map(v.get("Labels")),
        options: str_map(dc.and_then(|d| d.get("Options"))),
    };
    (
        v.get("NoCopy").and_then(|b| b.as_bool()).unwrap_or(false),
        req,
    )
}

impl Engine {
    fn volume_mount(&mut self, name: Option<&str>, req: VolumeCreate) -> Result<Volume> {
        if let Some(n) = name {
            if let Some(v) = self.volume_get(n)? {
                return Ok(v);
            }
        }
        self.volume_create(VolumeCreate {
            name: name.map(str::to_string),
            ..req
        })
    }

    /// Resolve a new container's volumes, making those that do not exist. On error the
    /// anonymous volumes made so far are removed again.
    pub(crate) fn plan_volumes(
        &mut self,
        config: &Config,
        hc: &HostConfig,
    ) -> Result<Vec<VolumeMount>> {
        let mut out = Vec::new();
        let r = self.plan_volumes_into(config, hc, &mut out);
        if r.is_err() {
            self.drop_anonymous(&out);
        }
        r.map(|()| out)
    }

    /// Remove the anonymous volumes of a container that never came to be.
    pub(crate) fn drop_anonymous(&mut self, mounts: &[VolumeMount]) {
        for m in mounts.iter().filter(|m| m.anonymous) {
            let _ = self.volume_delete(&m.name);
        }
    }

    fn plan_volumes_into(
        &mut self,
        config: &Config,
        hc: &HostConfig,
        out: &mut Vec<VolumeMount>,
    ) -> Result<()> {
        // Destinations the user mounted: the image's VOLUMEs and --volumes-from's
        // mounts at the same place give way to them (docker's order).
        let mut taken: HashSet<PathBuf> = HashSet::new();
        self.plan_user_volumes(hc, &mut taken, out)?;
        for from in hc.volumes_from.iter().flatten() {
            self.plan_volumes_from(from, &mut taken, out)?;
        }
        for dst in config.volumes.iter().flatten().map(|(d, _)| d) {
            if !taken.insert(clean(dst)) {
                continue;
            }
            if !dst.starts_with('/') || clean(dst) == Path::new("/") {
                return Err(EngineError::Invalid(format!(
                    "invalid volume specification: '{dst}': the mount point must be an absolute path other than /"
                )));
            }
            let v = self.volume_create(VolumeCreate::default())?;
            out.push(VolumeMount {
                kind: "volume".into(),
                source: v.mountpoint,
                destination: dst.clone(),
                mode: String::new(),
                rw: true,
                copy: true,
                anonymous: true,
                name: v.name,
                propagation: String::new(),
            });
        }
        Ok(())
    }

    /// The user's `-v`, `--mount` and `--tmpfs`: every destination is `taken`; the
    /// volumes among them are resolved (named ones made if missing).
    fn plan_user_volumes(
        &mut self,
        hc: &HostConfig,
        taken: &mut HashSet<PathBuf>,
        out: &mut Vec<VolumeMount>,
    ) -> Result<()> {
        for b in hc.binds.iter().flatten() {
            let (src, dst, mode) = split_bind(b);
            taken.insert(clean(dst));
            if src.starts_with('/') {
                continue;
            }
            let v = self.volume_mount((!src.is_empty()).then_some(src), VolumeCreate::default())?;
            out.push(VolumeMount {
                kind: "volume".into(),
                source: v.mountpoint,
                destination: dst.to_string(),
                // docker shows `z` for a `-v` without a mode.
                mode: if mode.is_empty() {
                    "z".into()
                } else {
                    mode.to_string()
                },
                rw: !mode_ro(mode),
                copy: !mode_nocopy(mode),
                anonymous: src.is_empty(),
                name: v.name,
                propagation: String::new(),
            });
        }
        for m in &hc.mounts {
            taken.insert(clean(&m.target));
            if m.kind != "volume" {
                continue;
            }
            let (nocopy, req) = mount_volume_opts(m);
            let src = (!m.source.is_empty()).then_some(m.source.as_str());
            let v = self.volume_mount(src, req)?;
            out.push(VolumeMount {
                kind: "volume".into(),
                source: v.mountpoint,
                destination: m.target.clone(),
                mode: String::new(),
                rw: !m.read_only,
                copy: !nocopy,
                anonymous: src.is_none(),
                name: v.name,
                propagation: String::new(),
            });
        }
        for dst in hc.tmpfs.iter().flatten().map(|(d, _)| d) {
            taken.insert(clean(dst));
        }
        Ok(())
    }

    /// `--volumes-from NAME[:ro|rw]`: the other container's volumes and binds, at its
    /// destinations, read-only if asked (docker: the mode overrides each mount's).
    fn plan_volumes_from(
        &self,
        from: &str,
        taken: &mut HashSet<PathBuf>,
        out: &mut Vec<VolumeMount>,
    ) -> Result<()> {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
            Some((_, m)) => {
                return Err(EngineError::Invalid(format!(
                    "--volumes-from {from}: invalid mode: {m} (ro or rw)"
                )))
            }
            None => (from, None),
        };
        let other = self.find(name)?;
        let mut theirs: Vec<VolumeMount> = other.volumes.clone();
        for b in other.host_config.binds.iter().flatten() {
            let (src, dst, m) = split_bind(b);
            if src.starts_with('/') {
                theirs.push(VolumeMount {
                    kind: "bind".into(),
                    source: src.into(),
                    destination: dst.into(),
                    mode: m.into(),
                    rw: !mode_ro(m),
                    ..Default::default()
                });
            }
        }
        for m in other.host_config.mounts.iter().filter(|m| m.kind == "bind") {
            theirs.push(VolumeMount {
                kind: "bind".into(),
                source: m.source.clone(),
                destination: m.target.clone(),
                rw: !m.read_only,
                ..Default::default()
            });
        }
        for mut m in theirs {
            if !taken.insert(clean(&m.destination)) {
                continue;
            }
            if let Some(md) = mode {
                m.rw = md == "rw";
                m.mode = md.to_string();
            }
            // Never copied into (it is the other container's data) and never removed
            // with this container.
            m.copy = false;
            m.anonymous = false;
            out.push(m);
        }
        Ok(())
    }

    /// Make a container's volumes ready for a start and return the host config the
    /// spec is built from, with every volume as a bind of its `_data`. The locks
    /// returned keep a concurrent stop of another user from unmounting a
    /// filesystem-backed volume until the runtime has mounted it.
    pub(crate) fn volumes_for_start(
        &mut self,
        rec: &Record,
        rootfs: &Path,
    ) -> Result<(HostConfig, Vec<VolLock>)> {
        let mut hc = rec.host_config.clone();
        let mut binds: Vec<String> = hc
            .binds
            .iter()
            .flatten()
            .filter(|b| !bind_is_volume(b))
            .cloned()
            .collect();
        hc.mounts.retain(|m| m.kind != "volume");
        let mut locks = Vec::new();
        for m in &rec.volumes {
            let mut opts = if m.rw { "rw" } else { "ro" }.to_string();
            if !m.propagation.is_empty() {
                opts = format!("{opts},{}", m.propagation);
            }
            if m.kind != "volume" {
                binds.push(format!("{}:{}:{opts}", m.source, m.destination));
                continue;
            }
            // Removed with -f since the container was made: as docker's named
            // volumes, it is made again (empty).
            let v = self.volume_mount(Some(&m.name), VolumeCreate::default())?;
            let dir = self.volume_dir(&v.name);
            let data = dir.join("_data");
            std::fs::create_dir_all(&data).map_err(io_err(&data))?;
            let lock = VolLock::acquire(&dir)?;
            mount_backing(&v, &data)?;
            if m.copy {
                copy_up_once(&v.name, &dir, rootfs, &m.destination)?;
            }
            locks.push(lock);
            binds.push(format!("{}:{}:{opts}", data.display(), m.destination));
        }
        hc.binds = (!binds.is_empty()).then_some(binds);
        Ok((hc, locks))
    }

    /// Before a `cp` of a container that is not running: what `start` does to its
    /// volumes short of mounting a filesystem-backed one — `_data` made, the copy-up
    /// done — so a file copied into a still empty volume does not keep the image's
    /// content out of it (docker copies up at create, before any cp can run).
    pub(crate) fn volumes_for_cp(&self, rec: &Record, rootfs: &Path) -> Result<()> {
        for m in rec.volumes.iter().filter(|m| m.kind == "volume") {
            let dir = self.volume_dir(&m.name);
            let data = dir.join("_data");
            std::fs::create_dir_all(&data).map_err(io_err(&data))?;
            // An unmounted filesystem-backed volume's `_data` is not its content.
            let backed = self
                .volume_get(&m.name)?
                .is_some_and(|v| v.options.contains_key("type"));
            if m.copy && !backed {
                let _lock = VolLock::acquire(&dir)?;
                copy_up_once(&m.name, &dir, rootfs, &m.destination)?;
            }
        }
        Ok(())
    }

    /// After a container stopped: unmount its filesystem-backed volumes that no
    /// running container uses any more (docker's local driver unmounts on the last
    /// user's stop).
    pub(crate) fn volumes_release(&self, rec: &Record) -> Result<()> {
        let mut backed: Vec<&str> = Vec::new();
        for m in rec.volumes.iter().filter(|m| m.kind == "volume") {
            if let Some(v) = self.volume_get(&m.name)? {
                if v.options.contains_key("type") {
                    backed.push(&m.name);
                }
            }
        }
        if backed.is_empty() {
            return Ok(());
        }
        let others = self.list()?;
        for name in backed {
            let dir = self.volume_dir(name);
            let _lock = VolLock::acquire(&dir)?;
            let mut used = false;
            for o in others.iter().filter(|o| o.id != rec.id) {
                if o.volumes.iter().any(|m| m.name == name)
                    && self.observe(o).is_ok_and(|s| s.status.is_running())
                {
                    used = true;
                    break;
                }
            }
            if !used {
                unmount_data(&dir);
            }
        }
        Ok(())
    }
}

/// Is `p` a mount point (listed in our mountinfo)?
fn is_mounted(p: &Path) -> bool {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy().replace(' ', "\\040");
    mi.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == want))
}

/// Unmount whatever is mounted on `<dir>/_data` (detached: a container still using it
/// keeps its view).
pub(crate) fn unmount_data(dir: &Path) {
    let data = dir.join("_data");
    let Ok(c) = CString::new(data.as_os_str().as_bytes()) else {
        return;
    };
    for _ in 0..16 {
        if !is_mounted(&data) {
            return;
        }
        // SAFETY: valid C string.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            return;
        }
    }
}

/// mount(8)'s flag words in `o=`; the rest is the filesystem's data.
fn mount_flags(o: &str) -> (libc::c_ulong, String) {
    let mut flags = 0;
    let mut data = Vec::new();
    for w in o.split(',').filter(|w| !w.is_empty()) {
        flags |= match w {
            "ro" => libc::MS_RDONLY,
            "nosuid" => libc::MS_NOSUID,
            "nodev" => libc::MS_NODEV,
            "noexec" => libc::MS_NOEXEC,
            "sync" => libc::MS_SYNCHRONOUS,
            "noatime" => libc::MS_NOATIME,
            "nodiratime" => libc::MS_NODIRATIME,
            "relatime" => libc::MS_RELATIME,
            "strictatime" => libc::MS_STRICTATIME,
            "bind" => libc::MS_BIND,
            "rbind" => libc::MS_BIND | libc::MS_REC,
            "rw" | "suid" | "dev" | "exec" | "async" | "defaults" => 0,
            _ => {
                data.push(w);
                0
            }
        };
    }
    (flags, data.join(","))
}

/// docker's local driver with `-o type=… -o device=… [-o o=…]`: mount the filesystem
/// on `_data` when the first container uses the volume.
fn mount_backing(v: &Volume, data: &Path) -> Result<()> {
    let (Some(typ), Some(dev)) = (v.options.get("type"), v.options.get("device")) else {
        return Ok(());
    };
    if is_mounted(data) {
        return Ok(());
    }
    let (flags, fsdata) = mount_flags(v.options.get("o").map(String::as_str).unwrap_or(""));
    let err = |source| {
        EngineError::from(VolumeError::Mount {
            name: v.name.clone(),
            typ: typ.clone(),
            device: dev.clone(),
            source,
        })
    };
    let c = |s: &[u8]| {
        CString::new(s).map_err(|_| err(std::io::Error::from_raw_os_error(libc::EINVAL)))
    };
    let (cdev, ctarget, ctyp, cdata) = (
        c(dev.as_bytes())?,
        c(data.as_os_str().as_bytes())?,
        c(typ.as_bytes())?,
        c(fsdata.as_bytes())?,
    );
    // SAFETY: valid C strings.
    let r = unsafe {
        libc::mount(
            cdev.as_ptr(),
            ctarget.as_ptr(),
            ctyp.as_ptr(),
            flags,
            cdata.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// copy-up into an empty volume, under its lock. The `copying` marker is written first
/// and removed last: found at the next start, the half-filled `_data` is emptied and
/// filled again; `volume inspect` shows it meanwhile.
fn copy_up_once(name: &str, dir: &Path, rootfs: &Path, dst: &str) -> Result<()> {
    let data = dir.join("_data");
    let marker = dir.join(COPYING);
    if marker.exists() {
        for e in std::fs::read_dir(&data).map_err(io_err(&data))? {
            let p = e.map_err(io_err(&data))?.path();
            // remove_dir_all does not follow symlinks: nothing outside is touched.
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(io_err(&p))?;
        }
    } else if std::fs::read_dir(&data)
        .map_err(io_err(&data))?
        .next()
        .is_some()
    {
        return Ok(());
    }
    let cerr = |source| {
        EngineError::from(VolumeError::CopyUp {
            name: name.to_string(),
            path: dst.to_string(),
            source,
        })
    };
    std::fs::write(&marker, b"").map_err(io_err(&marker))?;
    let root = crate::copy::open_dir(rootfs).map_err(cerr)?;
    let dfd = crate::copy::open_dir(&data).map_err(cerr)?;
    copyup::copy_up(&root, dst, &dfd).map_err(cerr)?;
    std::fs::remove_file(&marker).map_err(io_err(&marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        assert_eq!(split_bind("/d"), ("", "/d", ""));
        assert_eq!(split_bind("v:/d:ro,nocopy"), ("v", "/d", "ro,nocopy"));
        assert!(bind_is_volume("v:/d") && bind_is_volume("/d") && !bind_is_volume("/h:/d"));
        assert!(mode_ro("ro,nocopy") && mode_nocopy("ro,nocopy") && !mode_ro("rw"));
        let (f, d) = mount_flags("size=64m,noexec,mode=1777");
        assert_eq!((f, d.as_str()), (libc::MS_NOEXEC, "size=64m,mode=1777"));
    }
}
