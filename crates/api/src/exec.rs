//! `exec`: instances made by `POST /containers/{id}/exec`, run by `POST /exec/{id}/start`
//! (hijacked like attach), inspected for their exit code — set before the stream ends,
//! so a client that reads it right after sees it — and resized.
//!
//! The process is the runtime's `exec` in the foreground: its exit status is the
//! process's. With a tty the runtime gets a pty of ours as its terminal (its own
//! `--tty` relays between that and the container's pty, and follows our size on
//! SIGWINCH), so a resize is a `TIOCSWINSZ` on our side.

use crate::attach::{mux_frame, stream_response, Out, MUX_STREAM, RAW_STREAM};
use crate::http::{self, ApiError, ApiResult};
use crate::router::{not_found_route, Req};
use crate::server::{blocking, State};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use oxcart_engine::exec::ExecOptions;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ExecConfig {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    tty: bool,
    env: Vec<String>,
    cmd: Vec<String>,
    privileged: bool,
    user: String,
    working_dir: String,
    console_size: Option<[u16; 2]>,
}

#[derive(Default)]
pub struct ExecRun {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i32,
    /// The pty's master while a tty exec runs (for resize).
    master: Option<Arc<OwnedFd>>,
}

pub struct ExecInstance {
    id: String,
    container: String,
    cfg: ExecConfig,
    run: Mutex<ExecRun>,
}

impl ExecInstance {
    fn with<T>(&self, f: impl FnOnce(&mut ExecRun) -> T) -> T {
        match self.run.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

pub async fn create(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
    let cfg: ExecConfig = crate::containers::parse_docker_json(&b)?;
    if cfg.cmd.is_empty() {
        return Err(ApiError::bad("No exec command specified"));
    }
    let st2 = st.clone();
    let exec_id = oxcart_engine::names::new_id()?;
    let (eid, cmd) = (exec_id.clone(), cfg.cmd.clone());
    let container = blocking(move || {
        let e = st2.engine()?;
        let (rec, o) = crate::containers::status_of(&e, &id)?;
        match o.status {
            oxcart_engine::state::Status::Running => {
                e.emit_exec(&rec, "exec_create", &eid, &cmd);
                Ok(rec.id)
            }
            oxcart_engine::state::Status::Paused => Err(ApiError::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            ))),
            _ => Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            ))),
        }
    })
    .await?;
    let inst = Arc::new(ExecInstance {
        id: exec_id.clone(),
        container,
        cfg,
        run: Mutex::new(ExecRun::default()),
    });
    st.execs
        .lock()
        .map_err(|_| ApiError::internal("exec table lock poisoned"))?
        .insert(exec_id.clone(), inst);
    Ok(http::json_status(
        StatusCode::CREATED,
        &json!({"Id": exec_id}),
    ))
}

