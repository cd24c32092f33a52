//! Name resolution between containers on user networks (docker's embedded DNS): the
//! engine side. The engine keeps `<runroot>/dns/records.json` (written atomically,
//! under the host network lock, from the database) saying which containers are on
//! which user networks under which names; one resolver process per engine root
//! (`oxcart network-dns`, [`super::resolver`]) reads it and serves 127.0.0.11:53
//! inside each of those containers' namespaces. After every change the engine asks
//! the resolver to reload over its control socket and waits for its answer, so a
//! container starts only once its resolver socket exists; when the resolver is not
//! running (first user-network container, or it was killed) the engine starts it.
//! The default `bridge` network has no name resolution (docker's), so a container
//! only on it never touches any of this.

use super::{io_err, ipam, Network, NetworkError, Networks, Result, DEFAULT_NETWORK};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The address the resolver listens on inside every container (docker's
/// `resolverIPSandbox`).
pub const RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Network-scoped aliases (`--network-alias`, `network connect --alias`), docker's
/// `EndpointsConfig[net].Aliases`: kept with the container, applied at every start.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aliases (
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id, alias)
);
";

/// What the resolver is told: every user network with its containers' names, and
/// every container that needs a resolver socket.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Records {
    pub networks: Vec<NetRecord>,
    pub containers: Vec<CtrRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetRecord {
    pub id: String,
    pub name: String,
    pub endpoints: Vec<EpRecord>,
}

/// One container's address on a network and the names it answers to there, the
/// first being the one PTR answers give (docker's DNSNames order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpRecord {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtrRecord {
    pub id: String,
    /// The user networks it is on, its `--network` first (docker answers from the
    /// first network that knows a name).
    pub networks: Vec<String>,
    /// Where names the networks do not know go: `--dns` servers, reached from the
    /// container's namespace (docker's overrides), else the host's resolvers, reached
    /// from the host's (so 127.0.0.53 works).
    pub servers: Vec<String>,
    pub servers_in_container: bool,
    /// Whether a host-side server may be asked: not when every network of the
    /// container is `--internal` (docker's `proxyDNS`).
    pub external: bool,
    /// An `ndots` option set by the user or the host: single-label names that no
    /// network knows are answered empty, not forwarded (docker's resolver).
    pub ndots_set: bool,
}

/// docker's names for a container on a user network: its name, its aliases there,
/// its short id, its `--hostname` (docker 26's `DNSNames`), without repeats.
pub fn dns_names(rec: &crate::record::Record, aliases: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    push(&rec.name);
    for a in aliases {
        push(a);
    }
    push(&rec.id[..12.min(rec.id.len())]);
    push(&rec.config.hostname);
    out
}

/// The nameservers a host `resolv.conf` names.
pub fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next().map(String::from))
                .flatten()
        })
        .collect()
}

/// Whether resolv.conf options (the user's or the host's) set `ndots`.
pub fn has_ndots(options: &[String]) -> bool {
    options.iter().any(|o| o.starts_with("ndots:"))
}

fn host_options(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.strip_prefix("options"))
        .flat_map(|r| r.split_whitespace().map(String::from))
        .collect()
}

impl Networks {
    pub(crate) fn dns_dir(&self) -> PathBuf {
        self.runroot.join("dns")
    }

