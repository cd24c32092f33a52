//! `oxcart run` and the container verbs end to end: real containers from an image
//! pulled from a local docker-registry, under oxcart-runtime and runc.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use std::time::Duration;

#[test]
fn run_prints_output_returns_the_exit_code_and_rm_leaves_nothing() {
    let ox = Ox::new().pulled();
    let out = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        ox.image(),
        "echo",
        "hello",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        ox.image(),
        "sh",
        "-c",
        "echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .last(),
        Some("err")
    );
    // The program starts with no signal ignored or blocked (the runtime ignores
    // SIGPIPE for itself): `yes | head` ends, as under docker.
    let st = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        ox.image(),
        "sh",
        "-c",
        "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -n 2",
    ]);
    assert_eq!(
        st,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\ny\ny\n"
    );
    ox.assert_clean();
}

#[test]
fn exit_codes_are_dockers() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    let e = ox.fail(127, &["run", "--rm", "--network", "none", img, "nosuchcmd"]);
    assert!(e.contains("nosuchcmd"), "{e}");
    let e = ox.fail(
        126,
        &["run", "--rm", "--network", "none", img, "/data/notexec"],
    );
    assert!(e.contains("permission denied"), "{e}");
    let e = ox.fail(125, &["run", "--rm", "--memory", "lots", img, "true"]);
    assert!(e.contains("--memory"), "{e}");
    let e = ox.fail(
        125,
        &["run", "--rm", "--pull", "never", "no/such:image", "true"],
    );
    assert!(e.contains("No such image: no/such:image"), "{e}");
    let e = ox.fail(125, &["run", "--no-such-flag", img]);
    assert!(e.contains("--no-such-flag"), "{e}");
    let e = ox.fail(125, &["rm", "nosuch"]);
    assert!(e.contains("No such container: nosuch"), "{e}");
    ox.assert_clean();
}

#[test]
fn the_image_config_is_applied_as_docker_does() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    // Cmd from the image.
    assert_eq!(
        ox.ok(&["run", "--rm", "--network", "none", img]),
        "default-cmd\n"
    );
    // Env, WorkingDir from the image; -e overrides by key; -w; HOSTNAME.
    let out = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "IMGVAR=mine",
        "-e",
        "X=1",
        img,
        "sh",
        "-c",
        "echo $IMGVAR $X; pwd",
    ]);
    assert_eq!(out, "mine 1\n/data\n");
    assert_eq!(
        ox.ok(&["run", "--rm", "--network", "none", "-w", "/tmp", img, "pwd"]),
        "/tmp\n"
    );
    // A user by name is resolved in the image's /etc/passwd and /etc/group.
    let out = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "app",
        img,
        "sh",
        "-c",
        "id; echo $HOME",
    ]);
    assert_eq!(
        out,
        "uid=1000(app) gid=1000(app) groups=2000(extra)\n/home/app\n"
    );
    let e = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "nobody",
            img,
            "true",
        ],
    );
    assert!(e.contains("unable to find user nobody"), "{e}");
    // --entrypoint replaces the image's command entirely.
    assert_eq!(
        ox.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "echo",
            img,
            "a",
            "b"
        ]),
        "a b\n"
    );
    // Labels merge; Config shows them; the hostname is the short id.
    let id = ox
        .ok(&[
            "create",
            "--network",
            "none",
            "-l",
            "mine=1",
            img,
            "hostname",
        ])
        .trim()
        .to_string();
    let v = ox.inspect(&id);
    assert_eq!(v["Config"]["Labels"]["org.test.image"], "yes");
    assert_eq!(v["Config"]["Labels"]["mine"], "1");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["Path"], "hostname");
    let out = ox.ok(&["start", "-a", &id]);
    assert_eq!(out.trim(), &id[..12]);
    ox.ok(&["rm", &id]);
    ox.assert_clean();
}