fn find(st: &State, id: &str) -> ApiResult<Arc<ExecInstance>> {
    st.execs
        .lock()
        .map_err(|_| ApiError::internal("exec table lock poisoned"))?
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

pub async fn route(st: Arc<State>, r: Req) -> ApiResult {
    let id = r.seg(1).to_string();
    match (r.segs.len(), r.seg(2), &r.method) {
        (3, "start", &Method::POST) => start(st, id, r).await,
        (3, "json", &Method::GET) => inspect(&st, &id),
        (3, "resize", &Method::POST) => {
            let (h, w) = crate::containers::resize_dims(&r)?;
            let inst = find(&st, &id)?;
            match inst.with(|r| r.master.clone()) {
                Some(m) => {
                    set_size(&m, h, w).map_err(|e| ApiError::internal(format!("resize: {e}")))?
                }
                None if !inst.cfg.tty => {
                    return Err(ApiError::bad(format!("exec {id} has no tty to resize")))
                }
                None => {}
            }
            Ok(http::response(
                StatusCode::CREATED,
                "text/plain",
                http::empty(),
            ))
        }
        _ => Err(not_found_route(&r)),
    }
}

fn inspect(st: &State, id: &str) -> ApiResult {
    let inst = find(st, id)?;
    let (running, code, pid) = inst.with(|r| (r.running, r.exit_code, r.pid));
    let c = &inst.cfg;
    Ok(http::json(&json!({
        "ID": inst.id, "Running": running, "ExitCode": code,
        "ProcessConfig": {
            "tty": c.tty, "entrypoint": c.cmd.first(), "arguments": c.cmd.get(1..).unwrap_or_default(),
            "privileged": c.privileged, "user": c.user,
        },
        "OpenStdin": c.attach_stdin, "OpenStderr": c.attach_stderr, "OpenStdout": c.attach_stdout,
        "CanRemove": false, "ContainerID": inst.container, "DetachKeys": c.detach_keys, "Pid": pid,
    })))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: bool,
    console_size: Option<[u16; 2]>,
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A pty pair: (master, slave).
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty fills two fds; name, termios and winsize may be null.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty returned two fresh descriptors we now own.
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    for fd in [&m, &s] {
        // SAFETY: fcntl with integer arguments.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((m, s))
}

async fn start(st: Arc<State>, id: String, mut r: Req) -> ApiResult {
    let inst = find(&st, &id)?;
    let b = http::read_body(r.req.body_mut(), http::MAX_JSON_BODY).await?;
    let up = r.wants_upgrade().then_some(r.req);
    let sb: StartBody = crate::containers::parse_docker_json(&b)?;
    let already = inst.with(|r| std::mem::replace(&mut r.started, true));
    if already {
        return Err(ApiError::conflict(format!(
            "Exec command {id} is already running"
        )));
    }
    let tty = inst.cfg.tty || sb.tty;
    let size = sb.console_size.or(inst.cfg.console_size);
    let opts = ExecOptions {
        cmd: inst.cfg.cmd.clone(),
        env: inst.cfg.env.clone(),
        user: Some(inst.cfg.user.clone()).filter(|u| !u.is_empty()),
        workdir: Some(inst.cfg.working_dir.clone()).filter(|w| !w.is_empty()),
        tty,
        detach: false,
        privileged: inst.cfg.privileged,
    };
    let st2 = st.clone();
    let ctr = inst.container.clone();
    let exec_id = inst.id.clone();
    let prepared = blocking(move || {
        let e = st2.engine()?;
        let rec = e.find(&ctr)?;
        let p = e.prepare_exec(&rec, &opts)?;
        e.emit_exec(&rec, "exec_start", &exec_id, &opts.cmd);
        Ok(p)
    })
    .await;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            inst.with(|r| r.started = false);
            return Err(e);
        }
    };
    let spawned = spawn(prepared, tty, inst.cfg.attach_stdin && !sb.detach, size);
    let (child, io) = match spawned {
        Ok(x) => x,
        Err(e) => {
            inst.with(|r| r.started = false);
            return Err(ApiError::internal(format!(
                "exec: starting the runtime: {e}"
            )));
        }
    };
    inst.with(|r| {
        r.running = true;
        r.pid = child.pid;
        r.master = io.master.clone();
    });
    if sb.detach {
        tokio::spawn(async move {
            let code = finish(child, None).await;
            inst.with(|r| {
                r.running = false;
                r.exit_code = Some(code);
                r.master = None;
            });
            emit_die(&st, &inst, code).await;
        });
        return Ok(http::response(
            StatusCode::OK,
            "application/json",
            http::empty(),
        ));
    }
    let ctype = if tty { RAW_STREAM } else { MUX_STREAM };
    let want_stdin = inst.cfg.attach_stdin;
    let (out_ok, err_ok) = (inst.cfg.attach_stdout, inst.cfg.attach_stderr);
    Ok(stream_response(
        up,
        ctype,
        want_stdin,
        move |h| async move {
            let mut out = h.out;
            relay_exec(io, &mut out, h.input, tty, out_ok, err_ok).await;
            let msg = &mut None;
            let code = finish(child, Some(msg)).await;
            if let Some(m) = msg.take() {
                let line = format!("{m}\r\n");
                let b = if tty {
                    Bytes::from(line)
                } else {
                    mux_frame(2, line.as_bytes())
                };
                let _ = out.write(b).await;
            }
            inst.with(|r| {
                r.running = false;
                r.exit_code = Some(code);
                r.master = None;
            });
            // After the exit code is readable (clients inspect the exec the moment
            // the stream ends), before the stream ends.
            emit_die(&st, &inst, code).await;
            out.close().await;
        },
    ))
}

/// docker's `exec_die` for an exec the service ran (attached or detached: the
/// service waits for both, as docker's daemon does).
async fn emit_die(st: &Arc<State>, inst: &Arc<ExecInstance>, code: i64) {
    let (st, inst) = (st.clone(), inst.clone());
    let _ = blocking(move || {
        let e = st.engine()?;
        let rec = e.find(&inst.container)?;
        e.emit_exec_die(&rec, &inst.id, code);
        Ok(())
    })
    .await;
}

struct Spawned {
    pid: i32,
    child: tokio::process::Child,
    prepared: oxcart_engine::exec::PreparedExec,
}

#[derive(Default)]
struct ExecIo {
    master: Option<Arc<OwnedFd>>,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
}

