//! SELinux labels: `process.selinuxLabel` (create/run and exec, `--process-label`)
//! and `linux.mountLabel`. Where the host has SELinux with a policy loaded (the v2
//! lane's SELinux run: `tests/v2-lane/run.sh --selinux enforcing`, with the policy
//! of tests/v2-lane/selinux/policy.conf), labels must be applied; elsewhere (our
//! Debian hosts) runc's rules hold: a process label is an error naming the field,
//! a mount label is dropped. Run as root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::json;
use std::path::Path;

/// Contexts the lane's test policy defines (MCS pairs, as podman allocates them).
const PROC_LABEL: &str = "system_u:system_r:container_t:s0:c1,c2";
const EXEC_LABEL: &str = "system_u:system_r:container_t:s0:c3,c4";
const FILE_LABEL: &str = "system_u:object_r:container_file_t:s0:c1,c2";
/// Well-formed, but no policy has the type.
const BAD_PROC_LABEL: &str = "system_u:system_r:oxcart_no_such_t:s0";
const BAD_FILE_LABEL: &str = "system_u:object_r:oxcart_no_such_t:s0";

/// True where SELinux is on, as the runtime decides it (selinuxfs mounted). In the
/// lane's SELinux run it must be: a guest that failed to load the policy must not
/// turn these tests into runc's error-path checks and pass.
fn selinux() -> bool {
    let on = Path::new("/sys/fs/selinux/enforce").exists();
    if std::env::var_os("OXCART_V2_LANE_SELINUX").is_some() {
        assert!(
            on,
            "the v2 lane's SELinux run has no /sys/fs/selinux/enforce"
        );
    }
    on
}

/// A context as the kernel prints it (NUL-terminated, in /proc and xattrs).
fn context(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim_end_matches(['\0', '\n'])
        .to_string()
}

fn xattr(path: &str) -> Option<String> {
    let p = std::ffi::CString::new(path).unwrap();
    let name = c"security.selinux";
    let mut buf = vec![0u8; 512];
    // SAFETY: valid C strings and a live buffer of that length.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| context(&buf[..n as usize]))
}

/// Super options (the field after the fs type and source) of the mount at `dest`
/// in /proc/<pid>/mountinfo.
fn super_options(pid: i64, dest: &str) -> Option<String> {
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    // The last one at that path is the one on top.
    mi.lines()
        .rfind(|l| l.split(' ').nth(4) == Some(dest))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|t| t.split(' ').nth(2))
        .map(str::to_string)
}

/// The SELinux context of a process's session keyring (keyctl(2)
/// KEYCTL_GET_SECURITY), found by its name `_ses.<id>` in /proc/keys.
fn session_keyring_label(id: &str) -> Option<String> {
    const KEYCTL_GET_SECURITY: libc::c_long = 17;
    let keys = std::fs::read_to_string("/proc/keys").ok()?;
    let name = format!("_ses.{id}:");
    let line = keys
        .lines()
        .find(|l| l.contains(" keyring ") && l.contains(&name))?;
    let serial = i64::from_str_radix(line.split_whitespace().next()?, 16).ok()?;
    let mut buf = vec![0u8; 512];
    // SAFETY: keyctl with a key serial and a live buffer of that length.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_SECURITY,
            serial,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    (n > 0).then(|| context(&buf[..(n as usize).min(buf.len())]))
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
fn process_label_is_applied_at_create() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/attr/current; echo; exec sleep 1000",
    ]);
    b.config["process"]["selinuxLabel"] = json!(PROC_LABEL);
    b.write();
    let id = unique("sel");
    let (ok, err) = rt.detached(&["run", "-d"], &b, &id);
    if !selinux() {
        // runc's validateSELinux, with the field named; nothing left behind.
        assert!(
            !ok,
            "a process label was accepted on a host without SELinux"
        );
        assert!(err.contains("process.selinuxLabel"), "{err}");
        assert!(
            err.contains("SELinux is disabled or not supported"),
            "{err}"
        );
        assert!(!rt.root.join(&id).exists());
        return;
    }
    assert!(ok, "run -d with selinuxLabel: {err}");
    let pid = rt.init_pid(&id);
    // The kernel's view of init, which execve'd with the label (proc(5) attr/current).
    let cur = context(&std::fs::read(format!("/proc/{pid}/attr/current")).unwrap());
    assert_eq!(cur, PROC_LABEL);
    // runc's SetKeyLabel: the session keyring init made carries the label too.
    assert_eq!(session_keyring_label(&id).as_deref(), Some(PROC_LABEL));
    assert!(rt.run(&["delete", "-f", &id]).status.success());

    // Foreground run: the container's own view of itself.
    let b2 = {
        let mut b2 = Bundle::new(&["cat", "/proc/self/attr/current"]);
        b2.config["process"]["selinuxLabel"] = json!(PROC_LABEL);
        b2.write();
        b2
    };
    let (code, out, err) = rt.run_bundle(&b2);
    assert_eq!(code, 0, "{err}");
    assert_eq!(context(out.as_bytes()), PROC_LABEL);
}

