//! `inspect` of a container in docker's JSON shape (Engine API `ContainerJSON`), so
//! scripts and templates written for docker (`{{.State.Status}}`, `{{.Config.Env}}`,
//! `{{range .Mounts}}`) keep working.

use crate::engine::Engine;
use crate::error::Result;
use crate::record::Record;
use crate::state::{Observed, Status};
use crate::time::ZERO;
use serde_json::{json, Value};

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO
    } else {
        s
    }
}

fn state_json(o: &Observed) -> Value {
    let exit = o.exit.as_ref();
    // docker's SetRestarting: Running stays true, Pid is 0, and the exit code and
    // finish time of the run that ended are shown.
    let restarting = o.status == Status::Restarting;
    let running = o.status.is_running() && !restarting;
    let mut v = json!({
        "Status": o.status.as_str(),
        "Running": o.status.is_running(),
        "Paused": o.status == Status::Paused,
        "Restarting": restarting,
        "OOMKilled": exit.map(|e| e.oom_killed).unwrap_or(false) && !running,
        "Dead": o.status == Status::Dead,
        "Pid": if running { o.pid } else { 0 },
        "ExitCode": if running { 0 } else { exit.map(|e| e.exit_code).unwrap_or(0) },
        "Error": o.error,
        "StartedAt": or_zero(&o.started_at),
        "FinishedAt": if running { ZERO } else { exit.map(|e| or_zero(&e.finished_at)).unwrap_or(ZERO) },
    });
    if let Some(h) = &o.health {
        v["Health"] = json!({
            "Status": h.status,
            "FailingStreak": h.failing_streak,
            "Log": h.log,
        });
    }
    v
}

/// docker's `Mounts`: one entry per bind, volume and tmpfs.
pub fn mounts_json(rec: &Record) -> Value {
    let mut out = Vec::new();
    for b in rec.host_config.binds.iter().flatten() {
        let parts: Vec<&str> = b.split(':').collect();
        // Volumes (`NAME:/d`, `/d`) are listed from the record's resolved volumes.
        if parts.len() < 2 || !parts[0].starts_with('/') {
            continue;
        }
        let mode = parts.get(2).copied().unwrap_or("");
        let ro = mode.split(',').any(|o| o == "ro");
        let prop = mode
            .split(',')
            .find(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave"))
            .unwrap_or("rprivate");
        out.push(json!({
            "Type": "bind", "Source": parts[0], "Destination": parts[1],
            "Mode": mode, "RW": !ro, "Propagation": prop,
        }));
    }
    for m in rec.host_config.mounts.iter().filter(|m| m.kind != "volume") {
        let prop = m
            .bind_options
            .as_ref()
            .map(|b| b.propagation.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                if m.kind == "bind" {
                    "rprivate".into()
                } else {
                    String::new()
                }
            });
        out.push(json!({
            "Type": m.kind, "Source": m.source, "Destination": m.target,
            "Mode": "", "RW": !m.read_only, "Propagation": prop,
        }));
    }
    for v in &rec.volumes {
        if v.kind == "volume" {
            out.push(json!({
                "Type": "volume", "Name": v.name, "Source": v.source,
                "Destination": v.destination, "Driver": "local", "Mode": v.mode,
                "RW": v.rw, "Propagation": v.propagation,
            }));
        } else {
            out.push(json!({
                "Type": "bind", "Source": v.source, "Destination": v.destination,
                "Mode": v.mode, "RW": v.rw,
                "Propagation": if v.propagation.is_empty() { "rprivate" } else { &v.propagation },
            }));
        }
    }
    for (dst, opts) in rec.host_config.tmpfs.iter().flatten() {
        let ro = opts.split(',').any(|o| o == "ro");
        out.push(json!({
            "Type": "tmpfs", "Source": "", "Destination": dst,
            "Mode": opts, "RW": !ro, "Propagation": "",
        }));
    }
    Value::Array(out)
}

