//! `exec` on real containers: namespaces, cgroup, security settings, runc's flags
//! and errors, compared with runc where it makes sense. Run as root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

fn ns_links(pid: &str) -> Vec<String> {
    ["ipc", "mnt", "net", "pid", "uts"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn exec_joins_namespaces_and_cgroup_and_returns_status() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "ex");
    let init = rt.init_pid(&id).to_string();

    // Same namespaces as init, seen from inside.
    let (c, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        "for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done",
    ]);
    assert_eq!(c, 0, "{err}");
    let inside: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(inside, ns_links(&init));
    assert_ne!(
        inside,
        ns_links("self"),
        "exec ran in the host's namespaces"
    );

    // Exit status is the command's, 128+signal when killed.
    assert_eq!(rt.exec(&[&id, "sh", "-c", "exit 7"]).0, 7);
    assert_eq!(rt.exec(&[&id, "sh", "-c", "kill -9 $$"]).0, 137);
    assert_eq!(rt.exec(&[&id, "true"]).0, 0);

    // -d --pid-file: the pid is written, the process runs in init's cgroups and pid
    // namespace, and exec returns 0 at once.
    let pf = b.dir.join("exec.pid");
    let (c, _, err) = rt.exec(&[
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert_eq!(c, 0, "{err}");
    let pid = std::fs::read_to_string(&pf).unwrap();
    assert!(pid.parse::<i32>().unwrap() > 0, "{pid:?}");
    let cg = |p: &str| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(&pid), cg(&init));
    assert_eq!(ns_links(&pid), ns_links(&init));
    // The exec'd process belongs to the container: delete -f takes it down too.
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    assert!(
        wait_until(|| !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)),
        "exec'd process {pid} survived delete -f"
    );
}

