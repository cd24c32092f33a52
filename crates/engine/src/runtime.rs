//! The OCI runtime, through its command line (runc's): the contract every
//! runc-compatible binary keeps, so `--runtime runc` (or `runsc`, or a path) works as
//! well as ours (ENGINE.md: "talk to the runtime through its library or its CLI").
//!
//! Our own runtime (the default `oxcart-runtime`, configured without extra arguments)
//! is called through its library, `oxcart_container`, for `state`, `start`, `kill`
//! and `delete`: the same code the binary runs on the same state directory (same
//! `--root`, same `state.json`), minus a process start each (~1–3 ms: the binary's
//! start-up and its CVE-2019-5736 checks are not needed to read state or open a
//! fifo). `create` stays the binary's, run by the monitor (init must be the
//! monitor's child, and the binary's read-only self-view protects the host's
//! runtime binary from the container); so does `exec`. A container made by one path
//! is handled by the other (`oxcart-runtime --root … list` sees it).
//! `OXCART_RUNTIME_CLI=1` in the environment forces the command line (A/B runs).

use crate::error::{io_err, EngineError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A resolved runtime: a binary, the global arguments it needs, and its state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The name the container was created with (kept in its record).
    pub name: String,
    pub path: PathBuf,
    /// Global flags placed before the subcommand (`runsc --ignore-cgroups …`).
    pub args: Vec<String>,
    /// `--root` for the runtime's state.
    pub root: PathBuf,
}

/// What `RUNTIME state ID` says (the OCI state, runtime-spec "State").
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RtState {
    pub status: String,
    #[serde(default)]
    pub pid: i32,
}

/// The runtime's own error text out of what it printed: runc's logfmt
/// (`time=… level=error msg="…"`), its JSON log lines, or plain text.
pub fn runtime_message(stderr: &str) -> String {
    let mut last = String::new();
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                last = m.to_string();
                continue;
            }
        }
        if let Some(i) = line.find("msg=\"") {
            let rest = &line[i + 5..];
            let mut msg = String::new();
            let mut esc = false;
            for c in rest.chars() {
                match (esc, c) {
                    (true, c) => {
                        msg.push(c);
                        esc = false
                    }
                    (false, '\\') => esc = true,
                    (false, '"') => break,
                    (false, c) => msg.push(c),
                }
            }
            last = msg;
            continue;
        }
        last = line.to_string();
    }
    last
}

/// How runtimes say they do not know a container (runc: "container \"x\" does not
/// exist"; others "not found").
fn is_not_found(msg: &str) -> bool {
    msg.contains("does not exist") || msg.contains("not exist") || msg.contains("not found")
}

/// How the library's errors read to the engine: as the binary prints them.
fn lib_err(op: &str) -> impl FnOnce(oxcart_container::Error) -> EngineError + '_ {
    move |e| {
        // Hook warnings (poststart, poststop) do not fail an operation; the binary
        // logs them to its --log, which the engine's CLI path discards too.
        drop(oxcart_container::hooks::take_warnings());
        EngineError::Runtime {
            op: op.to_string(),
            msg: e.to_string(),
        }
    }
}

impl Runtime {
    /// The library's global options when this runtime is our own and the library
    /// can stand in for it (module docs); `None` means the command line.
    fn library(&self) -> Option<oxcart_container::Global> {
        let ours = self.name == crate::config::DEFAULT_RUNTIME
            && self.args.is_empty()
            && self.path.file_name() == Some(std::ffi::OsStr::new(crate::config::DEFAULT_RUNTIME))
            && std::env::var_os("OXCART_RUNTIME_CLI").is_none_or(|v| v.is_empty() || v == "0");
        if !ours {
            return None;
        }
        Some(oxcart_container::Global {
            root: self.root.clone(),
            systemd_cgroup: false,
            // As the binary resolves its default `--rootless=auto`.
            rootless: oxcart_container::rootless::resolve_flag(None).ok()?,
        })
    }

    /// Runs a library operation, discarding the hook warnings it queued (see
    /// [`lib_err`]).
    fn lib<T>(op: &str, r: std::result::Result<T, oxcart_container::Error>) -> Result<T> {
        match r {
            Ok(v) => {
                drop(oxcart_container::hooks::take_warnings());
                Ok(v)
            }
            Err(e) => Err(lib_err(op)(e)),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.args).arg("--root").arg(&self.root);
        c
    }

