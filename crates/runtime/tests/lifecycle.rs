//! Lifecycle and isolation tests on real containers, compared with runc where it
//! makes sense. Run as root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

#[test]
fn run_exit_codes() {
    let rt = Runtime::oxcart();
    for (args, code) in [
        (vec!["true"], 0),
        (vec!["false"], 1),
        (vec!["sh", "-c", "exit 7"], 7),
    ] {
        let b = Bundle::new(&args);
        let (c, _, err) = rt.run_bundle(&b);
        assert_eq!(c, code, "{args:?}: {err}");
    }
    // Nothing is left behind by foreground runs.
    assert!(std::fs::read_dir(&rt.root).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("life");
    let pidfile = b.dir.join("init.pid");
    let (ok, err) = rt.detached(
        &["create", "--pid-file", pidfile.to_str().unwrap()],
        &b,
        &id,
    );
    assert!(ok, "create: {err}");
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], Value::String(id.clone()));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    for key in ["ociVersion", "bundle", "rootfs", "created", "owner"] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    assert_eq!(st["owner"], "root");

    // start twice: the second is refused in runc's words.
    let o = rt.run(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    assert_eq!(rt.state(&id)["status"], "running");
    let o = rt.run(&["start", &id]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot start an already running container"),
        "{}",
        stderr(&o)
    );

    // delete of a running container needs --force.
    let o = rt.run(&["delete", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not stopped"), "{}", stderr(&o));

    let o = rt.run(&["kill", &id, "KILL"]);
    assert!(o.status.success(), "kill: {}", stderr(&o));
    // The kill is asynchronous: wait for the status to settle.
    let mut st = Value::Null;
    wait_until(|| {
        st = rt.state(&id);
        st["status"] == "stopped"
    });
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"], 0, "pid must be 0 once stopped");
    let o = rt.run(&["kill", &id, "TERM"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container not running"),
        "{}",
        stderr(&o)
    );

    let o = rt.run(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!rt.root.join(&id).exists());
    let o = rt.run(&["state", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // delete -f of a missing container succeeds, as in runc.
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn delete_force_and_created_kill() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    // A created container can be deleted without --force (runc kills it).
    let id = unique("cr");
    assert!(rt.detached(&["create"], &b, &id).0);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let o = rt.run(&["delete", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    // A running one goes with -f.
    let id = unique("run");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    assert_eq!(rt.state(&id)["status"], "running");
    let o = rt.run(&["delete", "-f", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!rt.root.join(&id).exists());
}

/// Started with stderr closed, the runtime must not let the next file it opens
/// become its stderr: the log file would then get every error twice (the log line,
/// and the copy written to stderr for conmon, compat.md §6.5). The entry point
/// puts /dev/null there first, as std's runtime set-up would.
#[test]
fn a_closed_stderr_is_never_a_file_the_runtime_opens() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::oxcart();
    let log = tmp().join(unique("closed-stderr.log"));
    let mut c = rt.cmd();
    c.arg("--log")
        .arg(&log)
        .args(["state", "no-such-container"]);
    // SAFETY: close(2) in the forked child before exec.
    unsafe {
        c.pre_exec(|| {
            libc::close(2);
            Ok(())
        });
    }
    let st = c.stdin(std::process::Stdio::null()).status().unwrap();
    assert!(!st.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("does not exist").count(),
        1,
        "the error reached the log other than once: {text}"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn list_formats() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("ls");
    assert!(rt.detached(&["create"], &b, &id).0);
    let o = rt.run(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["id"], Value::String(id.clone()));
    assert_eq!(v[0]["status"], "created");
    let o = rt.run(&["list"]);
    let t = stdout(&o);
    assert!(t.starts_with("ID"), "{t}");
    assert!(t.contains(&id) && t.contains("created"), "{t}");
    let o = rt.run(&["list", "-q"]);
    assert_eq!(stdout(&o).trim(), id);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

/// What a process sees inside the container, as one comparable text.
const PROBE: &str = r#"
echo "id: $(id)"
echo "hostname: $(hostname)"
echo "nofile: $(ulimit -n)"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
echo "pid: $$"
echo "mounts:"
awk '{print $5, $9, $6}' /proc/self/mountinfo | sed -E 's/,?(relatime|seclabel)//g' | sort
echo "cwd: $(pwd)"
ls -l /dev | awk '{print $1, $NF}' | sort
"#;

#[test]
fn differential_against_runc() {
    if !runc_available() {
        panic!("runc is needed for the differential tests (apt-get install runc)");
    }
    let b = Bundle::new(&["sh", "-c", PROBE]);
    let (c1, o1, e1) = Runtime::oxcart().run_bundle(&b);
    let (c2, o2, e2) = Runtime::runc().run_bundle(&b);
    assert_eq!(c1, 0, "oxcart: {e1}");
    assert_eq!(c2, 0, "runc: {e2}");
    // Intentional differences (docs/conformance.md): on a hybrid host we also mount
    // the unified hierarchy at /sys/fs/cgroup/unified; we honour the cgroup mount's
    // "ro" on its v1 tmpfs too, where runc leaves that tmpfs writable; and on v2
    // without a cgroup namespace we bind the container's own cgroup where runc mounts
    // the whole hierarchy, so the mount's source differs; a read-only root keeps the
    // nosuid/nodev of the mount beneath it.
    let norm = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("/sys/fs/cgroup/unified "))
            .map(|l| {
                if l.starts_with("/sys/fs/cgroup ") {
                    "/sys/fs/cgroup".to_string()
                } else if let Some(rest) = l.strip_prefix("/ ") {
                    // root.readonly: we keep the nosuid/nodev of the mount under the
                    // rootfs, runc 1.1 drops them when it can. Compare ro/rw only.
                    let mut f = rest.split_whitespace();
                    let fs = f.next().unwrap_or("");
                    let opts = f.next().unwrap_or("").split(',').next().unwrap_or("");
                    format!("/ {fs} {opts}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        norm(&o1),
        norm(&o2),
        "oxcart and runc containers differ:\n--- oxcart\n{o1}\n--- runc\n{o2}"
    );
}

#[test]
fn namespaces_differ_from_host() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done",
    ]);
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let host: Vec<String> = ["ipc", "mnt", "net", "pid", "uts"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/self/ns/{n}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), 5, "{out}");
    for (h, i) in host.iter().zip(inside) {
        assert_ne!(h, i, "namespace shared with host: {i}");
    }
}

/// The container's network namespace is made by the parent after the clone and
/// entered by init (oxcart_container::namespaces::new_net_ns); everything that
/// depends on it must see the container's, not the host's: the sysfs mount (its
/// view of network devices is fixed when it is mounted), /proc/net, a net.*
/// sysctl, which must not touch the host's value, and `lo`, which is up.
#[test]
fn everything_network_is_the_containers_namespace() {
    let key = "/proc/sys/net/ipv4/tcp_keepalive_time";
    let host_before = std::fs::read_to_string(key).unwrap();
    assert_ne!(
        host_before.trim(),
        "1234",
        "pick another value for this host"
    );
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "ls /sys/class/net; echo ---; tail -n +3 /proc/net/dev | cut -d: -f1; echo ---; \
         cat /sys/class/net/lo/flags /proc/sys/net/ipv4/tcp_keepalive_time",
    ]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.tcp_keepalive_time": "1234"});
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let parts: Vec<Vec<&str>> = out
        .split("---")
        .map(|p| p.split_whitespace().collect())
        .collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert_eq!(parts[0], ["lo"], "sysfs shows the host's devices: {out}");
    assert_eq!(
        parts[1],
        ["lo"],
        "/proc/net shows the host's devices: {out}"
    );
    // IFF_UP | IFF_LOOPBACK (| IFF_RUNNING is not in `flags`), then the sysctl.
    assert_eq!(parts[2], ["0x9", "1234"], "{out}");
    assert_eq!(
        std::fs::read_to_string(key).unwrap(),
        host_before,
        "the host's sysctl changed"
    );
}

#[test]
fn process_settings() {
    let mut b = Bundle::new(&["sh", "-c", "id -u; id -g; id -G; umask; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; pwd; echo $FOO"]);
    b.config["process"]["user"] =
        json!({"uid": 65534, "gid": 65534, "additionalGids": [5, 65534], "umask": 18});
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec!["65534", "65534", "65534 5", "0022", "321", "654", "123", "/tmp", "bar baz"],
        "{out}"
    );
}

#[test]
fn hostname_domainname_sysctl_masked_readonly() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/kernel/shmmni; cat /proc/kcore | wc -c; echo x > /proc/sys/kernel/shmmax 2>/dev/null && echo writable || echo readonly",
    ]);
    b.config["hostname"] = json!("box1");
    b.config["domainname"] = json!("example.org");
    b.config["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec!["box1", "example.org", "1234", "0", "readonly"],
        "{out}"
    );
}

#[test]
fn mount_destination_symlink_stays_in_rootfs() {
    // The image plants /evil -> a host directory; a tmpfs mounted at /evil must land
    // inside the rootfs, never on the host path (CVE-2021-30465 class).
    let host_dir = tmp().join(unique("oxcart-host-target"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("canary"), "host").unwrap();
    let rootfs = tmp().join(unique("oxcart-evil-rootfs"));
    copy_rootfs(rootfs_src(), &rootfs);
    std::os::unix::fs::symlink(&host_dir, rootfs.join("evil")).unwrap();
    let mut b = Bundle::new(&["sh", "-c", "ls /evil; echo inside > /evil/new"]);
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.config["root"]["readonly"] = json!(false);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    assert!(!out.contains("canary"), "the host dir was visible: {out}");
    assert!(
        !host_dir.join("new").exists(),
        "container wrote into the host directory"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("canary")).unwrap(),
        "host"
    );
    let _ = std::fs::remove_dir_all(&host_dir);
    let _ = std::fs::remove_dir_all(&rootfs);
}

fn rootfs_src() -> &'static Path {
    rootfs()
}

fn copy_rootfs(src: &Path, dst: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn bind_mounts_with_options() {
    let host_dir = tmp().join(unique("oxcart-bind"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "data\n").unwrap();
    let mut b = Bundle::new(&["sh", "-c", "cat /data/f; echo y > /data/g 2>/dev/null && echo rw || echo ro; grep ' /data ' /proc/self/mountinfo | awk '{print $6}'"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": host_dir.display().to_string(),
        "options": ["rbind", "ro", "nosuid", "nodev"]
    }));
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "data");
    assert_eq!(lines[1], "ro");
    assert!(
        lines[2].contains("ro") && lines[2].contains("nosuid") && lines[2].contains("nodev"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&host_dir);
}

#[test]
fn cgroups_created_and_removed() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    let cg = b.own_cgroup("oxcart-test-cg");
    b.write();
    let id = unique("cg");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let mut dirs = Vec::new();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // Pure cgroup v2: one hierarchy.
        dirs.push(std::path::Path::new("/sys/fs/cgroup").join(cg.trim_start_matches('/')));
    } else {
        for ent in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = ent.path();
            if p.join("cgroup.procs").exists() {
                dirs.push(p.join(cg.trim_start_matches('/')));
            }
        }
        assert!(dirs.len() >= 2);
    }
    for d in &dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{} lacks init {pid}",
            d.display()
        );
    }
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn bad_input_is_reported_and_leaves_nothing() {
    let rt = Runtime::oxcart();
    let check = |args: &[&str], bundle: Option<&Path>, want: &str| {
        let mut c = rt.cmd();
        c.args(args);
        if let Some(b) = bundle {
            c.arg("--bundle").arg(b);
        }
        let id = unique("bad");
        c.arg(&id);
        let (ok, err) = status_err(c);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
        assert!(
            !rt.root.join(&id).exists(),
            "state dir left behind for {args:?}"
        );
    };
    check(
        &["create"],
        Some(Path::new("/nonexistent-bundle")),
        "no such file or directory",
    );
    let mut b = Bundle::new(&["true"]);
    std::fs::write(
        b.dir.join("config.json"),
        r#"{"ociVersion":"1.0.0","process":{"user":{"uid":"zero"}}}"#,
    )
    .unwrap();
    check(&["create"], Some(&b.dir), "process.user.uid");
    b.config["ociVersion"] = json!("2.0.0");
    b.write();
    check(&["create"], Some(&b.dir), "ociVersion");
    b.config["ociVersion"] = json!("1.0.2");
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_NOPE"]);
    b.write();
    check(&["create"], Some(&b.dir), "CAP_NOPE");
    b.config["process"]["capabilities"]["bounding"] = json!([]);
    b.config["process"]["args"] = json!(["/no/such/binary"]);
    b.write();
    check(&["create"], Some(&b.dir), "no such file or directory");
    b.config["process"]["args"] = json!(["nosuchcmd"]);
    b.write();
    check(
        &["create"],
        Some(&b.dir),
        "executable file not found in $PATH",
    );

    for id in ["", "a/b", "..", "x y"] {
        let mut c = rt.cmd();
        c.args(["create", "--bundle"]).arg(&b.dir).arg(id);
        assert!(!status_err(c).0, "id {id:?} accepted");
    }
    // An id in use.
    b.config["process"]["args"] = json!(["sleep", "100"]);
    b.write();
    let id = unique("dup");
    assert!(rt.detached(&["create"], &b, &id).0);
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    // Errors in JSON log format.
    let log = b.dir.join("log.json");
    let o = rt
        .cmd()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "start", "no-such-container"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let line = std::fs::read_to_string(&log).unwrap();
    let v: Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn go_style_flags_and_version() {
    let o = std::process::Command::new(oxcart())
        .arg("--version")
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("runc version "));
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["true"]);
    let id = unique("go");
    let o = rt
        .cmd()
        .args([
            "--rootless=false",
            "--systemd-cgroup=false",
            "run",
            "-bundle",
        ])
        .arg(&b.dir)
        .args(["-no-subreaper", "--keep=false", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn preserve_fds_pass_through() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::oxcart();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3",
    ]);
    let f = tmp().join(unique("fd3"));
    std::fs::write(&f, "through-fd-3").unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut c = rt.cmd();
    c.args(["run", "--preserve-fds", "1", "-b"])
        .arg(&b.dir)
        .arg(unique("pf"));
    // SAFETY: dup2 in the child before exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2(3, 3) would keep CLOEXEC: clear it explicitly.
            libc::fcntl(3, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.starts_with("0 1 2 3 "), "only 0-3 expected: {s}");
    assert!(s.ends_with("through-fd-3"), "{s}");
    let _ = std::fs::remove_file(&f);
}

