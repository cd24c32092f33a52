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

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Debian's docker CLI (20.10) and the newer one on this machine.
const DOCKERS: &[&str] = &["/usr/bin/docker", "/usr/local/bin/docker"];
const OLD: &str = "/usr/bin/docker";
const NEW: &str = "/usr/local/bin/docker";

/// A docker client's view of an Engine API socket.
struct Api {
    sock: PathBuf,
    cfg: tempfile::TempDir,
}

impl Api {
    fn new(sock: PathBuf) -> Api {
        assert!(
            eventually(30, || UnixStream::connect(&sock).is_ok()),
            "no service listening on {}",
            sock.display()
        );
        Api {
            sock,
            cfg: tempfile::tempdir().unwrap(),
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn docker_cmd(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.cfg.path())
            .env("HOME", self.cfg.path())
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, bin: &str, args: &[&str]) -> Output {
        self.docker_cmd(bin, args).output().unwrap()
    }

    fn ok(&self, bin: &str, args: &[&str]) -> String {
        let o = self.docker(bin, args);
        assert!(
            o.status.success(),
            "{bin} {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// One raw HTTP/1.1 request (`Connection: close`); status, headers, body.
    fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&out[..end]).into_owned();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut b = out[end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            b = dechunk(&b);
        }
        (code, head, b)
    }

    fn json(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (code, _, b) = self.raw(method, path, body.as_bytes());
        (
            code,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = b;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + n]);
        rest = &rest[i + 4 + n..];
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `oxcart system service` on a socket of its own, for the side-by-side steps.
struct OxSvc {
    child: Child,
    api: Api,
}

impl OxSvc {
    fn start(ox: &Ox) -> OxSvc {
        let sock = ox.dir.path().join("d.sock");
        let mut c = ox.cmd();
        c.args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = c.spawn().unwrap();
        OxSvc {
            child,
            api: Api::new(sock),
        }
    }
}

impl std::ops::Deref for OxSvc {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for OxSvc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .join()
    .unwrap()
}

#[test]
fn ping_version_info_and_errors() {
    let ox = Ox::new();
    let oxs = OxSvc::start(&ox);
    let pod = Pod::start();
    // Both: `/_ping` GET and HEAD, bare and prefixed, with API-Version; version and
    // info through both CLIs.
    for (m, path) in [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/v1.41/_ping"),
    ] {
        for (api, who) in [(&*oxs, "oxcart"), (&*pod, "podman")] {
            let (code, head, body) = api.raw(m, path, b"");
            assert_eq!(code, 200, "{who} {m} {path}: {head}");
            let h = head.to_ascii_lowercase();
            assert!(h.contains("api-version: 1.41"), "{who}: {head}");
            assert_eq!(body, if m == "HEAD" { &b""[..] } else { &b"OK"[..] });
            // Difference: docker (and oxcart) send `OSType` with the ping, which the
            // CLI reads to pick the platform; podman 4.3 does not.
            assert_eq!(
                h.contains("ostype: linux"),
                who == "oxcart",
                "{who}: {head}"
            );
        }
    }
    for d in DOCKERS {
        for api in [&*oxs, &*pod] {
            let v = api.ok(
                d,
                &[
                    "version",
                    "--format",
                    "{{.Server.APIVersion}} {{.Server.Os}}",
                ],
            );
            assert_eq!(v.trim(), "1.41 linux", "{d}");
            let i = api.ok(d, &["info", "--format", "{{.OSType}} {{.Containers}}"]);
            assert_eq!(i.trim(), "linux 0", "{d}");
        }
    }
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
    let (code, _, body) = pod.raw("GET", "/v1.41/nowhere", b"");
    assert_eq!((code, body.as_slice()), (404, &b"Not Found\n"[..]));
    pod.assert_clean();
}

#[test]
fn docker_run_attached_detached_and_rm() {
    let ox = Ox::new().pulled();
    let oxs = OxSvc::start(&ox);
    let pod = Pod::start();
    let img = ox.image();
    let script = "echo out; echo err >&2; exit 3";
    for d in DOCKERS {
        // Attached, --rm: output and nothing left on both; the exit code only on ours.
        // Difference: podman 4.3's `wait?condition=removed` (the CLI's wait for an
        // --rm container) answers 0 whatever the exit (podman#18889, fixed in 4.6).
        for (api, code) in [(&*oxs, 3), (&*pod, 0)] {
            let o = api.docker(
                d,
                &["run", "--rm", "--network", "none", img, "sh", "-c", script],
            );
            assert_eq!(o.status.code(), Some(code), "{d}: {}", stderr(&o));
            assert_eq!(stdout(&o), "out\n", "{d}");
            assert!(stderr(&o).contains("err\n"), "{d}: {}", stderr(&o));
        }
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
    let id = pod.ok(
        OLD,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            "k=v",
            img,
            "sh",
            "-c",
            "echo started; exec sleep 100",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(eventually(10, || pod.ok(OLD, &["logs", id]) == "started\n"));
    let ps = pod.ok(NEW, &["ps", "--format", "{{.ID}} {{.Status}} {{.Labels}}"]);
    assert!(
        ps.starts_with(&id[..12]) && ps.contains("Up ") && ps.contains("k=v"),
        "{ps}"
    );
    let v: serde_json::Value = serde_json::from_str(&pod.ok(OLD, &["inspect", id])).unwrap();
    assert_eq!(v[0]["State"]["Running"], true);
    assert!(v[0]["NetworkSettings"]["Networks"].is_object(), "{v}");
    pod.ok(OLD, &["stop", "-t", "1", id]);
    pod.ok(NEW, &["rm", id]);
    // Events: docker's create/start/die are there; podman adds its own (init,
    // cleanup, remove…), which docker's CLI prints as they come.
    // (read again until all are there: under load one read came back empty)
    let events = || {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let filter = format!("container={id}");
        let args = [
            "events",
            "--since",
            "0",
            "--until",
            &until.to_string(),
            "--filter",
            &filter,
            "--format",
            "{{.Status}}",
        ];
        pod.ok(OLD, &args)
    };
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
    let oxs = OxSvc::start(&ox);
    let pod = Pod::start();
    let img = ox.image();
    // start -a attaches before the start: nothing lost, the exit code; wait.
    let id = pod.ok(
        OLD,
        &[
            "create",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "echo first; echo second; exit 4",
        ],
    );
    let id = id.trim().to_string();
    let o = pod.docker(OLD, &["start", "-a", &id]);
    assert_eq!(stdout(&o), "first\nsecond\n");
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(pod.ok(OLD, &["wait", &id]).trim(), "4");
    // next-exit: the headers come before the exit, the code after it.
    let mut s = UnixStream::connect(&pod.sock).unwrap();
    s.write_all(format!("POST /v1.41/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    pod.ok(OLD, &["start", &id]);
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&rest).contains("StatusCode") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&rest).contains("\"StatusCode\":4"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    pod.ok(OLD, &["rm", &id]);
    // Difference: wait?condition=removed on an --rm container returns once it is gone
    // on both, with its exit code on ours and 0 on podman's (podman#18889).
    for (api, code) in [(&*oxs, 2), (&*pod, 0)] {
        let id = api.ok(
            OLD,
            &[
                "run",
                "-d",
                "--rm",
                "--network",
                "none",
                img,
                "sh",
                "-c",
                "sleep 1; exit 2",
            ],
        );
        let (c, v) = api.json(
            "POST",
            &format!("/containers/{}/wait?condition=removed", id.trim()),
            "",
        );
        assert_eq!((c, v["StatusCode"].as_i64()), (200, Some(code)), "{v}");
        let o = api.docker(OLD, &["inspect", id.trim()]);
        assert!(
            !o.status.success(),
            "the --rm container is gone once wait returns"
        );
    }
    ox.assert_clean();
    pod.assert_clean();
}

/// `docker ARGS` under a real pty against `api`; output and exit code.
fn docker_in_pty(api: &Api, bin: &str, args: &[&str], input: &str) -> (String, i32) {
    let argv: Vec<String> = std::iter::once(bin.to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    let host = api.host();
    let cfg = api.cfg.path().as_os_str();
    let os = std::ffi::OsStr::new;
    let envs = [
        (os("DOCKER_HOST"), os(&host)),
        (os("DOCKER_CONFIG"), cfg),
        (os("HOME"), cfg),
    ];
    argv_in_pty(&argv, &envs, input, 1000)
}

#[test]
fn run_it_and_exec_it_through_a_terminal() {
    let pod = Pod::start();
    let img = images().image.as_str();
    for d in DOCKERS {
        // Typed input reaches the container through its tty. The exit code is the
        // --rm one (0, podman#18889). The tty's size: podman sets it after the process
        // started, so a process that asks at once mostly finds a terminal without
        // settings (busybox `stty size` fails); docker and oxcart size it before.
        let (out, code) = docker_in_pty(
            &pod,
            d,
            &[
                "run",
                "-it",
                "--rm",
                "--network",
                "none",
                img,
                "sh",
                "-c",
                "stty size; read x; echo got-$x; exit 5",
            ],
            "hello\r",
        );
        assert_eq!(code, 0, "{d}: {out}");
        assert!(out.contains("got-hello"), "{d}: {out}");
    }
    let id = pod.ok(
        OLD,
        &["run", "-d", "--network", "none", img, "sleep", "100"],
    );
    let id = id.trim();
    for d in DOCKERS {
        // exec -it, exec -i with stdout and stderr apart, a missing command: the same.
        let (out, code) = docker_in_pty(
            &pod,
            d,
            &[
                "exec",
                "-it",
                id,
                "sh",
                "-c",
                "tty; read y; echo exec-$y; exit 7",
            ],
            "there\r",
        );
        assert_eq!(code, 7, "{d}: {out}");
        assert!(
            out.contains("/dev/pts/") && out.contains("exec-there"),
            "{d}: {out}"
        );
        let mut c = pod.docker_cmd(
            d,
            &["exec", "-i", id, "sh", "-c", "cat; echo e >&2; exit 9"],
        );
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"piped input\n")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(9), "{d}: {}", stderr(&o));
        assert_eq!(stdout(&o), "piped input\n", "{d}");
        assert_eq!(stderr(&o), "e\n", "{d}");
        let o = pod.docker(d, &["exec", id, "nosuchcmd"]);
        assert_eq!(o.status.code(), Some(127), "{d}: {}", stderr(&o));
    }
    // The exec's exit code is there as soon as its stream ends.
    let (code, v) = pod.json(
        "POST",
        &format!("/containers/{id}/exec"),
        r#"{"Cmd":["sh","-c","exit 3"],"AttachStdout":true,"AttachStderr":true}"#,
    );
    assert_eq!(code, 201, "{v}");
    let eid = v["Id"].as_str().unwrap().to_string();
    let (code, _, _) = pod.raw(
        "POST",
        &format!("/exec/{eid}/start"),
        br#"{"Detach":false,"Tty":false}"#,
    );
    assert_eq!(code, 200);
    let (_, v) = pod.json("GET", &format!("/exec/{eid}/json"), "");
    assert_eq!(
        (v["Running"].as_bool(), v["ExitCode"].as_i64()),
        (Some(false), Some(3)),
        "{v}"
    );
    pod.ok(OLD, &["rm", "-f", id]);
    pod.assert_clean();
}

#[test]
fn logs_follow_cp_and_the_state_verbs() {
    let ox = Ox::new().pulled();
    let oxs = OxSvc::start(&ox);
    let pod = Pod::start();
    let img = ox.image();
    let d = OLD;
    let id = pod.ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "verbs",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 1; done; echo bye >&2; sleep 100",
        ],
    );
    let id = id.trim().to_string();
    // logs -f streams as lines come and stops with the container; --tail.
    let mut follow = pod.docker_cmd(d, &["logs", "-f", "verbs"]);
    follow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let follow = follow.spawn().unwrap();
    assert!(eventually(20, || stderr(
        &pod.docker(d, &["logs", "verbs"])
    ) == "bye\n"));
    let o = pod.docker(d, &["logs", "--tail", "1", "verbs"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", "bye\n"));
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
    let host = pod.tmp.path().join("cp");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "into the container\n").unwrap();
    pod.ok(
        d,
        &["cp", host.join("in.txt").to_str().unwrap(), "renamed:/tmp/"],
    );
    assert_eq!(
        pod.ok(d, &["exec", "renamed", "cat", "/tmp/in.txt"]),
        "into the container\n"
    );
    pod.ok(
        d,
        &["cp", "renamed:/data/hello.txt", host.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(host.join("hello.txt")).unwrap(),
        "hello from the image\n"
    );
    pod.ok(
        d,
        &[
            "cp",
            "renamed:/../../../../etc/hostname",
            host.join("h").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(host.join("h")).unwrap(),
        pod.ok(d, &["exec", "renamed", "cat", "/etc/hostname"])
    );
    pod.ok(d, &["kill", "-s", "KILL", "renamed"]);
    let o = follow.wait_with_output().unwrap();
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("line1\nline2\nline3\n", "bye\n")
    );
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
            let st = api.ok(
                dk,
                &[
                    "stats",
                    "--no-stream",
                    "--format",
                    "{{.Name}} {{.MemUsage}} {{.PIDs}}",
                    "renamed",
                ],
            );
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
    pod.ok(
        d,
        &[
            "run",
            "-d",
            "--label",
            "role=db",
            "--network",
            "none",
            img,
            "sleep",
            "100",
        ],
    );
    for f in [r#"{"label":{"role=db":true}}"#, r#"{"label":["role=db"]}"#] {
        let path = format!(
            "/containers/json?filters={}",
            f.replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('[', "%5B")
                .replace(']', "%5D")
                .replace('=', "%3D")
                .replace(':', "%3A")
        );
        let (code, v) = pod.json("GET", &path, "");
        assert_eq!(code, 200, "{v}");
        assert_eq!(v.as_array().unwrap().len(), 1, "{f}: {v}");
    }
    assert_eq!(
        pod.ok(NEW, &["ps", "-q", "--filter", "label=role=db"])
            .lines()
            .count(),
        1
    );
    let o = pod.docker(d, &["rm", "renamed"]);
    assert!(
        !o.status.success()
            && stderr(&o).contains(&format!("cannot remove container {id} as it is running - running or paused containers cannot be removed without force: container state improper")),
        "{}",
        stderr(&o)
    );
    pod.ok(d, &["rm", "-f", "renamed"]);
    for c in pod.ok(d, &["ps", "-aq"]).lines() {
        pod.ok(d, &["rm", "-f", c]);
    }
    ox.assert_clean();
    pod.assert_clean();
}

#[test]
fn images_networks_volumes_and_df() {
    let ox = Ox::new();
    clean_images_at_exit();
    let oxs = OxSvc::start(&ox);
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
    let (code, v) = pod.json("GET", &format!("/images/{img}/json"), "");
    assert_eq!(code, 200, "{v}");
    assert!(v["ContainerConfig"].is_object(), "{v}");
    assert_eq!(v["Config"]["WorkingDir"], "/data");
    let o = pod.docker(
        d,
        &["pull", &format!("{}/test/nosuch:latest", images().reg.addr)],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    pod.ok(d, &["tag", img, "other/name:v1"]);
    let list = pod.ok(NEW, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(list.contains("other/name:v1"), "{list}");
    // save | load; podman names a short name with docker.io/ in its answers.
    let tar = pod.tmp.path().join("img.tar");
    pod.ok(d, &["save", "-o", tar.to_str().unwrap(), "other/name:v1"]);
    assert_eq!(
        pod.ok(d, &["rmi", "other/name:v1"]),
        "Untagged: docker.io/other/name:v1\n"
    );
    assert_eq!(
        pod.ok(d, &["load", "-i", tar.to_str().unwrap()]),
        "Loaded image: docker.io/other/name:v1"
    );
    let o = pod.docker(d, &["rmi", "nosuch:latest"]);
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    // Networks and volumes (podman's default network is listed as "bridge").
    let net = pod.ok(d, &["network", "create", "--label", "t=1", "apinet"]);
    assert_eq!(net.trim().len(), 64, "{net}");
    let ls = pod.ok(d, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.contains("apinet") && ls.contains("bridge"), "{ls}");
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
    let out = pod.ok(
        d,
        &[
            "run",
            "--rm",
            "--network",
            "apinet",
            "-v",
            "apivol:/v",
            img,
            "sh",
            "-c",
            "echo hi > /v/f; cat /v/f; hostname -i",
        ],
    );
    assert!(out.starts_with("hi\n10.89.0."), "{out}");
    let df = pod.ok(d, &["system", "df"]);
    assert!(
        df.contains("Images") && df.contains("Local Volumes"),
        "{df}"
    );
    let cid = pod.ok(d, &["create", "--name", "dfcmd", img, "sleep", "5"]);
    let (_, ps) = pod.json("GET", "/containers/json?all=1", "");
    let (_, sdf) = pod.json("GET", "/system/df", "");
    for list in [&ps, &sdf["Containers"]] {
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == cid.trim())
            .unwrap();
        assert_eq!(c["Command"], "sleep 5", "{c}");
    }
    pod.ok(d, &["rm", "dfcmd"]);
    pod.ok(d, &["volume", "rm", "apivol"]);
    assert!(!pod
        .docker(d, &["volume", "inspect", "apivol"])
        .status
        .success());
    pod.ok(d, &["network", "rm", "apinet"]);
    assert!(!pod
        .docker(d, &["network", "inspect", "apinet"])
        .status
        .success());
    pod.ok(d, &["create", "--network", "none", img, "true"]);
    let out = pod.ok(d, &["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
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

/// docker-compose 1.29 against `api`.
fn compose(api: &Api, dir: &Path, args: &[&str]) -> Output {
    Command::new("docker-compose")
        .args(["--no-ansi", "-p", "apiproj"])
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", api.host())
        .env("DOCKER_CONFIG", api.cfg.path())
        .env("HOME", api.cfg.path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn compose_ok(api: &Api, dir: &Path, args: &[&str]) -> String {
    let o = compose(api, dir, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn docker_compose_project_up_ps_logs_exec_restart_down() {
    let pod = Pod::start();
    let dir = pod.tmp.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.7"
services:
  web:
    image: {img}
    command: ["busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/data"]
    ports: ["8080"]
    volumes: ["data:/data"]
    networks: [back]
  worker:
    image: {img}
    command: ["sh", "-c", "echo worker-up; exec sleep 1000"]
    depends_on: [web]
    networks: [back]
networks:
  back: {{}}
volumes:
  data: {{}}
"#,
            img = images().image
        ),
    )
    .unwrap();
    compose_ok(&pod, &dir, &["up", "-d"]);
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
    let ps = compose_ok(&pod, &dir, &["ps"]);
    assert!(
        ps.contains("apiproj_web_1") && ps.contains("apiproj_worker_1") && ps.contains("Up ()"),
        "{ps}"
    );
    let port = compose_ok(&pod, &dir, &["port", "web", "8080"]);
    assert!(port.starts_with(':'), "{port}");
    let port: u16 = port.trim().trim_start_matches(':').parse().unwrap();
    // The volume was filled from the image and is served on the published port.
    assert!(
        eventually(20, || http_get_in(&pod, port, "/hello.txt")
            .contains("hello from the image")),
        "{}",
        http_get_in(&pod, port, "/hello.txt")
    );
    assert!(eventually(10, || compose_ok(
        &pod,
        &dir,
        &["logs", "worker"]
    )
    .contains("worker-up")));
    // DNS by service name on the project's network (aardvark-dns).
    let out = compose_ok(
        &pod,
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
    compose_ok(&pod, &dir, &["restart", "-t", "1", "worker"]);
    let ps = compose_ok(&pod, &dir, &["ps"]);
    assert!(ps.contains("apiproj_worker_1") && ps.contains("Up"), "{ps}");
    compose_ok(&pod, &dir, &["down", "-v", "-t", "1"]);
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
    let script = r#"
import sys, urllib.request
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs
img = sys.argv[1]
c = (DockerContainer(img)
     .with_command(["sh", "-c", "echo server-ready; exec busybox httpd -f -p 8080 -h /data"])
     .with_exposed_ports(8080)
     .with_kwargs(network_mode="bridge"))
with c:
    wait_for_logs(c, "server-ready", timeout=30)
    host = c.get_container_host_ip()
    port = c.get_exposed_port(8080)
    body = urllib.request.urlopen(f"http://{host}:{port}/hello.txt", timeout=10).read().decode()
    print("BODY", body.strip())
"#;
    // In podman's network namespace, where its published ports are. Ryuk is off as
    // in api.rs (its image is on Docker Hub).
    let run = |mode: Option<&str>| {
        let mut c = pod.in_netns(&[python, "-c", script, images().image.as_str()]);
        c.env("DOCKER_HOST", pod.host())
            .env("TESTCONTAINERS_RYUK_DISABLED", "true")
            .env("HOME", pod.cfg.path());
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
fn a_container_reaches_the_api_through_the_bind_mounted_socket() {
    assert!(
        Path::new(NEW).exists(),
        "the static docker CLI ({NEW}) is what the container runs"
    );
    let pod = Pod::start();
    let img = images().image.as_str();
    let sock = format!("{}:/var/run/docker.sock", pod.sock.display());
    let cli = format!("{NEW}:/usr/bin/docker:ro");
    // As Ryuk does: list and remove containers by label from inside a container.
    let id = pod.ok(
        OLD,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            "reap=me",
            img,
            "sleep",
            "100",
        ],
    );
    let out = pod.ok(
        OLD,
        &["run", "--rm", "--network", "none", "-v", &sock, "-v", &cli, "-e", "HOME=/tmp", img, "sh", "-c",
          "docker version --format '{{.Server.APIVersion}}' && docker ps -q --filter label=reap=me | while read id; do docker rm -f $id; done"],
    );
    assert_eq!(out, format!("1.41\n{}\n", &id[..12]));
    assert_eq!(stdout(&pod.cli(&["ps", "-aq"])), "");
    pod.assert_clean();
}
