//! Choosing a network's subnet. Subnets are the host's, not one engine root's: two
//! roots (`--root`/`--runroot`, as two dockerd's on one host, or the test suite's
//! private roots) must never pick the same one, yet a network's bridge (its route, the
//! only thing the kernel shows) is made only at the network's first start. So every
//! root that records a user network registers itself in `/run/oxcart/network-roots/`,
//! and a root choosing a subnet, under the host network lock, avoids the host's routes,
//! its own networks and the networks every registered root's database records.
//!
//! The databases are the reservations: a network's subnet is held exactly as long as
//! its record exists (`network rm`/`prune` release it with the row, and no `kill -9`
//! can leave a reservation apart from a record). A registration is only a pointer: one
//! whose database is gone (the root was deleted, or lived on a tmpfs emptied by a
//! reboot) is removed by the next root that reads the registry, and a reboot empties
//! `/run`, so a root nobody uses again stops holding anything (a root that is used
//! registers again at its next command).

use super::ipam::Subnet;
use super::{netlink, Network, NetworkError, Result, DEFAULT_NETWORK};
use rusqlite::{Connection, OpenFlags};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where engine roots that hold user networks are listed (one file per root, named by
/// a hash of its database's path, holding that path). Under `/run/oxcart`, beside the
/// host network lock: host-global, and emptied by a reboot.
const ROOTS: &str = "/run/oxcart/network-roots";

/// The pools docker draws default subnets from: 172.17–31.0.0/16, then
/// 192.168.0.0/16 in /20s.
fn candidates() -> impl Iterator<Item = Subnet> {
    let a = (17u8..=31).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let b = (0u8..16).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    a.chain(b)
}

/// The host's IPv4 routes (`/proc/net/route`: destination and mask in host order
/// hex) and their devices.
pub(super) fn host_routes() -> Vec<(Subnet, String)> {
    let Ok(s) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in s.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        let prefix = u32::from_be(m).count_ones() as u8;
        if prefix == 0 {
            continue; // the default route overlaps everything and says nothing
        }
        out.push((
            Subnet {
                addr: Ipv4Addr::from(u32::from_be(d)),
                prefix,
            },
            f[0].to_string(),
        ));
    }
    out
}

/// 64-bit FNV-1a: a registration's file name from its database's path.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn entry(db: &Path) -> PathBuf {
    Path::new(ROOTS).join(format!("{:016x}", fnv64(db.as_os_str().as_encoded_bytes())))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn registered(db: &Path) -> bool {
    std::fs::read(entry(db)).is_ok_and(|b| b == db.as_os_str().as_encoded_bytes())
}

/// List this root (its database's absolute path). Called under the host lock, so the
/// fixed temporary name of [`crate::etcfiles::write_atomic`] is never shared.
pub(super) fn register(db: &Path) -> Result<()> {
    if registered(db) {
        return Ok(());
    }
    let dir = Path::new(ROOTS);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    crate::etcfiles::write_atomic(&entry(db), db.as_os_str().as_encoded_bytes())
        .map_err(|e| NetworkError::Invalid(e.to_string()))
}

/// A subnet another root's network holds.
pub(super) struct Claim {
    /// The root's directory (`--root`).
    root: PathBuf,
    network: String,
    bridge: String,
    subnet: Subnet,
    /// The default `bridge` network with its bridge down: it moves to a free subnet
    /// when it next comes up, so it holds its subnet only as a preference.
    movable: bool,
}