#[test]
fn user_namespace_mappings() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    ]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        vec!["0", "100000", "65536", "0", "100000", "65536", "0"],
        "{out}"
    );
}

#[test]
fn join_namespace_by_path_and_time_offsets() {
    // Keep a container running, then run a second one that joins its uts and net
    // namespaces by path.
    let rt = Runtime::oxcart();
    let mut b1 = Bundle::new(&["sleep", "1000"]);
    b1.config["hostname"] = json!("shared-uts");
    b1.write();
    let id = unique("host");
    let (ok, err) = rt.detached(&["run", "-d"], &b1, &id);
    assert!(ok, "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let mut b2 = Bundle::new(&["sh", "-c", "hostname; cat /proc/uptime | cut -d. -f1"]);
    b2.config["hostname"] = Value::Null;
    let ns = b2.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "uts" {
            n["path"] = json!(format!("/proc/{pid}/ns/uts"));
        }
    }
    ns.push(json!({"type": "time"}));
    b2.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    b2.write();
    let (c, out, err) = rt.run_bundle(&b2);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "shared-uts");
    let up: u64 = lines[1].parse().unwrap();
    assert!(up >= 86_400_000, "boottime offset not applied: {up}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn seccomp_profiles_match_runc() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1 | sed 's/.*: //'; echo done",
    ]);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    b.write();
    let (c1, o1, e1) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c1, 0, "{e1}");
    assert_eq!(o1, "Seccomp:\t2\nPermission denied\ndone\n");
    let (c2, o2, e2) = Runtime::runc().run_bundle(&b);
    assert_eq!(c2, 0, "{e2}");
    assert_eq!(o1, o2);

    // podman's default profile (Debian containers-common): a normal workload runs,
    // with the filter in place, under both runtimes.
    let profile: Value =
        serde_json::from_slice(&std::fs::read("/usr/share/containers/seccomp.json").unwrap())
            .unwrap();
    b.config["linux"]["seccomp"] = profile;
    // `ls /bin`, not `ls /`: the shared rootfs gains mount points (/data, /out…)
    // as concurrent tests' runtimes create them, so its top level may differ
    // between the two runs; /bin (busybox's applets) is never mounted over.
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; ls /bin | wc -l; unshare -U true 2>&1 | sed 's/.*: //'"
    ]);
    b.write();
    let (c1, o1, e1) = Runtime::oxcart().run_bundle(&b);
    let (c2, o2, e2) = Runtime::runc().run_bundle(&b);
    assert_eq!(c1, c2, "{e1} / {e2}");
    assert_eq!(o1, o2);
    assert!(o1.starts_with("Seccomp:\t2\n"), "{o1}");
}

