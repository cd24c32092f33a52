//! POSIX-platform hooks (runtime-spec config.md "POSIX-platform Hooks", runtime.md
//! "Lifecycle"): each hook runs with exactly its `args` (args[0] as argv[0]) and
//! `env`, the container's state JSON on stdin, and is killed after `timeout` seconds.
//! Output is captured and reported with a failure, as runc does ("error running
//! <kind> hook #<n>: …, stdout: …, stderr: …").
//!
//! Where each kind runs (the lifecycle drives these):
//! - `prestart`, `createRuntime`: the runtime, after init's namespaces exist and its
//!   mounts are done, before `pivot_root` (init waits on `Msg::Hooks`);
//! - `createContainer`: init itself, same point, in the container's namespaces;
//! - `startContainer`: init, after `start` released it and before the user's program;
//! - `poststart`: `start`/`run` after the program runs; `poststop`: `delete`.
//!
//! A failure before the program starts fails the operation; after it, the spec asks
//! for a warning only, which is queued here for the binary to log ([`take_warnings`]).

use crate::error::{Error, Result};
use crate::sys;
use oxcart_spec::{Hook, Status};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The runtime-spec `state` a hook reads on stdin (runtime.md "State"): only the
/// spec's fields, none of runc's `state` command extras.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Failures of hooks that must not fail the operation (poststart, poststop): the
/// binary logs them as warnings (runtime-spec: "the runtime MUST log a warning").
pub fn take_warnings() -> Vec<String> {
    match WARNINGS.lock() {
        Ok(mut w) => std::mem::take(&mut *w),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    }
}

pub(crate) fn warn(msg: String) {
    match WARNINGS.lock() {
        Ok(mut w) => w.push(msg),
        Err(p) => p.into_inner().push(msg),
    }
}

/// Run `hooks` of `kind` in order; the first failure stops and is returned.
pub fn run(kind: &str, hooks: &[Hook], state: &HookState) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state)
        .map_err(|e| Error::Other(format!("serialize hook state: {e}")))?;
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, &json)
            .map_err(|m| Error::Other(format!("error running {kind} hook #{i}: {m}")))?;
    }
    Ok(())
}

/// Run every hook of `kind`; failures become warnings (poststart, poststop).
pub fn run_warn(kind: &str, hooks: &[Hook], state: &HookState) {
    let json = match serde_json::to_vec(state) {
        Ok(j) => j,
        Err(e) => return warn(format!("serialize hook state: {e}")),
    };
    for (i, h) in hooks.iter().enumerate() {
        if let Err(m) = run_one(h, &json) {
            warn(format!("error running {kind} hook #{i}: {m}"));
        }
    }
}

/// Check the hooks in a config before anything is created (runtime-spec: `path`
/// absolute, `timeout` greater than zero).
pub fn validate(hooks: Option<&oxcart_spec::Hooks>) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    for (kind, list) in [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("createContainer", &h.create_container),
        ("startContainer", &h.start_container),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ] {
        for (i, hook) in list.iter().enumerate() {
            if !hook.path.starts_with('/') {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{:?} is not an absolute path", hook.path),
                ));
            }
            if hook.timeout.is_some_and(|t| t <= 0) {
                return Err(Error::config(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES) => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn run_one(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let mut cmd = Command::new(&h.path);
    if let Some((a0, rest)) = h.args.split_first() {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        match e.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(e, ""),
        };
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("fork/exec {}: {}", h.path, describe(&e)))?;
    let pid = child.id() as libc::pid_t;
    let pidfd = sys::pidfd_open(pid).map_err(|e| format!("pidfd_open: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE): the state is small.
        let _ = stdin.write_all(state);
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let (mut obuf, mut ebuf) = (Vec::new(), Vec::new());
    let deadline = h
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    let mut exited = false;
    while !exited {
        let wait_ms = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                    let _ = child.wait();
                    return Err(format!(
                        "hook ran past specified timeout of {:.1}s",
                        h.timeout.unwrap_or(0) as f64
                    ));
                }
                (d - now).as_millis().min(i32::MAX as u128) as i32
            }
            None => -1,
        };
        let mut fds = vec![libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for p in [
            out.as_ref().map(|o| o.as_raw_fd()),
            err.as_ref().map(|e| e.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        {
            fds.push(libc::pollfd {
                fd: p,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: a valid pollfd array of fds.len() entries.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        exited = fds[0].revents != 0;
        drain(&mut out, &fds, &mut obuf, exited);
        drain(&mut err, &fds, &mut ebuf, exited);
    }
    let st = child.wait().map_err(|e| format!("wait: {e}"))?;
    if st.success() {
        return Ok(());
    }
    let how = match (
        st.code(),
        std::os::unix::process::ExitStatusExt::signal(&st),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {s}"),
        _ => "failed".into(),
    };
    Err(format!(
        "{how}, stdout: {}, stderr: {}",
        String::from_utf8_lossy(&obuf).trim_end(),
        String::from_utf8_lossy(&ebuf).trim_end()
    ))
}

/// Read what a pipe has. Once the hook has exited, read without blocking: a
/// daemon it left behind may keep the pipe open forever.
fn drain<R: Read + AsRawFd>(
    pipe: &mut Option<R>,
    fds: &[libc::pollfd],
    buf: &mut Vec<u8>,
    exited: bool,
) {
    let Some(p) = pipe.as_mut() else { return };
    let fd = p.as_raw_fd();
    let ready = fds
        .iter()
        .any(|f| f.fd == fd && f.revents & (libc::POLLIN | libc::POLLHUP) != 0);
    if !ready && !exited {
        return;
    }
    if exited {
        // SAFETY: fcntl on a pipe fd we own.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
    }
    let mut chunk = [0u8; 4096];
    loop {
        match p.read(&mut chunk) {
            Ok(0) => {
                *pipe = None;
                return;
            }
            Ok(n) => {
                // Enough to explain a failure; the rest is dropped.
                if buf.len() < 64 * 1024 {
                    buf.extend_from_slice(&chunk[..n]);
                }
                if !exited {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                if exited {
                    *pipe = None;
                }
                return;
            }
        }
    }
}
