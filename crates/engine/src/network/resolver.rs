//! The resolver process of an engine root (`oxcart network-dns RUNROOT`, docker's
//! embedded DNS server in the shape of a small daemon). For every container on a user
//! network it holds a UDP socket and a TCP listener on 127.0.0.11:53 *inside that
//! container's network namespace* (made by a thread that `setns`es there; a socket
//! stays in the namespace it was made in), so no port of the host is ever bound and a
//! query's socket says which container asked: it is answered from the networks that
//! container is on only (aardvark-dns's rule). Names no network knows go to the
//! container's upstream servers: the host's resolvers, asked from the host's
//! namespace (so systemd-resolved's 127.0.0.53 works), or its `--dns` servers, asked
//! from the container's namespace (docker's rule for overrides).
//!
//! It reads `<runroot>/dns/records.json` at start and on every `reload` line on its
//! control socket (`<runroot>/dns/ctl.sock`), answering `ok` once every container's
//! sockets exist, and exits (answering `bye`) when no container needs it.

use super::dns::{CtrRecord, Records, CTL, PIDFILE, RESOLVER_IP, WORKER_PIDFILE};
use super::{NetworkError, ProxyPid};
use simple_dns::rdata::{RData, A, PTR};
use simple_dns::{Name, Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// docker's answer TTL, upstream timeout and number of upstream servers tried.
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_UPSTREAMS: usize = 3;
/// Forwarded UDP queries and TCP connections in flight at once (a thread each); more
/// are refused (docker: 1024 forwarded queries).
const MAX_FORWARDS: usize = 256;

/// One network's names: lower-cased name → addresses, address → PTR name.
struct NetView {
    name: String,
    by_name: HashMap<String, Vec<Ipv4Addr>>,
    by_ip: HashMap<Ipv4Addr, String>,
}

struct CtrView {
    rec: CtrRecord,
    servers: Vec<SocketAddr>,
    /// The container's namespace, for `--dns` servers asked from inside it.
    netns: Option<Arc<OwnedFd>>,
}

#[derive(Default)]
struct Snapshot {
    nets: HashMap<String, NetView>,
    ctrs: HashMap<String, CtrView>,
}

type Shared = Arc<RwLock<Arc<Snapshot>>>;

/// A container's two listening sockets (and its namespace, held for forwarding).
struct Bound {
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    netns: Arc<OwnedFd>,
}

struct Resolver {
    dir: PathBuf,
    runroot: PathBuf,
    shared: Shared,
    bound: HashMap<String, Bound>,
    inflight: Arc<AtomicUsize>,
}

fn fail(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Invalid(format!("network-dns: {e}"))
}

/// `oxcart network-dns RUNROOT`: the supervisor. It starts the worker (the process
/// that serves), passes its first report on to the command that started it, and
/// starts a new worker whenever one dies other than by its own exit (a `kill -9`, a
/// crash), so running containers lose name resolution only for the moment the new
/// one needs to bind their sockets again. It exits with the worker's clean exit.
pub fn main(runroot: &Path) -> Result<(), NetworkError> {
    let dir = runroot.join("dns");
    std::fs::create_dir_all(&dir).map_err(fail)?;
    write_pid(&dir.join(PIDFILE))?;
    let mut out = std::io::stdout();
    let (mut child, line) = spawn_worker(runroot)?;
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    to_dev_null();
    if line != "ready" && !line.starts_with("failed:") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(line));
    }
    let mut restarts: Vec<std::time::Instant> = Vec::new();
    loop {
        match child.wait() {
            Ok(st) if st.code() == Some(0) => return Ok(()),
            _ => {}
        }
        if !dir.join("records.json").exists() {
            return Ok(());
        }
        // A worker that keeps dying is not restarted for ever: five in ten seconds
        // and the next engine command (which starts a resolver when none answers)
        // gets to report why.
        let now = std::time::Instant::now();
        restarts.retain(|t| now.duration_since(*t) < Duration::from_secs(10));
        if restarts.len() >= 5 {
            let _ = std::fs::remove_file(dir.join(CTL));
            return Err(fail("the worker keeps dying"));
        }
        restarts.push(now);
        std::thread::sleep(Duration::from_millis(50));
        // Under the host network lock, as an engine command starts one: no command
        // talks to a half-started worker or starts a second one meanwhile.
        let _lock = super::HostLock::take()?;
        // A command found no worker answering and started a whole new resolver
        // meanwhile: it serves; this supervisor is done.
        if !dir.join("records.json").exists() || worker_answers(&dir) {
            return Ok(());
        }
        let (c, _) = spawn_worker(runroot)?;
        child = c;
    }
}