#[test]
fn bad_seccomp_profile_names_the_entry() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]
    });
    b.write();
    let id = unique("sc");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok);
    assert!(err.contains("linux.seccomp.syscalls[0].action"), "{err}");
    assert!(!rt.root.join(&id).exists());
}

#[test]
fn failed_create_leaves_no_cgroup_or_process() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["/no/such/program"]);
    let cg = b.own_cgroup("oxcart-test-fail");
    b.write();
    let id = unique("fail");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok);
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(!rt.root.join(&id).exists());
    assert_no_cgroup_left(&cg, "create");
}

#[test]
fn state_json_shape_matches_runc() {
    let b = Bundle::new(&["sleep", "1000"]);
    let mut shapes = Vec::new();
    for rt in [Runtime::oxcart(), Runtime::runc()] {
        let id = unique("shape");
        let (ok, err) = rt.detached(&["create"], &b, &id);
        assert!(ok, "{}: {err}", rt.bin);
        let created = rt.state(&id);
        assert!(rt.run(&["start", &id]).status.success());
        let running = rt.state(&id);
        assert!(rt.run(&["kill", &id, "9"]).status.success());
        let mut stopped = Value::Null;
        wait_until(|| {
            stopped = rt.state(&id);
            stopped["status"] == "stopped"
        });
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        shapes.push((
            keys(&created),
            [
                created["status"].clone(),
                running["status"].clone(),
                stopped["status"].clone(),
            ],
            stopped["pid"].clone(),
            // Exit codes of the error paths.
            rt.run(&["kill", &id, "9"]).status.code(),
            rt.run(&["start", &id]).status.code(),
        ));
        assert!(rt.run(&["delete", &id]).status.success());
        assert_eq!(rt.run(&["state", &id]).status.code(), Some(1));
    }
    assert_eq!(shapes[0], shapes[1], "oxcart vs runc");
}