    /// A container's aliases on a network.
    pub fn aliases_of(&self, ctr: &str, network_id: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT alias FROM aliases WHERE container_id = ?1 AND network_id = ?2 ORDER BY rowid",
        )?;
        let v = st
            .query_map(params![ctr, network_id], |r| r.get(0))?
            .filter_map(|r| r.ok())
            .collect();
        Ok(v)
    }

    /// `--network-alias` / `connect --alias`: user networks only (docker's error).
    pub fn add_aliases(&mut self, ctr: &str, network: &str, aliases: &[String]) -> Result<()> {
        if aliases.is_empty() {
            return Ok(());
        }
        let n = match super::network_of_mode(network) {
            Some(n) if n != DEFAULT_NETWORK => self.find(n)?,
            _ => return Err(NetworkError::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            )),
        };
        for a in aliases {
            if a.is_empty() || a.contains(char::is_whitespace) {
                return Err(NetworkError::Invalid(format!(
                    "--network-alias {a:?}: not a DNS name"
                )));
            }
            self.conn.execute(
                "INSERT OR IGNORE INTO aliases (container_id, network_id, alias) VALUES (?1, ?2, ?3)",
                params![ctr, n.id, a],
            )?;
        }
        Ok(())
    }

    /// What the resolver must know, from the database: the leases on user networks,
    /// with the names of their containers.
    pub(crate) fn dns_records(&self) -> Result<Records> {
        if !self.has_containers_table()? {
            return Ok(Records::default());
        }
        let nets: Vec<Network> = self
            .list()?
            .into_iter()
            .filter(|n| n.name != DEFAULT_NETWORK)
            .collect();
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut out = Records::default();
        let mut ctrs: Vec<(String, Vec<String>, bool)> = Vec::new();
        let mut recs = std::collections::HashMap::new();
        for n in &nets {
            let mut eps = Vec::new();
            for (c, lease) in self.containers_on(&n.id)? {
                if !recs.contains_key(&c) {
                    let rec: Option<String> = self
                        .conn
                        .query_row(
                            "SELECT record FROM containers WHERE id = ?1",
                            params![c],
                            |r| r.get(0),
                        )
                        .ok();
                    let Some(rec) =
                        rec.and_then(|j| serde_json::from_str::<crate::record::Record>(&j).ok())
                    else {
                        continue; // removed: its lease is reclaimed by the next attach
                    };
                    recs.insert(c.clone(), rec);
                }
                let Some(rec) = recs.get(&c) else { continue };
                eps.push(EpRecord {
                    ip: lease.ip,
                    names: dns_names(rec, &self.aliases_of(&c, &n.id)?),
                });
                match ctrs.iter_mut().find(|(id, _, _)| *id == c) {
                    Some((_, ns, ext)) => {
                        ns.push(n.id.clone());
                        *ext |= !n.internal;
                    }
                    None => ctrs.push((c.clone(), vec![n.id.clone()], !n.internal)),
                }
            }
            eps.sort_by_key(|e| e.ip);
            out.networks.push(NetRecord {
                id: n.id.clone(),
                name: n.name.clone(),
                endpoints: eps,
            });
        }
        out.networks.retain(|n| !n.endpoints.is_empty());
        ctrs.sort();
        for (id, networks, external) in ctrs {
            if let Some(rec) = recs.get(&id) {
                out.containers
                    .push(ctr_record(rec, networks, external, &nets, &host));
            }
        }
        Ok(out)
    }

    /// Bring the resolver in line with the database: rewrite the records, then have
    /// the running resolver reload (or start one, or let it exit when no container
    /// needs it). Takes the host lock.
    pub fn sync_dns(&self) -> Result<()> {
        let _lock = super::HostLock::take()?;
        self.sync_dns_locked()
    }

    /// [`Networks::sync_dns`] with the host lock held: records are written in the
    /// order the database changed.
    pub(crate) fn sync_dns_locked(&self) -> Result<()> {
        let dir = self.dns_dir();
        let recs = self.dns_records()?;
        let file = dir.join("records.json");
        if recs.containers.is_empty() {
            if !dir.exists() {
                return Ok(());
            }
            let _ = std::fs::remove_file(&file);
            // The resolver exits on this reload; nothing to start if none runs.
            let _ = ask_reload(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let json = serde_json::to_vec(&recs)
            .map_err(|e| NetworkError::Invalid(format!("records: {e}")))?;
        if std::fs::read(&file).ok().as_deref() != Some(&json[..]) {
            crate::etcfiles::write_atomic(&file, &json)
                .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        }
        match ask_reload(&dir) {
            Ok(Reply::Ok) => Ok(()),
            Ok(Reply::Failed(e)) => Err(NetworkError::Conflict(format!("DNS resolver: {e}"))),
            // Not running (never started, exited, or killed): start it.
            Ok(Reply::Exiting) | Err(_) => spawn_resolver(&self.runroot),
        }
    }

    /// Whether a container has an address on a user network (so its teardown changes
    /// what the resolver serves).
    pub(crate) fn on_user_network(&self, ctr: &str) -> Result<bool> {
        let leases = ipam::leases_of(&self.conn, ctr)?;
        if leases.is_empty() {
            return Ok(false);
        }
        let nets = self.list()?;
        Ok(leases.iter().any(|l| {
            nets.iter()
                .any(|n| n.id == l.network_id && n.name != DEFAULT_NETWORK)
        }))
    }
}

/// What the resolver needs of one container: its user networks (its `--network`
/// first), its upstream servers and where to ask them, whether it may go out.
fn ctr_record(
    rec: &crate::record::Record,
    mut networks: Vec<String>,
    external: bool,
    nets: &[Network],
    host: &str,
) -> CtrRecord {
    let hc = &rec.host_config;
    // Its --network first: docker answers from the first network knowing a name.
    if let Some(p) = super::network_of_mode(&hc.network_mode) {
        if let Some(i) = networks.iter().position(|nid| {
            nets.iter()
                .any(|n| n.id == *nid && (n.name == p || n.id == p))
        }) {
            let first = networks.remove(i);
            networks.insert(0, first);
        }
    }
    let options = if hc.dns_options.is_empty() {
        host_options(host)
    } else {
        hc.dns_options.clone()
    };
    let (servers, in_ctr) = if hc.dns.is_empty() {
        (nameservers(host), false)
    } else {
        (hc.dns.clone(), true)
    };
    CtrRecord {
        id: rec.id.clone(),
        networks,
        servers: servers
            .into_iter()
            // Never ourselves (docker's filterExtServers).
            .filter(|s| !(in_ctr && s == &RESOLVER_IP.to_string()))
            .collect(),
        servers_in_container: in_ctr,
        external,
        ndots_set: has_ndots(&options),
    }
}

/// The resolver's control socket and pid file in `<runroot>/dns/`.
pub const CTL: &str = "ctl.sock";
pub const PIDFILE: &str = "resolver.pid";
pub const WORKER_PIDFILE: &str = "worker.pid";

enum Reply {
    Ok,
    Exiting,
    Failed(String),
}

/// One `reload` round trip on the control socket.
fn ask_reload(dir: &Path) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(dir.join(CTL))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(b"reload\n")?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    let line = line.trim();
    match line {
        "ok" => Ok(Reply::Ok),
        "bye" => {
            wait_exit(dir);
            Ok(Reply::Exiting)
        }
        "" => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        e => Ok(Reply::Failed(e.trim_start_matches("error: ").to_string())),
    }
}

