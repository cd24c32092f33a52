//! Our own nftables table, rebuilt whole from the database's state in one `nft -f -`
//! transaction per change (netavark's "one atomic batch per operation"): the ruleset
//! covers exactly the networks whose bridge exists or that have a container, and the
//! ports published by running containers, so a port's rule disappears with its
//! container and a network's with its bridge; a `kill -9` anywhere leaves rules the
//! next change replaces, and a reboot (which empties the kernel's tables) is repaired
//! by the next `run`. Conntrack entries are not part of a table, so rebuilding it does
//! not break established connections.

use super::NetworkError;
use std::io::Write;
use std::process::{Command, Stdio};

/// A network whose rules are wanted.
pub struct Active {
    pub bridge: String,
    pub subnet: String,
    pub internal: bool,
    /// Published ports of its containers, with the container's address.
    pub published: Vec<(super::ports::Bound, std::net::Ipv4Addr)>,
}

/// The table's full text as one transaction: the table and its base chains declared
/// (a no-op when they exist), emptied, and refilled. The base chains stay while the
/// root has any network state: registering and unregistering netfilter hooks (a table
/// made or deleted) costs ~35 ms of RCU grace periods per `nft` run, flushing and
/// refilling chains a few; [`delete`] removes the table when nothing is left.
pub fn render(table: &str, nets: &[Active]) -> String {
    let mut s = format!(
        "table ip {table} {{\n  set bridges {{ type ifname; }}\n  chain forward {{ type filter hook forward priority filter; policy accept; }}\n  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n}}\n"
    );
    for c in ["forward", "prerouting", "postrouting"] {
        s += &format!("flush chain ip {table} {c}\n");
    }
    s += &format!("flush set ip {table} bridges\n");
    if nets.is_empty() {
        return s;
    }
    let bridges: Vec<String> = nets.iter().map(|n| format!("\"{}\"", n.bridge)).collect();
    s += &format!(
        "add element ip {table} bridges {{ {} }}\n",
        bridges.join(", ")
    );
    let fwd = format!("add rule ip {table} forward");
    for n in nets {
        let b = &n.bridge;
        // Containers of one network talk freely.
        s += &format!("{fwd} iifname \"{b}\" oifname \"{b}\" accept\n");
        // docker's DOCKER-ISOLATION: never from one of our bridges to another.
        s += &format!("{fwd} iifname \"{b}\" oifname @bridges drop\n");
        if n.internal {
            // --internal: nothing in from or out to anything but the bridge itself.
            s += &format!("{fwd} iifname \"{b}\" drop\n{fwd} oifname \"{b}\" drop\n");
        } else {
            s += &format!("{fwd} iifname \"{b}\" accept\n");
            s += &format!("{fwd} oifname \"{b}\" ct state established,related accept\n");
            s += &format!("{fwd} oifname \"{b}\" ct status dnat accept\n");
        }
    }
    s += &prerouting(table, nets);
    let post = format!("add rule ip {table} postrouting");
    for n in nets
        .iter()
        .filter(|n| !n.internal && !n.published.is_empty())
    {
        // Hairpin: a container reaching a published port of its own network through
        // a host address must see the reply come back through the host (docker's
        // MASQUERADE of DNATed traffic that leaves by the bridge it came in on).
        s += &format!(
            "{post} iifname \"{b}\" oifname \"{b}\" ct status dnat masquerade\n",
            b = n.bridge
        );
    }
    for n in nets.iter().filter(|n| !n.internal) {
        // docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE`: egress takes the host's address.
        s += &format!(
            "{post} ip saddr {} oifname != \"{}\" masquerade\n",
            n.subnet, n.bridge
        );
    }
    s
}

/// Remove the table (the first line makes the delete valid when it does not exist).
pub fn delete(table: &str) -> String {
    format!("table ip {table}\ndelete table ip {table}\n")
}

/// DNAT of published ports for traffic arriving from elsewhere (other hosts, other
/// containers) to one of the host's addresses: `fib daddr type local` is docker's
/// `-m addrtype --dst-type LOCAL`. The host's own connections go to the proxy
/// (proxy.rs: why not an output-chain DNAT for 127.0.0.1).
fn prerouting(table: &str, nets: &[Active]) -> String {
    let mut s = String::new();
    for n in nets.iter().filter(|n| !n.internal) {
        for (b, ip) in &n.published {
            let daddr = if b.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("ip daddr {} ", b.host_ip)
            };
            s += &format!(
                "add rule ip {table} prerouting fib daddr type local {daddr}{} dport {} dnat to {ip}:{}\n",
                b.proto, b.host_port, b.ctr_port
            );
        }
    }
    s
}

/// Apply a ruleset as one transaction.
pub fn apply(ruleset: &str) -> Result<(), NetworkError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Firewall(format!("cannot run nft (install nftables): {e}")))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(ruleset.as_bytes())
            .map_err(|e| NetworkError::Firewall(format!("nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Firewall(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(NetworkError::Firewall(format!(
            "nft -f - failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_empties_the_table() {
        let r = render("t", &[]);
        assert!(r.contains("flush chain ip t forward"), "{r}");
        assert!(!r.contains("add rule"), "{r}");
    }

    #[test]
    fn internal_networks_get_no_masquerade() {
        let r = render(
            "t",
            &[
                Active {
                    bridge: "ox-a".into(),
                    subnet: "10.0.0.0/24".into(),
                    internal: false,
                    published: Vec::new(),
                },
                Active {
                    bridge: "ox-b".into(),
                    subnet: "10.0.1.0/24".into(),
                    internal: true,
                    published: Vec::new(),
                },
            ],
        );
        assert!(r.contains("ip saddr 10.0.0.0/24 oifname != \"ox-a\" masquerade"));
        assert!(!r.contains("10.0.1.0/24 oifname"));
        assert!(r.contains("iifname \"ox-b\" drop"));
    }
}
