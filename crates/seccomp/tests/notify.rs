//! SCMP_ACT_NOTIFY end to end: a child installs a filter, the listener fd reaches a
//! test agent (directly, and through send_listener_fd like runc), the agent receives the
//! notification and answers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::{compile, send_listener_fd, ContainerProcessState, Filter};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

#[repr(C)]
#[derive(Default, Debug)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default, Debug)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp)
const NOTIF_RECV: libc::c_ulong = 0xC050_2100;
const NOTIF_SEND: libc::c_ulong = 0xC018_2101;

/// Receive one notification and answer it with (val, error).
fn answer(listener: RawFd, val: i64, error: i32) -> Notif {
    let mut n = Notif::default();
    // SAFETY: n is a zeroed seccomp_notif, as SECCOMP_IOCTL_NOTIF_RECV requires.
    let r = unsafe { libc::ioctl(listener, NOTIF_RECV, &mut n as *mut Notif) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = NotifResp {
        id: n.id,
        val,
        error,
        flags: 0,
    };
    // SAFETY: valid response struct.
    let r = unsafe { libc::ioctl(listener, NOTIF_SEND, &resp as *const NotifResp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    n
}

fn notify_profile(extra_flags: &[&str], listener: &str) -> oxcart_spec::LinuxSeccomp {
    let mut p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_NOTIFY", None)],
    );
    p.listener_path = Some(listener.into());
    p.listener_metadata = Some("meta-data 1".into());
    p.flags = extra_flags.iter().map(|s| s.to_string()).collect();
    p
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: valid array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (owned(fds[0]), owned(fds[1]))
}

/// Take `fd` from process `pid` (pidfd_getfd, Linux 5.6).
fn steal_fd(pid: i32, fd: RawFd) -> OwnedFd {
    // SAFETY: plain syscalls on our own child.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        assert!(
            pidfd >= 0,
            "pidfd_open: {}",
            std::io::Error::last_os_error()
        );
        let pidfd = owned(pidfd as RawFd);
        let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        assert!(got >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        owned(got as RawFd)
    }
}

/// The child: report the listener fd number on `w`, then call getppid twice; expects
/// 4242, then EXDEV. Exit 0 on success.
fn child_body(w: RawFd, fd: Option<RawFd>) -> i32 {
    let Some(fd) = fd else { return 50 };
    let bytes = fd.to_ne_bytes();
    // SAFETY: writing 4 bytes from a live buffer.
    if unsafe { libc::write(w, bytes.as_ptr().cast(), 4) } != 4 {
        return 51;
    }
    if sys0(libc::SYS_getppid) != Ok(4242) {
        return 52;
    }
    if sys0(libc::SYS_getppid) != Err(libc::EXDEV) {
        return 53;
    }
    0
}

fn read_fd_number(r: &OwnedFd) -> RawFd {
    let mut b = [0u8; 4];
    // SAFETY: reading into a live buffer.
    let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 4) };
    assert_eq!(n, 4, "child did not report its listener fd");
    RawFd::from_ne_bytes(b)
}

fn run_notify(f: &Filter, agent: impl FnOnce(i32, OwnedFd)) -> Outcome {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    run_in_child_with(
        f,
        |pid| {
            let guard = ChildGuard(pid);
            drop(w);
            let fd = read_fd_number(&r);
            let listener = steal_fd(pid, fd);
            agent(pid, listener);
            std::mem::forget(guard);
        },
        |fd| child_body(wfd, fd),
    )
}

