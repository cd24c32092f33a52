//! `oxcart-test-reaper`: testcontainers' resource reaper, speaking Ryuk's protocol
//! (github.com/testcontainers/moby-ryuk) — written for oxcart's Engine API tests,
//! because Ryuk's image is on Docker Hub, out of reach of the machines that run them.
//! The tests build it statically and run it as testcontainers runs Ryuk: in a
//! container, port 8080 published, the engine's socket bind-mounted at
//! `/var/run/docker.sock`.
//!
//! Configured as Ryuk is (`RYUK_CONNECTION_TIMEOUT`, `RYUK_RECONNECTION_TIMEOUT`,
//! `RYUK_REQUEST_TIMEOUT`, `RYUK_REMOVE_RETRIES`, `RYUK_RETRY_OFFSET`,
//! `RYUK_CHANGES_RETRY_INTERVAL`, `RYUK_SHUTDOWN_TIMEOUT`, `RYUK_PORT`,
//! `RYUK_VERBOSE`; `DOCKER_HOST`, `DOCKER_API_VERSION`), logs as Ryuk does, exits 0
//! after a clean prune and 1 when anything failed.

mod config;
mod docker;
mod filters;
mod http;
mod log;
mod reaper;
mod timefmt;

use crate::log::Log;
use crate::reaper::{Event, Reaper};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::mpsc::Sender;
use std::sync::Arc;

fn main() {
    // Before any thread exists, so that every thread inherits the mask and the
    // signals wait for `sigwait`: as PID 1 of its container the reaper would
    // otherwise never see the SIGTERM of `docker stop` (the kernel drops signals
    // an init has no handler for), and Ryuk prunes on it.
    let set = block_signals();
    let (tx, rx) = std::sync::mpsc::channel();
    spawn_signal_waiter(set, tx.clone());
    let mut log = Arc::new(Log::new(false));
    let r = start(&mut log).and_then(|reaper| {
        let r = reaper.run(tx, rx).map_err(|e| format!("run: {e}"));
        log.info("done", &[]);
        r
    });
    if let Err(e) = r {
        log.error("run", &[("error", &e)]);
        std::process::exit(1);
    }
}

/// Ryuk's start-up: configuration, the engine answering a ping, the listener.
fn start(log: &mut Arc<Log>) -> Result<Reaper, String> {
    let cfg = config::Config::from_env().map_err(|e| format!("new reaper: load config: {e}"))?;
    *log = Arc::new(Log::new(cfg.verbose));
    let mut client = docker::Client::from_env(cfg.request_timeout.std())
        .map_err(|e| format!("new reaper: new client: {e}"))?;
    client
        .ping()
        .map_err(|e| format!("new reaper: ping: {e}"))?;
    log.info(
        "starting",
        &[
            ("connection_timeout", &cfg.connection_timeout),
            ("reconnection_timeout", &cfg.reconnection_timeout),
            ("request_timeout", &cfg.request_timeout),
            ("shutdown_timeout", &cfg.shutdown_timeout),
            ("remove_retries", &cfg.remove_retries),
            ("retry_offset", &cfg.retry_offset),
            ("changes_retry_interval", &cfg.changes_retry_interval),
            ("port", &cfg.port),
            ("verbose", &cfg.verbose),
            ("api_version", &client.version()),
        ],
    );
    let listener = listen(cfg.port).map_err(|e| format!("new reaper: listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Ryuk's wording, which testcontainers libraries wait for.
    log.info("Started", &[("address", &addr)]);
    Ok(Reaper::new(cfg, log.clone(), client, listener))
}

/// Every address, IPv6 and IPv4 on one socket as Go's `:PORT` does; IPv4 alone where
/// the container has no IPv6.
fn listen(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))))
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset; the calls only
    // write that local set and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn spawn_signal_waiter(set: libc::sigset_t, tx: Sender<Event>) {
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: `set` is an initialised sigset_t; sig is written by the call.
        let r = unsafe { libc::sigwait(&set, &mut sig) };
        if r == 0 && tx.send(Event::Signal).is_err() {
            return;
        }
    });
}