    /// Run a subcommand, returning its stdout; a failure carries the runtime's message.
    fn run(&self, op: &str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut c = self.command();
        c.arg(op).args(args);
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(io_err(&self.path))?;
        if let (Some(data), Some(mut si)) = (input, child.stdin.take()) {
            si.write_all(data).map_err(io_err(&self.path))?;
        }
        let out = child.wait_with_output().map_err(io_err(&self.path))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(EngineError::Runtime {
                op: op.to_string(),
                msg: runtime_message(&String::from_utf8_lossy(&out.stderr)),
            })
        }
    }

    /// `state ID`; `None` when the runtime does not know the container.
    pub fn state(&self, id: &str) -> Result<Option<RtState>> {
        if let Some(g) = self.library() {
            return match oxcart_container::state(&g, id) {
                Ok(s) => Ok(Some(RtState {
                    status: s.status.to_string(),
                    pid: s.pid,
                })),
                Err(oxcart_container::Error::NotExist(_)) => Ok(None),
                Err(e) => Err(lib_err("state")(e)),
            };
        }
        match self.run("state", &[id], None) {
            Ok(out) => serde_json::from_slice(&out)
                .map(Some)
                .map_err(|e| EngineError::Runtime {
                    op: "state".into(),
                    msg: format!("unreadable state: {e}"),
                }),
            Err(EngineError::Runtime { msg, .. }) if is_not_found(&msg) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `delete --force ID`, a container the runtime does not know counting as
    /// deleted: one process where `state` + `delete` took two (runc and
    /// oxcart-runtime already exit 0 for an unknown id with `--force`; a runtime that
    /// complains says "does not exist", as `state` does).
    pub fn delete_if_exists(&self, id: &str) -> Result<()> {
        match self.delete(id, true) {
            Err(EngineError::Runtime { msg, .. }) if is_not_found(&msg) => Ok(()),
            r => r,
        }
    }

    pub fn start(&self, id: &str) -> Result<()> {
        if let Some(g) = self.library() {
            return Self::lib("start", oxcart_container::start(&g, id));
        }
        self.run("start", &[id], None).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        if let Some(g) = self.library() {
            // The binary's own parsing: a name with or without SIG, or a number.
            let sig = oxcart_container::sys::signal_number(signal).ok_or_else(|| {
                EngineError::Runtime {
                    op: "kill".into(),
                    msg: format!("unknown signal {signal:?}"),
                }
            })?;
            return Self::lib("kill", oxcart_container::kill(&g, id, sig, all));
        }
        if all {
            self.run("kill", &["--all", id, signal], None).map(drop)
        } else {
            self.run("kill", &[id, signal], None).map(drop)
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        if let Some(g) = self.library() {
            return Self::lib("delete", oxcart_container::delete(&g, id, force));
        }
        if force {
            self.run("delete", &["--force", id], None).map(drop)
        } else {
            self.run("delete", &[id], None).map(drop)
        }
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        self.run("pause", &[id], None).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        self.run("resume", &[id], None).map(drop)
    }

    /// `update --resources - ID` with OCI `LinuxResources` JSON, as containerd sends.
    pub fn update(&self, id: &str, resources: &serde_json::Value) -> Result<()> {
        let body = resources.to_string();
        self.run("update", &["--resources", "-", id], Some(body.as_bytes()))
            .map(drop)
    }

    /// The container's host pids (`ps --format json ID`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.run("ps", &["--format", "json", id], None)?;
        serde_json::from_slice(&out).map_err(|e| EngineError::Runtime {
            op: "ps".into(),
            msg: format!("unreadable pid list: {e}"),
        })
    }

    /// A command for `exec`, with the global flags in place; the caller adds the rest
    /// and owns the stdio (a foreground `exec` is the user's terminal, as docker's).
    pub fn exec_command(&self) -> Command {
        let mut c = self.command();
        c.arg("exec");
        c
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::runtime_message;

    #[test]
    fn reads_each_runtime_error_shape() {
        assert_eq!(
            runtime_message(
                "time=\"2024\" level=error msg=\"container \\\"x\\\" does not exist\"\n"
            ),
            "container \"x\" does not exist"
        );
        assert_eq!(
            runtime_message("{\"level\":\"error\",\"msg\":\"boom\",\"time\":\"t\"}\n"),
            "boom"
        );
        assert_eq!(runtime_message("plain words\n\n"), "plain words");
    }
}
