//! Bridge networking: a Linux bridge per network, a network namespace and a veth pair
//! per container, addresses from an IPAM in the engine's database, and egress,
//! isolation and `--internal` in our own nftables table. docs/networking.md has the
//! design and the choices (netlink crate, nft transactions, what is not done yet).
//!
//! A network's bridge is made by its first container and stays, with the network's
//! rules, until `network rm`/`prune` (docker's `docker0` does too: making and deleting
//! a bridge costs ~50 ms each, an `nft` run ~20 ms); published ports' rules go with
//! their container. Everything is recreated on demand,
//! so a reboot or a crash never leaves a half-configured network, only state the next
//! command redoes.

mod bypass;
pub mod dns;
pub mod ipam;
mod netlink;
mod netns;
mod nft;
pub mod ports;
pub mod proxy;
pub mod resolver;
mod subnets;

use crate::paths::Layout;
use ipam::{Lease, Subnet};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A bad value the user gave, named.
    #[error("{0}")]
    Invalid(String),
    /// docker: `network x not found`.
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("firewall: {0}")]
    Firewall(String),
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("network database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Another engine root's database, read for the subnets its networks hold.
    #[error("the network database of another engine root, {}: {source}", path.display())]
    OtherRoot {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = NetworkError> = std::result::Result<T, E>;

fn nl_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Netlink { what, source }
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.into();
    move |source| NetworkError::Io { path, source }
}

/// Networks a container was connected to besides its `--network` (`network
/// connect`): applied at every start, as docker keeps them in the container's config.
const CONNECTIONS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS connections (
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS requested_ips (
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
";

/// The network every container joins unless told otherwise (docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

/// A network as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub created: String,
    pub subnet: String,
    pub gateway: String,
    #[serde(default)]
    pub ip_range: Option<String>,
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The bridge's name: `ox-` and the id's first 12 digits (IFNAMSIZ is 16).
    pub bridge: String,
}

impl Network {
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet, "subnet")
    }

    fn gateway_ip(&self) -> Result<Ipv4Addr> {
        self.gateway
            .parse()
            .map_err(|_| NetworkError::Invalid(format!("network {}: bad gateway", self.name)))
    }
}

/// `network create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// A container's place on a network.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub network: Network,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    /// `--network-alias` / `connect --alias` on this network.
    pub aliases: Vec<String>,
}

/// The networks of one engine root.
pub struct Networks {
    conn: Connection,
    root: PathBuf,
    runroot: PathBuf,
    table: String,
}

impl Drop for Networks {
    fn drop(&mut self) {
        // The same database as the engine's (crate::db::tune): keep its WAL short.
        oxcart_image::db::trim_wal(&self.conn);
    }
}

/// A lock across every root's network changes: bridges, subnets on the host's routes
/// and firewall tables are the host's, not one root's.
struct HostLock {
    _lock: crate::lock::FileLock,
}

impl HostLock {
    fn take() -> Result<HostLock> {
        let dir = Path::new("/run/oxcart");
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let p = dir.join("network.lock");
        let l = crate::lock::FileLock::acquire(&p).map_err(io_err(&p))?;
        Ok(HostLock { _lock: l })
    }
}

use crate::config::fnv;

impl Networks {
    pub fn open(layout: &Layout) -> Result<Networks> {
        let conn = Connection::open(layout.db_path())?;
        conn.busy_timeout(Duration::from_secs(30))?;
        crate::db::set_wal(&conn)?;
        crate::db::tune(&conn)?;
        crate::db::retry_busy(|| {
            conn.execute_batch(ipam::SCHEMA)?;
            conn.execute_batch(ports::SCHEMA)?;
            conn.execute_batch(dns::SCHEMA)?;
            conn.execute_batch(CONNECTIONS_SCHEMA)
        })?;
        // One table per engine root, so test roots and the default one never rewrite
        // each other's rules: `oxcart` for the default runroot.
        let table = if layout.runroot == Path::new(Layout::DEFAULT_RUNROOT) {
            "oxcart".to_string()
        } else {
            format!(
                "oxcart_{:08x}",
                fnv(layout.runroot.as_os_str().as_encoded_bytes())
            )
        };
        let nets = Networks {
            conn,
            root: layout.root.clone(),
            runroot: layout.runroot.clone(),
            table,
        };
        // Best effort here (any command opens this, `ps` too): bringing a user network
        // up lists the root again, and fails if it cannot.
        let _ = nets.register_after_reboot();
        Ok(nets)
    }

    /// This root's database by its absolute path: how other roots find it.
    fn db_id(&self) -> PathBuf {
        std::fs::canonicalize(&self.root)
            .unwrap_or_else(|_| self.root.clone())
            .join("containers.db")
    }