/// After `bye`: wait until the worker and then its supervisor are gone, so the
/// command that removed the last container leaves no process behind.
fn wait_exit(dir: &Path) {
    wait_pidfile(&dir.join(WORKER_PIDFILE));
    wait_pidfile(&dir.join(PIDFILE));
}

fn wait_pidfile(path: &Path) {
    let Some(pid) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<super::ProxyPid>(&s).ok())
    else {
        return;
    };
    // SAFETY: pidfd_open on a pid; the fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.pid, 0) } as i32;
    if fd < 0 {
        return;
    }
    if super::start_time(pid.pid) == Some(pid.start_time) {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 5000) };
    }
    // SAFETY: the fd pidfd_open gave us.
    unsafe { libc::close(fd) };
}

/// Start the root's resolver (`oxcart network-dns RUNROOT`) and wait for its report:
/// it binds every container's socket before saying `ready`.
fn spawn_resolver(runroot: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = crate::paths::self_exe().map_err(io_err("/proc/self/exe"))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("network-dns")
        .arg(runroot)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; the resolver outlives this command and its
    // terminal, as the port proxy does.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io_err(&exe))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    match line.trim() {
        "ready" => Ok(()),
        "" => {
            let _ = child.kill();
            let _ = child.wait();
            Err(NetworkError::Conflict(
                "the DNS resolver exited without a report".into(),
            ))
        }
        e => {
            let _ = child.kill();
            let _ = child.wait();
            Err(NetworkError::Conflict(format!(
                "DNS resolver: {}",
                e.trim_start_matches("error: ")
            )))
        }
    }
}
