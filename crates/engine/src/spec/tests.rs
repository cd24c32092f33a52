//! `build` on a real busybox rootfs, and the specs it builds run by runc.

use super::*;
use crate::types::{Config, HostConfig};
use std::os::unix::fs::symlink;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A busybox rootfs with users alice (1000, in users and wheel) and bob (1001:100),
/// and a container directory with the three `/etc` files.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rootfs");
        for d in [
            "bin",
            "etc",
            "tmp",
            "root",
            "home/alice",
            "proc",
            "dev",
            "sys",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        for app in ["sh", "id", "cat", "grep", "touch", "ls", "true"] {
            symlink("busybox", root.join("bin").join(app)).expect("symlink");
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:100:Bob:/home/bob:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nusers:x:100:alice\nalice:x:1000:\nwheel:x:10:alice,bob\n",
        )
        .expect("group");
        let ctr = dir.path().join("ctr");
        std::fs::create_dir(&ctr).expect("mkdir");
        std::fs::write(ctr.join("hostname"), "box\n").expect("hostname");
        std::fs::write(ctr.join("hosts"), "127.0.0.1 localhost box\n").expect("hosts");
        std::fs::write(ctr.join("resolv.conf"), "nameserver 127.0.0.1\n").expect("resolv");
        Fixture { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn build(&self, config: &Config, hc: &HostConfig) -> Result<Spec, SpecError> {
        let rootfs = self.rootfs();
        let ctr = self.dir.path().join("ctr");
        build(&SpecInput {
            id: "0123456789abcdef0123",
            config,
            host_config: hc,
            rootfs: &rootfs,
            container_dir: &ctr,
            cgroups_path: "/oxcart-spec-unit",
            network: NetNs::New,
            seccomp_profile: None,
            init_path: None,
        })
    }

    /// Run the spec with runc (its own state root and cgroup) and return stdout.
    fn run(&self, mut spec: Spec) -> (bool, String, String) {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("oxcart-spec-{}-{n}", std::process::id());
        let linux = spec.linux.as_mut().expect("linux");
        linux.cgroups_path = Some(format!("/{id}"));
        let bundle = self.dir.path().join(format!("bundle-{n}"));
        std::fs::create_dir(&bundle).expect("bundle");
        let json = serde_json::to_vec_pretty(&spec).expect("json");
        std::fs::write(bundle.join("config.json"), json).expect("config.json");
        let state = self.dir.path().join("runc-state");
        let out = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runc");
        // runc run deletes the container when it exits; make sure of it on failure.
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(["delete", "-f", &id])
            .output();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn cmd(args: &[&str]) -> Config {
    Config {
        cmd: Some(args.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn docker_defaults() {
    let f = Fixture::new();
    let s = f
        .build(&cmd(&["sh"]), &HostConfig::default())
        .expect("spec");
    let p = s.process.as_ref().expect("process");
    let caps = p.capabilities.as_ref().expect("caps");
    assert_eq!(
        caps.bounding.as_deref(),
        Some(&strings(DEFAULT_CAPABILITIES)[..])
    );
    assert_eq!(caps.inheritable, None);
    assert_eq!(
        p.env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=0123456789ab",
            "HOME=/root"
        ]
    );
    assert_eq!((p.cwd.as_str(), p.user.uid, p.user.gid), ("/", 0, 0));
    assert!(p.rlimits.is_empty() && !p.no_new_privileges && p.oom_score_adj.is_none());
    assert_eq!(s.hostname.as_deref(), Some("0123456789ab"));
    let dsts: Vec<_> = s.mounts.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(
        dsts,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf"
        ]
    );
    let shm = &s.mounts[6];
    assert!(
        shm.options.contains(&"size=67108864".to_string()),
        "{shm:?}"
    );
    let linux = s.linux.as_ref().expect("linux");
    assert_eq!(linux.masked_paths, strings(MASKED_PATHS));
    assert_eq!(linux.readonly_paths, strings(READONLY_PATHS));
    let ns: Vec<_> = linux.namespaces.iter().map(|n| n.typ.as_str()).collect();
    assert!(
        ns.starts_with(&["mount", "network", "uts", "pid", "ipc"]),
        "{ns:?}"
    );
    let sc = linux.seccomp.as_ref().expect("seccomp");
    assert_eq!(sc.default_action, "SCMP_ACT_ERRNO");
    assert!(sc
        .syscalls
        .iter()
        .any(|c| c.names.iter().any(|n| n == "read")));
    // Without CAP_SYS_ADMIN, bpf is refused by an explicit rule (the profile's excludes).
    assert!(sc
        .syscalls
        .iter()
        .any(|c| c.action == "SCMP_ACT_ERRNO" && c.names.iter().any(|n| n == "bpf")));
    let devs = &linux.resources.as_ref().expect("res").devices;
    assert_eq!(devs.len(), 8);
    assert_eq!(linux.sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    assert_eq!(s.root.as_ref().map(|r| r.readonly), Some(false));
}

#[test]
fn users_groups_and_errors() {
    let f = Fixture::new();
    let user = |u: &str, add: &[&str]| {
        let hc = HostConfig {
            group_add: (!add.is_empty()).then(|| strings(add)),
            ..Default::default()
        };
        let c = Config {
            user: u.into(),
            ..cmd(&["sh"])
        };
        f.build(&c, &hc).map(|s| {
            let p = s.process.expect("process");
            let home = p
                .env
                .iter()
                .find_map(|e| e.strip_prefix("HOME="))
                .map(str::to_string);
            (
                p.user.uid,
                p.user.gid,
                p.user.additional_gids,
                home.unwrap_or_default(),
            )
        })
    };
    assert_eq!(
        user("alice", &[]).expect("alice"),
        (1000, 1000, vec![100, 10], "/home/alice".into())
    );
    assert_eq!(
        user("1000", &[]).expect("uid"),
        (1000, 1000, vec![100, 10], "/home/alice".into())
    );
    assert_eq!(
        user("bob:wheel", &["users"]).expect("bob"),
        (1001, 10, vec![100], "/home/bob".into())
    );
    assert_eq!(
        user("4242:77", &["5"]).expect("numeric"),
        (4242, 77, vec![5], "/".into())
    );
    let e = user("nobody", &[]).expect_err("missing user").to_string();
    assert_eq!(
        e,
        "unable to find user nobody: no matching entries in passwd file"
    );
    let e = user("alice:staff", &[])
        .expect_err("missing group")
        .to_string();
    assert_eq!(
        e,
        "unable to find group staff: no matching entries in group file"
    );
    let e = user("alice", &["staff"])
        .expect_err("missing group-add")
        .to_string();
    assert_eq!(
        e,
        "unable to find group staff: no matching entries in group file"
    );
}

#[test]
fn hostile_passwd_symlink_stays_in_the_rootfs() {
    let f = Fixture::new();
    // A passwd outside the rootfs naming a user the image does not have.
    let outside = f.dir.path().join("host-passwd");
    std::fs::write(&outside, "intruder:x:0:0::/root:/bin/sh\n").expect("write");
    let passwd = f.rootfs().join("etc/passwd");
    for target in [outside.clone(), PathBuf::from("../../host-passwd")] {
        std::fs::remove_file(&passwd).expect("rm");
        symlink(&target, &passwd).expect("symlink");
        let c = Config {
            user: "intruder".into(),
            ..cmd(&["sh"])
        };
        let e = f
            .build(&c, &HostConfig::default())
            .expect_err("escaped the rootfs");
        assert!(matches!(e, SpecError::UserNotFound(_)), "{target:?}: {e}");
    }
    // An absolute symlink is resolved inside the rootfs, as the container sees it.
    std::fs::write(
        f.rootfs().join("etc/passwd.real"),
        "carol:x:7:7::/c:/bin/sh\n",
    )
    .expect("write");
    std::fs::remove_file(&passwd).expect("rm");
    symlink("/etc/passwd.real", &passwd).expect("symlink");
    let c = Config {
        user: "carol".into(),
        ..cmd(&["sh"])
    };
    let p = f
        .build(&c, &HostConfig::default())
        .expect("carol")
        .process
        .expect("process");
    assert_eq!((p.user.uid, p.user.gid), (7, 7));
    // A FIFO must not hang the lookup.
    std::fs::remove_file(&passwd).expect("rm");
    let c_path = std::ffi::CString::new(passwd.to_str().expect("utf8")).expect("cstr");
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let e = f
        .build(
            &Config {
                user: "alice".into(),
                ..cmd(&["sh"])
            },
            &HostConfig::default(),
        )
        .expect_err("fifo");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn command_entrypoint_and_init() {
    let f = Fixture::new();
    let hc = HostConfig::default();
    let e = f.build(&Config::default(), &hc).expect_err("no command");
    assert_eq!(e.to_string(), "no command specified");
    let c = Config {
        entrypoint: Some(strings(&[""])),
        ..Default::default()
    };
    assert!(matches!(f.build(&c, &hc), Err(SpecError::NoCommand)));
    let c = Config {
        entrypoint: Some(strings(&[""])),
        ..cmd(&["echo", "hi"])
    };
    assert_eq!(
        f.build(&c, &hc).expect("spec").process.expect("p").args,
        ["echo", "hi"]
    );
    let c = Config {
        entrypoint: Some(strings(&["/bin/sh", "-c"])),
        ..cmd(&["echo hi"])
    };
    let init = HostConfig {
        init: Some(true),
        ..Default::default()
    };
    let s = f.build(&c, &init).expect("init");
    assert_eq!(
        s.process.expect("p").args,
        ["/sbin/docker-init", "--", "/bin/sh", "-c", "echo hi"]
    );
    let m = s
        .mounts
        .iter()
        .find(|m| m.destination == INIT_DESTINATION)
        .expect("init mount");
    assert_eq!(m.options, ["bind", "ro"]);
    let rootfs = f.rootfs();
    let missing = SpecInput {
        id: "x",
        config: &c,
        host_config: &init,
        rootfs: &rootfs,
        container_dir: f.dir.path(),
        cgroups_path: "/x",
        network: NetNs::Host,
        seccomp_profile: None,
        init_path: Some(Path::new("/nonexistent/init")),
    };
    assert_eq!(
        build(&missing).expect_err("no init").to_string(),
        "--init: no init binary found (looked for /nonexistent/init)"
    );
}

#[test]
fn privileged_is_dockers() {
    let f = Fixture::new();
    let hc = HostConfig {
        privileged: true,
        cap_drop: Some(strings(&["ALL"])),
        ..Default::default()
    };
    let s = f.build(&cmd(&["sh"]), &hc).expect("spec");
    let caps = s
        .process
        .as_ref()
        .and_then(|p| p.capabilities.clone())
        .expect("caps");
    assert_eq!(caps.bounding, Some(all_capabilities()));
    let linux = s.linux.as_ref().expect("linux");
    assert!(
        linux.seccomp.is_none() && linux.masked_paths.is_empty() && linux.readonly_paths.is_empty()
    );
    assert!(linux.devices.iter().any(|d| d.path == "/dev/null"));
    assert!(!linux
        .devices
        .iter()
        .any(|d| d.path.starts_with("/dev/pts/")));
    let res = linux.resources.as_ref().expect("res");
    assert_eq!(res.devices.len(), 1);
    assert!(res.devices[0].allow);
    for dst in ["/sys", "/sys/fs/cgroup"] {
        let m = s
            .mounts
            .iter()
            .find(|m| m.destination == dst)
            .expect("mount");
        assert!(!m.options.contains(&"ro".to_string()), "{m:?}");
    }
}

#[test]
fn security_opts_and_seccomp() {
    let f = Fixture::new();
    let so = |v: &[&str]| HostConfig {
        security_opt: Some(strings(v)),
        ..Default::default()
    };
    let s = f
        .build(
            &cmd(&["sh"]),
            &so(&["seccomp=unconfined", "no-new-privileges:true"]),
        )
        .expect("spec");
    assert!(s.linux.as_ref().expect("linux").seccomp.is_none());
    assert!(s.process.as_ref().expect("p").no_new_privileges);
    let s = f
        .build(&cmd(&["sh"]), &so(&[r#"seccomp={"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#]))
        .expect("custom");
    let sc = s.linux.and_then(|l| l.seccomp).expect("seccomp");
    assert_eq!(
        (sc.default_action.as_str(), sc.syscalls.len()),
        ("SCMP_ACT_LOG", 0)
    );
    let hc = HostConfig {
        cap_add: Some(strings(&["SYS_ADMIN"])),
        ..Default::default()
    };
    let sc = f
        .build(&cmd(&["sh"]), &hc)
        .expect("spec")
        .linux
        .and_then(|l| l.seccomp)
        .expect("seccomp");
    assert!(sc
        .syscalls
        .iter()
        .any(|c| c.action == "SCMP_ACT_ALLOW" && c.names.iter().any(|n| n == "bpf")));
    // An explicit AppArmor profile applies only where the host has AppArmor.
    let s = f
        .build(&cmd(&["sh"]), &so(&["apparmor=myprofile"]))
        .expect("apparmor");
    let want = apparmor_enabled().then(|| "myprofile".to_string());
    assert_eq!(s.process.expect("p").apparmor_profile, want);
    let e = f
        .build(&cmd(&["sh"]), &so(&["bogus"]))
        .expect_err("bad")
        .to_string();
    assert_eq!(e, "invalid --security-opt: \"bogus\"");
    let e = f
        .build(&cmd(&["sh"]), &so(&["seccomp={nope"]))
        .expect_err("bad json")
        .to_string();
    assert!(
        e.starts_with("seccomp profile --security-opt seccomp: "),
        "{e}"
    );
}

#[test]
fn binds_tmpfs_and_namespaces() {
    let f = Fixture::new();
    let src = f.dir.path().join("made-by-v");
    let hc = HostConfig {
        binds: Some(vec![format!("{}:/data:ro", src.display())]),
        tmpfs: Some([("/run".to_string(), "size=1m,exec".to_string())].into()),
        mounts: vec![crate::types::Mount {
            kind: "tmpfs".into(),
            target: "/dev/shm".into(),
            tmpfs_options: Some(crate::types::TmpfsOptions {
                size_bytes: 2 << 20,
                mode: Some(0o1777),
            }),
            ..Default::default()
        }],
        pid_mode: "host".into(),
        ipc_mode: "host".into(),
        uts_mode: "host".into(),
        ..Default::default()
    };
    let s = f.build(&cmd(&["sh"]), &hc).expect("spec");
    assert!(src.is_dir(), "-v creates a missing source");
    let find = |d: &str| {
        s.mounts
            .iter()
            .find(|m| m.destination == d)
            .expect(d)
            .clone()
    };
    assert_eq!(find("/data").options, ["rbind", "ro", "rprivate"]);
    assert_eq!(
        find("/run").options,
        ["nosuid", "nodev", "rprivate", "size=1m", "exec"]
    );
    let shm = find("/dev/shm");
    assert_eq!(
        shm.options,
        [
            "noexec",
            "nosuid",
            "nodev",
            "rprivate",
            "mode=1777",
            "size=2m"
        ]
    );
    assert_eq!(
        s.mounts
            .iter()
            .filter(|m| m.destination == "/dev/shm")
            .count(),
        1
    );
    let ns: Vec<_> = s
        .linux
        .as_ref()
        .expect("l")
        .namespaces
        .iter()
        .map(|n| n.typ.clone())
        .collect();
    assert_eq!(ns, ["mount", "network"]);
    assert_eq!(s.hostname, None);
    let hc = HostConfig {
        mounts: vec![crate::types::Mount {
            kind: "bind".into(),
            source: "/nonexistent/oxcart".into(),
            target: "/x".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = f
        .build(&cmd(&["sh"]), &hc)
        .expect_err("missing")
        .to_string();
    assert_eq!(e, "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/oxcart");
    let hc = HostConfig {
        pid_mode: "container:abc".into(),
        ..Default::default()
    };
    let e = f
        .build(&cmd(&["sh"]), &hc)
        .expect_err("unsupported")
        .to_string();
    assert_eq!(e, "--pid container:abc is not supported yet");
}

/// The spec runs under runc and the container sees docker's defaults.
#[test]
fn runc_runs_it() {
    let f = Fixture::new();
    let script = "id; cat /etc/hostname; grep CapEff /proc/self/status; touch /ro-test && echo rw-root; touch /run/x && echo run-ok; echo $HOME";
    let c = Config {
        hostname: "box".into(),
        ..cmd(&["sh", "-c", script])
    };
    let (ok, out, err) = f.run(f.build(&c, &HostConfig::default()).expect("spec"));
    assert!(ok, "runc failed: {err}");
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert!(out.contains("box\n"), "{out}");
    // docker's 14 default capabilities as a mask.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("rw-root") && out.contains("/root"), "{out}");

    let c = Config {
        user: "alice".into(),
        ..cmd(&["sh", "-c", script])
    };
    let hc = HostConfig {
        readonly_rootfs: true,
        tmpfs: Some([("/run".to_string(), String::new())].into()),
        init: Some(true),
        ..Default::default()
    };
    let (ok, out, err) = f.run(f.build(&c, &hc).expect("spec"));
    assert!(ok, "runc failed: {err}");
    assert!(
        out.contains("uid=1000(alice) gid=1000(alice) groups="),
        "{out}"
    );
    assert!(
        out.contains("100(users)") && out.contains("10(wheel)"),
        "{out}"
    );
    assert!(
        !out.contains("rw-root") && out.contains("run-ok") && out.contains("/home/alice"),
        "{out}"
    );
}

/// A privileged container with a read-only bind, a tmpfs, an rlimit and limits runs
/// under runc and sees them.
#[test]
fn runc_runs_privileged_binds_and_limits() {
    let f = Fixture::new();
    let data = f.dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("hello"), "hello from the host\n").expect("write");
    let hc = HostConfig {
        privileged: true,
        binds: Some(vec![format!("{}:/data:ro", data.display())]),
        mounts: vec![crate::types::Mount {
            kind: "tmpfs".into(),
            target: "/scratch".into(),
            tmpfs_options: Some(crate::types::TmpfsOptions {
                size_bytes: 1 << 20,
                mode: None,
            }),
            ..Default::default()
        }],
        ulimits: Some(vec![crate::types::Ulimit {
            name: "nofile".into(),
            soft: 512,
            hard: 1024,
        }]),
        shm_size: 8 << 20,
        memory: 64 << 20,
        pids_limit: Some(50),
        ..Default::default()
    };
    let script = "cat /data/hello; touch /data/x 2>/dev/null || echo ro-bind; ulimit -n; \
                  grep -E ' /(dev/shm|scratch) ' /proc/mounts; grep CapEff /proc/self/status; \
                  test -c /dev/kmsg && echo host-devices";
    let (ok, out, err) = f.run(f.build(&cmd(&["sh", "-c", script]), &hc).expect("spec"));
    assert!(ok, "runc failed: {err}");
    assert!(
        out.contains("hello from the host") && out.contains("ro-bind"),
        "{out}"
    );
    assert!(out.contains("\n512\n"), "{out}");
    assert!(
        out.contains("/dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=8192k"),
        "{out}"
    );
    assert!(
        out.contains("/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"),
        "{out}"
    );
    assert!(out.contains("host-devices"), "{out}");
    // Every capability this process has (docker: all; see all_capabilities).
    let own = std::fs::read_to_string("/proc/self/status").expect("status");
    let bnd = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd");
    assert!(out.contains(&format!("CapEff:{bnd}")), "{out}");
}

#[test]
fn daemon_defaults() {
    let mut hc = HostConfig {
        memory: 64 << 20,
        ..Default::default()
    };
    apply_daemon_defaults(&mut hc);
    assert_eq!((hc.shm_size, hc.memory_swap), (64 << 20, 128 << 20));
    assert_eq!(
        (hc.ipc_mode.as_str(), hc.log_config.kind.as_str()),
        ("private", "json-file")
    );
    assert!(matches!(hc.cgroupns_mode.as_str(), "host" | "private"));
    let hc = HostConfig {
        network_mode: "host".into(),
        sysctls: Some([("net.ipv4.ip_forward".to_string(), "1".to_string())].into()),
        ..Default::default()
    };
    let e = validate_host_config(&hc).expect_err("host netns sysctl");
    assert_eq!(
        e.to_string(),
        "sysctl 'net.ipv4.ip_forward' not allowed in host network namespace"
    );
}
