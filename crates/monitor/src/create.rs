//! Step 3 of docs/engine.md "The monitor": the runtime's `create` with the
//! container's stdio, and the console master for a tty.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use crate::args::Args;
use crate::sys;

/// The container's directory, reached through our descriptor so that socket paths
/// stay short whatever `--root` is (sun_path holds 108 bytes).
pub struct CtrDir {
    pub fd: OwnedFd,
}

impl CtrDir {
    pub fn open(path: &std::path::Path) -> std::io::Result<CtrDir> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid C string.
        let fd = sys::cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: open just returned it.
        let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        Ok(CtrDir { fd })
    }

    /// `name` as this process reaches it: `/proc/self/fd/N/name`.
    pub fn own_path(&self, name: &str) -> CString {
        let s = format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd());
        CString::new(s).unwrap_or_default()
    }

    /// `name` as another process (the runtime) reaches it: `/proc/<our pid>/fd/N/name`.
    pub fn shared_path(&self, name: &str) -> String {
        format!(
            "/proc/{}/fd/{}/{name}",
            std::process::id(),
            self.fd.as_raw_fd()
        )
    }

    pub fn unlink(&self, name: &str) {
        let Ok(c) = CString::new(name) else { return };
        // SAFETY: unlinkat relative to our directory descriptor; failure is fine
        // (nothing to remove).
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
    }
}

/// The container's side of stdio, as the monitor holds it.
pub enum Io {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Tty {
        master: OwnedFd,
    },
}

pub struct Created {
    pub pid: libc::pid_t,
    pub io: Io,
}

const CONSOLE: &str = "console.sock";
pub const PIDFILE: &str = "pidfile";
pub const RUNTIME_LOG: &str = "runtime.log";

/// Runs `create`; on failure returns the runtime's own message and leaves no files
/// (and no container) behind. Children reaped meanwhile land in `reaped`.
pub fn create(
    a: &Args,
    dir: &CtrDir,
    sigfd: std::os::fd::BorrowedFd<'_>,
    reaped: &mut Vec<(libc::pid_t, libc::c_int)>,
) -> Result<Created, String> {
    dir.unlink(PIDFILE);
    dir.unlink(RUNTIME_LOG);
    let r = run_create(a, dir, sigfd, reaped);
    dir.unlink(CONSOLE);
    if r.is_err() {
        dir.unlink(PIDFILE);
        dir.unlink(RUNTIME_LOG);
    }
    r
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// What the monitor holds of the container's stdio while `create` runs.
enum Held {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        /// Also where the runtime's own complaints land.
        stderr: OwnedFd,
    },
    /// The runtime's stderr; the container's stdio is the pty.
    Tty { runtime_stderr: OwnedFd },
}

impl Held {
    fn runtime_stderr(&self) -> &OwnedFd {
        match self {
            Held::Pipes { stderr, .. } => stderr,
            Held::Tty { runtime_stderr } => runtime_stderr,
        }
    }
}

fn run_create(
    a: &Args,
    dir: &CtrDir,
    sigfd: std::os::fd::BorrowedFd<'_>,
    reaped: &mut Vec<(libc::pid_t, libc::c_int)>,
) -> Result<Created, String> {
    let console = if a.tty {
        dir.unlink(CONSOLE);
        Some(
            sys::listen(&dir.own_path(CONSOLE), libc::SOCK_STREAM)
                .map_err(io_err("console socket"))?,
        )
    } else {
        None
    };
    let mut cmd = runtime_command(a, dir);
    let held = give_stdio(a, &mut cmd)?;
    let child = cmd
        .spawn()
        .map_err(|e| format!("running {}: {e}", a.runtime.display()))?;
    let create_pid = child.id() as libc::pid_t;
    // Our copies of the container's ends must close, or its output never ends.
    drop(cmd);
    drop(child);
    let (status, master) = wait_create(create_pid, console.as_ref(), sigfd, reaped)?;
    if status != 0 {
        return Err(failure_message(a, held.runtime_stderr(), status));
    }
    let pid = read_pidfile(a).inspect_err(|_| delete_container(a))?;
    let io = match (held, master) {
        (
            Held::Pipes {
                stdin,
                stdout,
                stderr,
            },
            _,
        ) => Io::Pipes {
            stdin,
            stdout,
            stderr,
        },
        (Held::Tty { .. }, Some(master)) => Io::Tty { master },
        (Held::Tty { .. }, None) => {
            delete_container(a);
            return Err(
                "the runtime created the container but sent no console on --console-socket".into(),
            );
        }
    };
    Ok(Created { pid, io })
}

/// `RUNTIME [--runtime-arg]... --root R --log L --log-format json create …`: runc's
/// global flags go before the subcommand, and with a json log its error is the last
/// "error" line's msg while its stderr is the container's.
fn runtime_command(a: &Args, dir: &CtrDir) -> Command {
    let mut cmd = Command::new(&a.runtime);
    cmd.args(&a.runtime_args)
        .arg("--root")
        .arg(&a.runtime_root)
        .arg("--log")
        .arg(a.ctr_dir.join(RUNTIME_LOG))
        .arg("--log-format")
        .arg("json")
        .arg("create")
        .arg("--bundle")
        .arg(&a.bundle)
        .arg("--pid-file")
        .arg(a.ctr_dir.join(PIDFILE));
    if a.tty {
        cmd.arg("--console-socket").arg(dir.shared_path(CONSOLE));
    }
    cmd.arg(&a.id);
    cmd
}

