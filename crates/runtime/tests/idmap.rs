//! Idmapped bind mounts (runtime-spec config.md "Mounts" uidMappings/gidMappings,
//! runc 1.2's `idmap`/`ridmap`) on the real kernel. Run as root.
//!
//! Kernel semantics (mount_setattr(2) MOUNT_ATTR_IDMAP): with a mount mapping
//! `containerID c → hostID h`, an inode owned on disk by `c + k` is seen through the
//! mount as host id `h + k` (then translated into the container's user namespace as
//! usual), and a file created through the mount by host id `h + k` is stored on
//! disk as `c + k`.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

const IDMAP_IN_LANE: &str = "the guest's files live on tmpfs, which supports idmapped mounts only from Linux 6.3 (the lane's kernel is 6.1)";
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch host directory, removed (after unmounting what we mounted in it) on drop.
struct HostDir {
    dir: PathBuf,
    mounts: Vec<PathBuf>,
}

impl HostDir {
    fn new(prefix: &str) -> HostDir {
        let dir = tmp().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        HostDir {
            dir,
            mounts: Vec::new(),
        }
    }
    fn file(&self, name: &str, uid: u32, gid: u32) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, name).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        p
    }
    /// A tmpfs of our own at `sub` (for submount tests).
    fn tmpfs(&mut self, sub: &str) -> PathBuf {
        let p = self.dir.join(sub);
        std::fs::create_dir_all(&p).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=755", "oxcart-idmap-test"])
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", p.display());
        self.mounts.push(p.clone());
        p
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A container's own copy of the busybox rootfs with the mount points the tests use
/// (the container's root, host uid 100000, cannot create them in a root-owned
/// rootfs); removed on drop.
struct OwnRootfs(PathBuf);

impl OwnRootfs {
    fn new() -> OwnRootfs {
        let dir = tmp().join(unique("idmap-rootfs"));
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        for d in ["data", "plain", "r", "n", "t", "k"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("onefile"), "").unwrap();
        OwnRootfs(dir)
    }
}

impl Drop for OwnRootfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bundle whose container has a user namespace mapping 0 → 100000 (size 65536),
/// on its own rootfs copy (kept alive by the returned guard).
fn userns_bundle(script: &str) -> (Bundle, OwnRootfs) {
    let (mut b, r) = own_bundle(script);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    (b, r)
}

fn own_bundle(script: &str) -> (Bundle, OwnRootfs) {
    let mut b = Bundle::new(&["sh", "-c", script]);
    let r = OwnRootfs::new();
    b.config["root"]["path"] = json!(r.0.display().to_string());
    (b, r)
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn idmap_with_the_containers_mappings() {
    if skip_in_v2_lane("idmap_with_the_containers_mappings", IDMAP_IN_LANE) {
        return;
    }
    // Files owned on disk by plain host ids (0, 5:7, 1000) — what a volume written
    // outside any user namespace holds.
    let h = HostDir::new("idmap-default");
    h.file("root", 0, 0);
    h.file("five", 5, 7);
    h.file("thousand", 1000, 1000);
    let script = "for f in root five thousand; do stat -c %u:%g /data/$f; done; \
                  for f in root five thousand; do stat -c %u:%g /plain/$f; done; \
                  stat -c %u:%g /onefile; \
                  echo x > /data/new && chown 42:43 /data/new && touch /data/byroot";
    let (mut b, _r) = userns_bundle(script);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    let src = h.dir.display().to_string();
    // No mappings on the mount: runc 1.2 uses the container's.
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
    );
    // A single file can be idmapped too.
    add_mount(
        &mut b,
        json!({"destination": "/onefile", "type": "bind",
               "source": h.dir.join("five").display().to_string(), "options": ["bind", "idmap"]}),
    );
    // The same directory without idmap, for contrast.
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]}),
    );
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "0:0",
            "5:7",
            "1000:1000",
            "65534:65534",
            "65534:65534",
            "65534:65534",
            "5:7"
        ],
        "idmapped view then plain view: {out}"
    );
    // Created through the idmapped mount by the container's root (host 100000):
    // stored on disk with the unmapped ids.
    assert_eq!(owner(&h.dir.join("byroot")), (0, 0));
    assert_eq!(owner(&h.dir.join("new")), (42, 43));
}

#[test]
fn idmap_with_the_mounts_own_mappings() {
    if skip_in_v2_lane("idmap_with_the_mounts_own_mappings", IDMAP_IN_LANE) {
        return;
    }
    // Files owned by host 100000+N, mounted with 100000 → 110000 (size 1000):
    // inside the container (0 → 100000) they show as 10000+N, not N.
    let h = HostDir::new("idmap-own");
    h.file("a", 100000, 100000);
    h.file("b", 100007, 100009);
    let dir = h.dir.join("d3");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(100003), Some(100003)).unwrap();
    let script = "ls -ln /data | awk 'NR>1 {print $3\":\"$4\" \"$9}'; \
                  id -u; echo made > /data/d3/made";
    let (mut b, _r) = userns_bundle(script);
    // The process runs as container uid 10003 = host 110003, which the mount maps
    // back to 100003 on disk: the owner of d3.
    b.config["process"]["user"] = json!({"uid": 10003, "gid": 10003});
    add_mount(
        &mut b,
        json!({
            "destination": "/data", "type": "bind", "source": h.dir.display().to_string(),
            "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 100000, "hostID": 110000, "size": 1000}],
            "gidMappings": [{"containerID": 100000, "hostID": 110000, "size": 1000}]
        }),
    );
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec!["10000:10000 a", "10007:10009 b", "10003:10003 d3", "10003"],
        "{out}"
    );
    assert_eq!(owner(&dir.join("made")), (100003, 100003));
}