#[test]
fn notify_listener_receives_and_answers() {
    let f = compile(&notify_profile(&[], "/nonexistent/agent.sock")).unwrap();
    assert!(f.uses_notify());
    let out = run_notify(&f, |pid, listener| {
        let n = answer(listener.as_raw_fd(), 4242, 0);
        assert_eq!(n.pid as i32, pid);
        assert_eq!(i64::from(n.data.nr), libc::SYS_getppid);
        assert_eq!(n.data.arch, 0xC000_003E);
        answer(listener.as_raw_fd(), 0, -libc::EXDEV);
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn notify_with_wait_killable_recv_and_tsync() {
    use oxcart_seccomp::filter_flag as ff;
    let f = compile(&notify_profile(
        &[
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            "SECCOMP_FILTER_FLAG_TSYNC",
        ],
        "/nonexistent/agent.sock",
    ))
    .unwrap();
    assert_eq!(
        f.flags(),
        ff::NEW_LISTENER | ff::WAIT_KILLABLE_RECV | ff::TSYNC | ff::TSYNC_ESRCH
    );
    let out = run_notify(&f, |_, listener| {
        answer(listener.as_raw_fd(), 4242, 0);
        answer(listener.as_raw_fd(), 0, -libc::EXDEV);
    });
    assert_eq!(out, Outcome::Exited(0));
}

/// A test agent: accept one connection, recvmsg the JSON and one fd.
fn agent_recv(l: &UnixListener) -> (Vec<u8>, Vec<OwnedFd>) {
    let (conn, _) = l.accept().unwrap();
    let mut data = vec![0u8; 1 << 16];
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: all pointers live.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer the kernel filled.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>().add(i));
                    fds.push(owned(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    data.truncate(n as usize);
    // Whatever did not fit the first recvmsg (nothing, for runc-sized states).
    let mut rest = Vec::new();
    use std::io::Read;
    (&conn).read_to_end(&mut rest).unwrap();
    data.extend(rest);
    (data, fds)
}

#[test]
fn send_listener_fd_protocol() {
    let dir = TempDir::new("listener");
    let path = dir.0.join("agent.sock");
    let l = UnixListener::bind(&path).unwrap();
    let agent = std::thread::spawn(move || agent_recv(&l));

    let (r, w) = pipe();
    let mut ann = BTreeMap::new();
    ann.insert("io.example/a".to_string(), "b".to_string());
    let st = ContainerProcessState::new("ctr-1", 4321, "/bundles/ctr-1", ann, Some("meta"));
    send_listener_fd(&path, w.as_fd(), &st).unwrap();
    drop(w);
    let (json, fds) = agent.join().unwrap();

    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["ociVersion"], oxcart_spec::OCI_VERSION);
    assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(v["pid"], 4321);
    assert_eq!(v["metadata"], "meta");
    assert_eq!(v["state"]["id"], "ctr-1");
    assert_eq!(v["state"]["status"], "creating");
    assert_eq!(v["state"]["pid"], 4321);
    assert_eq!(v["state"]["bundle"], "/bundles/ctr-1");
    assert_eq!(v["state"]["annotations"]["io.example/a"], "b");
    let back: ContainerProcessState = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, st);

    // The fd that arrived is our pipe's write end.
    assert_eq!(fds.len(), 1);
    // SAFETY: writing to a live fd.
    assert_eq!(
        unsafe { libc::write(fds[0].as_raw_fd(), b"ok".as_ptr().cast(), 2) },
        2
    );
    drop(fds);
    let mut buf = String::new();
    use std::io::Read;
    std::fs::File::from(r).read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "ok");
}

#[test]
fn send_listener_fd_errors_name_the_path() {
    let dir = TempDir::new("listener-missing");
    let path = dir.0.join("nobody.sock");
    let (_r, w) = pipe();
    let st = ContainerProcessState::new("c", 1, "/b", BTreeMap::new(), None);
    let e = send_listener_fd(&path, w.as_fd(), &st)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobody.sock") && e.contains("connect"), "{e}");
}

#[test]
fn notify_through_listener_path_like_runc() {
    let dir = TempDir::new("notify-agent");
    let path = dir.0.join("agent.sock");
    let l = UnixListener::bind(&path).unwrap();
    let f = compile(&notify_profile(&[], path.to_str().unwrap())).unwrap();

    // The agent: receive the state + fd, then serve the container's two notifications.
    let agent = std::thread::spawn(move || {
        let (json, mut fds) = agent_recv(&l);
        let st: ContainerProcessState = serde_json::from_slice(&json).unwrap();
        assert_eq!(st.metadata, "meta-data 1");
        assert_eq!(st.fds, vec!["seccompFd".to_string()]);
        let listener = fds.pop().expect("listener fd");
        let n = answer(listener.as_raw_fd(), 4242, 0);
        assert_eq!(n.pid as i32, st.pid);
        answer(listener.as_raw_fd(), 0, -libc::EXDEV);
    });

    let out = run_notify(&f, |pid, listener| {
        let st = ContainerProcessState::new(
            "ctr-notify",
            pid,
            "/bundle",
            BTreeMap::new(),
            Some("meta-data 1"),
        );
        send_listener_fd(&path, listener.as_fd(), &st).unwrap();
    });
    agent.join().unwrap();
    assert_eq!(out, Outcome::Exited(0));
}
