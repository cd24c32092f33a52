//! `create` SIGKILLed at several points (the CRI suite's `killed_runtime`, made
//! deterministic): no process of the container may outlive it, and `delete -f`
//! must succeed and leave no cgroup and no state directory. The points are held
//! from outside, with no hook in the runtime: strace stops it at a syscall
//! (`inject=…:delay_enter`, as the recipe in docs/kubernetes.md), or a hook of
//! the container's config blocks it. Needs root, busybox-static and strace.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    /// Entering the clone3 of init: the cgroups exist, init does not.
    Clone,
    /// In a createRuntime hook, run by `create`: init waits for it mid-setup.
    ParentHook,
    /// In a createContainer hook, run by init: init is busy, not reading its
    /// channel to the parent.
    InitHook,
    /// Renaming `state.json` into place: init is set up and waits for it
    /// before it reports ready.
    StateJson,
    /// Renaming the pid file into place (the second rename): init has reported
    /// ready and is recorded, so it waits for `start` and `delete -f` kills it,
    /// as with runc once its state is written.
    PidFile,
}

/// x86_64 syscall numbers, as /proc/<pid>/syscall shows them.
const CLONE3: &str = "435";
const RENAMES: [&str; 3] = ["82", "264", "316"];

fn syscall_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .unwrap_or_default()
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Field 22 of /proc/<pid>/stat (start time), None once gone or a zombie.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[0] != "Z" && f[0] != "X").then(|| f[19].to_string())
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].split(' ').nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Every process in the container's cgroup, in any hierarchy, with its start time.
fn procs(cg: &str) -> Vec<(i32, String)> {
    let mut out: Vec<(i32, String)> = cgroup_roots()
        .into_iter()
        .filter_map(|r| {
            std::fs::read_to_string(r.join(cg.trim_start_matches('/')).join("cgroup.procs")).ok()
        })
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter_map(|p| start_time(p).map(|s| (p, s)))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn alive((pid, st): &(i32, String)) -> bool {
    start_time(*pid).as_ref() == Some(st)
}

/// A hook that marks that it runs (its pid, as it sees it) and then blocks.
fn blocking_hook(mark: &Path) -> serde_json::Value {
    json!([{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 600", mark.display())],
    }])
}

/// The runtime's pid: the child itself, or strace's child once it runs the
/// runtime (strace forks short-lived children of its own first, to probe
/// ptrace's features).
fn runtime_pid(child: &Child, traced: bool) -> i32 {
    let pid = child.id() as i32;
    if !traced {
        return pid;
    }
    let mut rt = 0;
    assert!(
        wait_until(|| {
            rt = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "oxcart-runtime")
                })
                .unwrap_or(0);
            rt > 0
        }),
        "strace started no runtime"
    );
    rt
}