#[test]
fn exec_takes_the_container_label_or_its_own() {
    let rt = Runtime::oxcart();
    let on = selinux();
    let mut b = Bundle::new(&["sleep", "1000"]);
    if on {
        b.config["process"]["selinuxLabel"] = json!(PROC_LABEL);
        b.write();
    }
    let id = rt.run_detached(&b, "selx");
    if !on {
        let (c, _, err) = rt.exec(&["--process-label", EXEC_LABEL, &id, "true"]);
        assert_eq!(c, 255);
        assert!(err.contains("process.selinuxLabel"), "{err}");
        assert!(err.contains("SELinux is disabled"), "{err}");
        assert!(rt.run(&["delete", "-f", &id]).status.success());
        return;
    }
    // runc getProcess: an exec without a label runs with the container's.
    let (c, out, err) = rt.exec(&[&id, "cat", "/proc/self/attr/current"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(context(out.as_bytes()), PROC_LABEL);
    // --process-label overrides it.
    let (c, out, err) = rt.exec(&[
        "--process-label",
        EXEC_LABEL,
        &id,
        "cat",
        "/proc/self/attr/current",
    ]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(context(out.as_bytes()), EXEC_LABEL);
    // So does process.selinuxLabel in a --process file.
    let pf = b.dir.join("exec-process.json");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["cat", "/proc/self/attr/current"]);
    p["selinuxLabel"] = json!(EXEC_LABEL);
    std::fs::write(&pf, serde_json::to_vec(&p).unwrap()).unwrap();
    let (c, out, err) = rt.exec(&["--process", pf.to_str().unwrap(), &id]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(context(out.as_bytes()), EXEC_LABEL);
    // A label the policy lacks: an error naming the field and the label, and no
    // process was started.
    let (c, _, err) = rt.exec(&["--process-label", BAD_PROC_LABEL, &id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("process.selinuxLabel"), "{err}");
    assert!(err.contains(BAD_PROC_LABEL), "{err}");
    assert_eq!(
        pids_in_pidns_of(rt.init_pid(&id)),
        1,
        "exec left a process behind"
    );
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn mount_label_is_the_context_of_the_containers_mounts() {
    let rt = Runtime::oxcart();
    let on = selinux();
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["linux"]["mountLabel"] = json!(FILE_LABEL);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=755", "size=1m"]}),
    );
    if on {
        // A mount that names its own context keeps it (tmpfs without SELinux
        // refuses the option, so only where SELinux is on).
        mounts.push(
            json!({"destination": "/own", "type": "tmpfs", "source": "tmpfs",
            "options": ["context=\"system_u:object_r:container_file_t:s0:c5,c6\""]}),
        );
    }
    b.write();
    let id = rt.run_detached(&b, "selm");
    let pid = rt.init_pid(&id);
    let opts =
        |dest: &str| super_options(pid, dest).unwrap_or_else(|| panic!("no mount at {dest}"));
    let want = format!("context=\"{FILE_LABEL}\"");
    if !on {
        // runc's FormatMountLabel formats nothing without SELinux: dropped.
        for d in ["/dev", "/dev/shm", "/dev/pts", "/scratch"] {
            assert!(!opts(d).contains("context="), "{d}: {}", opts(d));
        }
        assert!(rt.run(&["delete", "-f", &id]).status.success());
        return;
    }
    // runc mountToRootfs: tmpfs and devpts mounts get context=; proc and sysfs do not.
    for d in ["/dev", "/dev/shm", "/dev/pts", "/scratch"] {
        assert!(opts(d).contains(&want), "{d}: {}", opts(d));
    }
    for d in ["/proc", "/sys"] {
        assert!(!opts(d).contains("context="), "{d}: {}", opts(d));
    }
    assert!(
        opts("/own").contains("context=\"system_u:object_r:container_file_t:s0:c5,c6\""),
        "{}",
        opts("/own")
    );
    // The label as files see it: the roots' security.selinux.
    assert_eq!(
        xattr(&format!("/proc/{pid}/root/scratch")).as_deref(),
        Some(FILE_LABEL)
    );
    assert_eq!(
        xattr(&format!("/proc/{pid}/root/dev/shm")).as_deref(),
        Some(FILE_LABEL)
    );
    // mqueue takes no context=: runc's SetFileLabel sets its root's xattr.
    assert_eq!(
        xattr(&format!("/proc/{pid}/root/dev/mqueue")).as_deref(),
        Some(FILE_LABEL)
    );
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn bad_labels_fail_naming_the_field_and_leave_nothing() {
    let rt = Runtime::oxcart();
    let on = selinux();
    let cases = [
        (
            "process",
            "selinuxLabel",
            BAD_PROC_LABEL,
            "process.selinuxLabel",
        ),
        ("linux", "mountLabel", BAD_FILE_LABEL, "linux.mountLabel"),
    ];
    for (obj, key, label, field) in cases {
        let mut b = Bundle::new(&["true"]);
        b.config[obj][key] = json!(label);
        b.write();
        let id = unique("selbad");
        let mut c = rt.cmd();
        c.args(["create", "--bundle"]).arg(&b.dir).arg(&id);
        let (ok, err) = status_err(c);
        if !on && field == "linux.mountLabel" {
            // Dropped without SELinux, as runc does: the container is created.
            assert!(ok, "{err}");
            assert!(rt.run(&["delete", "-f", &id]).status.success());
            continue;
        }
        assert!(!ok, "{field} {label:?} accepted");
        assert!(err.contains(field), "{err}");
        if on {
            assert!(err.contains(label), "{err}");
        }
        assert!(!rt.root.join(&id).exists(), "state left behind for {id}");
    }
}

#[test]
fn features_report_selinux_support_whatever_the_host() {
    // features-linux.md: "irrelevant to the availability of SELinux on the host".
    let out = Runtime::oxcart().run(&["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["linux"]["selinux"]["enabled"], json!(true));
}