/// `NetworkSettings`; `Networks` is never null (docker's clients index it). A
/// container on a bridge network shows its endpoint while it has one (docker clears
/// the address of a stopped container too).
fn network_json(
    rec: &Record,
    eps: &[crate::network::Endpoint],
    ports: &[crate::network::ports::Bound],
    sandbox: String,
) -> Value {
    let mode = match rec.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    // docker (API 1.45+): `Aliases` as given, `DNSNames` every name the container
    // answers to on a user network (the default bridge has no name resolution).
    let ep_json = |ep: Option<&crate::network::Endpoint>| {
        let user = ep.filter(|e| e.network.name != crate::network::DEFAULT_NETWORK);
        let aliases = user
            .filter(|e| !e.aliases.is_empty())
            .map(|e| json!(e.aliases));
        let dns_names = user.map(|e| json!(crate::network::dns::dns_names(rec, &e.aliases)));
        json!({
            "IPAMConfig": null, "Links": null, "Aliases": aliases,
            "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
            "NetworkID": ep.map(|e| e.network.id.clone()).unwrap_or_default(),
            "EndpointID": "",
            "Gateway": ep.map(|e| e.network.gateway.clone()).unwrap_or_default(),
            "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0), "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": dns_names,
        })
    };
    let mut networks = serde_json::Map::new();
    if !mode.starts_with("container:") {
        if eps.is_empty() {
            networks.insert(mode.to_string(), ep_json(None));
        }
        // Every network it is on (its --network first, then `network connect`ed ones).
        for ep in eps {
            networks.insert(ep.network.name.clone(), ep_json(Some(ep)));
        }
    }
    let first = eps.first();
    // docker fills the top-level fields only for the default bridge network.
    let top = first.filter(|e| e.network.name == crate::network::DEFAULT_NETWORK);
    json!({
        "Bridge": "", "SandboxID": "",
        "SandboxKey": if first.is_some() { sandbox } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": crate::network::ports::ports_json(&rec.config, ports), "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": "",
        "Gateway": top.map(|e| e.network.gateway.clone()).unwrap_or_default(),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": top.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": top.map(|e| e.prefix).unwrap_or(0), "IPv6Gateway": "",
        "MacAddress": top.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

impl Engine {
    /// One container's `inspect` object, and its observed state (for the caller's
    /// `--size` or filters).
    pub fn inspect(&self, rec: &Record) -> Result<(Value, Observed)> {
        let obs = self.observe(rec)?;
        let dir = self.ctr_dir(&rec.id);
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let log_path = if rec.host_config.log_config.kind == "none" {
            String::new()
        } else {
            p("ctr.log")
        };
        let images = self.open_images()?;
        let lower = images
            .find(&rec.image_id)
            .map(|img| {
                let mut l: Vec<String> = images
                    .layer_dirs(&img)
                    .iter()
                    .rev()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect();
                l.dedup();
                l.join(":")
            })
            .unwrap_or_default();
        let v = json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": rec.path,
            "Args": rec.args,
            "State": state_json(&obs),
            "Image": rec.image_id,
            "ResolvConfPath": p("resolv.conf"),
            "HostnamePath": p("hostname"),
            "HostsPath": p("hosts"),
            "LogPath": log_path,
            "Name": format!("/{}", rec.name),
            "RestartCount": obs.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": rec.host_config,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": lower,
                    "MergedDir": p("rootfs"),
                    "UpperDir": p("upper"),
                    "WorkDir": p("work"),
                },
            },
            "Mounts": mounts_json(rec),
            "Config": rec.config,
            "NetworkSettings": network_json(
                rec,
                &crate::network::endpoints_of(&self.layout, &rec.id),
                &crate::network::ports_of(&self.layout, &rec.id),
                self.layout.runroot.join("netns").join(&rec.id).display().to_string(),
            ),
        });
        Ok((v, obs))
    }
}

/// An image in docker's `ImageInspect` shape, with our store's extras.
pub fn image_json(st: &oxcart_image::ImageStore, name: &str) -> Result<Option<Value>> {
    let r = match st.find(name) {
        Ok(r) => r,
        Err(oxcart_image::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |what: &str, e: serde_json::Error| {
        crate::error::EngineError::Invalid(format!("{name}: {what}: {e}"))
    };
    let cfg: Value = serde_json::from_slice(&st.config(&r)?).map_err(|e| bad("image config", e))?;
    let manifest: Value =
        serde_json::from_slice(&st.manifest(&r)?).map_err(|e| bad("manifest", e))?;
    let mut dirs: Vec<String> = st
        .layer_dirs(&r)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    dirs.reverse();
    Ok(Some(serde_json::json!({
        "Id": r.id.to_string(),
        "RepoTags": r.tags,
        "RepoDigests": r.digests,
        "Parent": "",
        "Comment": "",
        "Created": cfg.get("created"),
        // docker keeps a ContainerConfig (clients such as compose read it); an image
        // not built by docker's builder has the same config there.
        "ContainerConfig": cfg.get("container_config").or(cfg.get("config")),
        "DockerVersion": "",
        "Author": cfg.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Config": cfg.get("config"),
        "Architecture": cfg.get("architecture"),
        "Variant": cfg.get("variant"),
        "Os": cfg.get("os"),
        "Size": r.size,
        "VirtualSize": r.size,
        "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": dirs.join(":") } },
        "RootFS": { "Type": "layers", "Layers": r.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        "Manifest": { "Digest": r.manifest_digest.to_string(), "MediaType": r.manifest_media_type, "Index": r.index_digest.as_ref().map(|d| d.to_string()), "Layers": manifest.get("layers") },
        "ChainIDs": r.layers.iter().map(|l| l.chain_id.to_string()).collect::<Vec<_>>(),
    })))
}