#[test]
fn devices_recursive_ro_tmpcopyup_and_no_pivot() {
    let host_dir = tmp().join(unique("rro"));
    std::fs::create_dir_all(host_dir.join("sub")).unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "ls -ln /dev/mydev | awk '{print $1, $3, $4, $5, $6}'; \
         touch /data/x 2>/dev/null && echo rw || echo ro; \
         ls /etc-copy | sort | tr '\\n' ' '; echo; \
         touch /etc-copy/new && echo tmpfs-rw",
    ]);
    b.config["linux"]["devices"] = json!([{
        "path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8
    }]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host_dir.display().to_string(), "options": ["rbind", "rro"]}));
    mounts.push(json!({"destination": "/etc-copy", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    b.write();
    // tmpcopyup copies what the image had at the destination.
    let rootfs = tmp().join(unique("tcu-rootfs"));
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs_src())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(rootfs.join("etc-copy")).unwrap();
    std::fs::write(rootfs.join("etc-copy/a"), "1").unwrap();
    std::fs::write(rootfs.join("etc-copy/b"), "2").unwrap();
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.write();
    for no_pivot in [false, true] {
        let rt = Runtime::oxcart();
        let id = unique("dev");
        let mut c = rt.cmd();
        c.arg("run");
        if no_pivot {
            c.arg("--no-pivot");
        }
        c.arg("--bundle")
            .arg(&b.dir)
            .arg(&id)
            .stdin(std::process::Stdio::null());
        let o = c.output().unwrap();
        assert!(o.status.success(), "no_pivot={no_pivot}: {}", stderr(&o));
        let lines: Vec<String> = stdout(&o).lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(
            lines,
            vec!["crw-r----- 7 8 1, 3", "ro", "a b", "tmpfs-rw"],
            "no_pivot={no_pivot}"
        );
    }
    assert!(
        !rootfs.join("etc-copy/new").exists(),
        "tmpfs write reached the image"
    );
    let _ = std::fs::remove_dir_all(&rootfs);
    let _ = std::fs::remove_dir_all(&host_dir);
}

#[test]
fn listen_fds_are_passed_with_their_count() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::oxcart();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let f = std::fs::File::open("/dev/null").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    // systemd sets LISTEN_PID to the pid it execs: let a shell do that, then exec us.
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        "LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" \"$@\"",
        oxcart(),
        "--root",
    ])
    .arg(&rt.root)
    .args(["run", "-b"])
    .arg(&b.dir)
    .arg(unique("lfd"))
    .stdin(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::fcntl(3, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let mut lines = s.lines();
    let first: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(first[0], "1", "{s}");
    assert!(first[1].parse::<u32>().is_ok(), "LISTEN_PID set: {s}");
    assert!(lines.next().unwrap().starts_with("0 1 2 3 "), "{s}");
}

#[test]
fn created_init_does_not_expose_the_runtime_binary() {
    // CVE-2019-5736: before `start`, init is still a copy of oxcart-runtime. A process
    // in the container must not be able to open /proc/1/exe (the host binary).
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("cve");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "{err}");
    let (code, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo readable || echo denied",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "denied");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn notify_socket_ready_is_forwarded_with_mainpid() {
    // A static sd_notify client inside the container (busybox has none). Built once
    // into target/tmp, where the v2 lane finds it too (scripts/test.sh copies it in).
    let bin = tmp().join("sdnotify");
    if !bin.exists() {
        let part = tmp().join(unique("sdnotify.part"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdnotify.c");
        let st = std::process::Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&part)
            .arg(&src)
            .status()
            .expect("gcc is needed (build-essential)");
        assert!(st.success());
        std::fs::rename(&part, &bin).unwrap();
    }
    let rootfs = tmp().join(unique("notify-rootfs"));
    copy_rootfs(rootfs_src(), &rootfs);
    std::fs::copy(&bin, rootfs.join("sdnotify")).unwrap();
    let mut b = Bundle::new(&["/sdnotify"]);
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.write();

    let host = tmp().join(unique("notify.sock"));
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let rt = Runtime::oxcart();
    let id = unique("notify");
    let mut c = rt.cmd();
    c.env("NOTIFY_SOCKET", &host)
        .args(["run", "-d", "--bundle"])
        .arg(&b.dir)
        .arg(&id);
    let (ok, err) = status_err(c);
    assert!(ok, "{err}");
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("no READY forwarded within 30 s");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(msg, format!("READY=1\nMAINPID={pid}\n"));
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    let _ = std::fs::remove_file(&host);
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn lsm_settings_the_host_cannot_apply_are_errors() {
    // This host has no SELinux: asking for a label must fail, as in runc, never give
    // an unconfined container. AppArmor's cases (no AppArmor; a profile that is not
    // loaded) are in tests/apparmor.rs, beside the checks that profiles are applied.
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    b.write();
    let id = unique("lsm");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        assert!(!ok, "selinuxLabel accepted on a host without SELinux");
        assert!(err.contains("process.selinuxLabel"), "{err}");
        assert!(!rt.root.join(&id).exists());
    } else {
        let _ = rt.run(&["delete", "-f", &id]);
    }
}

#[test]
fn no_host_fd_leaks_into_the_container() {
    // CVE-2024-21626 class: the runtime inherits an fd the caller forgot to close
    // (not close-on-exec, not passed with --preserve-fds): the container must not get it.
    use std::os::unix::process::CommandExt;
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    let f = std::fs::File::open("/dev/null").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    let mut c = rt.cmd();
    c.args(["run", "-b"])
        .arg(&b.dir)
        .arg(unique("leak"))
        .stdin(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for target in [5, 9] {
                if libc::dup2(raw, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::fcntl(target, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // ls's own directory fd is 3.
    assert_eq!(
        stdout(&o).trim(),
        "0 1 2 3",
        "host fds reached the container"
    );
}

#[test]
fn image_planting_proc_as_a_symlink_cannot_reach_the_host() {
    // The image makes /proc a symlink to a host path: the proc mount must land inside
    // the rootfs (at the link's target resolved in the rootfs), never on the host.
    let host_dir = tmp().join(unique("host-proc-target"));
    std::fs::create_dir_all(&host_dir).unwrap();
    let rootfs = tmp().join(unique("proc-link-rootfs"));
    copy_rootfs(rootfs_src(), &rootfs);
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::os::unix::fs::symlink(&host_dir, rootfs.join("proc")).unwrap();
    let mut b = Bundle::new(&["sh", "-c", "cat /proc/self/comm"]);
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let (c, out, err) = Runtime::oxcart().run_bundle(&b);
    assert_eq!(c, 0, "{err}");
    assert_eq!(out.trim(), "cat", "procfs works inside the container");
    // Nothing was mounted on or written to the host path.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&host_dir.display().to_string()),
        "mounted on the host path"
    );
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&host_dir);
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// CVE-2019-5736 proper: a program in the image whose interpreter is
/// `/proc/self/exe` makes the kernel run the *runtime's* binary inside the
/// container when a runtime process execve()s it (binfmt_script resolves the
/// interpreter as the exec'ing process: init at `start`, the child of `exec`).
/// That process is dumpable, so the container can open its /proc/<pid>/exe and,
/// once it exits, write through that handle. The binary it reaches must be a
/// sealed copy, never the host's file.
#[test]
fn a_shebang_to_proc_self_exe_never_reaches_the_host_binary() {
    let rootfs = tmp().join(unique("cve-rootfs"));
    copy_rootfs(rootfs_src(), &rootfs);
    // A dynamic runtime binary (the debug build) needs its loader and libraries in
    // the image, or the kernel's exec of it fails (ENOENT) before the attack can
    // begin; the static release build needs nothing.
    if !is_static(oxcart()) {
        copy_libs_of(oxcart(), &rootfs);
    }
    // `--log=/f`: the runtime opens its log first, and /f is a FIFO nobody opens
    // for reading, so the runtime's binary stays blocked in open(2), alive in the
    // container, for as long as the probe needs.
    let evil = rootfs.join("evil");
    std::fs::write(&evil, "#!/proc/self/exe --log=/f\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = std::ffi::CString::new(rootfs.join("f").to_str().unwrap()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(f.as_ptr(), 0o600) }, 0);
    // Finds the process running the runtime's binary (its argv has the shebang's
    // argument; the pattern is split so the probe's own argv does not match), then
    // does what an attacker would: open its exe, and (with $1 = kill, for a
    // process it can kill) wait for it to exit, which lifts ETXTBSY, and open that
    // handle for writing. Nothing is written unless the file is a memfd: were it
    // the host's binary, writing would damage the binary under test, and opening
    // it for writing at all is the failure.
    let probe = r#"pat="--lo""g=/f"; n=0; pid=
        while [ -z "$pid" ]; do
            for p in /proc/[0-9]*; do
                if tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- "$pat"; then pid=${p#/proc/}; fi
            done
            n=$((n+1)); [ $n -gt 300 ] && { echo timeout; exit 2; }; [ -z "$pid" ] && sleep 0.05
        done
        t=$(readlink /proc/$pid/exe); echo "exe=$t"
        exec 4</proc/$pid/exe || { echo unreadable; exit 0; }
        if [ "$1" = kill ]; then
            kill -9 $pid; n=0
            while [ -e /proc/$pid ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
        fi
        if (exec 5>>/proc/self/fd/4) 2>/dev/null; then
            case "$t" in
                /memfd:*) if (printf x >>/proc/self/fd/4) 2>/dev/null; then echo written; else echo write-denied; fi ;;
                *) echo host-binary-writable ;;
            esac
        else
            echo write-denied
        fi"#;
    let rt = Runtime::oxcart();
    let check = |out: &str, what: &str| {
        // The host's file, reached by path: the protection failed even where
        // ETXTBSY (a live process) keeps the write open from succeeding.
        assert!(
            !out.contains(&format!("exe={}\n", oxcart())),
            "{what}: the container reached the host's runtime binary: {out}"
        );
        assert!(
            !out.contains("host-binary-writable") && !out.contains("written"),
            "{what}: the container could write the runtime binary: {out}"
        );
        assert!(
            out.contains("write-denied") || out.contains("unreadable"),
            "{what}: {out}"
        );
    };
    // 1. init: the container's own program is the shebang.
    let mut b = Bundle::new(&["/evil"]);
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let id = unique("cve-init");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    let (code, out, err) = rt.exec(&[&id, "sh", "-c", probe, "probe", "keep"]);
    assert_eq!(code, 0, "{out} {err}");
    check(&out, "init");
    assert!(rt.run(&["delete", "-f", &id]).status.success());

    // 2. exec: a process exec'd into a running container is the shebang.
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["root"]["path"] = json!(rootfs.display().to_string());
    b.write();
    let id = unique("cve-exec");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    let mut c = rt.cmd();
    c.args(["exec", "-d", &id, "/evil"]);
    let (ok, err) = status_err(c);
    assert!(ok, "{err}");
    let (code, out, err) = rt.exec(&[&id, "sh", "-c", probe, "probe", "kill"]);
    assert_eq!(code, 0, "{out} {err}");
    check(&out, "exec");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    let _ = std::fs::remove_dir_all(&rootfs);
}

/// Copy the shared libraries and dynamic loader of `bin` into `rootfs` at their
/// host paths, so the binary can run inside a container made of it (a real image
/// has them; the busybox test rootfs does not). The loader lists them itself
/// (`ld.so --list`, what ldd(1) runs).
/// No PT_INTERP program header: the kernel runs it without a dynamic loader.
fn is_static(bin: &str) -> bool {
    let elf = std::fs::read(bin).unwrap();
    // ELF64 little endian: e_phoff at 32, e_phentsize at 54, e_phnum at 56.
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (size, n) = (u16_at(54), u16_at(56));
    // PT_INTERP = 3.
    !(0..n).any(|i| u32::from_le_bytes(elf[phoff + i * size..][..4].try_into().unwrap()) == 3)
}

fn copy_libs_of(bin: &str, rootfs: &Path) {
    let ld = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("no dynamic loader found");
    let out = std::process::Command::new(ld)
        .arg("--list")
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{ld} --list {bin}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut paths = vec![ld.to_string()];
    for l in text.lines() {
        let p = match l.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => l.split_whitespace().next(),
        };
        if let Some(p) = p.filter(|p| p.starts_with('/')) {
            paths.push(p.to_string());
        }
    }
    for p in paths {
        let dst = rootfs.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&p, &dst).unwrap_or_else(|e| panic!("copy {p}: {e}"));
    }
}

/// With CAP_SYS_PTRACE a container process may open /proc/<pid>/exe even of a
/// non-dumpable process: a created init must therefore run from a read-only view
/// or a sealed copy of the binary, never the host's writable file.
#[test]
fn created_init_with_cap_sys_ptrace_runs_from_a_protected_binary() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_PTRACE"));
    }
    b.write();
    let id = unique("ptrace");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "{err}");
    let (code, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        "t=$(readlink /proc/1/exe); echo \"$t\"; exec 4</proc/1/exe || exit 0; \
         case \"$t\" in /memfd:*) (printf x >>/proc/self/fd/4) 2>/dev/null && echo written;; esac; true",
    ]);
    assert_eq!(code, 0, "{err}");
    // Not the host's file: the read-only view reads as "/" (its mount is in no
    // namespace), a sealed copy as "/memfd:…".
    assert!(!out.starts_with(oxcart()), "{out}");
    assert!(!out.contains("written"), "{out}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

/// Make `c` run under a seccomp filter that fails prctl(PR_SET_MM, PR_SET_MM_MAP)
/// with EPERM, as a host could: the call that switches a process to the read-only
/// view of the runtime binary in place (oxcart_container::selfexe). Everything
/// else, PR_SET_MM_MAP_SIZE included, is allowed, so the runtime's own checks
/// still expect the switch to work.
fn deny_set_mm_map(c: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    let (ld, jeq, ret) = (0x20u16, 0x15u16, 0x06u16); // BPF_LD|W|ABS, JMP|JEQ|K, RET|K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16, args[1] at 24.
    let prog = vec![
        op(ld, 0, 0, 4),
        op(jeq, 1, 0, ARCH),
        op(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
        op(ld, 0, 0, 0),
        op(jeq, 0, 5, libc::SYS_prctl as u32),
        op(ld, 0, 0, 16),
        op(jeq, 0, 3, libc::PR_SET_MM as u32),
        op(ld, 0, 0, 24),
        op(jeq, 0, 1, libc::PR_SET_MM_MAP as u32),
        op(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: the closure runs in the forked child and makes one prctl on a
    // program that lives as long as `c` (moved in).
    unsafe {
        c.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Where init cannot switch itself to the read-only view (here a seccomp filter
/// fails the prctl, after the parent's checks said it would work), `create` undoes
/// the attempt and runs again from a protected binary: the container is made, and
/// init runs from a read-only file. With a pidfd socket, whose peer would not take
/// a second connection, it fails instead, naming the protection, and leaves
/// nothing behind. `exec`, which switches in its own process, re-executes too.
#[test]
fn an_init_that_cannot_switch_to_the_read_only_view_never_runs_the_container() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    let cg = b.own_cgroup("oxcart-test-seal");
    b.write();
    let id = unique("seal");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    deny_set_mm_map(&mut c);
    let (ok, err) = status_err(c);
    assert!(ok, "{err}");
    let pid = rt.init_pid(&id);
    let exe = format!("/proc/{pid}/exe");
    assert_ne!(
        std::fs::read_link(&exe).unwrap().to_string_lossy(),
        oxcart(),
        "init runs from the host's binary"
    );
    let cexe = std::ffi::CString::new(exe).unwrap();
    // SAFETY: statvfs fills the zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    assert_eq!(unsafe { libc::statvfs(cexe.as_ptr(), &mut st) }, 0);
    assert_ne!(st.f_flag & libc::ST_RDONLY, 0, "init's binary is writable");

    let mut c = rt.cmd();
    c.args(["exec", &id, "true"]);
    deny_set_mm_map(&mut c);
    let (ok, err) = status_err(c);
    assert!(ok, "exec: {err}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());

    let sock = tmp().join(unique("pidfd.sock"));
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = unique("seal-sock");
    let mut c = rt.cmd();
    c.args(["create", "--pidfd-socket"])
        .arg(&sock)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&id);
    deny_set_mm_map(&mut c);
    let (ok, err) = status_err(c);
    assert!(!ok, "create with a pidfd socket succeeded");
    assert!(err.contains("CVE-2019-5736 protection"), "{err}");
    assert!(!rt.root.join(&id).exists());
    assert_no_cgroup_left(&cg, "failed switch");
    let _ = std::fs::remove_file(&sock);
}

/// A binary installed on a read-only mount needs no copy: the runtime runs from
/// it as it is (oxcart_container::selfexe), and init's exe is that file.
#[test]
fn a_binary_on_a_read_only_mount_is_used_without_a_copy() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let ro = tmp().join(unique("ro-bin"));
    std::fs::write(&ro, b"").unwrap();
    let id = unique("robin");
    // In a private mount namespace, so the host's mounts are never touched.
    let script = format!(
        "mount --bind {bin} {ro} && mount -o remount,bind,ro {ro} && {ro} --root {root} create --bundle {b} {id}",
        bin = rt.bin,
        ro = ro.display(),
        root = rt.root.display(),
        b = b.dir.display(),
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let (ok, err) = status_err(c);
    assert!(ok, "{err}");
    let pid = rt.init_pid(&id);
    // The bind mount lives in the other namespace (its path reads as "/" from
    // here), so compare the file itself.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        !exe.to_string_lossy().starts_with("/memfd:"),
        "copied: {exe:?}"
    );
    let (a, b) = (
        std::fs::metadata(format!("/proc/{pid}/exe")).unwrap(),
        std::fs::metadata(&rt.bin).unwrap(),
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (a.dev(), a.ino()),
        (b.dev(), b.ino()),
        "init does not run from the binary"
    );
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    let _ = std::fs::remove_file(&ro);
}
