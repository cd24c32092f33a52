//! Published ports: docker's `-p`/`-P` bindings made concrete (a host port for each
//! container port), recorded per container in the `ports` table, turned into DNAT
//! rules (traffic from other hosts) and served for the host's own connections by the
//! userland proxy (proxy.rs), which also holds every host port from before the
//! container starts, so a taken port is an error then and not a silent hijack.

use super::NetworkError;
use crate::types::{Config, HostConfig};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ports (
    container_id TEXT NOT NULL,
    proto TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    ctr_port INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ports_container ON ports(container_id);
";

/// One published port as asked: a host port range (`0..=0` for any free port).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Wanted {
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_lo: u16,
    pub host_hi: u16,
    pub ctr_port: u16,
}

/// One published port as bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bound {
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub ctr_port: u16,
}

fn parse_port(s: &str, what: &str) -> Result<u16, NetworkError> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| NetworkError::Invalid(format!("{what} {s}: not a port number")))
}

/// `-p` bindings and, with `-P`, every exposed port without one.
pub fn wanted(c: &Config, h: &HostConfig) -> Result<Vec<Wanted>, NetworkError> {
    let mut out = Vec::new();
    let mut keys: Vec<(String, Vec<crate::types::PortBinding>)> = h
        .port_bindings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect();
    if h.publish_all_ports {
        for k in c.exposed_ports.iter().flat_map(|e| e.keys()) {
            if !h.port_bindings.contains_key(k) {
                keys.push((k.clone(), vec![Default::default()]));
            }
        }
    }
    for (key, bindings) in keys {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        if proto != "tcp" && proto != "udp" {
            return Err(NetworkError::Unsupported(format!(
                "-p {key}: only tcp and udp ports can be published"
            )));
        }
        let ctr_port = parse_port(port, "-p container port")?;
        let bindings = if bindings.is_empty() {
            vec![Default::default()]
        } else {
            bindings
        };
        for b in bindings {
            let host_ip = if b.host_ip.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                b.host_ip.parse().map_err(|_| {
                    NetworkError::Unsupported(format!(
                        "-p {}: only IPv4 host addresses are supported",
                        b.host_ip
                    ))
                })?
            };
            let (lo, hi) = match b.host_port.split_once('-') {
                _ if b.host_port.is_empty() => (0, 0),
                Some((a, z)) => (
                    parse_port(a, "-p host port")?,
                    parse_port(z, "-p host port")?,
                ),
                None => {
                    let p = parse_port(&b.host_port, "-p host port")?;
                    (p, p)
                }
            };
            out.push(Wanted {
                proto: proto.to_string(),
                host_ip,
                host_lo: lo,
                host_hi: hi,
                ctr_port,
            });
        }
    }
    Ok(out)
}

pub fn record(conn: &Connection, ctr: &str, bound: &[Bound]) -> Result<(), NetworkError> {
    for b in bound {
        conn.execute(
            "INSERT INTO ports (container_id, proto, host_ip, host_port, ctr_port) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ctr, b.proto, b.host_ip.to_string(), b.host_port, b.ctr_port],
        )?;
    }
    Ok(())
}

pub fn of(conn: &Connection, ctr: &str) -> Result<Vec<Bound>, NetworkError> {
    let mut st = conn.prepare_cached(
        "SELECT proto, host_ip, host_port, ctr_port FROM ports WHERE container_id = ?1 ORDER BY ctr_port, proto",
    )?;
    let rows = st.query_map(params![ctr], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u16>(2)?,
            r.get::<_, u16>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (proto, ip, host_port, ctr_port) = r?;
        out.push(Bound {
            proto,
            host_ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            host_port,
            ctr_port,
        });
    }
    Ok(out)
}

pub fn forget(conn: &Connection, ctr: &str) -> Result<(), NetworkError> {
    conn.execute("DELETE FROM ports WHERE container_id = ?1", params![ctr])?;
    Ok(())
}

/// docker's `NetworkSettings.Ports`: every exposed or published port, its bindings
/// (`null` for an exposed port that is not published).
pub fn ports_json(c: &Config, bound: &[Bound]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for k in c.exposed_ports.iter().flat_map(|e| e.keys()) {
        m.insert(k.clone(), serde_json::Value::Null);
    }
    for b in bound {
        let e = m
            .entry(format!("{}/{}", b.ctr_port, b.proto))
            .or_insert_with(|| serde_json::json!([]));
        if !e.is_array() {
            *e = serde_json::json!([]);
        }
        if let Some(a) = e.as_array_mut() {
            a.push(serde_json::json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}));
        }
    }
    serde_json::Value::Object(m)
}