    /// A root with user networks that is not listed for the others (a reboot emptied
    /// `/run`, or it predates the list) lists itself at its first command.
    fn register_after_reboot(&self) -> Result<()> {
        let user: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM networks WHERE name != ?1",
            params![DEFAULT_NETWORK],
            |r| r.get(0),
        )?;
        if user == 0 || subnets::registered(&self.db_id()) {
            return Ok(());
        }
        let _lock = HostLock::take()?;
        subnets::register(&self.db_id())
    }

    /// The nftables table this root's rules live in.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn list(&self) -> Result<Vec<Network>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT record FROM networks ORDER BY name")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let j = r?;
            out.push(serde_json::from_str(&j).map_err(|e| {
                NetworkError::Invalid(format!("network record does not parse: {e}"))
            })?);
        }
        Ok(out)
    }

    /// A network by name, id, or unique id prefix (docker's lookup order).
    pub fn find(&self, key: &str) -> Result<Network> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        if key == DEFAULT_NETWORK {
            return Err(NetworkError::NotFound(key.into()));
        }
        let m: Vec<&Network> = all.iter().filter(|n| n.id.starts_with(key)).collect();
        match m.as_slice() {
            [n] => Ok((*n).clone()),
            [] => Err(NetworkError::NotFound(key.into())),
            _ => Err(NetworkError::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                m.len()
            ))),
        }
    }

    /// The default network, recorded on first use.
    pub fn default_network(&mut self) -> Result<Network> {
        match self.find(DEFAULT_NETWORK) {
            Ok(n) => Ok(n),
            Err(NetworkError::NotFound(_)) => {
                let r = self.create_locked(
                    CreateNetwork {
                        name: DEFAULT_NETWORK.into(),
                        ..Default::default()
                    },
                    true,
                );
                match r {
                    // A concurrent `run` recorded it first.
                    Err(NetworkError::Conflict(_)) => self.find(DEFAULT_NETWORK),
                    r => r,
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `network create`.
    pub fn create(&mut self, req: CreateNetwork) -> Result<Network> {
        if req.name == DEFAULT_NETWORK || req.name == "host" || req.name == "none" {
            return Err(NetworkError::Conflict(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        self.create_locked(req, false)
    }

    fn create_locked(&mut self, req: CreateNetwork, default: bool) -> Result<Network> {
        if let Some(d) = req.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(NetworkError::Unsupported(format!(
                "-d/--driver {d}: only the bridge driver is supported"
            )));
        }
        if !default {
            // docker's network name rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
            let ok = req
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && req
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(NetworkError::Invalid(format!(
                    "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                    req.name
                )));
            }
        }
        let _lock = HostLock::take()?;
        // Under the host lock from the choice to the record: the record is what every
        // other root reads (subnets.rs), so no two roots, and no two commands of one,
        // ever choose the same subnet.
        let taken = subnets::Taken::gather(&self.db_id(), &self.list()?, None)?;
        let subnet = match &req.subnet {
            Some(s) => {
                let s = Subnet::parse(s, "--subnet")?;
                if let Some(what) = taken.conflict(&s) {
                    return Err(NetworkError::Conflict(format!(
                        "--subnet {s}: overlaps {what}"
                    )));
                }
                s
            }
            None => taken.pick()?,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    NetworkError::Invalid(format!("--gateway {g}: not an IPv4 address"))
                })?;
                if !subnet.contains(ip) || ip == subnet.addr || ip == subnet.broadcast() {
                    return Err(NetworkError::Invalid(format!(
                        "--gateway {g}: not a host address of --subnet {subnet}"
                    )));
                }
                ip
            }
            None => subnet.first(),
        };
        if let Some(r) = &req.ip_range {
            let range = Subnet::parse(r, "--ip-range")?;
            if !(subnet.contains(range.addr) && range.prefix >= subnet.prefix) {
                return Err(NetworkError::Invalid(format!(
                    "--ip-range {r}: not within --subnet {subnet}"
                )));
            }
        }
        if req.ip_range.is_some() && req.subnet.is_none() {
            return Err(NetworkError::Invalid(
                "--ip-range needs --subnet (docker: cannot use ip-range without subnet)".into(),
            ));
        }
        let id = crate::names::new_id().map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let n = Network {
            bridge: format!("ox-{}", &id[..12]),
            id,
            name: req.name,
            created: crate::time::now(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            ip_range: req.ip_range,
            internal: req.internal,
            labels: req.labels,
        };
        let json = serde_json::to_string(&n)
            .map_err(|e| NetworkError::Invalid(format!("network record: {e}")))?;
        if !default {
            // Before the record: a root killed in between is listed with nothing more.
            subnets::register(&self.db_id())?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT id FROM networks WHERE name = ?1",
                params![n.name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                n.name
            )));
        }
        tx.execute(
            "INSERT INTO networks (id, name, record) VALUES (?1, ?2, ?3)",
            params![n.id, n.name, json],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn save(&self, n: &Network) -> Result<()> {
        let json = serde_json::to_string(n)
            .map_err(|e| NetworkError::Invalid(format!("network record: {e}")))?;
        self.conn.execute(
            "UPDATE networks SET record = ?2 WHERE id = ?1",
            params![n.id, json],
        )?;
        Ok(())
    }

    /// Ids of the containers with an address on a network.
    pub fn containers_on(&self, network_id: &str) -> Result<Vec<(String, Lease)>> {
        let mut st = self
            .conn
            .prepare("SELECT container_id, ip, mac FROM leases WHERE network_id = ?1")?;
        let rows = st.query_map(params![network_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (c, ip, mac) = r?;
            if let Ok(ip) = ip.parse() {
                out.push((
                    c,
                    Lease {
                        network_id: network_id.to_string(),
                        ip,
                        mac,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// `network rm`: refused while a container is on it (docker: "has active endpoints").
    pub fn remove(&mut self, key: &str) -> Result<Network> {
        let n = self.find(key)?;
        if n.name == DEFAULT_NETWORK {
            return Err(NetworkError::Conflict(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        let _lock = HostLock::take()?;
        if ipam::users(&self.conn, &n.id)? > 0 {
            return Err(NetworkError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.conn
            .execute("DELETE FROM networks WHERE id = ?1", params![n.id])?;
        self.bridge_down(&n.bridge)?;
        Ok(n)
    }

    /// A container's endpoints (its leases with their networks).
    pub fn endpoints(&self, ctr: &str) -> Result<Vec<Endpoint>> {
        let leases = ipam::leases_of(&self.conn, ctr)?;
        if leases.is_empty() {
            // A listing asks this of every container; most have no lease.
            return Ok(Vec::new());
        }
        let nets = self.list()?;
        let mut out = Vec::new();
        for l in leases {
            if let Some(n) = nets.iter().find(|n| n.id == l.network_id) {
                out.push(Endpoint {
                    prefix: n.subnet()?.prefix,
                    aliases: self.aliases_of(ctr, &n.id)?,
                    network: n.clone(),
                    ip: l.ip,
                    mac: l.mac,
                });
            }
        }
        Ok(out)
    }

    /// Where a container's network namespace is bind-mounted.
    pub fn netns_path(&self, ctr: &str) -> PathBuf {
        self.runroot.join("netns").join(ctr)
    }

    /// Put a container on a network: an address, the bridge (brought up if it is the
    /// first container), the rules, a namespace with its veth. Returns the namespace's
    /// path for the OCI spec. Undone by [`Networks::detach`], which is also what
    /// repairs a `kill -9` in the middle of this.
    pub fn attach(
        &mut self,
        ctr: &str,
        network: &str,
        mac: Option<&str>,
        publish: Vec<ports::Wanted>,
    ) -> Result<Endpoint> {
        let mac = mac
            .filter(|m| !m.is_empty())
            .map(ipam::parse_mac)
            .transpose()?;
        let n = if network == DEFAULT_NETWORK {
            self.default_network()?
        } else {
            self.find(network)?
        };
        let _lock = HostLock::take()?;
        // As recorded now: a concurrent run of this root may have moved the default
        // network to another subnet while this one waited for the lock.
        let mut n = self.find(&n.id)?;
        self.reclaim_stale()?;
        let bridge_up = netlink::index_of(&n.bridge).is_some();
        if !bridge_up && ipam::users(&self.conn, &n.id)? == 0 {
            n = self.check_subnet(n)?;
        }
        let (subnet, lease) = self.lease(ctr, &n, mac)?;
        let r = self.plumb(ctr, &n, &lease).and_then(|()| {
            if publish.is_empty() {
                return Ok(());
            }
            let bound = self.spawn_proxy(ctr, lease.ip, publish)?;
            ports::record(&self.conn, ctr, &bound)?;
            self.sync_firewall()
        });
        if let Err(e) = r {
            let _ = self.teardown_locked(ctr);
            return Err(e);
        }
        Ok(Endpoint {
            network: n,
            ip: lease.ip,
            prefix: subnet.prefix,
            mac: lease.mac,
            aliases: Vec::new(),
        })
    }

    /// Under the host lock, leases nobody can be using: of containers whose record is
    /// gone (an `rm` killed half-way), or whose namespace file is gone (a reboot
    /// emptied `/run`, or an attach was killed before making it — attach makes it
    /// under this same lock, so none is in progress).
    fn reclaim_stale(&mut self) -> Result<()> {
        let mut stale = ipam::reclaim_orphans(&self.conn)?;
        if !stale.is_empty() || self.has_containers_table()? {
            self.conn.execute_batch(
                "DELETE FROM connections WHERE container_id NOT IN (SELECT id FROM containers);
                 DELETE FROM requested_ips WHERE container_id NOT IN (SELECT id FROM containers);
                 DELETE FROM aliases WHERE container_id NOT IN (SELECT id FROM containers);",
            )?;
        }
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT container_id FROM leases")?;
        let ids: Vec<String> = st
            .query_map([], |r| r.get(0))?
            .filter_map(|r| r.ok())
            .collect();
        drop(st);
        stale.extend(ids.into_iter().filter(|c| !self.netns_path(c).exists()));
        stale.sort();
        stale.dedup();
        for c in stale {
            self.teardown_locked(&c)?;
        }
        Ok(())
    }

    /// Before a network's bridge comes up (under the host lock): the default network
    /// moves to a free subnet if its own now overlaps a host route or another root's
    /// network, as docker picks `docker0`'s at start; a user network whose subnet
    /// overlaps a host route is an error naming it.
    fn check_subnet(&self, mut n: Network) -> Result<Network> {
        let s = n.subnet()?;
        if n.name != DEFAULT_NETWORK {
            subnets::register(&self.db_id())?;
            // Its subnet was free of every root's networks when it was created; only
            // something outside them (an interface added since, a root that was not
            // listed) can be in its way now, and only as a route. The other roots are
            // read only to name whose bridge that is.
            if !subnets::host_routes().iter().any(|(r, _)| r.overlaps(&s)) {
                return Ok(n);
            }
            let taken = subnets::Taken::gather(&self.db_id(), &[], None)?;
            let what = taken
                .route_conflict(&s)
                .unwrap_or_else(|| "a host route".into());
            return Err(NetworkError::Conflict(format!(
                "network {}: its subnet {s} overlaps {what}",
                n.name
            )));
        }
        let taken = subnets::Taken::gather(&self.db_id(), &self.list()?, Some(&n.id))?;
        if taken.conflict(&s).is_none() {
            return Ok(n);
        }
        let s = taken.pick()?;
        n.subnet = s.to_string();
        n.gateway = s.first().to_string();
        self.save(&n)?;
        Ok(n)
    }

    /// The network's bridge, made (down → address → up) if it does not exist.
    fn ensure_bridge(&self, nl: &mut netlink::Netlink, n: &Network) -> Result<u32> {
        let subnet = n.subnet()?;
        let gw = n.gateway_ip()?;
        Ok(match netlink::index_of(&n.bridge) {
            Some(i) => i,
            None => {
                nl.add_bridge(&n.bridge)
                    .map_err(nl_err(format!("creating bridge {}", n.bridge)))?;
                let i = netlink::index_of(&n.bridge).ok_or_else(|| {
                    nl_err(format!("bridge {}", n.bridge))(std::io::Error::from_raw_os_error(
                        libc::ENODEV,
                    ))
                })?;
                nl.add_addr(i, gw, subnet.prefix)
                    .map_err(nl_err(format!("address {gw} on {}", n.bridge)))?;
                nl.set_up(i, None)
                    .map_err(nl_err(format!("setting {} up", n.bridge)))?;
                i
            }
        })
    }

    fn plumb(&self, ctr: &str, n: &Network, lease: &Lease) -> Result<()> {
        let subnet = n.subnet()?;
        let gw = n.gateway_ip()?;
        let mut nl = netlink::Netlink::open().map_err(nl_err("netlink"))?;
        let br = self.ensure_bridge(&mut nl, n)?;
        self.sync_firewall()?;
        let dir = self.runroot.join("netns");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let host_veth = host_veth(ctr);
        if let Some(i) = netlink::index_of(&host_veth) {
            // A previous run's, its namespace still being torn down by the kernel.
            match nl.del_link(i) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => return Err(nl_err(format!("deleting {host_veth}"))(e)),
            }
        }
        let mac = ipam::parse_mac(&lease.mac)?;
        netns::create(
            &self.netns_path(ctr),
            &netns::CtrSide {
                host_veth: &host_veth,
                mac,
                ip: lease.ip,
                prefix: subnet.prefix,
                gateway: gw,
            },
        )
        .map_err(nl_err(format!(
            "container network namespace for {}",
            &ctr[..12.min(ctr.len())]
        )))?;
        let v = netlink::index_of(&host_veth).ok_or_else(|| {
            nl_err(format!("veth {host_veth}"))(std::io::Error::from_raw_os_error(libc::ENODEV))
        })?;
        nl.set_up(v, Some(br))
            .map_err(nl_err(format!("attaching {host_veth} to {}", n.bridge)))
    }

    /// Take a container off its networks: namespace, veth, leases; a bridge and its
    /// rules go with the last container. Idempotent: every step tolerates what is
    /// already gone, so it also repairs an attach or detach killed half-way.
    pub fn detach(&mut self, ctr: &str) -> Result<()> {
        let _lock = HostLock::take()?;
        self.teardown_locked(ctr)
    }

    fn teardown_locked(&mut self, ctr: &str) -> Result<()> {
        self.kill_proxy(ctr);
        ports::forget(&self.conn, ctr)?;
        let named = self.on_user_network(ctr)?;
        // Unmounting the namespace file ends the namespace (its processes are gone by
        // now); the kernel then deletes its veth pair in the background. Deleting the
        // veth ourselves would cost ~30 ms of RCU grace period on every `rm`.
        netns::remove(&self.netns_path(ctr));
        ipam::release(&self.conn, ctr)?;
        if named {
            // Its names go, and the resolver closes its sockets there (they would
            // keep the namespace, and so the veth, alive). Best effort: a resolver
            // that cannot be reached is repaired by the next change.
            let _ = self.sync_dns_locked();
        }
        self.sync_firewall()
    }

    fn bridge_down(&self, bridge: &str) -> Result<()> {
        if let Some(i) = netlink::index_of(bridge) {
            let mut nl = netlink::Netlink::open().map_err(nl_err("netlink"))?;
            match nl.del_link(i) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => return Err(nl_err(format!("deleting bridge {bridge}"))(e)),
            }
        }
        Ok(())
    }

    /// Rebuild this root's table from the networks that have containers.
    fn sync_firewall(&self) -> Result<()> {
        let mut active = Vec::new();
        for n in self.list()? {
            let on = self.containers_on(&n.id)?;
            // A network's own rules (egress, isolation, --internal) live as long as
            // its bridge, as docker's do (its bridge stays until `network rm`/`prune`):
            // a `run --rm` on a network in use then changes no rule at all. Published
            // ports are per container and go with it.
            if on.is_empty() && netlink::index_of(&n.bridge).is_none() {
                continue;
            }
            let mut published = Vec::new();
            for (c, l) in &on {
                for b in ports::of(&self.conn, c)? {
                    published.push((b, l.ip));
                }
            }
            active.push(nft::Active {
                bridge: n.bridge.clone(),
                subnet: n.subnet.clone(),
                internal: n.internal,
                published,
            });
        }
        let text = nft::render(&self.table, &active);
        // Unchanged since our last apply (another container joined a network that
        // already had rules): nothing to do. The record lives in /run, which a reboot
        // empties together with the kernel's tables.
        let applied = self.runroot.join("nft.applied");
        if std::fs::read_to_string(&applied).is_ok_and(|t| t == text) {
            return Ok(());
        }
        let _ = std::fs::remove_file(&applied);
        nft::apply(&text)?;
        let _ = crate::etcfiles::write_atomic(&applied, text.as_bytes());
        Ok(())
    }

    /// `network rm`/`prune`: the bridges of networks without containers go (a
    /// bridge otherwise stays while its network exists, as docker's `docker0`: making
    /// and deleting one costs ~50 ms each); with no container on any network of this
    /// root, its table goes too.
    pub fn release_idle(&mut self) -> Result<()> {
        let _lock = HostLock::take()?;
        for n in self.list()? {
            if ipam::users(&self.conn, &n.id)? == 0 {
                self.bridge_down(&n.bridge)?;
            }
        }
        // Reapplied unconditionally: this is also how a table someone deleted comes back.
        let _ = std::fs::remove_file(self.runroot.join("nft.applied"));
        let n: u32 = self
            .conn
            .query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))?;
        if n > 0 {
            return self.sync_firewall();
        }
        nft::apply(&nft::delete(&self.table))
    }

    /// docker's `network inspect` JSON; `containers` maps ids to names.
    pub fn inspect_json(
        &self,
        n: &Network,
        names: &dyn Fn(&str) -> Option<String>,
    ) -> Result<serde_json::Value> {
        let mut ctrs = serde_json::Map::new();
        for (id, l) in self.containers_on(&n.id)? {
            let prefix = n.subnet()?.prefix;
            ctrs.insert(
                id.clone(),
                serde_json::json!({
                    "Name": names(&id).unwrap_or_default(),
                    "EndpointID": format!("{:016x}", fnv(id.as_bytes())),
                    "MacAddress": l.mac,
                    "IPv4Address": format!("{}/{prefix}", l.ip),
                    "IPv6Address": "",
                }),
            );
        }
        let mut cfg = serde_json::json!({"Subnet": n.subnet, "Gateway": n.gateway});
        if let Some(r) = &n.ip_range {
            cfg["IPRange"] = r.clone().into();
        }
        let mut opts = serde_json::Map::new();
        opts.insert(
            "com.docker.network.bridge.name".into(),
            n.bridge.clone().into(),
        );
        Ok(serde_json::json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [cfg]},
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": ctrs,
            "Options": opts,
            "Labels": n.labels,
        }))
    }
}

/// The host end of a container's veth: `vx` and the id's first 13 digits.
pub fn host_veth(ctr: &str) -> String {
    format!("vx{}", &ctr[..13.min(ctr.len())])
}

impl Networks {
    /// Whether a container has anything of ours: a lease, a namespace file, a veth.
    fn holds_anything(&self, ctr: &str) -> Result<bool> {
        Ok(!ipam::leases_of(&self.conn, ctr)?.is_empty()
            || self.netns_path(ctr).exists()
            || netlink::index_of(&host_veth(ctr)).is_some()
            || self.proxy_file(ctr).exists())
    }
}

impl From<NetworkError> for crate::error::EngineError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Unsupported(m) => crate::error::EngineError::Unsupported(m),
            e => crate::error::EngineError::Invalid(e.to_string()),
        }
    }
}

/// The network a `--network` value names, if it is a bridge network (`None` for
/// `none`, `host` and `container:<id>`).
pub fn network_of_mode(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" | "bridge" => Some(DEFAULT_NETWORK),
        "none" | "host" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

/// `create`'s check: a named network must exist (docker: `network x not found`).
pub fn validate(layout: &Layout, h: &crate::types::HostConfig) -> crate::error::Result<()> {
    if !h.port_bindings.is_empty() || h.publish_all_ports {
        let mode = h.network_mode.as_str();
        if network_of_mode(mode).is_none() {
            return Err(crate::error::EngineError::Invalid(format!(
                "conflicting options: port publishing and the container type network mode ({mode}): -p/-P need a bridge network"
            )));
        }
        ports::wanted(&crate::types::Config::default(), h)?;
    }
    if let Some(n) = network_of_mode(&h.network_mode).filter(|n| *n != DEFAULT_NETWORK) {
        Networks::open(layout)?.find(n)?;
    }
    Ok(())
}

/// `start`'s call: put a container on its bridge network. The namespace path for the
/// OCI spec and the endpoint, or `None` when the container is on no bridge network.
/// docker's daemon and netavark switch on IPv4 forwarding when they bring up a
/// bridge network with egress: without it neither the masquerade nor ports published
/// to other hosts work, and the containers would silently lack the network docker
/// gives them. An `--internal` network needs none and leaves the setting alone.
/// The one host setting the engine changes (docs/networking.md, "Host settings").
fn ensure_ip_forward() -> Result<()> {
    const P: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(P).is_ok_and(|s| s.trim() == "1") {
        return Ok(());
    }
    std::fs::write(P, "1").map_err(|source| NetworkError::Io {
        path: PathBuf::from(P),
        source,
    })
}

pub fn setup(
    layout: &Layout,
    rec: &crate::record::Record,
) -> crate::error::Result<Option<(PathBuf, Endpoint, bool)>> {
    let Some(net) = network_of_mode(&rec.host_config.network_mode) else {
        return Ok(None);
    };
    let publish = ports::wanted(&rec.config, &rec.host_config)?;
    let mut nets = Networks::open(layout)?;
    let ep = nets.attach(&rec.id, net, Some(&rec.config.mac_address), publish)?;
    let mut named = ep.network.name != DEFAULT_NETWORK;
    for extra in nets.connections_of(&rec.id)? {
        if extra == ep.network.id {
            continue;
        }
        match nets.plug(&rec.id, &extra) {
            Ok(e) => named |= e.network.name != DEFAULT_NETWORK,
            Err(e) => {
                let _ = nets.detach(&rec.id);
                return Err(e.into());
            }
        }
    }
    // On a user network: its names are served, and it asks 127.0.0.11 (its resolver
    // socket exists before it starts). The default bridge needs none of this.
    if named {
        if let Err(e) = nets.sync_dns() {
            let _ = nets.detach(&rec.id);
            return Err(e.into());
        }
    }
    Ok(Some((nets.netns_path(&rec.id), ep, named)))
}

/// Release whatever of a container's networking is left (cleanup, `rm`, a new start
/// after a crash). Cheap when there is nothing: no lock, no firewall change.
pub fn release(layout: &Layout, id: &str) -> crate::error::Result<Vec<Network>> {
    let mut nets = Networks::open(layout)?;
    if !nets.holds_anything(id)? {
        return Ok(Vec::new());
    }
    // What is detached, for the `network disconnect` events of cleanup and rm.
    let gone = nets
        .endpoints(id)
        .map(|eps| eps.into_iter().map(|ep| ep.network).collect())
        .unwrap_or_default();
    nets.detach(id)?;
    Ok(gone)
}

/// [`release`] for a container whose network mode is `mode`: `none`, `host` and
/// `container:<id>` can never hold a lease, a namespace of ours or a port proxy
/// (`connect` refuses them, and a start makes none), so their database is not even
/// opened — a `run --network none` would open it twice for nothing.
pub fn release_for_mode(
    layout: &Layout,
    id: &str,
    mode: &str,
) -> crate::error::Result<Vec<Network>> {
    if network_of_mode(mode).is_none() {
        return Ok(Vec::new());
    }
    release(layout, id)
}

/// The container's endpoints for `inspect`'s `NetworkSettings` (empty if none).
pub fn endpoints_of(layout: &Layout, id: &str) -> Vec<Endpoint> {
    Networks::open(layout)
        .and_then(|n| n.endpoints(id))
        .unwrap_or_default()
}

impl Networks {
    /// A container's published ports, from an open handle (a listing of many
    /// containers opens the database once).
    pub fn ports(&self, id: &str) -> Result<Vec<ports::Bound>> {
        ports::of(&self.conn, id)
    }

    /// Hold one read transaction until the guard drops: a listing's many queries
    /// see one snapshot and take SQLite's shared lock once instead of per query.
    pub fn read_snapshot(&self) -> Result<ReadSnapshot<'_>> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        Ok(ReadSnapshot { conn: &self.conn })
    }
}

/// An open read transaction ([`Networks::read_snapshot`]); ended on drop.
pub struct ReadSnapshot<'a> {
    conn: &'a Connection,
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}

/// A container's published ports (`oxcart port`, `inspect`), empty if none.
pub fn ports_of(layout: &Layout, id: &str) -> Vec<ports::Bound> {
    Networks::open(layout)
        .and_then(|n| ports::of(&n.conn, id))
        .unwrap_or_default()
}

/// A process's start time (field 22 of `/proc/PID/stat`), so a reused pid is never
/// mistaken for our proxy.
fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ProxyPid {
    pid: i32,
    start_time: u64,
    /// Why the kernel bypass of the relay is off for this proxy (bypass.rs), if it is:
    /// the ports work through the relay alone, slower. Only here to be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bypass_error: Option<String>,
}

/// The proxy process's entry point (`oxcart network-proxy SPEC PIDFILE`): record
/// itself first (so a teardown finds it even if the command that spawned it is
/// killed now), bind, report one line on stdout, relay until killed.
pub fn proxy_main(spec: &str, pidfile: &Path) -> Result<()> {
    let pid = std::process::id() as i32;
    let me = ProxyPid {
        pid,
        start_time: start_time(pid).unwrap_or(0),
        bypass_error: None,
    };
    let json = serde_json::to_vec(&me).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    crate::etcfiles::write_atomic(pidfile, &json)
        .map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let spec: proxy::ProxySpec = serde_json::from_str(spec)
        .map_err(|e| NetworkError::Invalid(format!("network-proxy: bad spec: {e}")))?;
    proxy::run(&spec, &mut std::io::stdout())
}

impl Networks {
    fn proxy_file(&self, ctr: &str) -> PathBuf {
        self.runroot.join("netns").join(format!("{ctr}.proxy"))
    }

    /// Start the container's proxy (this executable's `network-proxy` verb) and wait
    /// for its report: the ports it holds, or why one could not be bound.
    fn spawn_proxy(
        &self,
        ctr: &str,
        ip: Ipv4Addr,
        publish: Vec<ports::Wanted>,
    ) -> Result<Vec<ports::Bound>> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let exe = crate::paths::self_exe().map_err(io_err("/proc/self/exe"))?;
        let spec = serde_json::to_string(&proxy::ProxySpec {
            ctr_ip: ip,
            ports: publish,
        })
        .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("network-proxy")
            .arg(spec)
            .arg(self.proxy_file(ctr))
            // Not the caller's directory: a long-lived process must not pin its mount.
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe; the proxy leaves our session so a
        // terminal's hangup does not end it with the command that started it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(io_err(&exe))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let rep: proxy::ProxyReport =
            serde_json::from_str(line.trim()).unwrap_or(proxy::ProxyReport {
                bound: Vec::new(),
                error: Some("the port proxy exited without a report".into()),
                bypass_error: None,
            });
        if let Some(e) = rep.error {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NetworkError::Conflict(e));
        }
        if let Some(why) = rep.bypass_error {
            self.note_bypass_off(ctr, why);
        }
        Ok(rep.bound)
    }

    /// Keep in the proxy's file why its kernel bypass is off (the proxy has written
    /// the file and gone quiet by the time its report arrives).
    fn note_bypass_off(&self, ctr: &str, why: String) {
        let f = self.proxy_file(ctr);
        let Some(mut p) = std::fs::read(&f)
            .ok()
            .and_then(|b| serde_json::from_slice::<ProxyPid>(&b).ok())
        else {
            return;
        };
        p.bypass_error = Some(why);
        if let Ok(json) = serde_json::to_vec(&p) {
            let _ = crate::etcfiles::write_atomic(&f, &json);
        }
    }

    /// Kill the container's proxy if it is still the process its file names.
    fn kill_proxy(&self, ctr: &str) {
        let f = self.proxy_file(ctr);
        if let Ok(b) = std::fs::read(&f) {
            if let Ok(p) = serde_json::from_slice::<ProxyPid>(&b) {
                if p.pid > 0 && start_time(p.pid) == Some(p.start_time) {
                    // SAFETY: a signal to the pid we started, checked by start time.
                    unsafe { libc::kill(p.pid, libc::SIGKILL) };
                }
            }
        }
        let _ = std::fs::remove_file(&f);
    }
}

/// The host end of a container's veth on a network it was connected to later.
fn conn_veth(ctr: &str, network_id: &str) -> String {
    format!(
        "vy{}{:04x}",
        &ctr[..9.min(ctr.len())],
        fnv(network_id.as_bytes()) & 0xffff
    )
}

impl Networks {
    fn has_containers_table(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='containers'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Ids of the networks a container was `connect`ed to.
    pub fn connections_of(&self, ctr: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT network_id FROM connections WHERE container_id = ?1")?;
        let ids = st
            .query_map(params![ctr], |r| r.get(0))?
            .filter_map(|r| r.ok())
            .collect();
        Ok(ids)
    }

    fn is_primary(n: &Network, mode: &str) -> bool {
        network_of_mode(mode).is_some_and(|m| m == n.name || m == n.id)
    }

    /// `network connect NET CTR`: recorded, and applied now if the container runs
    /// (its namespace exists), else at its next start.
    pub fn connect(
        &mut self,
        ctr: &str,
        mode: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<Network> {
        if network_of_mode(mode).is_none() {
            return Err(NetworkError::Invalid(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (--network {mode})"
            )));
        }
        let n = if network == DEFAULT_NETWORK {
            self.default_network()?
        } else {
            self.find(network)?
        };
        let on: Vec<String> = ipam::leases_of(&self.conn, ctr)?
            .into_iter()
            .map(|l| l.network_id)
            .collect();
        if Self::is_primary(&n, mode)
            || on.contains(&n.id)
            || self.connections_of(ctr)?.contains(&n.id)
        {
            return Err(NetworkError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                &ctr[..12.min(ctr.len())],
                n.name
            )));
        }
        self.add_aliases(ctr, &n.name, aliases)?;
        self.conn.execute(
            "INSERT INTO connections (container_id, network_id) VALUES (?1, ?2)",
            params![ctr, n.id],
        )?;
        if self.netns_path(ctr).exists() {
            let r = self.plug(ctr, &n.id).and_then(|_| self.sync_dns());
            if let Err(e) = r {
                self.conn.execute(
                    "DELETE FROM connections WHERE container_id = ?1 AND network_id = ?2",
                    params![ctr, n.id],
                )?;
                let _ = self.forget_endpoint(ctr, &n.id);
                return Err(e);
            }
        }
        Ok(n)
    }

    /// `network disconnect NET CTR`: forgotten, and unplugged now if it runs.
    pub fn disconnect(&mut self, ctr: &str, mode: &str, network: &str) -> Result<Network> {
        let n = self.find(network)?;
        if Self::is_primary(&n, mode) {
            return Err(NetworkError::Unsupported(format!(
                "network disconnect: {} is the container's --network; disconnecting it is not supported yet",
                n.name
            )));
        }
        let known = self.conn.execute(
            "DELETE FROM connections WHERE container_id = ?1 AND network_id = ?2",
            params![ctr, n.id],
        )?;
        let _lock = HostLock::take()?;
        let leased = self.conn.execute(
            "DELETE FROM leases WHERE container_id = ?1 AND network_id = ?2",
            params![ctr, n.id],
        )?;
        if known == 0 && leased == 0 {
            return Err(NetworkError::Invalid(format!(
                "container {} is not connected to network {}",
                &ctr[..12.min(ctr.len())],
                n.name
            )));
        }
        self.conn.execute(
            "DELETE FROM aliases WHERE container_id = ?1 AND network_id = ?2",
            params![ctr, n.id],
        )?;
        self.unplug_veth(ctr, &n.id)?;
        if n.name != DEFAULT_NETWORK {
            self.sync_dns_locked()?;
        }
        self.sync_firewall()?;
        Ok(n)
    }

    /// Undo a failed `connect` of a running container: its lease, aliases and veth.
    fn forget_endpoint(&mut self, ctr: &str, network_id: &str) -> Result<()> {
        let _lock = HostLock::take()?;
        self.conn.execute(
            "DELETE FROM aliases WHERE container_id = ?1 AND network_id = ?2",
            params![ctr, network_id],
        )?;
        self.conn.execute(
            "DELETE FROM leases WHERE container_id = ?1 AND network_id = ?2",
            params![ctr, network_id],
        )?;
        self.unplug_veth(ctr, network_id)?;
        let _ = self.sync_dns_locked();
        self.sync_firewall()
    }

    fn unplug_veth(&self, ctr: &str, network_id: &str) -> Result<()> {
        let v = conn_veth(ctr, network_id);
        if let Some(i) = netlink::index_of(&v) {
            let mut nl = netlink::Netlink::open().map_err(nl_err("netlink"))?;
            match nl.del_link(i) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => return Err(nl_err(format!("deleting {v}"))(e)),
            }
        }
        Ok(())
    }

    /// A container's lease on a network (its requested `--ip`, else the next free
    /// address of the range), for `attach` and `plug` alike; a network with egress
    /// switches on forwarding first, whichever of them brings the container to it.
    fn lease(&mut self, ctr: &str, n: &Network, mac: Option<[u8; 6]>) -> Result<(Subnet, Lease)> {
        let subnet = n.subnet()?;
        if !n.internal {
            ensure_ip_forward()?;
        }
        let range = match &n.ip_range {
            Some(r) => Subnet::parse(r, "ip range")?,
            None => subnet,
        };
        let want_ip = self.requested_ip(ctr, &n.id)?;
        let lease = ipam::allocate(
            &mut self.conn,
            ctr,
            &ipam::Want {
                network_id: &n.id,
                network_name: &n.name,
                subnet,
                range,
                gateway: n.gateway_ip()?,
                ip: want_ip,
                mac,
            },
        )?;
        Ok((subnet, lease))
    }

    /// Put a running container on one more network: a lease, the bridge, the rules,
    /// a veth into its namespace. Undone on failure.
    pub(crate) fn plug(&mut self, ctr: &str, network_id: &str) -> Result<Endpoint> {
        let n = self.find(network_id)?;
        let _lock = HostLock::take()?;
        if netlink::index_of(&n.bridge).is_none() && ipam::users(&self.conn, &n.id)? == 0 {
            self.check_subnet(n.clone())?;
        }
        let n = self.find(network_id)?;
        let (subnet, lease) = self.lease(ctr, &n, None)?;
        let r = self.plug_veth(ctr, &n, &lease);
        if let Err(e) = r {
            let _ = self.conn.execute(
                "DELETE FROM leases WHERE container_id = ?1 AND network_id = ?2",
                params![ctr, n.id],
            );
            let _ = self.unplug_veth(ctr, &n.id);
            let _ = self.sync_firewall();
            return Err(e);
        }
        Ok(Endpoint {
            prefix: subnet.prefix,
            network: n,
            ip: lease.ip,
            mac: lease.mac,
            aliases: Vec::new(),
        })
    }

    fn plug_veth(&self, ctr: &str, n: &Network, lease: &Lease) -> Result<()> {
        let subnet = n.subnet()?;
        let mut nl = netlink::Netlink::open().map_err(nl_err("netlink"))?;
        let br = self.ensure_bridge(&mut nl, n)?;
        self.sync_firewall()?;
        let v = conn_veth(ctr, &n.id);
        self.unplug_veth(ctr, &n.id)?;
        netns::add_link(
            &self.netns_path(ctr),
            &netns::CtrSide {
                host_veth: &v,
                mac: ipam::parse_mac(&lease.mac)?,
                ip: lease.ip,
                prefix: subnet.prefix,
                gateway: n.gateway_ip()?,
            },
        )
        .map_err(nl_err(format!("connecting to network {}", n.name)))?;
        let i = netlink::index_of(&v).ok_or_else(|| {
            nl_err(format!("veth {v}"))(std::io::Error::from_raw_os_error(libc::ENODEV))
        })?;
        nl.set_up(i, Some(br))
            .map_err(nl_err(format!("attaching {v} to {}", n.bridge)))
    }
}

