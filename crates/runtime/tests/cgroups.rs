//! pause/resume, update, events, ps and resource limits on real containers.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's directory for a controller (`memory`, `pids`…), from its
/// absolute cgroupsPath.
fn cg_dir(controller: &str, cg: &str) -> PathBuf {
    let rel = cg.trim_start_matches('/');
    if v2() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

struct Running {
    rt: Runtime,
    id: String,
    cg: String,
    _b: Bundle,
}

fn start(args: &[&str], edit: impl FnOnce(&mut Value)) -> Running {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(args);
    let cg = b.own_cgroup("oxcart-test-ops");
    edit(&mut b.config);
    b.write();
    let id = unique("ops");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    Running { rt, id, cg, _b: b }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let out = tmp().join(unique("count"));
    std::fs::create_dir_all(&out).unwrap();
    let r = start(
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /out/t; mv /out/t /out/n; done",
        ],
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind", "source": out.display().to_string(), "options": ["rbind"]
        }));
        },
    );
    // Written with rename, so once the first count exists a read always sees a
    // whole number; `None` until then.
    let try_count = || {
        std::fs::read_to_string(out.join("n"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let count = || try_count().expect("count file vanished or is not a number");
    // Running and counting before the pause (a generous deadline for a loaded
    // host, rather than a fixed sleep).
    let mut first = None;
    assert!(
        wait_until(|| match (first, try_count()) {
            (None, Some(n)) => {
                first = Some(n);
                false
            }
            (Some(a), Some(n)) => n > a,
            _ => false,
        }),
        "the container wrote no advancing count within 10 s: {first:?}"
    );
    assert!(r.rt.run(&["pause", &r.id]).status.success());
    assert_eq!(r.rt.state(&r.id)["status"], "paused");
    // pause returns once the kernel reports the cgroup frozen: from then on the
    // count must not move at all over the whole sampling window.
    let a = count();
    let window = Instant::now() + Duration::from_millis(500);
    while Instant::now() < window {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count(), a, "a paused container made progress");
    }
    let b = count();
    assert_eq!(a, b, "a paused container made progress");
    let o = r.rt.run(&["pause", &r.id]);
    assert!(!o.status.success());
    assert!(r.rt.run(&["resume", &r.id]).status.success());
    assert_eq!(r.rt.state(&r.id)["status"], "running");
    assert!(
        wait_until(|| count() > b),
        "a resumed container made no progress within 10 s"
    );
    let o = r.rt.run(&["resume", &r.id]);
    assert!(stderr(&o).contains("not paused"), "{}", stderr(&o));
    assert!(r.rt.run(&["delete", "-f", &r.id]).status.success());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let r = start(&["sleep", "1000"], |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    let (mem_file, pids_file) = if v2() {
        ("memory.max", "pids.max")
    } else {
        ("memory.limit_in_bytes", "pids.max")
    };
    assert_eq!(
        read(cg_dir("memory", &r.cg).join(mem_file)),
        (64u64 << 20).to_string()
    );
    let o =
        r.rt.run(&["update", "--memory", "128m", "--pids-limit", "20", &r.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read(cg_dir("memory", &r.cg).join(mem_file)),
        (128u64 << 20).to_string()
    );
    assert_eq!(read(cg_dir("pids", &r.cg).join(pids_file)), "20");
    // --resources - : JSON on stdin, as containerd sends it.
    let mut c = r.rt.cmd();
    c.args(["update", "--resources", "-", &r.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids":{"limit":7}}"#)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(cg_dir("pids", &r.cg).join(pids_file)), "7");
    // The memory limit set before is kept (only given fields change).
    assert_eq!(
        read(cg_dir("memory", &r.cg).join(mem_file)),
        (128u64 << 20).to_string()
    );
    // --memory-swap -1: unlimited swap (runc's flag semantics).
    let o = r.rt.run(&["update", "--memory-swap", "-1", &r.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let swap_file = if v2() {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    };
    let swap = read(cg_dir("memory", &r.cg).join(swap_file));
    assert!(
        swap == "max" || swap.parse::<u64>().unwrap_or(0) >= (1u64 << 62),
        "swap limit {swap}"
    );
    // Bad values are refused, naming the flag.
    let o = r.rt.run(&["update", "--memory", "lots", &r.id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    assert!(r.rt.run(&["delete", "-f", &r.id]).status.success());
}

/// `update --resources -` with `json` on stdin, as containerd's shim calls it.
fn update_stdin(rt: &Runtime, id: &str, json: &str) -> (bool, String) {
    let mut c = rt.cmd();
    c.args(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// containerd 1.6's UpdateContainerResources sends the container's whole
/// `linux.resources` (the CRI's memory/cpu values over its spec, whose device
/// rules are just `[{"allow":false,"access":"rwm"}]`); other callers send no
/// devices, `null` or `[]`. runc's `update` never touches device rules: the
/// container keeps /dev/null after every one of these, under both runtimes.
#[test]
fn update_keeps_the_device_rules_as_runc_does() {
    let mut rts = vec![Runtime::oxcart()];
    if runc_available() {
        rts.push(Runtime::runc());
    }
    let devices = [
        r#""devices":[{"allow":false,"access":"rwm"}],"#,
        r#""devices":null,"#,
        r#""devices":[],"#,
        "",
    ];
    for rt in &rts {
        let mut b = Bundle::new(&["sleep", "1000"]);
        let cg = b.own_cgroup("oxcart-test-upd-dev");
        b.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        b.write();
        let id = rt.run_detached(&b, "upd-dev");
        let dev_null = |when: &str| {
            let (code, _, err) = rt.exec(&[&id, "sh", "-c", "echo x > /dev/null"]);
            assert_eq!(code, 0, "{}: /dev/null {when}: {err}", rt.bin);
        };
        let list = || (!v2()).then(|| read(cg_dir("devices", &cg).join("devices.list")));
        dev_null("before any update");
        let before = list();
        for (i, d) in devices.iter().enumerate() {
            let limit = (128u64 + i as u64) << 20;
            let body = format!(
                r#"{{{d}"memory":{{"limit":{limit},"swap":{limit}}},"cpu":{{"shares":2,"quota":-1,"period":100000}},"hugepageLimits":[]}}"#
            );
            let (ok, err) = update_stdin(rt, &id, &body);
            assert!(ok, "{} update {body}: {err}", rt.bin);
            let mem_file = if v2() {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            assert_eq!(
                read(cg_dir("memory", &cg).join(mem_file)),
                limit.to_string(),
                "{}: {body}",
                rt.bin
            );
            dev_null(&format!("after update {body}"));
            assert_eq!(list(), before, "{}: device rules changed by {body}", rt.bin);
        }
        assert!(rt.run(&["delete", "-f", &id]).status.success());
        assert_no_cgroup_left(&cg, "update_keeps_the_device_rules_as_runc_does");
    }
}

#[test]
fn ps_and_events_stats() {
    let r = start(&["sleep", "1000"], |_| {});
    let pid = r.rt.state(&r.id)["pid"].as_i64().unwrap();
    let o = r.rt.run(&["ps", "--format", "json", &r.id]);
    let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    // `start` returns once init has been told to go, which can be before its
    // execve of `sleep 1000`: wait for the command line to show in the table.
    let mut t = String::new();
    wait_until(|| {
        t = stdout(&r.rt.run(&["ps", &r.id]));
        t.lines().skip(1).any(|l| l.contains("sleep 1000"))
    });
    assert!(t.lines().next().unwrap().contains("PID"), "{t}");
    assert!(t.lines().skip(1).any(|l| l.contains("sleep 1000")), "{t}");
    assert_eq!(t.lines().count(), 2, "{t}");
    let o = r.rt.run(&["events", "--stats", &r.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], Value::String(r.id.clone()));
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert!(r.rt.run(&["delete", "-f", &r.id]).status.success());
    let o = r.rt.run(&["events", "--stats", &r.id]);
    assert!(!o.status.success());
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let r = start(
        &[
            "sh",
            "-c",
            "(for i in $(seq 1 40); do sleep 30 & done) 2>/dev/null; sleep 1000",
        ],
        |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 10});
        },
    );
    // The fork loop is over once the shell has gone on to `sleep 1000` (forked or
    // exec'd: a process whose whole argv is that; the shell's own `-c` script
    // names it too, so not a substring of `ps`): wait for that rather than a fixed
    // sleep, checking the cap on every sample meanwhile.
    let mut n = 0;
    let done = wait_until(|| {
        let o = r.rt.run(&["ps", "--format", "json", &r.id]);
        assert!(o.status.success(), "{}", stderr(&o));
        let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
        n = pids.len();
        assert!(n <= 10, "{n} processes under pids.limit 10");
        pids.iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\0")
        })
    });
    assert!(done, "the fork loop did not finish within 10 s");
    let o = r.rt.run(&["ps", "--format", "json", &r.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        pids.len() <= 10 && pids.len() >= 2,
        "{} processes under pids.limit 10 (last sample {n})",
        pids.len()
    );
    assert!(r.rt.run(&["delete", "-f", &r.id]).status.success());
}

#[test]
fn oom_kill_is_reported_by_events() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "sleep 1; x=$(head -c 300000000 /dev/zero | tr '\\0' a); sleep 1000",
    ]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    b.write();
    let id = unique("oom");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    let mut ev = rt
        .cmd()
        .args(["events", "--interval", "1s", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ev.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_oom = false;
    while Instant::now() < deadline {
        let Some(Ok(l)) = lines.next() else { break };
        let v: Value = serde_json::from_str(&l).unwrap();
        if v["type"] == "oom" {
            saw_oom = true;
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    assert!(saw_oom, "no oom event within 30 s");
}

#[test]
fn ops_on_missing_or_stopped_containers() {
    let rt = Runtime::oxcart();
    for cmd in ["pause", "resume", "ps", "update"] {
        let o = rt.run(&[cmd, "nope"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("does not exist"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn unhonourable_resource_fails_create_naming_the_field() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    let cg = b.own_cgroup("oxcart-test-cpuset");
    b.config["linux"]["resources"]["cpu"] = json!({"cpus": "0-4095"});
    b.write();
    let id = unique("bad-res");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok);
    assert!(err.contains("linux.resources.cpu.cpus"), "{err}");
    assert!(!rt.root.join(&id).exists());
    for ctrl in ["cpuset", "memory", "pids"] {
        assert!(!cg_dir(ctrl, &cg).exists(), "{ctrl} cgroup left behind");
    }
}

#[test]
fn delete_force_of_a_paused_container() {
    let r = start(&["sleep", "1000"], |_| {});
    assert!(r.rt.run(&["pause", &r.id]).status.success());
    assert_eq!(r.rt.state(&r.id)["status"], "paused");
    let pid = r.rt.state(&r.id)["pid"].as_i64().unwrap();
    let o = r.rt.run(&["delete", "-f", &r.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!r.rt.root.join(&r.id).exists());
    for ctrl in ["freezer", "pids", "memory"] {
        assert!(!cg_dir(ctrl, &r.cg).exists(), "{ctrl} cgroup left behind");
    }
    let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    assert!(gone, "init {pid} still running after delete -f");
}

/// init joins its v1 cgroups itself and is cloned into its cgroup2 one
/// (oxcart_cgroups::join); an exec'd process the same way. Both must end up in
/// the container's cgroup in every hierarchy the host has.
#[test]
fn init_and_exec_are_in_the_container_cgroup_of_every_hierarchy() {
    let r = start(&["sleep", "1000"], |_| {});
    let init = r.rt.init_pid(&r.id);
    let (c, out, err) = r.rt.exec(&[&r.id, "cat", "/proc/self/cgroup"]);
    assert_eq!(c, 0, "{err}");
    let host = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(
        host.lines().count(),
        mine.lines().count(),
        "init is not in every hierarchy: {host}"
    );
    for l in host.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap();
        assert!(
            path.ends_with(&r.cg),
            "{l} is not the container's cgroup {}",
            r.cg
        );
        // The pid is really listed there, not just named by /proc.
        let ctrls = l.split(':').nth(1).unwrap();
        let dir = if ctrls.is_empty() {
            // The v2 hierarchy: /sys/fs/cgroup on a v2 host, .../unified on a hybrid one.
            let base = if v2() {
                "/sys/fs/cgroup"
            } else {
                "/sys/fs/cgroup/unified"
            };
            Path::new(base).join(path.trim_start_matches('/'))
        } else {
            let mount = ctrls.strip_prefix("name=").unwrap_or(ctrls);
            Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path.trim_start_matches('/'))
        };
        let procs = read(dir.join("cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == init.to_string()),
            "{init} not in {}: {procs}",
            dir.display()
        );
    }
    // Inside, the exec'd process sees the same cgroups as init: lines from the
    // container's own cgroup namespace view, one per hierarchy.
    let inside = r.rt.exec(&[&r.id, "cat", "/proc/1/cgroup"]).1;
    assert_eq!(out, inside, "exec'd process and init differ");
    assert!(r.rt.run(&["delete", "-f", &r.id]).status.success());
}

/// A v1 cgroup the process cannot join (cpuset with no cpus: the kernel refuses
/// any task, ENOSPC) makes create fail with the file named, and nothing of the
/// container is left behind.
#[test]
fn a_v1_cgroup_that_refuses_the_join_is_an_error_leaving_nothing() {
    if v2() {
        // No v1 cpuset on a pure v2 host; the v2 side (CLONE_INTO_CGROUP) fails
        // in the kernel's fork path, covered by the lifecycle tests' bad input.
        eprintln!("v1 only: skipped on a pure v2 host");
        return;
    }
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if !cpuset.is_dir() {
        eprintln!("no v1 cpuset hierarchy: skipped");
        return;
    }
    let name = unique("oxcart-test-emptycpus");
    let dir = cpuset.join(&name);
    // Made by the test, so its cpuset.cpus stays empty (cgroup.clone_children is
    // 0). It is the container's cgroup all the same, so a failed create removes
    // it, as runc's does (its manager's Destroy on the error path).
    std::fs::create_dir(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    if !read(dir.join("cpuset.cpus")).is_empty() {
        eprintln!("cpuset.cpus inherited by the host's settings: skipped");
        return;
    }
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    b.write();
    let id = unique("join");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(!ok, "create joined a cpuset cgroup without cpus");
    assert!(
        err.contains(&format!("{}", dir.join("tasks").display())),
        "error does not name the tasks file: {err}"
    );
    assert!(!rt.root.join(&id).exists(), "state directory left behind");
    // The container's directories in every hierarchy are gone again.
    assert!(!Path::new("/sys/fs/cgroup/pids").join(&name).exists());
    assert!(!Path::new("/sys/fs/cgroup/freezer").join(&name).exists());
    assert!(!dir.exists());
}
