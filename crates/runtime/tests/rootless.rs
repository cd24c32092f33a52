//! Rootless containers: an unprivileged user runs `spec --rootless` and `run`, and
//! manages its containers with `state`, `list`, `kill` and `delete` (runc's
//! rootless mode). Run as root: the tests create a dedicated system user
//! (`oxcart-rootless-test`, left in place, like any system account) and switch to it
//! with `setpriv`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{skip_in_v2_lane, unique};

/// Why these tests stop in the cgroup-v2 lane (see `skip_in_v2_lane`).
const ROOTLESS_IN_LANE: &str = "rootless tests need host users and setpriv";
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const USER: &str = "oxcart-rootless-test";

/// (uid, gid) of the test user, created once if missing.
fn user() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, USER])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        };
        if id("-u").is_none() {
            let st = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ])
                .status()
                .unwrap();
            // Another test process may have created it meanwhile.
            assert!(st.success() || id("-u").is_some(), "useradd {USER} failed");
        }
        // Subordinate ids for newuidmap/newgidmap (subuid(5)); a range far above
        // any regular account's, added once and left with the user.
        let has = |f: &str| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("{USER}:")))
        };
        if !has("/etc/subuid") || !has("/etc/subgid") {
            let range = format!("{SUB_START}-{}", SUB_START + SUB_COUNT - 1);
            let st = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, USER])
                .status()
                .unwrap();
            assert!(st.success(), "usermod --add-subuids for {USER} failed");
        }
        (id("-u").unwrap(), id("-g").unwrap())
    })
}

const SUB_START: u32 = 1_500_000_000;
const SUB_COUNT: u32 = 65536;

/// A private directory under /tmp, owned by the test user: the runtime binary, a
/// bundle with a busybox rootfs and an XDG_RUNTIME_DIR. CARGO_TARGET_TMPDIR may not
/// be traversable by that user, hence /tmp. Removed (after a forced delete of every
/// container started) on drop.
struct Env {
    dir: PathBuf,
    uid: u32,
    gid: u32,
    ids: std::cell::RefCell<Vec<String>>,
    /// `cgroup.procs` files the runtime process is moved into (as root, before it
    /// drops to the user): a session living in its delegated cgroups, as a
    /// systemd `Delegate=yes` user manager does.
    join: std::cell::RefCell<Vec<PathBuf>>,
}

impl Env {
    fn new() -> Env {
        let (uid, gid) = user();
        let dir = PathBuf::from("/tmp").join(unique("oxcart-rootless"));
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.join("xdg")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "id", "cat", "hostname", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::copy(common::oxcart(), dir.join("oxcart-runtime")).unwrap();
        // A child forked by another test thread while the copy's write fd was open
        // holds that fd until it execs, and until then executing the copy fails
        // with ETXTBSY (execve(2)). Wait that short window out.
        let mut tries = 0;
        while let Err(e) = Command::new(dir.join("oxcart-runtime"))
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        {
            assert_eq!(e.raw_os_error(), Some(libc::ETXTBSY), "{e}");
            tries += 1;
            assert!(tries < 200, "the runtime copy stayed busy: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let st = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let env = Env {
            dir,
            uid,
            gid,
            ids: Default::default(),
            join: Default::default(),
        };
        // The user's own `spec --rootless`, as the task describes.
        let (code, _, err) = env.rt(&["spec", "--rootless"]);
        assert_eq!(code, 0, "spec --rootless: {err}");
        env
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn xdg(&self) -> PathBuf {
        self.dir.join("xdg")
    }

    /// Edit the bundle's config.json.
    fn config(&self, f: impl FnOnce(&mut Value)) {
        let p = self.bundle().join("config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    /// `args` must fail and leave no state dir for `id`; returns the error to check.
    fn refused(&self, args: &[&str], id: &str) -> String {
        let (code, _, err) = self.rt(args);
        assert_ne!(code, 0, "{args:?} succeeded");
        assert!(
            !self.xdg().join("oxcart").join(id).exists(),
            "{id}: state left"
        );
        err
    }

    /// The runtime as the test user, in the bundle dir, with its XDG_RUNTIME_DIR and
    /// no --root: (exit code, stdout, stderr). Output goes through files, never
    /// pipes, so a container that survives cannot hang the test.
    fn rt(&self, args: &[&str]) -> (i32, String, String) {
        self.rt_env(args, true)
    }

    /// As [`Env::rt`], optionally without XDG_RUNTIME_DIR.
    fn rt_env(&self, args: &[&str], xdg: bool) -> (i32, String, String) {
        if let Some(i) = args.iter().position(|a| *a == "run" || *a == "create") {
            if let Some(id) = args.last().filter(|_| i + 1 < args.len()) {
                self.ids.borrow_mut().push(id.to_string());
            }
        }
        let n = unique("out");
        let (o, e) = (
            self.dir.join(format!("{n}.out")),
            self.dir.join(format!("{n}.err")),
        );
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg("env")
            .arg("-i");
        if xdg {
            c.arg(format!("XDG_RUNTIME_DIR={}", self.xdg().display()));
        }
        let join: Vec<std::ffi::CString> = self
            .join
            .borrow()
            .iter()
            .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap())
            .collect();
        if !join.is_empty() {
            // SAFETY: between fork and exec only open/write/close, which are
            // async-signal-safe; the CStrings were made before the fork.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
                    for p in &join {
                        let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // "0": the writing process (cgroups(7)).
                        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                        let err = std::io::Error::last_os_error();
                        libc::close(fd);
                        if n != 1 {
                            return Err(err);
                        }
                    }
                    Ok(())
                });
            }
        }
        let st = c
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(self.dir.join("oxcart-runtime"))
            .args(args)
            .current_dir(self.bundle())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        let out = std::fs::read_to_string(&o).unwrap_or_default();
        let err = std::fs::read_to_string(&e).unwrap_or_default();
        let _ = std::fs::remove_file(&o);
        let _ = std::fs::remove_file(&e);
        (st.code().unwrap_or(-1), out, err)
    }

