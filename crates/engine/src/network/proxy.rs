//! The userland proxy for connections the host makes to its own published ports
//! (docker's `docker-proxy`). DNAT serves traffic from other hosts, but a connection
//! from 127.0.0.1 cannot be DNATed onto the bridge without `route_localnet=1` there
//! (the reply's destination, 127.0.0.1, is a martian on any non-loopback device), and
//! `route_localnet` on a bridge opens the host's localhost services to its containers
//! and neighbours (CVE-2020-8558). So, as docker does by default, a small process per
//! container with published ports listens on each host port and relays; it also holds
//! the ports from before the container starts. TCP from the host's own loopback does
//! not come through the relay where the kernel allows: the proxy has it rewritten at
//! `connect()` to the container's address (bypass.rs).

use super::bypass;
use super::ports::{Bound, Wanted};
use super::NetworkError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy process is given (as JSON, its one argument).
#[derive(Debug, Serialize, Deserialize)]
pub struct ProxySpec {
    pub ctr_ip: Ipv4Addr,
    pub ports: Vec<Wanted>,
}

/// The proxy's one line of report on stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProxyReport {
    #[serde(default)]
    pub bound: Vec<Bound>,
    #[serde(default)]
    pub error: Option<String>,
    /// Why the kernel bypass of the relay for 127.0.0.1 (bypass.rs) is off, if it is:
    /// the ports work, through the relay alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_error: Option<String>,
}

enum Listener {
    Tcp(TcpListener, SocketAddr),
    Udp(UdpSocket, SocketAddr),
}

