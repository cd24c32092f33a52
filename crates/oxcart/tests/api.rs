//! `oxcart system service` end to end: docker's own CLIs (Debian's 20.10 and the
//! machine's newer one) against the API socket, over private engine roots and images
//! from a local registry; plus the wire details clients rely on, checked raw.
#![allow(clippy::unwrap_used)]

mod apiharness;
#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use apiharness::*;
use engine::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn ping_version_info_and_errors_speak_dockers_wire() {
    let ox = Ox::new();
    let svc = Svc::start(&ox, &[]);
    // The socket is root's only (0660 root:root) unless a group is given.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(&svc.sock).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o660);
    assert_eq!((md.uid(), md.gid()), (0, 0));
    ping_version_and_info(&svc, true);
    info_and_version_as_dockers_cli(&ox, &svc);
    let (code, v) = svc.json("GET", "/v1.41/containers/nosuch/json", "");
    assert_eq!(
        (code, v["message"].as_str()),
        (404, Some("No such container: nosuch"))
    );
    let (code, head, _) = svc.raw("GET", "/containers/nosuch/json", b"");
    assert_eq!(code, 404);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let (code, v) = svc.json("GET", "/v1.99/version", "");
    assert_eq!(code, 400);
    assert!(v["message"].as_str().unwrap().contains("too new"), "{v}");
    let (code, v) = svc.json("GET", "/v1.41/nowhere", "");
    assert_eq!(code, 404, "{v}");
    assert!(v["message"].is_string());
}

/// `oxcart info` prints what docker's CLI (28.x) prints of the same engine's
/// `/info` under "Server:", line for line, with a container running and one
/// stopped; `--format` sees the same fields (and `json` the whole object);
/// `version --format` the same server version as docker's.
fn info_and_version_as_dockers_cli(ox: &Ox, svc: &Svc) {
    clean_images_at_exit();
    ox.ok(&["pull", "-q", ox.image()]);
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        ox.image(),
        "sleep",
        "60",
    ]);
    ox.ok(&[
        "create",
        "--name",
        "down",
        "--network",
        "none",
        ox.image(),
        "true",
    ]);
    let theirs = svc.ok(NEW, &["info"]);
    let server = &theirs[theirs.find("Server:\n").expect("a Server section")..];
    let ours = ox.ok(&["info"]);
    assert_eq!(ours, server);
    assert!(
        ours.contains(" Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n"),
        "{ours}"
    );
    assert_eq!(ox.ok(&["system", "info"]), ours);
    let f = "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.DockerRootDir}} {{.OSType}}";
    assert_eq!(
        ox.ok(&["info", "--format", f]),
        svc.ok(NEW, &["info", "--format", f])
    );
    let v: serde_json::Value = serde_json::from_str(&ox.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(v["ServerVersion"], env!("CARGO_PKG_VERSION"));
    for cli in [OLD, NEW] {
        let f = "{{.Server.Version}} {{.Server.APIVersion}}";
        let theirs = svc.ok(cli, &["version", "--format", f]);
        assert_eq!(
            ox.ok(&[
                "version",
                "--format",
                "{{.Server.Version}} {{.Server.ApiVersion}}"
            ]),
            theirs
        );
    }
    let e = ox.fail(125, &["info", "--format", "{{.Nope"]);
    assert!(e.contains("template"), "{e}");
    ox.ok(&["rm", "-f", "up", "down"]);
}

