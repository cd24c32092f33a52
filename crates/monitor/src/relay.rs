//! Step 5 of docs/engine.md "The monitor": one poll loop copying the container's
//! output to the log and the attached clients, clients' stdin to the container,
//! and noticing the container's exit through a signalfd.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use oxcart_jsonlog::{Stream, Timestamp, Writer};

use crate::args::{Args, OnFailure};
use crate::create::Io;
use crate::health::Health;
use crate::{restart, sys};

/// Largest chunk read from the container, hence the largest frame payload.
pub const CHUNK: usize = 32 * 1024;
/// A client with this much output queued is dropped: it cannot keep up, and the
/// container must never wait for it (docs/engine.md "Attach protocol").
const CLIENT_QUEUE_MAX: usize = 1024 * 1024;
/// Stdin waiting for the container beyond this stops the monitor reading clients.
const STDIN_MAX: usize = 1024 * 1024;

// Message types of the attach protocol.
const IN_STDIN: u8 = 0;
const IN_EOF: u8 = 1;
const IN_RESIZE: u8 = 2;
/// The client removes the container itself after the exit frame (docs/engine.md
/// "Attach protocol": the cleanup handoff).
const IN_CLEANUP: u8 = 3;
const OUT_STDOUT: u8 = 1;
const OUT_STDERR: u8 = 2;
const OUT_EXIT: u8 = 3;

struct Client {
    fd: OwnedFd,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    sent_stdin: bool,
    dead: bool,
    /// Asked to do the cleanup itself (`IN_CLEANUP`).
    cleans: bool,
}

pub struct Relay {
    sigfd: OwnedFd,
    listener: Option<OwnedFd>,
    clients: Vec<Client>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    /// The console master, for resizes.
    tty: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    close_stdin: bool,
    stdin_once: bool,
    log: Option<Writer>,
    log_failed: bool,
    ctr_pid: libc::pid_t,
    status: Option<libc::c_int>,
    pub health: Option<Health>,
    /// SIGKILL the container then (a `--health-on-failure stop|restart` past the
    /// stop timeout).
    kill_at: Option<Instant>,
    /// `--health-on-failure restart` stopped this run: start it again at once.
    pub health_restart: bool,
    pending_action: Option<OnFailure>,
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Out(Stream),
    Stdin,
    Client(usize),
    Probe,
}

pub struct Setup {
    pub sigfd: OwnedFd,
    pub listener: OwnedFd,
    pub io: Io,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log: Option<Writer>,
    pub ctr_pid: libc::pid_t,
    pub reaped: Vec<(libc::pid_t, libc::c_int)>,
    pub health: Option<Health>,
}

impl Relay {
    pub fn new(s: Setup) -> std::io::Result<Relay> {
        let mut r = Relay {
            sigfd: s.sigfd,
            listener: Some(s.listener),
            clients: Vec::new(),
            stdout: None,
            stderr: None,
            stdin: None,
            tty: None,
            stdin_buf: Vec::new(),
            close_stdin: false,
            stdin_once: false,
            log: None,
            log_failed: false,
            ctr_pid: 0,
            status: None,
            health: s.health,
            kill_at: None,
            health_restart: false,
            pending_action: None,
        };
        r.new_run(s.io, s.stdin, s.stdin_once, s.log, s.ctr_pid, &s.reaped)?;
        Ok(r)
    }

