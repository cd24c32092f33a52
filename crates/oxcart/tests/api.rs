//! `oxcart system service` end to end: docker's own CLIs (Debian's 20.10 and the
//! machine's newer one) against the API socket, over private engine roots and images
//! from a local registry; plus the wire details clients rely on, checked raw.
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

/// A running `oxcart system service` on a socket of its own.
struct Svc {
    child: Child,
    sock: PathBuf,
    cfg: tempfile::TempDir,
}

impl Svc {
    fn start(ox: &Ox, extra: &[&str]) -> Svc {
        let sock = ox.dir.path().join("d.sock");
        let mut c = ox.cmd();
        c.args(["system", "service", "--time", "0"]).args(extra);
        c.arg(format!("unix://{}", sock.display()));
        c.stdout(Stdio::null()).stderr(Stdio::inherit());
        let child = c.spawn().unwrap();
        assert!(
            eventually(20, || UnixStream::connect(&sock).is_ok()),
            "service did not listen on {}",
            sock.display()
        );
        Svc {
            child,
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
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
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
        s.read_to_end(&mut out).unwrap();
        parse_response(&out)
    }

    fn json(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (code, head, b) = self.raw(method, path, body.as_bytes());
        let b = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(&b)
        } else {
            b
        };
        let v = serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null);
        (code, v)
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_response(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head, out[end + 4..].to_vec())
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

#[test]
fn ping_version_info_and_errors_speak_dockers_wire() {
    let ox = Ox::new();
    let svc = Svc::start(&ox, &[]);
    // The socket is root's only (0660 root:root) unless a group is given.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(&svc.sock).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o660);
    assert_eq!((md.uid(), md.gid()), (0, 0));
    for (m, path) in [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/v1.41/_ping"),
    ] {
        let (code, head, body) = svc.raw(m, path, b"");
        assert_eq!(code, 200, "{m} {path}: {head}");
        let h = head.to_ascii_lowercase();
        assert!(h.contains("api-version: 1.41"), "{head}");
        assert!(h.contains("ostype: linux"), "{head}");
        assert_eq!(body, if m == "HEAD" { &b""[..] } else { &b"OK"[..] });
    }
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
    for d in DOCKERS {
        let out = svc.ok(
            d,
            &[
                "version",
                "--format",
                "{{.Server.APIVersion}} {{.Server.Os}}",
            ],
        );
        assert_eq!(out.trim(), "1.41 linux", "{d}");
        let out = svc.ok(d, &["info", "--format", "{{.OSType}} {{.Containers}}"]);
        assert_eq!(out.trim(), "linux 0", "{d}");
    }
}

#[test]
fn docker_run_attached_detached_and_rm_over_the_same_engine() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    for d in DOCKERS {
        // Attached, --rm: output, exit code, and nothing left.
        let o = svc.docker(
            d,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                img,
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
        );
        assert_eq!(o.status.code(), Some(3), "{d}: {}", stderr(&o));
        assert_eq!(stdout(&o), "out\n", "{d}");
        assert!(stderr(&o).contains("err\n"), "{d}: {}", stderr(&o));
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
    let id = svc.ok(
        "/usr/bin/docker",
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
    assert!(eventually(10, || svc.ok("/usr/bin/docker", &["logs", id])
        == "started\n"));
    let ps = svc.ok(
        "/usr/local/bin/docker",
        &["ps", "--format", "{{.ID}} {{.Status}} {{.Labels}}"],
    );
    assert!(
        ps.starts_with(&id[..12]) && ps.contains("Up ") && ps.contains("k=v"),
        "{ps}"
    );
    assert!(
        ox.ok(&["ps", "-q"]).contains(&id[..12]),
        "oxcart ps lists it"
    );
    assert_eq!(ox.ok(&["logs", id]), "started\n", "oxcart logs reads it");
    let v: serde_json::Value =
        serde_json::from_str(&svc.ok("/usr/bin/docker", &["inspect", id])).unwrap();
    assert_eq!(v[0]["State"]["Running"], true);
    assert!(
        v[0]["NetworkSettings"]["Networks"].is_object(),
        "Networks never null"
    );
    svc.ok("/usr/bin/docker", &["stop", "-t", "1", id]);
    let v = ox.inspect(id);
    assert_eq!(v["State"]["Status"], "exited");
    svc.ok("/usr/local/bin/docker", &["rm", id]);
    // Errors keep docker's wording and the CLI's exit codes.
    let o = svc.docker("/usr/bin/docker", &["rm", "nosuch"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
    let o = svc.docker(
        "/usr/bin/docker",
        &["run", "--rm", "--network", "none", img, "nosuchcmd"],
    );
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    ox.assert_clean();
}

#[test]
fn attach_before_start_and_wait_conditions() {
    let ox = Ox::new().pulled();
    let svc = Svc::start(&ox, &[]);
    let img = ox.image();
    let d = "/usr/bin/docker";
    // start -a attaches before the start: the first line is not lost.
    let id = svc.ok(
        d,
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
    let first = id.clone();
    let o = svc.docker(d, &["start", "-a", &id]);
    assert_eq!(stdout(&o), "first\nsecond\n");
    assert_eq!(o.status.code(), Some(4));
    // wait on an exited container answers at once with its code.
    assert_eq!(svc.ok(d, &["wait", &id]).trim(), "4");
    // next-exit: the headers come before the exit, the code after it.
    let mut s = UnixStream::connect(&svc.sock).unwrap();
    s.write_all(format!("POST /v1.41/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    svc.ok(d, &["start", &id]);
    let mut rest = Vec::new();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
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
    // wait?condition=removed returns once an --rm container is gone.
    let id = svc.ok(
        d,
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
    let (code, v) = svc.json(
        "POST",
        &format!("/containers/{}/wait?condition=removed", id.trim()),
        "",
    );
    assert_eq!((code, v["StatusCode"].as_i64()), (200, Some(2)), "{v}");
    let gone = ox.run(&["inspect", id.trim()]);
    assert!(
        !gone.status.success(),
        "the --rm container is gone once wait returns"
    );
    svc.ok(d, &["rm", &first]);
    ox.assert_clean();
}
