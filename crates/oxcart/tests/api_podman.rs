//! The client scenarios of `api.rs` — Debian's docker CLI (20.10), the machine's newer
//! one (28.x), docker-compose 1.29 and testcontainers-python — against
//! `podman system service` (Debian's podman 4.3), to show where oxcart's Engine API
//! and podman's differ (docs/api.md, "Against podman system service"). Every step
//! asserts what podman answers: what docker answers (and `api.rs` checks oxcart for),
//! or the specific difference; a difference is asserted against oxcart's service too,
//! side by side, so a change on either side fails here.
//!
//! podman gets everything of its own: `--root`/`--runroot`/`--tmpdir`, a containers.conf
//! (`CONTAINERS_CONF`: runc, since crun refuses these hosts' hybrid cgroups; cgroupfs;
//! file events; a private network config directory; `default_ulimits` for both
//! RLIMIT_NOFILE and RLIMIT_NPROC, or podman asks runc for 1048576 of each and a host
//! with lower hard limits and no CAP_SYS_RESOURCE runs nothing), a registries.conf
//! for the test registry, and a network namespace for netavark: podman finds netavark
//! in `helper_binaries_dir`, where a wrapper runs the real one under `nsenter` in a
//! namespace of ours, so the bridges, firewall rules and aardvark-dns of its networks
//! never touch the host's (the containers' own namespaces are podman's as usual).
//! Ports a container publishes are reached from inside that namespace.
#![allow(clippy::unwrap_used)]

mod apiharness;
#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use apiharness::*;
use engine::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A private `podman system service` holding the test image (see the top of the file).
struct Pod {
    tmp: tempfile::TempDir,
    child: Option<Child>,
    api: Option<Api>,
}

impl Pod {
    fn start() -> Pod {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is not installed (scripts/setup.sh installs it)"
        );
        // Made first, so that drop undoes whatever a failing step below left.
        let mut pod = Pod {
            tmp: tempfile::tempdir().unwrap(),
            child: None,
            api: None,
        };
        std::fs::write(pod.netns(), "").unwrap();
        let o = Command::new("unshare")
            .arg(format!("--net={}", pod.netns().display()))
            .args(["ip", "link", "set", "lo", "up"])
            .output()
            .unwrap();
        assert!(o.status.success(), "unshare --net: {}", stderr(&o));
        pod.write_helpers();
        pod.write_config();
        let o = pod.cli(&["pull", "-q", images().image.as_str()]);
        assert!(o.status.success(), "podman pull: {}", stderr(&o));
        let sock = pod.tmp.path().join("pod.sock");
        let log = std::fs::File::create(pod.tmp.path().join("service.log")).unwrap();
        let child = pod
            .cmd()
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        pod.child = Some(child);
        pod.api = Some(Api::new(sock));
        pod
    }

    /// `helpers/`, podman's `helper_binaries_dir`: netavark through a wrapper that
    /// runs it in our namespace and with its state directory (`--config`: aardvark-dns's
    /// configuration and pid file) in ours. Rootful podman 4.3 gives every instance
    /// /run/containers/networks, where another podman's aardvark-dns, running in the
    /// host's namespace, would answer for our networks. (podman's own IPAM database
    /// stays there: its entries are per network, and ours go with our networks.)
    fn write_helpers(&self) {
        let t = self.tmp.path();
        let helpers = t.join("helpers");
        std::fs::create_dir(&helpers).unwrap();
        std::fs::create_dir(t.join("netavark-run")).unwrap();
        std::fs::write(
            helpers.join("netavark"),
            format!(
                r#"#!/bin/sh
state={state}
next=
for a do
    shift
    if [ -n "$next" ]; then set -- "$@" "$state"; next=; continue; fi
    case $a in
        --config) set -- "$@" "$a"; next=1 ;;
        --config=*) set -- "$@" "--config=$state" ;;
        *) set -- "$@" "$a" ;;
    esac
