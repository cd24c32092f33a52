//! The streams of a container: `attach` (the hijacked connection: `101 UPGRADED`, raw
//! with a tty, docker's 8-byte multiplexed frames without), `wait` (headers first, the
//! exit when it comes) and `logs` (chunked, `follow` included). Output comes from the
//! container's monitor over its attach socket (docs/engine.md "Attach protocol").

use crate::containers::is_running;
use crate::http::{self, ApiError, ApiResult, Resp};
use crate::router::Req;
use crate::server::{blocking, State};
use bytes::Bytes;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use oxcart_engine::attach::AttachConn;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MUX_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// docker's stream header: stream (1 stdout, 2 stderr), three zero bytes, length.
pub fn mux_frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(payload.len() + 8);
    b.push(stream);
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    Bytes::from(b)
}

/// A connection to a monitor, or the promise of one when the container starts.
pub enum Pending {
    Ready(AttachConn),
    /// Registered in `State::waiters`; `start` fulfils it.
    Waiting {
        id: String,
        rx: tokio::sync::oneshot::Receiver<AttachConn>,
    },
}

/// The container's record and a connection (now or at its start). Must be called
/// before answering the client, so a `start` the client sends next finds the waiter.
pub async fn pending_conn(
    st: &Arc<State>,
    key: &str,
) -> ApiResult<(
    oxcart_engine::record::Record,
    oxcart_engine::state::Observed,
    Pending,
)> {
    let st2 = st.clone();
    let key = key.to_string();
    blocking(move || {
        let e = st2.engine()?;
        let (rec, o) = crate::containers::status_of(&e, &key)?;
        if is_running(&o) {
            if let Ok(c) = oxcart_engine::attach::connect(&e.ctr_dir(&rec.id)) {
                return Ok((rec, o, Pending::Ready(c)));
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        st2.waiters
            .lock()
            .map_err(|_| ApiError::internal("waiters lock poisoned"))?
            .entry(rec.id.clone())
            .or_default()
            .push(tx);
        let id = rec.id.clone();
        Ok((rec, o, Pending::Waiting { id, rx }))
    })
    .await
}

impl Pending {
    /// The connection once the container runs; `None` if it was removed, or runs
    /// without a monitor. A start by another process (the CLI) is noticed by a
    /// look every quarter second.
    pub async fn get(
        self,
        st: &Arc<State>,
        gone: &(dyn Fn() -> bool + Send + Sync),
    ) -> Option<AttachConn> {
        let (id, mut rx) = match self {
            Pending::Ready(c) => return Some(c),
            Pending::Waiting { id, rx } => (id, rx),
        };
        loop {
            tokio::select! {
                r = &mut rx => return r.ok(),
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            if gone() {
                return None;
            }
            let st2 = st.clone();
            let id2 = id.clone();
            let look = blocking(move || {
                let e = st2.engine()?;
                let (rec, o) = crate::containers::status_of(&e, &id2)?;
                Ok(is_running(&o)
                    .then(|| oxcart_engine::attach::connect(&e.ctr_dir(&rec.id)).ok())
                    .flatten())
            })
            .await;
            match look {
                Ok(Some(c)) => return Some(c),
                Ok(None) => {}
                Err(_) => return None,
            }
        }
    }
}

/// The monitor's socket, readable and writable from the event loop.
pub struct MonitorSock(AsyncFd<OwnedFd>);

impl MonitorSock {
    pub fn new(c: AttachConn) -> std::io::Result<MonitorSock> {
        Self::from_fd(c.into_fd())
    }

    fn from_fd(fd: OwnedFd) -> std::io::Result<MonitorSock> {
        // SAFETY: fcntl with integer arguments on a descriptor we own.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        // SAFETY: the AsyncFd owns the descriptor, so it stays open while registered.
        Ok(MonitorSock(unsafe { AsyncFd::register(fd)? }))
    }

    /// One message; 0 bytes when the monitor closed the connection.
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut reset = false;
        loop {
            let mut g = self.0.readable().await?;
            // SAFETY: buf is valid for buf.len() bytes.
            let r = g.try_io(|fd| {
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                // A monitor that closes with our frames unread (a stdin EOF after it
                // stopped reading) makes the kernel report ECONNRESET once, ahead of
                // the output and exit frames it sent first (unix_release_sock; the
                // datagram recv checks sk_err before its queue): read on for them.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    if reset {
                        return Ok(0);
                    }
                    reset = true;
                }
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
    }

    pub async fn send(&self, msg: &[u8]) -> std::io::Result<()> {
        loop {
            let mut g = self.0.writable().await?;
            // SAFETY: msg is valid for msg.len() bytes.
            let r = g.try_io(|fd| {
                let n = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        msg.as_ptr().cast(),
                        msg.len(),
                        libc::MSG_NOSIGNAL,
                    )
                };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match r {
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
    }
}

/// Where output goes: the hijacked connection, or a streamed body.
pub enum Out {
    Io(tokio::io::WriteHalf<TokioIo<hyper::upgrade::Upgraded>>),
    Chan(tokio::sync::mpsc::Sender<Bytes>),
}

impl Out {
    /// For a streamed body, a handle that tells when the client went away.
    pub fn closed_flag(&self) -> Option<tokio::sync::mpsc::Sender<Bytes>> {
        match self {
            Out::Chan(tx) => Some(tx.clone()),
            Out::Io(_) => None,
        }
    }

    /// False once the client is gone.
    pub async fn write(&mut self, b: Bytes) -> bool {
        match self {
            Out::Io(w) => w.write_all(&b).await.is_ok() && w.flush().await.is_ok(),
            Out::Chan(tx) => tx.send(b).await.is_ok(),
        }
    }
    pub async fn close(self) {
        if let Out::Io(mut w) = self {
            let _ = w.shutdown().await;
        }
    }
}

/// What an attach relays.
#[derive(Clone)]
pub struct RelayOpts {
    pub tty: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// docker's escape sequence, with a tty and stdin only.
    pub detach_keys: Option<Vec<u8>>,
}

/// The exit frame's code.
fn exit_code(payload: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("exit_code")?.as_i64()
}

/// Relay until the container exits (its code), the client detaches or goes, or the
/// monitor closes. The client's end of input only closes the container's stdin.
pub async fn relay(
    sock: MonitorSock,
    mut out: Out,
    input: Option<tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>>,
    o: RelayOpts,
) -> Option<i64> {
    let sock = Arc::new(sock);
    // The pump says "detached" here; a sender kept by us means the channel never
    // reads as closed, so only a detach ends the relay from this side.
    let (detached_tx, mut detached_rx) = tokio::sync::mpsc::channel::<()>(1);
    let _keep = detached_tx.clone();
    let pump = input.map(|r| {
        tokio::spawn(stdin_pump(
            sock.clone(),
            r,
            o.detach_keys.clone(),
            detached_tx,
        ))
    });
    let mut buf = vec![0u8; 32 * 1024 + 2];
    let mut code = None;
    loop {
        let n = tokio::select! {
            r = sock.recv(&mut buf) => r.unwrap_or(0),
            // Only a detach ends it; a pump that ended (input closed) does not.
            Some(()) = detached_rx.recv() => break,
        };
        let Some((&kind, payload)) = buf[..n].split_first() else {
            break;
        };
        let chunk = match kind {
            1 if o.stdout => Some(if o.tty {
                Bytes::copy_from_slice(payload)
            } else {
                mux_frame(1, payload)
            }),
            2 if o.stderr => Some(if o.tty {
                Bytes::copy_from_slice(payload)
            } else {
                mux_frame(2, payload)
            }),
            3 => {
                code = exit_code(payload);
                break;
            }
            _ => None,
        };
        if let Some(c) = chunk {
            if !out.write(c).await {
                break;
            }
        }
    }
    if let Some(p) = pump {
        p.abort();
    }
    out.close().await;
    code
}

async fn stdin_pump(
    sock: Arc<MonitorSock>,
    mut r: tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
    keys: Option<Vec<u8>>,
    detached: tokio::sync::mpsc::Sender<()>,
) {
    let mut esc = keys.map(|k| oxcart_engine::attach::Detach::new(&k));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // An error reading the client is its end of input too.
        let n: usize = r.read(&mut buf).await.unwrap_or_default();
        if n == 0 {
            // The client half-closed: the container's stdin ends, output goes on.
            let _ = sock.send(&[1]).await;
            return;
        }
        let mut frame = vec![0u8];
        let detach = match esc.as_mut() {
            Some(d) => d.filter(&buf[..n], &mut frame),
            None => {
                frame.extend_from_slice(&buf[..n]);
                false
            }
        };
        if frame.len() > 1 && sock.send(&frame).await.is_err() {
            return;
        }
        if detach {
            let _ = detached.send(()).await;
            return;
        }
    }
}

fn upgrade_response(content_type: &str) -> Resp {
    let mut resp = http::response(StatusCode::SWITCHING_PROTOCOLS, content_type, http::empty());
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("tcp"),
    );
    resp
}

/// Output and, when hijacked with stdin, input of a hijack or a plain streamed answer.
pub struct Hijack {
    pub out: Out,
    pub input: Option<tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>>,
}

/// Answer a stream request: `101` and the connection itself when the client asked
/// to upgrade (docker's clients do for attach and exec), else `200` with a streamed
/// body (output only). `f` runs once the stream is there.
pub fn stream_response<F, Fut>(
    req: Option<hyper::Request<hyper::body::Incoming>>,
    content_type: &str,
    want_stdin: bool,
    f: F,
) -> Resp
where
    F: FnOnce(Hijack) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(mut req) = req {
        // The request lives until the upgrade completes: hyper hands the connection
        // over only then.
        tokio::spawn(async move {
            let Ok(up) = hyper::upgrade::on(&mut req).await else {
                return;
            };
            let (rd, wr) = tokio::io::split(TokioIo::new(up));
            f(Hijack {
                out: Out::Io(wr),
                input: want_stdin.then_some(rd),
            })
            .await;
        });
        upgrade_response(content_type)
    } else {
        let (tx, body) = http::channel(16);
        tokio::spawn(f(Hijack {
            out: Out::Chan(tx),
            input: None,
        }));
        http::response(StatusCode::OK, content_type, body)
    }
}

pub async fn attach(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let q = r.query.clone();
    let (stdin, stdout, stderr) = (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let (stream, logs) = (q.bool("stream"), q.bool("logs"));
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => {
            oxcart_engine::attach::parse_detach_keys(k).map_err(|e| ApiError::bad(e.to_string()))?
        }
        None => oxcart_engine::attach::DEFAULT_DETACH_KEYS.to_vec(),
    };
    let (rec, pending) = if stream {
        let (rec, _, p) = pending_conn(&st, &id).await?;
        (rec, Some(p))
    } else {
        let st2 = st.clone();
        let rec = blocking(move || Ok(st2.engine()?.find(&id)?)).await?;
        (rec, None)
    };
    let tty = rec.config.tty;
    let ctype = if tty { RAW_STREAM } else { MUX_STREAM };
    let log_path = st.opts.layout.ctr_dir(&rec.id).join("ctr.log");
    let opts = RelayOpts {
        tty,
        stdout,
        stderr,
        detach_keys: (tty && stdin).then_some(keys),
    };
    let want_stdin = stdin && rec.config.open_stdin;
    let st2 = st.clone();
    let up = r.wants_upgrade().then_some(r.req);
    Ok(stream_response(
        up,
        ctype,
        want_stdin,
        move |mut h| async move {
            if logs {
                let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                let o2 = opts.clone();
                let reader = tokio::task::spawn_blocking(move || {
                    read_log(
                        &log_path,
                        &oxcart_jsonlog::ReadOptions::default(),
                        None,
                        o2.tty,
                        o2.stdout,
                        o2.stderr,
                        false,
                        &tx,
                    )
                });
                while let Some(b) = rx.recv().await {
                    if !h.out.write(b).await {
                        return;
                    }
                }
                let _ = reader.await;
            }
            let Some(pending) = pending else {
                h.out.close().await;
                return;
            };
            let closed = h.out.closed_flag();
            match pending
                .get(&st2, &move || {
                    closed.as_ref().is_some_and(|c| c.is_closed())
                })
                .await
                .and_then(|c| MonitorSock::new(c).ok())
            {
                Some(sock) => {
                    relay(sock, h.out, h.input, opts).await;
                }
                None => h.out.close().await,
            }
        },
    ))
}

/// Read the log (following while `gone` says the container still runs), sending
/// docker's framing of each entry; ends when the client goes.
#[allow(clippy::too_many_arguments)]
fn read_log(
    path: &std::path::Path,
    opts: &oxcart_jsonlog::ReadOptions,
    follow: Option<&mut dyn FnMut() -> bool>,
    tty: bool,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), oxcart_jsonlog::Error> {
    let mut sink = |en: oxcart_jsonlog::Entry| -> std::io::Result<()> {
        let (want, kind) = match en.stream {
            oxcart_jsonlog::Stream::Stdout => (stdout, 1),
            oxcart_jsonlog::Stream::Stderr => (stderr, 2),
        };
        if !want {
            return Ok(());
        }
        let mut line = Vec::with_capacity(en.log.len() + 32);
        if timestamps {
            line.extend_from_slice(format!("{} ", en.time).as_bytes());
        }
        line.extend_from_slice(en.log.as_bytes());
        let b = if tty {
            Bytes::from(line)
        } else {
            mux_frame(kind, &line)
        };
        tx.blocking_send(b)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    };
    match follow {
        Some(gone) => oxcart_jsonlog::follow(path, opts, gone, &mut sink),
        None if path.exists() || !oxcart_jsonlog::log_files(path).is_empty() => {
            oxcart_jsonlog::read(path, opts, &mut sink)
        }
        None => Ok(()),
    }
}

/// docker's `since`/`until` for logs; `0` is no bound there (docker's CLI sends it
/// for an unset `--since`).
fn unix_time(q: &crate::http::Query, k: &str) -> ApiResult<Option<oxcart_jsonlog::Timestamp>> {
    if q.get(k) == Some("0") {
        return Ok(None);
    }
    Ok(q.unix_time(k)?
        .map(|(secs, nanos)| oxcart_jsonlog::Timestamp { secs, nanos }))
}

pub async fn logs(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let q = &r.query;
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = q.bool("follow");
    let timestamps = q.bool("timestamps");
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(v) if v < 0 => None,
            Ok(v) => Some(v as usize),
            Err(_) => return Err(ApiError::bad(format!("invalid value for tail: {n:?}"))),
        },
    };
    let opts = oxcart_jsonlog::ReadOptions {
        tail,
        since: unix_time(q, "since")?,
        until: unix_time(q, "until")?,
    };
    let st2 = st.clone();
    let rec = blocking(move || Ok(st2.engine()?.find(&id)?)).await?;
    if rec.host_config.log_config.kind == "none" {
        return Err(ApiError::bad(
            "configured logging driver does not support reading",
        ));
    }
    let tty = rec.config.tty;
    let (tx, body) = http::channel(16);
    tokio::task::spawn_blocking(move || {
        let path = st.opts.layout.ctr_dir(&rec.id).join("ctr.log");
        let e = st.engine().ok();
        let mut gone = || {
            e.as_ref()
                .and_then(|e| e.observe(&rec).ok())
                .map(|o| !o.status.is_running())
                .unwrap_or(true)
                || tx.is_closed()
        };
        let f: Option<&mut dyn FnMut() -> bool> = if follow { Some(&mut gone) } else { None };
        let _ = read_log(&path, &opts, f, tty, stdout, stderr, timestamps, &tx);
    });
    Ok(http::response(StatusCode::OK, RAW_STREAM, body))
}

