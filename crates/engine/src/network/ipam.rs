//! IPv4 subnets and address leases. A lease is a row in `leases` (the engine's SQLite
//! database) whose `(network, ip)` primary key makes two concurrent `run`s unable to
//! take one address: allocation is a single `BEGIN IMMEDIATE` transaction.

use super::NetworkError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::net::Ipv4Addr;

/// `a.b.c.d/n`, normalised to its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

pub fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

pub fn broadcast(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) | !mask(prefix))
}

impl Subnet {
    pub fn parse(s: &str, what: &str) -> Result<Subnet, NetworkError> {
        let bad = || NetworkError::Invalid(format!("{what} {s}: not an IPv4 CIDR (a.b.c.d/n)"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(NetworkError::Invalid(format!(
                "{what} {s}: the prefix must be between /8 and /30"
            )));
        }
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, o: &Subnet) -> bool {
        let p = self.prefix.min(o.prefix);
        u32::from(self.addr) & mask(p) == u32::from(o.addr) & mask(p)
    }

    /// The first usable address: docker's default gateway.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        broadcast(self.addr, self.prefix)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    network_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    container_id TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (network_id, ip)
);
CREATE INDEX IF NOT EXISTS leases_container ON leases(container_id);
";

/// A container's address on one network.
#[derive(Debug, Clone)]
pub struct Lease {
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub mac: String,
}

/// docker's MAC for an address: `02:42` and the address's four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], NetworkError> {
    let bad = || NetworkError::Invalid(format!("--mac-address {s}: not a MAC address"));
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if m[0] & 1 == 1 {
        return Err(NetworkError::Invalid(format!(
            "--mac-address {s}: a multicast address cannot be a container's"
        )));
    }
    Ok(m)
}

/// What an allocation is asked.
pub struct Want<'a> {
    pub network_id: &'a str,
    pub network_name: &'a str,
    pub subnet: Subnet,
    pub range: Subnet,
    pub gateway: Ipv4Addr,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<[u8; 6]>,
}

/// Take an address for `ctr` (the requested one, else the lowest free one) in one
/// immediate transaction, so concurrent `run`s never get the same one.
pub fn allocate(conn: &mut Connection, ctr: &str, w: &Want<'_>) -> Result<Lease, NetworkError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken: std::collections::HashSet<u32> = {
        let mut st = tx.prepare("SELECT ip FROM leases WHERE network_id = ?1")?;
        let rows = st.query_map(params![w.network_id], |r| r.get::<_, String>(0))?;
        rows.filter_map(|r| r.ok())
            .filter_map(|s| s.parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .collect()
    };
    let usable = |ip: u32| {
        ip != u32::from(w.subnet.addr)
            && ip != u32::from(w.subnet.broadcast())
            && ip != u32::from(w.gateway)
            && !taken.contains(&ip)
    };
    let ip = match w.ip {
        Some(ip) => {
            if !w.subnet.contains(ip) {
                return Err(NetworkError::Invalid(format!(
                    "--ip {ip}: not in network {}'s subnet {}",
                    w.network_name, w.subnet
                )));
            }
            if !usable(u32::from(ip)) {
                return Err(NetworkError::Invalid(format!(
                    "--ip {ip}: the address is already in use on network {}",
                    w.network_name
                )));
            }
            ip
        }
        None => {
            let lo = u32::from(w.range.addr);
            let hi = u32::from(w.range.broadcast());
            let found = (lo..=hi).find(|&i| usable(i) && w.subnet.contains(Ipv4Addr::from(i)));
            Ipv4Addr::from(found.ok_or_else(|| {
                NetworkError::Exhausted(format!(
                    "no available IPv4 addresses on network {} ({}): every address is in use",
                    w.network_name, w.range
                ))
            })?)
        }
    };
    let mac = mac_string(w.mac.unwrap_or_else(|| mac_for(ip)));
    tx.execute(
        "INSERT INTO leases (network_id, ip, container_id, mac) VALUES (?1, ?2, ?3, ?4)",
        params![w.network_id, ip.to_string(), ctr, mac],
    )?;
    tx.commit()?;
    Ok(Lease {
        network_id: w.network_id.to_string(),
        ip,
        mac,
    })
}

/// A container's leases.
pub fn leases_of(conn: &Connection, ctr: &str) -> Result<Vec<Lease>, NetworkError> {
    let mut st =
        conn.prepare_cached("SELECT network_id, ip, mac FROM leases WHERE container_id = ?1")?;
    let rows = st.query_map(params![ctr], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (n, ip, mac) = r?;
        if let Ok(ip) = ip.parse() {
            out.push(Lease {
                network_id: n,
                ip,
                mac,
            });
        }
    }
    Ok(out)
}

pub fn release(conn: &Connection, ctr: &str) -> Result<(), NetworkError> {
    conn.execute("DELETE FROM leases WHERE container_id = ?1", params![ctr])?;
    Ok(())
}

/// Leases of containers whose record is gone (an `rm` killed between its row and its
/// network teardown): the addresses are free again.
pub fn reclaim_orphans(conn: &Connection) -> Result<Vec<String>, NetworkError> {
    let has_ctrs: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='containers'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_ctrs.is_none() {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare(
        "SELECT DISTINCT container_id FROM leases WHERE container_id NOT IN (SELECT id FROM containers)",
    )?;
    let ids: Vec<String> = st
        .query_map([], |r| r.get(0))?
        .filter_map(|r| r.ok())
        .collect();
    Ok(ids)
}

/// How many containers hold an address on a network.
pub fn users(conn: &Connection, network_id: &str) -> Result<u32, NetworkError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM leases WHERE network_id = ?1",
        params![network_id],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_overlap() {
        let a = Subnet::parse("10.1.2.3/24", "--subnet").unwrap();
        assert_eq!(a.to_string(), "10.1.2.0/24");
        assert_eq!(a.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        let b = Subnet::parse("10.1.0.0/16", "--subnet").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        let c = Subnet::parse("10.2.0.0/16", "--subnet").unwrap();
        assert!(!a.overlaps(&c));
        assert!(Subnet::parse("10.0.0.0", "--subnet").is_err());
        assert!(Subnet::parse("10.0.0.0/31", "--subnet").is_err());
    }

    #[test]
    fn a_slash_29_has_five_addresses_besides_the_gateway() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let s = Subnet::parse("10.9.9.0/29", "--subnet").unwrap();
        let w = Want {
            network_id: "n",
            network_name: "n",
            subnet: s,
            range: s,
            gateway: s.first(),
            ip: None,
            mac: None,
        };
        let got: Vec<_> = (0..5)
            .map(|i| allocate(&mut c, &format!("c{i}"), &w).unwrap().ip)
            .collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 9, 9, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 9, 9, 6));
        assert!(matches!(
            allocate(&mut c, "c5", &w),
            Err(NetworkError::Exhausted(_))
        ));
        release(&c, "c0").unwrap();
        assert_eq!(allocate(&mut c, "c6", &w).unwrap().ip, got[0]);
    }
}
