//! Hooks on real containers (runtime-spec config.md "POSIX-platform Hooks"): each
//! kind at its point of the lifecycle, in order, with the state on stdin, in the
//! right namespaces; failures before start fail create and leave nothing behind.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A hook that saves its stdin as `<dir>/<kind>.json`, appends `<kind> <mnt ns>` to
/// `<dir>/order`, and records `$0 $HOOKVAR` to `<dir>/<kind>.env`. `dir` is as the
/// hook sees it (inside the container for startContainer).
fn marker(kind: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c",
            format!("cat > {dir}/{kind}.json; echo \"{kind} $(readlink /proc/self/ns/mnt)\" >> {dir}/order; echo \"$0 $HOOKVAR\" > {dir}/{kind}.env"),
            format!("argv0-{kind}")],
        "env": ["HOOKVAR=v-{kind}".replace("{kind}", kind), "PATH=/bin:/usr/bin"]
    })
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn every_hook_kind_runs_in_order_with_state() {
    let rt = Runtime::oxcart();
    let out = Dir(tmp().join(unique("hooks-out")));
    std::fs::create_dir_all(&out.0).unwrap();
    let host = out.0.display().to_string();
    let mut b = Bundle::new(&["sleep", "1000"]);
    // The startContainer hook runs inside the container: give it the same directory.
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hookout", "type": "bind", "source": host, "options": ["rbind", "rw"]
    }));
    b.config["annotations"] = json!({"org.example.k": "v"});
    let mut hooks = serde_json::Map::new();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        hooks.insert(kind.into(), json!([marker(kind, &host)]));
    }
    hooks.insert(
        "startContainer".into(),
        json!([marker("startContainer", "/hookout")]),
    );
    b.config["hooks"] = Value::Object(hooks);
    b.write();

    let id = unique("hk");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "create: {err}");
    let init = rt.init_pid(&id);
    let order = || std::fs::read_to_string(out.0.join("order")).unwrap_or_default();
    let kinds = |o: &str| {
        o.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&order()),
        ["prestart", "createRuntime", "createContainer"]
    );
    let o = rt.run(&["start", &id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    assert_eq!(
        kinds(&order()),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ]
    );
    assert!(rt.run(&["kill", &id, "KILL"]).status.success());
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    let o = rt.run(&["delete", &id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    let all = order();
    assert_eq!(
        kinds(&all),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );

    // Namespaces: runtime hooks in ours, container hooks in the container's.
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .display()
        .to_string();
    for l in all.lines() {
        let (kind, mnt) = l.split_once(' ').unwrap();
        let inside = kind == "createContainer" || kind == "startContainer";
        assert_eq!(mnt != host_mnt, inside, "{kind} ran in mnt {mnt}");
    }

    // The state on stdin: status and pid as the spec and runc give them.
    let bundle = b.dir.display().to_string();
    for (kind, status, pid) in [
        ("prestart", "creating", init),
        ("createRuntime", "creating", init),
        ("createContainer", "creating", 1),
        ("startContainer", "created", 1),
        ("poststart", "running", init),
        ("poststop", "stopped", init),
    ] {
        let s = read_json(&out.0.join(format!("{kind}.json")));
        assert_eq!(s["status"], status, "{kind}: {s}");
        assert_eq!(s["pid"], pid, "{kind}: {s}");
        assert_eq!(s["id"], Value::String(id.clone()), "{kind}: {s}");
        assert_eq!(s["bundle"], Value::String(bundle.clone()), "{kind}: {s}");
        assert_eq!(s["annotations"]["org.example.k"], "v", "{kind}: {s}");
        assert!(s["ociVersion"].is_string(), "{kind}: {s}");
        // args[0] is argv[0]; env is exactly the hook's.
        let env = std::fs::read_to_string(out.0.join(format!("{kind}.env"))).unwrap();
        assert_eq!(env.trim(), format!("argv0-{kind} v-{kind}"));
    }
}

fn create_fails(rt: &Runtime, b: &mut Bundle, hooks: Value, want: &str) {
    let cg = unique("oxcart-test-hookfail");
    b.config["linux"]["cgroupsPath"] = json!(format!("/{cg}"));
    b.config["hooks"] = hooks;
    b.write();
    let id = unique("hkf");
    let (ok, err) = rt.detached(&["create"], b, &id);
    assert!(!ok, "create with failing hooks succeeded");
    assert!(err.contains(want), "want {want:?} in {err:?}");
    assert!(!rt.root.join(&id).exists(), "state dir left behind");
    assert_no_cgroup_left(&cg, "hooks");
}

#[test]
fn failing_or_missing_hooks_fail_create_and_leave_nothing() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    create_fails(
        &rt,
        &mut b,
        json!({"prestart": [{"path": "/no/such/hook"}]}),
        "error running prestart hook #0: fork/exec /no/such/hook: no such file or directory",
    );
    create_fails(
        &rt,
        &mut b,
        json!({"createRuntime": [
            {"path": "/bin/true"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo out-text; echo err-text >&2; exit 3"]}
        ]}),
        "error running createRuntime hook #1: exit status 3, stdout: out-text, stderr: err-text",
    );
    create_fails(
        &rt,
        &mut b,
        json!({"createContainer": [{"path": "/bin/false"}]}),
        "error running createContainer hook #0: exit status 1",
    );
    create_fails(
        &rt,
        &mut b,
        json!({"prestart": [{"path": "relative/hook"}]}),
        "hooks.prestart[0].path",
    );
    create_fails(
        &rt,
        &mut b,
        json!({"prestart": [{"path": "/bin/true", "timeout": 0}]}),
        "hooks.prestart[0].timeout",
    );
}

#[test]
fn hook_timeout_kills_the_hook() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    // A unique duration marks the hook's process so the test can look for it.
    let marker = format!(
        "1000.{}{}",
        std::process::id(),
        unique("x").rsplit('-').next().unwrap()
    );
    let hooks = json!({"prestart": [{"path": "/bin/sleep",
        "args": ["sleep", marker], "timeout": 1}]});
    create_fails(
        &rt,
        &mut b,
        hooks,
        "hook ran past specified timeout of 1.0s",
    );
    let alive = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).contains(&marker));
    assert!(!alive, "the timed-out hook is still running");
}