done
exec nsenter --net={netns} /usr/lib/podman/netavark "$@"
"#,
                state = t.join("netavark-run").display(),
                netns = self.netns().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            helpers.join("netavark"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        for (name, real) in [
            ("aardvark-dns", "/usr/lib/podman/aardvark-dns"),
            ("catatonit", "/usr/libexec/podman/catatonit"),
        ] {
            std::os::unix::fs::symlink(real, helpers.join(name)).unwrap();
        }
    }

    /// containers.conf (see the top of the file) and a registries.conf that lets
    /// podman pull from the test registry over plain HTTP.
    fn write_config(&self) {
        let t = self.tmp.path();
        std::fs::write(
            t.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
helper_binaries_dir = ["{}"]
[network]
network_backend = "netavark"
network_config_dir = "{}"
"#,
                t.join("helpers").display(),
                t.join("networks").display()
            ),
        )
        .unwrap();
        std::fs::write(
            t.join("registries.conf"),
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                images().reg.addr
            ),
        )
        .unwrap();
    }

    /// The file our network namespace is bound to.
    fn netns(&self) -> PathBuf {
        self.tmp.path().join("netns")
    }

    /// podman's CLI on the same store and configuration.
    fn cmd(&self) -> Command {
        let t = self.tmp.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(t.join("root"))
            .arg("--runroot")
            .arg(t.join("runroot"))
            .arg("--tmpdir")
            .arg(t.join("libpod-tmp"))
            .env("CONTAINERS_CONF", t.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", t.join("registries.conf"))
            .stdin(Stdio::null());
        c
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `args` run in podman's network namespace (where published ports are reached).
    fn in_netns(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .args(args);
        c
    }

    /// Mounts under our directory (deepest last).
    fn mounts(&self) -> Vec<String> {
        let me = format!("{}/", self.tmp.path().display());
        let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&me))
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// Processes (other than the service) whose command line names our directory:
    /// conmon, aardvark-dns, a container cleanup; (pid, command line).
    fn processes(&self) -> Vec<(i32, String)> {
        let me = format!("{}/", self.tmp.path().display()).into_bytes();
        let svc = self.child.as_ref().map(|c| c.id() as i32);
        let mut out = Vec::new();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if Some(pid) == svc {
                continue;
            }
            let c = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if c.windows(me.len()).any(|w| w == me.as_slice()) {
                out.push((pid, String::from_utf8_lossy(&c).replace('\0', " ")));
            }
        }
        out
    }

    /// Nothing of a container left: no container, no conmon or aardvark-dns, no
    /// interface but `lo` in podman's namespace, no mount but the overlay driver's
    /// own and the namespace file.
    ///
    /// Except, a difference: podman keeps the conmon of every exec session for
    /// containers.conf's `exit_command_delay` (300 s) after the exec ended, so the
    /// session stays inspectable as in docker — even once its container is removed.
    /// Those are allowed here (and killed on drop); docker's and oxcart's exec
    /// sessions leave no process.
    fn assert_clean(&self) {
        let ps = self.cli(&["ps", "-aq"]);
        assert_eq!(stdout(&ps), "", "podman containers left");
        let others = || -> Vec<String> {
            self.processes()
                .into_iter()
                .map(|(_, c)| c)
                .filter(|c| !(c.starts_with("/usr/bin/conmon ") && c.contains(" --exec-attach ")))
                .collect()
        };
        assert!(eventually(10, || others().is_empty()), "{:?}", others());
        let links = self.in_netns(&["ip", "-o", "link"]).output().unwrap();
        let links = stdout(&links);
        assert_eq!(links.lines().count(), 1, "podman's namespace: {links}");
        let t = self.tmp.path();
        let want = [
            t.join("netns").display().to_string(),
            t.join("root/overlay").display().to_string(),
        ];
        let left: Vec<String> = self
            .mounts()
            .into_iter()
            .filter(|m| !want.contains(m))
            .collect();
        assert!(left.is_empty(), "mounts left: {left:?}");
    }
}