/// Every other registered root's networks, read from its database. Under the host
/// lock (every change of a root's networks table is made under it, so what is read
/// is what stands). A registration whose database is gone is removed.
fn others(own_db: &Path) -> Result<Vec<Claim>> {
    let rd = match std::fs::read_dir(ROOTS) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(Path::new(ROOTS))(e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let p = ent.path();
        if p.extension().is_some() {
            // write_atomic's temporary, left by a registration killed half-way.
            let _ = std::fs::remove_file(&p);
            continue;
        }
        let Ok(b) = std::fs::read(&p) else { continue };
        let db = PathBuf::from(String::from_utf8_lossy(&b).into_owned());
        if db == own_db {
            continue;
        }
        let root = db.parent().map(Path::to_path_buf).unwrap_or_default();
        match read_networks(&db) {
            Ok(Some(nets)) => out.extend(nets.into_iter().filter_map(|n| {
                Some(Claim {
                    subnet: n.subnet().ok()?,
                    movable: n.name == DEFAULT_NETWORK && netlink::index_of(&n.bridge).is_none(),
                    network: n.name,
                    bridge: n.bridge,
                    root: root.clone(),
                })
            })),
            Ok(None) => {
                let _ = std::fs::remove_file(&p);
            }
            Err(source) => return Err(NetworkError::OtherRoot { path: db, source }),
        }
    }
    Ok(out)
}

/// The networks a root's database records; `None` if the database is gone.
///
/// Another root can be deleted while it is read (a test's temporary root, an
/// `rm -rf` of a store): SQLite then fails at whichever step first touches a file
/// that went away (the open, the `-shm` of a WAL database, a page), so every failure
/// is checked against the database still being there, not only the open's. The other
/// way round, this read can recreate that root's `-wal`/`-shm` while it is emptied,
/// and an `rm -rf` that does not retry then fails with ENOTEMPTY: a reader of another
/// root's SQLite database cannot avoid it (a read-only connection creates them too),
/// so the test suite's deletions of live roots retry.
fn read_networks(db: &Path) -> rusqlite::Result<Option<Vec<Network>>> {
    if !db.exists() {
        return Ok(None);
    }
    match query_networks(db) {
        Err(_) if !db.exists() => Ok(None),
        r => r.map(Some),
    }
}

fn query_networks(db: &Path) -> rusqlite::Result<Vec<Network>> {
    // Read-write without CREATE, but query-only: a read-only connection to a WAL
    // database leaves its `-wal` and `-shm` files behind (it may not delete them),
    // where the last connection of a read-write one removes them on close.
    let c = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    c.pragma_update(None, "query_only", true)?;
    let has: i64 = c.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='networks'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        return Ok(Vec::new());
    }
    let mut st = c.prepare("SELECT record FROM networks")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        // A record this version cannot read holds nothing it could name; the host's
        // routes still show it once it is up.
        if let Ok(n) = serde_json::from_str::<Network>(&r?) {
            out.push(n);
        }
    }
    Ok(out)
}

/// What a new subnet must avoid, gathered once under the host lock.
pub(super) struct Taken {
    routes: Vec<(Subnet, String)>,
    /// This root's other networks.
    own: Vec<(Subnet, String)>,
    others: Vec<Claim>,
}

impl Taken {
    /// Everything but this root's network `except` (the one being re-placed).
    pub(super) fn gather(own_db: &Path, own: &[Network], except: Option<&str>) -> Result<Taken> {
        Ok(Taken {
            routes: host_routes(),
            own: own
                .iter()
                .filter(|o| Some(o.id.as_str()) != except)
                .filter_map(|o| Some((o.subnet().ok()?, o.name.clone())))
                .collect(),
            others: others(own_db)?,
        })
    }

    /// Why `s` cannot be used, if it cannot: the network (and root) or route it
    /// overlaps. Another root's default network whose bridge is down is no conflict:
    /// it moves when it comes up.
    pub(super) fn conflict(&self, s: &Subnet) -> Option<String> {
        if let Some((o, name)) = self.own.iter().find(|(o, _)| o.overlaps(s)) {
            return Some(format!("network {name}'s {o}"));
        }
        if let Some(c) = self
            .others
            .iter()
            .find(|c| !c.movable && c.subnet.overlaps(s))
        {
            return Some(format!(
                "network {}'s {} (engine root {})",
                c.network,
                c.subnet,
                c.root.display()
            ));
        }
        self.route_conflict(s)
    }