#[test]
fn docker_run_attached_detached_and_rm_over_the_same_engine() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    for d in DOCKERS {
        // Attached, --rm: output, exit code, and nothing left.
        run_rm_attached(&svc, d, img, 3);
        assert_eq!(ox.ok(&["ps", "-aq"]), "", "{d}: --rm left a container");
        // The image's default command and a name.
        let o = svc.ok(d, &["run", "--name", "named", "--network", "none", img]);
        assert_eq!(o, "default-cmd\n");
        assert_eq!(
            ox.inspect("named")["State"]["Status"],
            "exited",
            "oxcart sees it"
        );
        svc.ok(d, &["rm", "named"]);
    }
    // Detached: listed by both CLIs, logs, stop, rm.
    let id = run_detached(&svc, img);
    let id = id.as_str();
    assert!(
        ox.ok(&["ps", "-q"]).contains(&id[..12]),
        "oxcart ps lists it"
    );
    assert_eq!(ox.ok(&["logs", id]), "started\n", "oxcart logs reads it");
    svc.ok(OLD, &["stop", "-t", "1", id]);
    let v = ox.inspect(id);
    assert_eq!(v["State"]["Status"], "exited");
    svc.ok(NEW, &["rm", id]);
    // The engine's events journal, through the API: the run above, in docker's shape.
    let ev = events_of(&svc, id);
    for want in ["create", "start", "die"] {
        assert!(ev.lines().any(|l| l == want), "{want} in {ev}");
    }
    // Errors keep docker's wording and the CLI's exit codes.
    let o = svc.docker(OLD, &["rm", "nosuch"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
    let o = svc.docker(OLD, &["run", "--rm", "--network", "none", img, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    ox.assert_clean();
}

#[test]
fn attach_before_start_and_wait_conditions() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    let first = start_attached_and_wait_next_exit(&svc, img);
    // wait?condition=removed returns once an --rm container is gone, with its code.
    let id = wait_removed(&svc, img, 2);
    let gone = ox.run(&["inspect", &id]);
    assert!(!gone.status.success(), "gone from the engine too");
    svc.ok(OLD, &["rm", &first]);
    ox.assert_clean();
}

#[test]
fn run_it_and_exec_it_through_a_terminal() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    // The container's tty has the client's size before its process runs, and a
    // missing command is the runtime's 126 or 127, as docker's.
    let want = TtyExpect {
        rm_exit: 5,
        sized_before_start: true,
        missing_cmd: &[126, 127],
    };
    run_it_and_exec_it(&svc, ox.image(), &want);
    ox.assert_clean();
}

#[test]
fn logs_follow_cp_and_the_state_verbs() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    let d = OLD;
    // logs -f streams as lines come; stops with the container.
    let (id, follow) = verbs_followed(&svc, d, img);
    // top, pause/unpause, rename, kill, restart.
    let top = svc.ok(d, &["top", "verbs"]);
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");
    svc.ok(d, &["pause", "verbs"]);
    assert_eq!(ox.inspect("verbs")["State"]["Status"], "paused");
    svc.ok(d, &["unpause", "verbs"]);
    svc.ok(d, &["rename", "verbs", "renamed"]);
    assert_eq!(ox.inspect(&id)["Name"], "/renamed");
    // update: resources live and in the record, the restart policy; what is not
    // given (docker's CLI sends zeros) stays.
    svc.ok(
        d,
        &[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--restart",
            "on-failure:2",
            "renamed",
        ],
    );
    let hc = &ox.inspect(&id)["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20, "{hc}");
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure", "{hc}");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 2, "{hc}");
    let limit = ox.ok(&[
        "exec",
        "renamed",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    svc.ok(d, &["update", "--cpu-shares", "512", "renamed"]);
    let hc = &ox.inspect(&id)["HostConfig"];
    assert_eq!(
        (hc["Memory"].clone(), hc["CpuShares"].clone()),
        (serde_json::json!(64 << 20), serde_json::json!(512)),
        "{hc}"
    );
    let o = svc.docker(d, &["update", "--memory", "64m", "nosuch"]);
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
    // cp both ways; a path out of the container's root resolves inside it.
    cp_both_ways(&svc, d, "renamed", &ox.dir.path().join("cp"));
    svc.ok(d, &["kill", "-s", "KILL", "renamed"]);
    assert_followed(follow);
    svc.ok(d, &["restart", "-t", "1", "renamed"]);
    assert_eq!(ox.inspect("renamed")["State"]["Running"], true);
    // stats: docker's JSON, which both CLIs compute their columns from.
    for dk in DOCKERS {
        let st = stats_line(&svc, dk, "renamed");
        assert!(
            st.starts_with("renamed ") && !st.contains("0B / 0B") && st.trim().ends_with(" 2"),
            "{dk}: {st}"
        );
    }
    // ps filters, in both JSON shapes.
    for row in ps_label_filters(&svc, d, img) {
        assert_eq!(row["Labels"]["role"], "db", "{row}");
    }
    let o = svc.docker(d, &["rm", "renamed"]);
    assert!(
        !o.status.success() && stderr(&o).contains("Stop the container"),
        "{}",
        stderr(&o)
    );
    svc.ok(d, &["rm", "-f", "renamed"]);
    rm_all(&svc, d);
    ox.assert_clean();
}

#[test]
fn images_networks_volumes_and_df() {
    let ox = Ox::new();
    clean_images_at_exit();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    let d = OLD;
    // Pull with docker's progress stream; the CLI prints its own summary from it.
    let out = svc.ok(d, &["pull", img]);
    assert!(
        out.contains("Pull complete") || out.contains("Downloaded newer image"),
        "{out}"
    );
    // The image in docker's shape; a pull of what is not there fails in the stream
    // with docker's error shape; tag.
    image_inspect_and_tag(&svc, d, img);
    // The list's filters (a reaper removes what they select), and what API 1.41
    // does not take refused by name, as dockerd 20.10 does, never ignored.
    image_list_filters(&svc, d, img, true);
    let f = url_escape(r#"{"until":["1h"]}"#);
    let (code, v) = svc.json("GET", &format!("/images/json?filters={f}"), "");
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["message"], "invalid filter 'until'");
    // save | load round trip.
    let tar = ox.dir.path().join("img.tar");
    let (o, load) = save_rmi_load(&svc, d, &tar);
    assert!(o.contains("Untagged: "), "{o}");
    assert!(
        load.contains("Loaded image: ") && load.contains("other/name:v1"),
        "{load}"
    );
    // import: a root filesystem tar as the body, named by repo and tag.
    let rootfs = ox.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/imported"), "yes\n").unwrap();
    let rtar = ox.dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            rtar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let id = svc.ok(d, &["import", rtar.to_str().unwrap(), "imp/x:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let v = ox.ok(&["inspect", "--format", "{{.Id}}", "imp/x:1"]);
    assert_eq!(v.trim(), id.trim());
    // history: docker's CLI over GET /images/{name}/history prints what oxcart's
    // `image history` does (both CLIs, the default table and a --format).
    for args in [
        &["history", "imp/x:1"][..],
        &[
            "history",
            "--no-trunc",
            "-H=false",
            "--format",
            "{{.ID}}|{{.CreatedSince}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "imp/x:1",
        ],
        &["history", "-q", "imp/x:1"],
    ] {
        let ours = || ox.ok(&[&["image"][..], args].concat());
        for cli in [OLD, NEW] {
            // CREATED counts seconds since the import, so a second may tick between
            // two commands ("Less than a second ago", then "1 second ago"): the
            // CLI's output must be ours from just before or just after it. A run
            // that spans two ticks is tried again; a real difference fails all.
            let mut seen = Vec::new();
            let agreed = (0..5).any(|_| {
                let (before, theirs, after) = (ours(), svc.ok(cli, args), ours());
                let ok = theirs == before || theirs == after;
                seen.push((theirs, before, after));
                ok
            });
            assert!(
                agreed,
                "{args:?}: (docker, ours before, ours after) {seen:#?}"
            );
        }
    }
    let o = svc.docker(d, &["history", "nosuch:1"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && e.contains("No such image: nosuch:1"),
        "{o:?}"
    );
    svc.ok(d, &["rmi", "imp/x:1"]);
    // Networks and volumes.
    network_created(&svc, d);
    let v: serde_json::Value =
        serde_json::from_str(&svc.ok(d, &["network", "inspect", "apinet"])).unwrap();
    assert_eq!(v[0]["Labels"]["t"], "1");
    let vol = svc.ok(d, &["volume", "create", "--label", "x=y", "apivol"]);
    assert_eq!(vol.trim(), "apivol");
    // A container on the network with the volume: it sees its address and the volume.
    let out = run_on_apinet_with_apivol(&svc, d, img);
    assert!(out.starts_with("hi\n"), "{out}");
    assert_eq!(ox.ok(&["volume", "ls", "-q"]).trim(), "apivol");
    df_and_listed_command(&svc, d, img);
    // Exec through the API: its events, exec_die for the detached one too (the
    // service waits for it, as dockerd).
    svc.ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "evx",
            "--network",
            "none",
            img,
            "sleep",
            "100",
        ],
    );
    assert_eq!(
        svc.docker(d, &["exec", "evx", "sh", "-c", "exit 2"])
            .status
            .code(),
        Some(2)
    );
    svc.ok(d, &["exec", "-d", "evx", "true"]);
    assert!(
        eventually(10, || ox.journal("{{.Action}}").matches("exec_die").count()
            == 2),
        "{}",
        ox.journal("{{.Action}} {{.Actor.Attributes.exitCode}}")
    );
    svc.ok(d, &["rm", "-f", "evx"]);
    rm_volume_and_network(&svc, d);
    // prune: a stopped container, then everything unused.
    container_prune(&svc, d, img);
    let out = svc.ok(d, &["system", "prune", "-af"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(
        svc.ok(d, &["images", "-q"]),
        "",
        "system prune -a removed the unused images"
    );
    // What the API did is in the journal as the CLI's verbs write it.
    let seen = ox.journal("{{.Type}} {{.Action}}");
    let mut rest = seen.as_str();
    for want in [
        "image pull",
        "image tag",
        "image save",
        "image untag",
        "image load",
        "image tag",
        "image import",
        "network create",
        "volume create",
        "container exec_create: sh -c exit 2",
        "container exec_start: sh -c exit 2",
        "container exec_die",
        "network destroy",
    ] {
        let at = rest
            .find(want)
            .unwrap_or_else(|| panic!("{want} missing or out of order in:\n{seen}"));
        rest = &rest[at + want.len()..];
    }
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn login_through_the_api_and_pull_with_the_clients_credentials() {
    let ox = Ox::new();
    let svc = Svc::start(&ox, &[]);
    let reg = Registry::start(Auth::Basic);
    let mut layout = Layout::new();
    let img = layout.image_with(&[(base_layer(), Comp::Gzip)], "amd64", image_config());
    layout.tag_manifest(&img, "latest");
    reg.push(layout.path(), "latest", "test/priv", false);
    let image = format!("{}/test/priv:latest", reg.addr);
    let d = OLD;
    // No credentials: the registry refuses the pull.
    let o = svc.docker(d, &["pull", &image]);
    assert!(!o.status.success(), "{}", stdout(&o));
    // A wrong password: the registry's refusal, as dockerd's 401.
    let o = svc.docker(d, &["login", "-u", USER, "-p", "wrong", &reg.addr]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Error response from daemon") && stderr(&o).contains("authentication"),
        "{}",
        stderr(&o)
    );
    let body = format!(
        r#"{{"username":"{USER}","password":"wrong","serveraddress":"{}"}}"#,
        reg.addr
    );
    let (code, _, _) = svc.raw("POST", "/auth", body.as_bytes());
    assert_eq!(code, 401);
    // docker login asks the service (POST /auth); the CLI keeps the credentials and
    // sends them with the pull (X-Registry-Auth).
    let o = svc.ok(d, &["login", "-u", USER, "-p", PASS, &reg.addr]);
    assert!(o.contains("Login Succeeded"), "{o}");
    svc.ok(d, &["pull", &image]);
    let v = ox.ok(&["inspect", "--format", "{{.Id}}", &image]);
    assert!(v.starts_with("sha256:"), "{v}");
    // The service kept nothing: after the CLI's logout the pull is refused again.
    ox.ok(&["rmi", &image]);
    svc.ok(d, &["logout", &reg.addr]);
    let o = svc.docker(d, &["pull", &image]);
    assert!(!o.status.success(), "{}", stdout(&o));
}

fn zombies_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(b) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[b + 2..].split(' ').collect();
        if f.first() == Some(&"Z") && f.get(1) == Some(&pid.to_string().as_str()) {
            out.push(stat.clone());
        }
    }
    out
}

#[test]
fn docker_compose_project_up_ps_logs_exec_restart_down() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let dir = ox.dir.path().join("proj");
    write_compose_project(&dir, ox.image());
    svc.compose_ok(&dir, &["up", "-d"]);
    let ps = svc.compose_ok(&dir, &["ps"]);
    assert!(
        ps.contains("apiproj_web_1") && ps.contains("apiproj_worker_1") && ps.contains("Up"),
        "{ps}"
    );
    assert!(
        ox.ok(&["ps", "--format", "{{.Names}}"])
            .contains("apiproj_web_1"),
        "oxcart ps lists compose's containers"
    );
    let port = svc.compose_ok(&dir, &["port", "web", "8080"]);
    let port: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        eventually(20, || http_get(port, "/hello.txt")
            .contains("hello from the image")),
        "the volume was filled from the image and served on the published port"
    );
    assert!(eventually(10, || svc
        .compose_ok(&dir, &["logs", "worker"])
        .contains("worker-up")));
    let out = svc.compose_ok(
        &dir,
        &["exec", "-T", "worker", "sh", "-c", "echo exec-ok; ls /"],
    );
    assert!(out.contains("exec-ok"), "{out}");
    compose_restart_worker_and_down(&svc, &dir);
    // The port proxy the service started was killed by cleanup: no zombie stays.
    assert!(
        eventually(20, || zombies_of(svc.child.id()).is_empty()),
        "{:?}",
        zombies_of(svc.child.id())
    );
    assert_eq!(ox.ok(&["ps", "-aq"]), "");
    assert_eq!(
        ox.ok(&["volume", "ls", "-q"]),
        "",
        "down -v removed the named volume"
    );
    assert!(!ox.ok(&["network", "ls"]).contains("apiproj_back"));
    ox.assert_clean();
    ox.assert_net_clean();
}

/// testcontainers-python's venv (scripts/setup.sh makes it).
const VENV_PYTHON: &str = "/opt/oxcart-venv/bin/python";

#[test]
fn testcontainers_python_mapped_port_and_log_wait() {
    assert!(
        Path::new(VENV_PYTHON).exists(),
        "{VENV_PYTHON} missing: run scripts/setup.sh (it installs testcontainers-python)"
    );
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    // Ryuk enabled, with our reaper's image (Ryuk's own is on Docker Hub, out of
    // reach here; apiharness/reaper.rs): testcontainers starts it before the first
    // container and fails unless it answers on its published port.
    let mut c = Command::new(VENV_PYTHON);
    c.args(["-c", TESTCONTAINERS_SCRIPT, ox.image()])
        .env("DOCKER_HOST", svc.host());
    with_ryuk(&mut c, svc.cfg.path());
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("BODY hello from the image"), "{out}");
    // The context manager removed its container, and testcontainers' exit handler
    // the reaper's (force, so it reaps nothing after a clean run).
    assert_eq!(ox.ok(&["ps", "-aq"]), "", "{out}");
    ox.assert_clean();
}

#[test]
fn testcontainers_ryuk_reaps_a_killed_session() {
    assert!(
        Path::new(VENV_PYTHON).exists(),
        "{VENV_PYTHON} missing: run scripts/setup.sh (it installs testcontainers-python)"
    );
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let mut c = Command::new(VENV_PYTHON);
    c.env("DOCKER_HOST", svc.host());
    let log = ryuk_reaps_a_killed_session(&svc, c, ox.image());
    // The killed session's connection ends in a FIN from the port proxy (podman's
    // NAT passes the kernel's reset on: api_podman.rs); nothing failed.
    assert!(!log.contains("level=ERROR"), "{log}");
    // Gone from the engine too: rows, mounts, runtime state, the network's bridge
    // and rules, the volume.
    assert_eq!(ox.ok(&["ps", "-aq"]), "");
    assert_eq!(ox.ok(&["volume", "ls", "-q"]), "");
    ox.assert_clean();
    ox.assert_net_clean();
}

/// The reaper driven by hand, as a testcontainers library drives Ryuk: a filter of
/// two labels, the resources it selects removed — a container of a labelled image on
/// a labelled network with a labelled volume, in the order that lets each go (the
/// image only once its container is gone) — and what does not match every label
/// left alone. SIGTERM (`docker stop`) prunes at once, without waiting out the
/// reconnection timeout; a resource newer than the check is looked at again, never
/// removed; no client within the connection timeout, it exits by itself; without the
/// engine's socket it fails saying so.
#[test]
fn the_reaper_removes_what_its_filters_select_in_order() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let d = OLD;
    let reaper_img = reaper_image();
    let img = labelled_image(
        "test/reapme",
        serde_json::json!({"reap": "yes", "case": "ryuk"}),
    );
    svc.ok(d, &["pull", "-q", &img]);
    let lab = ["--label", "reap=yes", "--label", "case=ryuk"];
    // A subnet of its own: the default allocator's first free /16 could be the one
    // the session network of the test beside it (another engine root) takes.
    let mut a = vec!["network", "create", "--subnet", "10.231.7.0/24"];
    a.extend(lab);
    a.push("reapnet");
    svc.ok(d, &a);
    let mut a = vec!["volume", "create"];
    a.extend(lab);
    a.push("reapvol");
    svc.ok(d, &a);
    let doomed = svc.ok(
        d,
        &[
            "run",
            "-d",
            "--network",
            "reapnet",
            "-v",
            "reapvol:/v",
            &img,
            "sleep",
            "1000",
        ],
    );
    let kept = sleeper_labelled(&svc, d, "reap=yes", ox.image());
    let sock = format!("{}:/var/run/docker.sock", svc.sock.display());
    let reaper = svc.ok(
        d,
        &[
            "run",
            "-d",
            "-p",
            "127.0.0.1::8080",
            "-v",
            &sock,
            "-e",
            "RYUK_RECONNECTION_TIMEOUT=10m",
            reaper_img,
        ],
    );
    let reaper = reaper.trim();
    let port = svc.ok(d, &["port", reaper, "8080"]);
    let port: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
    // Ryuk's line form: a URL query, values escaped.
    drop(reaper_client(port, "label=reap%3Dyes&label=case%3Dryuk"));
    // Disconnected, but within the reconnection timeout: all there.
    let (code, v) = svc.json("GET", &format!("/containers/{}/json", doomed.trim()), "");
    assert_eq!(
        (code, &v["State"]["Running"]),
        (200, &serde_json::json!(true))
    );
    svc.ok(d, &["stop", reaper]);
    let (_, v) = svc.json("GET", &format!("/containers/{reaper}/json"), "");
    assert_eq!(v["State"]["ExitCode"], 0, "a clean prune: {v}");
    let log = svc.ok(d, &["logs", reaper]);
    for want in [
        "msg=\"adding filter\" type=label values=\"[reap=yes case=ryuk]\"",
        "msg=\"signal received\" clients=0 shutdown_timeout=10m0s",
        "msg=removed containers=1 networks=1 volumes=1 images=1",
    ] {
        assert!(log.contains(want), "{want:?} in\n{log}");
    }
    svc.ok(d, &["rm", reaper]);
    let ps = svc.ok(d, &["ps", "-aq", "--no-trunc"]);
    assert_eq!(
        ps.trim(),
        kept,
        "only the container without case=ryuk is left"
    );
    assert!(!svc.ok(d, &["network", "ls"]).contains("reapnet"));
    assert_eq!(svc.ok(d, &["volume", "ls", "-q"]), "");
    let o = svc.docker(d, &["image", "inspect", &img]);
    assert!(!o.status.success(), "the labelled image was removed");
    assert!(svc
        .docker(d, &["image", "inspect", ox.image()])
        .status
        .success());
    svc.ok(d, &["rm", "-f", &kept]);
    // A resource newer than the check (a retry offset of -1h makes every one so) is
    // someone's still being set up: the reaper looks again instead of removing it,
    // until a signal's shutdown timeout forces the prune of the others — never of it,
    // as Ryuk — and exits 1.
    let late = sleeper_labelled(&svc, d, "reap=late", ox.image());
    let reaper = svc.ok(
        d,
        &[
            "run",
            "-d",
            "-p",
            "127.0.0.1::8080",
            "-v",
            &sock,
            "-e",
            "RYUK_RECONNECTION_TIMEOUT=1s",
            "-e",
            "RYUK_RETRY_OFFSET=-1h",
            "-e",
            "RYUK_SHUTDOWN_TIMEOUT=2s",
            reaper_img,
        ],
    );
    let reaper = reaper.trim();
    let port = svc.ok(d, &["port", reaper, "8080"]);
    let port: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
    drop(reaper_client(port, "label=reap%3Dlate"));
    assert!(eventually(30, || svc
        .ok(d, &["logs", reaper])
        .matches("msg=\"change detected, waiting again\"")
        .count()
        >= 2));
    assert!(
        svc.docker(d, &["inspect", &late]).status.success(),
        "not removed while new"
    );
    svc.ok(d, &["stop", reaper]);
    let (_, v) = svc.json("GET", &format!("/containers/{reaper}/json"), "");
    assert_eq!(v["State"]["ExitCode"], 1, "{v}");
    let log = svc.ok(d, &["logs", reaper]);
    for want in [
        "level=WARN msg=\"shutdown timeout reached, forcing prune\"",
        "msg=removed containers=0 networks=0 volumes=0 images=0",
        "level=ERROR msg=run error=\"run: prune wait: resources: affected containers: container ",
    ] {
        assert!(log.contains(want), "{want:?} in\n{log}");
    }
    svc.ok(d, &["rm", reaper]);
    let (code, _) = svc.json("GET", &format!("/containers/{late}/json"), "");
    assert_eq!(code, 200, "the new container is never removed");
    svc.ok(d, &["rm", "-f", &late]);
    // No client within RYUK_CONNECTION_TIMEOUT: a prune of nothing, exit 0.
    let idle = svc.ok(
        d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "-v",
            &sock,
            "-e",
            "RYUK_CONNECTION_TIMEOUT=1s",
            reaper_img,
        ],
    );
    let idle = idle.trim();
    assert_eq!(svc.ok(d, &["wait", idle]).trim(), "0");
    let log = svc.ok(d, &["logs", idle]);
    assert!(log.contains("msg=\"prune check\" clients=0"), "{log}");
    assert!(
        log.contains("msg=removed containers=0 networks=0 volumes=0 images=0"),
        "{log}"
    );
    svc.ok(d, &["rm", idle]);
    // Without the engine's socket: exit 1, the error named.
    let o = svc.docker(d, &["run", "--rm", "--network", "none", reaper_img]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let want = "level=ERROR msg=run error=\"new reaper: ping: /var/run/docker.sock: No such file";
    assert!(stdout(&o).contains(want), "{}", stdout(&o));
    ox.assert_clean();
    ox.assert_net_clean();
}

/// The service's binary replaced while it runs (a package upgrade): the kernel then
/// names it `PATH (deleted)`, and the containers it starts afterwards must still get
/// their cleanup — the monitors' exit command is the binary now at PATH. Before,
/// `docker run --rm` waited for a removal that never came.
#[test]
fn a_service_whose_binary_was_replaced_still_cleans_up() {
    let ox = Ox::new().pulled();
    let bin = ox.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("oxcart");
    std::fs::copy(env!("CARGO_BIN_EXE_oxcart"), &exe).unwrap();
    let svc = Svc::start_from(&ox, &exe, &[]);
    svc.ok(OLD, &["version"]);
    // The upgrade: a new file at the same path, the old one unlinked.
    std::fs::remove_file(&exe).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_oxcart"), &exe).unwrap();
    // KILL: docker's CLI passes a SIGTERM on to the container and keeps waiting.
    let o = Command::new("timeout")
        .args(["-s", "KILL", "60"])
        .arg(OLD)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            ox.image(),
            "echo",
            "upgraded",
        ])
        .env("DOCKER_HOST", format!("unix://{}", svc.sock.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "upgraded\n");
    assert_eq!(ox.ok(&["ps", "-aq"]), "");
    drop(svc);
    ox.assert_clean();
}

