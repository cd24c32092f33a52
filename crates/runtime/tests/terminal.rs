//! Terminals with runc's `--console-socket` protocol: the test binds the socket,
//! receives the pty master (SCM_RIGHTS, name as data) and reads the container's
//! output from it. Run as root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::json;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Receives one pty master on a unix socket and reads it until the slave side is
/// gone (EIO), as containerd's and conmon's console sockets do.
struct ConsoleSocket {
    path: PathBuf,
    thread: Option<JoinHandle<(String, String)>>,
}

fn recv_fd(sock: &std::os::unix::net::UnixStream) -> (String, OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut name = vec![0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    // SAFETY: pure computation.
    let space = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: zeroed msghdr is valid; buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space;
    // SAFETY: as above.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: reading the control message the kernel filled in.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no fd received");
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd)
    };
    // SAFETY: a fresh fd from SCM_RIGHTS.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    (
        String::from_utf8_lossy(&name[..n as usize]).into_owned(),
        fd,
    )
}

/// accept(), but give up after ~30 s so a runtime that never connects fails the
/// test instead of hanging it; the stream gets a receive timeout for the same reason.
fn accept_bounded(l: &UnixListener) -> std::os::unix::net::UnixStream {
    l.set_nonblocking(true).unwrap();
    for _ in 0..3000 {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                    .unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    panic!("nobody connected to the socket");
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let path = tmp().join(unique("console.sock"));
        let l = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            let s = accept_bounded(&l);
            let (name, fd) = recv_fd(&s);
            let mut f = std::fs::File::from(fd);
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO once every slave fd is closed
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            (name, String::from_utf8_lossy(&out).into_owned())
        });
        ConsoleSocket {
            path,
            thread: Some(thread),
        }
    }
    fn output(mut self) -> (String, String) {
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const PROBE: &str = "tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo isatty; \
                     ls -l /dev/console | cut -c1; echo done";

#[test]
fn create_with_console_socket() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["sh", "-c", PROBE]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    b.write();
    let cs = ConsoleSocket::new();
    let id = unique("tty");
    let (ok, err) = rt.detached(
        &["create", "--console-socket", cs.path.to_str().unwrap()],
        &b,
        &id,
    );
    assert!(ok, "create: {err}");
    assert!(rt.run(&["start", &id]).status.success());
    let (name, out) = cs.output();
    assert_eq!(name, "/dev/ptmx");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{out:?}");
    // /dev/console is the pty slave (a character device bind-mounted over it).
    assert_eq!(&lines[1..], ["31 97", "isatty", "c", "done"], "{out:?}");
    assert!(wait_until(|| rt.state(&id)["status"] == "stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
}

#[test]
fn exec_with_console_socket() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "etty");
    let cs = ConsoleSocket::new();
    let pf = b.dir.join("exec.pid");
    let (c, _, err) = rt.exec(&[
        "-t",
        "-d",
        "--console-socket",
        cs.path.to_str().unwrap(),
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; test -t 0 && echo isatty; readlink /proc/self/ns/pid",
    ]);
    assert_eq!(c, 0, "{err}");
    let (_, out) = cs.output();
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(lines[1], "isatty", "{out:?}");
    let init = rt.init_pid(&id);
    let want = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    assert_eq!(lines[2], want.display().to_string());
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

/// `run` and `exec -t` in the foreground without a socket: the runtime proxies the
/// pty to its own stdio (runc's behaviour) and returns the process's status.
#[test]
fn foreground_terminal_is_proxied() {
    use std::io::Write;
    use std::process::Stdio;
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "tty; stty size; test -t 1 && echo isatty; exit 4",
    ]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 21, "width": 61});
    b.write();
    let (c, out, err) = rt.run_bundle(&b);
    assert_eq!(c, 4, "{err}");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(&lines[1..], ["21 61", "isatty"], "{out:?}");

    // exec -t reading the caller's stdin through the pty.
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    b.write();
    let id = rt.run_detached(&b, "fgt");
    let outf = tmp().join(unique("fgt-out"));
    let mut child = rt
        .cmd()
        .args(["exec", "-t", &id, "sh"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&outf).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"test -t 0 && echo tty-stdin; exit 9\n")
        .unwrap();
    let st = child.wait().unwrap();
    let out = std::fs::read_to_string(&outf).unwrap();
    let _ = std::fs::remove_file(&outf);
    assert_eq!(st.code(), Some(9), "{out}");
    assert!(out.contains("tty-stdin"), "{out:?}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn exec_pidfd_socket() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.run_detached(&b, "pfd");
    let path = tmp().join(unique("pidfd.sock"));
    let l = UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let s = accept_bounded(&l);
        recv_fd(&s)
    });
    let pf = b.dir.join("exec.pid");
    let (c, _, err) = rt.exec(&[
        "-d",
        "--pidfd-socket",
        path.to_str().unwrap(),
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert_eq!(c, 0, "{err}");
    let (name, fd) = t.join().unwrap();
    assert_eq!(name, "setns");
    // The fd is a pidfd of the exec'd process (fdinfo names its pid).
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let pid = std::fs::read_to_string(&pf).unwrap();
    assert!(info.lines().any(|l| l == format!("Pid:\t{pid}")), "{info}");
    let _ = std::fs::remove_file(&path);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    // A missing socket fails before anything runs.
    let id = rt.run_detached(&b, "pfd");
    let (c, _, err) = rt.exec(&["-d", "--pidfd-socket", "/no/such.sock", &id, "true"]);
    assert_eq!(c, 255);
    assert!(err.contains("connect: no such file or directory"), "{err}");
    assert!(rt.run(&["delete", "-f", &id]).status.success());
}

#[test]
fn terminal_bad_input() {
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    // A console socket that does not exist: runc's wording, nothing left behind.
    let id = unique("ttybad");
    let missing = tmp().join(unique("no-such.sock"));
    let (ok, err) = rt.detached(
        &["create", "--console-socket", missing.to_str().unwrap()],
        &b,
        &id,
    );
    assert!(!ok);
    assert!(err.contains("connect: no such file or directory"), "{err}");
    assert!(!rt.root.join(&id).exists());
    // Detached without a socket: runc's error.
    let (ok, err) = rt.detached(&["create"], &b, &id);
    assert!(!ok);
    assert!(
        err.contains("cannot allocate tty if runc will detach without setting console socket"),
        "{err}"
    );
    assert!(!rt.root.join(&id).exists());
    // A console socket for a process without a terminal.
    b.config["process"]["terminal"] = json!(false);
    b.write();
    let cs = tmp().join(unique("unused.sock"));
    let _l = UnixListener::bind(&cs).unwrap();
    let (ok, err) = rt.detached(
        &["create", "--console-socket", cs.to_str().unwrap()],
        &b,
        &id,
    );
    assert!(!ok);
    assert!(
        err.contains("cannot use console socket if runc will not detach or allocate tty"),
        "{err}"
    );
    assert!(!rt.root.join(&id).exists());
    let _ = std::fs::remove_file(&cs);
}

#[test]
fn create_pidfd_socket() {
    let rt = Runtime::oxcart();
    let b = Bundle::new(&["sleep", "1000"]);
    let path = tmp().join(unique("cpidfd.sock"));
    let l = UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let s = accept_bounded(&l);
        recv_fd(&s)
    });
    let id = unique("cpfd");
    let (ok, err) = rt.detached(
        &["create", "--pidfd-socket", path.to_str().unwrap()],
        &b,
        &id,
    );
    assert!(ok, "{err}");
    let (name, fd) = t.join().unwrap();
    assert_eq!(name, "standard");
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(info.lines().any(|l| l == format!("Pid:\t{pid}")), "{info}");
    let _ = std::fs::remove_file(&path);
    assert!(rt.run(&["delete", "-f", &id]).status.success());
    // A missing socket fails before anything is created.
    let id = unique("cpfd");
    let (ok, err) = rt.detached(&["create", "--pidfd-socket", "/no/such.sock"], &b, &id);
    assert!(!ok);
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(!rt.root.join(&id).exists());
}