/// `wait`'s conditions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

pub async fn wait(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let cond = match r.query.get("condition").unwrap_or("") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        c => return Err(ApiError::bad(format!("invalid condition: {c:?}"))),
    };
    let (rec, o, pending) = pending_conn(&st, &id).await?;
    let running = o.status.is_running();
    let last = o.exit.as_ref().map(|x| x.exit_code).unwrap_or(0);
    if cond == Condition::NotRunning && !running {
        drop(pending);
        return Ok(http::json(
            &serde_json::json!({"StatusCode": last, "Error": null}),
        ));
    }
    // Headers go out now (docker's CLI waits for them before it starts the
    // container); the status follows when the container exits.
    let (tx, body) = http::channel(1);
    let full = rec.id.clone();
    tokio::spawn(async move {
        let tx2 = tx.clone();
        let code = match pending.get(&st, &move || tx2.is_closed()).await {
            Some(c) => match MonitorSock::new(c) {
                Ok(sock) => {
                    let mut buf = vec![0u8; 32 * 1024 + 2];
                    let mut code = None;
                    while let Ok(n) = sock.recv(&mut buf).await {
                        match buf[..n].split_first() {
                            Some((3, p)) => {
                                code = exit_code(p);
                                break;
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                    code
                }
                Err(_) => None,
            },
            None => None,
        };
        let st2 = st.clone();
        let full2 = full.clone();
        let code = blocking(move || {
            let mut e = st2.engine()?;
            if cond == Condition::Removed {
                let rec = e.find(&full2).ok();
                let pid = rec
                    .as_ref()
                    .and_then(|rec| e.observe(rec).ok())
                    .and_then(|o| o.monitor.map(|m| m.pid));
                if let Some(p) = pid {
                    oxcart_engine::wait::wait_pid_exit(p, Some(Duration::from_secs(60)));
                }
                // Removed as docker means it: the record and the container's files
                // (its directory goes after the record: a client that checks the disk
                // once this answers must find nothing).
                let dir = rec.map(|r| e.ctr_dir(&r.id));
                while e.find(&full2).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                // Bounded: a removal that failed half-way must not hold the client.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while dir.as_ref().is_some_and(|d| d.exists())
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(code.unwrap_or(0));
            }
            match code {
                Some(c) => Ok(c),
                None => Ok(e.wait(&full2)?),
            }
        })
        .await;
        let v = match code {
            Ok(c) => serde_json::json!({"StatusCode": c, "Error": null}),
            Err(e) => serde_json::json!({"StatusCode": -1, "Error": {"Message": e.message}}),
        };
        let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
    });
    Ok(http::response(StatusCode::OK, "application/json", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// The monitor sent output and its exit frame, then closed with our stdin's EOF
    /// frame unread: the kernel's ECONNRESET comes first, the frames after it.
    #[test]
    fn frames_sent_before_a_reset_are_read() {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fds we then own.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: fresh fds from socketpair.
        let (ours, monitor) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let send = |fd: &OwnedFd, frame: &[u8]| {
            // SAFETY: a valid buffer of frame.len() bytes.
            let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            assert_eq!(n as usize, frame.len());
        };
        send(&ours, &[1]);
        send(&monitor, b"\x01out");
        send(&monitor, b"\x03{\"exit_code\":0,\"oom_killed\":false}");
        drop(monitor);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let sock = MonitorSock::from_fd(ours).unwrap();
            let mut buf = [0u8; 256];
            let mut got = Vec::new();
            loop {
                let n = sock.recv(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.push(buf[..n].to_vec());
            }
        });
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], b"\x01out");
        assert_eq!(got[1][0], 3);
    }
}
