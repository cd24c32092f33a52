//! The client side of the Engine API tests (`api.rs`, `api_podman.rs`): an Engine API
//! socket driven by docker's CLIs, docker-compose and raw HTTP/1.1, and
//! `oxcart system service` on a socket of its own. Which service a test talks to is
//! the `Api` it holds: `Svc` derefs to one, and so does `api_podman.rs`'s podman.
#![allow(dead_code, clippy::unwrap_used)]

mod reaper;
mod steps;

use crate::engine::*;
pub use reaper::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
pub use steps::*;

/// Debian's docker CLI (20.10) and the newer one on this machine.
pub const DOCKERS: &[&str] = &[OLD, NEW];
pub const OLD: &str = "/usr/bin/docker";
pub const NEW: &str = "/usr/local/bin/docker";

/// A docker client's view of an Engine API socket: its own client configuration
/// directory (`DOCKER_CONFIG`, `HOME`), so logins and contexts stay the test's.
pub struct Api {
    pub sock: PathBuf,
    pub cfg: tempfile::TempDir,
}

impl Api {
    /// Waits for a service to listen on `sock`.
    pub fn new(sock: PathBuf) -> Api {
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

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The client's environment: this socket and this configuration, and no
    /// `DOCKER_API_VERSION` of the caller's (the CLI must negotiate).
    fn client_env(&self, c: &mut Command) {
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.cfg.path())
            .env("HOME", self.cfg.path())
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null());
    }

    pub fn docker_cmd(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args);
        self.client_env(&mut c);
        c
    }

    pub fn docker(&self, bin: &str, args: &[&str]) -> Output {
        self.docker_cmd(bin, args).output().unwrap()
    }

    pub fn ok(&self, bin: &str, args: &[&str]) -> String {
        succeeded(&self.docker(bin, args), bin, args)
    }

    /// One raw HTTP/1.1 request (`Connection: close`); status, headers, and the body
    /// as it came on the wire (see `decoded`).
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
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
        // A server that refuses a body early (413) closes before taking it all.
        let _ = s.write_all(body);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_response(&out)
    }

    /// A request whose answer is JSON (`Null` when it is not).
    pub fn json(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (code, head, b) = self.raw(method, path, body.as_bytes());
        let b = decoded(&head, b);
        let v = serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null);
        (code, v)
    }

    /// Debian's docker-compose 1.29 in `dir`, as project `apiproj`.
    pub fn compose(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new("docker-compose");
        c.args(["--no-ansi", "-p", "apiproj"])
            .args(args)
            .current_dir(dir);
        self.client_env(&mut c);
        c.output().unwrap()
    }

    pub fn compose_ok(&self, dir: &Path, args: &[&str]) -> String {
        succeeded(&self.compose(dir, args), "docker-compose", args)
    }

    /// `docker ARGS` under a real pty (util-linux `script`), feeding `input` in
    /// chunks separated by `\u{1}`; output and exit code.
    pub fn docker_in_pty(&self, bin: &str, args: &[&str], input: &str) -> (String, i32) {
        let argv: Vec<String> = std::iter::once(bin.to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .collect();
        let host = self.host();
        let cfg = self.cfg.path().as_os_str();
        let os = std::ffi::OsStr::new;
        let envs = [
            (os("DOCKER_HOST"), os(&host)),
            (os("DOCKER_CONFIG"), cfg),
            (os("HOME"), cfg),
        ];
        argv_in_pty(&argv, &envs, input, 1000)
    }
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0, so the answer ends with the
/// connection): the whole response, or "" while nothing listens there.
pub fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `c` run with `input` on a pipe to its stdin, closed after it; its output.
pub fn output_with_stdin(mut c: Command, input: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A running `oxcart system service` on a socket of its own.
pub struct Svc {
    pub child: Child,
    pub api: Api,
}

impl Svc {
    pub fn start(ox: &Ox, extra: &[&str]) -> Svc {
        Self::start_cmd(ox, ox.cmd(), extra)
    }

    /// The service run from another copy of the `oxcart` binary (same flags and
    /// environment as `ox.cmd()`).
    pub fn start_from(ox: &Ox, exe: &Path, extra: &[&str]) -> Svc {
        let base = ox.cmd();
        let mut c = Command::new(exe);
        c.args(base.get_args());
        for (k, v) in base.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        Self::start_cmd(ox, c, extra)
    }

    fn start_cmd(ox: &Ox, mut c: Command, extra: &[&str]) -> Svc {
        let sock = ox.dir.path().join("d.sock");
        c.args(["system", "service", "--time", "0"])
            .args(extra)
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = c.spawn().unwrap();
        Svc {
            child,
            api: Api::new(sock),
        }
    }
}

impl std::ops::Deref for Svc {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status, head and body of a whole HTTP/1.1 response.
pub fn parse_response(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head, out[end + 4..].to_vec())
}

/// The body of a response with head `head`: de-chunked when it was sent chunked.
pub fn decoded(head: &str, b: Vec<u8>) -> Vec<u8> {
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&b)
    } else {
        b
    }
}

pub fn dechunk(b: &[u8]) -> Vec<u8> {
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

/// The stdout of `prog args`, which must have succeeded (else its code and output).
fn succeeded(o: &Output, prog: &str, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "{prog} {args:?} failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
