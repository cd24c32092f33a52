//! `network create|ls|inspect|rm|prune|connect|disconnect` and `port` (docker's
//! output and JSON).

use crate::table::{align, list_format, print_list};
use crate::Ctx;
use anyhow::{bail, Result};
use clap::Subcommand;
use oxcart_engine::network::{CreateNetwork, Networks};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create {
        /// Driver (only bridge)
        #[arg(short = 'd', long)]
        driver: Option<String>,
        /// Subnet in CIDR format
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 gateway for the subnet
        #[arg(long)]
        gateway: Option<String>,
        /// Allocate container addresses from a sub-range
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Set metadata on a network
        #[arg(long = "label")]
        labels: Vec<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Pretty-print with a Go template
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format the output using a Go template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network
    Connect {
        /// Add a network-scoped alias for the container
        #[arg(long = "alias")]
        alias: Vec<String>,
        /// IPv4 address (not supported yet)
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

fn open(ctx: &Ctx) -> Result<(oxcart_engine::Engine, Networks)> {
    let e = ctx.engine()?;
    let mut n = Networks::open(&e.layout)?;
    // docker always lists its `bridge`: record it (no bridge is made until used).
    n.default_network()?;
    Ok((e, n))
}

pub fn dispatch(ctx: &Ctx, cmd: &NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create {
            driver,
            subnet,
            gateway,
            ip_range,
            internal,
            labels,
            name,
        } => {
            let (e, mut nets) = open(ctx)?;
            let mut l = BTreeMap::new();
            for kv in labels {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                l.insert(k.to_string(), v.to_string());
            }
            let n = e.create_network(
                &mut nets,
                CreateNetwork {
                    name: name.clone(),
                    driver: driver.clone(),
                    subnet: subnet.clone(),
                    gateway: gateway.clone(),
                    ip_range: ip_range.clone(),
                    internal: *internal,
                    labels: l,
                },
            )?;
            println!("{}", n.id);
        }
        NetworkCmd::Ls {
            quiet,
            format,
            no_trunc,
        } => ls(ctx, *quiet, format.as_deref(), *no_trunc)?,
        NetworkCmd::Inspect { format, networks } => {
            return inspect(ctx, format.as_deref(), networks)
        }
        NetworkCmd::Rm { networks } => {
            let (e, mut nets) = open(ctx)?;
            let mut failed = false;
            for n in networks {
                match e.remove_network(&mut nets, n) {
                    Ok(_) => println!("{n}"),
                    Err(err) => {
                        eprintln!("Error response from daemon: {err}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        NetworkCmd::Prune { force } => {
            if !force
                && !crate::term::confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.",
                )?
            {
                return Ok(0);
            }
            let (e, mut nets) = open(ctx)?;
            let out = e.prune_networks(&mut nets, &|_| true)?;
            if !out.is_empty() {
                println!("Deleted Networks:");
                for n in out {
                    println!("{n}");
                }
            }
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            if ip.is_some() {
                bail!("network connect --ip: a chosen address is not supported yet");
            }
            let (e, mut nets) = open(ctx)?;
            let rec = e.find(container)?;
            e.connect_network(&mut nets, &rec, network, alias)?;
        }
        NetworkCmd::Disconnect {
            force: _,
            network,
            container,
        } => {
            let (e, mut nets) = open(ctx)?;
            let rec = e.find(container)?;
            e.disconnect_network(&mut nets, &rec, network)?;
        }
    }
    Ok(0)
}

fn ls(ctx: &Ctx, quiet: bool, format: Option<&str>, no_trunc: bool) -> Result<()> {
    let (_e, nets) = open(ctx)?;
    let list = nets.list()?;
    let id = |s: &str| {
        if no_trunc {
            s.to_string()
        } else {
            s[..12.min(s.len())].to_string()
        }
    };
    if quiet {
        for n in &list {
            println!("{}", id(&n.id));
        }
        return Ok(());
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "ID": id(&n.id), "Name": n.name, "Driver": "bridge", "Scope": "local",
                "IPv6": "false", "Internal": n.internal.to_string(),
                "Labels": labels.join(","), "CreatedAt": n.created,
            })
        })
        .collect();
    let headers = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"});
    let fmt = list_format(format)?;
    print_list(
        &mut std::io::stdout().lock(),
        &fmt,
        &rows,
        &headers,
        |rows| {
            let mut t = vec![vec![
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            for r in rows {
                t.push(
                    ["ID", "Name", "Driver", "Scope"]
                        .iter()
                        .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                        .collect(),
                );
            }
            align(&t)
        },
    )
}

fn inspect(ctx: &Ctx, format: Option<&str>, keys: &[String]) -> Result<i32> {
    let (e, nets) = open(ctx)?;
    let names = |id: &str| e.find(id).ok().map(|r| r.name);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for k in keys {
        match nets.find(k) {
            Ok(n) => found.push(nets.inspect_json(&n, &names)?),
            Err(oxcart_engine::network::NetworkError::NotFound(_)) => missing.push(k.clone()),
            Err(err) => return Err(err.into()),
        }
    }
    match format.filter(|f| !f.is_empty() && *f != "json") {
        Some(f) => {
            let t = crate::inspect::object_template(f)?;
            for v in &found {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", crate::inspect::to_docker_json(&Value::Array(found))?),
    }
    for m in &missing {
        eprintln!("Error response from daemon: network {m} not found");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`, docker's lines.
pub fn port(ctx: &Ctx, key: &str, want: Option<&str>) -> Result<i32> {
    let e = ctx.engine()?;
    let rec = e.find(key)?;
    let bound = oxcart_engine::network::ports_of(&e.layout, &rec.id);
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    match want {
        None => {
            for b in &bound {
                writeln!(
                    out,
                    "{}/{} -> {}:{}",
                    b.ctr_port, b.proto, b.host_ip, b.host_port
                )?;
            }
        }
        Some(w) => {
            let (p, proto) = w.split_once('/').unwrap_or((w, "tcp"));
            let hits: Vec<_> = bound
                .iter()
                .filter(|b| b.ctr_port.to_string() == p && b.proto == proto)
                .collect();
            if hits.is_empty() {
                bail!("No public port '{p}/{proto}' published for {key}");
            }
            for b in hits {
                writeln!(out, "{}:{}", b.host_ip, b.host_port)?;
            }
        }
    }
    Ok(0)
}
