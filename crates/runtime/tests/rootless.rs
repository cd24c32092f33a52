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
        std::fs::copy(common::OXCART, dir.join("oxcart-runtime")).unwrap();
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
    let (code, _, err) = env.rt(&["run", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("linux.resources.pids"), "{err}");
    assert!(!env.xdg().join("oxcart").join(&id).exists());
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
    let (code, _, err) = env.rt(&["run", &id]);
    assert_ne!(code, 0);
    assert!(
        err.contains("linux.namespaces") && err.contains("user namespace"),
        "{err}"
    );
    assert!(!env.xdg().join("oxcart").join(&id).exists());
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
    let (code, _, err) = env.rt(&["run", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("gid=5") && err.contains("mounts["), "{err}");
    assert!(!env.xdg().join("oxcart").join(&id).exists());
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
    let (code, _, err) = env.rt(&["run", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("process.user.additionalGids"), "{err}");
    assert!(!env.xdg().join("oxcart").join(&id).exists());
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
