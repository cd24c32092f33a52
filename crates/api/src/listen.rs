//! Where the service listens: a unix socket (default), a loopback TCP port when asked,
//! or the socket systemd passed (socket activation, `sd_listen_fds(3)`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// docker's and podman's rootful default, under oxcart's run directory.
pub const DEFAULT_SOCKET: &str = "/run/oxcart/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
    /// The first socket systemd passed (fd 3).
    Activated,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid URI {0:?}: want unix:///path or tcp://127.0.0.1:PORT")]
    BadUri(String),
    #[error("tcp://{0}: only a loopback address is served over TCP (the API is root-equivalent and has no TLS)")]
    NotLoopback(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("another service is listening on {0}")]
    InUse(PathBuf),
    #[error("LISTEN_FDS: {0}")]
    Activation(String),
    #[error("group {0:?} not found in /etc/group")]
    NoGroup(String),
}

impl Listen {
    /// `unix:///path`, `/path`, `tcp://127.0.0.1:PORT`, or none: the default socket
    /// (or systemd's, when activated).
    pub fn parse(uri: Option<&str>) -> Result<Listen, ListenError> {
        let Some(uri) = uri else {
            if activated_fds()? > 0 {
                return Ok(Listen::Activated);
            }
            return Ok(Listen::Unix(PathBuf::from(DEFAULT_SOCKET)));
        };
        if let Some(p) = uri.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(ListenError::BadUri(uri.into()));
            }
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        if uri.starts_with('/') {
            return Ok(Listen::Unix(PathBuf::from(uri)));
        }
        if let Some(a) = uri.strip_prefix("tcp://") {
            let addr: std::net::SocketAddr = a
                .trim_end_matches('/')
                .parse()
                .map_err(|_| ListenError::BadUri(uri.into()))?;
            if !addr.ip().is_loopback() {
                return Err(ListenError::NotLoopback(a.into()));
            }
            return Ok(Listen::Tcp(addr));
        }
        Err(ListenError::BadUri(uri.into()))
    }
}

/// How many sockets systemd passed this process (`LISTEN_PID` must be ours).
pub fn activated_fds() -> Result<i32, ListenError> {
    let Some(pid) = std::env::var_os("LISTEN_PID") else {
        return Ok(0);
    };
    if pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return Ok(0);
    }
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| ListenError::Activation("not a number".into()))?;
    Ok(n)
}

/// The activated socket (fd 3, `SD_LISTEN_FDS_START`), close-on-exec from now on;
/// the variables are removed so no child takes them for its own.
pub fn take_activated() -> Result<OwnedFd, ListenError> {
    if activated_fds()? < 1 {
        return Err(ListenError::Activation("no socket passed".into()));
    }
    // SAFETY: fcntl on fd 3, which systemd passed us (checked by LISTEN_PID above).
    let ok = unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) } == 0;
    if !ok {
        return Err(ListenError::Activation(format!(
            "fd 3: {}",
            io::Error::last_os_error()
        )));
    }
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    // SAFETY: fd 3 is ours (passed by systemd) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(3) })
}

/// Bind the unix socket: parent directory made (0755), a stale socket nobody answers
/// on replaced, a live one refused; mode 0660, owned by root and `group` if given.
pub fn bind_unix(
    path: &Path,
    group: Option<&str>,
) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let io_err = |source| ListenError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    // The socket is made with no access for others from the start (umask), then
    // given its mode: no window in which anyone else could connect.
    // SAFETY: umask only swaps the process's mask.
    let old = unsafe { libc::umask(0o117) };
    let l = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = l.map_err(io_err)?;
    let gid = match group {
        Some(g) => Some(group_id(g)?),
        None => None,
    };
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(io_err)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    Ok(l)
}

/// A group's id from `/etc/group` (a number is taken as is).
fn group_id(g: &str) -> Result<u32, ListenError> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    let f = std::fs::read_to_string("/etc/group").unwrap_or_default();
    f.lines()
        .filter_map(|l| {
            let mut p = l.split(':');
            let name = p.next()?;
            let gid = p.nth(1)?.parse::<u32>().ok()?;
            (name == g).then_some(gid)
        })
        .next()
        .ok_or_else(|| ListenError::NoGroup(g.into()))
}

/// Whether fd is a unix-domain socket (activated sockets may be either family).
pub fn is_unix_socket(fd: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero sockaddr_storage is valid; getsockname fills it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss is valid for len bytes.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    r == 0 && i32::from(ss.ss_family) == libc::AF_UNIX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_tcp_is_loopback_only() {
        assert_eq!(
            Listen::parse(Some("unix:///tmp/x.sock")).expect("unix"),
            Listen::Unix("/tmp/x.sock".into())
        );
        assert!(matches!(
            Listen::parse(Some("tcp://127.0.0.1:2375")).expect("tcp"),
            Listen::Tcp(_)
        ));
        assert!(matches!(
            Listen::parse(Some("tcp://0.0.0.0:2375")),
            Err(ListenError::NotLoopback(_))
        ));
        assert!(Listen::parse(Some("http://x")).is_err());
        assert!(Listen::parse(Some("unix://rel")).is_err());
    }
}