impl Networks {
    /// `--ip`: the address a container asks for on a network (docker's
    /// `IPAMConfig.IPv4Address`), checked now and used at every start.
    pub fn request_ip(&mut self, ctr: &str, network: &str, ip: &str) -> Result<()> {
        let Some(net) = network_of_mode(network) else {
            return Err(NetworkError::Invalid(format!(
                "--ip {ip}: the container has no bridge network (--network {network})"
            )));
        };
        if net == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(
                "--ip: user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let n = self.find(net)?;
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| NetworkError::Invalid(format!("--ip {ip}: not an IPv4 address")))?;
        let s = n.subnet()?;
        if !s.contains(addr)
            || addr == s.addr
            || addr == s.broadcast()
            || n.gateway_ip().is_ok_and(|g| g == addr)
        {
            return Err(NetworkError::Invalid(format!(
                "--ip {ip}: not a free host address of network {}'s subnet {s}",
                n.name
            )));
        }
        self.conn.execute(
            "INSERT OR REPLACE INTO requested_ips (container_id, network_id, ip) VALUES (?1, ?2, ?3)",
            params![ctr, n.id, ip],
        )?;
        Ok(())
    }

    fn requested_ip(&self, ctr: &str, network_id: &str) -> Result<Option<Ipv4Addr>> {
        let ip: Option<String> = self
            .conn
            .query_row(
                "SELECT ip FROM requested_ips WHERE container_id = ?1 AND network_id = ?2",
                params![ctr, network_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(ip.and_then(|s| s.parse().ok()))
    }
}