#[test]
fn a_container_reaches_the_api_through_the_bind_mounted_socket() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let (_, out) = reap_from_inside(&svc, ox.image());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1.41"), "{out}");
    assert_eq!(lines.next().map(str::len), Some(12), "{out}");
    assert_eq!(
        ox.ok(&["ps", "-aq"]),
        "",
        "the labelled container was removed from inside"
    );
    ox.assert_clean();
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random edits of a valid body: byte flips, cuts, duplicated spans, type swaps.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 if !b.is_empty() => b.truncate(rng.below(b.len())),
            2 if b.len() > 2 => {
                let i = rng.below(b.len() - 1);
                let j = i + rng.below(b.len() - i);
                let span = b[i..j].to_vec();
                b.splice(i..i, span);
            }
            3 => {
                let s = String::from_utf8_lossy(&b).into_owned();
                let swaps = [
                    ("\"sh\"", "3"),
                    ("[", "{"),
                    ("true", "\"x\""),
                    ("1024", "\"1k\""),
                    ("{}", "null"),
                ];
                let (a, z) = swaps[rng.below(swaps.len())];
                b = s.replacen(a, z, 1).into_bytes();
            }
            _ => b.insert(rng.below(b.len() + 1), b"{}[]\",:\\\x00\xff"[rng.below(10)]),
        }
    }
    b
}

