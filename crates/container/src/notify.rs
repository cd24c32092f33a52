//! `NOTIFY_SOCKET` passthrough for sd_notify containers (runc `notify_socket.go`).
//!
//! When the runtime runs with `NOTIFY_SOCKET` set (systemd, or conmon for podman's
//! `--sdnotify=container`), the container gets its own socket directory bound at
//! `/run/notify` and `NOTIFY_SOCKET=/run/notify/notify.sock`. `start`/`run` listen
//! there, wait for the container's `READY=1`, and pass it on to the caller's socket
//! with `MAINPID` set to the container's init, so the supervisor tracks the container.

use crate::error::{Ctx, Error, Result};
use crate::sys;
use oxcart_spec::{Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const DIR_IN_CONTAINER: &str = "/run/notify";
pub const SOCKET_IN_CONTAINER: &str = "/run/notify/notify.sock";
const SOCKET_NAME: &str = "notify.sock";

/// The caller's notify socket, if any. Abstract sockets (`@name`) are refused: they
/// live in the caller's network namespace and cannot be bound into the container.
pub fn from_env() -> Result<Option<PathBuf>> {
    match std::env::var_os("NOTIFY_SOCKET") {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => {
            let p = PathBuf::from(v);
            if !p.is_absolute() {
                return Err(Error::Other(format!(
                    "NOTIFY_SOCKET {}: only absolute socket paths are supported",
                    p.display()
                )));
            }
            Ok(Some(p))
        }
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

/// Add the bind mount and the environment variable to the container's config.
pub fn add_to_spec(spec: &mut Spec, state_dir: &Path) {
    spec.mounts.push(Mount {
        destination: DIR_IN_CONTAINER.into(),
        typ: Some("bind".into()),
        source: Some(dir(state_dir).display().to_string()),
        options: ["bind", "nosuid", "noexec", "nodev", "ro"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    });
    if let Some(p) = spec.process.as_mut() {
        p.env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        p.env.push(format!("NOTIFY_SOCKET={SOCKET_IN_CONTAINER}"));
    }
}

/// Create the directory that is bound into the container (in create, before clone).
pub fn make_dir(state_dir: &Path) -> Result<()> {
    let d = dir(state_dir);
    std::fs::create_dir(&d).ctx(|| format!("create {}", d.display()))
}

/// The listening socket of one `start`/`run`.
pub struct Listener {
    sock: OwnedFd,
    host: PathBuf,
}

fn sockaddr(p: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: zeroed sockaddr_un is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = p.as_os_str().as_bytes();
    if b.len() >= a.sun_path.len() {
        return Err(Error::Other(format!(
            "socket path {} is too long",
            p.display()
        )));
    }
    for (d, s) in a.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + b.len() + 1) as libc::socklen_t;
    Ok((a, len))
}

impl Listener {
    /// Bind the container-side socket, if this container was created with a notify
    /// directory and this command runs with `NOTIFY_SOCKET`.
    pub fn bind(state_dir: &Path) -> Result<Option<Listener>> {
        let Some(host) = from_env()? else {
            return Ok(None);
        };
        let d = dir(state_dir);
        if !d.is_dir() {
            return Ok(None);
        }
        let path = d.join(SOCKET_NAME);
        let _ = std::fs::remove_file(&path);
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Error::last("notify socket"));
        }
        // SAFETY: fresh fd we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let (addr, len) = sockaddr(&path)?;
        // SAFETY: addr is a valid sockaddr_un of `len` bytes.
        if unsafe {
            libc::bind(
                sock.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                len,
            )
        } < 0
        {
            return Err(Error::last(format!("bind {}", path.display())));
        }
        // Any container user may notify (runc makes it world-writable too).
        let c = sys::cpath(&path)?;
        // SAFETY: valid path.
        unsafe { libc::chmod(c.as_ptr(), 0o777) };
        Ok(Some(Listener { sock, host }))
    }

    /// Wait for `READY=1` from the container (or for init to exit), then tell the
    /// caller's socket `READY=1` and `MAINPID=<init>`. Other messages are dropped, as
    /// runc does: the container's own MAINPID would be a pid in its namespace.
    pub fn forward_ready(&self, pid: libc::pid_t) -> Result<()> {
        let pidfd = sys::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let (sock_ev, pid_ev) = sys::poll_fd_or_exit(self.sock.as_fd(), pidfd.as_fd())
                .map_err(|e| Error::sys("poll notify socket", e))?;
            if sock_ev & libc::POLLIN != 0 {
                // SAFETY: reading into our buffer.
                let r = unsafe {
                    libc::recv(
                        self.sock.as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        0,
                    )
                };
                if r > 0 {
                    let msg = String::from_utf8_lossy(&buf[..r as usize]);
                    if msg.lines().any(|l| l.trim() == "READY=1") {
                        return self.send_host(&format!("READY=1\nMAINPID={pid}\n"));
                    }
                }
                continue;
            }
            if pid_ev != 0 {
                // init exited without ever being ready: nothing to forward.
                return Ok(());
            }
        }
    }

    fn send_host(&self, msg: &str) -> Result<()> {
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Error::last("socket"));
        }
        // SAFETY: fresh fd we own.
        let s = unsafe { OwnedFd::from_raw_fd(fd) };
        let (addr, len) = sockaddr(&self.host)?;
        // SAFETY: valid buffer, address and length.
        let r = unsafe {
            libc::sendto(
                s.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                libc::MSG_NOSIGNAL,
                &addr as *const _ as *const libc::sockaddr,
                len,
            )
        };
        if r < 0 {
            return Err(Error::last(format!(
                "send READY to NOTIFY_SOCKET {}",
                self.host.display()
            )));
        }
        Ok(())
    }
}
