//! AppArmor profiles: `process.apparmorProfile` at create/run, and for `exec`
//! (inherited from the container's process, `--apparmor`, a `--process` file's
//! `apparmorProfile`). Where the host runs AppArmor with the v2 lane's test
//! profiles loaded (`tests/v2-lane/run.sh --apparmor`, profiles in
//! tests/v2-lane/apparmor/oxcart-test), profiles must be applied and enforced;
//! a profile that is not loaded fails naming the field. Without AppArmor (our
//! Debian hosts), asking for a profile is an error naming the field, as in runc,
//! and nothing is left behind. Run as root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::json;

/// The lane's test profiles. Each denies reads and writes of one file at the
/// container's root (DENIED resp. DENIED_EXEC) and allows everything else.
const PROFILE: &str = "oxcart-test";
const EXEC_PROFILE: &str = "oxcart-test-exec";
const NOT_LOADED: &str = "oxcart-no-such-profile";
const DENIED: &str = "/oxcart-aa-denied";
const DENIED_EXEC: &str = "/oxcart-aa-denied-exec";
const ALLOWED: &str = "/oxcart-aa-allowed";

/// AppArmor is the running LSM, as the runtime decides it (the module parameter;
/// `N` where the kernel booted another LSM).
fn apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

/// The test profiles are loaded (securityfs lists "<name> (<mode>)" per line). In
/// the lane's AppArmor run they must be: a guest that failed to load them must not
/// turn these tests into error-path checks and pass.
fn profiles_loaded() -> bool {
    let profiles =
        std::fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap_or_default();
    let has = |name: &str| {
        profiles
            .lines()
            .any(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(" (")))
    };
    let on = apparmor() && has(PROFILE) && has(EXEC_PROFILE);
    if std::env::var_os("OXCART_V2_LANE_APPARMOR").is_some() {
        assert!(apparmor(), "the v2 lane's AppArmor run has no AppArmor");
        assert!(
            on,
            "the v2 lane's AppArmor run lacks the test profiles: {profiles}"
        );
    }
    on
}

/// A bundle whose container sees three files at its root, bind-mounted from the
/// bundle dir, each holding its own name.
fn bundle(args: &[&str], profile: Option<&str>) -> Bundle {
    let mut b = Bundle::new(args);
    for f in [DENIED, DENIED_EXEC, ALLOWED] {
        let src = b.dir.join(f.trim_start_matches('/'));
        std::fs::write(&src, format!("content of {f}\n")).unwrap();
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": f, "type": "bind", "source": src, "options": ["bind", "ro"]
        }));
    }
    if let Some(p) = profile {
        b.config["process"]["apparmorProfile"] = json!(p);
    }
    b.write();
    b
}

/// Prints the confinement, then tries each file; denials show as "Permission denied".
const PROBE: &str = "cat /proc/self/attr/current; \
    for f in /oxcart-aa-allowed /oxcart-aa-denied /oxcart-aa-denied-exec; do cat $f 2>&1; done; true";

/// What PROBE printed, checked against the profile that should confine it.
fn check_probe(out: &str, profile: &str, denied: &str) {
    let mut lines = out.lines();
    assert_eq!(
        lines.next().map(|l| l.trim_end_matches('\0')),
        Some(format!("{profile} (enforce)").as_str()),
        "{out}"
    );
    assert!(out.contains(&format!("content of {ALLOWED}")), "{out}");
    for f in [DENIED, DENIED_EXEC] {
        if f == denied {
            assert!(
                !out.contains(&format!("content of {f}\n")),
                "{f} read under {profile}: {out}"
            );
            assert!(
                out.contains(&format!("can't open '{f}': Permission denied")),
                "{out}"
            );
        } else {
            assert!(
                out.contains(&format!("content of {f}\n")),
                "{f} not read under {profile}: {out}"
            );
        }
    }
}

/// How many processes share the pid namespace of `pid` (itself included).
fn pids_in_pidns_of(pid: i64) -> usize {
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read_link(e.path().join("ns/pid")).ok().as_ref() == Some(&ns))
        .count()
}

#[test]
fn profile_is_applied_at_create() {
    if !profiles_loaded() {
        eprintln!("profile_is_applied_at_create: skipped: no AppArmor or no test profiles (the error paths are checked by the other tests)");
        return;
    }
    let rt = Runtime::oxcart();
    // Foreground: the container's own view, and the profile enforced.
    let b = bundle(&["sh", "-c", PROBE], Some(PROFILE));
    let (code, out, err) = rt.run_bundle(&b);
    assert_eq!(code, 0, "{err}");
    check_probe(&out, PROFILE, DENIED);
    // Detached: the kernel's view of init (proc(5) attr/current), which the
    // profile confined from its execve on.
    let b = bundle(&["sleep", "1000"], Some(PROFILE));
    let id = rt.run_detached(&b, "aa");
    let pid = rt.init_pid(&id);
    let cur = std::fs::read_to_string(format!("/proc/{pid}/attr/apparmor/current")).unwrap();
    assert_eq!(cur.trim_end(), format!("{PROFILE} (enforce)"));
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    // Without a profile the container runs unconfined (runc applies nothing).
    let b = bundle(&["cat", "/proc/self/attr/current"], None);
    let (code, out, err) = rt.run_bundle(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), "unconfined");
}

