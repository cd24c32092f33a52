//! Differential: the same `run`/`inspect`/`ps`/`logs` scenarios under
//! `podman --runtime runc` and under oxcart, on the same image pulled from the same
//! local registry. Exit codes, output and the inspect fields both print must agree;
//! where podman departs from docker (and oxcart follows docker) the difference is
//! asserted exactly, so a change on either side shows up here.
//!
//! podman runs with private `--root`/`--runroot`/`--tmpdir`, `--network none`, and
//! `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: podman's default rlimits
//! exceed these hosts' hard limits (docs/clients.md).
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output};

struct Podman {
    tmp: tempfile::TempDir,
    base: Vec<String>,
}

impl Podman {
    /// A podman with its own storage, holding the test image pulled from the registry.
    fn new() -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is not installed (scripts/setup.sh installs it)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = |s: &str| tmp.path().join(s).display().to_string();
        let mut base = vec!["--root".into(), p("root"), "--runroot".into(), p("runroot")];
        // libpod's own "alive" state must not be the shared /run/libpod (another
        // instance's reset would make this one refresh its containers).
        base.extend(["--tmpdir".into(), p("libpod-tmp")]);
        for (k, v) in [
            ("--storage-driver", "overlay"),
            ("--cgroup-manager", "cgroupfs"),
            ("--events-backend", "file"),
            // crun refuses these hosts' hybrid cgroups; runc takes them.
            ("--runtime", "runc"),
        ] {
            base.extend([k.to_string(), v.to_string()]);
        }
        // Only podman's built-in defaults: no host containers.conf changes them.
        std::fs::write(tmp.path().join("none.conf"), "").unwrap();
        let pm = Podman { tmp, base };
        let o = pm.run(&["pull", "-q", "--tls-verify=false", &images().image]);
        assert!(o.status.success(), "podman pull: {}", err(&o));
        pm
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(&self.base)
            .args(args)
            .env("CONTAINERS_CONF", self.tmp.path().join("none.conf"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "podman {args:?}: {}", err(&o));
        out(&o)
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
        // The overlay driver bind-mounts its directory onto itself and reset leaves
        // that mount (podman 4.3): take it off so the temporary directory goes.
        let ov = std::ffi::CString::new(
            self.tmp
                .path()
                .join("root/overlay")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid C string; our own mount or nothing (EINVAL, ignored).
        unsafe { libc::umount2(ov.as_ptr(), libc::UMOUNT_NOFOLLOW) };
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The flags podman needs on these hosts (and oxcart takes as well).
const PODMAN_RUN: &[&str] = &[
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// `VERB [PODMAN_RUN] FLAGS IMAGE CMD...` under both; (oxcart's, podman's).
fn both(ox: &Ox, pm: &Podman, verb: &[&str], flags: &[&str], cmd: &[&str]) -> (Output, Output) {
    let mut a: Vec<&str> = verb.to_vec();
    a.extend_from_slice(PODMAN_RUN);
    a.extend_from_slice(flags);
    a.push(ox.image());
    a.extend_from_slice(cmd);
    (ox.run(&a), pm.run(&a))
}

/// An engine; the shared registry goes when this binary exits.
fn new_ox() -> Ox {
    clean_images_at_exit();
    Ox::new()
}

#[test]
fn run_exit_codes_and_output_agree() {
    let ox = new_ox().pulled();
    let pm = Podman::new();
    let rm = &["run", "--rm"][..];
    // (flags, command, exit code both must give)
    let cases: &[(&[&str], &[&str], i32)] = &[
        (&[], &["echo", "hello"], 0),
        (&[], &["sh", "-c", "echo out; echo err >&2; exit 3"], 3),
        (&[], &["nosuchcmd"], 127),
        (&[], &["/data/notexec"], 126),
        // The shell is pid 1 of its namespace: the kernel drops the SIGKILL it sends
        // itself, so it goes on.
        (&[], &["sh", "-c", "kill -9 $$; echo after"], 0),
        // Under an init it is an ordinary process: killed, and the init reports 137.
        (&["--init"], &["sh", "-c", "kill -9 $$; echo after"], 137),
        (&[], &["sh", "-c", "cat /nonexistent"], 1),
    ];
    for (flags, cmd, code) in cases {
        let (o, p) = both(&ox, &pm, rm, flags, cmd);
        assert_eq!(o.status.code(), Some(*code), "oxcart {cmd:?}: {}", err(&o));
        assert_eq!(p.status.code(), Some(*code), "podman {cmd:?}: {}", err(&p));
        assert_eq!(out(&o), out(&p), "stdout of {cmd:?}");
        if *code < 126 || *code > 127 {
            // The container's own stderr, byte for byte (the engines' messages for
            // 126/127 are their own words).
            assert_eq!(err(&o), err(&p), "stderr of {cmd:?}");
        } else {
            assert!(
                err(&o).contains(cmd[0]),
                "oxcart names {cmd:?}: {}",
                err(&o)
            );
            assert!(
                err(&p).contains(cmd[0]),
                "podman names {cmd:?}: {}",
                err(&p)
            );
        }
    }
    ox.assert_clean();
}

#[test]
fn the_process_inside_sees_the_same_identity_and_environment() {
    let ox = new_ox().pulled();
    let pm = Podman::new();
    let rm = &["run", "--rm"][..];
    let script = "id; pwd; echo $IMGVAR; hostname | wc -c; umask; ulimit -n";
    for flags in [
        &[][..],
        &["-u", "app"][..],
        &["-u", "1000:2000", "-w", "/tmp"][..],
        &["-e", "IMGVAR=mine", "-w", "/home/app"][..],
    ] {
        let cmd: &[&str] = &["sh", "-c", script];
        let (o, p) = both(&ox, &pm, rm, flags, cmd);
        assert!(
            o.status.success() && p.status.success(),
            "{}{}",
            err(&o),
            err(&p)
        );
        let theirs = if flags.contains(&"-u") {
            without_primary_in_groups(&out(&p))
        } else {
            out(&p)
        };
        assert_eq!(out(&o), theirs, "{flags:?}");
    }
    // --entrypoint replaces the image's command; the arguments follow it.
    let (o, p) = both(&ox, &pm, rm, &["--entrypoint", "echo"], &["a", "b"]);
    assert_eq!((out(&o), out(&p)), ("a b\n".into(), "a b\n".into()));
    // /etc/hostname: docker writes the name and a newline, podman the name alone.
    let (o, p) = both(
        &ox,
        &pm,
        rm,
        &[],
        &["sh", "-c", "cat /etc/hostname; echo; hostname"],
    );
    let (a, b) = (out(&o), out(&p));
    let (oh, ph) = (a.lines().nth(2).unwrap(), b.lines().nth(1).unwrap());
    assert_eq!(a, format!("{oh}\n\n{oh}\n"), "docker's hostname file");
    assert_eq!(b, format!("{ph}\n{ph}\n"), "podman's, no newline");
    assert_eq!(oh.len(), ph.len(), "both the 12-digit short id");
    // The environment: podman adds `container=podman` and `TERM=xterm` without a tty
    // (docker sets TERM only with -t; we follow docker); everything else agrees.
    // HOSTNAME differs by value (each engine's id).
    let env = |o: &Output| -> BTreeSet<String> {
        out(o)
            .lines()
            .filter(|l| !l.starts_with("HOSTNAME="))
            .map(String::from)
            .collect()
    };
    let (o, p) = both(&ox, &pm, rm, &["-e", "X=1"], &["env"]);
    let (ours, mut theirs) = (env(&o), env(&p));
    assert!(
        theirs.remove("container=podman"),
        "podman's marker: {theirs:?}"
    );
    assert!(theirs.remove("TERM=xterm"), "podman's TERM: {theirs:?}");
    assert_eq!(ours, theirs);
    assert!(out(&o).contains("HOSTNAME=") && out(&p).contains("HOSTNAME="));
    // HOME for a user whose passwd entry has one, and for root.
    let (o, p) = both(&ox, &pm, rm, &["-u", "app"], &["sh", "-c", "echo $HOME"]);
    assert_eq!(
        (out(&o), out(&p)),
        ("/home/app\n".into(), "/home/app\n".into())
    );
    ox.assert_clean();
}

/// podman, given `-u`, lists the primary group first among the supplementary ones;
/// docker (runc's GetExecUser) lists only the groups naming the user (the spec
/// module's doc). `id`'s first line with that entry taken out.
fn without_primary_in_groups(out: &str) -> String {
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    let id = &lines[0];
    let gid = id
        .split(' ')
        .nth(1)
        .unwrap()
        .trim_start_matches("gid=")
        .to_string();
    let fixed = match id.split_once(" groups=") {
        Some((head, groups)) => {
            let rest: Vec<&str> = groups.split(',').filter(|g| *g != gid).collect();
            assert!(
                rest.len() < groups.split(',').count(),
                "podman's habit: {id}"
            );
            if rest.is_empty() {
                head.to_string()
            } else {
                format!("{head} groups={}", rest.join(","))
            }
        }
        None => id.clone(),
    };
    lines[0] = fixed;
    lines.join("\n") + "\n"
}

/// The fields of `inspect` both engines print for a container, as JSON values.
fn fields(v: &Value) -> Vec<(&'static str, Value)> {
    let env: BTreeSet<String> = v["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .filter(|e| !e.starts_with("HOSTNAME="))
        .collect();
    vec![
        ("State.Status", v["State"]["Status"].clone()),
        ("State.ExitCode", v["State"]["ExitCode"].clone()),
        ("State.Running", v["State"]["Running"].clone()),
        ("State.Paused", v["State"]["Paused"].clone()),
        ("State.OOMKilled", v["State"]["OOMKilled"].clone()),
        ("Config.Cmd", v["Config"]["Cmd"].clone()),
        ("Config.Env", serde_json::json!(env)),
        ("Config.WorkingDir", v["Config"]["WorkingDir"].clone()),
        ("Config.Labels", v["Config"]["Labels"].clone()),
        ("Config.User", v["Config"]["User"].clone()),
        ("Config.Tty", v["Config"]["Tty"].clone()),
        ("Config.OpenStdin", v["Config"]["OpenStdin"].clone()),
        ("Path", v["Path"].clone()),
        ("Args", v["Args"].clone()),
        ("HostConfig.Memory", v["HostConfig"]["Memory"].clone()),
        ("HostConfig.PidsLimit", v["HostConfig"]["PidsLimit"].clone()),
        (
            "HostConfig.ReadonlyRootfs",
            v["HostConfig"]["ReadonlyRootfs"].clone(),
        ),
        (
            "HostConfig.Privileged",
            v["HostConfig"]["Privileged"].clone(),
        ),
        (
            "HostConfig.NetworkMode",
            v["HostConfig"]["NetworkMode"].clone(),
        ),
    ]
}

/// podman's Config.Env carries `TERM=xterm` without a tty, and once started the
/// user's `HOME` it resolved; docker's and ours carry neither (HOME is set in the
/// process's environment only).
fn podman_env_extra(v: &mut Value) {
    let env = v["Config"]["Env"].as_array_mut().unwrap();
    let n = env.len();
    env.retain(|e| {
        let e = e.as_str().unwrap();
        e != "TERM=xterm" && e != "container=podman" && !e.starts_with("HOME=")
    });
    assert!(env.len() < n, "podman's TERM=xterm went: {env:?}");
}

fn assert_same_fields(ours: &Value, theirs: &Value, what: &str) {
    let mut theirs = theirs.clone();
    podman_env_extra(&mut theirs);
    // No --pids-limit: docker has none (null), podman its default of 2048.
    if ours["HostConfig"]["PidsLimit"].is_null() {
        assert_eq!(theirs["HostConfig"]["PidsLimit"], 2048, "{what}");
        theirs["HostConfig"]["PidsLimit"] = Value::Null;
    }
    // docker's Name has a leading slash, podman's none.
    assert_eq!(
        ours["Name"].as_str().unwrap(),
        format!("/{}", theirs["Name"].as_str().unwrap()),
        "{what}"
    );
    // docker prints the stop signal's name, podman 4.3 its number.
    let sig = ours["Config"]["StopSignal"].clone();
    let num = theirs["Config"]["StopSignal"].clone();
    match (sig.as_str(), num.as_u64()) {
        (Some("SIGUSR1"), Some(10)) | (None, Some(15)) => {}
        other => panic!("{what}: StopSignal {other:?}"),
    }
    let env = ours["Config"]["Env"].to_string();
    assert!(
        !env.contains("TERM=") && !env.contains("container=") && !env.contains("HOME="),
        "{env}"
    );
    for ((k, a), (_, b)) in fields(ours).into_iter().zip(fields(&theirs)) {
        assert_eq!(a, b, "{what}: {k} (oxcart left, podman right)");
    }
}

#[test]
fn inspect_prints_the_same_fields() {
    let ox = new_ox().pulled();
    let pm = Podman::new();
    let flags = &[
        "--name",
        "insp",
        "-l",
        "mine=1",
        "-e",
        "E=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "-m",
        "64m",
        "--pids-limit",
        "100",
        "--stop-signal",
        "SIGUSR1",
        "--read-only",
    ][..];
    let (o, p) = both(&ox, &pm, &["create"], flags, &["sh", "-c", "exit 3"]);
    assert!(
        o.status.success() && p.status.success(),
        "{}{}",
        err(&o),
        err(&p)
    );
    let (ov, pv) = (ox.inspect("insp"), pm.inspect("insp"));
    assert_same_fields(&ov, &pv, "created");
    assert_eq!(ov["State"]["Status"], "created");
    assert_eq!(ov["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(ov["Config"]["Labels"]["org.test.image"], "yes");
    // Started and exited: code 3.
    assert_eq!(ox.run(&["start", "-a", "insp"]).status.code(), Some(3));
    assert_eq!(pm.run(&["start", "-a", "insp"]).status.code(), Some(3));
    let (ov, pv) = (ox.inspect("insp"), pm.inspect("insp"));
    assert_same_fields(&ov, &pv, "exited");
    assert_eq!(ov["State"]["ExitCode"], 3);
    // Both print a real finish time. Ours is never before the start; podman's can be
    // for a command this short (its StartedAt is taken after the runtime's start
    // returns, the exit time by conmon), so only ours is held to that.
    for (who, v) in [("oxcart", &ov), ("podman", &pv)] {
        let (s, f) = (
            v["State"]["StartedAt"].as_str().unwrap(),
            v["State"]["FinishedAt"].as_str().unwrap(),
        );
        assert!(
            !f.starts_with("0001") && (who == "podman" || f >= s),
            "{who}: started {s} finished {f}"
        );
    }
    // A running one: a pid, Running, and an entrypoint override's Path/Args.
    let flags = &["--name", "up", "-d", "--entrypoint", "sleep", "-t"][..];
    let (o, p) = both(&ox, &pm, &["run"], flags, &["1000"]);
    assert!(
        o.status.success() && p.status.success(),
        "{}{}",
        err(&o),
        err(&p)
    );
    let (ov, pv) = (ox.inspect("up"), pm.inspect("up"));
    assert_same_fields(&ov, &pv, "running");
    assert_eq!(ov["Path"], "sleep");
    assert_eq!(ov["Args"], serde_json::json!(["1000"]));
    assert!(ov["State"]["Pid"].as_i64().unwrap() > 0 && pv["State"]["Pid"].as_i64().unwrap() > 0);
    // Killed: 137 on both.
    ox.ok(&["kill", "up"]);
    pm.ok(&["kill", "up"]);
    assert_eq!(ox.ok(&["wait", "up"]), "137\n");
    assert_eq!(pm.ok(&["wait", "up"]), "137\n");
    assert_same_fields(&ox.inspect("up"), &pm.inspect("up"), "killed");
    // A missing container: both fail and name it.
    let (o, p) = (
        ox.run(&["inspect", "nosuch"]),
        pm.run(&["inspect", "nosuch"]),
    );
    assert!(!o.status.success() && !p.status.success());
    assert!(err(&o).contains("nosuch") && err(&p).contains("nosuch"));
    ox.ok(&["rm", "-f", "insp", "up"]);
    ox.assert_clean();
}

/// `Exited (3) 2 seconds ago` → `Exited (3) N seconds ago`: the shape without the
/// clock.
fn shape(status: &str) -> String {
    let mut outw = Vec::new();
    let words: Vec<&str> = status.split(' ').collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.chars().all(|c| c.is_ascii_digit()) && i + 1 < words.len() {
            // A count and its unit (`2 seconds`, `About a minute` stays as it is).
            outw.push("N".to_string());
            outw.push(words[i + 1].trim_end_matches('s').to_string() + "s");
            i += 2;
            continue;
        }
        if w == "Less" {
            // docker's "Less than a second ago"
            outw.push("N".into());
            outw.push("seconds".into());
            i += 4;
            continue;
        }
        outw.push(w.to_string());
        i += 1;
    }
    outw.join(" ")
}

#[test]
fn ps_and_logs_agree() {
    let ox = new_ox().pulled();
    let pm = Podman::new();
    let script = "for i in 1 2 3 4 5; do echo out-$i; done; echo err-1 >&2; exit 2";
    let (o, p) = both(
        &ox,
        &pm,
        &["run"],
        &["--name", "done"],
        &["sh", "-c", script],
    );
    assert_eq!((o.status.code(), p.status.code()), (Some(2), Some(2)));
    let (o, p) = both(&ox, &pm, &["create"], &["--name", "fresh"], &["true"]);
    assert!(o.status.success() && p.status.success());
    let (o, p) = both(
        &ox,
        &pm,
        &["run", "-d"],
        &["--name", "up"],
        &["sleep", "1000"],
    );
    assert!(
        o.status.success() && p.status.success(),
        "{}{}",
        err(&o),
        err(&p)
    );

    let ps = |o: String| -> BTreeSet<String> {
        o.lines()
            .map(|l| {
                let (n, s) = l.split_once(' ').unwrap();
                format!("{n} {}", shape(s))
            })
            .collect()
    };
    let f = ["ps", "-a", "--format", "{{.Names}} {{.Status}}"];
    let (ours, theirs) = (ps(ox.ok(&f)), ps(pm.ok(&f)));
    assert!(ours.contains("done Exited (2) N seconds ago"), "{ours:?}");
    assert!(ours.contains("fresh Created"), "{ours:?}");
    // docker: "Up 2 seconds"; podman 4.3 says "Up 2 seconds ago" — the intended
    // difference (we print docker's).
    assert!(ours.contains("up Up N seconds"), "{ours:?}");
    let theirs: BTreeSet<String> = theirs
        .into_iter()
        .map(|l| l.replace("Up N seconds ago", "Up N seconds"))
        .collect();
    assert_eq!(ours, theirs, "ps shapes (oxcart left)");
    // Only running ones without -a; -q prints ids of the same length.
    let f = ["ps", "--format", "{{.Names}}"];
    assert_eq!(ox.ok(&f), pm.ok(&f));
    assert_eq!(ox.ok(&["ps", "-q"]).trim().len(), 12);
    assert_eq!(pm.ok(&["ps", "-q"]).trim().len(), 12);

    // logs: stdout and stderr kept apart, --tail, a bad --tail.
    for args in [
        &["logs", "done"][..],
        &["logs", "--tail", "2", "done"][..],
        &["logs", "--tail", "0", "done"][..],
    ] {
        let (o, p) = (ox.run(args), pm.run(args));
        assert!(o.status.success() && p.status.success(), "{args:?}");
        assert_eq!(out(&o), out(&p), "stdout of {args:?}");
        assert_eq!(err(&o), err(&p), "stderr of {args:?}");
    }
    assert_eq!(ox.ok(&["logs", "--tail", "2", "done"]), "out-5\n");
    let (o, p) = (ox.run(&["logs", "nosuch"]), pm.run(&["logs", "nosuch"]));
    assert!(!o.status.success() && !p.status.success());
    assert_eq!(o.status.code(), Some(125));
    ox.ok(&["rm", "-f", "done", "fresh", "up"]);
    ox.assert_clean();
}
