//! Differential test against podman (the anchor): the same `run` flags given to
//! `podman --runtime runc create --network none` and to `into_docker` →
//! `merge_image_config` → `spec::build`; the two config.json files must agree on what
//! docker and podman agree on. Where podman departs from docker (and we follow docker)
//! the difference is asserted exactly, so a change on either side shows up here.
//!
//! The image is a busybox rootfs this test `podman import`s (podman never reaches a
//! registry); its containers and the image are removed when the test ends.

use super::*;
use clap::Parser;
use oxcart_engine::spec::{self, NetNs, SpecInput};
use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct Cmd {
    #[command(flatten)]
    flags: RunFlags,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// docker's default capabilities podman's default set (containers.conf) lacks.
const DOCKER_ONLY_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"];

struct Podman {
    dir: tempfile::TempDir,
    image: String,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Drop for Podman {
    fn drop(&mut self) {
        for id in self.containers.borrow().iter() {
            let _ = Command::new("podman").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("podman is installed")
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "root", "home/alice", "data"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        symlink("busybox", root.join("bin/sh")).expect("symlink");
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
        for f in ["hostname", "hosts", "resolv.conf"] {
            std::fs::write(ctr.join(f), "\n").expect("write");
        }
        let tar = dir.path().join("bb.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        let image = format!("localhost/oxcart-spec-diff:{}", std::process::id());
        let p = Podman {
            dir,
            image,
            containers: Default::default(),
        };
        let out = podman(&["import", tar.to_str().expect("utf8"), &p.image]);
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        p
    }

    /// podman's config.json for these flags (podman writes it at `init`, which then
    /// may fail on this host for unrelated reasons, e.g. its default nofile rlimit).
    /// Other tests on this machine run podman with private roots but podman's shared
    /// `/run/libpod`, which they may remove while we run; such attempts are retried.
    fn config(&self, flags: &[String]) -> Value {
        let mut last = String::new();
        for _ in 0..10 {
            match self.try_config(flags) {
                Ok(v) => return v,
                Err(e) if e.contains("/run/libpod") || e.contains("Refreshing container") => {
                    last = e;
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("podman kept failing: {last}");
    }

    fn try_config(&self, flags: &[String]) -> Result<Value, String> {
        let mut args = vec!["--runtime", "runc", "create", "--network", "none"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([self.image.as_str(), "sh"]);
        let out = podman(&args);
        if !out.status.success() {
            return Err(format!(
                "podman create {flags:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        self.containers.borrow_mut().push(id.clone());
        let init = podman(&["--runtime", "runc", "init", &id]);
        let path =
            format!("/var/lib/containers/storage/overlay-containers/{id}/userdata/config.json");
        let text = std::fs::read(&path).map_err(|e| {
            format!(
                "{flags:?}: {path}: {e} (podman init: {})",
                String::from_utf8_lossy(&init.stderr)
            )
        });
        let _ = podman(&["rm", "-f", &id]);
        serde_json::from_slice(&text?).map_err(|e| format!("podman's config.json: {e}"))
    }

    fn ours(&self, flags: &[String]) -> Value {
        let argv = std::iter::once("run".to_string())
            .chain(flags.iter().cloned())
            .chain([self.image.clone(), "sh".into()]);
        let cmd = Cmd::try_parse_from(argv).unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let (config, hc, _) = cmd
            .flags
            .into_docker(&cmd.image, cmd.args, |k| std::env::var(k).ok())
            .expect("into_docker");
        let config = spec::merge_image_config(&Default::default(), config);
        let rootfs = self.dir.path().join("rootfs");
        let ctr = self.dir.path().join("ctr");
        let s = spec::build(&SpecInput {
            id: "0123456789abcdef",
            config: &config,
            host_config: &hc,
            rootfs: &rootfs,
            container_dir: &ctr,
            cgroups_path: "/oxcart-diff",
            network: NetNs::New,
            seccomp_profile: None,
            init_path: Some(Path::new("/usr/libexec/podman/catatonit")),
        })
        .unwrap_or_else(|e| panic!("build {flags:?}: {e}"));
        serde_json::to_value(s).expect("json")
    }
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Collects every disagreement of one case, so a failure lists them all.
struct Diff<'a> {
    case: &'a str,
    flags: &'a [String],
    errors: Vec<String>,
}

impl Diff<'_> {
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, podman: T, ours: T) {
        if podman != ours {
            self.errors.push(format!(
                "[{}] {what}: podman {podman:?} vs ours {ours:?}",
                self.case
            ));
        }
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn caps(&mut self, p: &Value, o: &Value) {
        let (pc, oc) = (&p["process"]["capabilities"], &o["process"]["capabilities"]);
        let privileged = self.has("--privileged");
        let dropped: BTreeSet<String> = self
            .flags
            .windows(2)
            .filter(|w| w[0] == "--cap-drop")
            .map(|w| {
                format!(
                    "CAP_{}",
                    w[1].to_ascii_uppercase().trim_start_matches("CAP_")
                )
            })
            .collect();
        // Ours = podman's plus docker's three extra defaults (unless dropped); with
        // --privileged both give every capability the engine itself has.
        let expect = |podman: BTreeSet<String>| {
            if privileged {
                podman
            } else {
                &podman | &(&strs(DOCKER_ONLY_CAPS) - &dropped)
            }
        };
        let ob = set(&oc["bounding"]);
        self.check("bounding caps", expect(set(&pc["bounding"])), ob.clone());
        // docker keeps effective/permitted = bounding for any user; podman empties them
        // for a non-root user (but for added capabilities).
        self.check(
            "ours effective = bounding",
            ob.clone(),
            set(&oc["effective"]),
        );
        self.check("ours permitted = bounding", ob, set(&oc["permitted"]));
        if p["process"]["user"]["uid"] == 0 {
            self.check(
                "effective",
                expect(set(&pc["effective"])),
                set(&oc["effective"]),
            );
        }
        self.check(
            "inheritable (CVE-2022-24769: none)",
            Value::Null,
            oc["inheritable"].clone(),
        );
    }

    fn process(&mut self, p: &Value, o: &Value) {
        let (pp, op) = (&p["process"], &o["process"]);
        // podman adds container=podman, and TERM=xterm even without a tty.
        let mut penv = set(&pp["env"]);
        penv.remove("container=podman");
        if !self.has("-t") {
            penv.remove("TERM=xterm");
        }
        // A user without a passwd entry: podman leaves HOME to the runtime (runc
        // sets `/`); we write runc's `/` into the spec, so any runtime gives the same.
        if !penv.iter().any(|e| e.starts_with("HOME=")) {
            penv.insert("HOME=/".into());
        }
        let keep = |s: &BTreeSet<String>| {
            s.iter()
                .filter(|e| !e.starts_with("HOSTNAME="))
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        self.check("env", keep(&penv), keep(&set(&op["env"])));
        for k in ["cwd", "terminal", "noNewPrivileges", "oomScoreAdj"] {
            let pv = pp.get(k).cloned().unwrap_or(Value::Null);
            let pv = if pv == Value::Bool(false) {
                Value::Null
            } else {
                pv
            };
            self.check(k, pv, op.get(k).cloned().unwrap_or(Value::Null));
        }
        for k in ["uid", "gid"] {
            self.check(k, &pp["user"][k], &op["user"][k]);
        }
        // podman puts the primary gid first among the supplementary groups (whenever
        // there are any or -u was given); docker
        // (runc's GetExecUser) lists only the groups naming the user, and --group-add.
        let ogids: Vec<Value> = op["user"]["additionalGids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut want = Vec::new();
        if !ogids.is_empty() || self.has("-u") {
            want.push(pp["user"]["gid"].clone());
            want.extend(ogids.into_iter().filter(|g| *g != pp["user"]["gid"]));
        }
        let pg = pp["user"]["additionalGids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        self.check("additionalGids (podman: primary first)", pg, want);
        let args = |v: &Value| v["process"]["args"].as_array().cloned().unwrap_or_default();
        let (pa, oa) = (args(p), args(o));
        if self.has("--init") {
            self.check("init path", pa[0].clone(), Value::from("/run/podman-init"));
            self.check(
                "init path (docker's)",
                oa[0].clone(),
                Value::from("/sbin/docker-init"),
            );
            self.check("args after init", &pa[1..], &oa[1..]);
        } else {
            self.check("args", pa, oa);
        }
        // Rlimits: podman adds nofile/nproc defaults; docker only what --ulimit says.
        for r in op["rlimits"].as_array().into_iter().flatten() {
            let found = pp["rlimits"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x == r);
            self.check(&format!("rlimit {r}"), true, found);
        }
        self.check(
            "root.readonly",
            p["root"]["readonly"].as_bool().unwrap_or(false),
            o["root"]["readonly"].as_bool().unwrap_or(false),
        );
    }

    fn paths(&mut self, p: &Value, o: &Value) {
        let (pl, ol) = (&p["linux"], &o["linux"]);
        if self.has("--privileged") {
            self.check("masked", set(&pl["maskedPaths"]), BTreeSet::new());
            self.check("masked (ours)", set(&ol["maskedPaths"]), BTreeSet::new());
            return;
        }
        let (pm, om) = (set(&pl["maskedPaths"]), set(&ol["maskedPaths"]));
        self.check(
            "masked only by podman",
            &pm - &om,
            strs(&["/sys/fs/selinux", "/sys/dev/block"]),
        );
        self.check(
            "masked only by docker",
            &om - &pm,
            strs(&["/proc/asound", "/sys/devices/virtual/powercap"]),
        );
        let (pr, or) = (set(&pl["readonlyPaths"]), set(&ol["readonlyPaths"]));
        self.check(
            "read-only only by podman",
            &pr - &or,
            strs(&["/proc/asound"]),
        );
        self.check("read-only only by docker", &or - &pr, BTreeSet::new());
    }

    fn resources(&mut self, p: &Value, o: &Value) {
        let (pr, or) = (&p["linux"]["resources"], &o["linux"]["resources"]);
        for group in ["memory", "cpu"] {
            self.check(group, pr.get(group), or.get(group));
        }
        if self.has("--pids-limit") {
            self.check("pids", pr.get("pids"), or.get("pids"));
        }
        let pd = pr["devices"].as_array().cloned().unwrap_or_default();
        let od = or["devices"].as_array().cloned().unwrap_or_default();
        if self.has("--privileged") {
            self.check("device rules", pd, od);
        } else {
            // podman lists deny-all and leaves runc's defaults implicit; docker lists
            // its seven defaults (oci/defaults.go) after deny-all.
            self.check("device deny-all", pd.first(), od.first());
            self.check("user device rules", &pd[1..], &od[od.len().min(8)..]);
        }
        let devs = |v: &Value| -> BTreeSet<String> {
            v["linux"]["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| format!("{} {} {}:{}", d["path"], d["type"], d["major"], d["minor"]))
                .collect()
        };
        self.check("linux.devices", devs(p), devs(o));
        let mut ps = p["linux"]["sysctl"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut os = o["linux"]["sysctl"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        // podman: ping_group_range "0 0" (containers.conf); docker: "0 2147483647" and
        // ip_unprivileged_port_start 0 for a private network namespace.
        ps.remove("net.ipv4.ping_group_range");
        os.remove("net.ipv4.ping_group_range");
        os.remove("net.ipv4.ip_unprivileged_port_start");
        self.check("sysctls", ps, os);
        let ns = |v: &Value| -> BTreeSet<String> {
            v["linux"]["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n["type"].to_string())
                .collect()
        };
        self.check("namespaces", ns(p), ns(o));
    }

    fn seccomp(&mut self, p: &Value, o: &Value, exact: bool) {
        let (ps, os) = (&p["linux"]["seccomp"], &o["linux"]["seccomp"]);
        self.check("seccomp present", ps.is_null(), os.is_null());
        if ps.is_null() || os.is_null() {
            return;
        }
        for k in ["defaultAction", "defaultErrnoRet", "architectures"] {
            self.check(k, &ps[k], &os[k]);
        }
        if exact {
            let rules = |v: &Value| -> Vec<String> {
                v["syscalls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let mut r = r.clone();
                        if let Some(m) = r.as_object_mut() {
                            m.retain(|_, v| !v.is_null() && *v != Value::Array(vec![]));
                            // podman omits a zero valueTwo; our types always write it.
                            for a in m
                                .get_mut("args")
                                .and_then(Value::as_array_mut)
                                .into_iter()
                                .flatten()
                            {
                                if a["valueTwo"] == 0 {
                                    a.as_object_mut().map(|o| o.remove("valueTwo"));
                                }
                            }
                        }
                        r.to_string()
                    })
                    .collect()
            };
            self.check("seccomp rules", rules(ps), rules(os));
        }
    }

    fn mounts(&mut self, p: &Value, o: &Value) {
        // Not compared: the per-container files, /dev/shm (both engines bind a
        // per-container directory; we mount a tmpfs), the init binary, podman's
        // .containerenv and, with --read-only, its extra tmpfs on /tmp, /var/tmp, /run.
        let skip = |d: &str| {
            d.starts_with("/etc/")
                || d == "/dev/shm"
                || d == "/run/.containerenv"
                || d == "/run/podman-init"
                || d == "/sbin/docker-init"
        };
        let norm = |m: &Value| -> (String, BTreeSet<String>) {
            let ignore = [
                "rprivate",
                "private",
                "rw",
                "relatime",
                "tmpcopyup",
                "rbind",
                "bind",
            ];
            let mut opts: BTreeSet<String> = set(&m["options"])
                .into_iter()
                .filter(|o| !ignore.contains(&o.as_str()))
                .collect();
            if m["type"] == "tmpfs" {
                // docker mounts a tmpfs noexec (user tmpfs) or not (/dev); podman the
                // other way round.
                opts.remove("noexec");
            }
            (m["type"].as_str().unwrap_or_default().to_string(), opts)
        };
        let list = |v: &Value| v["mounts"].as_array().cloned().unwrap_or_default();
        let (pm, om) = (list(p), list(o));
        for m in &om {
            let d = m["destination"].as_str().unwrap_or_default();
            if skip(d) {
                continue;
            }
            let twin = pm.iter().find(|x| x["destination"] == m["destination"]);
            self.check(&format!("mount {d}"), twin.map(norm), Some(norm(m)));
        }
        let podman_ro_tmpfs = ["/tmp", "/var/tmp", "/run"];
        for m in &pm {
            let d = m["destination"].as_str().unwrap_or_default();
            let extra = self.has("--read-only") && podman_ro_tmpfs.contains(&d);
            if skip(d) || extra {
                continue;
            }
            let ours = om.iter().any(|x| x["destination"] == m["destination"]);
            self.check(&format!("podman's mount {d} is ours too"), true, ours);
        }
    }
}

#[test]
fn specs_agree_with_podman() {
    let pod = Podman::new();
    let data = pod.dir.path().join("rootfs/data");
    let d = data.to_str().expect("utf8");
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("default", vec![]),
        (
            "docker's caps",
            vec![
                "--cap-add=AUDIT_WRITE".into(),
                "--cap-add=MKNOD".into(),
                "--cap-add=NET_RAW".into(),
            ],
        ),
        ("user name", vec!["-u".into(), "alice".into()]),
        (
            "user:group, group-add",
            vec![
                "-u".into(),
                "bob:wheel".into(),
                "--group-add".into(),
                "users".into(),
            ],
        ),
        (
            "cap add/drop",
            vec![
                "--cap-add".into(),
                "SYS_ADMIN".into(),
                "--cap-drop".into(),
                "CHOWN".into(),
                "--cap-drop".into(),
                "net_raw".into(),
            ],
        ),
        ("privileged", vec!["--privileged".into()]),
        ("read-only", vec!["--read-only".into()]),
        (
            "resources",
            [
                "-m",
                "64m",
                "--memory-reservation",
                "32m",
                "--memory-swappiness",
                "10",
                "--cpus",
                "1.5",
                "--cpu-shares",
                "512",
                "--cpuset-cpus",
                "0",
                "--pids-limit",
                "100",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "ulimits",
            ["--ulimit", "nofile=1024:2048", "--ulimit", "core=0"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "tmpfs",
            [
                "--tmpfs",
                "/run:size=10m",
                "--tmpfs",
                "/x",
                "--mount",
                "type=tmpfs,dst=/y,tmpfs-size=1m",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "binds",
            vec![
                "-v".into(),
                format!("{d}:/data"),
                "-v".into(),
                format!("{d}:/ro:ro"),
                "--mount".into(),
                format!("type=bind,src={d},dst=/m,readonly"),
            ],
        ),
        (
            "workdir, env, tty",
            [
                "-w",
                "/tmp",
                "-e",
                "A=1",
                "-e",
                "OXCART_SPEC_UNSET_VAR",
                "-t",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "misc",
            [
                "--security-opt",
                "no-new-privileges",
                "--oom-score-adj",
                "100",
                "--sysctl",
                "net.core.somaxconn=1024",
                "--device",
                "/dev/null:/dev/mynull:rw",
            ]
            .map(String::from)
            .to_vec(),
        ),
    ];
    cases.push((
        "numeric user, no seccomp",
        ["-u", "4242:77", "--security-opt", "seccomp=unconfined"]
            .map(String::from)
            .to_vec(),
    ));
    cases.push((
        "host namespaces",
        ["--ipc", "host", "--pid", "host", "--uts", "host"]
            .map(String::from)
            .to_vec(),
    ));
    if Path::new("/usr/libexec/podman/catatonit").exists() {
        cases.push(("init", vec!["--init".into()]));
    }
    let mut errors = Vec::new();
    for (case, flags) in &cases {
        let (p, o) = (pod.config(flags), pod.ours(flags));
        let mut diff = Diff {
            case,
            flags,
            errors: Vec::new(),
        };
        diff.caps(&p, &o);
        diff.process(&p, &o);
        diff.paths(&p, &o);
        diff.resources(&p, &o);
        diff.seccomp(&p, &o, *case == "docker's caps");
        diff.mounts(&p, &o);
        errors.extend(diff.errors);
    }
    assert!(
        errors.is_empty(),
        "{} disagreements:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