#[test]
fn exec_flags_env_cwd_user_cap() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "exf");
    let (c, out, err) = rt.exec(&[
        "--env",
        "FOO=bar baz",
        "-e",
        "SECOND=2",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        "--additional-gids",
        "5",
        "-g",
        "7",
        &id,
        "sh",
        "-c",
        "echo $FOO; echo $SECOND; pwd; id -u; id -g; id -G",
    ]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["bar baz", "2", "/tmp", "65534", "65534", "65534 5 7"],
        "{out}"
    );
    // --cap adds to the sets of a root process; without it the config's sets hold.
    let eff = |extra: &[&str]| {
        let mut a: Vec<&str> = extra.to_vec();
        a.extend([id.as_str(), "grep", "CapEff", "/proc/self/status"]);
        let (c, out, err) = rt.exec(&a);
        assert_eq!(c, 0, "{err}");
        u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let base = eff(&[]);
    let with = eff(&["--cap", "CAP_SYS_ADMIN"]);
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(base & CAP_SYS_ADMIN, 0);
    assert_eq!(with, base | CAP_SYS_ADMIN);
    // --no-new-privs.
    let (_, out, _) = rt.exec(&[
        "--no-new-privs",
        &id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(out.contains('1'), "{out}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_process_file_and_bad_input() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "exp");
    let pj = b.dir.join("process.json");
    std::fs::write(
        &pj,
        json!({"args": ["sh", "-c", "echo $A; pwd; id -u; exit 3"], "cwd": "/tmp",
               "env": ["A=from-file"], "user": {"uid": 65534, "gid": 65534}})
        .to_string(),
    )
    .unwrap();
    let (c, out, err) = rt.exec(&["--process", pj.to_str().unwrap(), &id]);
    assert_eq!(c, 3, "{err}");
    assert_eq!(out, "from-file\n/tmp\n65534\n");

    // A process.json that does not parse: the field is named, nothing runs.
    std::fs::write(&pj, r#"{"args": "sh", "cwd": "/"}"#).unwrap();
    let (c, _, err) = rt.exec(&["-p", pj.to_str().unwrap(), &id]);
    assert_eq!(c, 255, "{err}");
    assert!(err.contains("exec failed") && err.contains("args"), "{err}");
    let (c, _, err) = rt.exec(&["-p", "/no/such/process.json", &id]);
    assert_eq!(c, 255);
    assert!(err.contains("no such file or directory"), "{err}");
    std::fs::write(&pj, r#"{"args": ["true"], "cwd": "relative"}"#).unwrap();
    let (c, _, err) = rt.exec(&["-p", pj.to_str().unwrap(), &id]);
    assert_eq!(c, 255);
    assert!(err.contains("Cwd must be an absolute path"), "{err}");
    // runc's wording for a missing program, which podman maps to exit code 127.
    let (c, _, err) = rt.exec(&[&id, "nosuchcmd"]);
    assert_eq!(c, 255);
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let (c, _, err) = rt.exec(&[&id]);
    assert_ne!(c, 0);
    assert!(err.contains("args"), "{err}");
    // Security labels the host cannot apply fail, as in runc (this test assumes a
    // host without SELinux, like Debian's cloud images; skipped otherwise). exec's
    // --apparmor, refused or applied, is checked in tests/apparmor.rs.
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        let (c, _, err) = rt.exec(&["--process-label", "system_u:r:x", &id, "true"]);
        assert_eq!(c, 255);
        assert!(err.contains("SELinux is disabled"), "{err}");
    }
    // A terminal without a console socket when detached: runc's error.
    let (c, _, err) = rt.exec(&["-t", "-d", &id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("cannot allocate tty"), "{err}");
    // No process was left behind by the failures: only init in the container.
    let procs = container_pids(&rt, &id);
    assert_eq!(procs.len(), 1, "{procs:?}");

    // Into a stopped container.
    assert!(rt.run(&["kill", &id, "KILL"]).status.success());
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    let (c, _, err) = rt.exec(&[&id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("cannot exec in a stopped container"), "{err}");
    assert!(rt.run(&["delete", &id]).status.success());
    let (c, _, err) = rt.exec(&[&id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("does not exist"), "{err}");
    // containerd's shim reads the error from the JSON log: one object, runc's keys.
    let log = b.dir.join("exec-log.json");
    let mut cmd = rt.cmd();
    cmd.arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec", "--detach", &id, "true"]);
    let (c, _, _) = capture(cmd);
    assert_eq!(c, 255);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["msg"].as_str().unwrap().starts_with("exec failed: "),
        "{v}"
    );
}

/// Pids in the container's cgroup (the pids controller's, or the v2 directory).
fn container_pids(rt: &Runtime, id: &str) -> Vec<String> {
    let pid = rt.init_pid(id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let dir = cgroup_dir(&cg, "pids");
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The host directory of a process's cgroup for `controller` (v1), or its v2 one.
fn cgroup_dir(proc_cgroup: &str, controller: &str) -> PathBuf {
    for l in proc_cgroup.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
        }
    }
    let l = proc_cgroup.lines().find(|l| l.starts_with("0::")).unwrap();
    Path::new("/sys/fs/cgroup").join(l[3..].trim_start_matches('/'))
}

/// Thaws a frozen cgroup on drop, so a failed test never leaves it frozen.
struct Thaw(PathBuf, &'static str);
impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, self.1);
    }
}

#[test]
fn exec_into_paused_container() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "exz");
    let pid = rt.init_pid(&id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // Freeze through the cgroup itself (the pause command is not this test's subject).
    let v1 = cg.lines().any(|l| l.split(':').nth(1) == Some("freezer"));
    let (file, on, off) = if v1 {
        (
            cgroup_dir(&cg, "freezer").join("freezer.state"),
            "FROZEN",
            "THAWED",
        )
    } else {
        (cgroup_dir(&cg, "").join("cgroup.freeze"), "1", "0")
    };
    std::fs::write(&file, on).unwrap();
    let thaw = Thaw(file, off);
    assert!(wait_until(|| rt.state(&id)["status"] == "paused"));
    let (c, _, err) = rt.exec(&[&id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("cannot exec in a paused container"), "{err}");
    drop(thaw);
    assert!(wait_until(|| rt.state(&id)["status"] == "running"));
    assert_eq!(rt.exec(&[&id, "true"]).0, 0);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_preserve_fds_and_no_leaks() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "exfd");
    let f = tmp().join(unique("fd3"));
    std::fs::write(&f, "through-fd-3").unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut c = rt.cmd();
    c.args(["exec", "--preserve-fds", "1", &id, "sh", "-c"])
        .arg("ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3");
    // SAFETY: dup2 in the child before exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::fcntl(3, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let (code, out, err) = capture(c);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("0 1 2 3 "), "only 0-3 expected: {out}");
    assert!(out.ends_with("through-fd-3"), "{out}");
    // Without --preserve-fds, fd 3 does not reach the process.
    let (code, out, err) = rt.exec(&[&id, "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 1 2 3 ", "ls itself holds fd 3 for the directory");
    let _ = std::fs::remove_file(&f);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_in_user_namespace_container() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // The exec child is not dumpable until execve (CVE-2019-5736), so its /proc files
    // are the host root's: oomScoreAdj must still reach it.
    b.config["process"]["oomScoreAdj"] = json!(55);
    b.write();
    let id = rt.run_detached(&b, "exu");
    let (c, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u; touch /dev/shm/x && echo ok; cat /proc/self/oom_score_adj",
    ]);
    assert_eq!(c, 0, "{err}");
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(w, vec!["0", "100000", "65536", "0", "ok", "55"], "{out}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

/// What an exec'd process sees, compared between oxcart and runc on one bundle.
const PROBE: &str = r#"
echo "id: $(id)"
echo "cwd: $(pwd)"
echo "env: $X"
echo "nofile: $(ulimit -n) $(ulimit -Hn)"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
mkdir /tmp/probe-dir 2>&1 | sed 's/.*: //'
echo "hostname: $(hostname)"
cat /proc/self/oom_score_adj
"#;

#[test]
fn exec_differential_against_runc() {
    if !runc_available() {
        panic!("runc is needed for the differential tests (apt-get install runc)");
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.config["hostname"] = json!("exec-diff");
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["oomScoreAdj"] = json!(77);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 555, "hard": 777}]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.write();
    let flagsets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-u", "65534:65534", "--cwd", "/tmp", "-e", "X=1"],
        vec!["--cap", "CAP_SYS_ADMIN", "--no-new-privs"],
    ];
    let mut outs = Vec::new();
    for rt in [Runtime::oxcart(), Runtime::runc()] {
        let id = rt.run_detached(&b, "exd");
        let mut per = Vec::new();
        for flags in &flagsets {
            let mut a = flags.clone();
            a.extend([id.as_str(), "sh", "-c", PROBE]);
            let (c, out, err) = rt.exec(&a);
            assert_eq!(c, 0, "{} {flags:?}: {err}", rt.bin);
            per.push(out);
        }
        outs.push(per);
        assert!(rt.run(&["delete", "-f", &id]).status.success());
    }
    // runc 1.1.5 built with Go >= 1.19 gives exec'd processes a soft RLIMIT_NOFILE
    // raised to the hard limit (Go raises its own at start-up; runc issue #4195,
    // fixed in later releases). We apply the config's limits, as for init.
    for o in &outs[0] {
        assert!(o.contains("nofile: 555 777\n"), "{o}");
    }
    let norm = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("nofile:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, flags) in flagsets.iter().enumerate() {
        assert_eq!(
            norm(&outs[0][i]),
            norm(&outs[1][i]),
            "exec {flags:?} differs:\n--- oxcart\n{}\n--- runc\n{}",
            outs[0][i],
            outs[1][i]
        );
    }
    assert!(
        outs[0][0].contains("Operation not permitted"),
        "{}",
        outs[0][0]
    );
}

/// Removes test-made sub-cgroups (after killing `pid`), even when the test fails.
struct SubCgroups {
    dirs: Vec<PathBuf>,
    pid: Option<i32>,
}
impl Drop for SubCgroups {
    fn drop(&mut self) {
        if let Some(p) = self.pid {
            // SAFETY: killing the exec'd process this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
            wait_until(|| !Path::new(&format!("/proc/{p}")).exists());
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn exec_into_sub_cgroup_and_created_container() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    let cg = unique("oxcart-test-execcg");
    b.config["linux"]["cgroupsPath"] = json!(format!("/{cg}"));
    b.write();
    // exec works in a created container too (init waits on exec.fifo, its namespaces
    // exist), as in runc.
    let id = unique("excg");
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(ok, "{err}");
    assert_eq!(rt.exec(&[&id, "true"]).0, 0);
    assert_eq!(rt.state(&id)["status"], "created");
    assert!(rt.run(&["start", &id]).status.success());

    // A sub-cgroup "sub" in every hierarchy (cpuset needs its cpus/mems filled in).
    let roots: Vec<PathBuf> = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        vec!["/sys/fs/cgroup".into()]
    } else {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
            .collect()
    };
    let mut guard = SubCgroups {
        dirs: Vec::new(),
        pid: None,
    };
    for r in &roots {
        let d = r.join(&cg).join("sub");
        std::fs::create_dir(&d).unwrap();
        guard.dirs.push(d.clone());
        for f in ["cpuset.cpus", "cpuset.mems"] {
            // v1 cpuset starts empty; on v2 the file exists only where enabled.
            if let (Ok(v), true) = (
                std::fs::read_to_string(r.join(&cg).join(f)),
                d.join(f).exists(),
            ) {
                std::fs::write(d.join(f), v.trim()).unwrap();
            }
        }
    }
    let pf = b.dir.join("sub.pid");
    let (c, _, err) = rt.exec(&[
        "-d",
        "--cgroup",
        "sub",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert_eq!(c, 0, "{err}");
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    guard.pid = Some(pid);
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in lines.lines().filter(|l| l.contains(&cg)) {
        assert!(
            l.ends_with(&format!("/{cg}/sub")),
            "not in the sub-cgroup: {l}"
        );
    }
    assert!(lines.contains(&cg), "{lines}");
    // A sub-cgroup that does not exist is an error, and nothing runs.
    let (c, _, err) = rt.exec(&["--cgroup", "nope", &id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("does not exist"), "{err}");
    let (c, _, err) = rt.exec(&["--cgroup", "../escape", &id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("sub-cgroup"), "{err}");
    drop(guard);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_joins_cgroup_and_time_namespaces() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sleep", "1000"]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "cgroup"}));
    ns.push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    b.write();
    let id = rt.run_detached(&b, "excn");
    let init = rt.init_pid(&id);
    let (c, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        "readlink /proc/self/ns/cgroup; readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime; \
         cat /proc/self/cgroup | cut -d: -f3 | sort -u",
    ]);
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["cgroup", "time"].iter().enumerate() {
        let want = std::fs::read_link(format!("/proc/{init}/ns/{n}")).unwrap();
        assert_eq!(lines[i], want.display().to_string(), "{n}: {out}");
    }
    let up: u64 = lines[2].parse().unwrap();
    assert!(up >= 86_400_000, "boottime offset not seen: {out}");
    // Inside its cgroup namespace the exec'd process sits at the root.
    assert_eq!(&lines[3..], ["/"], "{out}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_into_no_pivot_container_sees_its_rootfs() {
    // With --no-pivot the rootfs is moved over the namespace's "/" and init chroots;
    // setns(CLONE_NEWNS) must land on the moved rootfs, not the host's root below it.
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("exnp");
    let (ok, err) = rt.detached(&["run", "-d", "--no-pivot"], &b, &id);
    assert!(ok, "{err}");
    let marker = env!("CARGO_MANIFEST_DIR");
    let (c, out, err) = rt.exec(&[
        &id,
        "sh",
        "-c",
        &format!("ls /; test -e {marker} && echo HOST"),
    ]);
    assert_eq!(c, 1, "{err}");
    assert!(out.contains("bin") && !out.contains("HOST"), "{out}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}
