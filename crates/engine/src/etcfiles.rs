//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` of a container, written to its
//! directory and bind-mounted, as docker does. The network issue extends these for
//! bridge networks; for `none` and `host` they are what docker writes.

use crate::error::{io_err, Result};
use crate::record::Record;
use std::path::Path;

/// docker's fixed IPv6 lines of every container's /etc/hosts.
const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, data).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// The hostname docker gives: `-h`, else the host's with `--network host` (it shares
/// the host's UTS namespace), else the id's first 12 digits.
pub fn hostname(rec: &Record) -> String {
    if !rec.config.hostname.is_empty() {
        return rec.config.hostname.clone();
    }
    if rec.host_config.network_mode == "host" {
        return std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
    }
    rec.id[..12].to_string()
}

/// `resolv.conf` from the host's, as docker: with the host's network it is the host's
/// file; otherwise loopback nameservers (systemd-resolved's 127.0.0.53, a local
/// dnsmasq) are dropped, since they are unreachable from the container's namespace,
/// and docker's public fallbacks stand in if none is left; `--dns`, `--dns-search`,
/// `--dns-option` replace the host's lines.
pub fn resolv_conf(rec: &Record, host: &str) -> String {
    resolv_conf_for(rec, host, false)
}

/// `resolv.conf` of a container on a user network (docker 20.10's `rebuildDNS`): the
/// embedded resolver as the only nameserver (the host's or `--dns` servers are its
/// upstreams, not the container's), the search domains and options kept, and
/// `ndots:0` added unless an `ndots` is set, so a container's name is looked up as is
/// before any search domain.
pub fn resolv_conf_for(rec: &Record, host: &str, embedded_dns: bool) -> String {
    if !embedded_dns {
        return legacy_resolv_conf(rec, host);
    }
    let hc = &rec.host_config;
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("search") | Some("domain") => search = w.map(String::from).collect(),
            Some("options") => options.extend(w.map(String::from)),
            _ => {}
        }
    }
    if !hc.dns_search.is_empty() {
        search = hc.dns_search.clone();
    }
    if !hc.dns_options.is_empty() {
        options = hc.dns_options.clone();
    }
    if !crate::network::dns::has_ndots(&options) {
        options.push("ndots:0".into());
    }
    let mut out = String::new();
    if !search.is_empty() && search != ["."] {
        out += &format!("search {}\n", search.join(" "));
    }
    out += &format!("nameserver {}\n", crate::network::dns::RESOLVER_IP);
    out += &format!("options {}\n", options.join(" "));
    out
}