    /// A host route `s` overlaps, named by the network whose bridge it is when it is
    /// another root's.
    pub(super) fn route_conflict(&self, s: &Subnet) -> Option<String> {
        let (r, dev) = self.routes.iter().find(|(r, _)| r.overlaps(s))?;
        Some(match self.others.iter().find(|c| &c.bridge == dev) {
            Some(c) => format!(
                "the host's route {r} on {dev}, the bridge of network {} (engine root {})",
                c.network,
                c.root.display()
            ),
            None => format!("the host's route {r} on {dev}"),
        })
    }

    /// docker's choice: the first pool subnet that overlaps nothing, preferring one
    /// no other root's idle default network sits on either (so that one need not move).
    pub(super) fn pick(&self) -> Result<Subnet> {
        let free = |c: &Subnet| self.conflict(c).is_none();
        let unclaimed = |c: &Subnet| !self.others.iter().any(|o| o.subnet.overlaps(c));
        candidates()
            .find(|c| free(c) && unclaimed(c))
            .or_else(|| candidates().find(free))
            .ok_or_else(|| {
                NetworkError::Exhausted(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        Subnet::parse(x, "t").unwrap()
    }

    fn claim(subnet: &str, movable: bool) -> Claim {
        Claim {
            root: PathBuf::from("/r"),
            network: "n".into(),
            bridge: "ox-x".into(),
            subnet: s(subnet),
            movable,
        }
    }

    #[test]
    fn picks_past_routes_own_and_other_roots_networks() {
        let t = Taken {
            routes: vec![(s("172.17.0.0/16"), "docker0".into())],
            own: vec![(s("172.18.0.0/16"), "a".into())],
            others: vec![claim("172.19.0.0/16", false), claim("172.20.0.0/16", true)],
        };
        // 172.20 is an idle default of another root: avoided while others are free.
        assert_eq!(t.pick().unwrap(), s("172.21.0.0/16"));
        assert!(t.conflict(&s("172.20.0.0/16")).is_none());
        let e = t.conflict(&s("172.19.5.0/24")).unwrap();
        assert!(e.contains("engine root /r"), "{e}");
        assert!(t.conflict(&s("172.17.1.0/24")).unwrap().contains("docker0"));
    }

    #[test]
    fn an_idle_default_is_given_up_before_the_pools_run_out() {
        let mut t = Taken {
            routes: Vec::new(),
            own: Vec::new(),
            others: candidates().map(|c| claim(&c.to_string(), false)).collect(),
        };
        assert!(matches!(t.pick(), Err(NetworkError::Exhausted(_))));
        t.others[3].movable = true;
        assert_eq!(t.pick().unwrap(), s("172.20.0.0/16"));
    }

    #[test]
    fn a_gone_database_reads_as_none() {
        assert!(
            read_networks(Path::new("/nonexistent/oxcart/containers.db"))
                .unwrap()
                .is_none()
        );
    }

    /// A root removed while another reads it (CI: a test's `remove_dir_all` of its
    /// root raced a `network create` elsewhere, which failed with "unable to open
    /// database file") reads as gone, whichever step of the read the removal meets.
    #[test]
    fn a_database_removed_while_it_is_read_reads_as_none() {
        let tmp = tempfile::tempdir().unwrap();
        for round in 0..200 {
            let root = tmp.path().join(format!("r{round}"));
            std::fs::create_dir(&root).unwrap();
            let db = root.join("containers.db");
            let c = Connection::open(&db).unwrap();
            c.pragma_update(None, "journal_mode", "wal").unwrap();
            c.execute("CREATE TABLE networks (record TEXT)", [])
                .unwrap();
            drop(c);
            // The reader may create the `-wal`/`-shm` of a database whose directory
            // is being emptied (SQLite does so on open), so the removal is retried, as
            // an `rm -rf` racing any writer into the directory has to be.
            let remover = {
                let root = root.clone();
                std::thread::spawn(move || loop {
                    match std::fs::remove_dir_all(&root) {
                        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
                        r => return r,
                    }
                })
            };
            loop {
                match read_networks(&db) {
                    Ok(None) => break,
                    Ok(Some(n)) => assert!(n.is_empty()),
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            remover.join().unwrap().unwrap();
        }
    }
}