impl std::ops::Deref for Pod {
    type Target = Api;
    fn deref(&self) -> &Api {
        self.api.as_ref().unwrap()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cli(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.cli(&["pod", "rm", "-a", "-f"]);
        // Networks and volumes are in our directories (network_config_dir, --root):
        // reset removes nothing of the host's.
        let _ = self.cli(&["system", "reset", "-f"]);
        // What is left of ours: exec sessions' conmons (see assert_clean).
        for (pid, _) in self.processes() {
            // SAFETY: a process whose command line names our private directory, so
            // one our podman started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // The overlay driver's bind mount of its directory onto itself (reset leaves
        // it, podman 4.3) and the namespace file; deepest first.
        for m in self.mounts().iter().rev() {
            let p = std::ffi::CString::new(m.as_bytes()).unwrap();
            // SAFETY: a valid C string naming a mount under our own directory.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// `GET path` on 127.0.0.1:`port` from inside podman's network namespace.
fn http_get_in(pod: &Pod, port: u16, path: &str) -> String {
    let ns = std::fs::File::open(pod.netns()).unwrap();
    let path = path.to_string();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only (a network namespace may be entered by
        // one thread of a multi-threaded process); the fd is open.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        http_get(port, &path)
    })
    .join()
    .unwrap()
}

#[test]
fn ping_version_info_and_errors() {
    let ox = Ox::new();
    let oxs = Svc::start(&ox, &[]);
    let pod = Pod::start();
    // Both: `/_ping` GET and HEAD, bare and prefixed, with API-Version; version and
    // info through both CLIs. Difference: docker (and oxcart) send `OSType` with
    // the ping, which the CLI reads to pick the platform; podman 4.3 does not.
    ping_version_and_info(&oxs, true);
    ping_version_and_info(&pod, false);
    // Difference: the 404 of a missing container. docker's wording (`No such
    // container: X`, which compose and the SDKs match) against podman's own, with two
    // more fields.
    let (code, v) = oxs.json("GET", "/v1.41/containers/nosuch/json", "");
    assert_eq!(
        (code, v),
        (
            404,
            serde_json::json!({"message": "No such container: nosuch"})
        )
    );
    let (code, v) = pod.json("GET", "/v1.41/containers/nosuch/json", "");
    assert_eq!(
        (code, v),
        (
            404,
            serde_json::json!({
                "cause": "no such container",
                "message": "no container with name or ID \"nosuch\" found: no such container",
                "response": 404
            })
        )
    );
    // Difference: API versions. docker answers 400 above its maximum and below its
    // minimum (1.24); podman serves any version as 1.41.
    for (path, word) in [("/v1.99/version", "too new"), ("/v1.23/version", "too old")] {
        let (code, v) = oxs.json("GET", path, "");
        assert_eq!(code, 400, "oxcart {path}: {v}");
        assert!(v["message"].as_str().unwrap().contains(word), "{v}");
        let (code, v) = pod.json("GET", path, "");
        assert_eq!(
            (code, v["ApiVersion"].as_str()),
            (200, Some("1.41")),
            "podman {path}"
        );
    }
    // Difference: an unknown path. Both 404; docker (and oxcart) with a JSON message,
    // podman with Go's plain-text one.
    let (code, v) = oxs.json("GET", "/v1.41/nowhere", "");
    assert_eq!(code, 404);
    assert!(v["message"].is_string(), "{v}");
    let (code, head, body) = pod.raw("GET", "/v1.41/nowhere", b"");
    let body = decoded(&head, body);
    assert_eq!((code, body.as_slice()), (404, &b"Not Found\n"[..]));
    pod.assert_clean();
}

#[test]
fn docker_run_attached_detached_and_rm() {
    let ox = Ox::new().pulled();
    let oxs = Svc::start(&ox, &[]);
    let pod = Pod::start();
    let img = ox.image();
    for d in DOCKERS {
        // Attached, --rm: output and nothing left on both; the exit code only on ours.
        // Difference: podman 4.3's `wait?condition=removed` (the CLI's wait for an
        // --rm container) answers 0 whatever the exit (podman#18889, fixed in 4.6).
        run_rm_attached(&oxs, d, img, 3);
        run_rm_attached(&pod, d, img, 0);
        assert_eq!(
            stdout(&pod.cli(&["ps", "-aq"])),
            "",
            "{d}: --rm left a container"
        );
        // The image's default command, a name; without --rm podman's code is right.
        let o = pod.ok(d, &["run", "--name", "named", "--network", "none", img]);
        assert_eq!(o, "default-cmd\n");
        let o = pod.docker(
            d,
            &[
                "run",
                "--name",
                "three",
                "--network",
                "none",
                img,
                "sh",
                "-c",
                "exit 3",
            ],
        );
        assert_eq!(o.status.code(), Some(3), "{d}");
        pod.ok(d, &["rm", "named", "three"]);
    }
    // Detached: listed, logs, labels, inspect, stop, rm — the same.
    let id = run_detached(&pod, img);
    let id = id.as_str();
    pod.ok(OLD, &["stop", "-t", "1", id]);
    pod.ok(NEW, &["rm", id]);
    // Events: docker's create/start/die are there; podman adds its own (init,
    // cleanup, remove…), which docker's CLI prints as they come.
    // (read again until all are there: under load one read came back empty)
    let events = || events_of(&pod, id);
    let want = ["create", "start", "die", "init", "cleanup"];
    let has_all = |ev: &str| want.iter().all(|w| ev.lines().any(|l| l == *w));
    assert!(eventually(20, || has_all(&events())), "{}", events());
    // Difference: a missing container. The 20.10 CLI prints its own `No such
    // container` for any 404; 28.x prints the daemon's message, which is podman's
    // wording there.
    for (d, want_ox, want_pod) in [
        (
            OLD,
            "No such container: nosuch",
            "No such container: nosuch",
        ),
        (
            NEW,
            "No such container: nosuch",
            "no container with name or ID \"nosuch\" found: no such container",
        ),
    ] {
        for (api, want) in [(&*oxs, want_ox), (&*pod, want_pod)] {
            let o = api.docker(d, &["rm", "nosuch"]);
            assert_eq!(o.status.code(), Some(1), "{d}");
            assert!(stderr(&o).contains(want), "{d}: {}", stderr(&o));
        }
    }
    // Difference: a command that is not in the image. docker (and oxcart) report the
    // runtime's failure as exit 127; podman fails the start, so the CLI's attach,
    // already waiting, gets a 409 and exits 1 (podman's own message is lost).
    let o = oxs.docker(OLD, &["run", "--rm", "--network", "none", img, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = pod.docker(OLD, &["run", "--rm", "--network", "none", img, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unable to upgrade to tcp, received 409"),
        "{}",
        stderr(&o)
    );
    // (the --rm container goes a moment later, removed by podman's cleanup process)
    assert!(eventually(20, || stdout(&pod.cli(&["ps", "-aq"])).is_empty()));
    ox.assert_clean();
    pod.assert_clean();
}

#[test]
fn attach_before_start_and_wait_conditions() {
    let ox = Ox::new().pulled();
    let oxs = Svc::start(&ox, &[]);
    let pod = Pod::start();
    let img = ox.image();
    // start -a before the start, wait, next-exit: the same (api.rs).
    let id = start_attached_and_wait_next_exit(&pod, img);
    pod.ok(OLD, &["rm", &id]);
    // Difference: wait?condition=removed on an --rm container returns once it is gone
    // on both, with its exit code on ours and 0 on podman's (podman#18889).
    wait_removed(&oxs, img, 2);
    wait_removed(&pod, img, 0);
    ox.assert_clean();
    pod.assert_clean();
}

#[test]
fn run_it_and_exec_it_through_a_terminal() {
    let pod = Pod::start();
    // The same steps as api.rs's, but: the `run -it --rm` exit code is the --rm one
    // (0, podman#18889); and the tty's size: podman sets it after the process
    // started, so a process that asks at once mostly finds a terminal without
    // settings (busybox `stty size` fails); docker and oxcart size it before.
    let want = TtyExpect {
        rm_exit: 0,
        sized_before_start: false,
        missing_cmd: &[127],
    };
    run_it_and_exec_it(&pod, images().image.as_str(), &want);
    pod.assert_clean();
}

#[test]
fn logs_follow_cp_and_the_state_verbs() {
    let ox = Ox::new().pulled();
    let oxs = Svc::start(&ox, &[]);
    let pod = Pod::start();
    let img = ox.image();
    let d = OLD;
    // logs -f streams as lines come and stops with the container; --tail.
    let (id, follow) = verbs_followed(&pod, d, img);
    // top (podman's own columns, docker's are ps -ef's), pause, unpause, rename.
    let top = pod.ok(d, &["top", "verbs"]);
    assert!(
        top.starts_with("PID   USER     COMMAND\n") && top.contains("sleep"),
        "{top}"
    );
    pod.ok(d, &["pause", "verbs"]);
    assert_eq!(
        pod.ok(d, &["inspect", "-f", "{{.State.Status}}", "verbs"]),
        "paused\n"
    );
    pod.ok(d, &["unpause", "verbs"]);
    pod.ok(d, &["rename", "verbs", "renamed"]);
    assert_eq!(
        pod.ok(d, &["inspect", "-f", "{{.Name}}", &id]),
        "/renamed\n"
    );
    // cp both ways; a path out of the container's root resolves inside it.
    cp_both_ways(&pod, d, "renamed", &pod.tmp.path().join("cp"));
    pod.ok(d, &["kill", "-s", "KILL", "renamed"]);
    assert_followed(follow);
    pod.ok(d, &["restart", "-t", "1", "renamed"]);
    assert_eq!(
        pod.ok(d, &["inspect", "-f", "{{.State.Running}}", "renamed"]),
        "true\n"
    );
    // Difference: stats' Name. docker's is "/name" and both CLIs cut the first
    // character; podman's has no slash, so the CLIs print "enamed". (PIDs: api.rs.)
    let oid = oxs.ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "renamed",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "sleep 100; true",
        ],
    );
    for dk in DOCKERS {
        for (api, want) in [(&*oxs, "renamed "), (&*pod, "enamed ")] {
            let st = stats_line(api, dk, "renamed");
            assert!(
                st.starts_with(want) && !st.contains("0B / 0B"),
                "{dk}: {st}"
            );
        }
    }
    // Difference: top's columns (docker's are `ps -ef`'s, podman's its own above).
    let top = oxs.ok(d, &["top", "renamed"]);
    assert!(
        top.starts_with("UID") && top.contains("PPID") && top.contains("sleep"),
        "{top}"
    );
    // Difference: removing a running container. docker's wording (oxcart's) against
    // podman's.
    let o = oxs.docker(d, &["rm", "renamed"]);
    assert!(
        !o.status.success() && stderr(&o).contains("You cannot remove a running container"),
        "{}",
        stderr(&o)
    );
    oxs.ok(d, &["rm", "-f", oid.trim()]);
    // ps filters in both JSON shapes: the same.
    ps_label_filters(&pod, d, img);
    let o = pod.docker(d, &["rm", "renamed"]);
    assert!(
        !o.status.success()
            && stderr(&o).contains(&format!("cannot remove container {id} as it is running - running or paused containers cannot be removed without force: container state improper")),
        "{}",
        stderr(&o)
    );
    pod.ok(d, &["rm", "-f", "renamed"]);
    rm_all(&pod, d);
    ox.assert_clean();
    pod.assert_clean();
}

#[test]
fn images_networks_volumes_and_df() {
    let ox = Ox::new();
    clean_images_at_exit();
    let oxs = Svc::start(&ox, &[]);
    let pod = Pod::start();
    let img = images().image.as_str();
    let d = OLD;
    let o = pod.cli(&["rmi", "-a", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Difference: pull's progress stream. docker's has "Pull complete", "Digest:" and
    // "Status: Downloaded newer image for …" (the CLI prints them); podman's stops at
    // "Download complete" and ends with the image's name.
    let out = oxs.ok(d, &["pull", img]);
    assert!(
        out.contains("Pull complete") && out.contains("Status: Downloaded newer image"),
        "{out}"
    );
    let out = pod.ok(d, &["pull", img]);
    assert!(
        out.contains("Pulling fs layer") && out.contains("Download complete"),
        "{out}"
    );
    assert!(
        !out.contains("Pull complete") && !out.contains("Status:"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(img), "{out}");
    image_inspect_and_tag(&pod, d, img);
    // Difference: podman lists every tag of an image a reference filter selects;
    // dockerd (and oxcart, api.rs) only the tags that match.
    image_list_filters(&pod, d, img, false);
    // save | load; podman names a short name with docker.io/ in its answers.
    let tar = pod.tmp.path().join("img.tar");
    let (rmi, load) = save_rmi_load(&pod, d, &tar);
    assert_eq!(rmi, "Untagged: docker.io/other/name:v1\n");
    assert_eq!(load, "Loaded image: docker.io/other/name:v1");
    // Networks and volumes (podman's default network is listed as "bridge").
    network_created(&pod, d);
    assert_eq!(
        pod.ok(
            d,
            &["network", "inspect", "-f", "{{json .Labels}}", "apinet"]
        ),
        "{\"t\":\"1\"}\n"
    );
    assert_eq!(
        pod.ok(d, &["volume", "create", "--label", "x=y", "apivol"]),
        "apivol\n"
    );
    let out = run_on_apinet_with_apivol(&pod, d, img);
    assert!(out.starts_with("hi\n10.89.0."), "{out}");
    df_and_listed_command(&pod, d, img);
    rm_volume_and_network(&pod, d);
    container_prune(&pod, d, img);
    // Difference: `system prune -a` (20.10). The CLI's image prune sends
    // `dangling=false` while podman's compat handler adds its own `dangling` filter:
    // podman refuses, and nothing is pruned.
    for (api, ok) in [(&*oxs, true), (&*pod, false)] {
        let o = api.docker(d, &["system", "prune", "-af"]);
        assert_eq!(o.status.success(), ok, "{}", stderr(&o));
    }
    let o = pod.docker(d, &["system", "prune", "-af"]);
    assert!(
        stderr(&o).contains(
            "specifying \"dangling\" filter more than once with different values is not supported"
        ),
        "{}",
        stderr(&o)
    );
    assert_ne!(pod.ok(d, &["images", "-q"]), "");
    ox.assert_clean();
    pod.assert_clean();
}

#[test]
fn docker_compose_project_up_ps_logs_exec_restart_down() {
    let pod = Pod::start();
    let dir = pod.tmp.path().join("proj");
    write_compose_project(&dir, images().image.as_str());
    pod.compose_ok(&dir, &["up", "-d"]);
    // The project's bridge is in podman's namespace, and its name server's records in
    // our directory (see Pod::start), not the host's.
    let links = stdout(&pod.in_netns(&["ip", "-o", "link"]).output().unwrap());
    assert!(links.contains(": podman"), "{links}");
    let dns = pod
        .tmp
        .path()
        .join("netavark-run/aardvark-dns/apiproj_back");
    assert!(dns.is_file(), "{}", dns.display());
    // Difference: podman's inspect has `State.Health` (empty) for a container without
    // a healthcheck, which compose prints as "Up ()"; and the published port's
    // `HostIp` is "" where docker's is "0.0.0.0" (compose: ":PORT").
    let ps = pod.compose_ok(&dir, &["ps"]);
    assert!(
        ps.contains("apiproj_web_1") && ps.contains("apiproj_worker_1") && ps.contains("Up ()"),
        "{ps}"
    );
    let port = pod.compose_ok(&dir, &["port", "web", "8080"]);
    assert!(port.starts_with(':'), "{port}");
    let port: u16 = port.trim().trim_start_matches(':').parse().unwrap();
    // The volume was filled from the image and is served on the published port.
    assert!(
        eventually(20, || http_get_in(&pod, port, "/hello.txt")
            .contains("hello from the image")),
        "{}",
        http_get_in(&pod, port, "/hello.txt")
    );
    assert!(eventually(10, || pod
        .compose_ok(&dir, &["logs", "worker"])
        .contains("worker-up")));
    // DNS by service name on the project's network (aardvark-dns).
    let out = pod.compose_ok(
        &dir,
        &[
            "exec",
            "-T",
            "worker",
            "wget",
            "-qO-",
            "http://web:8080/hello.txt",
        ],
    );
    assert_eq!(out, "hello from the image\n");
    compose_restart_worker_and_down(&pod, &dir);
    assert_eq!(stdout(&pod.cli(&["ps", "-aq"])), "");
    assert_eq!(
        stdout(&pod.cli(&["volume", "ls", "-q"])),
        "",
        "down -v removed the volume"
    );
    assert!(!stdout(&pod.cli(&["network", "ls"])).contains("apiproj_back"));
    pod.assert_clean();
}

#[test]
fn testcontainers_python_mapped_port_and_log_wait() {
    let python = "/opt/oxcart-venv/bin/python";
    assert!(
        Path::new(python).exists(),
        "{python} missing: run scripts/setup.sh (it installs testcontainers-python)"
    );
    let pod = Pod::start();
    // In podman's network namespace, where its published ports are; Ryuk enabled
    // with our reaper's image, as in api.rs.
    let run = |mode: Option<&str>| {
        let mut c = pod.in_netns(&[python, "-c", TESTCONTAINERS_SCRIPT, images().image.as_str()]);
        c.env("DOCKER_HOST", pod.host());
        with_ryuk(&mut c, pod.cfg.path());
        if let Some(m) = mode {
            c.env("TESTCONTAINERS_CONNECTION_MODE", m);
        }
        c.output().unwrap()
    };
    // Difference: this machine has /.dockerenv, so testcontainers believes it runs in
    // a container and looks for the network's gateway in the container list's
    // `HostConfig.NetworkMode`: docker (and oxcart, api.rs) list it, podman 4.3 does
    // not, and testcontainers fails.
    let o = run(None);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("KeyError: 'HostConfig'"),
        "{}",
        stderr(&o)
    );
    // It failed after starting the reaper, which no client ever reached: the reaper
    // leaves by itself after its connection timeout (`auto_remove`), as Ryuk does.
    let left = stdout(&pod.cli(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(
        left.lines().count() == 1 && left.starts_with("testcontainers-ryuk-"),
        "{left}"
    );
    assert!(
        eventually(CONNECTION_SECS + 30, || stdout(&pod.cli(&["ps", "-aq"]))
            .is_empty()),
        "the unreached reaper stayed"
    );
    // With the docker host's address (the mode outside a container) it works.
    let o = run(Some("docker_host"));
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("BODY hello from the image"),
        "{}",
        stdout(&o)
    );
    // The context managers removed their containers.
    assert_eq!(stdout(&pod.cli(&["ps", "-aq"])), "");
    pod.assert_clean();
}

#[test]
fn testcontainers_ryuk_reaps_a_killed_session() {
    let python = "/opt/oxcart-venv/bin/python";
    assert!(
        Path::new(python).exists(),
        "{python} missing: run scripts/setup.sh (it installs testcontainers-python)"
    );
    let pod = Pod::start();
    // In podman's namespace, with the docker host's address (see the test above).
    let mut c = pod.in_netns(&[python]);
    c.env("DOCKER_HOST", pod.host())
        .env("TESTCONTAINERS_CONNECTION_MODE", "docker_host");
    let log = ryuk_reaps_a_killed_session(&pod, c, images().image.as_str());
    // Difference: the session is killed with the reaper's ACK unread, so the kernel
    // resets its connection, and podman's NAT carries the reset to the reaper, which
    // logs it (Ryuk would too) before the prune; oxcart's port proxy ends the
    // connection with a FIN instead (api.rs: no error at all).
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("level=ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("msg=scan") && errors[0].contains("Connection reset by peer"),
        "{log}"
    );
    assert_eq!(stdout(&pod.cli(&["ps", "-aq"])), "");
    assert_eq!(stdout(&pod.cli(&["volume", "ls", "-q"])), "");
    pod.assert_clean();
}

#[test]
fn a_container_reaches_the_api_through_the_bind_mounted_socket() {
    let pod = Pod::start();
    let (id, out) = reap_from_inside(&pod, images().image.as_str());
    assert_eq!(out, format!("1.41\n{}\n", &id[..12]));
    assert_eq!(stdout(&pod.cli(&["ps", "-aq"])), "");
    pod.assert_clean();
}