#[test]
fn failing_poststart_and_poststop_hooks_do_not_fail() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["hooks"] = json!({
        "poststart": [{"path": "/bin/false"}],
        "poststop": [{"path": "/no/such/hook"}]
    });
    b.write();
    let id = rt.run_detached(&b, "hkw");
    assert_eq!(rt.state(&id)["status"], "running");
    let o = rt.run(&["delete", "-f", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!rt.root.join(&id).exists());
}

#[test]
fn failing_start_container_hook_fails_start() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    // Inside the container after pivot_root: busybox's false.
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    b.write();
    let id = unique("hks");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "create: {err}");
    let o = rt.run(&["start", &id]);
    assert!(!o.status.success(), "start succeeded despite the hook");
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
}

#[test]
fn poststart_and_poststop_hooks_can_query_the_runtime() {
    // Hooks that call back into the runtime must not wait for the lock of the
    // command that runs them (the timeout turns a deadlock into a failure here).
    let rt = Runtime::oxcart();
    let out = Dir(tmp().join(unique("hooks-state")));
    std::fs::create_dir_all(&out.0).unwrap();
    let id = unique("hkq");
    let query = |kind: &str| {
        json!({"path": "/bin/sh", "timeout": 20, "args": ["sh", "-c", format!(
            "{} --root {} state {id} > {}/{kind} 2>&1; true",
            oxcart(), rt.root.display(), out.0.display())]})
    };
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["hooks"] = json!({"poststart": [query("poststart")], "poststop": [query("poststop")]});
    b.write();
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    assert!(ok, "{err}");
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(out.0.join("poststart")).unwrap()).unwrap();
    assert_eq!(st["status"], "running");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    let after = std::fs::read_to_string(out.0.join("poststop")).unwrap();
    assert!(after.contains("does not exist"), "{after}");
}