fn spawn(
    mut p: oxcart_engine::exec::PreparedExec,
    tty: bool,
    stdin: bool,
    size: Option<[u16; 2]>,
) -> std::io::Result<(Spawned, ExecIo)> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut cmd = std::mem::replace(&mut p.command, std::process::Command::new("/"));
    let mut io = ExecIo::default();
    if tty {
        let (m, s) = open_pty()?;
        let [rows, cols] = size.unwrap_or([24, 80]);
        set_size(&m, rows.max(1), cols.max(1))?;
        cmd.stdin(Stdio::from(s.try_clone()?))
            .stdout(Stdio::from(s.try_clone()?))
            .stderr(Stdio::from(s));
        // SAFETY: setsid and ioctl are async-signal-safe; the runtime gets our pty as
        // its controlling terminal, so a TIOCSWINSZ on the master signals it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        io.master = Some(Arc::new(m));
    } else {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    let mut child = tokio::process::Command::from(cmd).spawn()?;
    io.stdin = child.stdin.take();
    io.stdout = child.stdout.take();
    io.stderr = child.stderr.take();
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    Ok((
        Spawned {
            pid,
            child,
            prepared: p,
        },
        io,
    ))
}

/// Wait for the runtime; the process's exit code, or docker's 126/127 (and the
/// runtime's message) when the runtime could not run it.
async fn finish(mut s: Spawned, msg: Option<&mut Option<String>>) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    let status = s.child.wait().await;
    let prepared = s.prepared;
    let err = tokio::task::spawn_blocking(move || prepared.runtime_error())
        .await
        .ok()
        .flatten();
    if let Some(e) = err {
        let code = match e.exit_code() {
            125 => 126,
            c => c,
        };
        if let Some(m) = msg {
            *m = Some(e.to_string());
        }
        return i64::from(code);
    }
    match status {
        Ok(st) => i64::from(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))),
        Err(_) => 126,
    }
}

async fn relay_exec(
    io: ExecIo,
    out: &mut Out,
    input: Option<tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>>,
    tty: bool,
    out_ok: bool,
    err_ok: bool,
) {
    if let Some(m) = io.master {
        relay_pty(m, out, input).await;
        return;
    }
    let pump = match (input, io.stdin) {
        (Some(mut r), Some(mut w)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut r, &mut w).await;
            let _ = w.shutdown().await;
        })),
        _ => None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let readers: Vec<_> = [
        io.stdout
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        io.stderr
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .zip([(1u8, out_ok), (2u8, err_ok)])
    .filter_map(|(r, k)| r.map(|r| (r, k)))
    .map(|(mut r, (kind, want))| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if want {
                    let b = if tty {
                        Bytes::copy_from_slice(&buf[..n])
                    } else {
                        mux_frame(kind, &buf[..n])
                    };
                    if tx.send(b).await.is_err() {
                        break;
                    }
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut client_gone = false;
    while let Some(b) = rx.recv().await {
        if !client_gone && !out.write(b).await {
            client_gone = true;
        }
    }
    for r in readers {
        let _ = r.await;
    }
    if let Some(p) = pump {
        p.abort();
    }
}

/// The pty's output to the client until the runtime and the process are gone (EIO),
/// the client's input to the pty.
async fn relay_pty(
    m: Arc<OwnedFd>,
    out: &mut Out,
    input: Option<tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>>,
) {
    let Ok(dup) = m.try_clone() else { return };
    // SAFETY: fcntl with integer arguments on our descriptor.
    unsafe {
        let fl = libc::fcntl(dup.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(dup.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    // SAFETY: the AsyncFd owns the descriptor, so it stays open while registered.
    let Ok(afd) = (unsafe { AsyncFd::register(dup) }) else {
        return;
    };
    let afd = Arc::new(afd);
    let pump = input.map(|mut r| {
        let afd = afd.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut off = 0;
                while off < n {
                    let Ok(mut g) = afd.writable().await else {
                        return;
                    };
                    // SAFETY: buf[off..n] is valid.
                    let w = g.try_io(|fd| {
                        let r = unsafe {
                            libc::write(fd.as_raw_fd(), buf[off..n].as_ptr().cast(), n - off)
                        };
                        if r < 0 {
                            Err(std::io::Error::last_os_error())
                        } else {
                            Ok(r as usize)
                        }
                    });
                    match w {
                        Ok(Ok(k)) => off += k,
                        Ok(Err(_)) => return,
                        Err(_) => continue,
                    }
                }
            }
        })
    });
    let mut buf = vec![0u8; 32 * 1024];
    let mut client_gone = false;
    loop {
        let Ok(mut g) = afd.readable().await else {
            break;
        };
        // SAFETY: buf is valid for its length.
        let r = g.try_io(|fd| {
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        });
        match r {
            // EIO: every slave end is closed (the runtime and the process exited).
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                if !client_gone && !out.write(Bytes::copy_from_slice(&buf[..n])).await {
                    client_gone = true;
                }
            }
            Err(_) => continue,
        }
    }
    if let Some(p) = pump {
        p.abort();
    }
}
