//! Handing the `SCMP_ACT_NOTIFY` listener fd to the seccomp agent.
//!
//! runtime-spec `config-linux.md` "Seccomp", `listenerPath`: "the runtime MUST send
//! the container process state … over the UNIX socket" with the listener fd as
//! `SCM_RIGHTS` ancillary data; `fds` names the attached fds (`"seccompFd"`). runc
//! (`libcontainer/seccomp.sendContainerProcessState`) connects a `SOCK_STREAM` socket,
//! sends the JSON and the fd in one `sendmsg`, and closes.

use crate::SeccompError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The name of the listener fd in [`ContainerProcessState::fds`] (runtime-spec).
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// runtime-spec `ContainerProcessState` (specs-go `config.go`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerProcessState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Names of the fds sent alongside, in order: `["seccompFd"]`.
    pub fds: Vec<String>,
    /// Pid of the container process (init), in the runtime's pid namespace.
    pub pid: i32,
    /// `linux.seccomp.listenerMetadata`, opaque to the runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    pub state: ProcessStateInner,
}

/// runtime-spec `State` as embedded in [`ContainerProcessState`] (the spec subset, not
/// runc's `state` command output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStateInner {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// runc sends `"creating"`: the listener is handed over during `create`.
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

impl ContainerProcessState {
    /// The state runc sends: `fds: ["seccompFd"]`, the init pid, the profile's
    /// `listenerMetadata`, and the container state with status `creating`.
    pub fn new(
        id: &str,
        pid: i32,
        bundle: &str,
        annotations: BTreeMap<String, String>,
        metadata: Option<&str>,
    ) -> ContainerProcessState {
        let v = oxcart_spec::OCI_VERSION.to_string();
        ContainerProcessState {
            oci_version: v.clone(),
            fds: vec![SECCOMP_FD_NAME.to_string()],
            pid,
            metadata: metadata.unwrap_or("").to_string(),
            state: ProcessStateInner {
                oci_version: v,
                id: id.to_string(),
                status: "creating".to_string(),
                pid,
                bundle: bundle.to_string(),
                annotations,
            },
        }
    }
}

/// Connect to the agent at `listener_path`, send `state` as JSON with `fd` attached
/// (`SCM_RIGHTS`), and close.
pub fn send_listener_fd(
    listener_path: &Path,
    fd: BorrowedFd<'_>,
    state: &ContainerProcessState,
) -> Result<(), SeccompError> {
    let err = |op: &'static str, source: io::Error| SeccompError::Listener {
        path: listener_path.to_path_buf(),
        op,
        source,
    };
    let json = serde_json::to_vec(state).map_err(|e| {
        err(
            "encode state",
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })?;
    let mut sock = UnixStream::connect(listener_path).map_err(|e| err("connect", e))?;

    // One sendmsg with the fd and as much of the JSON as fits; agents (runc's example
    // seccompagent included) read the fd and the message with one recvmsg.
    const SPACE: usize = 64; // >= CMSG_SPACE(sizeof(int)) on every Linux ABI
                             // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    debug_assert!(space <= SPACE);
    // u64 alignment satisfies cmsghdr's.
    let mut cbuf = [0u64; SPACE / 8];
    let mut iov = libc::iovec {
        iov_base: json.as_ptr() as *mut libc::c_void,
        iov_len: json.len(),
    };
    // SAFETY: msghdr is plain data; zero is a valid starting state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` bytes we own; CMSG_FIRSTHDR is non-null
    // because msg_controllen >= sizeof(cmsghdr); CMSG_DATA has room for one int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    let sent = loop {
        // SAFETY: msg and everything it points to are live; MSG_NOSIGNAL so a closed
        // agent gives EPIPE rather than killing the runtime with SIGPIPE.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(err("sendmsg", e));
        }
    };
    if sent < json.len() {
        sock.write_all(&json[sent..]).map_err(|e| err("write", e))?;
    }
    Ok(())
}