#[test]
fn a_detached_container_lives_through_its_verbs() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "echo started; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = ox.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains(" Up ") && ps.contains("web"),
        "{ps}"
    );
    let v = ox.inspect("web");
    assert_eq!(v["State"]["Running"], true);
    assert!(v["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(v["Name"], "/web");
    assert!(v["NetworkSettings"]["Networks"].is_object());
    assert_eq!(
        ox.ok(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"]),
        "running /web\n"
    );
    // exec sees the container's environment and user; its exit code is ours.
    assert_eq!(
        ox.ok(&["exec", "web", "sh", "-c", "echo $IMGVAR; pwd"]),
        "from-image\n/data\n"
    );
    assert_eq!(
        ox.ok(&[
            "exec",
            "-u",
            "app",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "1000\n/tmp\n"
    );
    assert_eq!(
        ox.run(&["exec", "web", "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    ox.fail(127, &["exec", "web", "nosuchcmd"]);
    let top = ox.ok(&["top", "web"]);
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");
    ox.ok(&["pause", "web"]);
    assert!(ox.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(ox.inspect("web")["State"]["Status"], "paused");
    ox.ok(&["unpause", "web"]);
    ox.ok(&["rename", "web", "site"]);
    ox.fail(125, &["inspect", "web"]);
    // stop: the stop signal, the trap's output, its exit code.
    assert_eq!(ox.ok(&["stop", "-t", "5", "site"]), "site\n");
    let v = ox.inspect("site");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 7);
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(ox.ok(&["logs", "site"]), "started\nbye\n");
    assert!(ox.ok(&["ps", "-a"]).contains("Exited (7)"));
    assert_eq!(ox.ok(&["ps"]).lines().count(), 1, "only the header");
    assert_eq!(ox.ok(&["wait", "site"]), "7\n");
    // start again: a second run appends to the log.
    ox.ok(&["start", "site"]);
    assert!(ox.inspect("site")["State"]["Running"].as_bool().unwrap());
    ox.ok(&["kill", "site"]);
    assert_eq!(ox.ok(&["wait", "site"]), "137\n");
    ox.ok(&["rm", "site"]);
    ox.assert_clean();
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_removes_it() {
    let ox = Ox::new().pulled();
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            ox.image(),
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let e = ox.fail(125, &["rm", &id]);
    assert!(e.contains("You cannot remove a running container"), "{e}");
    // The image is held.
    let e = ox.fail(125, &["rmi", ox.image()]);
    assert!(e.contains(&id), "rmi names the container: {e}");
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
    ox.ok(&["rmi", ox.image()]);
}

#[test]
fn logs_rotate_and_read_back_with_tail_and_timestamps() {
    let ox = Ox::new().pulled();
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=3",
            ox.image(),
            "sh",
            "-c",
            "seq 1 2000",
        ])
        .trim()
        .to_string();
    assert_eq!(ox.ok(&["wait", &id]), "0\n");
    let dir = ox.ctr_dir(&id);
    assert!(dir.join("ctr.log.1").exists() && dir.join("ctr.log.2").exists());
    assert!(!dir.join("ctr.log.3").exists(), "max-file=3 keeps 3 files");
    for f in ["ctr.log", "ctr.log.1", "ctr.log.2"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() <= 2048 + 100,
            "{f} over max-size"
        );
    }
    assert_eq!(ox.ok(&["logs", "--tail", "2", &id]), "1999\n2000\n");
    let t = ox.ok(&["logs", "-t", "--tail", "1", &id]);
    assert!(t.ends_with("Z 2000\n") && t.starts_with("20"), "{t}");
    let e = ox.fail(125, &["logs", "--since", "garbage", &id]);
    assert!(e.contains("--since"), "{e}");
    // --log-driver none: nothing written, and docker's error on `logs`.
    let id2 = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--log-driver",
            "none",
            ox.image(),
            "echo",
            "x",
        ])
        .trim()
        .to_string();
    ox.ok(&["wait", &id2]);
    let e = ox.fail(125, &["logs", &id2]);
    assert!(e.contains("does not support reading"), "{e}");
    ox.ok(&["rm", &id, &id2]);
    ox.assert_clean();
}

#[test]
fn stdin_streams_with_i_and_a_tty_works_through_a_real_pty() {
    let ox = Ox::new().pulled();
    let mut c = ox.cmd();
    c.args([
        "run",
        "-i",
        "--rm",
        "--network",
        "none",
        ox.image(),
        "sh",
        "-c",
        "cat; echo done",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        si.write_all(b"line one\nline two\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line one\nline two\ndone\n"
    );
    assert_eq!(out.status.code(), Some(0));
    // -it: a shell on a terminal, whose exit code is ours.
    let (out, code) = in_pty(
        &ox,
        &["run", "-it", "--rm", "--network", "none", ox.image(), "sh"],
        "tty; echo $TERM\n\u{1}exit 5\n",
    );
    assert!(out.contains("/dev/pts/") && out.contains("xterm"), "{out}");
    assert_eq!(code, 5, "{out}");
    ox.assert_clean();
}

#[test]
fn a_killed_monitor_leaves_a_container_stop_and_rm_still_handle() {
    let ox = Ox::new().pulled();
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            ox.image(),
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    let mpid = m["pid"].as_i64().unwrap() as i32;
    // SAFETY: the monitor is a process this test started (through oxcart).
    unsafe { libc::kill(mpid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    let v = ox.inspect(&id);
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("monitor died"),
        "{v}"
    );
    ox.ok(&["stop", "-t", "1", &id]);
    let v = ox.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited");
    ox.ok(&["rm", &id]);
    // And with rm -f straight away.
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            ox.image(),
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(m["pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

#[test]
fn concurrent_creates_of_one_name_make_one_container() {
    let ox = Ox::new().pulled();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let mut c = ox.cmd();
            c.args([
                "create",
                "--name",
                "same",
                "--network",
                "none",
                ox.image(),
                "true",
            ]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one create wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("is already in use by container"), "{e}");
        assert_eq!(o.status.code(), Some(125));
    }
    assert_eq!(ox.ok(&["ps", "-aq"]).lines().count(), 1);
    ox.ok(&["rm", "same"]);
    ox.assert_clean();
}

#[test]
fn killing_run_at_any_point_leaves_state_rm_f_cleans() {
    let ox = Ox::new().pulled();
    for (i, delay) in [0u64, 3, 6, 10, 15, 25, 40, 80].iter().enumerate() {
        let mut c = ox.cmd();
        c.args([
            "run",
            "-d",
            "--name",
            &format!("k{i}"),
            "--network",
            "none",
            ox.image(),
            "sleep",
            "1000",
        ]);
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever state it reached reads truthfully and rm -f cleans it.
        let ps = ox.run(&["ps", "-a"]);
        assert!(
            ps.status.success(),
            "{}",
            String::from_utf8_lossy(&ps.stderr)
        );
        let _ = ox.run(&["rm", "-f", &format!("k{i}")]);
    }
    // `rm -f` killed at any point: the next `rm -f` finishes it.
    for (i, delay) in [0u64, 4, 8, 15, 30].iter().enumerate() {
        let name = format!("r{i}");
        ox.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            ox.image(),
            "sleep",
            "1000",
        ]);
        let mut c = ox.cmd();
        c.args(["rm", "-f", &name]);
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
        let ps = ox.run(&["ps", "-a"]);
        assert!(
            ps.status.success(),
            "{}",
            String::from_utf8_lossy(&ps.stderr)
        );
        let _ = ox.run(&["rm", "-f", &name]);
    }
    // A remover killed part-way leaves its entries in the trash, claimed or not
    // (crates/engine/src/trash.rs): the next create has them deleted.
    let trash = ox.root().join("trash");
    for name in ["0", ".claim-999999-1"] {
        let stale = trash.join(format!("{name}{}.100.1", "a".repeat(63)));
        std::fs::create_dir_all(stale.join("upper/etc")).unwrap();
        std::fs::write(stale.join("upper/etc/hosts"), "x").unwrap();
    }
    // A create killed before its record leaves debris the next create collects.
    ox.ok(&["create", "--network", "none", ox.image(), "true"]);
    ox.ok(&["container", "prune", "-f"]);
    ox.assert_clean();
}

/// A registry named by host name is reached through the C library's resolver
/// (`/etc/hosts` here): scripts/test.sh runs this suite again on the static release
/// build, whose glibc has its `files` and `dns` sources built in
/// (scripts/build-release.sh), so a static `oxcart` must resolve it too.
#[test]
fn a_registry_named_by_host_name_is_pulled_from_and_run() {
    let ox = Ox::new();
    let port = ox
        .image()
        .split('/')
        .next()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1;
    let by_name = format!("localhost:{port}/test/bb:latest");
    ox.ok(&["pull", "-q", &by_name]);
    assert_eq!(
        ox.ok(&["run", "--rm", "--network", "none", &by_name, "echo", "ok"]),
        "ok\n"
    );
    ox.ok(&["rmi", &by_name]);
    ox.assert_clean();
}

#[test]
fn runc_runs_the_same_scenarios() {
    if !std::path::Path::new("/usr/sbin/runc").exists() {
        panic!("runc is not installed (scripts/setup.sh installs it)");
    }
    let ox = Ox::with_runtime("runc").pulled();
    let img = ox.image();
    assert_eq!(
        ox.ok(&["run", "--rm", "--network", "none", img, "echo", "hi"]),
        "hi\n"
    );
    assert_eq!(
        ox.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "exit 9"
        ])
        .status
        .code(),
        Some(9)
    );
    ox.fail(127, &["run", "--rm", "--network", "none", img, "nosuchcmd"]);
    let id = ox
        .ok(&["run", "-d", "--network", "none", img, "sleep", "1000"])
        .trim()
        .to_string();
    assert_eq!(ox.inspect(&id)["HostConfig"]["Runtime"], "runc");
    assert_eq!(ox.ok(&["exec", &id, "echo", "in"]), "in\n");
    ox.ok(&["pause", &id]);
    ox.ok(&["unpause", &id]);
    ox.ok(&["stop", "-t", "1", &id]);
    assert_eq!(ox.inspect(&id)["State"]["ExitCode"], 137);
    ox.ok(&["rm", &id]);
    ox.assert_clean();
}

#[test]
fn an_oom_kill_is_recorded_as_docker_shows_it() {
    let ox = Ox::new().pulled();
    let out = ox.run(&[
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        ox.image(),
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = ox.inspect("oom");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["Memory"], 16 << 20);
    // A container killed by a signal, not the OOM killer, is not OOMKilled.
    let id = ox
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "-m",
            "64m",
            ox.image(),
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    ox.ok(&["kill", &id]);
    assert_eq!(ox.ok(&["wait", &id]), "137\n");
    assert_eq!(ox.inspect(&id)["State"]["OOMKilled"], false);
    ox.ok(&["rm", "oom", &id]);
    ox.assert_clean();
}

#[test]
fn generated_names_never_collide() {
    let ox = Ox::new().pulled();
    // 1,656 adjective_scientist pairs: 80 containers collide with near certainty
    // unless a taken name is replaced, as docker does.
    for _ in 0..80 {
        ox.ok(&["create", "--network", "none", ox.image(), "true"]);
    }
    let names = ox.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut v: Vec<&str> = names.lines().collect();
    assert_eq!(v.len(), 80);
    v.sort();
    v.dedup();
    assert_eq!(v.len(), 80, "names are unique");
    ox.ok(&["container", "prune", "-f"]);
    ox.assert_clean();
}