    /// A run of the container begins (the first, or a restart): its stdio, its log
    /// writer and its init.
    pub fn new_run(
        &mut self,
        io: Io,
        stdin: bool,
        stdin_once: bool,
        log: Option<Writer>,
        ctr_pid: libc::pid_t,
        reaped: &[(libc::pid_t, libc::c_int)],
    ) -> std::io::Result<()> {
        let want_stdin = stdin;
        let is_tty = matches!(io, Io::Tty { .. });
        let (stdout, stderr, stdin, tty) = match io {
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                sys::set_nonblock(stdout.as_fd())?;
                sys::set_nonblock(stderr.as_fd())?;
                if let Some(i) = &stdin {
                    sys::set_nonblock(i.as_fd())?;
                }
                (Some(stdout), Some(stderr), stdin, None)
            }
            Io::Tty { master } => {
                let input = if want_stdin {
                    Some(master.try_clone()?)
                } else {
                    None
                };
                let tty = master.try_clone()?;
                (Some(master), None, input, Some(tty))
            }
        };
        self.status = reaped
            .iter()
            .find(|(p, _)| *p == ctr_pid)
            .map(|&(_, st)| st);
        self.stdout = stdout;
        self.stderr = stderr;
        self.stdin = stdin;
        self.tty = tty;
        self.stdin_buf.clear();
        self.close_stdin = false;
        // A tty has no end of input to pass on: ^D is a byte the client sends.
        self.stdin_once = stdin_once && want_stdin && !is_tty;
        self.log = log;
        self.log_failed = false;
        self.ctr_pid = ctr_pid;
        self.kill_at = None;
        self.health_restart = false;
        if let Some(h) = &mut self.health {
            h.reset();
        }
        Ok(())
    }

    /// Relays until the container's init exits, then drains its output; returns the
    /// init's wait status. Healthchecks run meanwhile.
    pub fn run(&mut self, a: &Args) -> std::io::Result<libc::c_int> {
        let status = loop {
            if let Some(st) = self.status {
                break st;
            }
            let now = Instant::now();
            if self.kill_at.is_some_and(|t| now >= t) {
                self.kill_at = None;
                sys::kill(self.ctr_pid, libc::SIGKILL);
            }
            if let Some(h) = &mut self.health {
                h.tick(a, now);
            }
            let wake = [
                self.kill_at,
                self.health.as_ref().and_then(Health::deadline),
            ]
            .into_iter()
            .flatten()
            .min();
            let ms = match wake {
                None => -1,
                Some(t) => t
                    .saturating_duration_since(now)
                    .as_millis()
                    .saturating_add(1)
                    .min(i32::MAX as u128) as i32,
            };
            self.poll_once(ms)?;
            // docker's handleProbeResult logs `health_status: <status>` on a change.
            if let Some(st) = self.health.as_mut().and_then(|h| h.take_change()) {
                crate::emit(a, &format!("health_status: {}", st.as_str()), &[]);
            }
            if let Some(action) = self.pending_action.take() {
                self.on_unhealthy(a, action, &a.ctr_dir);
            }
            let pending = sys::take_pending();
            if pending & sys::PROBE != 0 {
                if let Some(h) = &mut self.health {
                    h.probe_now();
                }
            }
        };
        if let Some(h) = &mut self.health {
            h.stop();
        }
        // What the container wrote before it exited is still in the pipe (or the
        // pty): read until every writer is gone, bounded for processes that outlive
        // the init outside a PID namespace.
        let deadline = Instant::now() + Duration::from_secs(2);
        while (self.stdout.is_some() || self.stderr.is_some()) && Instant::now() < deadline {
            if self.poll_once(100)? == 0 {
                break;
            }
        }
        self.stdout = None;
        self.stderr = None;
        self.stdin = None;
        Ok(status)
    }

    /// Writes out the log's unterminated lines and closes it: before exit.json, so a
    /// `logs -f` that stops once exit.json exists has seen everything.
    pub fn close_log(&mut self) -> Option<std::io::Error> {
        self.log
            .take()
            .and_then(|w| w.close(Timestamp::now()).err())
    }

    pub fn sigfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sigfd.as_fd()
    }

    /// No more clients: the monitor is about to run the exit command.
    pub fn close_listener(&mut self) {
        self.listener = None;
    }

    /// Sends every client the exit frame and waits (briefly) until they have it;
    /// the listener stays for the next run's clients. On the last exit
    /// (`last`), the first live client that asked to clean up is told in its frame
    /// (`"cleanup":true`) that the removal is its own, and its connection is
    /// returned: the caller waits for it to hang up before doing any cleanup.
    pub fn finish(&mut self, exit_code: i32, oom_killed: bool, last: bool) -> Option<OwnedFd> {
        // Late clients get the exit frame too.
        self.accept_clients();
        // A cleanup request sent before the start may still be unread if the
        // container exited at once.
        self.read_requests();
        let cleaner = if last {
            self.clients.iter().position(|c| c.cleans && !c.dead)
        } else {
            None
        };
        let frame = |cleanup: bool| {
            let mut f = vec![OUT_EXIT];
            let extra = if cleanup { ",\"cleanup\":true" } else { "" };
            f.extend_from_slice(
                format!("{{\"exit_code\":{exit_code},\"oom_killed\":{oom_killed}{extra}}}")
                    .as_bytes(),
            );
            f
        };
        for (i, c) in self.clients.iter_mut().enumerate() {
            let f = frame(Some(i) == cleaner);
            c.queued += f.len();
            c.queue.push_back(f);
        }
        self.flush_clients();
        let deadline = Instant::now() + Duration::from_secs(2);
        let listener = self.listener.take();
        while self.clients.iter().any(|c| !c.queue.is_empty()) && Instant::now() < deadline {
            if self.poll_once(100).is_err() {
                break;
            }
        }
        self.listener = listener;
        // A cleaner whose frame is still queued may yet read it and clean up: it is
        // handed the cleanup all the same (the hang-up wait covers both cases, and a
        // second cleanup after it finds nothing to do).
        let handed = cleaner.map(|i| self.clients.swap_remove(i).fd);
        self.clients.clear();
        handed
    }

    /// The restart backoff: reaps orphans and waits until `until`, or until a
    /// user's stop or kill wakes us (true: re-read the markers). Clients that
    /// connect meanwhile wait in the backlog for the next run.
    pub fn wait_backoff(&mut self, until: Instant) -> std::io::Result<bool> {
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            let ms = until
                .saturating_duration_since(now)
                .as_millis()
                .saturating_add(1)
                .min(i32::MAX as u128) as i32;
            let mut fds = [libc::pollfd {
                fd: self.sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if sys::poll(&mut fds, ms)? > 0 {
                self.reap();
            }
            if sys::take_pending() & sys::WAKE != 0 {
                return Ok(true);
            }
        }
    }

    /// `--health-on-failure`: the container just turned unhealthy.
    fn on_unhealthy(&mut self, a: &Args, action: OnFailure, dir: &std::path::Path) {
        let stop = |r: &mut Relay| {
            sys::kill(r.ctr_pid, a.stop_signal);
            if a.stop_timeout >= 0 {
                r.kill_at = Some(Instant::now() + Duration::from_secs(a.stop_timeout as u64));
            }
        };
        match action {
            OnFailure::None => {}
            OnFailure::Restart => {
                self.health_restart = true;
                stop(self);
            }
            // podman's kill and stop are the user's: no restart policy undoes them.
            OnFailure::Kill | OnFailure::Stop => {
                for f in [restart::STOPPED_FILE, restart::CANCELED_FILE] {
                    let _ = std::fs::write(dir.join(f), b"");
                }
                if action == OnFailure::Kill {
                    sys::kill(self.ctr_pid, libc::SIGKILL);
                } else {
                    stop(self);
                }
            }
        }
    }

    /// One poll round; returns how many descriptors were ready.
    fn poll_once(&mut self, timeout_ms: i32) -> std::io::Result<usize> {
        let mut fds = Vec::with_capacity(6 + self.clients.len());
        let mut tokens = Vec::with_capacity(fds.capacity());
        let mut add = |fd: &OwnedFd, events: libc::c_short, t: Token| {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            });
            tokens.push(t);
        };
        add(&self.sigfd, libc::POLLIN, Token::Signal);
        if let Some(l) = &self.listener {
            add(l, libc::POLLIN, Token::Listener);
        }
        if let Some(o) = &self.stdout {
            add(o, libc::POLLIN, Token::Out(Stream::Stdout));
        }
        if let Some(e) = &self.stderr {
            add(e, libc::POLLIN, Token::Out(Stream::Stderr));
        }
        if let (Some(i), false) = (&self.stdin, self.stdin_buf.is_empty()) {
            add(i, libc::POLLOUT, Token::Stdin);
        }
        if let Some(p) = self.health.as_ref().and_then(Health::output_fd) {
            add(p, libc::POLLIN, Token::Probe);
        }
        let want_input = self.stdin_buf.len() < STDIN_MAX;
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = 0;
            if want_input {
                ev |= libc::POLLIN;
            }
            if !c.queue.is_empty() {
                ev |= libc::POLLOUT;
            }
            add(&c.fd, ev, Token::Client(i));
        }
        let n = sys::poll(&mut fds, timeout_ms)?;
        for (pfd, t) in fds.iter().zip(tokens) {
            if pfd.revents == 0 {
                continue;
            }
            match t {
                Token::Signal => self.reap(),
                Token::Listener => self.accept_clients(),
                Token::Out(s) => self.read_output(s),
                Token::Stdin => self.flush_stdin(),
                Token::Client(i) => self.serve_client(i, pfd.revents),
                Token::Probe => {
                    if let Some(h) = &mut self.health {
                        h.read_output();
                    }
                }
            }
        }
        self.clients.retain(|c| !c.dead);
        Ok(n)
    }

    fn reap(&mut self) {
        sys::drain_signalfd(self.sigfd.as_fd());
        // We are a subreaper: orphans of the container land here too.
        while let Some((pid, status)) = sys::reap_one() {
            if pid == self.ctr_pid {
                self.status = Some(status);
            }
            if let Some(h) = &mut self.health {
                if h.probe_pid() == Some(pid) {
                    self.pending_action = h.finished(status);
                }
            }
        }
    }

    fn accept_clients(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok(fd) = sys::accept(l.as_fd()) {
            self.clients.push(Client {
                fd,
                queue: VecDeque::new(),
                queued: 0,
                sent_stdin: false,
                dead: false,
                cleans: false,
            });
        }
    }

    fn read_output(&mut self, stream: Stream) {
        let slot = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(fd) = slot else { return };
        let mut buf = [0u8; CHUNK + 1];
        // The frame type first, so the frame needs no second copy.
        buf[0] = match stream {
            Stream::Stdout => OUT_STDOUT,
            Stream::Stderr => OUT_STDERR,
        };
        let n = match sys::read(fd.as_fd(), &mut buf[1..]) {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // 0: every writer closed it; EIO: the pty's last slave closed.
            _ => {
                *slot = None;
                return;
            }
        };
        let data = &buf[1..=n];
        if let Some(w) = &mut self.log {
            if w.write(stream, data, Timestamp::now()).is_err() && !self.log_failed {
                // A full disk must not stop the container: keep relaying to clients.
                self.log_failed = true;
            }
        }
        let frame = &buf[..=n];
        for c in &mut self.clients {
            if c.queued + frame.len() > CLIENT_QUEUE_MAX {
                c.dead = true;
                continue;
            }
            c.queue.push_back(frame.to_vec());
            c.queued += frame.len();
        }
        self.flush_clients();
    }

    fn flush_clients(&mut self) {
        for c in &mut self.clients {
            while let Some(f) = c.queue.front() {
                match sys::send(c.fd.as_fd(), f) {
                    Ok(_) => {
                        c.queued -= f.len();
                        c.queue.pop_front();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                }
            }
        }
    }

    fn serve_client(&mut self, i: usize, revents: libc::c_short) {
        if revents & libc::POLLOUT != 0 {
            self.flush_clients();
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.read_client(i, &mut vec![0u8; CHUNK + 1]);
        }
        let c = &self.clients[i];
        // docker's StdinOnce: a client that was feeding stdin going away (detach
        // included) ends the container's stdin, as a closed `docker attach` does.
        if c.dead && c.sent_stdin && self.stdin_once {
            self.close_stdin = true;
        }
        self.flush_stdin();
    }

    /// Every message the clients have sent and we have not read yet.
    fn read_requests(&mut self) {
        let mut buf = vec![0u8; CHUNK + 1];
        for i in 0..self.clients.len() {
            self.read_client(i, &mut buf);
        }
    }

    /// Client `i`'s messages, until it has none queued, hangs up, or 1 MiB of stdin
    /// waits for the container.
    fn read_client(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let c = &mut self.clients[i];
            if c.dead || self.stdin_buf.len() >= STDIN_MAX {
                break;
            }
            match sys::recv(c.fd.as_fd(), buf) {
                Ok(0) => c.dead = true,
                Ok(n) => self.client_message(i, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => c.dead = true,
            }
        }
    }

    fn client_message(&mut self, i: usize, msg: &[u8]) {
        let Some((&kind, payload)) = msg.split_first() else {
            return;
        };
        match kind {
            IN_STDIN if self.stdin.is_some() && !self.close_stdin => {
                self.clients[i].sent_stdin = true;
                self.stdin_buf.extend_from_slice(payload);
            }
            IN_EOF if self.stdin_once => self.close_stdin = true,
            IN_CLEANUP => self.clients[i].cleans = true,
            IN_RESIZE if payload.len() >= 4 => {
                if let Some(t) = &self.tty {
                    let rows = u16::from_be_bytes([payload[0], payload[1]]);
                    let cols = u16::from_be_bytes([payload[2], payload[3]]);
                    // A failed resize is not worth stopping for; the next one may work.
                    let _ = sys::set_winsize(t.as_fd(), rows, cols);
                }
            }
            // Stdin with no stdin to write to, or an unknown type: ignored, so a
            // newer client works with an older monitor.
            _ => {}
        }
    }

    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.stdin_buf.is_empty() {
                match sys::write(fd.as_fd(), &self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    // EPIPE: the container closed its stdin; what is left is lost.
                    Err(_) => {
                        self.stdin = None;
                        self.stdin_buf.clear();
                        return;
                    }
                }
            }
        }
        if self.close_stdin && self.stdin_buf.is_empty() {
            self.stdin = None;
        }
    }
}
