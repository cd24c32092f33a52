//! Ryuk's life cycle: clients connect over TCP and send filters, one per line, each
//! answered `ACK\n`; once no client has been connected for the reconnection timeout
//! (or none came within the connection timeout, or a signal arrived with none
//! left), every container, network, volume and image matching a filter is removed —
//! in that order, since a network or volume is in use while a container holds it —
//! and the reaper exits.

use crate::config::{Config, GoDuration};
use crate::docker::{self, Client};
use crate::filters::{filter_of, parse_query, Filter};
use crate::log::{GoList, Log};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// Containers of this label are reapers (Ryuk's image carries it): never removed.
const RYUK_LABEL: &str = "org.testcontainers.ryuk";
/// bufio.Scanner's limit, Ryuk's line reader: a longer line ends the connection.
const MAX_LINE: usize = 64 * 1024;
const ACK: &[u8] = b"ACK\n";

pub enum Event {
    /// A client accepted: the main loop counts it and only then serves it, so a client
    /// arriving after the prune began is dropped without an ACK (its library retries
    /// with a new reaper).
    Connected(TcpStream, String),
    Disconnected(String),
    Signal,
}

pub struct Reaper {
    pub cfg: Config,
    pub log: Arc<Log>,
    pub client: Client,
    pub listener: TcpListener,
    filters: Arc<Mutex<BTreeSet<Filter>>>,
    shutdown: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Resources {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

/// What a look at the resources found wrong: lists that failed, and resources made
/// after the check began (someone is still setting them up: wait, do not remove).
#[derive(Default)]
struct Problems {
    errors: Vec<String>,
    changed: bool,
}

/// A listed resource: its id (a volume's name) and creation time (ns since the epoch).
struct Found {
    id: String,
    created: i128,
}

fn secs(t: i64) -> i128 {
    i128::from(t) * i128::from(GoDuration::SECOND)
}

fn push_unique(v: &mut Vec<String>, id: String) {
    if !v.contains(&id) {
        v.push(id);
    }
}

impl Reaper {
    pub fn new(cfg: Config, log: Arc<Log>, client: Client, listener: TcpListener) -> Reaper {
        Reaper {
            cfg,
            log,
            client,
            listener,
            filters: Arc::default(),
            shutdown: Arc::default(),
        }
    }

    /// Serves clients until a prune condition, prunes, and says whether all went well
    /// (the error otherwise, as Ryuk's exit status 1).
    pub fn run(self, tx: Sender<Event>, rx: Receiver<Event>) -> Result<(), String> {
        self.spawn_acceptor(tx.clone());
        let (resources, wait_err) = self.prune_wait(&tx, &rx);
        self.shut_listener();
        // Clients the loop never counted: dropped without an ACK.
        while let Ok(ev) = rx.try_recv() {
            if let Event::Connected(conn, addr) = ev {
                self.log
                    .warn("shutdown, aborting client", &[("address", &addr)]);
                drop(conn);
            }
        }
        let prune_err = self.prune(&resources);
        let errs: Vec<String> = [
            wait_err.map(|e| format!("prune wait: {e}")),
            prune_err.map(|e| format!("prune: {e}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }

    fn spawn_acceptor(&self, tx: Sender<Event>) {
        let listener = match self.listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                self.log.error("accept", &[("error", &e)]);
                return;
            }
        };
        let log = self.log.clone();
        let shutdown = self.shutdown.clone();
        std::thread::spawn(move || {
            log.info("client processing started", &[]);
            loop {
                let accepted = listener.accept();
                if shutdown.load(Ordering::SeqCst) {
                    if let Ok((conn, addr)) = accepted {
                        log.warn("shutdown, aborting client", &[("address", &addr)]);
                        drop(conn);
                    }
                    break;
                }
                match accepted {
                    Ok((conn, addr)) => {
                        if tx.send(Event::Connected(conn, addr.to_string())).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        log.error("accept", &[("error", &e)]);
                        // Ryuk retries at once; a pause keeps EMFILE from spinning.
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            }
            log.info("client processing stopped", &[]);
        });
    }

    /// No new clients: the flag for the acceptor, and the listening socket shut down,
    /// which wakes its `accept` (Linux) and refuses further connections.
    fn shut_listener(&self) {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        // SAFETY: shutdown(2) on a socket this struct owns; no memory involved.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
    }

    fn serve(&self, conn: TcpStream, addr: String, tx: Sender<Event>) {
        let log = self.log.clone();
        let filters = self.filters.clone();
        std::thread::spawn(move || {
            handle(&log, &filters, conn, &addr);
            let _ = tx.send(Event::Disconnected(addr));
        });
    }

    /// Waits for a prune condition; the resources to prune, with the error that ended
    /// the wait if one did (they are pruned all the same, best effort).
    fn prune_wait(&self, tx: &Sender<Event>, rx: &Receiver<Event>) -> (Resources, Option<String>) {
        let cfg = &self.cfg;
        let mut clients: i64 = 0;
        // Ryuk's prune-check ticker: stopped while a client is connected.
        let mut check = Some(Instant::now() + cfg.connection_timeout.std());
        let mut signalled = false;
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            let ev = match check {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(ev) => Some(ev),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => None,
                },
                None => rx.recv().ok(),
            };
            match ev {
                Some(Event::Connected(conn, addr)) => {
                    clients += 1;
                    self.log.info(
                        "client connected",
                        &[("address", &addr), ("clients", &clients)],
                    );
                    if clients == 1 {
                        check = None;
                    }
                    self.serve(conn, addr, tx.clone());
                }
                Some(Event::Disconnected(addr)) => {
                    clients -= 1;
                    self.log.info(
                        "client disconnected",
                        &[("address", &addr), ("clients", &clients)],
                    );
                    if clients == 0 {
                        // Also cuts short a shutdown timeout: nobody is left to wait for.
                        check = Some(Instant::now() + cfg.reconnection_timeout.std());
                    }
                }
                Some(Event::Signal) if !signalled => {
                    signalled = true;
                    self.log.info(
                        "signal received",
                        &[
                            ("clients", &clients),
                            ("shutdown_timeout", &cfg.shutdown_timeout),
                        ],
                    );
                    self.shut_listener();
                    shutdown_deadline = Some(Instant::now() + cfg.shutdown_timeout.std());
                    check = Some(if clients == 0 {
                        Instant::now()
                    } else {
                        Instant::now() + cfg.shutdown_timeout.std()
                    });
                }
                // A second signal changes nothing (Ryuk's context is already done).
                Some(Event::Signal) => {}
                None => match self.prune_check(clients, shutdown_deadline) {
                    Some(done) => return done,
                    None => check = Some(Instant::now() + cfg.changes_retry_interval.std()),
                },
            }
        }
    }

    /// One look at what the filters select: the resources and the error that ends the
    /// wait, or `None` to look again because some were created after the check began
    /// (until a signal's shutdown deadline has passed: then without those).
    fn prune_check(
        &self,
        clients: i64,
        shutdown_deadline: Option<Instant>,
    ) -> Option<(Resources, Option<String>)> {
        // A prune with clients connected (a shutdown timeout ran out) is worth a warning.
        let level = if clients > 0 {
            crate::log::Level::Warn
        } else {
            crate::log::Level::Info
        };
        self.log.log(level, "prune check", &[("clients", &clients)]);
        let since =
            crate::timefmt::unix_nanos(SystemTime::now()) + i128::from(self.cfg.retry_offset.0);
        let (res, p) = self.resources(since);
        let err = (!p.errors.is_empty()).then(|| p.errors.join("\n"));
        if p.changed {
            if shutdown_deadline.is_none_or(|d| Instant::now() < d) {
                self.log.warn(
                    "change detected, waiting again",
                    &[("error", &err.unwrap_or_default())],
                );
                return None;
            }
            self.log.warn(
                "shutdown timeout reached, forcing prune",
                &[("error", &err.clone().unwrap_or_default())],
            );
        }
        Some((res, err.map(|e| format!("resources: {e}"))))
    }

    /// The resources matching each filter, those created after `since` (ns since the
    /// epoch) left out and reported as changes.
    fn resources(&self, since: i128) -> (Resources, Problems) {
        let mut res = Resources::default();
        let mut p = Problems::default();
        let filters: Vec<Filter> = match self.filters.lock() {
            Ok(f) => f.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        };
        for f in &filters {
            let json = f.to_json();
            let mut take = |kind: &str,
                            found: docker::Result<Vec<Found>>,
                            into: &mut Vec<String>| match found {
                Ok(list) => {
                    for x in list {
                        self.log.debug(
                            &format!("found {kind}"),
                            &[
                                ("id", &x.id),
                                ("created", &x.created),
                                ("changed", &(x.created > since)),
                            ],
                        );
                        if x.created > since {
                            p.changed = true;
                            p.errors.push(format!(
                                "affected {kind}s: {kind} {}: changes detected",
                                x.id
                            ));
                        } else {
                            push_unique(into, x.id);
                        }
                    }
                }
                Err(e) => {
                    let msg = format!("affected {kind}s: {kind} list: {e}");
                    self.log
                        .error(&format!("affected {kind}s"), &[("error", &msg)]);
                    p.errors.push(msg);
                }
            };
            self.log.debug("listing", &[("filter", &json)]);
            take(
                "container",
                self.affected_containers(f),
                &mut res.containers,
            );
            take("network", self.affected_networks(f), &mut res.networks);
            take("volume", self.affected_volumes(f), &mut res.volumes);
            take("image", self.affected_images(f), &mut res.images);
        }
        (res, p)
    }

    /// Containers, stopped ones too, but never a reaper (Ryuk's image label).
    fn affected_containers(&self, f: &Filter) -> docker::Result<Vec<Found>> {
        let mut out = Vec::new();
        for c in self.client.containers(f)? {
            if c.labels.get(RYUK_LABEL).is_some_and(|v| v == "true") {
                self.log
                    .debug("skipping reaper container", &[("id", &c.id)]);
                continue;
            }
            self.log.debug(
                "container",
                &[
                    ("id", &c.id),
                    ("image", &c.image),
                    ("names", &GoList(&c.names)),
                    ("state", &c.state),
                ],
            );
            out.push(Found {
                id: c.id,
                created: secs(c.created),
            });
        }
        Ok(out)
    }

    fn affected_networks(&self, f: &Filter) -> docker::Result<Vec<Found>> {
        Ok(self
            .client
            .networks(f)?
            .into_iter()
            .map(|n| {
                self.log
                    .debug("network", &[("id", &n.id), ("name", &n.name)]);
                Found {
                    id: n.id,
                    created: n.created,
                }
            })
            .collect())
    }

    /// Volumes; one whose `CreatedAt` cannot be read is logged and left alone, as Ryuk
    /// does (best effort).
    fn affected_volumes(&self, f: &Filter) -> docker::Result<Vec<Found>> {
        let mut out = Vec::new();
        for v in self.client.volumes(f)? {
            match crate::timefmt::parse_rfc3339(&v.created_at) {
                Some(created) => out.push(Found {
                    id: v.name,
                    created,
                }),
                None => {
                    let e = format!("CreatedAt {:?} is not an RFC 3339 time", v.created_at);
                    self.log.error(
                        "parse volume created",
                        &[("error", &e), ("volume", &v.name)],
                    );
                }
            }
        }
        Ok(out)
    }

    fn affected_images(&self, f: &Filter) -> docker::Result<Vec<Found>> {
        Ok(self
            .client
            .images(f)?
            .into_iter()
            .map(|i| Found {
                id: i.id,
                created: secs(i.created),
            })
            .collect())
    }

    /// Containers (forced, with their anonymous volumes), then networks, volumes and
    /// images; the counts removed are logged, the failures returned.
    fn prune(&self, r: &Resources) -> Option<String> {
        let c = &self.client;
        let (nc, e1) = self.remove("container", &r.containers, |id| c.remove_container(id));
        let (nn, e2) = self.remove("network", &r.networks, |id| c.remove_network(id));
        let (nv, e3) = self.remove("volume", &r.volumes, |id| c.remove_volume(id));
        let (ni, e4) = self.remove("image", &r.images, |id| c.remove_image(id));
        self.log.info(
            "removed",
            &[
                ("containers", &nc),
                ("networks", &nn),
                ("volumes", &nv),
                ("images", &ni),
            ],
        );
        let errs: Vec<String> = [e1, e2, e3, e4].into_iter().flatten().collect();
        (!errs.is_empty()).then(|| errs.join("\n"))
    }

    /// Removes each of `ids`, up to `RYUK_REMOVE_RETRIES` rounds a second apart for the
    /// ones that failed (a network still draining its last endpoint); one already gone
    /// counts as done, not removed.
    fn remove(
        &self,
        kind: &str,
        ids: &[String],
        f: impl Fn(&str) -> docker::Result<()>,
    ) -> (usize, Option<String>) {
        self.log
            .debug("removing", &[("resource", &kind), ("count", &ids.len())]);
        if ids.is_empty() {
            return (0, None);
        }
        let mut todo: Vec<String> = ids.to_vec();
        let mut removed = 0;
        let retries = self.cfg.remove_retries;
        let mut attempt = 1;
        while attempt <= retries {
            let mut left = Vec::new();
            for id in todo {
                self.log.debug(
                    "remove",
                    &[("resource", &kind), ("id", &id), ("attempt", &attempt)],
                );
                match f(&id) {
                    Ok(()) => removed += 1,
                    Err(docker::Error::NotFound(_)) => {
                        self.log.debug(
                            "not found",
                            &[("resource", &kind), ("id", &id), ("attempt", &attempt)],
                        );
                    }
                    Err(e) => {
                        self.log.error(
                            "remove",
                            &[
                                ("resource", &kind),
                                ("id", &id),
                                ("attempt", &attempt),
                                ("error", &e),
                            ],
                        );
                        left.push(id);
                    }
                }
            }
            todo = left;
            if todo.is_empty() {
                return (removed, None);
            }
            if attempt < retries {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            attempt += 1;
        }
        (removed, Some(format!("{kind} left {} items", todo.len())))
    }
}

/// One client: each line a filter added and acknowledged, until it closes.
fn handle(log: &Log, filters: &Mutex<BTreeSet<Filter>>, conn: TcpStream, addr: &str) {
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(e) => {
            log.error("scan", &[("address", &addr), ("error", &e)]);
            return;
        }
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = Vec::new();
        match r
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                log.error("scan", &[("address", &addr), ("error", &e)]);
                return;
            }
        }
        let ended = line.ends_with(b"\n");
        if ended {
            line.pop();
        }
        if !ended && line.len() > MAX_LINE {
            let e = "bufio.Scanner: token too long";
            log.error("scan", &[("address", &addr), ("error", &e)]);
            return;
        }
        // Lines end in LF or CRLF (testcontainers-python sends CRLF).
        if line.ends_with(b"\r") {
            line.pop();
        }
        let msg = String::from_utf8_lossy(&line);
        if msg.is_empty() {
            log.warn("empty filter received", &[("address", &addr)]);
        } else {
            if let Err(e) = add_filter(log, filters, &msg) {
                log.error("add filter", &[("address", &addr), ("error", &e)]);
            }
            // Acknowledged even when refused, as Ryuk does: the client must not hang.
            if let Err(e) = out.write_all(ACK) {
                log.error("ack write", &[("address", &addr), ("error", &e)]);
            }
        }
        if !ended {
            return;
        }
    }
}

fn add_filter(log: &Log, filters: &Mutex<BTreeSet<Filter>>, msg: &str) -> Result<(), String> {
    let fields = parse_query(msg).map_err(|e| format!("parse query: {e}"))?;
    for (k, vals) in &fields {
        log.info("adding filter", &[("type", k), ("values", &GoList(vals))]);
    }
    let f = filter_of(&fields)?;
    let mut set = match filters.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    let key = f.to_json();
    if !set.insert(f) {
        log.debug("filter already exists", &[("key", &key)]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;

    #[test]
    fn a_client_gets_an_ack_per_line_and_its_filters_kept() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let filters = Arc::new(Mutex::new(BTreeSet::new()));
        let f2 = filters.clone();
        let t = std::thread::spawn(move || {
            let (c, a) = l.accept().unwrap();
            handle(&Log::silent(), &f2, c, &a.to_string());
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"label=a%3Db\r\n\nlabel=a=b\nbad=%zz\nlabel=c")
            .unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut acks = String::new();
        c.read_to_string(&mut acks).unwrap();
        t.join().unwrap();
        // Four filter lines (the empty one is only warned about), four ACKs.
        assert_eq!(acks, "ACK\nACK\nACK\nACK\n");
        let got: Vec<String> = filters
            .lock()
            .unwrap()
            .iter()
            .map(Filter::to_json)
            .collect();
        assert_eq!(
            got,
            [r#"{"label":{"a=b":true}}"#, r#"{"label":{"c":true}}"#]
        );
    }

    #[test]
    fn an_overlong_line_ends_the_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let filters = Arc::new(Mutex::new(BTreeSet::new()));
        let f2 = filters.clone();
        let t = std::thread::spawn(move || {
            let (c, a) = l.accept().unwrap();
            handle(&Log::silent(), &f2, c, &a.to_string());
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut long = b"label=".to_vec();
        long.resize(MAX_LINE + 10, b'x');
        long.push(b'\n');
        let _ = c.write_all(&long);
        t.join().unwrap();
        let mut acks = Vec::new();
        let _ = c.read_to_end(&mut acks);
        assert!(acks.is_empty());
        assert!(filters.lock().unwrap().is_empty());
    }
}