fn worker_answers(dir: &Path) -> bool {
    UnixStream::connect(dir.join(CTL))
        .and_then(|mut s| s.write_all(b"ping\n"))
        .is_ok()
}

fn write_pid(path: &Path) -> Result<(), NetworkError> {
    let pid = std::process::id() as i32;
    let me = ProxyPid {
        pid,
        start_time: super::start_time(pid).unwrap_or(0),
        bypass_error: None,
    };
    let json = serde_json::to_vec(&me).map_err(fail)?;
    crate::etcfiles::write_atomic(path, &json).map_err(fail)
}

/// Nothing reads our stdout after the report: point it at /dev/null so the pipe
/// closes and a late write cannot fail.
fn to_dev_null() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 of an fd we own onto stdout.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

/// Start a worker (`oxcart network-dns --worker RUNROOT`) and read its report.
fn spawn_worker(runroot: &Path) -> Result<(std::process::Child, String), NetworkError> {
    let exe = crate::paths::self_exe().map_err(fail)?;
    let mut child = std::process::Command::new(&exe)
        .arg("network-dns")
        .arg("--worker")
        .arg(runroot)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(fail)?;
    let mut line = String::new();
    if let Some(o) = child.stdout.take() {
        let _ = BufReader::new(o).read_line(&mut line);
    }
    let line = match line.trim() {
        "" => "error: the resolver worker exited without a report".to_string(),
        l => l.to_string(),
    };
    Ok((child, line))
}

/// `oxcart network-dns --worker RUNROOT`: the process that serves.
pub fn worker_main(runroot: &Path) -> Result<(), NetworkError> {
    let dir = runroot.join("dns");
    let mut out = std::io::stdout();
    let (ctl, _lock) = match start(&dir) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return Err(e);
        }
    };
    let mut r = Resolver {
        dir: dir.clone(),
        runroot: runroot.to_path_buf(),
        shared: Arc::default(),
        bound: HashMap::new(),
        inflight: Arc::default(),
    };
    let errs = r.reload();
    if r.bound.is_empty() && errs.is_empty() {
        // Nobody needs us (the last container went while we started).
        let _ = std::fs::remove_file(dir.join(CTL));
        let _ = writeln!(out, "ready");
        return Ok(());
    }
    let _ = match errs.is_empty() {
        true => writeln!(out, "ready"),
        false => writeln!(out, "failed: {}", errs.join("; ")),
    };
    let _ = out.flush();
    to_dev_null();
    r.serve(ctl)
}

fn start(dir: &Path) -> Result<(UnixListener, crate::lock::FileLock), NetworkError> {
    std::fs::create_dir_all(dir).map_err(fail)?;
    // One worker per root: a second one (a supervisor restarting its worker while a
    // command started a new resolver) would find every container's port taken.
    let lock = crate::lock::FileLock::try_acquire(&dir.join("worker.lock"))
        .map_err(fail)?
        .ok_or_else(|| fail("another resolver worker of this root is running"))?;
    write_pid(&dir.join(WORKER_PIDFILE))?;
    let ctl = dir.join(CTL);
    // A killed worker's socket file: workers are started under the host lock, so no
    // other one of this root is starting.
    let _ = std::fs::remove_file(&ctl);
    let l = UnixListener::bind(&ctl).map_err(|e| fail(format!("{}: {e}", ctl.display())))?;
    Ok((l, lock))
}