#[test]
fn exec_takes_the_container_profile_or_its_own() {
    let rt = Runtime::oxcart();
    let loaded = profiles_loaded();
    let b = bundle(&["sleep", "1000"], loaded.then_some(PROFILE));
    let id = rt.run_detached(&b, "aax");
    let init = rt.init_pid(&id);
    if !apparmor() {
        // runc fails too (its attribute write is refused): the field named,
        // and no process started.
        let (c, _, err) = rt.exec(&["--apparmor", EXEC_PROFILE, &id, "true"]);
        assert_eq!(c, 255);
        assert!(err.contains("process.apparmorProfile"), "{err}");
        assert!(err.contains("AppArmor is not enabled"), "{err}");
        assert!(err.contains(EXEC_PROFILE), "{err}");
        assert_eq!(pids_in_pidns_of(init), 1, "exec left a process behind");
        assert!(rt.run(&["delete", "-f", &id]).status.success());
        return;
    }
    if loaded {
        // runc getProcess: an exec without --apparmor runs with the container's
        // profile (it is a process of the container; the runtime is unconfined).
        let (c, out, err) = rt.exec(&[&id, "sh", "-c", PROBE]);
        assert_eq!(c, 0, "{err}");
        check_probe(&out, PROFILE, DENIED);
        // --apparmor overrides it.
        let (c, out, err) = rt.exec(&["--apparmor", EXEC_PROFILE, &id, "sh", "-c", PROBE]);
        assert_eq!(c, 0, "{err}");
        check_probe(&out, EXEC_PROFILE, DENIED_EXEC);
        // So does apparmorProfile in a --process file.
        let pf = b.dir.join("exec-process.json");
        let mut p = b.config["process"].clone();
        p["args"] = json!(["sh", "-c", PROBE]);
        p["apparmorProfile"] = json!(EXEC_PROFILE);
        std::fs::write(&pf, serde_json::to_vec(&p).unwrap()).unwrap();
        let (c, out, err) = rt.exec(&["--process", pf.to_str().unwrap(), &id]);
        assert_eq!(c, 0, "{err}");
        check_probe(&out, EXEC_PROFILE, DENIED_EXEC);
    } else {
        eprintln!("exec_takes_the_container_profile_or_its_own: AppArmor without the test profiles: only the unloaded-profile error is checked");
    }
    // A profile that is not loaded: the kernel refuses the write (ENOENT); an
    // error naming the field and the profile, and no process was left.
    let (c, _, err) = rt.exec(&["--apparmor", NOT_LOADED, &id, "true"]);
    assert_eq!(c, 255, "{err}");
    assert!(err.contains("process.apparmorProfile"), "{err}");
    assert!(err.contains(NOT_LOADED), "{err}");
    assert!(err.contains("no profile of that name is loaded"), "{err}");
    assert_eq!(pids_in_pidns_of(init), 1, "exec left a process behind");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn unusable_profile_fails_create_naming_the_field_and_leaves_nothing() {
    // Without AppArmor any profile is unusable; with it, one that is not loaded.
    let rt = Runtime::oxcart();
    let on = apparmor();
    let mut b = bundle(&["true"], Some(NOT_LOADED));
    let cg = b.own_cgroup("oxcart-test-aa");
    b.write();
    let id = unique("aabad");
    let mut c = rt.cmd();
    c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
    let (ok, err) = status_err(c);
    assert!(!ok, "apparmorProfile {NOT_LOADED:?} accepted");
    assert!(err.contains("process.apparmorProfile"), "{err}");
    assert!(err.contains(NOT_LOADED), "{err}");
    if on {
        assert!(err.contains("no profile of that name is loaded"), "{err}");
    } else {
        assert!(
            err.contains("AppArmor is not enabled on this host"),
            "{err}"
        );
    }
    assert!(!rt.root.join(&id).exists(), "state left behind for {id}");
    assert_no_cgroup_left(&cg, "apparmor");
}

#[test]
fn features_report_apparmor_support() {
    // features-linux.md: the runtime's support, irrelevant to the host's (runc
    // reports true everywhere); the tests above check what that means per host.
    let out = Runtime::oxcart().run(&["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["linux"]["apparmor"]["enabled"], json!(true));
}