fn bind_one(w: &Wanted, target: SocketAddr) -> Result<(Listener, u16), NetworkError> {
    let (lo, hi) = (w.host_lo, w.host_hi);
    let mut last = None;
    for p in lo..=hi {
        let addr = SocketAddr::from((w.host_ip, p));
        let r = if w.proto == "udp" {
            UdpSocket::bind(addr).and_then(|s| {
                let port = s.local_addr()?.port();
                Ok((Listener::Udp(s, target), port))
            })
        } else {
            TcpListener::bind(addr).and_then(|s| {
                let port = s.local_addr()?.port();
                Ok((Listener::Tcp(s, target), port))
            })
        };
        match r {
            Ok(x) => return Ok(x),
            Err(e) => last = Some(e),
        }
    }
    let range = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    Err(NetworkError::Conflict(format!(
        "driver failed programming external connectivity: Bind for {}:{range}/{} failed: {}",
        w.host_ip,
        w.proto,
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// Bind every port, report on `out`, then relay until killed.
pub fn run(spec: &ProxySpec, out: &mut dyn Write) -> Result<(), NetworkError> {
    let mut ls = Vec::new();
    let mut bound = Vec::new();
    for w in &spec.ports {
        let target = SocketAddr::from((spec.ctr_ip, w.ctr_port));
        match bind_one(w, target) {
            Ok((l, port)) => {
                ls.push(l);
                bound.push(Bound {
                    proto: w.proto.clone(),
                    host_ip: w.host_ip,
                    host_port: port,
                    ctr_port: w.ctr_port,
                });
            }
            Err(e) => {
                let rep = ProxyReport {
                    bound: Vec::new(),
                    error: Some(e.to_string()),
                    bypass_error: None,
                };
                let _ = writeln!(out, "{}", serde_json::to_string(&rep).unwrap_or_default());
                return Err(e);
            }
        }
    }
    // TCP from the host's own loopback goes straight to the container where the kernel
    // lets us (bypass.rs); the listeners relay the rest. Attached before the report, so
    // a connection made once `run -d` returns takes the short path. Held until exit:
    // the kernel detaches the programs when this process ends, however it ends.
    let rules: Vec<_> = bound
        .iter()
        .filter(|b| b.proto != "udp")
        .filter_map(|b| bypass::Rule::new(b.host_ip, b.host_port, spec.ctr_ip, b.ctr_port))
        .collect();
    let (_bypass, bypass_error) = if rules.is_empty() {
        (None, None)
    } else {
        match bypass::attach(&rules) {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e.to_string())),
        }
    };
    let rep = ProxyReport {
        bound,
        error: None,
        bypass_error,
    };
    let _ = writeln!(out, "{}", serde_json::to_string(&rep).unwrap_or_default());
    let _ = out.flush();
    let handles: Vec<_> = ls
        .into_iter()
        .map(|l| {
            std::thread::spawn(move || match l {
                Listener::Tcp(s, t) => tcp_loop(s, t),
                Listener::Udp(s, t) => udp_loop(s, t),
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

fn tcp_loop(l: TcpListener, target: SocketAddr) {
    for c in l.incoming().flatten() {
        std::thread::spawn(move || {
            let Ok(up) = TcpStream::connect_timeout(&target, Duration::from_secs(10)) else {
                return;
            };
            // TCP_NODELAY on both legs, as docker-proxy (Go's default for every TCP
            // conn): the relay must not add Nagle's wait to what the peers chose. A
            // server that disables Nagle and writes a reply in two parts otherwise
            // waited ~40 ms per reply in our socket for the client's delayed ACK
            // (measured); bulk throughput is unchanged (A/B, docs/benchmarks.md).
            let _ = c.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (Ok(c2), Ok(up2)) = (c.try_clone(), up.try_clone()) else {
                return;
            };
            let t = std::thread::spawn(move || pump(c2, up2));
            pump(up, c);
            let _ = t.join();
        });
    }
}

/// Copy until EOF, then pass the half-close on (a client's shutdown reaches the server).
fn pump(from: TcpStream, to: TcpStream) {
    // splice(2) through a pipe: the bytes stay in the kernel, which took the relay
    // from 0.58× to 0.70× the throughput of podman's in-kernel DNAT; the rest is the
    // second TCP connection's stack work (docs/benchmarks.md).
    // Copying through a buffer remains for a kernel that refuses (nothing moved yet).
    match splice_pump(&from, &to) {
        Ok(()) | Err(Moved) => {}
        Err(Nothing) => copy_pump(&from, &to),
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// How a splice relay ended early: before or after bytes went through.
enum SpliceEnd {
    Nothing,
    Moved,
}
use SpliceEnd::{Moved, Nothing};

fn splice_pump(from: &TcpStream, to: &TcpStream) -> Result<(), SpliceEnd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const CHUNK: usize = 1 << 20;
    let mut p = [0i32; 2];
    // SAFETY: pipe2 fills two fds, owned below.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Nothing);
    }
    // SAFETY: fresh fds from pipe2, each owned once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    grow_pipe(&w, CHUNK);
    // Not SPLICE_F_MORE: it sends every chunk with MSG_MORE, which corks the chunk's
    // last partial segment until more data comes, so a reply that ends a burst (any
    // request/response protocol) sat ~0.4 s in the proxy's socket (measured; docs/
    // benchmarks.md). splice(2) already sets MSG_MORE itself while the pipe holds
    // more, so bulk transfers lose nothing (A/B: same throughput).
    let flags = libc::SPLICE_F_MOVE;
    let mut moved = false;
    let end = |moved: bool| if moved { Moved } else { Nothing };
    loop {
        // SAFETY: splice between fds we hold, no offsets (sockets and pipes).
        let n = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                w.as_raw_fd(),
                std::ptr::null_mut(),
                CHUNK,
                flags,
            )
        };
        if n == 0 {
            return Ok(());
        }
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(end(moved));
        }
        moved = true;
        let mut left = n as usize;
        while left > 0 {
            // SAFETY: as above.
            let m = unsafe {
                libc::splice(
                    r.as_raw_fd(),
                    std::ptr::null_mut(),
                    to.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    flags,
                )
            };
            if m < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if m <= 0 {
                return Err(Moved);
            }
            left -= m as usize;
        }
    }
}

/// Give the pipe `want` bytes, or as much as /proc/sys/fs/pipe-max-size allows when
/// that is lower and we lack CAP_SYS_RESOURCE (fcntl(2) F_SETPIPE_SZ: EPERM), or keep
/// the default 64 KiB. Measured (docs/benchmarks.md): 64 KiB relays at ~0.66× of 1 MiB,
/// 512 KiB–1 MiB are the best, 2–4 MiB are worse (coarser bursts between the legs).
fn grow_pipe(w: &std::os::fd::OwnedFd, want: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a pipe we own.
    let set =
        |n: usize| unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, n as libc::c_int) };
    if set(want) >= 0 {
        return;
    }
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    if let Some(max) = max.filter(|m| *m < want) {
        set(max);
    }
}

fn copy_pump(mut from: &TcpStream, mut to: &TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

/// UDP: one upstream socket per client address, forgotten after 90 s of silence
/// (docker-proxy's timeout), replies sent back from the published port.
fn udp_loop(s: UdpSocket, target: SocketAddr) {
    let s = Arc::new(s);
    let clients: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf) else {
            continue;
        };
        let up = {
            let Ok(mut m) = clients.lock() else { return };
            match m.get(&from) {
                Some(u) => u.clone(),
                None => {
                    let Ok(u) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                        continue;
                    };
                    if u.connect(target).is_err() {
                        continue;
                    }
                    let _ = u.set_read_timeout(Some(Duration::from_secs(90)));
                    let u = Arc::new(u);
                    m.insert(from, u.clone());
                    let (s2, u2, cl) = (s.clone(), u.clone(), clients.clone());
                    std::thread::spawn(move || {
                        let mut b = vec![0u8; 65536];
                        while let Ok(k) = u2.recv(&mut b) {
                            let _ = s2.send_to(&b[..k], from);
                        }
                        if let Ok(mut m) = cl.lock() {
                            m.remove(&from);
                        }
                    });
                    u
                }
            }
        };
        let _ = up.send(&buf[..n]);
    }
}