/// Make a container's sockets inside its namespace: a thread enters it, binds, and
/// ends; the sockets stay in that namespace.
fn bind_in(ns_path: &Path) -> std::io::Result<Bound> {
    let file: OwnedFd = std::fs::File::open(ns_path)?.into();
    let (udp, tcp, ns) = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<(UdpSocket, TcpListener, OwnedFd)> {
            // SAFETY: setns on an fd we own; it moves only this short-lived thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let u = UdpSocket::bind((RESOLVER_IP, 53))?;
            let t = TcpListener::bind((RESOLVER_IP, 53))?;
            // The namespace as /proc names it, kept for `--dns` forwarding: an open
            // fd of the bind-mounted file would keep that mount busy.
            let ns: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
            Ok((u, t, ns))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok(Bound {
        udp: Arc::new(udp),
        tcp,
        netns: Arc::new(ns),
    })
}

impl Resolver {
    /// Read the records, drop the sockets of containers that left, make those of
    /// containers that came. The errors, named by container.
    fn reload(&mut self) -> Vec<String> {
        let recs: Records = std::fs::read(self.dir.join("records.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut errs = Vec::new();
        self.bound
            .retain(|id, _| recs.containers.iter().any(|c| c.id == *id));
        for c in &recs.containers {
            if self.bound.contains_key(&c.id) {
                continue;
            }
            let p = self.runroot.join("netns").join(&c.id);
            if !p.exists() {
                continue; // being torn down; the next records drop it
            }
            match bind_in(&p) {
                Ok(b) => {
                    self.bound.insert(c.id.clone(), b);
                }
                Err(e) => errs.push(format!(
                    "container {}: binding {RESOLVER_IP}:53 in its namespace: {e}",
                    &c.id[..12.min(c.id.len())]
                )),
            }
        }
        let snap = self.snapshot_of(recs);
        if let Ok(mut s) = self.shared.write() {
            *s = Arc::new(snap);
        }
        errs
    }

    /// The lookup tables of the records, for queries to answer from.
    fn snapshot_of(&self, recs: Records) -> Snapshot {
        let mut snap = Snapshot::default();
        for n in recs.networks {
            let mut v = NetView {
                name: n.name.to_lowercase(),
                by_name: HashMap::new(),
                by_ip: HashMap::new(),
            };
            for ep in n.endpoints {
                if let Some(first) = ep.names.first() {
                    v.by_ip.insert(ep.ip, format!("{first}.{}", n.name));
                }
                for name in ep.names {
                    let e = v.by_name.entry(name.to_lowercase()).or_default();
                    if !e.contains(&ep.ip) {
                        e.push(ep.ip);
                    }
                }
            }
            snap.nets.insert(n.id, v);
        }
        for c in recs.containers {
            let servers = c
                .servers
                .iter()
                .filter_map(|s| s.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .take(MAX_UPSTREAMS)
                .collect();
            let netns = self.bound.get(&c.id).map(|b| b.netns.clone());
            snap.ctrs.insert(
                c.id.clone(),
                CtrView {
                    rec: c,
                    servers,
                    netns,
                },
            );
        }
        snap
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.shared
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// poll(2) over the control socket and every container's two sockets.
    fn serve(&mut self, ctl: UnixListener) -> Result<(), NetworkError> {
        ctl.set_nonblocking(true).map_err(fail)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let ids: Vec<String> = self.bound.keys().cloned().collect();
            let mut fds = vec![libc::pollfd {
                fd: ctl.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            for id in &ids {
                let b = &self.bound[id];
                for fd in [b.udp.as_raw_fd(), b.tcp.as_raw_fd()] {
                    fds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            // SAFETY: a valid array of pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                continue; // EINTR
            }
            for (i, id) in ids.iter().enumerate() {
                if fds[1 + 2 * i].revents != 0 {
                    self.on_udp(id, &mut buf);
                }
                if fds[2 + 2 * i].revents != 0 {
                    self.on_tcp(id);
                }
            }
            if fds[0].revents != 0 {
                if let Ok((s, _)) = ctl.accept() {
                    if self.on_control(s) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// A control request. True when the resolver is to exit.
    fn on_control(&mut self, s: UnixStream) -> bool {
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        if BufReader::new(&s).read_line(&mut line).is_err() || line.trim() != "reload" {
            return false;
        }
        let errs = self.reload();
        let mut s = s;
        if self.bound.is_empty() && errs.is_empty() {
            // Stop taking requests before saying so: the next command then starts a
            // new resolver rather than talking to one that is leaving.
            let _ = std::fs::remove_file(self.dir.join(CTL));
            let _ = s.write_all(b"bye\n");
            return true;
        }
        let reply = if errs.is_empty() {
            "ok\n".to_string()
        } else {
            format!("failed: {}\n", errs.join("; "))
        };
        let _ = s.write_all(reply.as_bytes());
        false
    }

    fn on_udp(&self, id: &str, buf: &mut [u8]) {
        let Some(b) = self.bound.get(id) else { return };
        let Ok((n, from)) = b.udp.recv_from(buf) else {
            return;
        };
        let snap = self.snapshot();
        match answer(&snap, id, &buf[..n], true) {
            Outcome::Drop => {}
            Outcome::Reply(r) => {
                let _ = b.udp.send_to(&r, from);
            }
            Outcome::Forward => {
                if self.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDS {
                    self.inflight.fetch_sub(1, Ordering::SeqCst);
                    if let Some(r) = rcode_reply(&buf[..n], RCODE::Refused) {
                        let _ = b.udp.send_to(&r, from);
                    }
                    return;
                }
                let (sock, q, inflight, id) = (
                    b.udp.clone(),
                    buf[..n].to_vec(),
                    self.inflight.clone(),
                    id.to_string(),
                );
                std::thread::spawn(move || {
                    let r = forward(&snap, &id, &q, false)
                        .or_else(|| rcode_reply(&q, RCODE::ServerFailure));
                    if let Some(r) = r {
                        let _ = sock.send_to(&r, from);
                    }
                    inflight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }

    fn on_tcp(&self, id: &str) {
        let Some(b) = self.bound.get(id) else { return };
        let Ok((s, _)) = b.tcp.accept() else { return };
        // A thread per connection, so a bounded number: a container opening
        // connections by the thousand must not starve the others' resolution.
        if self.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDS {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            return; // dropped: the client sees the connection closed
        }
        let (shared, id, inflight) = (self.shared.clone(), id.to_string(), self.inflight.clone());
        std::thread::spawn(move || {
            tcp_conn(s, &shared, &id);
            inflight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A DNS-over-TCP connection: length-prefixed messages until EOF or 10 s idle.
fn tcp_conn(mut s: TcpStream, shared: &Shared, id: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut q).is_err() {
            return;
        }
        let snap = shared
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let r = match answer(&snap, id, &q, false) {
            Outcome::Drop => return,
            Outcome::Reply(r) => Some(r),
            Outcome::Forward => forward(&snap, id, &q, true),
        }
        .or_else(|| rcode_reply(&q, RCODE::ServerFailure));
        let Some(r) = r else { return };
        let Ok(l) = u16::try_from(r.len()) else {
            return;
        };
        if s.write_all(&l.to_be_bytes()).is_err() || s.write_all(&r).is_err() {
            return;
        }
    }
}

enum Outcome {
    Drop,
    Reply(Vec<u8>),
    Forward,
}

/// Resolve a name for a container (docker's `Sandbox.ResolveName`): `a.b.c` is tried
/// whole on every network of the container, then as `a.b` on its network `c`, then
/// `a` on its network `b.c`.
fn resolve(snap: &Snapshot, ctr: &CtrView, name: &str) -> Option<Vec<Ipv4Addr>> {
    let mut tries = vec![(name, None)];
    let mut cut = name;
    while let Some(i) = cut.rfind('.') {
        tries.push((&name[..i], Some(&name[i + 1..])));
        cut = &cut[..i];
    }
    for (req, net) in tries {
        for nid in &ctr.rec.networks {
            let Some(n) = snap.nets.get(nid) else {
                continue;
            };
            if net.is_some_and(|x| x != n.name) {
                continue;
            }
            if let Some(ips) = n.by_name.get(req) {
                return Some(ips.clone());
            }
        }
    }
    None
}

/// `d.c.b.a.in-addr.arpa` of an address on one of the container's networks: its
/// first name and the network's (docker's `name.network`).
fn resolve_ptr(snap: &Snapshot, ctr: &CtrView, name: &str) -> Option<String> {
    let rev = name.strip_suffix(".in-addr.arpa")?;
    let o: Vec<u8> = rev
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [d, c, b, a] = o[..] else { return None };
    let ip = Ipv4Addr::new(a, b, c, d);
    ctr.rec
        .networks
        .iter()
        .filter_map(|nid| snap.nets.get(nid))
        .find_map(|n| n.by_ip.get(&ip).cloned())
}

/// What to do with a query from container `id`: answer from its networks, or forward.
fn answer(snap: &Snapshot, id: &str, q: &[u8], udp: bool) -> Outcome {
    let Ok(p) = Packet::parse(q) else {
        return Outcome::Drop;
    };
    if p.has_flags(PacketFlag::RESPONSE) || p.questions.is_empty() {
        return Outcome::Drop;
    }
    let Some(ctr) = snap.ctrs.get(id) else {
        return rcode_reply(q, RCODE::ServerFailure).map_or(Outcome::Drop, Outcome::Reply);
    };
    let question = &p.questions[0];
    let name = question.qname.to_string().to_lowercase();
    let name = name.trim_end_matches('.');
    let ptr_target;
    let mut answers: Vec<RData> = Vec::new();
    let found = match question.qtype {
        QTYPE::TYPE(TYPE::A) => resolve(snap, ctr, name).map(|ips| {
            answers.extend(ips.into_iter().map(|ip| {
                RData::A(A {
                    address: u32::from(ip),
                })
            }))
        }),
        // A name we know without IPv6: an empty answer, never forwarded (docker).
        QTYPE::TYPE(TYPE::AAAA) | QTYPE::TYPE(TYPE::MX) => resolve(snap, ctr, name).map(drop),
        QTYPE::TYPE(TYPE::PTR) => match resolve_ptr(snap, ctr, name) {
            Some(host) => {
                ptr_target = format!("{host}.");
                answers.push(RData::PTR(PTR(Name::new_unchecked(&ptr_target))));
                Some(())
            }
            None => None,
        },
        _ => None,
    };
    let is_addr = matches!(
        question.qtype,
        QTYPE::TYPE(TYPE::A) | QTYPE::TYPE(TYPE::AAAA)
    );
    // With ndots set by the user, a single-label name no network knows is answered
    // empty so the client goes on with its search domains (docker's resolver).
    if found.is_none() && !(is_addr && ctr.rec.ndots_set && !name.contains('.')) {
        return Outcome::Forward;
    }
    reply_with(&p, answers, udp)
        .or_else(|| rcode_reply(q, RCODE::ServerFailure))
        .map_or(Outcome::Drop, Outcome::Reply)
}

/// The answer to `p`'s first question with `answers` (none: an empty NOERROR).
fn reply_with(p: &Packet, answers: Vec<RData>, udp: bool) -> Option<Vec<u8>> {
    let question = p.questions.first()?;
    let mut r = Packet::new_reply(p.id());
    r.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if p.has_flags(PacketFlag::RECURSION_DESIRED) {
        r.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    r.questions.push(question.clone());
    for a in answers {
        r.answers.push(ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            TTL,
            a,
        ));
    }
    let bytes = r.build_bytes_vec_compressed().ok()?;
    // Over UDP, a reply is at most 512 bytes (or the client's EDNS size).
    let limit = p
        .opt()
        .map_or(512, |o| usize::from(o.udp_packet_size).max(512));
    if udp && bytes.len() > limit {
        r.answers.clear();
        r.set_flags(PacketFlag::TRUNCATION);
        return r.build_bytes_vec().ok();
    }
    Some(bytes)
}

/// A reply carrying only an error code, its question echoed.
fn rcode_reply(q: &[u8], code: RCODE) -> Option<Vec<u8>> {
    let p = Packet::parse(q).ok()?;
    let mut r = Packet::new_reply(p.id());
    *r.rcode_mut() = code;
    r.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if p.has_flags(PacketFlag::RECURSION_DESIRED) {
        r.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    r.questions = p.questions;
    r.build_bytes_vec().ok()
}

/// Ask the container's upstream servers in turn; the first answer that is not
/// SERVFAIL or REFUSED, verbatim (docker's `forwardExtDNS`).
fn forward(snap: &Snapshot, id: &str, q: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let ctr = snap.ctrs.get(id)?;
    if q.len() < 12 {
        return None;
    }
    for s in &ctr.servers {
        // Host-side servers are not asked for a container with no way out: only
        // `--internal` networks (docker's proxyDNS).
        if !ctr.rec.servers_in_container && !ctr.rec.external {
            continue;
        }
        let ns = if ctr.rec.servers_in_container {
            ctr.netns.as_deref()
        } else {
            None
        };
        let to = *s;
        let r = if tcp {
            exchange_tcp(ns, to, q)
        } else {
            exchange_udp(ns, to, q)
        };
        let Ok(r) = r else { continue };
        if r.len() < 12 || r[..2] != q[..2] {
            continue;
        }
        let rcode = r[3] & 0x0f;
        if rcode == 2 || rcode == 5 {
            continue;
        }
        return Some(r);
    }
    None
}

/// Run `f` on a thread inside `ns` (sockets it makes stay there), or here.
fn in_ns<T: Send>(
    ns: Option<&OwnedFd>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let Some(ns) = ns else { return f() };
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a namespace fd we hold; it moves only this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })
}

fn exchange_udp(ns: Option<&OwnedFd>, to: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = in_ns(ns, || UdpSocket::bind(any))?;
    s.connect(to)?;
    s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    s.send(q)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = s.recv(&mut buf)?;
        // Only the reply to this query (a connected socket already drops strangers).
        if n >= 2 && buf[..2] == q[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn exchange_tcp(ns: Option<&OwnedFd>, to: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = in_ns(ns, || TcpStream::connect_timeout(&to, UPSTREAM_TIMEOUT))?;
    s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let l = u16::try_from(q.len()).map_err(|_| std::io::Error::other("query too long"))?;
    s.write_all(&l.to_be_bytes())?;
    s.write_all(q)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut r)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::dns::{EpRecord, NetRecord};
    use super::*;

    fn snap() -> Snapshot {
        let mut r = Resolver {
            dir: PathBuf::new(),
            runroot: PathBuf::new(),
            shared: Arc::default(),
            bound: HashMap::new(),
            inflight: Arc::default(),
        };
        let recs = Records {
            networks: vec![
                NetRecord {
                    id: "na".into(),
                    name: "front".into(),
                    endpoints: vec![EpRecord {
                        ip: Ipv4Addr::new(10, 0, 0, 2),
                        names: vec!["web".into(), "www".into()],
                    }],
                },
                NetRecord {
                    id: "nb".into(),
                    name: "back".into(),
                    endpoints: vec![EpRecord {
                        ip: Ipv4Addr::new(10, 0, 1, 2),
                        names: vec!["db".into()],
                    }],
                },
            ],
            containers: vec![CtrRecord {
                id: "c".into(),
                networks: vec!["na".into()],
                servers: vec![],
                servers_in_container: false,
                external: true,
                ndots_set: true,
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("records.json"),
            serde_json::to_vec(&recs).unwrap(),
        )
        .unwrap();
        r.dir = dir.path().to_path_buf();
        r.runroot = dir.path().to_path_buf();
        assert!(r.reload().is_empty());
        let s = std::mem::take(&mut *r.shared.write().unwrap());
        Arc::try_unwrap(s).ok().unwrap()
    }

    fn query(name: &str, t: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(7);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(simple_dns::Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(t),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn reply(o: Outcome) -> Vec<u8> {
        match o {
            Outcome::Reply(r) => r,
            _ => panic!("no local reply"),
        }
    }

    #[test]
    fn names_aliases_and_ptr_only_on_the_containers_networks() {
        let s = snap();
        for n in ["web", "WWW.", "web.front"] {
            let r = reply(answer(&s, "c", &query(n, TYPE::A), true));
            let p = Packet::parse(&r).unwrap();
            assert_eq!(p.id(), 7);
            assert_eq!(p.answers.len(), 1, "{n}");
            assert!(matches!(&p.answers[0].rdata, RData::A(a) if a.address == 0x0a000002));
        }
        // db is on a network the container is not on: not answered here. With
        // ndots set, a single-label name is answered empty, not forwarded.
        let r = reply(answer(&s, "c", &query("db", TYPE::A), true));
        let p = Packet::parse(&r).unwrap();
        assert!(p.answers.is_empty());
        assert!(matches!(
            answer(&s, "c", &query("db.back", TYPE::A), true),
            Outcome::Forward
        ));
        let r = reply(answer(
            &s,
            "c",
            &query("2.0.0.10.in-addr.arpa", TYPE::PTR),
            true,
        ));
        let p = Packet::parse(&r).unwrap();
        assert!(matches!(&p.answers[0].rdata, RData::PTR(n) if n.0.to_string() == "web.front"));
        let r = reply(answer(&s, "c", &query("web", TYPE::AAAA), true));
        let p = Packet::parse(&r).unwrap();
        assert!(p.answers.is_empty());
        assert!(matches!(
            answer(&s, "c", &query("example.com", TYPE::A), true),
            Outcome::Forward
        ));
    }

    /// Host-side forwarding (the host's resolvers, loopback ones included): the
    /// first upstream that answers other than SERVFAIL, verbatim; never for a
    /// container whose networks are all `--internal`.
    #[test]
    fn forwards_to_the_host_side_servers_in_turn() {
        let failing = UdpSocket::bind("127.0.0.1:0").unwrap();
        let good = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (fa, ga) = (failing.local_addr().unwrap(), good.local_addr().unwrap());
        let serve = |s: UdpSocket, rcode: RCODE| {
            std::thread::spawn(move || {
                let mut b = [0u8; 512];
                while let Ok((n, from)) = s.recv_from(&mut b) {
                    let q = Packet::parse(&b[..n]).unwrap();
                    let mut r = Packet::new_reply(q.id());
                    *r.rcode_mut() = rcode;
                    r.questions = q.questions.clone();
                    if rcode == RCODE::NoError {
                        r.answers.push(ResourceRecord::new(
                            q.questions[0].qname.clone(),
                            CLASS::IN,
                            5,
                            RData::A(A {
                                address: 0xc0000201,
                            }),
                        ));
                    }
                    s.send_to(&r.build_bytes_vec().unwrap(), from).unwrap();
                }
            })
        };
        serve(failing, RCODE::ServerFailure);
        serve(good, RCODE::NoError);
        let mut s = Snapshot::default();
        let rec = CtrRecord {
            id: "c".into(),
            networks: vec![],
            servers: vec![],
            servers_in_container: false,
            external: true,
            ndots_set: false,
        };
        s.ctrs.insert(
            "c".into(),
            CtrView {
                rec: rec.clone(),
                servers: vec![fa, ga],
                netns: None,
            },
        );
        let q = query("ext.test", TYPE::A);
        let r = forward(&s, "c", &q, false).expect("an answer");
        let p = Packet::parse(&r).unwrap();
        assert_eq!(p.id(), 7);
        assert!(matches!(&p.answers[0].rdata, RData::A(a) if a.address == 0xc0000201));
        // Only --internal networks: the host's servers are not asked.
        s.ctrs.insert(
            "c".into(),
            CtrView {
                rec: CtrRecord {
                    external: false,
                    ..rec
                },
                servers: vec![ga],
                netns: None,
            },
        );
        assert!(forward(&s, "c", &q, false).is_none());
    }
}