#[test]
fn ridmap_maps_submounts_idmap_does_not() {
    if skip_in_v2_lane("ridmap_maps_submounts_idmap_does_not", IDMAP_IN_LANE) {
        return;
    }
    let mut h = HostDir::new("idmap-rec");
    h.file("top", 0, 0);
    let sub = h.tmpfs("sub");
    std::fs::write(sub.join("inner"), "x").unwrap();
    std::os::unix::fs::chown(sub.join("inner"), Some(3), Some(4)).unwrap();
    let script = "stat -c %u:%g /r/top /r/sub/inner /n/top /n/sub/inner; \
                  grep -c ' /r/sub ' /proc/self/mountinfo; grep -c ' /n/sub ' /proc/self/mountinfo";
    let (mut b, _r) = userns_bundle(script);
    let src = h.dir.display().to_string();
    add_mount(
        &mut b,
        json!({"destination": "/r", "type": "bind", "source": src, "options": ["rbind", "ridmap", "ro"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/n", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
    );
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec!["0:0", "3:4", "0:0", "65534:65534", "1", "1"],
        "ridmap maps the submount, idmap only the top: {out}"
    );
}

#[test]
fn idmap_flags_apply() {
    if skip_in_v2_lane("idmap_flags_apply", IDMAP_IN_LANE) {
        return;
    }
    let h = HostDir::new("idmap-ro");
    h.file("f", 0, 0);
    let script = "echo y > /data/g 2>/dev/null && echo rw || echo ro; \
                  grep ' /data ' /proc/self/mountinfo | awk '{print $6}'";
    let (mut b, _r) = userns_bundle(script);
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": h.dir.display().to_string(),
               "options": ["bind", "idmap", "ro", "nosuid", "nodev"]}),
    );
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ro", "{out}");
    assert!(
        lines[1].contains("ro") && lines[1].contains("nosuid") && lines[1].contains("nodev"),
        "{out}"
    );
    assert!(!h.dir.join("g").exists());
}

/// `run` must fail with an error containing every `want`, and leave no state.
fn fails_with(b: &Bundle, want: &[&str]) {
    let rt = Runtime::oxcart();
    let (c, _, err) = rt.run_bundle(b);
    assert_ne!(c, 0, "expected failure, got success");
    for w in want {
        assert!(err.contains(w), "{want:?} not in: {err}");
    }
    assert_eq!(
        std::fs::read_dir(&rt.root).map(|d| d.count()).unwrap_or(0),
        0,
        "state left behind"
    );
}

#[test]
fn bad_idmap_mounts_are_errors_naming_the_mount() {
    let h = HostDir::new("idmap-bad");
    h.file("f", 0, 0);
    let src = h.dir.display().to_string();
    let base = userns_bundle("true").0.config["mounts"]
        .as_array()
        .unwrap()
        .len();

    // Not a bind mount.
    let (mut b, _r) = userns_bundle("true");
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    b.write();
    fails_with(
        &b,
        &[&format!("mounts[{base}]"), "only supported for bind mounts"],
    );

    // No user namespace in the container.
    let (mut b, _r) = own_bundle("true");
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind"],
               "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}],
               "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}]}),
    );
    b.write();
    fails_with(&b, &[&format!("mounts[{base}]"), "user namespace"]);

    // Overlapping mappings.
    let (mut b, _r) = userns_bundle("true");
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10},
                               {"containerID": 5, "hostID": 200000, "size": 10}],
               "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}]}),
    );
    b.write();
    fails_with(&b, &[&format!("mounts[{base}].uidMappings[1]"), "overlaps"]);

    // Only one of the two mapping lists.
    let (mut b, _r) = userns_bundle("true");
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}]}),
    );
    b.write();
    fails_with(
        &b,
        &[
            &format!("mounts[{base}]"),
            "both uidMappings and gidMappings",
        ],
    );

    // A filesystem without idmap support (sysfs lacks FS_ALLOW_IDMAP).
    let (mut b, _r) = userns_bundle("true");
    add_mount(
        &mut b,
        json!({"destination": "/k", "type": "bind", "source": "/sys/kernel", "options": ["bind", "idmap"]}),
    );
    b.write();
    fails_with(
        &b,
        &[
            &format!("mounts[{base}]"),
            "does not support idmapped mounts",
        ],
    );
}