fn kill_create_at(point: Point) {
    let traced = matches!(point, Point::Clone | Point::StateJson | Point::PidFile);
    if traced && skip_in_v2_lane("kill_create_at", "the lane's guest has no strace") {
        return;
    }
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    let cg = b.own_cgroup("killed-create");
    let mark = tmp().join(unique("hook-mark"));
    match point {
        Point::ParentHook => b.config["hooks"]["createRuntime"] = blocking_hook(&mark),
        Point::InitHook => b.config["hooks"]["createContainer"] = blocking_hook(&mark),
        _ => {}
    }
    b.write();
    let id = unique("killed");
    let errf = tmp().join(unique("killed-stderr"));
    // strace stops the runtime on entering the syscall for a minute; it is
    // SIGKILLed there. Only the runtime is traced (no -f), never init.
    let mut c = if traced {
        let (sys, when) = match point {
            Point::Clone => ("clone3", 1),
            Point::StateJson => ("rename,renameat,renameat2", 1),
            _ => ("rename,renameat,renameat2", 2),
        };
        let mut c = Command::new("strace");
        c.args(["-qq", "-o", "/dev/null", "-e", &format!("trace={sys}")])
            .arg("-e")
            .arg(format!("inject={sys}:delay_enter=60000000:when={when}"))
            .arg(oxcart());
        c
    } else {
        Command::new(oxcart())
    };
    let pid_file = tmp().join(unique("killed-pid"));
    c.arg("--root")
        .arg(&rt.root)
        .arg("create")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap());
    let mut child = c.spawn().unwrap();
    let pid = runtime_pid(&child, traced);
    let tmp_state = rt.root.join(&id).join(format!(".state.json.tmp{pid}"));
    let tmp_pid = pid_file.parent().unwrap().join(format!(
        ".{}.tmp{pid}",
        pid_file.file_name().unwrap().to_string_lossy()
    ));
    let reached = wait_until(|| match point {
        Point::Clone => syscall_of(pid) == CLONE3,
        Point::StateJson => tmp_state.exists() && RENAMES.contains(&syscall_of(pid).as_str()),
        Point::PidFile => tmp_pid.exists() && RENAMES.contains(&syscall_of(pid).as_str()),
        Point::ParentHook | Point::InitHook => mark.exists(),
    });
    let at = syscall_of(pid);
    let before = procs(&cg);
    let init = before.iter().find(|p| ppid(p.0) == pid).cloned();
    // SAFETY: signalling the runtime this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    if traced {
        // A tracee held in a ptrace stop acts on SIGKILL only once let go: end
        // strace (our child) too. The runtime then dies before its syscall runs
        // (the kernel skips a syscall entered with a fatal signal pending).
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    }
    let _ = child.wait();
    if point == Point::ParentHook {
        // The createRuntime hook is a host process of the killed runtime, not
        // the container's (runc leaves it the same way); it is ours to end.
        if let Some(h) = std::fs::read_to_string(&mark)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: signalling the hook this test's runtime started.
            unsafe { libc::kill(h, libc::SIGKILL) };
        }
    }
    assert!(
        wait_until(|| start_time(pid).is_none()),
        "runtime {pid} survived SIGKILL"
    );
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let _ = std::fs::remove_file(&errf);
    assert!(
        reached,
        "{point:?}: create never got there (in syscall {at}): {err}"
    );
    assert_eq!(
        init.is_none(),
        point == Point::Clone,
        "{point:?}: {before:?}"
    );
    if point == Point::PidFile {
        let st = rt.state(&id);
        assert_eq!(st["status"], "created", "{point:?}: {st}");
    } else if let Some(init) = &init {
        // Unrecorded, init goes by itself, before any delete.
        assert!(
            wait_until(|| !alive(init)),
            "{point:?}: init {} outlived its killed create",
            init.0
        );
    }
    let out = rt.run(&["delete", "-f", &id]);
    assert!(
        out.status.success(),
        "{point:?}: delete -f: {}",
        stderr(&out)
    );
    for p in &before {
        assert!(!alive(p), "{point:?}: {} of the container left", p.0);
    }
    assert_no_cgroup_left(&cg, &format!("{point:?}: delete -f"));
    assert!(!rt.root.join(&id).exists(), "{point:?}: state dir left");
    // Idempotent, as for any container that does not exist.
    let out = rt.run(&["delete", "-f", &id]);
    assert!(
        out.status.success(),
        "{point:?}: second delete -f: {}",
        stderr(&out)
    );
    let _ = std::fs::remove_file(&mark);
    let _ = std::fs::remove_file(&tmp_pid);
}

#[test]
fn killed_entering_the_clone_of_init() {
    kill_create_at(Point::Clone);
}

#[test]
fn killed_in_a_create_runtime_hook() {
    kill_create_at(Point::ParentHook);
}

#[test]
fn killed_while_init_runs_a_create_container_hook() {
    kill_create_at(Point::InitHook);
}

#[test]
fn killed_writing_state_json() {
    kill_create_at(Point::StateJson);
}

#[test]
fn killed_after_ready_writing_the_pid_file() {
    kill_create_at(Point::PidFile);
}