/// Pipes for the container's stdio (stdin `/dev/null` without `--stdin`); with a tty
/// the runtime gets `/dev/null` and a stderr pipe for its errors.
fn give_stdio(a: &Args, cmd: &mut Command) -> Result<Held, String> {
    let (err_r, err_w) = sys::pipe().map_err(io_err("pipe"))?;
    cmd.stderr(Stdio::from(err_w));
    if a.tty {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        return Ok(Held::Tty {
            runtime_stderr: err_r,
        });
    }
    let stdin = if a.stdin {
        let (r, w) = sys::pipe().map_err(io_err("pipe"))?;
        cmd.stdin(Stdio::from(r));
        Some(w)
    } else {
        cmd.stdin(Stdio::null());
        None
    };
    let (out_r, out_w) = sys::pipe().map_err(io_err("pipe"))?;
    cmd.stdout(Stdio::from(out_w));
    Ok(Held::Pipes {
        stdin,
        stdout: out_r,
        stderr: err_r,
    })
}

/// Waits for `create` to exit, accepting the console master meanwhile (the runtime
/// sends it before it exits and may wait for us to take it).
fn wait_create(
    create_pid: libc::pid_t,
    console: Option<&OwnedFd>,
    sigfd: std::os::fd::BorrowedFd<'_>,
    reaped: &mut Vec<(libc::pid_t, libc::c_int)>,
) -> Result<(libc::c_int, Option<OwnedFd>), String> {
    let mut master = None;
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let (Some(l), None) = (console, &master) {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        sys::poll(&mut fds, -1).map_err(|e| format!("poll: {e}"))?;
        if fds.len() > 1 && fds[1].revents != 0 {
            if let Some(l) = console {
                master = accept_console(l).map_err(|e| format!("receiving the console: {e}"))?;
            }
        }
        if fds[0].revents != 0 {
            sys::drain_signalfd(sigfd);
            // Every exited child, not only up to `create`: an init killed before
            // `create` returned (an `rm -f` racing the `run`) is handed to us as a
            // zombie in the same SIGCHLD as `create` itself, and the signal was
            // drained above — left here, it would never be reaped and the relay
            // would wait for its exit forever.
            let mut created = None;
            while let Some((pid, status)) = sys::reap_one() {
                if pid == create_pid {
                    created = Some(status);
                } else {
                    reaped.push((pid, status));
                }
            }
            if let Some(status) = created {
                if master.is_none() {
                    if let Some(l) = console {
                        master = accept_console(l).ok().flatten();
                    }
                }
                return Ok((status, master));
            }
        }
    }
}

fn accept_console(listener: &OwnedFd) -> std::io::Result<Option<OwnedFd>> {
    let conn = match sys::accept(listener.as_fd()) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    // The runtime sends right after connecting; wait for it (a runtime dying in
    // between closes its end, which ends the wait).
    // SAFETY: fcntl on our connection.
    unsafe { libc::fcntl(conn.as_raw_fd(), libc::F_SETFL, 0) };
    let master = sys::recv_fd(conn.as_fd())?;
    sys::set_nonblock(master.as_fd())?;
    Ok(Some(master))
}

/// The runtime's message: the last error of its json log, else what it wrote to
/// stderr, else its exit status.
fn failure_message(a: &Args, stderr: &OwnedFd, status: libc::c_int) -> String {
    let log = std::fs::read_to_string(a.ctr_dir.join(RUNTIME_LOG)).unwrap_or_default();
    if let Some(msg) = crate::json::last_error_msg(&log) {
        return msg;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let _ = sys::set_nonblock(stderr.as_fd());
    let n = sys::read(stderr.as_fd(), &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    if !text.is_empty() {
        return text;
    }
    format!(
        "{} create exited with code {} and no message",
        a.runtime.display(),
        sys::exit_code(status)
    )
}

fn read_pidfile(a: &Args) -> Result<libc::pid_t, String> {
    let p = a.ctr_dir.join(PIDFILE);
    let s = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    s.trim()
        .parse()
        .ok()
        .filter(|&n: &libc::pid_t| n > 0)
        .ok_or_else(|| format!("{}: not a pid: {s:?}", p.display()))
}

/// Undoes a create the monitor cannot use, so that a failure leaves nothing.
pub fn delete_container(a: &Args) {
    let _ = Command::new(&a.runtime)
        .args(&a.runtime_args)
        .arg("--root")
        .arg(&a.runtime_root)
        .args(["delete", "--force", &a.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The runtime's `start` of a restarted container (the engine runs it for the
/// first run, once its caller has attached); the runtime's message on failure.
pub fn start_container(a: &Args) -> Result<(), String> {
    let out = Command::new(&a.runtime)
        .args(&a.runtime_args)
        .arg("--root")
        .arg(&a.runtime_root)
        .args(["start", &a.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", a.runtime.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(crate::json::last_error_msg(&msg).unwrap_or(msg))
}