    fn state(&self, id: &str) -> Value {
        let (code, out, err) = self.rt(&["state", id]);
        assert_eq!(code, 0, "state {id}: {err}");
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.ids.borrow().clone();
        for id in ids {
            let _ = self.rt(&["delete", "--force", &id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_args(v: &mut Value, args: &[&str]) {
    v["process"]["terminal"] = Value::Bool(false);
    v["process"]["args"] = serde_json::json!(args);
}

fn no_cgroup_named(id: &str) -> bool {
    ["pids", "memory", "cpu", "freezer", "devices", "unified"]
        .iter()
        .all(|c| !Path::new("/sys/fs/cgroup").join(c).join(id).exists())
}

#[test]
fn rootless_run_maps_own_id_and_returns_exit_code() {
    if skip_in_v2_lane(
        "rootless_run_maps_own_id_and_returns_exit_code",
        ROOTLESS_IN_LANE,
    ) {
        return;
    }
    let env = Env::new();
    env.config(|v| {
        set_args(
            v,
            &[
                "sh",
                "-c",
                "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; hostname; exit 3",
            ],
        )
    });
    let id = unique("rl-run");
    let (code, out, err) = env.rt(&["run", &id]);
    assert_eq!(code, 3, "stdout: {out}\nstderr: {err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (uid, gid) = (env.uid.to_string(), env.gid.to_string());
    assert_eq!(
        lines,
        vec![
            vec!["0"],
            vec!["0", uid.as_str(), "1"],
            vec!["0", gid.as_str(), "1"],
            vec!["oxcart"],
        ],
        "{out}"
    );
    // State lived under $XDG_RUNTIME_DIR/oxcart (the non-root default root), owned
    // by the user, and is gone after a foreground run.
    let root = env.xdg().join("oxcart");
    let md = std::fs::metadata(&root).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), env.uid);
    assert!(!root.join(&id).exists());
    assert!(!Path::new("/run/oxcart").join(&id).exists());
    assert!(no_cgroup_named(&id));
}

#[test]
fn rootless_detached_state_list_kill_delete() {
    if skip_in_v2_lane("rootless_detached_state_list_kill_delete", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    env.config(|v| set_args(v, &["sleep", "1000"]));
    let id = unique("rl-det");
    let (code, _, err) = env.rt(&["run", "-d", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(env.xdg().join("oxcart").join(&id).is_dir());
    let st = env.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["owner"], USER, "{st}");
    let pid = st["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(env.uid.to_string().as_str()),
        "init runs as the unprivileged user on the host: {uid_line}"
    );
    let (code, out, err) = env.rt(&["list", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == id), "{out}");
    // No cgroup to enumerate the processes: kill --all is refused for a signal
    // that only init would get, allowed for SIGKILL (its pid namespace dies).
    let (code, _, err) = env.rt(&["kill", "--all", &id, "TERM"]);
    assert_ne!(code, 0);
    assert!(err.contains("no cgroup"), "{err}");
    assert_eq!(env.state(&id)["status"], "running");
    let (code, _, err) = env.rt(&["kill", "--all", &id, "KILL"]);
    assert_eq!(code, 0, "{err}");
    assert!(common::wait_until(|| env.state(&id)["status"] == "stopped"));
    let (code, _, err) = env.rt(&["delete", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(!env.xdg().join("oxcart").join(&id).exists());
    let (code, _, err) = env.rt(&["state", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn rootless_limits_without_delegation_fail_cleanly() {
    if skip_in_v2_lane(
        "rootless_limits_without_delegation_fail_cleanly",
        ROOTLESS_IN_LANE,
    ) {
        return;
    }
    let env = Env::new();
    env.config(|v| {
        set_args(v, &["true"]);
        v["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}});
    });
    let id = unique("rl-lim");
    let err = env.refused(&["run", &id], &id);
    assert!(err.contains("linux.resources.pids"), "{err}");
    assert!(no_cgroup_named(&id));
}

#[test]
fn rootless_wider_maps_use_newuidmap_and_allow_additional_gids() {
    if skip_in_v2_lane(
        "rootless_wider_maps_use_newuidmap_and_allow_additional_gids",
        ROOTLESS_IN_LANE,
    ) {
        return;
    }
    let env = Env::new();
    env.config(|v| {
        set_args(
            v,
            &[
                "sh",
                "-c",
                "id -u; id -g; id -G; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
            ],
        );
        v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
        let maps = |own: u32| {
            serde_json::json!([
                {"containerID": 0, "hostID": own, "size": 1},
                {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT},
            ])
        };
        v["linux"]["uidMappings"] = maps(env.uid);
        v["linux"]["gidMappings"] = maps(env.gid);
    });
    let id = unique("rl-wide");
    let (code, out, err) = env.rt(&["run", &id]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (uid, gid, sub) = (
        env.uid.to_string(),
        env.gid.to_string(),
        SUB_START.to_string(),
    );
    let count = SUB_COUNT.to_string();
    assert_eq!(
        lines,
        vec![
            vec!["1000"],
            vec!["1000"],
            vec!["1000", "5"],
            vec!["0", uid.as_str(), "1"],
            vec!["1", sub.as_str(), count.as_str()],
            vec!["0", gid.as_str(), "1"],
            vec!["1", sub.as_str(), count.as_str()],
            vec!["allow"],
        ],
        "{out}"
    );
}

#[test]
fn rootless_config_checks_name_the_field() {
    if skip_in_v2_lane("rootless_config_checks_name_the_field", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    // A config without a user namespace (runc: "rootless container requires user
    // namespaces"), refused before anything is created.
    env.config(|v| {
        set_args(v, &["true"]);
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        let l = v["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let id = unique("rl-nouserns");
    let err = env.refused(&["run", &id], &id);
    assert!(
        err.contains("linux.namespaces") && err.contains("user namespace"),
        "{err}"
    );
    // A uid=/gid= mount option naming an id the user namespace does not map.
    std::fs::remove_file(env.bundle().join("config.json")).unwrap();
    let (code, _, err) = env.rt(&["spec", "--rootless"]);
    assert_eq!(code, 0, "{err}");
    env.config(|v| {
        set_args(v, &["true"]);
        let mounts = v["mounts"].as_array_mut().unwrap();
        let pts = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/dev/pts")
            .unwrap();
        pts["options"].as_array_mut().unwrap().push("gid=5".into());
    });
    let id = unique("rl-gidopt");
    let err = env.refused(&["run", &id], &id);
    assert!(err.contains("gid=5") && err.contains("mounts["), "{err}");
}

#[test]
fn rootless_additional_gids_need_newgidmap() {
    if skip_in_v2_lane("rootless_additional_gids_need_newgidmap", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    env.config(|v| {
        set_args(v, &["true"]);
        v["process"]["user"]["additionalGids"] = serde_json::json!([5]);
    });
    let id = unique("rl-gids");
    let err = env.refused(&["run", &id], &id);
    assert!(err.contains("process.user.additionalGids"), "{err}");
}

/// A root-owned 0700 directory standing in for root's state, removed on drop.
struct RootState(PathBuf);

impl Drop for RootState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rootless_user_cannot_use_roots_state() {
    if skip_in_v2_lane("rootless_user_cannot_use_roots_state", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    env.config(|v| set_args(v, &["true"]));
    let rs = RootState(PathBuf::from("/tmp").join(unique("oxcart-root-state")));
    std::fs::create_dir(&rs.0).unwrap();
    std::fs::set_permissions(&rs.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root = rs.0.display().to_string();
    let (code, _, err) = env.rt(&["--root", &root, "list"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("ermission denied"), "{err}");
    let id = unique("rl-root");
    let (code, _, err) = env.rt(&["--root", &root, "run", &id]);
    assert_ne!(code, 0, "{err}");
    assert_eq!(std::fs::read_dir(&rs.0).unwrap().count(), 0);
    // Without XDG_RUNTIME_DIR the default root falls back to /run/oxcart (runc:
    // /run/runc), where an unprivileged user can create nothing.
    let id = unique("rl-noxdg");
    let (code, _, err) = env.rt_env(&["run", &id], false);
    assert_ne!(code, 0, "{err}");
    assert!(!Path::new("/run/oxcart").join(&id).exists());
}

#[test]
fn rootless_flag_values() {
    if skip_in_v2_lane("rootless_flag_values", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    let (code, _, err) = env.rt(&["--rootless", "maybe", "list"]);
    assert_ne!(code, 0);
    assert!(err.contains("--rootless"), "{err}");
    let (code, _, err) = env.rt(&["--rootless", "true", "list"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn rootless_exec_joins_the_container() {
    if skip_in_v2_lane("rootless_exec_joins_the_container", ROOTLESS_IN_LANE) {
        return;
    }
    let env = Env::new();
    env.config(|v| set_args(v, &["sleep", "1000"]));
    let id = unique("rl-exec");
    let (code, _, err) = env.rt(&["run", "-d", &id]);
    assert_eq!(code, 0, "{err}");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let (code, out, err) = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; readlink /proc/self/ns/pid; exit 4",
    ]);
    assert_eq!(code, 4, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let init_pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(
        lines[1],
        init_pidns.display().to_string(),
        "exec is in the container's pid namespace"
    );
    let (code, _, err) = env.rt(&["delete", "--force", &id]);
    assert_eq!(code, 0, "{err}");
}

/// One hierarchy the test process is in: its controllers as /proc/self/cgroup
/// lists them (`""` for cgroup2), where it is mounted and our cgroup in it.
struct Hier {
    ctrls: String,
    mp: PathBuf,
    own: String,
}

impl Hier {
    fn v2(&self) -> bool {
        self.ctrls.is_empty()
    }
    fn has(&self, c: &str) -> bool {
        self.ctrls.split(',').any(|x| x == c)
    }
    /// Our own cgroup's directory: where a relative cgroupsPath is resolved
    /// (runc's `GetOwnCgroupPath`, the runtime's Manager).
    fn own_dir(&self) -> PathBuf {
        let mut d = self.mp.clone();
        for c in self.own.split('/').filter(|c| !c.is_empty()) {
            d.push(c);
        }
        d
    }
}

/// The hierarchies of /proc/self/cgroup with their mount points from mountinfo.
fn hierarchies() -> Vec<Hier> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<(String, PathBuf, String, String)> = mi
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((
                f.get(sep + 1)?.to_string(),
                PathBuf::from(f[4]),
                f.get(sep + 3)?.to_string(),
                f[3].to_string(),
            ))
        })
        .filter(|(t, _, _, root)| (t == "cgroup" || t == "cgroup2") && root == "/")
        .collect();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    own.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let mp = mounts
                .iter()
                .filter(|(t, _, opts, _)| {
                    if ctrls.is_empty() {
                        t == "cgroup2"
                    } else {
                        t == "cgroup" && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
                    }
                })
                .map(|(_, mp, _, _)| mp.clone())
                .min_by_key(|mp| !mp.starts_with("/sys/fs/cgroup"))?;
            Some(Hier {
                ctrls: ctrls.to_string(),
                mp,
                own: path.to_string(),
            })
        })
        .collect()
}

/// cgroups this test made and delegated to the test user, removed with
/// everything below them on drop (even when the test fails). Only directories
/// the test created itself are ever chowned or removed.
#[derive(Default)]
struct Delegated(Vec<PathBuf>);

impl Delegated {
    fn chown(p: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
    }

    /// A v1 delegation (cgroups(7) "Cgroups version 1"): the directory and its
    /// files belong to the user. A cpuset cgroup first gets its parent's cpus and
    /// mems (an empty cpuset takes no tasks), as runc's rootless tests set them up.
    fn v1(&mut self, dir: &Path, uid: u32, gid: u32, cpuset: bool) {
        std::fs::create_dir(dir).unwrap();
        self.0.push(dir.to_path_buf());
        if cpuset {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(dir.parent().unwrap().join(f)).unwrap();
                std::fs::write(dir.join(f), v.trim()).unwrap();
            }
        }
        Self::chown(dir, uid, gid);
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                Self::chown(&e.path(), uid, gid);
            }
        }
    }

    /// A cgroup2 delegation (Documentation/admin-guide/cgroup-v2.rst
    /// "Delegation"): the directory, cgroup.procs, cgroup.threads and
    /// cgroup.subtree_control.
    fn v2(&mut self, dir: &Path, uid: u32, gid: u32) {
        std::fs::create_dir(dir).unwrap();
        self.0.push(dir.to_path_buf());
        Self::chown(dir, uid, gid);
        for f in ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"] {
            Self::chown(&dir.join(f), uid, gid);
        }
    }
}

fn rmdir_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
    }
    // EBUSY while the last task is still exiting.
    common::wait_until(|| std::fs::remove_dir(dir).is_ok() || !dir.exists());
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            rmdir_tree(d);
        }
    }
}

fn procs(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("{}/cgroup.procs: {e}", dir.display()))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

const PURE_V2: &str = "models v1/hybrid delegation; a pure cgroup v2 host has its own lane";

#[test]
fn rootless_delegated_cgroups_get_limits_exec_and_delete() {
    let name = "rootless_delegated_cgroups_get_limits_exec_and_delete";
    if skip_in_v2_lane(name, ROOTLESS_IN_LANE) {
        return;
    }
    let hs = hierarchies();
    if hs.iter().all(Hier::v2) {
        eprintln!("{name}: skipped: {PURE_V2}");
        return;
    }
    let d = unique("oxcart-deleg");
    // Declared before env: dropped after it, once env has deleted its containers.
    let mut deleg = Delegated::default();
    let env = Env::new();
    // Delegate exactly what the manager resolves a relative cgroupsPath "<d>/<ctr>"
    // to: <own cgroup>/<d> in every hierarchy (in memory that nests under the
    // harness's cgroup). In cgroup2 the runtime itself runs inside <own>/<d>: a
    // delegatee may only move processes within its subtree (cgroup-v2.rst
    // "Delegation Containment"), so its own cgroup there becomes <own>/<d>.
    let mut expect = Vec::new();
    let mut session = None;
    let ctr = unique("rl-deleg");
    for h in &hs {
        let dir = h.own_dir().join(&d);
        if h.v2() {
            deleg.v2(&dir, env.uid, env.gid);
            session = Some(dir.join("cgroup.procs"));
            expect.push((h, dir.join(&d).join(&ctr)));
        } else {
            deleg.v1(&dir, env.uid, env.gid, h.has("cpuset"));
            expect.push((h, dir.join(&ctr)));
        }
    }
    env.config(|v| {
        set_args(v, &["sleep", "1000"]);
        v["linux"]["cgroupsPath"] = format!("{d}/{ctr}").into();
        v["linux"]["resources"] = serde_json::json!({"pids": {"limit": 42}});
    });
    if let Some(session) = session {
        // From outside the cgroup2 subtree the user may not move init into it (the
        // common ancestor is not delegated): with cgroupsPath set that is an error,
        // as the failed pid write is in runc, and nothing is left behind.
        let (code, _, err) = env.rt(&["run", "-d", &ctr]);
        assert_ne!(code, 0);
        assert!(
            err.contains("linux.cgroupsPath") && err.contains("common ancestor"),
            "{err}"
        );
        for dir in &deleg.0 {
            assert!(subdirs(dir).is_empty(), "{} not empty", dir.display());
        }
        assert!(!env.xdg().join("oxcart").join(&ctr).exists());
        env.join.borrow_mut().push(session);
    }
    let (code, _, err) = env.rt(&["run", "-d", &ctr]);
    assert_eq!(code, 0, "{err}");
    let pid = env.state(&ctr)["pid"].as_i64().unwrap();
    for (h, dir) in &expect {
        assert!(
            procs(dir).contains(&pid),
            "init {pid} is not in its {:?} cgroup {}",
            h.ctrls,
            dir.display()
        );
    }
    let (_, pids_dir) = expect.iter().find(|(h, _)| h.has("pids")).unwrap();
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max"))
            .unwrap()
            .trim(),
        "42"
    );
    // An exec'd process joins the same cgroups.
    let pf = env.dir.join("exec.pid");
    let pfs = pf.display().to_string();
    let (code, _, err) = env.rt(&["exec", "-d", "--pid-file", &pfs, &ctr, "sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    let epid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for (h, dir) in &expect {
        assert!(
            procs(dir).contains(&epid),
            "exec'd {epid} is not in the {:?} cgroup {}",
            h.ctrls,
            dir.display()
        );
    }
    let (code, _, err) = env.rt(&["delete", "--force", &ctr]);
    assert_eq!(code, 0, "{err}");
    // The container's cgroups (and the intermediate one the runtime made in
    // cgroup2) are gone; the delegated ones stay, the admin's.
    for (h, dir) in &expect {
        assert!(
            !dir.exists(),
            "{:?}: {} left behind",
            h.ctrls,
            dir.display()
        );
        if h.v2() {
            assert!(!dir.parent().unwrap().exists());
        }
    }
    for dir in &deleg.0 {
        assert!(dir.is_dir(), "{} was removed", dir.display());
        assert!(subdirs(dir).is_empty(), "{} not empty", dir.display());
    }
}

#[test]
fn rootless_partial_delegation_follows_runc() {
    let name = "rootless_partial_delegation_follows_runc";
    if skip_in_v2_lane(name, ROOTLESS_IN_LANE) {
        return;
    }
    let hs = hierarchies();
    let Some(pids) = hs.iter().find(|h| h.has("pids")) else {
        eprintln!("{name}: skipped: no v1 pids hierarchy; {PURE_V2}");
        return;
    };
    let mem_own = hs.iter().find(|h| h.has("memory")).map(|h| h.own.clone());
    let mut deleg = Delegated::default();
    let env = Env::new();
    // Only the pids hierarchy is delegated, and the runtime runs in it, so the
    // default cgroup (<own>/<id>, no cgroupsPath) can be made there and nowhere else.
    let pd = pids.own_dir().join(unique("oxcart-deleg-pids"));
    deleg.v1(&pd, env.uid, env.gid, false);
    env.join.borrow_mut().push(pd.join("cgroup.procs"));

    // A limit for a controller whose cgroup could not be made: an error naming the
    // field (runc's Set: "cannot set memory limit: container could not join or
    // create cgroup"), and nothing left behind.
    env.config(|v| {
        set_args(v, &["sleep", "1000"]);
        v["linux"]["resources"] =
            serde_json::json!({"pids": {"limit": 42}, "memory": {"limit": 67108864}});
    });
    let id = unique("rl-part");
    let err = env.refused(&["run", "-d", &id], &id);
    assert!(err.contains("linux.resources.memory"), "{err}");
    assert!(subdirs(&pd).is_empty(), "{:?}", subdirs(&pd));

    // With linux.cgroupsPath set, runc ignores no permission error
    // (`isIgnorableError(...) && c.Path == ""`): a hierarchy that is not delegated
    // fails the create, naming the path.
    env.config(|v| {
        v["linux"]["resources"] = serde_json::json!({"pids": {"limit": 42}});
        v["linux"]["cgroupsPath"] = format!("sub/{id}").into();
    });
    let err = env.refused(&["run", "-d", &id], &id);
    assert!(err.contains("linux.cgroupsPath"), "{err}");
    assert!(subdirs(&pd).is_empty(), "{:?}", subdirs(&pd));

    // Without cgroupsPath and with only the delegated controller limited: the
    // container gets its pids cgroup and limit, the other hierarchies are skipped.
    env.config(|v| {
        v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let (code, _, err) = env.rt(&["run", "-d", &id]);
    assert_eq!(code, 0, "{err}");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let dir = pd.join(&id);
    assert!(procs(&dir).contains(&pid), "{}", dir.display());
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "42"
    );
    if let Some(mem_own) = mem_own {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let mem = cg
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
            .unwrap();
        assert_eq!(
            mem, mem_own,
            "memory was not delegated: init stays where we are"
        );
    }
    // The pids cgroup lists the processes, so kill --all works for any signal.
    let (code, _, err) = env.rt(&["kill", "--all", &id, "KILL"]);
    assert_eq!(code, 0, "{err}");
    assert!(common::wait_until(|| env.state(&id)["status"] == "stopped"));
    let (code, _, err) = env.rt(&["delete", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(!dir.exists());
    assert!(pd.is_dir());
}