fn tar_of_entries(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        // Names written raw into the header: the tar crate's builder refuses `..`,
        // which is the point of the test.
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&c| u32::from(c)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn bad_requests_get_a_4xx_with_a_message_and_change_nothing() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    let create = |body: &[u8]| svc.raw("POST", "/v1.41/containers/create?name=bad", body);
    let msg = |b: &[u8]| -> String {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
        v["message"].as_str().unwrap_or("").to_string()
    };
    for (body, want) in [
        (&b"{nope"[..], "invalid JSON"),
        (&b"[1,2]"[..], "invalid JSON"),
        (format!(r#"{{"Image":"{img}","HostConfig":{{"Memory":"lots"}}}}"#).as_bytes(), "HostConfig.Memory"),
        (format!(r#"{{"Image":"{img}","Cmd":3}}"#).as_bytes(), "field Cmd"),
        (format!(r#"{{"Image":"{img}","HostConfig":{{"RestartPolicy":{{"Name":"always"}},"AutoRemove":true}}}}"#).as_bytes(), "AutoRemove"),
        (format!(r#"{{"Image":"{img}","HostConfig":{{"Binds":["/nonexistent-src-x:/x:zz"]}}}}"#).as_bytes(), ""),
    ] {
        let (code, _, b) = create(body);
        assert!((400..500).contains(&code), "{code} for {}", String::from_utf8_lossy(body));
        assert!(msg(&b).contains(want), "{}: {}", String::from_utf8_lossy(body), msg(&b));
    }
    // Bounded bodies and headers.
    let big = vec![b' '; 5 << 20];
    let (code, _, b) = create(&big);
    assert_eq!(code, 413, "{}", msg(&b));
    let mut s = UnixStream::connect(&svc.sock).unwrap();
    let huge = "x".repeat(100 << 10);
    let _ =
        s.write_all(format!("GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: {huge}\r\n\r\n").as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let code = parse_response(&out).0;
    assert!((400..500).contains(&code), "oversized header: {code}");
    // An archive with a `..` entry is refused whole: its harmless entry is not written.
    let id = svc.ok(OLD, &["create", "--network", "none", img, "true"]);
    let id = id.trim();
    let tar = tar_of_entries(&[("ok.txt", b"fine"), ("../../../../escape.txt", b"out")]);
    let (code, _, b) = svc.raw("PUT", &format!("/containers/{id}/archive?path=/tmp"), &tar);
    assert_eq!(code, 400, "{}", msg(&b));
    assert!(msg(&b).contains(".."), "{}", msg(&b));
    let (code, _, _) = svc.raw(
        "HEAD",
        &format!("/containers/{id}/archive?path=/tmp/ok.txt"),
        b"",
    );
    assert_eq!(code, 404, "nothing of a refused archive was written");
    assert!(!Path::new("/escape.txt").exists() && !ox.root().join("escape.txt").exists());
    svc.ok(OLD, &["rm", id]);
    // Fuzzed create bodies and filters: always an answer, never a 5xx, never a
    // container (the image does not exist, so nothing valid can be made either).
    let base = br#"{"Image":"nosuch/image:1","Cmd":["sh","-c","echo"],"Env":["A=1"],"Tty":true,"HostConfig":{"Memory":1024,"Binds":["/a:/b"],"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},"RestartPolicy":{"Name":"no"}},"NetworkingConfig":{"EndpointsConfig":{}},"Labels":{}}"#;
    let mut rng = Rng(0x5eed_0a91);
    for i in 0..400 {
        let body = mutate(&mut rng, base);
        let (code, _, b) = create(&body);
        assert!(
            (400..500).contains(&code) && !msg(&b).is_empty(),
            "case {i}: {code} {} for {}",
            msg(&b),
            String::from_utf8_lossy(&body)
        );
        let f = mutate(&mut rng, br#"{"label":{"a=b":true},"status":["running"]}"#);
        let q: String = f.iter().map(|c| format!("%{c:02X}")).collect();
        let (code, _, _) = svc.raw("GET", &format!("/containers/json?all=1&filters={q}"), b"");
        assert!(code == 200 || code == 400, "case {i}: filters gave {code}");
    }
    let (code, _, _) = svc.raw("GET", "/_ping", b"");
    assert_eq!(code, 200, "the service still answers");
    assert_eq!(ox.ok(&["ps", "-aq"]), "");
    ox.assert_clean();
}

#[test]
fn stdin_half_close_restart_of_the_service_idle_exit_and_socket_activation() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    let mut svc = Svc::start(&ox, &[]);
    // Piped stdin ends; the container's output after that still arrives.
    let c = svc.docker_cmd(
        OLD,
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "cat; sleep 1; echo after-eof",
        ],
    );
    let o = output_with_stdin(c, b"from-stdin\n");
    assert_eq!(stdout(&o), "from-stdin\nafter-eof\n", "{}", stderr(&o));
    // Killing the service stops no container; a new one sees it running.
    let id = svc.ok(
        OLD,
        &["run", "-d", "--network", "none", img, "sleep", "100"],
    );
    let id = id.trim().to_string();
    let _ = svc.child.kill();
    let _ = svc.child.wait();
    assert_eq!(ox.inspect(&id)["State"]["Running"], true);
    drop(svc);
    svc = Svc::start(&ox, &[]);
    let ps = svc.ok(OLD, &["ps", "-q", "--no-trunc"]);
    assert_eq!(ps.trim(), id);
    svc.ok(OLD, &["rm", "-f", &id]);
    drop(svc);
    // --time: the service exits by itself once idle.
    let sock = ox.dir.path().join("idle.sock");
    let mut child = ox
        .cmd()
        .args(["system", "service", "--time", "1"])
        .arg(format!("unix://{}", sock.display()))
        .spawn()
        .unwrap();
    assert!(
        eventually(20, || matches!(child.try_wait(), Ok(Some(_)))),
        "no idle exit"
    );
    assert!(child.wait().unwrap().success());
    // Socket activation, by systemd's own tool: the socket is made by it and passed
    // as fd 3 (LISTEN_FDS), as oxcart.socket does.
    let sock = ox.dir.path().join("act.sock");
    let c = ox.cmd();
    let mut sa = Command::new("systemd-socket-activate");
    sa.arg("-l")
        .arg(&sock)
        .arg(c.get_program())
        .args(c.get_args());
    sa.args(["system", "service", "--time", "0"]);
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            sa.env(k, v);
        }
    }
    sa.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = sa.spawn().unwrap();
    assert!(eventually(10, || sock.exists()));
    let act = Api::new(sock.clone());
    let out = act.ok(OLD, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(out.trim(), "1.41");
    let _ = child.kill();
    let _ = child.wait();
    ox.assert_clean();
}