fn legacy_resolv_conf(rec: &Record, host: &str) -> String {
    let hc = &rec.host_config;
    let mut ns = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(a) = w.next() {
                    let loopback = a.starts_with("127.") || a == "::1";
                    if hc.network_mode == "host" || !loopback {
                        ns.push(a.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = w.map(String::from).collect(),
            Some("options") => options.extend(w.map(String::from)),
            _ => {}
        }
    }
    if !hc.dns.is_empty() {
        ns = hc.dns.clone();
    }
    if !hc.dns_search.is_empty() {
        search = hc.dns_search.clone();
    }
    if !hc.dns_options.is_empty() {
        options = hc.dns_options.clone();
    }
    if ns.is_empty() && hc.network_mode != "none" {
        ns = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    if !search.is_empty() && search != ["."] {
        out += &format!("search {}\n", search.join(" "));
    }
    for n in ns {
        out += &format!("nameserver {n}\n");
    }
    if !options.is_empty() {
        out += &format!("options {}\n", options.join(" "));
    }
    out
}

/// A container's addresses on a bridge network, for `/etc/hosts`.
#[derive(Debug, Clone, Copy)]
pub struct OwnAddr {
    /// On a user network: names are resolved by the engine's resolver (127.0.0.11).
    pub embedded_dns: bool,
    pub ip: std::net::Ipv4Addr,
    /// The bridge's address: the host as the container reaches it (`host-gateway`).
    pub gateway: std::net::Ipv4Addr,
}

/// `/etc/hosts`: the host's with `--network host`, else docker's base lines; then
/// `--add-host` entries (`name:ip`, `host-gateway` the bridge's address); then, on a
/// bridge network, the container's own address and hostname.
pub fn hosts(rec: &Record, own: Option<OwnAddr>) -> Result<String> {
    let mut out = if rec.host_config.network_mode == "host" {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS_BASE.to_string())
    } else {
        HOSTS_BASE.to_string()
    };
    for e in rec.host_config.extra_hosts.iter().flatten() {
        let (name, ip) = e.split_once(':').ok_or_else(|| {
            crate::error::EngineError::Invalid(format!(
                "invalid argument \"{e}\" for \"--add-host\" flag: bad format for add-host: \"{e}\""
            ))
        })?;
        if ip == "host-gateway" {
            // docker maps it to the host's address on the default bridge; we use the
            // gateway of the container's own network, which is the host too and which
            // isolation between networks never blocks.
            let Some(o) = own else {
                return Err(crate::error::EngineError::Unsupported(
                    "--add-host NAME:host-gateway needs a bridge network (not --network none, host or container:)".into(),
                ));
            };
            out += &format!("{}\t{name}\n", o.gateway);
            continue;
        }
        out += &format!("{ip}\t{name}\n");
    }
    // docker's last line: the container's own address with its hostname, on a
    // network that gives it one (a bridge); `none` has none.
    if let Some(o) = own {
        out += &format!("{}\t{}\n", o.ip, hostname(rec));
    }
    Ok(out)
}

/// Write the three files into the container's directory.
pub fn write_all(ctr_dir: &Path, rec: &Record, own: Option<OwnAddr>) -> Result<()> {
    let h = hostname(rec);
    write_atomic(&ctr_dir.join("hostname"), format!("{h}\n").as_bytes())?;
    write_atomic(&ctr_dir.join("hosts"), hosts(rec, own)?.as_bytes())?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(
        &ctr_dir.join("resolv.conf"),
        resolv_conf_for(rec, &host_resolv, own.is_some_and(|o| o.embedded_dns)).as_bytes(),
    )
}

/// After `network connect` of a running container to a user network: docker's
/// `rebuildDNS` points its resolv.conf at the embedded resolver. Written in place (the
/// file is bind-mounted into the container: a rename would not reach it), and only
/// when it is still what the engine wrote (docker leaves a file the user changed).
pub fn switch_to_embedded_dns(ctr_dir: &Path, rec: &Record) -> Result<()> {
    let p = ctr_dir.join("resolv.conf");
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let Ok(cur) = std::fs::read_to_string(&p) else {
        return Ok(());
    };
    if cur != legacy_resolv_conf(rec, &host) {
        return Ok(());
    }
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .and_then(|mut f| f.write_all(resolv_conf_for(rec, &host, true).as_bytes()))
        .map_err(io_err(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(dns_options: &[&str]) -> Record {
        let mut hc = crate::types::HostConfig {
            network_mode: "net".into(),
            ..Default::default()
        };
        hc.dns_options = dns_options.iter().map(|s| s.to_string()).collect();
        Record {
            id: "0123456789abcdef".repeat(4),
            name: "c".into(),
            created: String::new(),
            image_id: String::new(),
            config: Default::default(),
            host_config: hc,
            path: String::new(),
            args: Vec::new(),
            runtime: String::new(),
            history: Default::default(),
            volumes: Vec::new(),
            health_on_failure: String::new(),
        }
    }

    /// docker 20.10's rebuildDNS: search kept, only 127.0.0.11, ndots:0 added unless
    /// an ndots is set (the host's or the user's).
    #[test]
    fn a_user_network_container_asks_the_embedded_resolver() {
        let host = "search corp.example\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf_for(&rec(&[]), host, true),
            "search corp.example\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
        );
        assert_eq!(
            resolv_conf_for(&rec(&["ndots:2"]), host, true),
            "search corp.example\nnameserver 127.0.0.11\noptions ndots:2\n"
        );
        // The default bridge: the host's, loopback resolvers dropped (docker's fallback).
        assert_eq!(
            resolv_conf_for(&rec(&[]), host, false),
            "search corp.example\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"
        );
    }
}
