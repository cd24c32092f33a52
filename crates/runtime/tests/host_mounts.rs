//! A container without a mount namespace of its own (runtime-tools' linux_ns_itype:
//! no `mount` entry in linux.namespaces, or one whose `path` is the runtime's): it
//! lives in the runtime's mount namespace, as runc's does. Every runtime here runs
//! inside a sandbox mount namespace standing for the host's, so neither runc (which
//! leaves its mounts and makes `/` rslave) nor a bug of ours can change the real
//! host's mounts; killing the sandbox's holder releases all of it.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A mount namespace with private copies of the host's mounts (nothing in it
/// propagates to the host), made rshared inside so propagation is exercised,
/// and a second namespace whose mounts are peers of its (as a service with its
/// own mount namespace would have): what reaches `peer` would reach such a
/// service on a real host.
struct Sandbox {
    holder: Child,
    peer: Child,
}

fn ns_of(pid: u32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

impl Sandbox {
    fn new() -> Sandbox {
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount --make-rshared / && exec sleep 1000")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let hp = holder.id();
        let own = ns_of(std::process::id(), "mnt");
        assert!(
            wait_until(|| std::fs::read_to_string(format!("/proc/{hp}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))),
            "the sandbox holder did not start"
        );
        assert_ne!(ns_of(hp, "mnt"), own);
        let peer = Command::new("nsenter")
            .args(["-t", &hp.to_string(), "-m", "--"])
            .args([
                "unshare",
                "-m",
                "--propagation",
                "unchanged",
                "sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pp = peer.id();
        assert!(
            wait_until(|| std::fs::read_to_string(format!("/proc/{pp}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))),
            "the sandbox peer did not start"
        );
        assert_ne!(ns_of(pp, "mnt"), ns_of(hp, "mnt"));
        Sandbox { holder, peer }
    }
    /// `prog args…` in the sandbox's mount namespace.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "--", prog]);
        c
    }
    fn rt(&self, rt: &Runtime, args: &[&str]) -> (i32, String, String) {
        let mut c = self.cmd(&rt.bin);
        c.arg("--root").arg(&rt.root).args(args);
        capture(c)
    }
    /// Mount points at or below `under` with their filesystem, in order, as a
    /// process sees them. Only there: the rest of a copy of the host's mounts
    /// changes with the host (a directory removed on the host detaches the
    /// mounts on it in every namespace, and other tests' containers come and go).
    fn mounts(pid: u32, under: &str) -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let dash = f.iter().position(|x| *x == "-").unwrap();
                format!("{} {}", f[4], f[dash + 1])
            })
            .filter(|m| m.starts_with(&format!("{under}/")) || m.starts_with(&format!("{under} ")))
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in [&mut self.peer, &mut self.holder] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// runtime-tools' linux_ns_itype bundle: every namespace inherited and no
/// hostname (there is no UTS namespace to set it in); no masked or read-only
/// paths, which runc refuses without a mount namespace.
fn itype_bundle(args: &[&str]) -> (Bundle, String) {
    let mut b = Bundle::new(args);
    let cg = b.own_cgroup("oxcart-test-itype");
    b.config["linux"]["namespaces"] = json!([]);
    let c = b.config.as_object_mut().unwrap();
    c.remove("hostname");
    let l = b.config["linux"].as_object_mut().unwrap();
    l.remove("maskedPaths");
    l.remove("readonlyPaths");
    b.write();
    (b, cg)
}

/// What both runtimes must show for a container in the sandbox's namespaces:
/// the same namespaces as the sandbox, chrooted into the rootfs with the
/// config's mounts inside it.
fn check_container(sb: &Sandbox, rt: &Runtime, id: &str, b: &Bundle) -> u32 {
    let (code, out, err) = sb.rt(rt, &["state", id]);
    assert_eq!(code, 0, "{} state: {err}", rt.bin);
    let st: Value = serde_json::from_str(&out).unwrap();
    let pid = st["pid"].as_u64().unwrap() as u32;
    for ns in ["mnt", "net", "pid", "ipc", "uts", "cgroup"] {
        assert_eq!(
            ns_of(pid, ns),
            ns_of(sb.holder.id(), ns),
            "{}: the container's {ns} namespace is not the runtime's",
            rt.bin
        );
    }
    let mut c = sb.cmd("readlink");
    c.arg(format!("/proc/{pid}/root"));
    let (_, root, _) = capture(c);
    let rootfs = b.config["root"]["path"].as_str().unwrap();
    assert_eq!(root.trim(), rootfs, "{}: the container's root", rt.bin);
    let inside = Path::new("/proc").join(pid.to_string()).join("root");
    assert!(
        inside.join("proc/self/status").exists(),
        "{}: no proc in the container",
        rt.bin
    );
    let null = std::fs::metadata(inside.join("dev/null")).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(null.file_type().is_char_device() && null.rdev() == libc::makedev(1, 3));
    pid
}

#[test]
fn a_container_without_a_mount_namespace_lives_in_the_runtimes_as_in_runc() {
    if skip_in_v2_lane("host_mounts", "needs unshare and nsenter") {
        return;
    }
    let mut rts = vec![Runtime::oxcart()];
    if runc_available() {
        rts.push(Runtime::runc());
    }
    for rt in &rts {
        let sb = Sandbox::new();
        let (b, cg) = itype_bundle(&["sleep", "1000"]);
        let rootfs = b.config["root"]["path"].as_str().unwrap().to_string();
        let (holder0, peer0) = (
            Sandbox::mounts(sb.holder.id(), &rootfs),
            Sandbox::mounts(sb.peer.id(), &rootfs),
        );
        let id = unique("itype");
        let mut c = sb.cmd(&rt.bin);
        c.arg("--root")
            .arg(&rt.root)
            .args(["run", "-d", "--bundle"]);
        c.arg(&b.dir).arg(&id);
        let (ok, err) = status_err(c);
        assert!(ok, "{} run -d: {err}", rt.bin);
        let pid = check_container(&sb, rt, &id, &b);
        if rt.bin == "runc" {
            // runc leaves its mounts in the namespace after delete: the sandbox
            // goes with them.
            assert_eq!(sb.rt(rt, &["delete", "-f", &id]).0, 0);
            continue;
        }
        // The container's mounts are in the sandbox's namespace, under the rootfs,
        // and none reached the peer namespace: at most the rootfs bind itself.
        let during = Sandbox::mounts(sb.holder.id(), &rootfs);
        assert!(
            during.contains(&format!("{rootfs}/proc proc")),
            "no proc under the rootfs: {during:?}"
        );
        let leaked: Vec<_> = Sandbox::mounts(sb.peer.id(), &rootfs)
            .into_iter()
            .filter(|m| !peer0.contains(m) && !m.starts_with(&format!("{rootfs} ")))
            .collect();
        assert!(leaked.is_empty(), "reached the peer namespace: {leaked:?}");
        // exec runs in the container's root and namespaces (runc's exec fails here:
        // "ns paths are empty"; with some namespaces it runs on the host's root).
        let mut c = sb.cmd(&rt.bin);
        c.arg("--root")
            .arg(&rt.root)
            .args(["exec", &id, "sh", "-c"]);
        c.arg("ls /; readlink /proc/self/ns/mnt");
        let (code, out, err) = capture(c);
        assert_eq!(code, 0, "exec: {err}");
        assert!(
            out.lines().any(|l| l == "bin") && !out.lines().any(|l| l == "usr"),
            "exec did not run in the container's root: {out}"
        );
        assert!(out.contains(&ns_of(pid, "mnt")), "{out}");
        let (code, _, err) = sb.rt(rt, &["delete", "-f", &id]);
        assert_eq!(code, 0, "delete: {err}");
        // Nothing of the container is left in either namespace.
        assert_eq!(Sandbox::mounts(sb.holder.id(), &rootfs), holder0);
        assert_eq!(Sandbox::mounts(sb.peer.id(), &rootfs), peer0);
        assert_no_cgroup_left(&cg, "itype delete");
    }
}

/// The other spelling of the same: a mount namespace `path` that is the runtime's
/// own. `--no-pivot`, which would move the rootfs over the runtime's `/`, is
/// refused, and a create that fails in init leaves no mount behind.
#[test]
fn a_mount_namespace_path_of_the_runtimes_own_and_no_pivot() {
    if skip_in_v2_lane("host_mounts", "needs unshare and nsenter") {
        return;
    }
    let rt = Runtime::oxcart();
    let sb = Sandbox::new();
    let (mut b, cg) = itype_bundle(&["sleep", "1000"]);
    let rootfs = b.config["root"]["path"].as_str().unwrap().to_string();
    let holder0 = Sandbox::mounts(sb.holder.id(), &rootfs);
    let id = unique("nopivot");
    let mut c = sb.cmd(&rt.bin);
    c.arg("--root")
        .arg(&rt.root)
        .args(["create", "--no-pivot", "--bundle"]);
    c.arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok, "--no-pivot without a mount namespace was accepted");
    assert!(err.contains("--no-pivot"), "{err}");
    assert_eq!(Sandbox::mounts(sb.holder.id(), &rootfs), holder0);
    assert_no_cgroup_left(&cg, "--no-pivot refused");

    // A create that fails in init after its mounts (no such program) detaches
    // them with everything else it undoes.
    b.config["process"]["args"] = json!(["/no/such/program"]);
    b.write();
    let mut c = sb.cmd(&rt.bin);
    c.arg("--root").arg(&rt.root).args(["create", "--bundle"]);
    c.arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok && err.contains("/no/such/program"), "{err}");
    assert_eq!(Sandbox::mounts(sb.holder.id(), &rootfs), holder0);
    assert_no_cgroup_left(&cg, "failed create");
    b.config["process"]["args"] = json!(["sleep", "1000"]);

    b.config["linux"]["namespaces"] =
        json!([{"type": "mount", "path": format!("/proc/{}/ns/mnt", sb.holder.id())}]);
    b.write();
    let mut c = sb.cmd(&rt.bin);
    c.arg("--root").arg(&rt.root).args(["create", "--bundle"]);
    c.arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(ok, "create: {err}");
    check_container(&sb, &rt, &id, &b);
    assert_eq!(sb.rt(&rt, &["delete", "-f", &id]).0, 0);
    assert_eq!(Sandbox::mounts(sb.holder.id(), &rootfs), holder0);
    assert_no_cgroup_left(&cg, "itype path delete");
}
